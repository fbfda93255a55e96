"""The policy protocol shared by heuristic and learned bitrate agents."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from simulator.config import SimConfig
from simulator.context import PlayerContext
from simulator.qoe import QoEWeights
from traces.types import Trace, Video


@runtime_checkable
class Policy(Protocol):
    """A bitrate policy: chooses the quality of each chunk from what the player knows.

    ``reset`` is called at the start of every session (with a generator for policies that draw random
    numbers); ``select`` returns the quality index (0 = lowest) of the next chunk.
    """

    name: str

    def reset(self, rng: np.random.Generator | None = None) -> None: ...

    def select(self, context: PlayerContext) -> int: ...


@runtime_checkable
class ClairvoyantPolicy(Policy, Protocol):
    """A policy that sees the whole session in advance (the offline optimum: an upper bound, not a player).

    The rollout loop calls ``prepare`` after ``reset`` and before the first ``select`` with everything that
    determines the session: the trace, the video, the simulator config, the QoE model and the start index.
    """

    def prepare(self, trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights, start_idx: int) -> None: ...


@runtime_checkable
class QoEAwarePolicy(Policy, Protocol):
    """A policy that plans with the evaluation's QoE model: the rollout loop calls ``use_qoe`` after ``reset``.

    The utility hook of the planners: under a per-chunk QoE (``QoEWeights.is_per_chunk``, the ``ssim`` kind)
    they take each chunk's utility from ``qoe.chunk_utilities(video)`` instead of the ladder's bitrate.
    """

    def use_qoe(self, qoe: QoEWeights) -> None: ...
