"""``abr bench``: chunk-steps per second of the session cores and environments, decision times of the agents
(:mod:`abr.evaluation.bench`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    DataDirOption,
    LadderOption,
    reported_errors,
)
from abr.common import inputs
from agents.registry import agent_names, make_agent


def bench_command(
    traces: Annotated[str | None, typer.Option(
        "--traces", "-t", help="Trace set (default: genet_benchmark from the data dir, else 50 synthetic).")] = None,
    video: Annotated[str | None, typer.Option(
        "--video", help="Video (default: envivio_dash3, or the synthetic Envivio ladder).")] = None,
    ladder_kbps: LadderOption = None,
    repeats: Annotated[int, typer.Option("--repeats", min=1, help="Runs per figure; the median is printed.")] = 3,
    limit: Annotated[int | None, typer.Option(
        "--limit", min=1, help="Use only the first N traces (by name).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a table.")] = False,
    agent: Annotated[list[str] | None, typer.Option(
        "--agent", "-a", help="Also time this agent's decisions; repeatable ('all': every agent).")] = None,
    view_users: Annotated[int | None, typer.Option(
        "--view-users", min=1, help="Viewers of the population runs whose views per core second are measured "
        "(default: abr.evaluation.bench.VIEW_USERS).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Measure chunk-steps per second of the session cores and environments (median of repeats, one process)
    and decision times."""
    import json

    from abr.evaluation.bench import VIEW_USERS, run_benchmarks

    with reported_errors():
        sets = _bench_traces(traces, data_dir)
        the_traces = [t for s in sets for t in s.traces][:limit]
        names = agent_names() if agent == ["all"] else list(agent or [])
        for name in names:
            make_agent(name)  # fail fast on an unknown agent
        the_video = inputs.load_video(video, data_dir, ladder_kbps=ladder_kbps)
        figures = run_benchmarks(the_traces, the_video, repeats=repeats, agents=names,
                                 view_users=VIEW_USERS if view_users is None else view_users)
        figures["trace_sets"] = [s.name for s in sets]
        if as_json:
            typer.echo(json.dumps(figures))
            return
        table = Table(title=f"Chunk-steps per second ({figures['traces']} traces, median of {repeats})")
        table.add_column("measured")
        table.add_column("steps/s", justify="right")
        for key, value in figures.items():
            if isinstance(value, float):
                table.add_row(key, f"{value:,.0f}")
            elif key in ("batched", "vector_env"):
                for n, rate in value.items():
                    table.add_row(f"{key} N={n}", f"{rate:,.0f}")
        for name, timing in figures["decisions"].items():
            table.add_row(f"decisions: {name}", f"{timing['decisions_per_s']:,.0f} ({timing['mean_us']:.0f} µs)")
        for name, rate in figures["views_per_core_s"].items():
            table.add_row(f"views per core second: {name}", f"{rate:,.1f}")
        Console().print(table)


def _bench_traces(spec: str | None, data_dir: Path | None) -> list[inputs.TraceSetInput]:
    if spec is not None:
        return [inputs.load_trace_set(spec, data_dir)]
    if not inputs.has_data_dir(data_dir):  # no data directory configured (a broken one raises): synthetic traces
        return [inputs.synthetic_trace_set(50, 0)]
    return [inputs.load_trace_set(name, data_dir)
            for name in ("genet_benchmark/fcc-test", "genet_benchmark/norway-test")]
