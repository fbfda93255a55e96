"""Rate-based adaptation: the highest bitrate not above the harmonic mean of recent throughputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from simulator.context import PlayerContext
from simulator.errors import ConfigError


def harmonic_mean(values: Sequence[float]) -> float:
    """Harmonic mean of positive values.

    >>> harmonic_mean([1.0, 4.0])
    1.6
    """
    return len(values) / sum(1.0 / v for v in values)


@dataclass(slots=True)
class RateBased:
    """Rate-based policy, as Pensieve's test baseline.

    The throughput estimate is the harmonic mean of the last ``window`` measured throughputs of the
    session (size / download time including RTT); the choice is the highest level whose bitrate does not
    exceed it (level 0 if none does, and for the first decision with no history).

    Args:
        window: number of recent chunks in the estimate.
        safety_factor: the estimate is multiplied by this before choosing (1.0 = as in Pensieve).

    >>> from simulator.context import PlayerContext
    >>> from simulator.records import ChunkOutcome
    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> past = (ChunkOutcome(0, 1, 2e6, 8e6, 0, 3.2, 3.2, 2.5e6, 3.2, 0, 4, 0),)
    >>> RateBased().select(PlayerContext(video, past, buffer_s=4.0))
    1
    """

    window: int = 5
    safety_factor: float = 1.0
    name: str = "rb"

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"window={self.window} must be >= 1")
        if not self.safety_factor > 0:
            raise ConfigError(f"safety_factor={self.safety_factor} must be > 0")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """The estimate uses only the current session's history, held by the context."""

    def select(self, context: PlayerContext) -> int:
        history = context.throughput_history_bps(self.window)
        if not history:
            return 0
        estimate_bps = harmonic_mean(history) * self.safety_factor
        ladder = context.video.bitrates_bps
        below = np.flatnonzero(ladder <= estimate_bps)
        return int(below[-1]) if below.size else 0
