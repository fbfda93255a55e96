"""Vectorised session dynamics and a Lagrangian upper bound, for the offline optimum (``agents.optimal``).

:class:`VectorLink` is :class:`simulator.link.TraceLink` evaluated for many link states at once: a link
state is the trace clock ``p`` (seconds, in ``[t_0, t_last]``; the interval in progress is the first one
ending after ``p``, which TraceLink's pointer agrees with up to equivalent states at sample boundaries).
Transfers are solved in closed form from the cumulative payload ``cum[i]`` delivered from ``t_0`` to
``t_i``, with whole passes over the looping trace counted separately, instead of walking samples.

:class:`FutureBound` bounds the QoE still to come from a state. Relaxing the buffer cap (forced idling can
only delay downloads on a first-in-first-out link), the remaining chunks ``k..N-1`` must satisfy
``sum of sizes <= D(u + b + deadline offset + R) - D(u)``, with ``D`` the unwrapped cumulative payload,
``u``, ``b`` the link position and buffer and ``R`` the future rebuffering. Dualising that one constraint
with a multiplier ``lam`` in ``[0, rebuffer_penalty / (max rate * efficiency)]`` (so that rebuffering to gain
link time never pays) gives, for every such ``lam``,
``future QoE <= G_k(lam, last level) + lam * (D(u + b + offset) - D(u))``, where ``G_k`` is the best
``sum(utility - lam * size) - smoothness`` over the remaining chunks: a small Viterbi recursion per ``lam``.
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

N_MULTIPLIERS = 48  # multipliers lam tried per state by the bound (quantiles of the per-chunk break points)


class VectorLink:
    """TraceLink's transfer and idle arithmetic for arrays of link states.

    Args:
        trace: the throughput trace.
        payload_efficiency: share of the throughput that carries payload.

    >>> link = VectorLink(Trace(np.array([0.0, 10.0]), np.array([1e6, 1e6])), payload_efficiency=1.0)
    >>> clock_s, transfer_s = link.transfer(np.array([9.0]), np.array([3e6]))  # wraps once
    >>> float(clock_s[0]), float(transfer_s[0])
    (2.0, 3.0)
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
        # TraceLink refuses chunks larger than this (same arithmetic as TraceLink.bits_per_pass).
        engine_pass_bits = float(sum(r * d for r, d in zip(rates_bps[1:].tolist(), steps_s.tolist())))
        self.max_chunk_bits = MAX_TRACE_PASSES * engine_pass_bits * payload_efficiency
        active = steps_s > 0
        self.max_payload_bps = float(self.payload_bps[1:][active].max())

    def delivered_bits(self, clock_s: FloatArray) -> FloatArray:
        """Payload delivered from ``t_0`` to the trace clock ``clock_s`` (in one pass), in bits."""
        j = np.clip(np.searchsorted(self.times_s, clock_s, side="right"), 1, self.n - 1)
        return self.cum_bits[j - 1] + self.payload_bps[j] * (clock_s - self.times_s[j - 1])

    def delivered_ahead_bits(self, clock_s: FloatArray, ahead_s: FloatArray) -> FloatArray:
        """Payload the link can deliver from ``clock_s`` during the next ``ahead_s`` seconds, in bits."""
        x = clock_s - self.t0_s + ahead_s
        passes = np.floor(x / self.period_s)
        later = self.delivered_bits(self.t0_s + (x - passes * self.period_s))
        return passes * self.pass_bits + later - self.delivered_bits(clock_s)

    def transfer(self, clock_s: FloatArray, size_bits: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Deliver ``size_bits`` from ``clock_s``; returns (new trace clock, transfer time), in seconds."""
        target = self.delivered_bits(clock_s) + size_bits
        passes = np.floor(target / self.pass_bits)
        rest = target - passes * self.pass_bits
        # The chunk completes in the first interval whose end-of-interval total strictly exceeds it.
        k = np.clip(np.searchsorted(self.cum_bits, rest, side="right"), 1, self.n - 1)
        done_s = self.times_s[k - 1] + (rest - self.cum_bits[k - 1]) / self.payload_bps[k]
        return done_s, passes * self.period_s + (done_s - clock_s)

    def advance(self, clock_s: FloatArray, duration_s: FloatArray | float) -> FloatArray:
        """The trace clock after ``duration_s`` seconds without delivery (idle), looping as TraceLink does."""
        x = clock_s - self.t0_s + duration_s
        return self.t0_s + (x - np.floor(x / self.period_s) * self.period_s)


class FutureBound:
    """Upper bound on the QoE of the chunks after a state (see the module docstring).

    Args:
        video: the (truncated) video.
        config: the simulator config.
        qoe: the QoE model.
        link: the vectorised link of the trace.
        allowed: ``[n_chunks, n_levels]`` which levels each chunk may take.
    """

    def __init__(self, video: Video, config: SimConfig, qoe: QoEWeights, link: VectorLink,
                 allowed: npt.NDArray[np.bool_]) -> None:
        self.link = link
        sizes = video.chunk_sizes_bits
        util = qoe.utilities(video.bitrates_bps)
        n_chunks = video.n_chunks
        rtt_frozen_s = 0.0 if config.rtt_advances_trace else config.link_rtt_s
        self.step_s = video.chunk_duration_s - rtt_frozen_s
        self.rtt_frozen_s = rtt_frozen_s
        self.n_chunks = n_chunks
        self.lams = _multipliers(util, sizes, qoe.rebuffer_penalty / link.max_payload_bps)
        switch = qoe.smoothness_weight * np.abs(util[:, None] - util[None, :])  # [previous, next]
        table = np.zeros((n_chunks + 1, self.lams.size, util.size))
        for k in range(n_chunks - 1, -1, -1):
            gain = util[None, :] - self.lams[:, None] * sizes[k][None, :] + table[k + 1]
            gain = np.where(allowed[k][None, :], gain, -np.inf)
            table[k] = (gain[:, None, :] - switch[None, :, :]).max(axis=2)
        self.table = table  # [k, lam, previous level]: best future from chunk k on

    def future(self, next_idx: int, clock_s: FloatArray, buffer_s: FloatArray, last_idx: IntArray,
               is_playing: npt.NDArray[np.bool_]) -> FloatArray:
        """Upper bound on the QoE of chunks ``next_idx..N-1`` from states after chunk ``next_idx - 1``."""
        if next_idx >= self.n_chunks:
            return np.zeros(clock_s.size)
        table = self.table[next_idx]
        ahead_s = buffer_s + (self.n_chunks - 1 - next_idx) * self.step_s - self.rtt_frozen_s
        bits = self.link.delivered_ahead_bits(clock_s, ahead_s)  # negative when the deadline has passed
        bound = (table[:, last_idx].T + self.lams[None, :] * bits[:, None]).min(axis=1)
        # Before playback starts the buffer does not drain: fall back to ignoring the link (lam = 0).
        return np.where(is_playing, bound, table[0, last_idx])


def _multipliers(util: FloatArray, sizes: FloatArray, lam_max: float) -> FloatArray:
    """The multipliers tried: 0, the cap, and quantiles of the per-chunk break points in between."""
    d_util = np.diff(util)[None, :]
    d_size = np.diff(sizes, axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        breaks = np.where(d_size > 0, d_util / d_size, np.nan)
    breaks = breaks[np.isfinite(breaks) & (breaks > 0) & (breaks < lam_max)]
    inner = np.quantile(breaks, np.linspace(0.0, 1.0, N_MULTIPLIERS - 2)) if breaks.size else np.zeros(0)
    return np.unique(np.concatenate([[0.0, lam_max], inner]))
