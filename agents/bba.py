"""BBA: buffer-based adaptation (Huang et al., SIGCOMM 2014), in the form of Pensieve's test baseline.

The quality rises linearly with the buffer between a reservoir and reservoir + cushion:
level 0 below the reservoir, the top level at or above reservoir + cushion, else
``int((n_levels - 1) * (buffer - reservoir) / cushion)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from simulator.context import PlayerContext
from simulator.errors import ConfigError


@dataclass(slots=True)
class BBA:
    """Buffer-based policy.

    Args:
        reservoir_s: below this buffer level (seconds) the lowest quality is chosen.
        cushion_s: width of the linear region above the reservoir, in seconds.

    >>> from simulator.context import PlayerContext
    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> BBA().select(PlayerContext(video, (), buffer_s=12.0))
    1
    """

    reservoir_s: float = 5.0
    cushion_s: float = 10.0
    name: str = "bba"

    def __post_init__(self) -> None:
        if not self.reservoir_s >= 0:
            raise ConfigError(f"reservoir_s={self.reservoir_s} must be >= 0")
        if not self.cushion_s > 0:
            raise ConfigError(f"cushion_s={self.cushion_s} must be > 0")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """BBA keeps no state between chunks."""

    def select(self, context: PlayerContext) -> int:
        top = context.video.n_levels - 1
        buffer_s = context.buffer_s
        if buffer_s < self.reservoir_s:
            return 0
        if buffer_s >= self.reservoir_s + self.cushion_s:
            return top
        return int(top * (buffer_s - self.reservoir_s) / self.cushion_s)
