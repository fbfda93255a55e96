"""The policy protocol shared by heuristic and learned bitrate agents."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from simulator.context import PlayerContext


@runtime_checkable
class Policy(Protocol):
    """A bitrate policy: chooses the quality of each chunk from what the player knows.

    ``reset`` is called at the start of every session (with a generator for policies that draw random
    numbers); ``select`` returns the quality index (0 = lowest) of the next chunk.
    """

    name: str

    def reset(self, rng: np.random.Generator | None = None) -> None: ...

    def select(self, context: PlayerContext) -> int: ...
