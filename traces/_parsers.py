"""Private parsers behind :mod:`traces.readers`: each turns a file (or, for JSON, decoded text) into a Trace.

The line formats (cooked, CSV, Mahimahi) are read as a stream of blocks of whole lines (:class:`LineBlocks`), so
memory stays within a small multiple of the arrays the trace keeps, whatever the file's size. A block of plain
numbers is parsed by numpy in one call; any other block (comments, unusual characters, a bad line) goes through
the line-by-line checks, which name the line. Decoding problems are reported by :func:`traces._text.read_text`,
exactly as when a file is read whole. Every check that can point at a line does so; the messages start with
``<file>:<line>:``.
"""

from __future__ import annotations

import io
import itertools
import json
import math
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from traces._text import content_lines, read_text
from traces.errors import ConfigError, TraceFormatError
from traces.types import FloatArray, Trace
from traces.units import BITS_PER_BYTE, BPS_PER_KBPS, BPS_PER_MBPS, kbps_to_bps, mbps_to_bps, ms_to_s

MAHIMAHI_PACKET_BYTES = 1500  # one Mahimahi delivery opportunity carries one MTU-sized packet
FORMATS = ("cooked", "mahimahi", "sabre", "csv")
_COOKED_COLUMNS = ("time_s", "throughput_mbit_s")
_CSV_RATE_TO_BPS = {"throughput_bps": 1.0, "throughput_kbps": BPS_PER_KBPS, "throughput_mbps": BPS_PER_MBPS}
_SNIFF_LINES = 20  # content lines looked at when sniffing the format
BLOCK_BYTES = 4 * 1024 * 1024  # bytes read at a time (a block then runs to the end of its last whole line)
_BINARY_PROBE_BYTES = 8192  # as traces._text.read_text: NUL bytes here make a file binary
_UTF8_BOM = b"\xef\xbb\xbf"
# Characters of the blocks numpy parses in one call (anything else takes the line-by-line path).
_NUMBER_BYTES = b"0123456789.eE+-"
_FAST_BYTES = {" ": _NUMBER_BYTES + b" \t\r\n", ",": _NUMBER_BYTES + b" \t\r\n,", "int": b"0123456789 \t\r\n"}


class LineBlocks:
    """A text file as blocks of whole lines: ``(number of the block's first line, bytes)``, in order.

    Opening checks what :func:`traces._text.read_text` checks up front (a missing file, a folder, NUL bytes in
    the first 8 KiB) and raises its errors; a leading byte-order mark is dropped. A context manager (it holds
    the open file) and an iterator (once through).

    Args:
        path: the file.
        expected: what the file should hold, for error messages.
    """

    def __init__(self, path: str | Path, *, expected: str) -> None:
        self.path = path
        self.expected = expected
        p = Path(path)
        if not p.exists() or p.is_dir():
            read_text(path, expected=expected)  # raises the missing-file or folder error
        self._handle = p.open("rb")
        head = self._handle.read(max(BLOCK_BYTES, _BINARY_PROBE_BYTES))
        if b"\x00" in head[:_BINARY_PROBE_BYTES]:
            self._handle.close()
            read_text(path, expected=expected)  # raises the binary-file error
        self._stream = self._blocks(head[len(_UTF8_BOM):] if head.startswith(_UTF8_BOM) else head)
        self._peeked: deque[tuple[int, bytes]] = deque()

    def __enter__(self) -> LineBlocks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.close()

    def __iter__(self) -> LineBlocks:
        return self

    def __next__(self) -> tuple[int, bytes]:
        return self._peeked.popleft() if self._peeked else next(self._stream)

    def _blocks(self, pending: bytes) -> Iterator[tuple[int, bytes]]:
        number = 1
        while True:
            chunk = self._handle.read(BLOCK_BYTES)
            if not chunk:
                if pending:
                    yield number, pending
                return
            cut = chunk.rfind(b"\n")
            if cut < 0:
                pending += chunk
                continue
            block = pending + chunk[:cut + 1]
            pending = chunk[cut + 1:]
            yield number, block
            number += block.count(b"\n")

    def push_back(self, number: int, block: bytes) -> None:
        """Make ``(number, block)`` the next block."""
        self._peeked.appendleft((number, block))

    def peek_text(self, n_lines: int) -> str:
        """The text of the first blocks, enough for ``n_lines`` content lines (they are still iterated)."""
        found = 0
        for number, block in self._stream:
            self._peeked.append((number, block))
            found += sum(1 for _ in itertools.islice(content_lines(self.decode(block)), n_lines))
            if found >= n_lines:
                break
        return "".join(self.decode(block) for _, block in self._peeked)

    def decode(self, block: bytes) -> str:
        """The block's text; a block that is not UTF-8 raises :func:`read_text`'s error for the file."""
        try:
            return block.decode("utf-8")
        except UnicodeDecodeError:
            read_text(self.path, expected=self.expected)  # names the file's first bad byte and its line
            raise

    def check_rest(self) -> None:
        """Decode the blocks not read yet: as when the file is read whole, a bad byte is reported before any
        bad line (call this before raising a line's error)."""
        for _, block in self:
            if not block.isascii():
                self.decode(block)


def format_from_suffix(path: Path) -> str | None:
    """The format the file name implies (``.json``, ``.down``/``.up``, ``.csv``), else ``None``."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "sabre"
    if suffix in (".down", ".up"):
        return "mahimahi"
    if suffix == ".csv":
        return "csv"
    return None


def detect_format(path: Path, text: str) -> str:
    """One of :data:`FORMATS`, from the suffix, else from the first content lines of ``text``."""
    kind = format_from_suffix(path)
    if kind is not None:
        return kind
    head = [line for _, line in itertools.islice(content_lines(text), _SNIFF_LINES)]
    if head and all(line.isdigit() for line in head):
        return "mahimahi"
    return "cooked"


def sniff_format(path: Path, blocks: LineBlocks) -> str:
    """:func:`detect_format` from the file's first content lines (their blocks are still to be read)."""
    kind = format_from_suffix(path)
    return kind if kind is not None else detect_format(path, blocks.peek_text(_SNIFF_LINES))


def read_cooked(blocks: LineBlocks, family: str) -> Trace:
    """Parse cooked ``time_s throughput_mbit_s`` lines."""
    rows = _Rows(blocks, _COOKED_COLUMNS, sep=None, to_bps=mbps_to_bps)
    rows.read()
    times, rates_bps = rows.arrays()
    return _build(blocks.path, family, times, rates_bps, "lines 'time_s throughput_mbit_s'")


def read_csv(blocks: LineBlocks, family: str) -> Trace:
    """Parse CSV lines with a ``time_s,throughput_<unit>`` header."""
    path = blocks.path
    accepted = " or ".join(f"'time_s,{c}'" for c in _CSV_RATE_TO_BPS)
    for first_number, block in blocks:
        first = next(content_lines(blocks.decode(block)), None)
        if first is None:
            continue
        offset, header = first
        number = first_number + offset - 1
        columns = tuple(c.strip().lower() for c in header.split(","))
        if len(columns) != 2 or columns[0] != "time_s" or columns[1] not in _CSV_RATE_TO_BPS:
            blocks.check_rest()
            raise TraceFormatError(f"expected a header {accepted}, got {header!r}", path=path, line=number)
        blocks.push_back(number + 1, _after_line(block, offset))
        rows = _Rows(blocks, columns, sep=",", to_bps=_times(_CSV_RATE_TO_BPS[columns[1]]))
        rows.read()
        times, rates_bps = rows.arrays()
        return _build(path, family, times, rates_bps, f"rows '{header}'")
    raise TraceFormatError(f"the file is empty; expected a header {accepted} and rows", path=path)


def _times(factor: float) -> Callable[[FloatArray], FloatArray]:
    def scale(values: FloatArray) -> FloatArray:
        return values * factor

    return scale


def _after_line(block: bytes, line: int) -> bytes:
    """What follows the ``line``-th line (1-based) of ``block``."""
    at = -1
    for _ in range(line):
        at = block.find(b"\n", at + 1)
        if at < 0:
            return b""
    return block[at + 1:]


class _Rows:
    """Two-column rows ``time, rate`` parsed block by block, with the per-line checks of the line-by-line path;
    ``to_bps`` converts each block's rates to bits per second.

    A block of plain numbers (see :func:`_fast_numbers`) is parsed by ``np.loadtxt`` and kept when every value
    is finite and >= 0 and the times do not go backwards; any other block is checked one line at a time, which
    raises the error naming the line (or accepts what numpy is not given, such as comment lines).
    """

    def __init__(self, blocks: LineBlocks, columns: tuple[str, ...], *, sep: str | None,
                 to_bps: Callable[[FloatArray], FloatArray]) -> None:
        self.blocks = blocks
        self.to_bps = to_bps
        self.path = blocks.path
        self.columns = columns
        self.sep = sep
        self.times: list[FloatArray] = []
        self.rates: list[FloatArray] = []
        self.last_time, self.last_line = -math.inf, 0
        self._last_block: tuple[int, bytes] | None = None  # the block of the last time, when parsed by numpy

    def read(self) -> None:
        """Read every remaining block."""
        for number, block in self.blocks:
            if self._take_fast(number, block):
                continue
            try:
                self._take_lines(content_lines(self.blocks.decode(block)), number - 1)
            except TraceFormatError:
                self.blocks.check_rest()
                raise

    def arrays(self) -> tuple[FloatArray, FloatArray]:
        """The times and rates (bits/s) read, each as one array; the blocks' arrays are released as they are
        copied, so memory peaks at little more than the two arrays."""
        return _join(self.times), _join(self.rates)

    def _take_fast(self, number: int, block: bytes) -> bool:
        values = _fast_numbers(block, " " if self.sep is None else self.sep, np.float64, 2)
        if values is None:
            return False
        if values.size == 0:
            return True
        times, rates = values[:, 0], values[:, 1]
        if not (np.isfinite(values).all() and (values >= 0).all() and times[0] >= self.last_time
                and (times[1:] >= times[:-1]).all()):
            return False
        self.times.append(times.copy())
        self.rates.append(self.to_bps(rates))
        self.last_time = float(times[-1])
        self._last_block = (number, block)
        return True

    def _line_of_last_time(self) -> int:
        if self._last_block is not None:  # the block's last content line (only needed for a message)
            number, block = self._last_block
            self.last_line = number + block.count(b"\n", 0, len(block.rstrip()))
            self._last_block = None
        return self.last_line

    def _take_lines(self, lines: Iterable[tuple[int, str]], offset: int) -> None:
        """The line-by-line checks; ``offset`` is added to the line numbers of ``lines``."""
        want = (" " if self.sep is None else self.sep).join(self.columns)
        times: list[float] = []
        rates: list[float] = []
        for relative, line in lines:
            number = relative + offset
            tokens = line.split(self.sep)
            if len(tokens) != 2:
                raise TraceFormatError(f"expected 2 columns '{want}', got {len(tokens)}", path=self.path,
                                       line=number)
            values = [_number(tok.strip(), col, self.path, number)
                      for tok, col in zip(tokens, self.columns, strict=True)]
            if values[0] < self.last_time:
                raise TraceFormatError(
                    f"{self.columns[0]} goes backwards: {values[0]!r} after {self.last_time!r} on line "
                    f"{self._line_of_last_time()}; sample times must be non-decreasing",
                    path=self.path,
                    line=number,
                )
            self.last_time, self.last_line, self._last_block = values[0], number, None
            times.append(values[0])
            rates.append(values[1])
        self.times.append(np.asarray(times, dtype=np.float64))
        self.rates.append(self.to_bps(np.asarray(rates, dtype=np.float64)))


def _join(parts: list[FloatArray]) -> FloatArray:
    """``np.concatenate(parts)``, emptying ``parts`` as it goes."""
    out = np.empty(sum(p.size for p in parts))
    at = 0
    for i, part in enumerate(parts):
        out[at:at + part.size] = part
        at += part.size
        parts[i] = out[:0]  # release the block
    parts.clear()
    return out


def _fast_numbers(block: bytes, kind: str, dtype: type[np.generic], n_columns: int) -> npt.NDArray[Any] | None:
    """The block as a ``[rows, n_columns]`` array parsed by numpy, or ``None`` when it must be read line by line.

    Only blocks made of digits, number signs, spaces, tabs, newlines (a carriage return only before a newline)
    and, for CSV, commas are parsed here: on those, ``np.loadtxt`` reads the same values and the same lines as
    the line-by-line path (blank lines skipped), and any line it cannot read sends the block to that path.
    """
    if block.translate(None, _FAST_BYTES[kind]) or (b"\r" in block and block.count(b"\r") != block.count(b"\r\n")):
        return None
    if not block.strip():
        return np.zeros((0, n_columns), dtype=dtype)
    try:
        values = np.loadtxt(io.BytesIO(block), dtype=dtype, delimiter="," if kind == "," else None,
                            comments=None, ndmin=2)
    except (ValueError, OverflowError):
        return None
    return values if values.shape[1] == n_columns else None


def _number(token: str, column: str, path: str | Path, line: int) -> float:
    try:
        value = float(token)
    except ValueError:
        msg = f"expected a number for {column}, got {token!r}"
        raise TraceFormatError(msg, path=path, line=line) from None
    if not math.isfinite(value) or value < 0:
        raise TraceFormatError(f"{column} is {token!r}; expected a finite number >= 0", path=path, line=line)
    return value


def read_mahimahi(blocks: LineBlocks, family: str, bin_s: float) -> Trace:
    """Parse Mahimahi timestamps and bin them (see :func:`traces.readers.read_mahimahi_trace`).

    Only the count of each bin is kept: memory does not grow with the number of timestamps.
    """
    if not (isinstance(bin_s, int | float) and math.isfinite(bin_s) and bin_s > 0):
        msg = f"bin_s={bin_s!r} must be a finite number of seconds > 0"
        raise ConfigError(msg, field="bin_s", value=bin_s)
    path = blocks.path
    bin_ms = bin_s * 1000.0
    counts = np.zeros(0, dtype=np.int64)
    last, is_empty = 0, True
    for number, block in blocks:
        stamps = _fast_numbers(block, "int", np.int64, 1)
        if stamps is not None and stamps.size and (stamps[0, 0] < last or (np.diff(stamps[:, 0]) < 0).any()):
            stamps = None
        if stamps is not None:
            stamps_ms = stamps[:, 0].astype(np.float64)
            last = int(stamps[-1, 0]) if stamps.size else last
        else:
            try:
                values, last = _mahimahi_lines(content_lines(blocks.decode(block)), number - 1, last, path)
            except TraceFormatError:
                blocks.check_rest()
                raise
            stamps_ms = np.asarray(values, dtype=np.float64)
        if stamps_ms.size:
            is_empty = False
            block_counts = np.bincount(np.floor_divide(stamps_ms, bin_ms).astype(np.int64))
            if block_counts.size > counts.size:
                counts = np.concatenate((counts, np.zeros(block_counts.size - counts.size, dtype=np.int64)))
            counts[:block_counts.size] += block_counts
    if is_empty:
        raise TraceFormatError("the file is empty; expected one integer timestamp_ms per line", path=path)
    rates_bps = counts * (MAHIMAHI_PACKET_BYTES * BITS_PER_BYTE) / bin_s
    times_s = np.arange(counts.size + 1, dtype=np.float64) * bin_s
    return _build(path, family, times_s, np.concatenate(([rates_bps[0]], rates_bps)), "Mahimahi timestamps")


def _mahimahi_lines(lines: Iterable[tuple[int, str]], offset: int, last: int,
                    path: str | Path) -> tuple[list[int], int]:
    """The line-by-line checks of Mahimahi timestamps; returns them and the last one."""
    stamps_ms: list[int] = []
    for relative, line in lines:
        number = relative + offset
        if not line.isdigit():
            raise TraceFormatError(
                f"expected one non-negative integer timestamp_ms per line (Mahimahi), got {line!r}",
                path=path,
                line=number,
            )
        stamp = int(line)
        if stamp < last:
            raise TraceFormatError(
                f"timestamp_ms goes backwards: {stamp} after {last}; timestamps must be non-decreasing",
                path=path,
                line=number,
            )
        stamps_ms.append(stamp)
        last = stamp
    return stamps_ms, last


def parse_sabre(text: str, path: str | Path, family: str) -> Trace:
    """Parse a Sabre network JSON list (see :func:`traces.readers.read_sabre_network`)."""
    try:
        periods = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TraceFormatError(f"invalid JSON ({exc.msg}, column {exc.colno}); expected a list of "
                               "Sabre network periods", path=path, line=exc.lineno) from None
    if not isinstance(periods, list):
        raise TraceFormatError(
            f"expected a JSON list of periods {{'duration_ms', 'bandwidth_kbps', 'latency_ms'}}, "
            f"got a {type(periods).__name__}",
            path=path,
        )
    durations_ms = np.empty(len(periods))
    bandwidths_kbps = np.empty(len(periods))
    for i, period in enumerate(periods):
        durations_ms[i] = _sabre_field(period, "duration_ms", i, path)
        bandwidths_kbps[i] = _sabre_field(period, "bandwidth_kbps", i, path)
        if "latency_ms" in period:
            _sabre_field(period, "latency_ms", i, path)
    if not periods:
        raise TraceFormatError("the period list is empty; expected at least one period", path=path)
    times_s = np.concatenate(([0.0], np.cumsum(ms_to_s(durations_ms))))
    rates_bps = kbps_to_bps(np.concatenate((bandwidths_kbps[:1], bandwidths_kbps)))
    return _build(path, family, times_s, rates_bps, "Sabre network periods")


def _sabre_field(period: object, key: str, index: int, path: str | Path) -> float:
    where = f"period {index + 1} (1-based)"
    if not isinstance(period, dict):
        raise TraceFormatError(f"{where} is a {type(period).__name__}; expected an object with "
                               "'duration_ms', 'bandwidth_kbps', 'latency_ms'", path=path)
    if key not in period:
        raise TraceFormatError(f"{where} is missing key {key!r} (has {sorted(period)})", path=path)
    value = period[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise TraceFormatError(f"{where}: {key} is {value!r}; expected a finite number >= 0", path=path)
    return float(value)


def _build(path: str | Path, family: str, times_s: FloatArray, rates_bps: FloatArray, expected: str) -> Trace:
    if times_s.size == 0:
        raise TraceFormatError(f"the file holds no samples; expected {expected}", path=path)
    if times_s.size == 1:
        raise TraceFormatError(
            f"the file holds a single sample; a trace needs at least 2 samples ({expected})", path=path
        )
    return Trace(times_s, rates_bps, name=Path(path).name, family=family, source=str(path))
