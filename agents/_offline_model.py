"""Vectorised session dynamics and an upper bound on the QoE to come, for the offline optimum.

Used by :mod:`agents.optimal`. Units: seconds, bits, bits per second.

:class:`VectorLink` is :class:`simulator.link.TraceLink` evaluated for many link states at once. A link state
is the trace clock ``p`` in ``[t_0, t_last]``; the interval in progress is the first one ending after ``p``
(TraceLink's pointer, up to equivalent states on sample boundaries). A transfer is solved in closed form
from the cumulative payload ``cum[i]`` delivered from ``t_0`` to ``t_i``, whole passes over the looping trace
counted apart, instead of walking the samples; it agrees with TraceLink to float rounding (~1e-12 s).

:class:`FutureBound` bounds the QoE of the chunks after a state at link position ``u`` with buffer ``b``.
Drop the buffer cap (idling only delays downloads on a first-in-first-out link). With ``D`` the unwrapped
cumulative payload, the remaining chunks must then fit before the last one's playback deadline,
``sum(sizes) <= D(u + b + offset + R) - D(u) - W``, where ``offset`` is the playback of the chunks in
between (minus frozen RTTs), ``R`` the future rebuffering and ``W`` the payload the RTTs waste when the trace
runs during them (at least ``RTT x`` the trace's lowest rate per request). Dualising this one constraint
with a multiplier ``lam >= 0`` gives, for every ``lam`` below ``rebuffer_penalty * period / pass_bits``::

    future QoE <= G_k(lam, last level) + lam * (D(u + b + offset) - D(u) - W) + S_lam(u + b + offset)

``G_k`` is the best ``sum(utility - lam * size) - smoothness`` over the remaining chunks (a Viterbi
recursion per ``lam``, exact in the utilities and the smoothness term) and
``S_lam(x) = max_{y >= x} [lam D(y) - pen y] - [lam D(x) - pen x]`` the best gain from stalling, read off
running maxima over the trace samples (zero unless ``lam`` exceeds ``pen`` over the top payload rate). Any
``lam`` gives a valid bound, so the tightest of those tried is kept: all ``N_MULTIPLIERS`` grid values for
the first chunk, then the ``LAM_WINDOW`` grid steps on either side of the parent state's best one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.config import SimConfig
from simulator.link import MAX_TRACE_PASSES
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

N_MULTIPLIERS = 64  # multipliers lam on the bound's grid
LAM_WINDOW = 3  # a state tries the multipliers within this many grid steps of its parent's best one


class VectorLink:
    """TraceLink's transfer and idle arithmetic for arrays of link states.

    Args:
        trace: the throughput trace.
        payload_efficiency: share of the throughput that carries payload.

    >>> link = VectorLink(Trace(np.array([0.0, 10.0]), np.array([1e6, 1e6])), payload_efficiency=1.0)
    >>> clock_s, at_bits, transfer_s = link.transfer(np.array([9.0]), np.array([3e6]))  # wraps once
    >>> float(clock_s[0]), float(at_bits[0]), float(transfer_s[0])
    (2.0, 2000000.0, 3.0)
    """

    def __init__(self, trace: Trace, *, payload_efficiency: float) -> None:
        self.times_s = np.asarray(trace.times_s, dtype=np.float64)
        self.n = int(self.times_s.size)
        rates_bps = np.asarray(trace.throughput_bps, dtype=np.float64)
        self.payload_bps = rates_bps * payload_efficiency
        steps_s = np.diff(self.times_s)
        self.cum_bits = np.concatenate([[0.0], np.cumsum(self.payload_bps[1:] * steps_s)])
        self.pass_bits = float(self.cum_bits[-1])
        self.t0_s = float(self.times_s[0])
        self.period_s = float(self.times_s[-1] - self.t0_s)
        # TraceLink refuses chunks larger than this (the same arithmetic as TraceLink.bits_per_pass).
        engine_pass_bits = float(sum(r * d for r, d in zip(rates_bps[1:].tolist(), steps_s.tolist())))
        self.max_chunk_bits = MAX_TRACE_PASSES * engine_pass_bits * payload_efficiency
        self.min_payload_bps = float(self.payload_bps[1:][steps_s > 0].min())

    def delivered_bits(self, clock_s: FloatArray) -> FloatArray:
        """Payload delivered from ``t_0`` to the trace clock ``clock_s`` (within one pass), in bits."""
        j = np.clip(np.searchsorted(self.times_s, clock_s, side="right"), 1, self.n - 1)
        return self.cum_bits[j - 1] + self.payload_bps[j] * (clock_s - self.times_s[j - 1])

    def in_pass(self, unwrapped_s: FloatArray) -> FloatArray:
        """The trace clock of a position on the looping trace (``t_0`` + seconds since it, modulo the period)."""
        x = unwrapped_s - self.t0_s
        return self.t0_s + (x - np.floor(x / self.period_s) * self.period_s)

    def transfer(self, clock_s: FloatArray, size_bits: FloatArray,
                 at_bits: FloatArray | None = None) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Deliver ``size_bits`` from ``clock_s``.

        Args:
            clock_s: the trace clock of each link state, in seconds.
            size_bits: the payload to deliver from each, in bits.
            at_bits: ``delivered_bits(clock_s)`` if already known.

        Returns:
            The new trace clock (s), the payload delivered in the pass up to it (bits), the transfer time (s).
        """
        start_bits = self.delivered_bits(clock_s) if at_bits is None else at_bits
        target = start_bits + size_bits
        passes = np.floor(target / self.pass_bits)
        rest = np.maximum(target - passes * self.pass_bits, 0.0)
        wrapped = rest >= self.pass_bits  # float rounding at a whole number of passes
        passes += wrapped
        rest = np.where(wrapped, rest - self.pass_bits, rest)
        # The chunk completes in the first interval whose end-of-interval total strictly exceeds it.
        k = np.clip(np.searchsorted(self.cum_bits, rest, side="right"), 1, self.n - 1)
        done_s = self.times_s[k - 1] + (rest - self.cum_bits[k - 1]) / self.payload_bps[k]
        return done_s, rest, passes * self.period_s + (done_s - clock_s)

    def advance(self, clock_s: FloatArray, duration_s: FloatArray | float) -> FloatArray:
        """The trace clock after ``duration_s`` seconds without delivery (idle), looping as TraceLink does."""
        return self.in_pass(clock_s + duration_s)


class FutureBound:
    """Upper bound on the QoE of the chunks after a state (see the module docstring).

    Args:
        video: the video, already truncated to the chunks played.
        config: the simulator config.
        qoe: the QoE model.
        link: the vectorised link of the trace.
        allowed: ``[n_chunks, n_levels]``: the levels each chunk may take.
    """

    def __init__(self, video: Video, config: SimConfig, qoe: QoEWeights, link: VectorLink,
                 allowed: BoolArray) -> None:
        self.link = link
        self.n_chunks = video.n_chunks
        self.rtt_frozen_s = 0.0 if config.rtt_advances_trace else config.link_rtt_s
        self.step_s = video.chunk_duration_s - self.rtt_frozen_s
        # With the trace running during the RTT, each request wastes at least this much payload.
        self.wasted_bits = config.link_rtt_s * link.min_payload_bps if config.rtt_advances_trace else 0.0
        self.pen = qoe.rebuffer_penalty
        # Past pen * period / pass_bits stalling for ever would pay, so no finite bound: stay below it.
        self.lams = _multipliers(qoe.chunk_utilities(video), video.chunk_sizes_bits,
                                 self.pen * link.period_s / link.pass_bits * (1.0 - 1e-9))
        self.table = _viterbi_table(video, qoe, self.lams, allowed)  # [k, previous level, lam]
        # f(y) = lam * D(y) - pen * y at the trace samples of one pass, [sample, lam], with running maxima.
        gain_at = link.cum_bits[:, None] * self.lams[None, :] - self.pen * (link.times_s - link.t0_s)[:, None]
        self.pass_gain = self.lams * link.pass_bits - self.pen * link.period_s  # f(y + period) - f(y) <= 0
        self.left_max = np.maximum.accumulate(gain_at, axis=0)
        self.lam_free = self.pen / float(link.payload_bps[1:].max())  # below it, f never rises
        self.right_max = np.ascontiguousarray(np.maximum.accumulate(gain_at[::-1], axis=0)[::-1])

    def future(self, next_idx: int, clock_s: FloatArray, at_bits: FloatArray, buffer_s: FloatArray,
               last_idx: IntArray, is_playing: BoolArray,
               near_idx: IntArray | None = None) -> tuple[FloatArray, IntArray]:
        """Upper bound on the QoE of chunks ``next_idx..N-1`` for states after chunk ``next_idx - 1``.

        Args:
            next_idx: the next chunk to request.
            clock_s: the trace clock of each state, in seconds.
            at_bits: ``link.delivered_bits(clock_s)``.
            buffer_s: the buffer of each state, in seconds.
            last_idx: the quality of each state's last chunk.
            is_playing: whether playback has started in each state.
            near_idx: the best multiplier of each state's parent: try only the ``LAM_WINDOW`` grid steps
                around it. ``None`` tries them all.

        Returns:
            The bound of each state and the index of the multiplier that gave it.
        """
        n = clock_s.size
        if next_idx >= self.n_chunks:
            return np.zeros(n), np.zeros(n, dtype=np.int64)
        link, n_lams = self.link, self.lams.size
        if near_idx is None:
            idx = np.broadcast_to(np.arange(n_lams), (n, n_lams))
        else:
            window = np.arange(-LAM_WINDOW, LAM_WINDOW + 1)
            idx = np.clip(near_idx[:, None] + window[None, :], 0, n_lams - 1)
        lams = self.lams[idx]
        ahead_s = buffer_s + (self.n_chunks - 1 - next_idx) * self.step_s - self.rtt_frozen_s
        # The payload deliverable before the deadline (negative once it has passed), less the RTTs' waste.
        x = clock_s - link.t0_s + ahead_s
        passes = np.floor(x / link.period_s)
        deadline_s = link.t0_s + (x - passes * link.period_s)
        j = np.clip(np.searchsorted(link.times_s, deadline_s, side="right"), 1, link.n - 1)
        deadline_bits = link.cum_bits[j - 1] + link.payload_bps[j] * (deadline_s - link.times_s[j - 1])
        bits = passes * link.pass_bits + deadline_bits - at_bits - (self.n_chunks - next_idx) * self.wasted_bits
        total = np.take(self.table[next_idx], last_idx[:, None] * n_lams + idx) + lams * bits[:, None]
        # Stalling can only pay where lam exceeds pen / (the trace's top payload rate).
        stalls = np.flatnonzero(lams[:, -1] > self.lam_free)
        if stalls.size:
            total[stalls] += self._stall_gain(deadline_s[stalls], deadline_bits[stalls], j[stalls, None],
                                              idx[stalls], lams[stalls])
        best = np.argmin(total, axis=1)
        rows = np.arange(n)
        # Before playback starts the buffer does not drain: fall back to ignoring the link (lam = 0).
        bound = np.where(is_playing, total[rows, best], self.table[next_idx][last_idx, 0])
        return bound, idx[rows, best]

    def _stall_gain(self, deadline_s: FloatArray, deadline_bits: FloatArray, j: IntArray, idx: IntArray,
                    lams: FloatArray) -> FloatArray:
        """``S_lam(deadline)``, ``[state, multiplier]``: the best gain from stalling past the deadline
        (``deadline_s`` within the pass, ``deadline_bits`` delivered up to it, ``j`` its interval)."""
        n_lams = self.lams.size
        f_deadline = lams * deadline_bits[:, None] - (self.pen * (deadline_s - self.link.t0_s))[:, None]
        f_later = np.maximum(np.take(self.right_max, j * n_lams + idx),
                             np.take(self.left_max, (j - 1) * n_lams + idx) + self.pass_gain[idx])
        return np.maximum(f_later - f_deadline, 0.0)


def _viterbi_table(video: Video, qoe: QoEWeights, lams: FloatArray, allowed: BoolArray) -> FloatArray:
    """``[k, previous level, lam]``: the best ``sum(utility - lam * size) - smoothness`` from chunk k on."""
    utils = qoe.chunk_utilities(video)  # [n_chunks, n_levels]: rows differ only for per-chunk kinds (ssim)
    sizes = video.chunk_sizes_bits
    table = np.zeros((video.n_chunks + 1, lams.size, video.n_levels))
    for k in range(video.n_chunks - 1, -1, -1):
        util, before = utils[k], utils[max(k - 1, 0)]
        switch = qoe.smoothness_weight * np.abs(before[:, None] - util[None, :])  # [previous, next]
        gain = util[None, :] - lams[:, None] * sizes[k][None, :] + table[k + 1]
        gain = np.where(allowed[k][None, :], gain, -np.inf)
        table[k] = (gain[:, None, :] - switch[None, :, :]).max(axis=2)
    return np.ascontiguousarray(table.transpose(0, 2, 1))


def _multipliers(util: FloatArray, sizes: FloatArray, lam_cap: float) -> FloatArray:
    """The multipliers tried: 0, a geometric ladder up to ``lam_cap`` and quantiles of the per-chunk break
    points (where one level stops beating another, for every pair of levels), sorted. ``util`` is the
    ``[n_chunks, n_levels]`` utility table."""
    i, j = np.triu_indices(util.shape[1], k=1)
    d_util = util[:, j] - util[:, i]
    d_size = sizes[:, j] - sizes[:, i]
    with np.errstate(divide="ignore", invalid="ignore"):
        breaks = np.where(d_size > 0, d_util / d_size, np.nan)
    breaks = breaks[np.isfinite(breaks) & (breaks > 0) & (breaks < lam_cap)]
    half = N_MULTIPLIERS // 2
    inner = np.quantile(breaks, np.linspace(0.0, 1.0, half)) if breaks.size else np.zeros(0)
    ladder = lam_cap * np.geomspace(1e-3, 1.0, N_MULTIPLIERS - half - 1) if lam_cap > 0 else np.zeros(0)
    return np.unique(np.concatenate([[0.0], ladder, inner]))
