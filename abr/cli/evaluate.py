"""``abr evaluate``: every agent on every trace; the tables, comparisons and report (:mod:`abr.evaluation`)."""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    EXIT_INTERRUPTED,
    SEED_MAX,
    Core,
    DataDirOption,
    Engine,
    LadderOption,
    OverwriteOption,
    QoEKind,
    progress_bar,
    report_failures,
    reported_errors,
)
from abr.common import inputs
from abr.errors import ConfigError
from abr.evaluation.engines import default_workers
from abr.evaluation.harness import ALL_SETS, EvaluationResult, evaluate
from abr.evaluation.journal import JOURNAL_FILE
from agents.registry import make_agent
from simulator.config import preset
from simulator.qoe import QoEWeights
from traces.units import bps_to_kbps


def evaluate_command(
    agent: Annotated[list[str], typer.Option("--agent", "-a", help="Agent name; repeat for several.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Output folder for the results.")],
    traces: Annotated[list[str] | None, typer.Option(
        "--traces", "-t", help="Trace set: a path or a name under <data dir>/traces; repeatable.")] = None,
    synthetic: Annotated[int, typer.Option(
        "--synthetic", min=0, help="Add a set 'synthetic' of N seeded synthetic traces.")] = 0,
    scale_mean_mbps: Annotated[float | None, typer.Option(
        "--scale-mean-mbps", help="Scale each trace set by one factor to this time-weighted mean (Mbit/s).")
    ] = None,
    video: Annotated[list[str] | None, typer.Option(
        "--video", help="Video: a path or a name under <data dir>/videos (default: envivio_dash3, or a "
        "synthetic CBR Envivio ladder (48 x 4 s) without a data dir); repeatable.")] = None,
    ladder_kbps: LadderOption = None,
    preset_name: Annotated[str, typer.Option(
        "--preset", help="Simulator preset (see `abr presets`).")] = "pensieve",
    qoe: Annotated[QoEKind, typer.Option("--qoe", help="QoE variant.")] = QoEKind.linear,
    seed: Annotated[int, typer.Option(
        "--seed", min=0, max=SEED_MAX, help="Seed of the session noise, synthetic traces and bootstrap.")] = 0,
    baseline: Annotated[str | None, typer.Option(
        "--baseline", help="Agent the others are compared with (default: robustmpc if given, else the first).")
    ] = None,
    engine: Annotated[Engine, typer.Option(
        "--engine", help="Where sessions run: local processes, this process (serial) or a Ray cluster.")
    ] = Engine.local,
    workers: Annotated[int | None, typer.Option(
        "--workers", "-j", min=1, help="Worker processes (default: the CPUs available).")] = None,
    ray_address: Annotated[str | None, typer.Option(
        "--ray-address", help="Ray cluster address for --engine ray (default: start a local Ray).")] = None,
    core: Annotated[Core, typer.Option(
        "--core", help="Session core: simpy (the reference) or fast (the batched core's arithmetic).")
    ] = Core.simpy,
    overwrite: OverwriteOption = False,
    reuse_finished: Annotated[bool, typer.Option(
        "--reuse-finished", help="Continue an interrupted run in --out whose inputs have since changed, keeping "
        "its finished sessions that this run plays identically.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Run every agent on every trace and write sessions, chunks, summary, comparisons, config and a report.

    An interrupted run resumes: rerun the same command with the same --out (a finished one has nothing to do).
    Exit codes: 0 done, 1 finished but some sessions failed (listed), 2 bad input, 130 interrupted.
    """
    with reported_errors():
        sim_config = preset(preset_name)
        weights = QoEWeights(kind=qoe.value)
        for name in agent:
            make_agent(name)  # fail fast on an unknown agent, before reading any trace
        sets = _load_sets(traces or [], synthetic, seed, data_dir)
        if scale_mean_mbps is not None:
            sets = [inputs.rescaled_trace_set(s, scale_mean_mbps) for s in sets]
        ladder = inputs.parse_ladder_kbps(ladder_kbps)
        specs: list[str | None] = list(video) if video else [None]
        videos = [inputs.load_video(v, data_dir, ladder_kbps=ladder) for v in specs]
        command = _command_line(agent, traces or [], synthetic, video, preset_name, qoe.value, out, seed,
                                data_dir)
        if ladder is not None:
            command += f" --ladder-kbps {','.join(f'{k:g}' for k in ladder)}"
        if scale_mean_mbps is not None:
            command += f" --scale-mean-mbps {scale_mean_mbps}"
        metadata = {
            "preset": preset_name,
            "trace_specs": {s.name: (str(s.path) if s.path else None) for s in sets},
            "trace_scale_factors": {s.name: s.scale_factor for s in sets},
            "video_specs": video,
            "ladder_kbps": list(ladder) if ladder is not None else None,
            "video_ladders_kbps": {v.name: bps_to_kbps(v.bitrates_bps).tolist() for v in videos},
            "data_dir": str(data_dir) if data_dir else None,
        }
        with progress_bar("evaluating") as progress, _resumable(out):
            result = evaluate(agent, {s.name: list(s.traces) for s in sets}, videos, sim_config, weights,
                              out, seed=seed, progress=progress, command=command, metadata=metadata,
                              engine=engine.value, workers=workers or default_workers(),
                              ray_address=ray_address, baseline=baseline, core=core.value, overwrite=overwrite,
                              reuse_finished=reuse_finished)
        console = Console() if Console().is_terminal else Console(width=160)
        console.print(results_table(result))
        if result.nothing_to_do:
            console.print(f"nothing to do: {result.out_dir} already holds the results of this evaluation "
                          "(--overwrite runs it again)")
        else:
            console.print(f"results written to {result.out_dir}")
        report_failures(result.failures, result.out_dir)


def _load_sets(specs: list[str], synthetic: int, seed: int,
               data_dir: Path | None) -> list[inputs.TraceSetInput]:
    if not specs and synthetic == 0:
        raise ConfigError("no traces: give --traces SPEC (a path or a data-set name) and/or --synthetic N")
    sets = [inputs.load_trace_set(spec, data_dir) for spec in specs]
    check_distinct_sets(sets)
    if synthetic:
        sets.append(inputs.synthetic_trace_set(synthetic, seed))
    return sets


def check_distinct_sets(sets: Sequence[inputs.TraceSetInput]) -> None:
    """Refuse two ``--traces`` that name the same files (the pooled row would count them twice)."""
    seen: dict[Path, str] = {}
    for s in sets:
        if s.path is None:
            continue
        path = s.path.resolve()
        for other_path, other in seen.items():
            if path == other_path or other_path in path.parents or path in other_path.parents:
                raise ConfigError(f"--traces {other!r} and --traces {s.name!r} name the same files ({other_path} and "
                                  f"{path}); give each trace set once")
        seen[path] = s.name


def _command_line(agents: list[str], traces: list[str], synthetic: int, videos: list[str] | None, preset_name: str,
                  qoe: str, out: Path, seed: int, data_dir: Path | None) -> str:
    """The canonical command that reproduces the run (every option spelled out)."""
    args = ["abr", "evaluate"]
    for name in agents:
        args += ["--agent", name]
    for spec in traces:
        args += ["--traces", spec]
    if synthetic:
        args += ["--synthetic", str(synthetic)]
    for video in videos or []:
        args += ["--video", video]
    args += ["--preset", preset_name, "--qoe", qoe, "--out", str(out), "--seed", str(seed)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    return shlex.join(args)


@contextlib.contextmanager
def _resumable(out: Path) -> Iterator[None]:
    """Ctrl-C ends the run with a hint instead of a traceback; the journal keeps the finished sessions."""
    try:
        yield
    except KeyboardInterrupt:
        typer.echo(f"interrupted: finished sessions are kept in {out / JOURNAL_FILE}; rerun the same command "
                   "to resume", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def results_table(result: EvaluationResult) -> Table:
    """A rich table: one row per (agent, trace set), then the agent's pooled ``all`` row."""
    table = Table(title="Evaluation summary (means; QoE with 95% bootstrap CI)")
    for header in ("agent", "set", "n", "QoE [95% CI]", "QoE excl. first", "bitrate kbps", "rebuffer s",
                   "smoothness Mbit/s"):
        table.add_column(header, justify="left" if header in ("agent", "set") else "right", overflow="fold")
    groups = list(dict.fromkeys((r.agent, r.trace_set) for r in result.summary))
    for agent_name, set_name in groups:
        qoe = result.stat(agent_name, set_name, "qoe")
        means = [f"{result.stat(agent_name, set_name, m).mean:.2f}"
                 for m in ("qoe_excl_first", "avg_bitrate_kbps", "rebuffer_s", "smoothness_mbps")]
        style = "bold" if set_name == ALL_SETS else None
        table.add_row(agent_name, set_name, str(qoe.n),
                      f"{qoe.mean:.2f} [{qoe.ci_low:.2f}, {qoe.ci_high:.2f}]", *means, style=style)
    return table
