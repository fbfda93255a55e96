"""SODA, the smoothness-optimised dynamic adaptive controller (Chen et al., SIGCOMM 2024), from its formulation.

Source: T. Chen, Y. Lin, N. Christianson, Z. Akhtar, S. Dharmaji, M. Hajiesmaili, A. Wierman, R. K. Sitaraman,
"SODA: An Adaptive Bitrate Controller for Consistent High-Quality Video Streaming", ACM SIGCOMM 2024
(doi:10.1145/3651890.3672260), Sections 3.1-3.3 (objective), 5.1-5.3 (segment schema, prediction, solver) and
Algorithm 1. No public code is known; this is the project's implementation of the published equations. Every
place where the paper gives no number is listed in ``docs/baselines/soda.md``.

**Objective (time-based, paper eq. 2).** Before each chunk, with the throughput prediction ``w`` held constant over
the horizon (a single-valued predictor, as the paper's), choose ``r_1 .. r_K`` minimising

    sum_m  v(r_m) * w / r_m  +  beta * b(x_m)  +  gamma * (v(r_m) - v(r_{m-1}))**2
    x_m = min(x_{m-1} + w / r_m - 1, x_max),   x_m >= 0   (infeasible otherwise),

then request ``r_1``. Time is counted in intervals of length ``dt`` = the chunk duration (paper 5.1 sets dt to
the segment length; its analysis sets dt = 1), so ``x`` is the buffer in intervals and
``w / r`` the video intervals downloaded per interval; the weights are then free of the chunk duration.

* ``v``: the distortion, ``1 - u`` for a per-level utility ``u`` scaled to [0, 1] (0 at the bottom of the ladder,
  1 at the top). With the default ``u = ln(r / r_min) / ln(r_max / r_min)`` this is the paper's alternative
  distortion ``log(r_max / r)`` (its appendix) up to the constant ``ln(r_max / r_min)``; it is convex and
  decreasing in ``r``. The utility comes from one place, :meth:`SodaPolicy.level_utilities`: ``utility_fn``
  replaces it, and ``use_video_quality=True`` plans with the video's per-chunk SSIM (``Video.ssim_db``), for
  a perceptual QoE (off by default: a policy does not see the evaluation's QoE kind).
* ``b``: the buffer cost around a target ``x_bar``: ``(x_bar - x)**2`` below it, ``epsilon * (x - x_bar)**2``
  above it, ``epsilon < 1`` (paper 3.1).
* ``x_max``: the player's buffer capacity; the plan caps the buffer there (the player idles while full, as
  the simulator's player does) instead of declaring the sequence infeasible.

**Solver (paper 5.3, Algorithm 1).** Only monotone sequences are searched: ``r_0 <= r_1 <= ... <= r_K`` or
``r_0 >= r_1 >= ... >= r_K`` (``r_0`` the last level requested), vectorised over all of them at once
(fewer than ``2 * C(n + K - 1, K)``: 498 for 6 levels and K = 5, against 7776 for all sequences).
``solver="exhaustive"`` searches every sequence instead (for comparison). Cost ties go to the sequence with
the lower first level.

**Heuristic (paper 5.1).** No planned level may exceed ``min{r in ladder : r >= w}``, the lowest rung at or
above the prediction (the top rung if the prediction is above it).

**Prediction (paper 6.1.1).** dash.js's exponential moving average, the project's
:class:`agents.throughput.ThroughputEstimator` (dash.js 5 defaults), with no safety factor (SODA's robustness
comes from the buffer target, paper 5.2). Before the first download, and when no monotone sequence keeps the
planned buffer non-negative, the lowest level is requested (choices made here).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from agents._checks import check_positive
from agents.throughput import ThroughputEstimator
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights
from traces.types import Video

#: Paper 5.2: "we limit the prediction horizon length to at most 10 s".
MAX_HORIZON_S = 10.0
#: The player's buffer capacity assumed by the plan: the simulator's default (Pensieve BUFFER_THRESH = 60 s).
MAX_BUFFER_S = 60.0
#: Choices made here (the paper prints no controller weights); see docs/baselines/soda.md.
TARGET_BUFFER_S = 20.0
BUFFER_WEIGHT = 1.0
SWITCH_WEIGHT = 50.0
OVERSHOOT_WEIGHT = 0.1  # the paper's epsilon < 1: the cost of a buffer above the target, relative to below
DISTORTIONS = ("log", "inverse", "linear")
SOLVERS = ("monotone", "exhaustive")

#: A per-chunk, per-level utility table ``[horizon, n_levels]`` (higher is better) for the next chunks.
UtilityFn = Callable[[PlayerContext, int], npt.NDArray[np.float64]]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def bitrate_utilities(bitrates_bps: npt.ArrayLike, distortion: str = "log") -> FloatArray:
    """Per-level utility in [0, 1] from the ladder (0 = lowest rung, 1 = top); the distortion is ``1 - u``.

    ``"log"``: ``ln(r / r_min) / ln(r_max / r_min)``; ``"inverse"``: the paper's ``v = 1/r`` rescaled,
    ``(1/r_min - 1/r) / (1/r_min - 1/r_max)``; ``"linear"``: ``(r - r_min) / (r_max - r_min)``. A one-rung
    ladder has utility 1.

    >>> bitrate_utilities([1e6, 2e6, 4e6]).round(3).tolist()
    [0.0, 0.5, 1.0]
    >>> bitrate_utilities([1e6, 2e6, 4e6], "inverse").round(3).tolist()
    [0.0, 0.667, 1.0]
    """
    rates = np.asarray(bitrates_bps, dtype=np.float64)
    if distortion not in DISTORTIONS:
        raise ConfigError(f"distortion={distortion!r} is not one of {', '.join(DISTORTIONS)}",
                          field="distortion", value=distortion)
    if rates.size == 1:
        return np.ones(1)
    if distortion == "log":
        return np.log(rates / rates[0]) / math.log(rates[-1] / rates[0])
    if distortion == "inverse":
        return (1.0 / rates[0] - 1.0 / rates) / (1.0 / rates[0] - 1.0 / rates[-1])
    return (rates - rates[0]) / (rates[-1] - rates[0])


def video_quality_table(video: Video) -> FloatArray | None:
    """The video's per-chunk perceptual quality ``[n_chunks, n_levels]`` (``Video.ssim_db``, SSIM dB), or ``None``.

    The hook for a perceptual QoE: :class:`SodaPolicy` plans with this table instead of the ladder's utility
    when ``use_video_quality=True`` and the video carries one.
    """
    table = getattr(video, "ssim_db", None)
    return None if table is None else np.asarray(table, dtype=np.float64)


def monotone_sequences(n_levels: int, horizon: int) -> IntArray:
    """Every non-decreasing and every non-increasing level sequence of length ``horizon`` (constant ones once).

    >>> monotone_sequences(2, 2).tolist()
    [[0, 0], [0, 1], [1, 1], [1, 0]]
    """
    up = list(itertools.combinations_with_replacement(range(n_levels), horizon))
    down = [tuple(reversed(s)) for s in up if s[0] != s[-1]]
    return np.array(up + down, dtype=np.int64).reshape(-1, horizon)


def all_sequences(n_levels: int, horizon: int) -> IntArray:
    """Every level sequence of length ``horizon`` (``n_levels ** horizon`` of them)."""
    return np.array(list(itertools.product(range(n_levels), repeat=horizon)), dtype=np.int64).reshape(-1, horizon)


@dataclass(slots=True)
class SodaPolicy:
    """SODA (Chen et al., SIGCOMM 2024): short-horizon planning of a time-based cost (see the module docstring).

    Args:
        target_buffer_s: the buffer target ``x_bar``, in seconds (20; chosen here, the paper prints none).
        buffer_weight: ``beta``, the weight of the buffer cost, per squared interval (1.0; chosen here).
        switch_weight: ``gamma``, the weight of the squared distortion change (50.0; chosen here; the paper's
            solver check uses "a relative switching cost weight of 2" without its scale).
        overshoot_weight: ``epsilon < 1``, the buffer cost above the target relative to below (0.1; chosen
            here; the paper says "a small constant").
        max_horizon_s: the planning horizon cap in seconds (10, paper 5.2); ``K = floor(max_horizon_s / dt)``,
            at least 1, with ``dt`` the chunk duration.
        max_buffer_s: the buffer capacity the plan assumes, in seconds (60, the simulator's default).
        distortion: ``"log"`` (default), ``"inverse"`` (the paper's ``1/r``) or ``"linear"``: how the
            ladder's bitrates map to utility (:func:`bitrate_utilities`).
        use_video_quality: plan with the video's per-chunk perceptual quality (``Video.ssim_db``) when it
            carries one (:func:`video_quality_table`): set it under the perceptual (``ssim``) QoE. Off by default,
            so a bitrate QoE is planned with the ladder even on a video that carries a quality table.
        utility_fn: a per-chunk, per-level utility table for the next chunks (overrides the two above).
        solver: ``"monotone"`` (the paper's Algorithm 1) or ``"exhaustive"`` (every sequence).
        cap_at_prediction: apply the paper's cap (no level above the lowest rung >= the prediction).

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=10)
    >>> SodaPolicy().select(PlayerContext(video, (), buffer_s=0.0))  # no measurement yet: lowest level
    0
    """

    target_buffer_s: float = TARGET_BUFFER_S
    buffer_weight: float = BUFFER_WEIGHT
    switch_weight: float = SWITCH_WEIGHT
    overshoot_weight: float = OVERSHOOT_WEIGHT
    max_horizon_s: float = MAX_HORIZON_S
    max_buffer_s: float = MAX_BUFFER_S
    distortion: str = "log"
    use_video_quality: bool = False
    utility_fn: UtilityFn | None = None
    solver: str = "monotone"
    cap_at_prediction: bool = True
    name: str = "soda"
    _estimator: ThroughputEstimator = field(init=False, repr=False)
    _sequences: dict[tuple[int, int, int, int], IntArray] = field(default_factory=dict, repr=False)
    _qoe_per_chunk: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        for name in ("target_buffer_s", "max_horizon_s", "max_buffer_s"):
            check_positive(name, getattr(self, name))
        for name in ("buffer_weight", "switch_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}={value!r} must be a finite number >= 0", field=name, value=value)
        eps = self.overshoot_weight
        if not (isinstance(eps, (int, float)) and math.isfinite(eps) and 0 <= eps < 1):
            raise ConfigError(f"overshoot_weight={eps!r} must be a finite number in [0, 1) (the paper's epsilon < 1)",
                              field="overshoot_weight", value=eps)
        if self.target_buffer_s > self.max_buffer_s:
            raise ConfigError(f"target_buffer_s={self.target_buffer_s} must be <= max_buffer_s={self.max_buffer_s}; "
                              "lower the target or raise the capacity", field="target_buffer_s",
                              value=self.target_buffer_s)
        if self.distortion not in DISTORTIONS:
            raise ConfigError(f"distortion={self.distortion!r} is not one of {', '.join(DISTORTIONS)}",
                              field="distortion", value=self.distortion)
        if self.solver not in SOLVERS:
            raise ConfigError(f"solver={self.solver!r} is not one of {', '.join(SOLVERS)}",
                              field="solver", value=self.solver)
        self._estimator = ThroughputEstimator(method="ewma")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._estimator.reset()

    def use_qoe(self, qoe: QoEWeights) -> None:
        """The rollout loop's QoE hook (``agents.base.QoEAwarePolicy``): under a per-chunk QoE (``ssim``) plan
        with the video's quality, as ``use_video_quality=True`` does; under the bitrate kinds, as configured."""
        self._qoe_per_chunk = qoe.is_per_chunk

    def horizon(self, context: PlayerContext) -> int:
        """``K``: intervals planned, ``floor(max_horizon_s / dt)`` (at least 1), no more than the chunks left."""
        k = max(1, int(math.floor(self.max_horizon_s / context.video.chunk_duration_s + 1e-9)))
        return min(k, context.chunks_remaining)

    def predict_bps(self, context: PlayerContext) -> float | None:
        """The throughput prediction (dash.js EWMA), in bit/s; ``None`` before the first download."""
        return self._estimator.estimate_bps(context.outcomes)

    def level_utilities(self, context: PlayerContext, horizon: int) -> FloatArray:
        """The utility ``[horizon, n_levels]`` of each level for the next ``horizon`` chunks, scaled to [0, 1].

        The one place SODA takes quality from: ``utility_fn`` (scaled over its table), else the video's
        perceptual quality when ``use_video_quality`` (scaled over the whole video's table), else the ladder
        (:func:`bitrate_utilities`).
        """
        use_quality = self.use_video_quality or self._qoe_per_chunk
        quality = video_quality_table(context.video) if use_quality else None
        if self.utility_fn is not None:
            table = np.asarray(self.utility_fn(context, horizon), dtype=np.float64)
            low, high = (float(table.min()), float(table.max())) if table.size else (0.0, 0.0)
        elif quality is not None:
            start = context.next_chunk_idx
            table = quality[start:start + horizon]
            low, high = float(quality.min()), float(quality.max())
        else:
            return np.tile(bitrate_utilities(context.video.bitrates_bps, self.distortion), (horizon, 1))
        expected = (horizon, context.video.n_levels)
        if table.shape != expected or not np.all(np.isfinite(table)):
            raise ConfigError(f"the utility table has shape {table.shape} (or non-finite values); SODA needs finite "
                              f"utilities of shape {expected} (next chunks x ladder levels)", field="utility_fn",
                              value=table.shape)
        return (table - low) / (high - low) if high > low else np.ones_like(table)

    def distortions(self, utilities: FloatArray) -> FloatArray:
        """The distortion ``v = 1 - u`` of utilities scaled to [0, 1]: 0 at the best level, 1 at the worst."""
        return 1.0 - utilities

    def cap_idx(self, bitrates_bps: FloatArray, prediction_bps: float) -> int:
        """The highest level allowed: the lowest rung >= the prediction (paper 5.1), the top rung if none is."""
        if not self.cap_at_prediction:
            return bitrates_bps.size - 1
        above = np.flatnonzero(bitrates_bps >= prediction_bps)
        return int(above[0]) if above.size else bitrates_bps.size - 1

    def candidates(self, n_levels: int, horizon: int, last_idx: int, cap_idx: int) -> IntArray:
        """The sequences searched: monotone from ``last_idx`` (or all, ``solver="exhaustive"``), none above the cap.

        Cached per ladder size, horizon, last level and cap (at most ``n_levels ** 2`` sets per horizon).
        """
        key = (n_levels, horizon, last_idx, cap_idx)
        if key not in self._sequences:
            make = monotone_sequences if self.solver == "monotone" else all_sequences
            seqs = make(n_levels, horizon)
            keep = seqs.max(axis=1) <= cap_idx
            if self.solver == "monotone":
                first, last = seqs[:, 0], seqs[:, -1]
                # r_0 <= r_1 <= ... (rising) or r_0 >= r_1 >= ... (falling); a constant one is either.
                keep &= np.where(last > first, first >= last_idx, np.where(last < first, first <= last_idx, True))
            self._sequences[key] = np.ascontiguousarray(seqs[keep])
        return self._sequences[key]

    def costs(self, seqs: IntArray, distortion: FloatArray, bitrates_bps: FloatArray, prediction_bps: float,
              buffer_s: float, last_idx: int, dt_s: float) -> FloatArray:
        """SODA's cost of each sequence (``inf`` where the planned buffer goes below zero).

        Args:
            seqs: level sequences ``[n, K]``.
            distortion: ``v`` per planned step and level ``[K, n_levels]``.
            bitrates_bps: the ladder, in bit/s.
            prediction_bps: the throughput prediction, in bit/s.
            buffer_s: the buffer now, in seconds.
            last_idx: the level of the last chunk (``r_0``).
            dt_s: the interval length (the chunk duration), in seconds.
        """
        horizon = seqs.shape[1]
        x_bar, x_max = self.target_buffer_s / dt_s, self.max_buffer_s / dt_s
        video_intervals = (prediction_bps / bitrates_bps)[seqs]  # w * dt / r per step, in intervals [n, K]
        # x_k = min(x_{k-1} + d_k, x_max) in closed form: S_k + min(x_0, x_max - max_{j<=k} S_j), S = cumsum(d).
        rise = np.cumsum(video_intervals - 1.0, axis=1)
        x = rise + np.minimum(buffer_s / dt_s, x_max - np.maximum.accumulate(rise, axis=1))
        deviation = x - x_bar
        buffer_cost = np.where(deviation < 0.0, 1.0, self.overshoot_weight) * deviation * deviation
        v = distortion[np.arange(horizon), seqs]  # [n, K]
        change = np.diff(v, axis=1, prepend=distortion[0, last_idx])
        total = (v * video_intervals + self.buffer_weight * buffer_cost + self.switch_weight * change * change).sum(1)
        return np.where((x >= 0.0).all(axis=1), total, np.inf)

    def plan(self, context: PlayerContext, prediction_bps: float) -> IntArray | None:
        """The best sequence under the prediction, or ``None`` when none keeps the planned buffer >= 0."""
        video = context.video
        horizon = self.horizon(context)
        last_idx = context.last_quality_idx if context.last_quality_idx is not None else 0
        bitrates = video.bitrates_bps
        seqs = self.candidates(video.n_levels, horizon, last_idx, self.cap_idx(bitrates, prediction_bps))
        distortion = self.distortions(self.level_utilities(context, horizon))
        cost = self.costs(seqs, distortion, bitrates, prediction_bps, context.buffer_s, last_idx,
                          video.chunk_duration_s)
        if seqs.shape[0] == 0 or not np.isfinite(cost).any():
            return None
        best = np.lexsort((seqs[:, 0], cost))[0]  # the lowest cost; ties to the lower first level
        return seqs[best]

    def select(self, context: PlayerContext) -> int:
        prediction_bps = self.predict_bps(context)
        if prediction_bps is None or prediction_bps <= 0 or context.chunks_remaining <= 0:
            return 0
        best = self.plan(context, prediction_bps)
        return 0 if best is None else int(best[0])
