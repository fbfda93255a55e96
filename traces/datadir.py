"""Locating the data directory and the trace sets and videos inside it.

The data directory holds ``traces/<dataset>/<split>/`` folders of trace files and ``videos/<name>/`` folders
(or JSON manifests). It is never part of the repository: it is chosen by an explicit override (the CLI's
``--data-dir``), else by the ``ABR_DATA_DIR`` environment variable.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

from traces.errors import DataDirError

logger = logging.getLogger(__name__)

DATA_DIR_ENV = "ABR_DATA_DIR"
TRACES_SUBDIR = "traces"
VIDEOS_SUBDIR = "videos"
VIDEO_SIZE_PREFIX = "video_size_"

_SKIPPED_SUFFIXES = (".md", ".gz", ".sha256", ".zip", ".tar", ".tgz")
_SKIPPED_NAMES = ("split.csv",)
_SKIPPED_NAME_PARTS = ("readme", "license", "licence", "provenance")
_RAW_DIR_NAMES = ("raw",)


def configured_data_dir(override: str | Path | None = None) -> Path | None:
    """The configured data directory (``override`` if given, else ``$ABR_DATA_DIR``), or ``None`` if neither is set.

    Args:
        override: an explicit directory (the CLI's ``--data-dir``); wins over the environment variable.

    Returns:
        The resolved, existing directory, or ``None`` when no data directory is configured.

    Raises:
        DataDirError: a directory is configured but does not exist or is a file (the message names the path,
            where it came from and the fix).

    >>> import os, tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     configured_data_dir(d) == Path(d).resolve()
    True
    >>> try:
    ...     configured_data_dir("/nonexistent")
    ... except DataDirError as exc:
    ...     print(str(exc).split(":")[0])
    data directory /nonexistent (from --data-dir) does not exist
    """
    if override is not None and str(override) != "":
        chosen, origin, fix = Path(override), "--data-dir", "pass --data-dir"
    elif os.environ.get(DATA_DIR_ENV):
        chosen, origin, fix = Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}", f"set ${DATA_DIR_ENV} to"
    else:
        return None
    chosen = chosen.expanduser()
    if chosen.is_dir():
        return chosen.resolve()
    state = "is a file, not a folder" if chosen.exists() else "does not exist"
    raise DataDirError(f"data directory {chosen} (from {origin}) {state}: {fix} a folder with traces/ and videos/ "
                       "subfolders")


def data_dir(override: str | Path | None = None) -> Path:
    """The data directory: ``override`` if given, else ``$ABR_DATA_DIR``.

    Args:
        override: an explicit directory (the CLI's ``--data-dir``); wins over the environment variable.

    Returns:
        The resolved, existing directory.

    Raises:
        DataDirError: neither is set, or the chosen directory does not exist or is a file.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     data_dir(d) == Path(d).resolve()
    True
    """
    chosen = configured_data_dir(override)
    if chosen is None:
        raise DataDirError(
            f"no data directory configured: set the {DATA_DIR_ENV} environment variable or pass --data-dir "
            "(a folder with traces/ and videos/ subfolders)"
        )
    return chosen


def is_trace_file(path: Path) -> bool:
    """Whether ``path`` looks like a trace file (not hidden, not a README, split list or archive).

    >>> is_trace_file(Path("trace_1.log")), is_trace_file(Path("README.txt")), is_trace_file(Path(".x"))
    (True, False, False)
    """
    name = path.name
    lower = name.lower()
    if name.startswith(".") or lower in _SKIPPED_NAMES or lower.endswith(_SKIPPED_SUFFIXES):
        return False
    return not any(part in lower for part in _SKIPPED_NAME_PARTS)


def list_trace_files(directory: str | Path) -> list[Path]:
    """Trace files directly inside ``directory``, sorted by name.

    Skips hidden files, sub-directories (``raw/`` included), Markdown and README/LICENSE files,
    ``split.csv`` and compressed archives.

    Args:
        directory: the folder to list.

    Returns:
        The trace file paths, sorted by file name (may be empty).

    Raises:
        DataDirError: ``directory`` does not exist or is not a directory.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for name in ("b", "a.txt", "README.md", "split.csv", ".hidden"):
    ...         _ = (Path(d) / name).write_text("0 1\\n")
    ...     [p.name for p in list_trace_files(d)]
    ['a.txt', 'b']
    """
    folder = Path(directory)
    if not folder.is_dir():
        raise DataDirError(
            f"trace directory {folder} does not exist or is not a directory; check the path, or give a "
            f"dataset name relative to ${DATA_DIR_ENV}/{TRACES_SUBDIR}/ such as 'fcc/test'"
        )
    return sorted((p for p in folder.iterdir() if p.is_file() and is_trace_file(p)), key=lambda p: p.name)


def available_trace_sets(data_dir_override: str | Path | None = None) -> list[str]:
    """Names (relative to ``<data_dir>/traces/``) of the folders that hold trace files, sorted.

    Folders named ``raw`` (unconverted source files) and everything below them are left out.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "traces" / "fcc" / "test").mkdir(parents=True)
    ...     _ = (Path(d) / "traces" / "fcc" / "test" / "t1").write_text("0 1\\n1 1\\n")
    ...     available_trace_sets(d)
    ['fcc/test']
    """
    root = data_dir(data_dir_override) / TRACES_SUBDIR
    if not root.is_dir():
        return []
    names = []
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        rel = folder.relative_to(root)
        if any(part in _RAW_DIR_NAMES or part.startswith(".") for part in rel.parts):
            continue
        if list_trace_files(folder):
            names.append(rel.as_posix())
    return names


def available_videos(data_dir_override: str | Path | None = None) -> list[str]:
    """Names (relative to ``<data_dir>/videos/``) of video folders and JSON manifests, sorted.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "videos" / "clip").mkdir(parents=True)
    ...     _ = (Path(d) / "videos" / "clip" / "video_size_0").write_text("100\\n")
    ...     available_videos(d)
    ['clip']
    """
    root = data_dir(data_dir_override) / VIDEOS_SUBDIR
    if not root.is_dir():
        return []
    names = set()
    for path in root.rglob("*"):
        if path.name.startswith(VIDEO_SIZE_PREFIX) and path.is_file():
            names.add(path.parent.relative_to(root).as_posix())
        elif path.suffix == ".json" and path.is_file():
            names.add(path.relative_to(root).as_posix())
    return sorted(names)


def resolve_traces(spec: str | Path, data_dir: str | Path | None = None) -> Path:
    """Resolve a trace set: an existing path, else a dataset name under ``<data_dir>/traces/``.

    Args:
        spec: a file or folder path, or a dataset name such as ``"fcc/test"`` or
            ``"genet_benchmark/fcc-test"``.
        data_dir: the data directory override (else ``$ABR_DATA_DIR``).

    Returns:
        The existing path.

    Raises:
        DataDirError: nothing matches; the message lists the available dataset names.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "traces" / "fcc" / "test").mkdir(parents=True)
    ...     resolve_traces("fcc/test", d).parts[-2:]
    ('fcc', 'test')
    """
    return _resolve(spec, data_dir, TRACES_SUBDIR, available_trace_sets, "trace set")


def resolve_video(spec: str | Path, data_dir: str | Path | None = None) -> Path:
    """Resolve a video: an existing path, else a name under ``<data_dir>/videos/`` (``.json`` optional).

    Args:
        spec: a folder or manifest path, or a name such as ``"envivio_dash3"`` or ``"sabre_bbb/bbb"``.
        data_dir: the data directory override (else ``$ABR_DATA_DIR``).

    Returns:
        The existing path.

    Raises:
        DataDirError: nothing matches; the message lists the available video names.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     (Path(d) / "videos" / "bbb").mkdir(parents=True)
    ...     _ = (Path(d) / "videos" / "bbb" / "bbb.json").write_text("{}")
    ...     resolve_video("bbb/bbb", d).name
    'bbb.json'
    """
    return _resolve(spec, data_dir, VIDEOS_SUBDIR, available_videos, "video")


def _resolve(
    spec: str | Path,
    override: str | Path | None,
    subdir: str,
    lister: Callable[[str | Path | None], list[str]],
    what: str,
) -> Path:
    direct = Path(spec).expanduser()
    if direct.exists():
        return direct
    root = data_dir(override)
    candidates = [root / subdir / str(spec)]
    if subdir == VIDEOS_SUBDIR and not str(spec).endswith(".json"):
        candidates.append(root / subdir / f"{spec}.json")
    for candidate in candidates:
        if candidate.exists():
            logger.debug("resolved %s %r to %s", what, str(spec), candidate)
            return candidate
    available = lister(root)
    listing = ", ".join(available) if available else f"none (the folder {root / subdir} is empty or missing)"
    raise DataDirError(
        f"unknown {what} {str(spec)!r}: it is not an existing path and not a name under {root / subdir}. "
        f"Available: {listing}"
    )
