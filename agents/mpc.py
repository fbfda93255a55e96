"""Model-predictive control (Yin et al., SIGCOMM 2015): RobustMPC and FastMPC.

Before each chunk, the policy predicts throughput, enumerates every quality sequence for the next
``horizon`` chunks, simulates the buffer under the prediction and requests the first quality of the
sequence with the best QoE (linear: bitrate in Mbit/s - 4.3 x rebuffer s - |change| in Mbit/s).

* Throughput prediction: harmonic mean H of the last 5 measured throughputs (size / download time,
  RTT included). RobustMPC divides it by ``1 + max error`` over the last 5 relative prediction errors
  ``|H_prev - x| / x`` (x = the throughput just measured, H_prev = the previous undiscounted mean; the
  first error of a session is 0). FastMPC uses H as is (the paper's FastMPC speeds the same search up with
  a precomputed table; the vectorised search here takes well under a millisecond, so no table is needed).
* Planner: position k of a sequence uses the real size of the k-th chunk still to be requested; download
  time = size / prediction; the buffer drains by it (stalling at zero) and gains one chunk duration; no
  buffer cap. Ties go to the sequence enumerated last in lexicographic order, as in the reference
  implementation (``mpc_fixed`` in the reference results).

:meth:`MPC.plan` is the exhaustive search, vectorised in numpy over all ``n_levels ** horizon`` sequences (7776
for 6 levels and horizon 5): the reference. :meth:`MPC.select` takes its choice from a compiled search that
skips the sequences that cannot be best (:mod:`agents._mpc_search`) and chooses exactly what ``plan`` does,
ties included (tests hold them equal on random states and whole sessions), in a fraction of the time
(``abr bench --agent robustmpc`` prints the time per decision).

Under a per-chunk QoE (the ``ssim`` kind, told by the rollout loop through :meth:`MPC.use_qoe`) the planner
scores a sequence as that QoE does: the utility of position k is the SSIM dB of the k-th chunk still to be
requested at its level (``QoEWeights.chunk_utilities``), with the QoE's stall penalty and smoothness weight
(lambda |change in SSIM dB|, starting from the last chunk's SSIM) in place of the bitrate terms. Under the bitrate
kinds nothing changes (the planner keeps its own weights, as the reference results do).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from agents.rate_based import harmonic_mean
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import REBUFFER_PENALTY_PER_S, QoEWeights
from traces.types import Video
from traces.units import bps_to_mbps


@dataclass(slots=True)
class MPC:
    """MPC bitrate policy (the robust variant by default).

    Args:
        horizon: number of future chunks planned (5 in the paper).
        window: measured throughputs in the harmonic mean (5).
        is_robust: divide the prediction by 1 + the max recent relative error (RobustMPC).
        rebuffer_penalty_per_s: the planner's rebuffer weight.
        smoothness_weight: the planner's weight on |bitrate change| in Mbit/s.
        qoe: the evaluation's QoE model (set by :meth:`use_qoe`); a per-chunk kind (``ssim``) makes the planner
            score sequences with the chunks' quality and that QoE's weights.

    >>> from simulator.context import PlayerContext
    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=10)
    >>> MPC().select(PlayerContext(video, (), buffer_s=0.0))  # no history: lowest level
    0
    """

    horizon: int = 5
    window: int = 5
    is_robust: bool = True
    rebuffer_penalty_per_s: float = REBUFFER_PENALTY_PER_S
    smoothness_weight: float = 1.0
    name: str = "robustmpc"
    qoe: QoEWeights | None = None
    _errors: list[float] = field(default_factory=list, repr=False)
    _last_mean_bps: float | None = field(default=None, repr=False)
    _n_seen: int = field(default=0, repr=False)
    _combos: dict[tuple[int, int], npt.NDArray[np.int64]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"horizon={self.horizon} must be >= 1")
        if self.window < 1:
            raise ConfigError(f"window={self.window} must be >= 1")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._errors = []
        self._last_mean_bps = None
        self._n_seen = 0

    def use_qoe(self, qoe: QoEWeights) -> None:
        """Plan with ``qoe`` (the rollout loop calls this after ``reset``); only per-chunk kinds change the plan."""
        self.qoe = qoe

    @property
    def plans_quality(self) -> bool:
        """Whether the planner scores sequences with the chunks' quality (a per-chunk QoE), not bitrates."""
        return self.qoe is not None and self.qoe.is_per_chunk

    def predict_bps(self, context: PlayerContext) -> float | None:
        """Update the error history with the newest measurement and return the throughput prediction."""
        history = context.throughput_history_bps(self.window)
        if not history:
            return None
        if len(context.outcomes) != self._n_seen + 1 and self._n_seen != 0:
            raise RuntimeError(f"{self.name}: select() must be called once per chunk, in order")
        self._n_seen = len(context.outcomes)
        measured_bps = history[-1]
        error = 0.0 if self._last_mean_bps is None else abs(self._last_mean_bps - measured_bps) / measured_bps
        self._errors.append(error)
        mean_bps = harmonic_mean(history)
        self._last_mean_bps = mean_bps
        if not self.is_robust:
            return mean_bps
        return mean_bps / (1.0 + max(self._errors[-self.window:]))

    def select(self, context: PlayerContext) -> int:
        prediction_bps = self.predict_bps(context)
        if prediction_bps is None:
            return 0
        horizon = min(self.horizon, context.chunks_remaining)
        if horizon <= 0:
            return 0
        last_idx = context.last_quality_idx if context.last_quality_idx is not None else 0
        if self.plans_quality:
            return int(self.plan(context, horizon, prediction_bps, last_idx)[0])
        return _SEARCH.first_level(self, context, horizon, prediction_bps, last_idx)  # = plan(...)[0], compiled

    def _sequences(self, n_levels: int, horizon: int) -> npt.NDArray[np.int64]:
        key = (n_levels, horizon)
        if key not in self._combos:
            self._combos[key] = np.array(list(itertools.product(range(n_levels), repeat=horizon)),
                                         dtype=np.int64).reshape(-1, horizon)
        return self._combos[key]

    def plan(self, context: PlayerContext, horizon: int, prediction_bps: float,
             last_idx: int) -> npt.NDArray[np.int64]:
        """The best quality sequence of length ``horizon`` under the prediction."""
        video = context.video
        combos = self._sequences(video.n_levels, horizon)
        sizes = context.upcoming_chunk_sizes_bits(horizon)  # [horizon, n_levels]
        if self.plans_quality:
            return self._plan_quality(context, combos, sizes, prediction_bps, last_idx)
        bitrates = video.bitrates_bps
        buffer = np.full(combos.shape[0], context.buffer_s)
        rebuffer = np.zeros(combos.shape[0])
        bitrate_sum = np.zeros(combos.shape[0])
        smooth = np.zeros(combos.shape[0])
        previous = np.full(combos.shape[0], bitrates[last_idx])
        for k in range(horizon):
            levels = combos[:, k]
            download_s = sizes[k, levels] / prediction_bps
            rebuffer += np.maximum(download_s - buffer, 0.0)
            buffer = np.maximum(buffer - download_s, 0.0) + video.chunk_duration_s
            rate = bitrates[levels]
            bitrate_sum += rate
            smooth += np.abs(rate - previous)
            previous = rate
        reward = (bps_to_mbps(bitrate_sum) - self.rebuffer_penalty_per_s * rebuffer
                  - self.smoothness_weight * bps_to_mbps(smooth))
        best = combos.shape[0] - 1 - int(np.argmax(reward[::-1]))  # ties: the last enumerated
        return combos[best]


    def _plan_quality(self, context: PlayerContext, combos: npt.NDArray[np.int64], sizes: npt.NDArray[np.float64],
                      prediction_bps: float, last_idx: int) -> npt.NDArray[np.int64]:
        """:meth:`plan` under a per-chunk QoE: utility = each chunk's quality at its level, the QoE's weights."""
        assert self.qoe is not None  # plans_quality
        video, horizon = context.video, combos.shape[1]
        table = self.qoe.chunk_utilities(video)  # [n_chunks, n_levels], SSIM dB
        start = context.next_chunk_idx
        quality = table[start:start + horizon]
        buffer = np.full(combos.shape[0], context.buffer_s)
        rebuffer = np.zeros(combos.shape[0])
        utility = np.zeros(combos.shape[0])
        smooth = np.zeros(combos.shape[0])
        previous = np.full(combos.shape[0], table[start - 1, last_idx] if start > 0 else quality[0, last_idx])
        for k in range(horizon):
            levels = combos[:, k]
            download_s = sizes[k, levels] / prediction_bps
            rebuffer += np.maximum(download_s - buffer, 0.0)
            buffer = np.maximum(buffer - download_s, 0.0) + video.chunk_duration_s
            u = quality[k, levels]
            utility += u
            smooth += np.abs(u - previous)
            previous = u
        reward = utility - self.qoe.rebuffer_penalty * rebuffer - self.qoe.smoothness_weight * smooth
        best = combos.shape[0] - 1 - int(np.argmax(reward[::-1]))  # ties: the last enumerated
        return combos[best]


def robust_mpc() -> MPC:
    """RobustMPC: harmonic mean discounted by the max recent prediction error."""
    return MPC(is_robust=True, name="robustmpc")


def fast_mpc() -> MPC:
    """FastMPC: the same search with the plain harmonic-mean prediction."""
    return MPC(is_robust=False, name="fastmpc")


class _Shape(NamedTuple):
    """What sessions searched in one array share."""

    horizon: int
    ladder: bytes
    chunk_duration_s: float
    rebuffer_penalty_per_s: float
    smoothness_weight: float


def search_shape(policy: MPC, video: Video, horizon: int) -> _Shape:
    """What a search of ``policy`` on ``video`` over ``horizon`` chunks shares with others (:class:`MPCBatch`'s key)."""
    return _Shape(horizon, video.bitrates_bps.tobytes(), float(video.chunk_duration_s),
                  float(policy.rebuffer_penalty_per_s), float(policy.smoothness_weight))


class MPCBatch:
    """The searches of many :class:`MPC` policies done together: ``select_many`` equals their ``select``.

    One session's search (:meth:`MPC.plan`) evaluates every one of the ``n_levels ** horizon`` sequences
    step by step, in numpy. Here the bitrate and smoothness sums, which do not depend on the session, are
    computed once per ladder, horizon and last level, and the sessions of one shape are searched in one call of
    a compiled kernel (:func:`agents._mpc_search.first_levels`) that walks the sequences as a prefix tree, depth
    first, skipping the subtrees whose bound shows they cannot reach the best sequence. Every sequence it scores
    takes the same float operations in the same order as in :meth:`MPC.plan`, and ties go the same way, so the
    choices are identical (a test holds them equal).

    >>> from simulator.context import PlayerContext
    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=10)
    >>> MPCBatch().select_many([MPC()], [PlayerContext(video, (), buffer_s=0.0)])
    [0]
    """

    def __init__(self) -> None:
        self._sums: dict[_Shape, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
        self._bounds: dict[_Shape, tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]] = {}

    def first_level(self, policy: MPC, context: PlayerContext, horizon: int, prediction_bps: float,
                    last_idx: int) -> int:
        """The first level of :meth:`MPC.plan`'s sequence (bitrate planning), by the compiled search."""
        key = search_shape(policy, context.video, horizon)
        return int(self._first_levels(key, [context], np.array([prediction_bps], dtype=np.float64),
                                      np.array([last_idx], dtype=np.int64))[0])

    def select_many(self, policies: list[MPC], contexts: list[PlayerContext]) -> list[int]:
        """``[p.select(c) for p, c in zip(policies, contexts)]``, with the searches batched."""
        choices = [0] * len(policies)
        groups: dict[_Shape, list[tuple[int, float, int]]] = {}
        for i, (policy, context) in enumerate(zip(policies, contexts)):
            if policy.plans_quality:  # a per-chunk QoE: searched alone (the batched sums are per ladder)
                choices[i] = policy.select(context)
                continue
            prediction_bps = policy.predict_bps(context)
            if prediction_bps is None:
                continue
            horizon = min(policy.horizon, context.chunks_remaining)
            if horizon <= 0:
                continue
            last_idx = context.last_quality_idx if context.last_quality_idx is not None else 0
            key = search_shape(policy, context.video, horizon)
            groups.setdefault(key, []).append((i, prediction_bps, last_idx))
        for key, members in groups.items():
            firsts = self._first_levels(key, [contexts[i] for i, _, _ in members],
                                        np.array([p for _, p, _ in members], dtype=np.float64),
                                        np.array([q for _, _, q in members], dtype=np.int64))
            for (i, _, _), first in zip(members, firsts.tolist()):
                choices[i] = first
        return choices

    def _constant_terms(self, key: _Shape, bitrates: npt.NDArray[np.float64]
                        ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """``bitrate_sum`` in Mbit/s ``[sequences]`` and the weighted smoothness ``[last level, sequences]``,
        accumulated as :meth:`MPC.plan` does."""
        if key not in self._sums:
            horizon = key.horizon
            n_levels = bitrates.size
            combos = np.array(list(itertools.product(range(n_levels), repeat=horizon)),
                              dtype=np.int64).reshape(-1, horizon)
            bitrate_sum = np.zeros(combos.shape[0])
            smooth = np.zeros((n_levels, combos.shape[0]))
            previous = np.repeat(bitrates[:, None], combos.shape[0], axis=1)
            for k in range(horizon):
                rate = bitrates[combos[:, k]]
                bitrate_sum += rate
                smooth += np.abs(rate - previous)
                previous = np.broadcast_to(rate, previous.shape)
            self._sums[key] = (bps_to_mbps(bitrate_sum), key.smoothness_weight * bps_to_mbps(smooth))
        return self._sums[key]

    def search_tables(self, policy: MPC, video: Video, horizon: int
                      ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
                                 npt.NDArray[np.int64]]:
        """What the compiled search of ``policy`` on ``video`` over ``horizon`` chunks reads besides the session:
        ``bitrate_mbps`` ``[sequences]``, ``smooth`` ``[levels, sequences]``, ``bound`` ``[levels, nodes]`` and
        ``offsets`` (see :func:`agents._mpc_search.first_levels`)."""
        return self._tables(search_shape(policy, video, horizon), video)

    def _tables(self, key: _Shape, video: Video) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64],
                                                          npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        from agents._mpc_search import subtree_bounds

        bitrate_mbps, smooth = self._constant_terms(key, video.bitrates_bps)
        if key not in self._bounds:
            self._bounds[key] = subtree_bounds(bitrate_mbps[None, :] - smooth, video.n_levels, key.horizon)
        bound, offsets = self._bounds[key]
        return bitrate_mbps, smooth, bound, offsets

    def _first_levels(self, key: _Shape, contexts: list[PlayerContext],
                      prediction_bps: npt.NDArray[np.float64], last_idx: npt.NDArray[np.int64]
                      ) -> npt.NDArray[np.int64]:
        from agents._mpc_search import first_levels

        bitrate_mbps, smooth, bound, offsets = self._tables(key, contexts[0].video)
        sizes = np.stack([c.upcoming_chunk_sizes_bits(key.horizon) for c in contexts])  # [rows, horizon, levels]
        buffer = np.array([c.buffer_s for c in contexts], dtype=np.float64)
        return first_levels(np.ascontiguousarray(sizes, dtype=np.float64), buffer, prediction_bps, last_idx,
                            bitrate_mbps, smooth, bound, offsets, float(key.rebuffer_penalty_per_s),
                            float(key.chunk_duration_s))


#: The search caches (bitrate and smoothness sums, subtree bounds) that ``MPC.select`` shares across policies.
_SEARCH = MPCBatch()
