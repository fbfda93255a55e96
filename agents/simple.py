"""Reference points without adaptation: a fixed quality and a uniformly random quality.

* :class:`FixedQuality` always requests one level. ``level_idx`` counts from the bottom (0 = lowest) or, when
  negative, from the top as in Python indexing (-1 = the top level), so one agent fits every ladder.
  Registry names: ``"fixed"`` (level 0), ``"fixed-top"`` (level -1) and ``"fixed:<level_idx>"``.
* :class:`RandomQuality` draws every level uniformly and independently. ``reset(rng)`` derives its own
  generator from the session's with ``rng.spawn(1)`` (numpy's ``SeedSequence`` children), which does not
  advance ``rng``, so the session's download noise is the same as for any other agent, and the same seed
  gives the same levels (a generator that cannot spawn gives one draw of its stream instead). Without a
  generator it seeds itself with ``seed`` (default 0).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulator.context import PlayerContext
from simulator.errors import ConfigError

DEFAULT_SEED = 0  # RandomQuality's seed when reset gets no generator


@dataclass(slots=True)
class FixedQuality:
    """Always the same level.

    Args:
        level_idx: the level; negative values count from the top (-1 = top).

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> FixedQuality(1).select(PlayerContext(video, (), 0.0)), FixedQuality(-1).select(PlayerContext(video, (), 0.0))
    (1, 2)
    """

    level_idx: int = 0
    name: str = "fixed"

    def __post_init__(self) -> None:
        if isinstance(self.level_idx, bool) or not isinstance(self.level_idx, (int, np.integer)):
            raise ConfigError(f"level_idx={self.level_idx!r} must be an integer level (negative: from the top)")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """A fixed quality keeps no state."""

    def select(self, context: PlayerContext) -> int:
        n_levels = context.video.n_levels
        quality_idx = self.level_idx if self.level_idx >= 0 else n_levels + self.level_idx
        if not 0 <= quality_idx < n_levels:
            raise ConfigError(f"level_idx={self.level_idx} is not a level of the {n_levels}-level ladder; use "
                              f"0..{n_levels - 1}, or -{n_levels}..-1 to count from the top")
        return int(quality_idx)


@dataclass(slots=True)
class RandomQuality:
    """A uniformly random level for every chunk, reproducible from the session's seed.

    Args:
        seed: seeds the draws when ``reset`` gets no generator.

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> a, b = RandomQuality(), RandomQuality()
    >>> a.reset(np.random.default_rng(7)); b.reset(np.random.default_rng(7))
    >>> [a.select(PlayerContext(video, (), 0.0)) for _ in range(8)] == [b.select(PlayerContext(video, (), 0.0))
    ...                                                                  for _ in range(8)]
    True
    """

    seed: int = DEFAULT_SEED
    name: str = "random"
    _rng: np.random.Generator | None = field(default=None, repr=False)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        if rng is None:
            self._rng = np.random.default_rng(self.seed)
            return
        try:
            self._rng = rng.spawn(1)[0]
        except (TypeError, ValueError):  # a generator built without a SeedSequence cannot spawn
            self._rng = np.random.default_rng(int(rng.integers(2**63)))

    def select(self, context: PlayerContext) -> int:
        if self._rng is None:
            self.reset(None)
        assert self._rng is not None
        return int(self._rng.integers(context.video.n_levels))
