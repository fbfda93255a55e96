"""Throughput trace readers and writers: Pensieve cooked text, Mahimahi, Sabre network JSON and CSV.

Every reader converts to the project's units on load (seconds, bits per second) and returns a
:class:`~traces.types.Trace`. Malformed input raises :class:`~traces.errors.TraceFormatError` whose message
starts with ``<file>:<line>:`` (the line where applicable) and says what was expected.

The line formats (cooked, CSV, Mahimahi) are read in blocks of a few MiB and parsed by numpy, so a large file
costs little more memory than the arrays of its trace (Mahimahi keeps only per-bin counts); Sabre JSON is
read whole.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from traces import _parsers
from traces._text import read_text
from traces.datadir import DATA_DIR_ENV, TRACES_SUBDIR, list_trace_files
from traces.errors import ConfigError, DataDirError
from traces.types import Trace
from traces.units import bps_to_mbps

__all__ = [
    "FORMATS",
    "default_family",
    "list_trace_files",
    "read_cooked_trace",
    "read_csv_trace",
    "read_mahimahi_trace",
    "read_sabre_network",
    "read_trace",
    "read_trace_dir",
    "write_cooked_trace",
]

logger = logging.getLogger(__name__)

FORMATS = _parsers.FORMATS
_WRITE_LINES = 65536  # lines formatted at a time by write_cooked_trace


def read_cooked_trace(path: str | Path, *, family: str = "") -> Trace:
    """Read a Pensieve "cooked" trace: lines ``time_s<whitespace>throughput_Mbit/s`` (1 Mbit/s = 10^6 bit/s).

    No header; blank lines and lines starting with ``#`` are skipped. Line ``i`` gives the throughput of
    the interval that ends at its time (the :class:`Trace` convention).

    Args:
        path: the trace file.
        family: the trace family stored on the trace.

    Returns:
        The trace, named after the file.

    Raises:
        TraceFormatError: the file is empty, binary, or has a bad line (message names file and line).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "t.txt"
    ...     _ = p.write_text("0.0\\t1.5\\n1.0\\t2.0\\n")
    ...     read_cooked_trace(p).throughput_bps.tolist()
    [1500000.0, 2000000.0]
    """
    with _parsers.LineBlocks(path, expected="lines 'time_s throughput_mbit_s'") as blocks:
        return _parsers.read_cooked(blocks, family)


def read_csv_trace(path: str | Path, *, family: str = "") -> Trace:
    """Read a CSV trace with header ``time_s,throughput_bps`` (or ``throughput_kbps``/``throughput_mbps``).

    Args:
        path: the CSV file.
        family: the trace family stored on the trace.

    Returns:
        The trace, named after the file.

    Raises:
        TraceFormatError: unknown header or a bad row (message names file and line).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "t.csv"
    ...     _ = p.write_text("time_s,throughput_mbps\\n0,1\\n2,3\\n")
    ...     read_csv_trace(p).throughput_bps.tolist()
    [1000000.0, 3000000.0]
    """
    with _parsers.LineBlocks(path, expected="a 'time_s,throughput_bps' header and rows") as blocks:
        return _parsers.read_csv(blocks, family)


def read_mahimahi_trace(path: str | Path, *, family: str = "", bin_s: float = 1.0) -> Trace:
    """Read a Mahimahi trace and convert it to piecewise-constant throughput over bins of ``bin_s``.

    Each line is one integer millisecond timestamp at which one 1500-byte packet may be delivered
    (repeated timestamps are several packets; files often start with many zeros). Opportunity ``t_ms``
    falls in bin ``k = floor(t_ms / (1000 * bin_s))``; there are ``K = k_last + 1`` bins and the last one
    is counted as a full bin. Throughput of bin ``k`` = opportunities in bin × 1500 × 8 bits / ``bin_s``.
    The trace has samples at bin ends ``0, bin_s, ..., K * bin_s``; the sample at time 0 repeats bin 0.

    Args:
        path: the Mahimahi file (``.down`` or ``.up``).
        family: the trace family stored on the trace.
        bin_s: bin width in seconds (> 0).

    Returns:
        The binned trace, named after the file.

    Raises:
        TraceFormatError: a line is not a non-negative integer, or timestamps decrease.
        ConfigError: ``bin_s`` is not a positive finite number.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "link.down"
    ...     _ = p.write_text("0\\n0\\n500\\n1200\\n")
    ...     t = read_mahimahi_trace(p)
    >>> t.times_s.tolist(), t.throughput_bps.tolist()
    ([0.0, 1.0, 2.0], [36000.0, 36000.0, 12000.0])
    """
    with _parsers.LineBlocks(path, expected="one integer millisecond timestamp per line (Mahimahi)") as blocks:
        return _parsers.read_mahimahi(blocks, family, bin_s)


def read_sabre_network(path: str | Path, *, family: str = "") -> Trace:
    """Read a Sabre network JSON: a list of ``{"duration_ms", "bandwidth_kbps", "latency_ms"}`` periods.

    Samples are placed at the cumulative period ends, with a first sample ``(0, first bandwidth)``, so
    period ``k`` gives the throughput of the interval that ends at its end time. ``latency_ms`` is only
    checked to be a number >= 0 if present; it is not stored (the simulator models RTT separately).

    Args:
        path: the JSON file.
        family: the trace family stored on the trace.

    Returns:
        The trace, named after the file.

    Raises:
        TraceFormatError: invalid JSON (with line), not a list, or a period with a missing/bad key.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "net.json"
    ...     _ = p.write_text('[{"duration_ms": 2000, "bandwidth_kbps": 500, "latency_ms": 20}]')
    ...     t = read_sabre_network(p)
    >>> t.times_s.tolist(), t.throughput_bps.tolist()
    ([0.0, 2.0], [500000.0, 500000.0])
    """
    text = read_text(path, expected="a JSON list of Sabre network periods")
    return _parsers.parse_sabre(text, path, family)


def read_trace(path: str | Path, *, family: str | None = None, fmt: str | None = None) -> Trace:
    """Read a trace in any supported format, detected from the suffix and, failing that, the content.

    ``.json`` → Sabre network; ``.down``/``.up`` → Mahimahi; ``.csv`` → CSV; otherwise a file whose first
    lines are single integers → Mahimahi, else cooked.

    Args:
        path: the trace file.
        family: the trace family; by default the folder relative to ``$ABR_DATA_DIR/traces`` (e.g.
            ``"fcc/test"``), else relative to the nearest ancestor folder named ``traces``, else the name
            of the parent folder.
        fmt: force one of :data:`FORMATS` instead of detecting it.

    Returns:
        The trace.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     p = Path(d) / "traces" / "fcc" / "t1"
    ...     p.parent.mkdir(parents=True)
    ...     _ = p.write_text("0 1\\n1 2\\n")
    ...     t = read_trace(p)
    >>> t.family, t.name, t.mean_throughput_bps
    ('fcc', 't1', 2000000.0)
    """
    if fmt is not None and fmt not in FORMATS:
        raise ConfigError(f"fmt={fmt!r} is not a trace format; use one of {FORMATS}", field="fmt", value=fmt)
    fam = default_family(path) if family is None else family
    expected = "a trace file (cooked, Mahimahi, Sabre JSON or CSV)"
    if (fmt or _parsers.format_from_suffix(Path(path))) == "sabre":
        return _parsers.parse_sabre(read_text(path, expected=expected), path, fam)
    with _parsers.LineBlocks(path, expected=expected) as blocks:
        kind = fmt or _parsers.sniff_format(Path(path), blocks)
        if kind == "mahimahi":
            return _parsers.read_mahimahi(blocks, fam, 1.0)
        if kind == "csv":
            return _parsers.read_csv(blocks, fam)
        return _parsers.read_cooked(blocks, fam)


def read_trace_dir(directory: str | Path, *, family: str | None = None) -> list[Trace]:
    """Read every trace file in ``directory`` (see :func:`list_trace_files`), sorted by name.

    Args:
        directory: the folder of trace files (not searched recursively).
        family: the family for every trace; default as in :func:`read_trace`.

    Returns:
        The traces in file-name order.

    Raises:
        DataDirError: the folder does not exist or holds no trace files.
        TraceFormatError: a file is malformed.

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as d:
    ...     for i in range(3):
    ...         _ = (Path(d) / f"t{i}").write_text(f"0 1\\n1 {i + 1}\\n")
    ...     [t.name for t in read_trace_dir(d, family="demo")]
    ['t0', 't1', 't2']
    """
    folder = Path(directory)
    files = list_trace_files(folder)
    if not files:
        subdirs = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        hint = f"; it has sub-folders {', '.join(subdirs)}: pass one of them" if subdirs else ""
        raise DataDirError(f"trace directory {folder} holds no trace files{hint}")
    traces = [read_trace(f, family=family) for f in files]
    logger.info("read %d traces from %s (%.1f h in total)", len(traces), folder,
                sum(t.duration_s for t in traces) / 3600.0)
    return traces


def write_cooked_trace(trace: Trace, path: str | Path) -> Path:
    """Write ``trace`` as a cooked file (``time_s<TAB>Mbit/s``), with round-trip float precision.

    Args:
        trace: the trace to write.
        path: the output file (its folder must exist).

    Returns:
        The path written.

    >>> import tempfile
    >>> import numpy as np
    >>> t = Trace(np.array([0.0, 1.0]), np.array([1e6, 2.5e6]), name="x")
    >>> with tempfile.TemporaryDirectory() as d:
    ...     read_cooked_trace(write_cooked_trace(t, Path(d) / "x")).throughput_bps.tolist()
    [1000000.0, 2500000.0]
    """
    out = Path(path)
    rates_mbps = bps_to_mbps(trace.throughput_bps)
    with out.open("w", encoding="utf-8") as handle:
        for start in range(0, trace.times_s.size, _WRITE_LINES):
            stop = start + _WRITE_LINES
            handle.write("".join(f"{t!r}\t{r!r}\n" for t, r in zip(trace.times_s[start:stop].tolist(),
                                                                   rates_mbps[start:stop].tolist(), strict=True)))
    return out


def default_family(path: str | Path) -> str:
    """The default family of a trace file: its folder relative to the data set root (see :func:`read_trace`).

    >>> default_family("/somewhere/traces/norway/test/norway_bus_1")
    'norway/test'
    """
    parent = Path(path).resolve().parent
    env_dir = os.environ.get(DATA_DIR_ENV)
    if env_dir:
        root = (Path(env_dir).expanduser() / TRACES_SUBDIR).resolve()
        if parent.is_relative_to(root) and parent != root:
            return parent.relative_to(root).as_posix()
    for ancestor in parent.parents:
        if ancestor.name == TRACES_SUBDIR:
            return parent.relative_to(ancestor).as_posix()
    return parent.name
