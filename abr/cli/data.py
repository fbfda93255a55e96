"""Data commands of the ``abr`` CLI: ``abr traces info|convert`` and ``abr download``."""

from __future__ import annotations

import contextlib
import functools
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import DataDirOption, progress_bar, reported_errors
from abr.common import inputs
from abr.common.atomic import write_atomic
from abr.errors import ConfigError
from traces.datadir import data_dir as resolve_data_dir
from traces.datadir import list_trace_files
from traces.download import REGISTRY, download_dataset
from traces.readers import FORMATS, read_trace, write_cooked_trace
from traces.types import Trace
from traces.units import bps_to_mbps

traces_app = typer.Typer(help="Inspect and convert throughput traces.", no_args_is_help=True)


@traces_app.command("info")
def traces_info_command(
    spec: Annotated[str, typer.Argument(help="A trace file or folder, or a name under <data dir>/traces.")],
    data_dir: DataDirOption = None,
) -> None:
    """Count, total hours and mean throughput of a trace set."""
    with reported_errors():
        trace_set = inputs.load_trace_set(spec, data_dir)
        table = Table(title=f"Trace set {spec}", show_header=False)
        table.add_row("path", str(trace_set.path))
        table.add_row("traces", str(len(trace_set.traces)))
        table.add_row("total hours", f"{trace_set.total_hours:.2f}")
        table.add_row("mean Mbit/s (time-weighted)", f"{bps_to_mbps(trace_set.mean_throughput_bps):.3f}")
        Console().print(table)


@traces_app.command("convert")
def traces_convert_command(
    src: Annotated[Path, typer.Argument(help="A trace file, or a folder of trace files.")],
    dst: Annotated[Path, typer.Argument(help="The cooked output file, or folder when SRC is a folder.")],
    fmt: Annotated[str | None, typer.Option(
        "--from", help=f"Input format, one of {', '.join(FORMATS)} (default: detected).")] = None,
) -> None:
    """Convert traces in any supported format to cooked text (time_s<TAB>Mbit/s).

    Every input is read and checked before anything is written; a failure leaves nothing behind.
    """
    with reported_errors():
        pairs = _conversion_pairs(src, dst)
        traces = [read_trace(source, fmt=fmt) for source, _ in pairs]  # read and check all before writing any
        _write_converted(traces, [target for _, target in pairs])
        Console().print(f"converted {len(pairs)} trace(s) to {dst}")


def _conversion_pairs(src: Path, dst: Path) -> list[tuple[Path, Path]]:
    """(input, output) paths of ``abr traces convert SRC DST``, refusing a DST that cannot hold them."""
    if src.is_dir():
        files = list_trace_files(src)
        if not files:
            raise ConfigError(f"{src} holds no trace files to convert")
        if dst.exists() and not dst.is_dir():
            raise ConfigError(f"DST {dst} is a file, not a folder: when SRC is a folder, DST must be a folder "
                              "(created if missing); give another DST or move the file away")
        _refuse_file_above(dst)
        return [(f, dst / f.name) for f in files]
    if not src.exists():
        raise FileNotFoundError(f"trace file {src} does not exist")
    target = dst / src.name if dst.is_dir() else dst
    _refuse_file_above(target)
    return [(src, target)]


def _refuse_file_above(path: Path) -> None:
    """Refuse a ``path`` whose nearest existing parent folder is a file (it could not be created)."""
    existing = next((folder for folder in path.parents if folder.exists()), None)
    if existing is not None and not existing.is_dir():
        raise ConfigError(f"cannot write {path}: {existing} is a file, not a folder; give another DST or move the "
                          "file away")


def _write_converted(traces: list[Trace], targets: list[Path]) -> None:
    """Write each trace to its target atomically; on a failure remove every file and folder written so far."""
    created_folders = [p for p in reversed(targets[0].parents) if not p.exists()]  # outermost first
    created_files: list[Path] = []
    try:
        targets[0].parent.mkdir(parents=True, exist_ok=True)
        for trace, target in zip(traces, targets, strict=True):
            existed = target.exists()
            write_atomic(target, functools.partial(write_cooked_trace, trace))
            if not existed:
                created_files.append(target)
    except BaseException:
        for path in created_files:
            path.unlink(missing_ok=True)
        for folder in reversed(created_folders):
            with contextlib.suppress(OSError):
                folder.rmdir()  # only if empty: never another process's files
        raise


def download_command(
    name: Annotated[str | None, typer.Argument(help="Dataset name (see --list).")] = None,
    dest: Annotated[Path | None, typer.Option(
        "--dest", help="Data directory to install into (default: --data-dir or $ABR_DATA_DIR).")] = None,
    list_only: Annotated[bool, typer.Option("--list", help="List the downloadable datasets.")] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Download a public dataset into the data directory (verified, idempotent)."""
    with reported_errors():
        if list_only:
            Console().print(_registry_table())
            return
        if name is None:
            raise ConfigError("give a dataset NAME to download, or --list to see them")
        if name not in REGISTRY:
            raise ConfigError(f"unknown dataset {name!r}; available: {', '.join(sorted(REGISTRY))}")
        target_root = dest if dest is not None else resolve_data_dir(data_dir)
        with progress_bar(name, transfer=True) as update:
            installed = download_dataset(name, target_root, progress=update)
        Console().print(f"{name} installed in {installed}")


def _registry_table() -> Table:
    table = Table(title="Downloadable datasets")
    for header in ("name", "installs to", "description"):
        table.add_column(header)
    for spec in sorted(REGISTRY.values(), key=lambda s: s.name):
        table.add_row(spec.name, spec.install_dir, spec.description)
    return table
