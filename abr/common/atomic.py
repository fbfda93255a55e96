"""Atomic file writes: write a temporary file in the target's folder, then ``os.replace`` it.

A crash (or an exception in the writer) never leaves a half-written result file behind: the target is
either the old complete file, the new complete file, or absent.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import IO, Any


def write_atomic(path: str | Path, write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp_path)`` on a temporary path next to ``path``, then move it onto ``path``.

    Args:
        path: the final file.
        write: writes the complete content to the path it is given (its return value is ignored).

    Returns:
        ``path``.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = write_atomic(Path(d) / "x.txt", lambda tmp: tmp.write_text("hi"))
    ...     p.read_text(), sorted(q.name for q in Path(d).iterdir())
    ('hi', ['x.txt'])
    """
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open with mode 0o666 lets the umask set the permissions, as a plain open() would.
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        if isinstance(exc, OSError) and str(target) not in str(exc):
            raise OSError(exc.errno, f"{exc.strerror or exc}: cannot write {target}") from exc
        raise
    return target


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_json_atomic(path: str | Path, data: Mapping[str, Any]) -> Path:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def write_csv_atomic(path: str | Path, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> Path:
    """Write a CSV with a header row atomically. Floats are written with ``repr`` (round-trip exact).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     print(write_csv_atomic(Path(d) / "t.csv", ["a", "b"], [(1, 0.1), ("x", 2.5)]).read_text(), end="")
    a,b
    1,0.1
    x,2.5
    """

    def write(tmp: Path) -> None:
        with open(tmp, "w", encoding="utf-8", newline="") as handle:
            _write_rows(handle, columns, rows)

    return write_atomic(path, write)


def _write_rows(handle: IO[str], columns: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    writer = csv.writer(handle, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([repr(float(v)) if isinstance(v, float) else v for v in row])
