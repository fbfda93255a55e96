"""The ``abr`` application: the typer app, its global options, and where each command lives.

Commands: ``abr evaluate`` (:mod:`abr.cli.evaluate`), ``abr bench`` (:mod:`abr.cli.bench`), ``abr agents`` and
``abr presets`` (here), ``abr traces info|convert`` and ``abr download`` (:mod:`abr.cli.data`), ``abr train`` and
``abr export`` (:mod:`abr.cli.training`), ``abr player content|serve``, ``abr play`` and ``abr fidelity``
(:mod:`abr.cli.player`), ``abr sessions simulate|recommender`` (:mod:`abr.cli.sessions`), ``abr generalization``
(:mod:`abr.cli.generalization`), ``abr benchmark`` (:mod:`abr.cli.benchmark`), ``abr predictor train|evaluate``
(:mod:`abr.cli.predictor`). Only the CLI
configures logging (a rich handler on stderr; ``-v`` info, ``-vv`` debug, ``-q`` errors only) and draws progress
bars. Exit codes: see :mod:`abr.cli.common`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.bench import bench_command
from abr.cli.benchmark import benchmark_command
from abr.cli.common import (
    configure_logging,
)
from abr.cli.data import download_command, traces_app
from abr.cli.evaluate import evaluate_command
from abr.cli.generalization import generalization_command
from abr.cli.player import fidelity_command, play_command, player_app
from abr.cli.predictor import predictor_app
from abr.cli.sessions import sessions_app
from abr.cli.training import export_command, train_command
from agents.registry import AGENTS, shipped_model_agents
from simulator.config import PRESETS

app = typer.Typer(
    name="abr",
    help="Adaptive-bitrate streaming lab: evaluate bitrate agents on throughput traces.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(traces_app, name="traces")
app.add_typer(sessions_app, name="sessions")
app.add_typer(predictor_app, name="predictor")
app.command("download")(download_command)
app.command("train")(train_command)
app.command("export")(export_command)
app.add_typer(player_app, name="player")
app.command("play")(play_command)
app.command("fidelity")(fidelity_command)
app.command("generalization")(generalization_command)
app.command("evaluate")(evaluate_command)
app.command("bench")(bench_command)
app.command("benchmark")(benchmark_command)




@app.callback()
def main(
    ctx: typer.Context,
    verbose: Annotated[int, typer.Option(
        "--verbose", "-v", count=True, help="More log output (-vv: debug).")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only log errors.")] = False,
) -> None:
    """Adaptive-bitrate streaming lab."""
    ctx.call_on_close(configure_logging(verbose, quiet))


@app.command("agents")
def agents_command() -> None:
    """List the agents with a one-line description, and whether the real player runs them (abr play)."""
    from abr.player.agents import has_browser_rule

    table = Table(title="Agents")
    table.add_column("name")
    table.add_column("description")
    table.add_column("player")
    for name in sorted(AGENTS):
        doc = inspect.getdoc(AGENTS[name]) or ""
        table.add_row(name, doc.splitlines()[0] if doc else "", "yes" if has_browser_rule(name) else "")
    for name, path in shipped_model_agents().items():
        table.add_row(name, f"Shipped trained policy: agents/models/{path.name} (greedy).",
                      "yes" if has_browser_rule(name) else "")
    console = Console()
    console.print(table)
    console.print("Other forms: a parameter (fixed:K, throughput:F, bola:T, bola-e:T, dynamic:T, soda:T), a model "
                  "file (ppo:PATH, a2c:PATH, predictor-mpc:PATH), guarded:AGENT (BOLA-E decides while the throughput "
                  "is unpredictable), py:MODULE:NAME or py:FILE.py:NAME (your own Policy).")


@app.command("presets")
def presets_command() -> None:
    """List the simulator presets and their fields."""
    table = Table(title="Simulator presets")
    table.add_column("field")
    for name in PRESETS:
        table.add_column(name)
    for f in dataclasses.fields(next(iter(PRESETS.values()))):
        table.add_row(f.name, *(repr(getattr(cfg, f.name)) for cfg in PRESETS.values()))
    Console().print(table)
