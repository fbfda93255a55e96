"""The line-format readers stream: large files give the values of a line-by-line parse, errors deep in a file
name their line, and memory stays within a small multiple of the file size.

Blocks are made small (``BLOCK_BYTES``) in most tests, so a file of a few MB crosses hundreds of block
boundaries, as a file of hundreds of MB does with the default size.
"""

from __future__ import annotations

import math
import re
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from traces import _parsers
from traces.errors import TraceFormatError
from traces.readers import read_cooked_trace, read_csv_trace, read_mahimahi_trace, read_trace

WriteFile = Callable[..., Path]
N_LINES = 200_000


@pytest.fixture(params=[_parsers.BLOCK_BYTES, 4096], ids=["default-blocks", "small-blocks"])
def block_bytes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(_parsers, "BLOCK_BYTES", request.param)
    return int(request.param)


def _reference_rows(text: str, sep: str | None, skip_header: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Every content line split and converted with ``float``: what the readers did line by line."""
    times, rates = [], []
    lines = [line.strip() for line in text.split("\n")]
    lines = [line for line in lines if line and not line.startswith("#")]
    for line in lines[1:] if skip_header else lines:
        t, r = line.split(sep)
        times.append(float(t.strip()))
        rates.append(float(r.strip()))
    return np.array(times), np.array(rates)


def _varied_cooked_text(rng: np.random.Generator, n: int) -> str:
    """Cooked lines in the forms real files use, with comments, blank lines and CRLF endings here and there."""
    times = np.cumsum(rng.integers(0, 3, n)) * 0.25
    rates = rng.uniform(0.0, 40.0, n)
    forms = ["{t!r}\t{r:.4f}\n", "{t:.3f} {r:.6e}\n", "{t:.2f}   {r!r}\r\n", " {t!r} {r:.0f} \n"]
    lines = [forms[i % 4].format(t=float(t), r=float(r)) for i, (t, r) in enumerate(zip(times, rates, strict=True))]
    for i in range(0, n, 25_013):
        lines[i] = "# a comment\n\n" + lines[i]
    return "".join(lines)


def test_a_large_cooked_trace_parses_to_the_line_by_line_values(write_file: WriteFile, block_bytes: int) -> None:
    text = _varied_cooked_text(np.random.default_rng(0), N_LINES)
    path = write_file("big/trace", text)
    times, rates_mbps = _reference_rows(text, None)
    for trace in (read_cooked_trace(path), read_trace(path)):
        assert trace.times_s.size == N_LINES
        np.testing.assert_array_equal(trace.times_s, times)
        np.testing.assert_array_equal(trace.throughput_bps, rates_mbps * 1e6)


def test_a_large_csv_trace_parses_to_the_line_by_line_values(write_file: WriteFile, block_bytes: int) -> None:
    rng = np.random.default_rng(1)
    rows = [f"{t!r},{r!r}\n" for t, r in zip((np.arange(N_LINES) * 0.5).tolist(), rng.uniform(0, 5e3, N_LINES).tolist(),
                                             strict=True)]
    text = "# made by a test\ntime_s, throughput_kbps\n" + "".join(rows)
    path = write_file("big/trace.csv", text)
    times, rates_kbps = _reference_rows(text, ",", skip_header=True)
    trace = read_csv_trace(path)
    np.testing.assert_array_equal(trace.times_s, times)
    np.testing.assert_array_equal(trace.throughput_bps, rates_kbps * 1e3)


def test_a_large_mahimahi_trace_bins_like_the_whole_list(write_file: WriteFile, block_bytes: int) -> None:
    stamps = np.cumsum(np.random.default_rng(2).integers(0, 4, N_LINES))
    path = write_file("big/link.down", "".join(f"{s}\n" for s in stamps.tolist()))
    counts = np.bincount(stamps // 1000)
    for trace in (read_mahimahi_trace(path), read_trace(path)):
        np.testing.assert_array_equal(trace.times_s, np.arange(counts.size + 1, dtype=np.float64))
        np.testing.assert_array_equal(trace.throughput_bps[1:], counts * 1500 * 8.0)
        assert trace.throughput_bps[0] == trace.throughput_bps[1]


def _numbered(path: Path, line: int) -> str:
    return re.escape(f"{path}:{line}: ")


def test_errors_deep_in_a_large_file_name_their_line(write_file: WriteFile, block_bytes: int) -> None:
    lines = [f"{i} 1.5\n" for i in range(N_LINES)]
    lines[150_000] = "150000 fast\n"
    path = write_file("bad/word", "".join(lines))
    with pytest.raises(TraceFormatError, match=_numbered(path, 150_001) + "expected a number for throughput_mbit_s, "
                       "got 'fast'"):
        read_cooked_trace(path)
    lines[150_000] = "150000 1.5\n"
    lines[170_000] = "3 1.5\n"  # the previous sample, line 170,000, may sit in the previous block
    path = write_file("bad/backwards", "".join(lines))
    with pytest.raises(TraceFormatError, match=_numbered(path, 170_001) + r"time_s goes backwards: 3.0 after "
                       r"169999.0 on line 170000; sample times must be non-decreasing"):
        read_cooked_trace(path)
    stamps = [f"{i}\n" for i in range(N_LINES)]
    stamps[120_000] = "5\n"
    path = write_file("bad/link.down", "".join(stamps))
    with pytest.raises(TraceFormatError, match=_numbered(path, 120_001) + "timestamp_ms goes backwards: 5 after "
                       "119999"):
        read_mahimahi_trace(path)


def test_a_bad_byte_late_in_the_file_is_reported_before_an_earlier_bad_line(write_file: WriteFile,
                                                                            block_bytes: int) -> None:
    lines = [f"{i} 1.5\n".encode() for i in range(N_LINES)]
    lines[10] = b"10 -1\n"
    lines[190_000] = b"190000 1.5 # caf\xe9\n"
    path = write_file("bad/latin1", b"".join(lines))
    with pytest.raises(TraceFormatError, match=_numbered(path, 190_001) + r"cannot be decoded as UTF-8 text "
                       r"\(bad byte 0xe9"):
        read_cooked_trace(path)


def test_a_nul_byte_near_the_start_makes_a_binary_file_whatever_the_block_size(write_file: WriteFile,
                                                                              block_bytes: int) -> None:
    path = write_file("bad/binary", b"0 1\n" * 1500 + b"\x00" + b"1 2\n" * 10)
    with pytest.raises(TraceFormatError, match=_numbered(path, 1501) + r"looks like a binary file \(NUL byte"):
        read_trace(path)


def test_memory_stays_within_a_small_multiple_of_the_file(write_file: WriteFile,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parsers, "BLOCK_BYTES", 64 * 1024)
    text = _varied_cooked_text(np.random.default_rng(3), N_LINES)
    path = write_file("big/trace", text)
    size = path.stat().st_size
    del text
    tracemalloc.start()
    try:
        trace = read_cooked_trace(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trace.times_s.size == N_LINES
    # The trace keeps two float64 arrays (16 bytes a line, about 0.8x this file); reading the whole text and
    # splitting it into lines took about 9x the file.
    assert peak < 3 * size, f"peak {peak / size:.1f}x the file size"


def test_mahimahi_memory_does_not_grow_with_the_timestamps(write_file: WriteFile,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_parsers, "BLOCK_BYTES", 64 * 1024)
    peaks, sizes = [], []
    for n in (N_LINES, 4 * N_LINES):
        path = write_file(f"big/link_{n}.up", "".join(f"{s}\n" for s in range(0, 4 * n, 4)))
        tracemalloc.start()
        try:
            trace = read_mahimahi_trace(path)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
        assert trace.duration_s == math.ceil(4 * n / 1000)
        sizes.append(path.stat().st_size)
    # Only per-bin counts are kept: four times the timestamps cost no more (the list of them cost 9x the file).
    assert peaks[1] < 1.1 * peaks[0] and peaks[1] < 0.2 * sizes[1], (peaks, sizes)
