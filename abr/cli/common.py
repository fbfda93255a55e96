"""Helpers shared by the CLI modules: logging set-up, error reporting, shared options.

The exit-code contract of every command: ``0`` done (or nothing to do); ``1`` the run finished but some of its
work failed (listed, e.g. :func:`report_failures`) or it failed while running; ``2`` bad input, refused before
any work, in one line ``error: <message>`` naming the problem and the fix (:func:`reported_errors`); ``130``
interrupted, with a message saying how to resume.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn, Protocol

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from abr.errors import INPUT_ERRORS, AbrError, DownloadError, SimulationInvariantError
from traces.units import bps_to_kbps
from traces.videos import ENVIVIO_LADDER_BPS

if TYPE_CHECKING:
    from abr.evaluation.tasks import SessionFailure

#: Exit code of bad input (an unknown name, a missing or malformed file, a bad value), as click uses.
EXIT_BAD_INPUT = 2
#: Exit code of a failure while running (a session or download that fails, a file that cannot be written).
EXIT_FAILURE = 1
#: Exit code after Ctrl-C (128 + SIGINT), as shells report it.
EXIT_INTERRUPTED = 130
#: The largest seed every command accepts (numpy's and SB3's global seeding take 32-bit seeds).
SEED_MAX = 2**32 - 1
_LOGGED_PACKAGES = ("abr", "agents", "simulator", "traces")
#: The Envivio ladder as ``--ladder-kbps`` takes it: ``"300,750,1200,1850,2850,4300"``.
ENVIVIO_LADDER_KBPS_TEXT = ",".join(f"{bps_to_kbps(b):g}" for b in ENVIVIO_LADDER_BPS)

class QoEKind(str, Enum):
    """The QoE variants (see ``simulator.qoe``)."""

    linear = "linear"
    log = "log"
    hd = "hd"
    ssim = "ssim"


class Engine(str, Enum):
    """Where an evaluation's sessions run (``--engine``, see ``abr.evaluation.engines``); not :class:`Core`."""

    local = "local"
    serial = "serial"
    ray = "ray"


class Algorithm(str, Enum):
    """The stable-baselines3 algorithms."""

    ppo = "ppo"
    a2c = "a2c"


class Core(str, Enum):
    """The session cores (``--core``): the SimPy reference or the fast core's arithmetic. Not :class:`Engine`."""

    simpy = "simpy"
    fast = "fast"


DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Data directory (traces/, videos/); overrides $ABR_DATA_DIR."),
]
OverwriteOption = Annotated[
    bool,
    typer.Option("--overwrite", help="Replace the results of another run in --out (only the files that run "
                 "recorded are removed), or run this one again."),
]
LadderOption = Annotated[
    str | None,
    typer.Option("--ladder-kbps", help="The video's bitrate ladder in kbit/s, one per level, ascending, comma-"
                 f"separated (e.g. {ENVIVIO_LADDER_KBPS_TEXT}); overrides the folder's ladder.json and Manifest.mpd."),
]


def configure_logging(verbose: int, quiet: bool) -> Callable[[], None]:
    """Send the project's log records to a rich handler on stderr.

    Args:
        verbose: ``0`` warnings, ``1`` info, ``2`` or more debug.
        quiet: errors only (wins over ``verbose``).

    Returns:
        A function that restores the loggers as they were (the CLI calls it when the command ends, so
        running the CLI in-process leaves no logging state behind).
    """
    if quiet:
        level = logging.ERROR
    else:
        level = (logging.WARNING, logging.INFO, logging.DEBUG)[min(max(verbose, 0), 2)]
    handler = RichHandler(console=Console(stderr=True), show_path=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in _LOGGED_PACKAGES]
    saved = [(lg, list(lg.handlers), lg.level, lg.propagate) for lg in loggers]
    for package_logger in loggers:
        package_logger.handlers = [handler]
        package_logger.setLevel(level)
        package_logger.propagate = False

    def restore() -> None:
        for package_logger, handlers, old_level, propagate in saved:
            package_logger.handlers = handlers
            package_logger.setLevel(old_level)
            package_logger.propagate = propagate

    return restore


class ProgressUpdate(Protocol):
    """What :func:`progress_bar` yields: report ``done`` of ``total`` and, when ``what`` is given, a new description."""

    def __call__(self, done: int, total: int | None, what: str | None = None) -> None: ...


@contextlib.contextmanager
def progress_bar(description: str, *, time_remaining: bool = False,
                 transfer: bool = False) -> Iterator[ProgressUpdate]:
    """A transient rich progress bar on stderr, for the length of the ``with`` block.

    Yields ``update(done, total, what=None)``: ``done`` of ``total`` (``None``: not known yet) and, when
    ``what`` is given, a new description. Every command's bar is this one.

    Args:
        description: the text in front of the bar until an update gives another.
        time_remaining: also show the estimated time left (training).
        transfer: count bytes (size done and transfer speed) instead of items and elapsed time (downloads).
    """
    columns: list[ProgressColumn] = [TextColumn("{task.description}"), BarColumn()]
    if transfer:
        columns += [DownloadColumn(), TransferSpeedColumn()]
    else:
        columns += [MofNCompleteColumn(), TimeElapsedColumn()]
    if time_remaining:
        columns.append(TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int | None, what: str | None = None) -> None:
            if what is None:
                bar.update(task, completed=done, total=total)
            else:
                bar.update(task, completed=done, total=total, description=what)

        yield update


def one_line(exc: BaseException) -> str:
    """The exception's message on one line.

    >>> one_line(ValueError("bad\\n  value"))
    'bad value'
    """
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def fail(exc: BaseException, code: int) -> NoReturn:
    """Print ``error: <message>`` on stderr and exit with ``code``."""
    typer.echo(f"error: {one_line(exc)}", err=True)
    raise typer.Exit(code)


@contextlib.contextmanager
def reported_errors() -> Iterator[None]:
    """Turn known errors into one ``error:`` line: exit 2 for bad input, 1 for a failure while running."""
    try:
        yield
    except INPUT_ERRORS as exc:
        fail(exc, EXIT_BAD_INPUT)
    except (AbrError, DownloadError, OSError, ImportError, SimulationInvariantError) as exc:
        fail(exc, EXIT_FAILURE)


def report_written(console: Console, *, nothing_to_do: bool, out: Path, what: str, file: Path,
                   detail: str = "") -> None:
    """Say where a run's ``what`` (``"report"``, ``"leaderboard"``) was written, or that ``out`` already held it."""
    if nothing_to_do:
        console.print(f"nothing to do: {out} already holds this run's {what}, {file} (--overwrite runs it again)")
    else:
        console.print(f"{what} written to {file}{detail}")


def report_failures(failures: Sequence[SessionFailure], out: Path) -> None:
    """List the failed sessions on stderr and exit with 1 (the results of the others are written)."""
    if not failures:
        return
    for f in failures[:20]:
        typer.echo(f"failed: {f.agent} on {f.trace_set}/{f.trace}: {f.reason}", err=True)
    more = f" ({len(failures) - 20} more)" if len(failures) > 20 else ""
    typer.echo(f"error: {len(failures)} sessions failed{more}; they are listed in {out / 'failures.csv'} and "
               "left out of the tables", err=True)
    raise typer.Exit(EXIT_FAILURE)
