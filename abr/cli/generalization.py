"""``abr generalization``: the generalisation protocol of a trained model (:mod:`abr.evaluation.generalization`).

Registered in :mod:`abr.cli` with ``app.command("generalization")(generalization_command)``. The exit code is
0 whether or not the acceptance checks pass (they are reported); 2 for bad input, 1 for a failure while running.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    SEED_MAX,
    Algorithm,
    DataDirOption,
    Engine,
    LadderOption,
    OverwriteOption,
    progress_bar,
    report_failures,
    report_written,
    reported_errors,
)
from abr.evaluation.engines import default_workers


def split_families(values: Sequence[str] | None) -> list[str]:
    """``--held-out`` values, each a comma-separated list, as one list of family names.

    >>> split_families(["oboe,belgium4g", " ucc5g "])
    ['oboe', 'belgium4g', 'ucc5g']
    """
    return [name.strip() for value in values or [] for name in value.split(",") if name.strip()]


def generalization_command(
    model: Annotated[Path, typer.Argument(help="The trained model zip (e.g. <run>/best_model.zip).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the report and the evaluations.")],
    traces: Annotated[list[str] | None, typer.Option(
        "--traces", "-t", help="Trace set (path or name under <data dir>/traces); repeatable. Default: the test "
        "split of every shared family, plus every file of each family the model never saw.")] = None,
    held_out: Annotated[list[str] | None, typer.Option(
        "--held-out", help="Families evaluated whole (train+test) as held out, comma-separated; repeatable.")
    ] = None,
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", "-a", help="Heuristic to compare with; repeatable (default: robustmpc, bola-e, dynamic, bba, "
        "rb; robustmpc, bola-e and optimal always play).")] = None,
    video: Annotated[str | None, typer.Option(
        "--video", help="Video: a path or a name under <data dir>/videos (default envivio_dash3; another title "
        "adds the titles check).")] = None,
    ladder_kbps: LadderOption = None,
    scalings: Annotated[str, typer.Option(
        "--scalings", help="Scalings to evaluate, comma-separated: unscaled, scaled (default both); checks that "
        "need a skipped one are n/a.")] = "unscaled,scaled",
    preset_name: Annotated[str, typer.Option("--preset", help="Simulator preset (noise-free).")] = "pensieve",
    scale_mean_mbps: Annotated[float, typer.Option(
        "--scale-mean-mbps", help="Time-weighted mean (Mbit/s) every set is scaled to for the scaled runs.")
    ] = 1.25,
    algo: Annotated[Algorithm, typer.Option("--algo", help="Algorithm of the model.")] = Algorithm.ppo,
    guard: Annotated[bool, typer.Option(
        "--guard", help="Evaluate the model inside the guard (agent guarded:<model>: BOLA-E decides while the "
        "throughput is unpredictable; agents.guard).")] = False,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, max=SEED_MAX, help="Seed of the evaluations and bootstraps.")] = 0,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="Where sessions run: local processes, this process (serial) or Ray.")
    ] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes (default: the CPUs available).")] = None,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Evaluate a trained model against the heuristics on in-distribution and held-out trace sets.

    Writes generalization.csv/.json/.md/.png (and the evaluations under unscaled/ and scaled/, those run) to
    --out; an interrupted run resumes when the same command is run again.
    """
    with reported_errors():
        from abr.common.inputs import parse_ladder_kbps
        from abr.evaluation.generalization import DEFAULT_HEURISTICS, check_scalings, run_generalization

        families = split_families(held_out)
        heuristics = list(agent) if agent else list(DEFAULT_HEURISTICS)
        ladder, run_scalings = parse_ladder_kbps(ladder_kbps), check_scalings(scalings)
        command = _command_line(model, out, traces, families, agent, video, preset_name, scale_mean_mbps, algo.value,
                                seed, data_dir, ladder=ladder, scalings=run_scalings, guard=guard)
        with progress_bar("evaluating") as progress:
            result = run_generalization(
                model, out, sets=traces, held_out=families, heuristics=heuristics, video=video,
                ladder_kbps=ladder, scalings=run_scalings, preset_name=preset_name, scale_mean_mbps=scale_mean_mbps,
                algorithm=algo.value, guard=guard, data_dir=data_dir,
                seed=seed, engine=engine.value, workers=workers or default_workers(), progress=progress,
                command=command, overwrite=overwrite)
        console = Console() if Console().is_terminal else Console(width=160)
        table = Table(title="The model, QoE excl. first chunk (mean; − max(robustmpc, bola-e) with 95% CI)")
        for header in ("set", "label", "scaling", "n", "mean", "p10", "of optimum", "− best heuristic"):
            table.add_column(header, justify="left" if header in ("set", "label", "scaling") else "right")
        for r in result.rows:
            if r.role != "model":
                continue
            best = r.vs.get("best")
            share = f"{r.pct_of_optimum:.1f}%" if r.pct_of_optimum is not None else ""
            diff = "" if best is None else f"{best.mean_diff:+.2f} [{best.ci_low:+.2f}, {best.ci_high:+.2f}]"
            table.add_row(r.trace_set, r.label, r.scaling, str(r.n), f"{r.mean:.2f}", f"{r.p10:.2f}", share, diff)
        console.print(table)
        for check in result.checks:
            verdict = {True: "pass", False: "FAIL", None: "n/a"}[check["passed"]]
            console.print(f"{verdict:>4}  {check['name']}: {check['criterion']}")
        report_written(console, nothing_to_do=result.nothing_to_do, out=out, what="report",
                       file=result.files["markdown"])
        for scaling, evaluation in result.evaluations.items():
            report_failures(evaluation.failures, out / scaling)


def _command_line(model: Path, out: Path, traces: list[str] | None, held_out: list[str], agents: list[str] | None,
                  video: str | None, preset_name: str, scale_mean_mbps: float, algo: str, seed: int,
                  data_dir: Path | None, *, ladder: Sequence[float] | None = None,
                  scalings: Sequence[str] = ("unscaled", "scaled"), guard: bool = False) -> str:
    """The canonical command that reproduces the run (every option spelled out).

    >>> _command_line(Path("m.zip"), Path("out"), ["fcc/test"], [], None, "merina_avengers", "pensieve", 1.25,
    ...               "ppo", 0, None, ladder=(300.0, 750.0), scalings=("unscaled",))  # doctest: +NORMALIZE_WHITESPACE
    'abr generalization m.zip --out out --traces fcc/test --video merina_avengers --ladder-kbps 300,750
     --scalings unscaled --preset pensieve --scale-mean-mbps 1.25 --algo ppo --seed 0'
    """
    args = ["abr", "generalization", str(model), "--out", str(out)]
    for spec in traces or []:
        args += ["--traces", spec]
    if held_out:
        args += ["--held-out", ",".join(held_out)]
    for name in agents or []:
        args += ["--agent", name]
    if video:
        args += ["--video", video]
    if ladder is not None:
        args += ["--ladder-kbps", ",".join(f"{k:g}" for k in ladder)]
    args += ["--scalings", ",".join(scalings), "--preset", preset_name, "--scale-mean-mbps", str(scale_mean_mbps),
             "--algo", algo, "--seed", str(seed)]
    if guard:
        args.append("--guard")
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    return shlex.join(args)
