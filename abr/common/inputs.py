"""Loading an evaluation's inputs from specs: trace sets and videos by path or data-set name.

A spec is an existing path or a name under the data directory (``--data-dir``, else ``$ABR_DATA_DIR``):
``traces/<spec>`` for trace sets (e.g. ``"fcc/test"``), ``videos/<spec>`` for videos (e.g.
``"envivio_dash3"``). Without a data directory the default video is a synthetic CBR video with the
Envivio ladder (:data:`traces.videos.ENVIVIO_LADDER_BPS`), 48 chunks of 4 s: :func:`envivio_cbr_video`.

A video's bitrate ladder comes from ``ladder_kbps`` (the CLI's ``--ladder-kbps``), else the folder's
``ladder.json``, else its ``Manifest.mpd`` (see :func:`traces.videos.read_pensieve_video`); the MERINA
folders of the data set have neither, so they need ``--ladder-kbps`` (their PROVENANCE.md names the Envivio
ladder).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from abr.common.memory import available_memory_bytes, check_fits
from traces.datadir import configured_data_dir, resolve_traces, resolve_video
from traces.errors import ConfigError, DataDirError
from traces.readers import read_trace, read_trace_dir
from traces.synthetic import MarkovTraceConfig, check_seed_and_count, generate_trace_set
from traces.types import Trace, Video
from traces.units import kbps_to_bps, mbps_to_bps
from traces.videos import ENVIVIO_CHUNK_DURATION_S, ENVIVIO_N_CHUNKS, check_ladder, read_video
from traces.videos import envivio_cbr_video as _envivio_cbr_video

logger = logging.getLogger(__name__)

DEFAULT_VIDEO = "envivio_dash3"
SYNTHETIC_SET = "synthetic"
#: The CLI option (and, as ``ladder_kbps``, the training-config field) that gives a video's ladder.
LADDER_OPTION = "--ladder-kbps"
# Memory of a synthetic trace set (bytes; measured 6 KB a trace and 29 KB of results a session, rounded up).
FLOAT64_BYTES = 8
TRACE_OVERHEAD_BYTES = 1024  # the Trace object, its name and its seed, beyond its two sample arrays
SESSION_RESULT_BYTES = 32 * 1024  # what an evaluation keeps of one session (chunk records, metrics)


@dataclass(frozen=True, slots=True)
class TraceSetInput:
    """A loaded trace set.

    Attributes:
        name: the set's name in results (the spec as given, or ``"synthetic"``).
        path: the file or folder it was read from (``None`` for synthetic traces).
        traces: the traces, sorted by name.
        scale_factor: the factor the traces' throughput was multiplied by (:func:`rescaled_trace_set`).
    """

    name: str
    path: Path | None
    traces: tuple[Trace, ...]
    scale_factor: float = 1.0

    @property
    def total_hours(self) -> float:
        return sum(t.duration_s for t in self.traces) / 3600.0

    @property
    def mean_throughput_bps(self) -> float:
        """Time-weighted mean throughput over every trace of the set, in bits per second."""
        total_s = sum(t.duration_s for t in self.traces)
        return sum(t.mean_throughput_bps * t.duration_s for t in self.traces) / total_s


def load_trace_set(spec: str, data_dir: str | Path | None = None) -> TraceSetInput:
    """Load the trace set named by ``spec``: a trace file, a folder of trace files, or a data-set name.

    Args:
        spec: a path, or a name under ``<data_dir>/traces`` such as ``"genet_benchmark/fcc-test"``.
        data_dir: the data directory override (else ``$ABR_DATA_DIR``).

    Returns:
        The set, named ``spec``.

    Raises:
        DataDirError: the spec matches nothing, or the folder holds no trace files.
        TraceFormatError: a trace file is malformed (the message names it).
    """
    _require_lookup(spec, data_dir, "trace set")
    path = resolve_traces(spec, data_dir)
    traces = read_trace_dir(path) if path.is_dir() else [read_trace(path)]
    return TraceSetInput(str(spec), path, tuple(sorted(traces, key=lambda t: t.name)))


def synthetic_trace_set(n_traces: int, seed: int) -> TraceSetInput:
    """``n_traces`` seeded synthetic traces (``generate_trace_set``) as a set named ``"synthetic"``.

    Raises:
        ConfigError: a bad seed or count, or a set whose estimated memory (:func:`synthetic_set_bytes`)
            exceeds what the machine has available; nothing is generated then.
    """
    check_seed_and_count(seed, n_traces)
    per_trace = synthetic_set_bytes(1)
    samples = MarkovTraceConfig().n_steps + 1
    check_fits(f"--synthetic {n_traces:,} ({samples} samples a trace, each played at least once)",
               synthetic_set_bytes(n_traces),
               f"use fewer --synthetic traces (at most about {available_memory_bytes() // per_trace:,} fit)")
    return TraceSetInput(SYNTHETIC_SET, None, tuple(generate_trace_set(seed, n_traces)))


def synthetic_set_bytes(n_traces: int) -> int:
    """Estimated memory of ``n_traces`` synthetic traces and one evaluation session's results on each, in bytes.

    >>> synthetic_set_bytes(1000) // 1024  # KiB
    38015
    """
    samples = MarkovTraceConfig().n_steps + 1
    return n_traces * (2 * samples * FLOAT64_BYTES + TRACE_OVERHEAD_BYTES + SESSION_RESULT_BYTES)


def envivio_cbr_video() -> Video:
    """A constant-bitrate stand-in for the Envivio video: its ladder, 48 chunks of 4 s.

    >>> v = envivio_cbr_video()
    >>> v.n_chunks, v.n_levels, float(v.chunk_sizes_bits[0, 0])
    (48, 6, 1200000.0)
    """
    return _envivio_cbr_video(name="envivio_cbr_synthetic")


def has_data_dir(data_dir: str | Path | None = None) -> bool:
    """Whether a data directory is configured (``data_dir``, else ``$ABR_DATA_DIR``).

    Raises:
        DataDirError: one is configured but does not exist or is a file: a mistyped path is named, never
            taken for "no data directory" (which would fall back to synthetic inputs or a misleading message).
    """
    return configured_data_dir(data_dir) is not None


def parse_ladder_kbps(text: str | Sequence[float] | None, *, option: str = LADDER_OPTION
                      ) -> tuple[float, ...] | None:
    """A ladder in kbit/s from ``"300,750,1200"`` (the CLI form) or a sequence of numbers; ``None`` stays ``None``.

    Only the form is checked here (numbers, finite, > 0, strictly increasing); the level count is checked
    against the video when it is read (:func:`load_video`).

    Raises:
        ConfigError: not a comma-separated list of numbers, or a value that is not finite and > 0, or not
            increasing (the message names ``option``).

    >>> parse_ladder_kbps("300, 750,1200")
    (300.0, 750.0, 1200.0)
    >>> parse_ladder_kbps("300,abc")
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: --ladder-kbps='300,abc': expected kbit/s values separated by commas, e.g. 300,750,1200
    """
    if text is None:
        return None
    try:
        if isinstance(text, str):
            values = tuple(float(x) for x in text.split(",") if x.strip())
        else:
            values = tuple(float(x) for x in text)
    except (TypeError, ValueError):
        raise ConfigError(f"{option}={text!r}: expected kbit/s values separated by commas, e.g. 300,750,1200",
                          field=option, value=text) from None
    if not values:
        raise ConfigError(f"{option}={text!r} is empty: give one kbit/s value per level, e.g. 300,750,1200",
                          field=option, value=text)
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ConfigError(f"{option}={text!r}: every bitrate must be a finite number of kbit/s > 0",
                          field=option, value=text)
    if any(b <= a for a, b in zip(values, values[1:])):
        raise ConfigError(f"{option}={text!r}: the bitrates must be strictly increasing (level 0 = lowest)",
                          field=option, value=text)
    return values


def load_video(spec: str | None, data_dir: str | Path | None = None, *,
               ladder_kbps: str | Sequence[float] | None = None, ladder_option: str = LADDER_OPTION) -> Video:
    """Load the video named by ``spec``; with no spec, the default (see the module docstring).

    Args:
        spec: a folder of ``video_size_N`` files, a Sabre ``.json`` manifest, or a name under
            ``<data_dir>/videos``; ``None`` for the default.
        data_dir: the data directory override (else ``$ABR_DATA_DIR``).
        ladder_kbps: the bitrate ladder in kbit/s (``"300,750,..."`` or numbers), one per level, ascending;
            it overrides the folder's ``ladder.json`` and ``Manifest.mpd`` (or a manifest's ladder). With
            the synthetic default video it sets that CBR video's ladder.
        ladder_option: the name of ``ladder_kbps`` in error messages (``"--ladder-kbps"``; training configs
            pass ``"ladder_kbps"``).

    Returns:
        The video.

    Raises:
        DataDirError: the spec matches nothing.
        ConfigError: ``ladder_kbps`` is not a list of increasing numbers > 0.
        VideoFormatError: the video files are malformed, the folder has no ladder (pass ``--ladder-kbps``), its
            ``ladder.json`` and ``Manifest.mpd`` disagree, or the ladder's length is not the level count.
    """
    ladder = parse_ladder_kbps(ladder_kbps, option=ladder_option)
    ladder_bps = None if ladder is None else [kbps_to_bps(k) for k in ladder]
    if spec is None:
        if not has_data_dir(data_dir):
            logger.info("no data directory: using a synthetic CBR video with the Envivio ladder")
            if ladder_bps is None:
                return envivio_cbr_video()
            return Video.cbr(check_ladder(ladder_bps, origin=ladder_option),
                             chunk_duration_s=ENVIVIO_CHUNK_DURATION_S, n_chunks=ENVIVIO_N_CHUNKS,
                             name="cbr_synthetic")
        spec = DEFAULT_VIDEO
    _require_lookup(spec, data_dir, "video")
    return read_video(resolve_video(spec, data_dir), bitrates_bps=ladder_bps, ladder_option=ladder_option)


def _require_lookup(spec: str, data_dir: str | Path | None, what: str) -> None:
    """Name the spec when it is neither an existing path nor resolvable (no data directory)."""
    if not Path(spec).expanduser().exists() and not has_data_dir(data_dir):
        raise DataDirError(
            f"{what} {spec!r} is not an existing file or folder, and no data directory is configured to look "
            "it up as a name: check the path, or set $ABR_DATA_DIR / pass --data-dir"
        )


def rescaled_trace_set(trace_set: TraceSetInput, mean_mbps: float) -> TraceSetInput:
    """The set with every trace scaled by one factor, so that its time-weighted mean is ``mean_mbps``.

    One factor per set keeps the set's shape: the variation within and between its traces. It is how a
    family measured on a much faster (5G) or slower network is made meaningful for a given bitrate ladder.

    >>> t = TraceSetInput("s", None, (Trace(np.array([0.0, 10.0]), np.array([0.0, 4e6]), name="a"),))
    >>> rescaled_trace_set(t, 2.0).traces[0].mean_throughput_bps
    2000000.0
    """
    if not (np.isfinite(mean_mbps) and mean_mbps > 0):
        raise ConfigError(f"scale-mean-mbps={mean_mbps} must be > 0")
    factor = mbps_to_bps(mean_mbps) / trace_set.mean_throughput_bps
    return TraceSetInput(trace_set.name, trace_set.path, tuple(t.scaled(factor) for t in trace_set.traces),
                         scale_factor=factor * trace_set.scale_factor)
