"""``abr benchmark``: every agent over the standard suite, ranked per member (:mod:`abr.evaluation.benchmark`).

Registered in :mod:`abr.cli` with ``app.command("benchmark")(benchmark_command)``. Exit codes: 0 done, 2 bad input,
1 a failure while running (sessions that failed are listed; the journals keep the finished ones).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    SEED_MAX,
    Core,
    DataDirOption,
    Engine,
    OverwriteOption,
    progress_bar,
    report_failures,
    report_written,
    reported_errors,
)
from abr.evaluation.engines import default_workers


def benchmark_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the leaderboard and the evaluations.")],
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", "-a", help="Agent; repeatable (default: every agent of the zoo, predictor-mpc, the shipped ppo "
        "and the optimum). Your own policy: py:MODULE:NAME or py:path/to/file.py:NAME (a Policy class or "
        "factory).")] = None,
    preset_name: Annotated[str, typer.Option("--preset", help="Simulator preset (noise-free).")] = "pensieve",
    scale_mean_mbps: Annotated[float, typer.Option(
        "--scale-mean-mbps", help="Time-weighted mean (Mbit/s) every set is scaled to for the scaled members.")
    ] = 1.25,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, max=SEED_MAX, help="Seed of the evaluations and bootstraps.")] = 0,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="Where sessions run: local processes, this process (serial) or Ray.")] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes (default: the CPUs available).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster address for --engine ray (default: start a local Ray).")] = None,
    core: Annotated[Core, typer.Option(
        "--core", help="Session core: fast (equal to SimPy to 1e-9) or the SimPy reference.")] = Core.fast,
    reference_dir: Annotated[Path | None, typer.Option(
        "--reference-dir", help="Folder of pensieve_fixed_env_results.csv for the unranked genet_benchmark "
        "comparison (default: <data dir>/../reference).")] = None,
    overwrite: OverwriteOption = False,
    data_dir: DataDirOption = None,
) -> None:
    """Rank every agent on the standard suite: the test splits (unscaled and scaled), the MERINA titles and
    sabre_bbb, and genet_benchmark (unranked, beside the published numbers).

    Writes leaderboard.csv/.json/.md/.png to --out (the evaluations in <video>/<scaling>/ beside them); an
    interrupted run resumes when the same command is run again.
    """
    with reported_errors():
        from abr.evaluation.benchmark import DEFAULT_AGENTS, run_benchmark

        agents = list(agent) if agent else list(DEFAULT_AGENTS)
        args = ["abr", "benchmark", "--out", str(out)]
        for name in agent or []:
            args += ["--agent", name]
        args += ["--preset", preset_name, "--scale-mean-mbps", str(scale_mean_mbps), "--seed", str(seed),
                 "--core", core.value]
        if data_dir is not None:
            args += ["--data-dir", str(data_dir)]
        with progress_bar("benchmark") as progress:
            result = run_benchmark(out, agents=agents, data_dir=data_dir, reference_dir=reference_dir,
                                   preset_name=preset_name, scale_mean_mbps=scale_mean_mbps, seed=seed,
                                   engine=engine.value, workers=workers or default_workers(),
                                   ray_address=ray_address, core=core.value, progress=progress,
                                   command=shlex.join(args), overwrite=overwrite)
        from abr.evaluation.benchmark_report import overall

        console = Console() if Console().is_terminal else Console(width=120)
        table = Table(title=f"Overall: mean rank over the {sum(m.ranked for m in result.members)} ranked members")
        for header in ("agent", "ranked members", "mean rank", "first places"):
            table.add_column(header, justify="left" if header == "agent" else "right")
        for t in overall(result.rows, result.agents):
            table.add_row(t["agent"], str(t["members"]), "" if t["mean_rank"] is None else f"{t['mean_rank']:.2f}",
                          str(t["first_places"]))
        console.print(table)
        for note in result.skipped:
            console.print(f"not in the data directory: {note}")
        report_written(console, nothing_to_do=result.nothing_to_do, out=out, what="leaderboard",
                       file=result.files.get("markdown", out / "leaderboard.md"), detail=f" ({result.runtime_s:.0f} s)")
        for group, evaluation in result.evaluations.items():
            report_failures(evaluation.failures, out / group)
