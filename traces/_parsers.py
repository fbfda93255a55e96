"""Private text parsers behind :mod:`traces.readers`: each turns decoded file text into a Trace.

Every check that can point at a line does so; the messages start with ``<file>:<line>:``.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from traces._text import content_lines
from traces.errors import ConfigError, TraceFormatError
from traces.types import FloatArray, Trace
from traces.units import BITS_PER_BYTE, BPS_PER_KBPS, BPS_PER_MBPS, kbps_to_bps, mbps_to_bps, ms_to_s

MAHIMAHI_PACKET_BYTES = 1500  # one Mahimahi delivery opportunity carries one MTU-sized packet
FORMATS = ("cooked", "mahimahi", "sabre", "csv")
_COOKED_COLUMNS = ("time_s", "throughput_mbit_s")
_CSV_RATE_TO_BPS = {"throughput_bps": 1.0, "throughput_kbps": BPS_PER_KBPS, "throughput_mbps": BPS_PER_MBPS}
_SNIFF_LINES = 20  # content lines looked at when sniffing the format


def detect_format(path: Path, text: str) -> str:
    """One of :data:`FORMATS`, from the suffix, else from the first content lines."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return "sabre"
    if suffix in (".down", ".up"):
        return "mahimahi"
    if suffix == ".csv":
        return "csv"
    head = [line for _, line in itertools.islice(content_lines(text), _SNIFF_LINES)]
    if head and all(line.isdigit() for line in head):
        return "mahimahi"
    return "cooked"


def parse_cooked(text: str, path: str | Path, family: str) -> Trace:
    """Parse cooked ``time_s throughput_mbit_s`` text."""
    times, rates_mbps = _parse_rows(content_lines(text), path, _COOKED_COLUMNS, sep=None)
    return _build(path, family, times, mbps_to_bps(rates_mbps), "lines 'time_s throughput_mbit_s'")


def parse_csv(text: str, path: str | Path, family: str) -> Trace:
    """Parse CSV text with a ``time_s,throughput_<unit>`` header."""
    lines = content_lines(text)
    first = next(lines, None)
    accepted = " or ".join(f"'time_s,{c}'" for c in _CSV_RATE_TO_BPS)
    if first is None:
        raise TraceFormatError(f"the file is empty; expected a header {accepted} and rows", path=path)
    number, header = first
    columns = tuple(c.strip().lower() for c in header.split(","))
    if len(columns) != 2 or columns[0] != "time_s" or columns[1] not in _CSV_RATE_TO_BPS:
        raise TraceFormatError(f"expected a header {accepted}, got {header!r}", path=path, line=number)
    times, rates = _parse_rows(lines, path, columns, sep=",")
    return _build(path, family, times, rates * _CSV_RATE_TO_BPS[columns[1]], f"rows '{header}'")


def _parse_rows(
    lines: Iterable[tuple[int, str]], path: str | Path, columns: tuple[str, ...], *, sep: str | None
) -> tuple[FloatArray, FloatArray]:
    """Parse two-column rows ``time, rate`` with per-line checks; returns two float arrays."""
    want = (" " if sep is None else sep).join(columns)
    times: list[float] = []
    rates: list[float] = []
    last_time, last_line = -math.inf, 0
    for number, line in lines:
        tokens = line.split(sep)
        if len(tokens) != 2:
            raise TraceFormatError(f"expected 2 columns '{want}', got {len(tokens)}", path=path, line=number)
        values = [_number(tok.strip(), col, path, number) for tok, col in zip(tokens, columns, strict=True)]
        if values[0] < last_time:
            raise TraceFormatError(
                f"{columns[0]} goes backwards: {values[0]!r} after {last_time!r} on line {last_line}; "
                "sample times must be non-decreasing",
                path=path,
                line=number,
            )
        last_time, last_line = values[0], number
        times.append(values[0])
        rates.append(values[1])
    return np.asarray(times, dtype=np.float64), np.asarray(rates, dtype=np.float64)


def _number(token: str, column: str, path: str | Path, line: int) -> float:
    try:
        value = float(token)
    except ValueError:
        msg = f"expected a number for {column}, got {token!r}"
        raise TraceFormatError(msg, path=path, line=line) from None
    if not math.isfinite(value) or value < 0:
        raise TraceFormatError(f"{column} is {token!r}; expected a finite number >= 0", path=path, line=line)
    return value


def parse_mahimahi(text: str, path: str | Path, family: str, bin_s: float) -> Trace:
    """Parse Mahimahi timestamps and bin them (see :func:`traces.readers.read_mahimahi_trace`)."""
    if not (isinstance(bin_s, int | float) and math.isfinite(bin_s) and bin_s > 0):
        msg = f"bin_s={bin_s!r} must be a finite number of seconds > 0"
        raise ConfigError(msg, field="bin_s", value=bin_s)
    stamps_ms: list[int] = []
    last = 0
    for number, line in content_lines(text):
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
    if not stamps_ms:
        raise TraceFormatError("the file is empty; expected one integer timestamp_ms per line", path=path)
    bin_ms = bin_s * 1000.0
    bins = np.floor_divide(np.asarray(stamps_ms, dtype=np.float64), bin_ms).astype(np.int64)
    counts = np.bincount(bins)
    rates_bps = counts * (MAHIMAHI_PACKET_BYTES * BITS_PER_BYTE) / bin_s
    times_s = np.arange(counts.size + 1, dtype=np.float64) * bin_s
    return _build(path, family, times_s, np.concatenate(([rates_bps[0]], rates_bps)), "Mahimahi timestamps")


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
