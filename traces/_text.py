"""Private helpers shared by the trace and video readers: safe text decoding and line iteration."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from traces.errors import DataDirError, TraceFormatError

_BINARY_PROBE_BYTES = 8192  # look for NUL bytes in this many leading bytes


def read_text(path: str | Path, *, expected: str, error: type[TraceFormatError] = TraceFormatError) -> str:
    """Read ``path`` as UTF-8 text, turning missing, binary or undecodable files into clear errors.

    Args:
        path: the file to read.
        expected: a short description of the expected format, used in error messages.
        error: the error class raised for malformed content.

    Returns:
        The decoded text (a leading byte-order mark is dropped).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "t.txt"
    ...     _ = p.write_bytes(b"0 1.0\\n")
    ...     read_text(p, expected="lines 'time_s throughput_mbit_s'")
    '0 1.0\\n'
    """
    p = Path(path)
    if not p.exists():
        raise DataDirError(f"{path}: file not found; check the path (expected {expected})")
    if p.is_dir():
        raise error(f"is a directory, not a file (expected {expected})", path=path)
    data = p.read_bytes()
    nul_at = data.find(b"\x00", 0, _BINARY_PROBE_BYTES)
    if nul_at >= 0:
        line = data.count(b"\n", 0, nul_at) + 1
        raise error(
            f"looks like a binary file (NUL byte at byte offset {nul_at}); "
            f"expected a text file with {expected}",
            path=path,
            line=line,
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(
            f"cannot be decoded as UTF-8 text (bad byte 0x{data[exc.start]:02x} at byte offset {exc.start}); "
            f"expected a text file with {expected}",
            path=path,
            line=line,
        ) from None


def content_lines(text: str) -> Iterator[tuple[int, str]]:
    """Yield ``(line_number, stripped_line)`` for non-blank lines that are not ``#`` comments.

    Line numbers are 1-based and count every line of the file (blank and comment lines included).

    >>> list(content_lines("# header\\n\\n0 1\\r\\n  1 2  \\n"))
    [(3, '0 1'), (4, '1 2')]
    """
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if line and not line.startswith("#"):
            yield number, line
