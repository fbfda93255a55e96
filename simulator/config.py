"""Simulator configuration and presets.

Units: seconds, bits, bits per second. Defaults exist only as field defaults; presets are named configs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

from simulator.errors import ConfigError
from traces.types import Video


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Link and player model.

    Args:
        link_rtt_s: round-trip time added once per chunk request, in seconds.
        payload_efficiency: share of the trace's throughput that carries chunk payload (packet headers
            take the rest).
        rtt_advances_trace: whether the trace clock runs during the request RTT. The research simulator
            freezes it (the RTT is added to the download time only); a physical link lets it run.
        max_buffer_s: playback buffer capacity in seconds. When a download leaves more than this in the
            buffer, the player idles (the link clock runs on, nothing is delivered) until it is back under.
        idle_quantum_s: the idle time is rounded up to a multiple of this, in seconds.
        first_chunk_quality_idx: quality of the first chunk, chosen by the player rather than the policy
            (the research simulator starts at level 1); ``None`` lets the policy choose it.
        max_chunks: play at most this many chunks of the video (the research simulator plays 48 of 49).
        startup_delay_as_rebuffer: whether the wait for the first chunk counts as rebuffering (the
            research simulator's convention: playback "starts" at time 0 with an empty buffer). If ``False``
            playback starts once ``startup_threshold_s`` of video (at least one chunk) is buffered and the
            wait is reported as startup delay.
        startup_threshold_s: buffered seconds needed to start playback when ``startup_delay_as_rebuffer``
            is ``False``.
        noise_low: lower bound of the multiplicative download-time noise U(noise_low, noise_high), drawn
            per chunk from the session's generator. ``1.0``/``1.0`` means no noise.
        noise_high: upper bound of that noise.

    >>> SimConfig(max_buffer_s=30.0).max_buffer_s
    30.0
    >>> SimConfig(max_buffer_s=-5.0)
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: max_buffer_s=-5.0 must be > 0
    """

    link_rtt_s: float = 0.08  # Pensieve LINK_RTT = 80 ms
    payload_efficiency: float = 0.95  # Pensieve PACKET_PAYLOAD_PORTION
    rtt_advances_trace: bool = False
    max_buffer_s: float = 60.0  # Pensieve BUFFER_THRESH = 60 s
    idle_quantum_s: float = 0.5  # Pensieve DRAIN_BUFFER_SLEEP_TIME = 500 ms
    first_chunk_quality_idx: int | None = 1  # Pensieve DEFAULT_QUALITY
    max_chunks: int | None = 48  # Pensieve TOTAL_VIDEO_CHUNCK
    startup_delay_as_rebuffer: bool = True
    startup_threshold_s: float = 0.0
    noise_low: float = 1.0
    noise_high: float = 1.0

    def __post_init__(self) -> None:
        _positive(self, "payload_efficiency")
        if self.payload_efficiency > 1:
            raise ConfigError(f"payload_efficiency={self.payload_efficiency} must be in (0, 1]")
        _nonnegative(self, "link_rtt_s")
        _positive(self, "max_buffer_s")
        _positive(self, "idle_quantum_s")
        _nonnegative(self, "startup_threshold_s")
        if self.first_chunk_quality_idx is not None and self.first_chunk_quality_idx < 0:
            raise ConfigError(f"first_chunk_quality_idx={self.first_chunk_quality_idx} must be >= 0 or None")
        if self.max_chunks is not None and self.max_chunks < 1:
            raise ConfigError(f"max_chunks={self.max_chunks} must be >= 1 or None")
        _positive(self, "noise_low")
        if not (math.isfinite(self.noise_high) and self.noise_high >= self.noise_low):
            raise ConfigError(f"noise_high={self.noise_high} must be >= noise_low={self.noise_low}")

    @property
    def is_noisy(self) -> bool:
        return self.noise_low != 1.0 or self.noise_high != 1.0

    def replace(self, **changes: Any) -> SimConfig:
        """A copy with some fields changed (validated again)."""
        return from_dict({**dataclasses.asdict(self), **changes}, where="SimConfig")


def fit_video(video: Video, config: SimConfig) -> Video:
    """The part of ``video`` a session under ``config`` plays (``max_chunks``), checked against the config.

    Raises:
        ConfigError: ``first_chunk_quality_idx`` is not a level of the video's ladder.

    >>> fit_video(Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=60), SimConfig()).n_chunks
    48
    """
    if config.max_chunks is not None and video.n_chunks > config.max_chunks:
        video = video.truncated(config.max_chunks)
    if config.first_chunk_quality_idx is not None and config.first_chunk_quality_idx >= video.n_levels:
        raise ConfigError(
            f"first_chunk_quality_idx={config.first_chunk_quality_idx} is not a level of the video's "
            f"{video.n_levels}-level ladder"
        )
    return video


def _positive(config: object, name: str) -> None:
    value = getattr(config, name)
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value!r} must be > 0")


def _nonnegative(config: object, name: str) -> None:
    value = getattr(config, name)
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{name}={value!r} must be >= 0")


def from_dict(values: dict[str, Any], *, where: str = "config") -> SimConfig:
    """Build a :class:`SimConfig` from a mapping, rejecting unknown keys.

    >>> from_dict({"max_buffer_s": 30}).max_buffer_s
    30
    >>> from_dict({"max_bufer_s": 30})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: config: unknown key 'max_bufer_s'; allowed keys: first_chunk_quality_idx, ...
    """
    allowed = {f.name for f in dataclasses.fields(SimConfig)}
    for key in values:
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r}; allowed keys: {', '.join(sorted(allowed))}")
    return SimConfig(**values)


#: Named presets. ``pensieve`` reproduces the research simulator of Mao et al. (SIGCOMM 2017) in its
#: deterministic evaluation mode; ``pensieve-train`` adds its training-mode download noise U(0.9, 1.1).
#: ``realistic`` is a physical variant: the trace runs during the RTT, startup delay is reported
#: separately, the policy chooses the first chunk and the whole video is played.
PRESETS: dict[str, SimConfig] = {
    "pensieve": SimConfig(),
    "pensieve-train": SimConfig(noise_low=0.9, noise_high=1.1),
    "realistic": SimConfig(
        rtt_advances_trace=True,
        first_chunk_quality_idx=None,
        max_chunks=None,
        startup_delay_as_rebuffer=False,
        startup_threshold_s=0.0,
    ),
}


def preset(name: str) -> SimConfig:
    """The named preset.

    >>> preset("pensieve").link_rtt_s
    0.08
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}") from None
