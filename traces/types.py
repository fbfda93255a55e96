"""Trace and video types. Units: seconds, bits, bits per second."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from traces.errors import TraceFormatError, VideoFormatError

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Trace:
    """Piecewise-constant throughput over time.

    Sample ``i`` is ``(times_s[i], throughput_bps[i])``; throughput ``throughput_bps[i]`` applies to the
    interval ``(times_s[i-1], times_s[i]]`` (the Pensieve convention), so ``throughput_bps[0]`` is never used
    by the link. When a session runs past the last sample the trace loops back to ``times_s[0]``.

    Args:
        times_s: sample times in seconds, non-decreasing, at least two samples.
        throughput_bps: throughput in bits per second, finite and >= 0, not zero everywhere.
        name: a short name (the file name for traces read from disk).
        family: the trace family or data set (``"fcc"``, ``"norway"``, ``"synthetic"`` ...).
        source: the file the trace was read from, if any (used in error messages).

    >>> t = Trace(np.array([0.0, 1.0, 2.0]), np.array([1e6, 1e6, 2e6]), name="demo")
    >>> t.duration_s, t.mean_throughput_bps
    (2.0, 1500000.0)
    """

    times_s: FloatArray
    throughput_bps: FloatArray
    name: str = "trace"
    family: str = ""
    source: str | None = None

    def __post_init__(self) -> None:
        times = np.ascontiguousarray(self.times_s, dtype=np.float64)
        rates = np.ascontiguousarray(self.throughput_bps, dtype=np.float64)
        where = self.source or self.name
        if times.ndim != 1 or rates.ndim != 1 or times.shape != rates.shape:
            raise TraceFormatError(
                f"times_s and throughput_bps must be 1-D arrays of equal length, got shapes "
                f"{times.shape} and {rates.shape}",
                path=where,
            )
        if times.size < 2:
            raise TraceFormatError(
                f"a trace needs at least 2 samples (time, throughput), got {times.size}", path=where
            )
        _check_finite_nonnegative(times, "time", where)
        _check_finite_nonnegative(rates, "throughput", where)
        steps = np.diff(times)
        if np.any(steps < 0):
            i = int(np.argmax(steps < 0)) + 1
            raise TraceFormatError(
                f"time goes backwards at sample {i + 1} ({times[i - 1]} s then {times[i]} s); "
                "sample times must be non-decreasing",
                path=where,
            )
        if times[-1] <= times[0]:
            raise TraceFormatError("the trace spans no time (first and last sample times are equal)", path=where)
        if not np.any(rates[1:] * steps > 0):
            raise TraceFormatError(
                "the trace delivers no data (throughput is zero over its whole span); a session on it would "
                "never finish a download",
                path=where,
            )
        times.flags.writeable = False
        rates.flags.writeable = False
        object.__setattr__(self, "times_s", times)
        object.__setattr__(self, "throughput_bps", rates)

    @property
    def duration_s(self) -> float:
        """Time spanned by the trace, in seconds."""
        return float(self.times_s[-1] - self.times_s[0])

    @property
    def mean_throughput_bps(self) -> float:
        """Time-weighted mean throughput over the trace, in bits per second."""
        return float(np.sum(self.throughput_bps[1:] * np.diff(self.times_s)) / self.duration_s)

    def scaled(self, factor: float) -> Trace:
        """A copy with every throughput multiplied by ``factor`` (> 0)."""
        if not factor > 0:
            raise ValueError(f"scale factor={factor} must be > 0")
        return Trace(self.times_s, self.throughput_bps * factor, self.name, self.family, self.source)


def _check_finite_nonnegative(values: FloatArray, what: str, where: str) -> None:
    bad = ~np.isfinite(values) | (values < 0)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise TraceFormatError(
            f"{what} at sample {i + 1} is {float(values[i])!r}; every {what} must be a finite number >= 0", path=where
        )


@dataclass(frozen=True, slots=True)
class Video:
    """A video: a bitrate ladder, a chunk duration and the real size of every chunk at every level.

    Args:
        bitrates_bps: nominal bitrate of each level in bits per second, strictly increasing.
        chunk_duration_s: playback duration of one chunk in seconds.
        chunk_sizes_bits: ``[n_chunks, n_levels]`` chunk sizes in bits.
        name: a short name.
        source: the file or folder the video was read from, if any (used in error messages).
        ssim_db: optional ``[n_chunks, n_levels]`` perceptual quality of every chunk at every level, SSIM in dB
            (``-10 * log10(1 - SSIM)``, Puffer's convention), as ``abr player content`` measures it; finite.
            ``None`` for a size table without quality (only the ``ssim`` QoE needs it).

    >>> v = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=3)
    >>> v.n_chunks, v.n_levels, float(v.chunk_sizes_bits[0, 1])
    (3, 2, 8000000.0)
    """

    bitrates_bps: FloatArray
    chunk_duration_s: float
    chunk_sizes_bits: FloatArray
    name: str = "video"
    source: str | None = None
    ssim_db: FloatArray | None = None

    def __post_init__(self) -> None:
        where = self.source or self.name
        rates = np.ascontiguousarray(self.bitrates_bps, dtype=np.float64)
        sizes = np.ascontiguousarray(self.chunk_sizes_bits, dtype=np.float64)
        if rates.ndim != 1 or rates.size < 1:
            raise VideoFormatError("bitrates_bps must be a non-empty 1-D ladder", path=where)
        if not np.all(np.isfinite(rates)) or np.any(rates <= 0):
            raise VideoFormatError(f"every bitrate must be a finite number > 0, got {rates.tolist()}", path=where)
        if np.any(np.diff(rates) <= 0):
            raise VideoFormatError(
                f"bitrates must be strictly increasing (level 0 = lowest), got {rates.tolist()}", path=where
            )
        if not (np.isfinite(self.chunk_duration_s) and self.chunk_duration_s > 0):
            raise VideoFormatError(f"chunk_duration_s={self.chunk_duration_s} must be > 0", path=where)
        if sizes.ndim != 2 or sizes.shape[0] < 1:
            raise VideoFormatError(
                f"chunk_sizes_bits must be a [n_chunks, n_levels] matrix, got shape {sizes.shape}", path=where
            )
        if sizes.shape[1] != rates.size:
            raise VideoFormatError(
                f"the ladder has {rates.size} levels but the chunk-size table has {sizes.shape[1]} columns; "
                "give one size column per bitrate level",
                path=where,
            )
        if not np.all(np.isfinite(sizes)) or np.any(sizes <= 0):
            row, col = np.argwhere(~np.isfinite(sizes) | (sizes <= 0))[0]
            raise VideoFormatError(
                f"chunk {row + 1} at level {col} has size {float(sizes[row, col])!r}; sizes must be finite and > 0",
                path=where,
            )
        rates.flags.writeable = False
        sizes.flags.writeable = False
        object.__setattr__(self, "bitrates_bps", rates)
        object.__setattr__(self, "chunk_sizes_bits", sizes)
        object.__setattr__(self, "chunk_duration_s", float(self.chunk_duration_s))
        if self.ssim_db is not None:
            object.__setattr__(self, "ssim_db", _checked_quality(self.ssim_db, sizes.shape, where))

    @property
    def has_quality(self) -> bool:
        """Whether the video carries a per-chunk quality (``ssim_db``)."""
        return self.ssim_db is not None

    @property
    def n_chunks(self) -> int:
        return int(self.chunk_sizes_bits.shape[0])

    @property
    def n_levels(self) -> int:
        return int(self.bitrates_bps.size)

    @property
    def duration_s(self) -> float:
        return self.n_chunks * self.chunk_duration_s

    def truncated(self, n_chunks: int) -> Video:
        """The first ``n_chunks`` chunks of this video."""
        if not 1 <= n_chunks <= self.n_chunks:
            raise VideoFormatError(
                f"n_chunks={n_chunks} must be between 1 and {self.n_chunks} (the video's length)",
                path=self.source or self.name,
            )
        sizes = self.chunk_sizes_bits[:n_chunks]
        quality = None if self.ssim_db is None else self.ssim_db[:n_chunks]
        return Video(self.bitrates_bps, self.chunk_duration_s, sizes, self.name, self.source, quality)

    @classmethod
    def cbr(cls, bitrates_bps: list[float] | FloatArray, *, chunk_duration_s: float, n_chunks: int,
            name: str = "cbr") -> Video:
        """A constant-bitrate video: every chunk at level ``l`` is ``bitrate_l * chunk_duration_s`` bits."""
        rates = np.asarray(bitrates_bps, dtype=np.float64)
        sizes = np.tile(rates * chunk_duration_s, (n_chunks, 1))
        return cls(rates, chunk_duration_s, sizes, name=name)


def _checked_quality(values: object, shape: tuple[int, ...], where: str) -> FloatArray:
    """``values`` as a read-only ``[n_chunks, n_levels]`` float array of finite SSIM dB, or a VideoFormatError."""
    try:
        quality = np.array(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise VideoFormatError(f"ssim_db holds {values!r}; expected a [n_chunks, n_levels] table of numbers (SSIM dB)",
                               path=where) from None
    if quality.shape != shape:
        raise VideoFormatError(
            f"ssim_db has shape {quality.shape} but the chunk-size table is {shape} ([n_chunks, n_levels]); give "
            "one quality per chunk and level, or measure it again with `abr player content`",
            path=where,
        )
    bad = ~np.isfinite(quality)
    if np.any(bad):
        row, col = np.argwhere(bad)[0]
        raise VideoFormatError(
            f"chunk {row + 1} at level {col} has ssim_db {float(quality[row, col])!r}; every quality must be a "
            "finite number (SSIM dB)",
            path=where,
        )
    quality.flags.writeable = False
    return quality


def path_name(path: str | Path) -> str:
    return Path(path).name
