"""Vectorised trace-link arithmetic: the link contract (:mod:`simulator.link_contract`) for many link states.

A set of traces is packed into flat arrays (:class:`PackedTraces`): every trace's sample times, rates and
cumulative payload ``cum_bits[j]`` (payload delivered over ``(t_0, t_j]`` of its trace) lie back to back,
with offsets, so traces of any lengths share one batch. A link state is a *global* interval index ``g``
(the sample ending the interval in progress, ``offset + TraceLink.ptr``) and the trace clock ``clock_s``.

:func:`transfer` finds where a download of ``size_bits`` ends by bisection on ``cum_bits`` (whole passes
over a looping trace are counted arithmetically), and :func:`idle` does the same on the sample times; no
Python loop runs over trace samples. The semantics are the contract's, held equal to
:class:`~simulator.link.TraceLink` by ``tests/simulator/test_link_contract.py``.

Rounding (the contract's first deliberate difference): a chunk that completes inside its first interval gets
the walk's exact arithmetic. Otherwise the delivered total comes from differences of prefix sums instead of a
running sum, so results differ from TraceLink's by rounding only (observed below 1e-12 relative). The one
place where rounding could change a *decision* is a chunk that completes within rounding error of an
interval boundary (followed, say, by a zero-throughput gap); such near-ties are detected and replayed with
the walk's exact sequential arithmetic (:func:`walk_transfer`), so from the same link state the chosen
interval is always TraceLink's (the contract's note on exact ties after a long walk applies).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from simulator.errors import SimulationInvariantError
from simulator.link import MAX_TRACE_PASSES
from traces.types import Trace

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

_EPS = float(np.finfo(np.float64).eps)


@dataclass(frozen=True, slots=True)
class PackedTraces:
    """Traces of any lengths packed into flat arrays, ready for vectorised link arithmetic.

    Build it with :meth:`pack`. Index ``j`` of the flat arrays belongs to trace ``m`` when
    ``first_idx[m] <= j <= last_idx[m]``.

    Attributes:
        times_s: sample times of every trace, back to back, in seconds.
        rates_bps: throughput samples, in bits per second (sample ``j`` covers ``(t[j-1], t[j]]``).
        interval_bits: payload of the whole interval ending at sample ``j``, in bits (0 at a first sample).
        cum_bits: payload delivered from the trace's first sample time to sample ``j``, in bits.
        first_idx: flat index of each trace's first sample.
        last_idx: flat index of each trace's last sample.
        pass_bits: payload of one whole pass over each trace (``cum_bits[last_idx]``), in bits.
        pass_s: duration of one pass over each trace, in seconds.
        bits_per_pass: payload of one pass as TraceLink computes it for its refusal of too-slow traces
            (chunks above ``MAX_TRACE_PASSES * bits_per_pass`` are refused), in bits.
        names: the trace names (for error messages).
        payload_efficiency: share of the throughput that carries payload.
    """

    times_s: FloatArray
    rates_bps: FloatArray
    interval_bits: FloatArray
    cum_bits: FloatArray
    first_idx: IntArray
    last_idx: IntArray
    pass_bits: FloatArray
    pass_s: FloatArray
    bits_per_pass: FloatArray
    names: tuple[str, ...]
    payload_efficiency: float

    @classmethod
    def pack(cls, traces: Sequence[Trace], *, payload_efficiency: float) -> PackedTraces:
        """Pack ``traces`` for a link that delivers ``payload_efficiency`` of the throughput as payload.

        >>> packed = PackedTraces.pack([Trace(np.array([0.0, 1.0]), np.array([0.0, 2e6])),
        ...                             Trace(np.array([0.0, 2.0, 3.0]), np.array([0.0, 1e6, 4e6]))],
        ...                            payload_efficiency=1.0)
        >>> packed.first_idx.tolist(), packed.cum_bits.tolist()
        ([0, 2], [0.0, 2000000.0, 0.0, 2000000.0, 6000000.0])
        """
        if not traces:
            raise ValueError("no traces to pack: give at least one Trace")
        eff = float(payload_efficiency)
        lengths = np.array([t.times_s.size for t in traces], dtype=np.int64)
        first = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        times = np.concatenate([t.times_s for t in traces])
        rates = np.concatenate([t.throughput_bps for t in traces])
        interval = np.zeros_like(times)
        cum = np.zeros_like(times)
        per_pass = np.empty(len(traces))
        for m, trace in enumerate(traces):
            lo, hi = int(first[m]), int(first[m] + lengths[m])
            # The walk's per-interval arithmetic: rate * duration * efficiency, left to right.
            interval[lo + 1:hi] = rates[lo + 1:hi] * np.diff(times[lo:hi]) * eff
            cum[lo + 1:hi] = np.cumsum(interval[lo + 1:hi])
            steps = zip(trace.throughput_bps[1:].tolist(), trace.times_s.tolist(), trace.times_s[1:].tolist())
            per_pass[m] = float(sum(r * (t1 - t0) for r, t0, t1 in steps)) * eff
        last = first + lengths - 1
        packed = cls(times, rates, interval, cum, first, last, cum[last].copy(), times[last] - times[first],
                     per_pass, tuple(t.name for t in traces), eff)
        for array in (times, rates, interval, cum, first, last, packed.pass_bits, packed.pass_s, per_pass):
            array.flags.writeable = False
        return packed

    @property
    def n_traces(self) -> int:
        return len(self.names)

    def start(self, trace_idx: npt.ArrayLike, start_idx: npt.ArrayLike) -> LinkState:
        """The link state at interval ``start_idx`` (1 = the trace's start) of each trace ``trace_idx``.

        >>> packed = PackedTraces.pack([Trace(np.array([0.0, 1.0, 2.0]), np.array([0.0, 1e6, 1e6]))],
        ...                            payload_efficiency=1.0)
        >>> state = packed.start([0], [2])
        >>> state.interval_idx.tolist(), state.clock_s.tolist()
        ([2], [1.0])
        """
        m = np.asarray(trace_idx, dtype=np.int64)
        j = np.asarray(start_idx, dtype=np.int64)
        lengths = self.last_idx[m] - self.first_idx[m] + 1
        bad = (j < 1) | (j >= lengths)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"start_idx={int(j[i])} must be in [1, {int(lengths[i]) - 1}] "
                             f"for trace {self.names[int(m[i])]!r}")
        g = self.first_idx[m] + j
        return LinkState(g, self.times_s[g - 1].copy())

    def check_chunk_sizes(self, trace_idx: IntArray, size_bits: FloatArray) -> None:
        """Refuse chunks that need more than ``MAX_TRACE_PASSES`` passes, as TraceLink does.

        Raises:
            SimulationInvariantError: naming the first trace that is too slow.

        >>> packed = PackedTraces.pack([Trace(np.array([0.0, 1.0]), np.array([0.0, 1e3]), name="slow")],
        ...                            payload_efficiency=1.0)
        >>> packed.check_chunk_sizes(np.array([0]), np.array([1e6]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        simulator.errors.SimulationInvariantError: trace 'slow' delivers 1000 bits per pass; ...
        """
        too_big = size_bits > MAX_TRACE_PASSES * self.bits_per_pass[trace_idx]
        if np.any(too_big):
            i = int(np.argmax(too_big))
            m = int(trace_idx[i])
            per_pass = float(self.bits_per_pass[m])
            raise SimulationInvariantError(
                f"trace {self.names[m]!r} delivers {per_pass:.4g} bits per pass; a chunk of "
                f"{float(size_bits[i]):.4g} bits would need more than {MAX_TRACE_PASSES} passes over it. The "
                "trace is too slow for this video: scale it up (Trace.scaled) or use a lower ladder"
            )


class LinkState(NamedTuple):
    """Link states: the global index of the interval in progress and the trace clock (seconds)."""

    interval_idx: IntArray
    clock_s: FloatArray


class TransferResult(NamedTuple):
    """Where transfers end: the new link state and each transfer's time on the trace clock (seconds)."""

    interval_idx: IntArray
    clock_s: FloatArray
    elapsed_s: FloatArray


def bisect_right(values: FloatArray, x: FloatArray, lo: IntArray, hi: IntArray, n_steps: int) -> IntArray:
    """The first index ``i`` in ``[lo, hi)`` with ``values[i] > x``, for each query (segmented bisection).

    ``values`` must be non-decreasing on each ``[lo, hi)`` and every answer must exist
    (``values[hi - 1] > x``); ``n_steps`` must be at least ``ceil(log2(max(hi - lo) + 1))``.

    >>> bisect_right(np.array([0.0, 1.0, 1.0, 3.0, 0.0, 5.0]), np.array([1.0, 0.0]),
    ...              np.array([0, 4]), np.array([4, 6]), 3).tolist()
    [3, 5]
    """
    lo = lo.copy()
    hi = hi.copy()
    for _ in range(n_steps):
        mid = (lo + hi) >> 1
        right = values[mid] <= x
        np.copyto(lo, mid + 1, where=right)
        np.copyto(hi, mid, where=~right)
    return lo


def bisect_steps(packed: PackedTraces) -> int:
    """Bisection steps that suffice for the longest trace of ``packed``.

    >>> bisect_steps(PackedTraces.pack([Trace(np.arange(5.0), np.ones(5))], payload_efficiency=1.0))
    3
    """
    longest = int(np.max(packed.last_idx - packed.first_idx)) + 1
    return max(1, math.ceil(math.log2(longest + 1)))


def transfer(packed: PackedTraces, trace_idx: IntArray, state: LinkState, size_bits: FloatArray,
             n_steps: int | None = None) -> TransferResult:
    """Deliver ``size_bits`` of payload on each link; vectorised :meth:`TraceLink.transfer` (contract section 4).

    Args:
        packed: the traces.
        trace_idx: the trace of each link.
        state: the link states (global interval index and trace clock in seconds).
        size_bits: the chunk of each link, in bits (checked with :meth:`PackedTraces.check_chunk_sizes`).
        n_steps: bisection steps (default :func:`bisect_steps`).

    Returns:
        The new link states and the transfer times on the trace clock, in seconds.

    >>> packed = PackedTraces.pack([Trace(np.array([0.0, 10.0]), np.array([0.0, 1e6]))], payload_efficiency=1.0)
    >>> out = transfer(packed, np.array([0]), packed.start([0], [1]), np.array([12e6]))  # wraps once
    >>> out.interval_idx.tolist(), out.clock_s.tolist(), out.elapsed_s.tolist()
    ([1], [2.0], [12.0])
    """
    steps = bisect_steps(packed) if n_steps is None else n_steps
    T, R, C, eff = packed.times_s, packed.rates_bps, packed.cum_bits, packed.payload_efficiency
    g, clock = state
    lo, hi = packed.first_idx[trace_idx], packed.last_idx[trace_idx]
    rate = R[g]
    d_first = T[g] - clock
    p_first = rate * d_first * eff
    in_first = p_first > size_bits
    target = (size_bits - p_first) + C[g]  # in cum_bits coordinates of the current pass
    pass_bits = C[hi]
    wrap = (target >= pass_bits) & ~in_first
    k = np.where(in_first | wrap, hi, g + 1)  # bisect (g, hi] for the rest; placeholders elsewhere
    x = np.where(in_first | wrap, -1.0, target)
    k = bisect_right(C, x, k, hi + 1, steps)
    sent = p_first + (C[k - 1] - C[g])
    before_s = d_first + (T[k - 1] - T[g])
    passes = np.zeros(g.shape)
    if np.any(wrap):
        w = np.flatnonzero(wrap)
        k_w, sent_w, before_w, passes_w = _wrapped(packed, lo[w], hi[w], g[w], target[w], p_first[w],
                                                   d_first[w], steps)
        k[w], sent[w], before_s[w], passes[w] = k_w, sent_w, before_w, passes_w
    with np.errstate(divide="ignore", invalid="ignore"):
        frac_s = np.where(in_first, size_bits / rate / eff, (size_bits - sent) / R[k] / eff)
    new_g = np.where(in_first, g, k)
    elapsed_s = np.where(in_first, frac_s, before_s + frac_s)
    new_clock = np.where(in_first, clock, T[k - 1]) + frac_s
    # Near-ties: the chunk ends within rounding error of an interval boundary; replay those exactly.
    margin = (8 * _EPS) * ((hi - lo + 2) * (passes + 1)) * (size_bits + pass_bits * (passes + 1))
    tie = ~in_first & ((size_bits - sent <= margin) | (sent + packed.interval_bits[k] - size_bits <= margin))
    if np.any(tie):
        for i in np.flatnonzero(tie).tolist():
            new_g[i], new_clock[i], elapsed_s[i] = walk_transfer(
                packed, int(lo[i]), int(hi[i]), int(g[i]), float(clock[i]), float(size_bits[i]))
    return TransferResult(new_g, new_clock, elapsed_s)


def _wrapped(packed: PackedTraces, lo: IntArray, hi: IntArray, g: IntArray, target: FloatArray,
             p_first: FloatArray, d_first: FloatArray, steps: int) -> tuple[IntArray, FloatArray, FloatArray,
                                                                            FloatArray]:
    """The end of transfers that run past the last sample: (interval, sent before it, time before it, passes)."""
    T, C = packed.times_s, packed.cum_bits
    pass_bits = C[hi]
    rest = target - pass_bits  # payload still due after this pass
    q = np.floor(rest / pass_bits)
    r = rest - q * pass_bits
    over = r >= pass_bits
    q, r = np.where(over, q + 1, q), np.where(over, r - pass_bits, r)
    under = r < 0
    q, r = np.where(under, q - 1, q), np.where(under, r + pass_bits, r)
    r = np.clip(r, 0.0, np.nextafter(pass_bits, -np.inf))  # so that the answer lies in (lo, hi]
    k = bisect_right(C, r, lo + 1, hi + 1, steps)
    sent = ((p_first + (pass_bits - C[g])) + q * pass_bits) + C[k - 1]
    before_s = ((d_first + (T[hi] - T[g])) + q * (T[hi] - T[lo])) + (T[k - 1] - T[lo])
    return k, sent, before_s, q + 1


def walk_transfer(packed: PackedTraces, lo: int, hi: int, g: int, clock_s: float,
                  size_bits: float) -> tuple[int, float, float]:
    """One transfer with TraceLink's interval-by-interval arithmetic: (interval, clock in s, elapsed s).

    >>> packed = PackedTraces.pack([Trace(np.array([0.0, 10.0]), np.array([0.0, 1e6]))], payload_efficiency=1.0)
    >>> walk_transfer(packed, 0, 1, 1, 0.0, 12e6)
    (1, 2.0, 12.0)
    """
    T, R, eff = packed.times_s, packed.rates_bps, packed.payload_efficiency
    sent = 0.0
    elapsed = 0.0
    while True:
        rate = float(R[g])
        duration = float(T[g]) - clock_s
        payload = rate * duration * eff
        if sent + payload > size_bits:
            frac = (size_bits - sent) / rate / eff
            return g, clock_s + frac, elapsed + frac
        sent += payload
        elapsed += duration
        clock_s = float(T[g])
        g += 1
        if g > hi:
            g = lo + 1
            clock_s = float(T[lo])


def idle(packed: PackedTraces, trace_idx: IntArray, state: LinkState, duration_s: FloatArray,
         n_steps: int | None = None) -> LinkState:
    """Let ``duration_s`` pass on each link without delivery; vectorised :meth:`TraceLink.idle`.

    At an exact sample boundary the result may name the next interval where TraceLink names the one that
    just ended, or the other way round: the same position (see :mod:`simulator.link_contract`).

    >>> packed = PackedTraces.pack([Trace(np.array([0.0, 1.0, 4.0]), np.array([0.0, 1e6, 1e6]))],
    ...                            payload_efficiency=1.0)
    >>> after = idle(packed, np.array([0]), packed.start([0], [1]), np.array([5.5]))  # 4 s pass, then 1.5 s
    >>> after.interval_idx.tolist(), after.clock_s.tolist()
    ([2], [1.5])
    """
    steps = bisect_steps(packed) if n_steps is None else n_steps
    T = packed.times_s
    g, clock = state
    lo, hi = packed.first_idx[trace_idx], packed.last_idx[trace_idx]
    d_first = T[g] - clock
    in_first = d_first > duration_s
    rest = duration_s - d_first  # time still to pass after the interval in progress
    target = T[g] + rest
    wrap = (target >= T[hi]) & ~in_first
    x = np.where(in_first | wrap, -np.inf, target)
    k = bisect_right(T, x, np.where(in_first | wrap, hi, g + 1), hi + 1, steps)
    left_s = rest - (T[k - 1] - T[g])
    if np.any(wrap):
        w = np.flatnonzero(wrap)
        lo_w, hi_w = lo[w], hi[w]
        pass_s = T[hi_w] - T[lo_w]
        after = rest[w] - (T[hi_w] - T[g[w]])  # time still to pass after this pass
        q = np.floor(after / pass_s)
        r = after - q * pass_s
        r = np.where(r >= pass_s, r - pass_s, np.where(r < 0, r + pass_s, r))
        x_w = np.minimum(T[lo_w] + r, np.nextafter(T[hi_w], -np.inf))  # the answer lies in (lo, hi]
        k_w = bisect_right(T, x_w, lo_w + 1, hi_w + 1, steps)
        k[w] = k_w
        left_s[w] = r - (T[k_w - 1] - T[lo_w])
    left_s = np.clip(left_s, 0.0, T[k] - T[k - 1])
    new_clock = np.where(in_first, clock + duration_s, T[k - 1] + left_s)
    return LinkState(np.where(in_first, g, k), new_clock)
