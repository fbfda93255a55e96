"""Stochastic MPC over a learned transmission-time predictor, in the manner of Fugu (Yan et al., NSDI 2020).

Before each chunk the policy asks the predictor (:class:`agents.ttp.TransmissionTimePredictor`) for the
distribution of the download time of each of the next ``horizon`` chunks at each level, and chooses the first
level of the plan that maximises the **expected** QoE over the horizon (Fugu's controller: "stochastic MPC"),
by dynamic programming over a discretised buffer:

* the QoE of a chunk is the project's (:mod:`simulator.qoe`): ``u(q) - rebuffer_penalty * stall -
  smoothness_weight * |u(q) - u(previous)|`` with the utilities and weights of :class:`QoEWeights`; under a
  per-chunk QoE (``ssim``, handed over by ``use_qoe``) ``u`` is each chunk's own quality at its level, the
  previous chunk's included (``QoEWeights.chunk_utilities``), as MPC and the optimum plan;
* a download of ``t`` seconds (the representative value of a bin) from buffer ``b`` stalls ``max(t - b, 0)``
  and leaves ``min(max(b - t, 0) + chunk_duration, max_buffer_s)``, as RobustMPC's planner does, plus the cap;
* the value ``V_k(b, last level)`` of the rest of the horizon is kept on a grid of buffer levels
  ``0, step, 2 step, ...`` up to (at least) ``min(max_buffer_s, buffer + horizon x chunk_duration)`` and interpolated
  linearly between grid points; the first step is taken from the exact current buffer;
* the expected stall and next value of a level do not depend on the previous level, so one step costs
  ``O(grid x bins x levels + grid x levels^2)`` (about 30k multiply-adds for 6 levels, 32 bins and a
  120-point grid), and a decision well under a millisecond;
* the download times of successive chunks are taken as independent given the history (as in Fugu); the
  value after the horizon is 0 (as in RobustMPC); ties go to the lower level.

In this simulator a download's time is set by the trace, the size and the RTT, so the predictor is a
throughput forecaster (see :mod:`agents.ttp`); the controller is exact for its discretisation.

>>> import numpy as np
>>> probs = np.array([[[1.0, 0.0], [0.5, 0.5]]])  # one step; level 0 surely 1 s, level 1 1 s or 9 s
>>> expected_qoe(probs, np.array([1.0, 9.0]), buffer_s=4.0, chunk_duration_s=4.0, utilities=np.array([1.0, 3.0]),
...              last_idx=0, rebuffer_penalty=4.3, smoothness_weight=1.0).tolist()
[1.0, -9.75]
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol

import numpy as np
import numpy.typing as npt

from agents.ttp import TransmissionTimePredictor
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights
from traces.types import Video

FloatArray = npt.NDArray[np.float64]

#: The shipped predictor (trained by ``abr predictor train``; metadata beside it in ``predictor_mpc.json``).
SHIPPED_PREDICTOR = Path(__file__).resolve().parent / "models" / "predictor_mpc.npz"
#: The buffer grid of the dynamic programme, in seconds.
DEFAULT_BUFFER_STEP_S = 1.0
#: The buffer cap the planner assumes: the simulator's default ``max_buffer_s`` (Pensieve's 60 s).
DEFAULT_MAX_BUFFER_S = 60.0


class DistributionPredictor(Protocol):
    """What the controller needs of a predictor: per-bin download times and a distribution per step and level."""

    @property
    def bin_values_s(self) -> FloatArray: ...

    def distribution(self, context: PlayerContext, horizon: int) -> FloatArray: ...


#: Bins whose probability is below this for every level and step are left out of the continuation values (their
#: stall is still counted exactly): they carry at most bins x 1e-6 of the mass and cost most of the time.
NEGLIGIBLE_PROBABILITY = 1e-6


class _Moves(NamedTuple):
    """Where each (grid buffer, bin) goes: the stall penalty, and the next buffer as grid index + weight."""

    stall_penalty: FloatArray  # [buffers, bins]: rebuffer_penalty x stall seconds, every bin
    low: npt.NDArray[np.int64]  # [buffers, kept bins]: the grid point at or below the next buffer
    weight: FloatArray  # [buffers, kept bins, 1]: linear weight of the grid point above


def _moves(buffers_s: FloatArray, times_s: FloatArray, kept: slice, n_grid: int, step_s: float, top_s: float,
           chunk_duration_s: float, rebuffer_penalty: float) -> _Moves:
    stall = times_s[None, :] - buffers_s[:, None]
    position = np.minimum(np.maximum(-stall[:, kept], 0.0) + chunk_duration_s, top_s) / step_s
    np.maximum(stall, 0.0, out=stall)
    low = np.minimum(position.astype(np.int64), n_grid - 2)
    return _Moves(stall * rebuffer_penalty, low, (position - low)[:, :, None])


def _expected_tail(probs: FloatArray, moves: _Moves, value: FloatArray, kept: slice) -> FloatArray:
    """``E[-penalty x stall + V(next buffer, q)]`` for each buffer and level ``q``: ``[buffers, levels]``."""
    following = (value[1:] - value[:-1])[moves.low]  # [buffers, kept bins, levels]: the slope, then V itself
    following *= moves.weight
    following += value[moves.low]
    expected = np.einsum("gmq,qm->gq", following, probs[:, kept])
    expected -= moves.stall_penalty @ probs.T
    return np.asarray(expected)


def _best_over_levels(tail: FloatArray, gain: FloatArray) -> FloatArray:
    """``max_q (gain[last, q] + tail[b, q])`` for each buffer and last level: ``[buffers, last levels]``."""
    best = tail[:, :1] + gain[:, 0]
    for q in range(1, gain.shape[1]):
        np.maximum(best, tail[:, q:q + 1] + gain[:, q], out=best)
    return best


def expected_qoe(probs: FloatArray, times_s: FloatArray, *, buffer_s: float, chunk_duration_s: float,
                 utilities: FloatArray, last_idx: int, rebuffer_penalty: float, smoothness_weight: float,
                 buffer_step_s: float = DEFAULT_BUFFER_STEP_S,
                 max_buffer_s: float = DEFAULT_MAX_BUFFER_S) -> FloatArray:
    """The expected QoE over the horizon of each first level, the rest of the horizon played optimally.

    Args:
        probs: ``[horizon, levels, bins]``: the predicted download-time distribution of each step and level.
        times_s: the download time of each bin, in seconds.
        buffer_s: the buffer now, in seconds.
        chunk_duration_s: seconds of video a chunk adds.
        utilities: the utility of each level (``QoEWeights.utilities``), or per chunk ``[horizon + 1, levels]``:
            row 0 the chunk just played (for the first step's smoothness), then each chunk of the horizon.
        last_idx: the level of the previous chunk.
        rebuffer_penalty: QoE lost per second of stall.
        smoothness_weight: weight of ``|u(q) - u(previous)|``.
        buffer_step_s: the buffer grid of the later steps, in seconds.
        max_buffer_s: the buffer cap, in seconds.

    Returns:
        ``[levels]``: the expected QoE of choosing each level now.
    """
    horizon, n_levels = probs.shape[0], probs.shape[1]
    rows = np.asarray(utilities, dtype=np.float64)
    if rows.ndim == 1:
        rows = np.broadcast_to(rows, (horizon + 1, rows.size))
    if rows.shape != (horizon + 1, n_levels):
        raise ValueError(f"utilities of shape {np.shape(utilities)}: give [levels] or [horizon + 1, levels] = "
                         f"[{horizon + 1}, {n_levels}]")
    # gains[k, last, q]: chunk k's utility at q minus the smoothness penalty from the previous chunk at ``last``
    gains = rows[1:, None, :] - smoothness_weight * np.abs(rows[1:, None, :] - rows[:-1, :, None])
    top_s = min(max_buffer_s, buffer_s + horizon * chunk_duration_s)
    n_grid = int(math.ceil(top_s / buffer_step_s)) + 1  # >= 2 points, reaching top_s
    value = np.zeros((n_grid, n_levels))  # V after the horizon: 0; then V of the step after, in place
    used = np.flatnonzero(probs.max(axis=(0, 1)) >= NEGLIGIBLE_PROBABILITY)
    kept = slice(int(used[0]), int(used[-1]) + 1)
    if horizon > 1:
        grid = np.arange(n_grid, dtype=np.float64) * float(buffer_step_s)
        moves = _moves(grid, times_s, kept, n_grid, buffer_step_s, top_s, chunk_duration_s, rebuffer_penalty)
        for k in range(horizon - 1, 0, -1):  # before chunk k the buffer is at most buffer_s + k x chunk_duration_s
            reach = min(n_grid, int(math.ceil((buffer_s + k * chunk_duration_s) / buffer_step_s)) + 1)
            reachable = _Moves(moves.stall_penalty[:reach], moves.low[:reach], moves.weight[:reach])
            tail = _expected_tail(probs[k], reachable, value, kept)
            value[:reach] = _best_over_levels(tail, gains[k])
            value[reach:] = value[reach - 1]  # unreachable: only ever weighted from beyond the reach too
    now = _moves(np.array([float(buffer_s)]), times_s, kept, n_grid, buffer_step_s, top_s, chunk_duration_s,
                 rebuffer_penalty)
    return np.asarray(gains[0, last_idx] + _expected_tail(probs[0], now, value, kept)[0])


@dataclass(slots=True)
class PredictorMPC:
    """Stochastic MPC over a learned transmission-time predictor (Fugu-style; see the module docstring).

    Args:
        predictor: the download-time predictor (:class:`agents.ttp.TransmissionTimePredictor`).
        horizon: chunks planned (5, as RobustMPC and Fugu).
        qoe: the QoE the plan maximises in expectation (default: linear, 4.3 per stall second, smoothness 1).
        buffer_step_s: the buffer grid of the dynamic programme, in seconds.
        max_buffer_s: the buffer cap the planner assumes, in seconds.
        name: the policy's name.
    """

    predictor: DistributionPredictor
    horizon: int = 5
    qoe: QoEWeights = field(default_factory=QoEWeights)
    buffer_step_s: float = DEFAULT_BUFFER_STEP_S
    max_buffer_s: float = DEFAULT_MAX_BUFFER_S
    name: str = "predictor-mpc"
    _utilities: dict[bytes, FloatArray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 1 <= self.horizon <= 5:
            raise ConfigError(f"horizon={self.horizon} must be in 1..5 (the predictor's lookahead steps)")
        if not (math.isfinite(self.buffer_step_s) and self.buffer_step_s > 0):
            raise ConfigError(f"buffer_step_s={self.buffer_step_s} must be > 0")
        if not (math.isfinite(self.max_buffer_s) and self.max_buffer_s > 0):
            raise ConfigError(f"max_buffer_s={self.max_buffer_s} must be > 0")

    @classmethod
    def from_file(cls, path: str | Path = SHIPPED_PREDICTOR, *, name: str = "predictor-mpc") -> PredictorMPC:
        """The policy over the predictor saved at ``path`` (``.npz`` with its ``.json``)."""
        return cls(TransmissionTimePredictor.from_file(path), name=name)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Nothing to reset: the plan depends only on the context."""

    def use_qoe(self, qoe: QoEWeights) -> None:
        """Plan with the evaluation's QoE (the rollout loop calls this after ``reset``): its weights, and under a
        per-chunk kind (``ssim``) each chunk's quality as utility."""
        self.qoe = qoe
        self._utilities.clear()

    def _horizon_utilities(self, video: Video, start: int, horizon: int) -> FloatArray:
        """The utilities the plan uses: per level, or per chunk ``[horizon + 1, levels]`` under a per-chunk QoE."""
        if self.qoe.is_per_chunk:
            table = self.qoe.chunk_utilities(video)  # raises, naming the video, where it has no quality
            return np.asarray(table[start - 1:start + horizon])  # start >= 1: a plan follows a played chunk
        key = video.bitrates_bps.tobytes()
        if key not in self._utilities:
            self._utilities[key] = self.qoe.utilities(video.bitrates_bps)
        return self._utilities[key]

    def expected_values(self, context: PlayerContext) -> FloatArray:
        """The expected QoE over the horizon of each level for the next chunk (empty before any history)."""
        horizon = min(self.horizon, context.chunks_remaining)
        if not context.outcomes or horizon <= 0:
            return np.zeros(0)
        video = context.video
        utilities = self._horizon_utilities(video, context.next_chunk_idx, horizon)
        last_idx = context.last_quality_idx if context.last_quality_idx is not None else 0
        return expected_qoe(self.predictor.distribution(context, horizon), self.predictor.bin_values_s,
                            buffer_s=context.buffer_s, chunk_duration_s=float(video.chunk_duration_s),
                            utilities=utilities, last_idx=last_idx,
                            rebuffer_penalty=self.qoe.rebuffer_penalty, smoothness_weight=self.qoe.smoothness_weight,
                            buffer_step_s=self.buffer_step_s, max_buffer_s=self.max_buffer_s)

    def select(self, context: PlayerContext) -> int:
        """The first level of the plan with the best expected QoE; level 0 before any chunk is downloaded."""
        values = self.expected_values(context)
        return int(np.argmax(values)) if values.size else 0


def predictor_mpc() -> PredictorMPC:
    """Fugu-style stochastic MPC over the shipped learned download-time predictor (agents/models/predictor_mpc.npz)."""
    return PredictorMPC.from_file(SHIPPED_PREDICTOR)


__all__ = ["DEFAULT_BUFFER_STEP_S", "DEFAULT_MAX_BUFFER_S", "SHIPPED_PREDICTOR", "DistributionPredictor",
           "PredictorMPC", "expected_qoe", "predictor_mpc"]
