"""A trace-driven link on SimPy: the reference implementation of the link contract.

What a transfer, an idle, the RTT, looping, the too-slow refusal and the noise cost is written once, in
:mod:`simulator.link_contract`; every other link model is held equal to :class:`TraceLink` by a differential
test. Here the trace is walked interval by interval: a pointer marks the interval in progress and a clock the
position inside it, and every trace change during a transfer or an idle period is a SimPy timeout, so the
SimPy clock (session wall time) and the trace clock move together except where the contract parts them (the
frozen-trace RTT and the download-time noise, which :class:`simulator.des.Session` and ``dilation`` apply).
"""

from __future__ import annotations

from collections.abc import Generator

import simpy

from simulator.errors import ConfigError, SimulationInvariantError
from traces.types import Trace, Video

#: A download that would need more than this many full passes over its trace is refused as stuck: the
#: trace is far too slow for the video (or nearly all zero), and walking it would take practically forever
#: (the link contract, :mod:`simulator.link_contract`, section 5).
MAX_TRACE_PASSES = 100


def check_trace_feasible(trace: Trace, video: Video, payload_efficiency: float, *, trace_set: str = "") -> None:
    """Refuse a trace on which some chunk of ``video`` would need more than ``MAX_TRACE_PASSES`` passes.

    :class:`TraceLink` refuses such a chunk only when a session asks for it; this checks every level of the
    video up front (an agent may ask for any), so that a run can refuse the trace before it starts.

    >>> import numpy as np
    >>> slow = Trace(np.array([0.0, 10.0]), np.array([1.0, 1.0]), name="slow")
    >>> video = Video(np.array([1e5, 2e5]), 4.0, np.full((3, 2), 4e5), name="v")
    >>> check_trace_feasible(slow, video, 0.95)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: trace 'slow' delivers 9.5 bits per pass over its 10 s...
    """
    times, rates = trace.times_s, trace.throughput_bps
    bits_per_pass = float(rates[1:] @ (times[1:] - times[:-1])) * payload_efficiency
    largest = float(video.chunk_sizes_bits.max())
    if largest > MAX_TRACE_PASSES * bits_per_pass:
        where = f" ({trace.source})" if trace.source else ""
        in_set = f" of trace set {trace_set!r}" if trace_set else ""
        raise ConfigError(
            f"trace {trace.name!r}{where}{in_set} delivers {bits_per_pass:.4g} bits per pass over its "
            f"{trace.duration_s:g} s; the largest chunk of video {video.name!r} ({largest:.4g} bits) would need "
            f"more than {MAX_TRACE_PASSES} passes: the trace is too slow for this video. Remove it, scale the set "
            "up (--scale-mean-mbps) or use a lower ladder"
        )


class TraceLink:
    """The bottleneck link of one session, driven by a throughput trace (the contract's reference).

    Args:
        env: the SimPy environment.
        trace: the throughput trace.
        payload_efficiency: share of the throughput that carries payload.
        start_idx: index of the first interval (``1`` = the trace's start).
    """

    def __init__(self, env: simpy.Environment, trace: Trace, *, payload_efficiency: float,
                 start_idx: int = 1) -> None:
        if not 1 <= start_idx < trace.times_s.size:
            raise ValueError(f"start_idx={start_idx} must be in [1, {trace.times_s.size - 1}]")
        self.env = env
        self.trace = trace
        self.payload_efficiency = payload_efficiency
        # Plain Python lists: indexing them is several times faster than numpy scalars in this loop.
        self._times_s: list[float] = trace.times_s.tolist()
        self._rates_bps: list[float] = trace.throughput_bps.tolist()
        self.ptr = start_idx
        self.clock_s = self._times_s[start_idx - 1]
        self.bits_per_pass = float(
            sum(r * (t1 - t0) for r, t0, t1 in zip(self._rates_bps[1:], self._times_s, self._times_s[1:]))
        ) * payload_efficiency
        self.delivered_bits = 0.0

    def __getstate__(self) -> dict[str, object]:
        # The owner re-attaches a SimPy environment after unpickling (see Session.__setstate__).
        return {name: value for name, value in self.__dict__.items() if name != "env"}

    def _advance_ptr(self) -> None:
        self.ptr += 1
        if self.ptr >= len(self._times_s):
            self.ptr = 1
            self.clock_s = self._times_s[0]

    def transfer(self, size_bits: float, dilation: float = 1.0) -> Generator[simpy.Event, object, float]:
        """Deliver ``size_bits`` of payload; returns the transfer time on the trace clock, in seconds.

        Wall time advances by ``dilation`` times the trace time (download-time noise: contract sections 4, 5, 8).
        """
        times, rates, eff = self._times_s, self._rates_bps, self.payload_efficiency
        if size_bits > MAX_TRACE_PASSES * self.bits_per_pass:
            raise SimulationInvariantError(
                f"trace {self.trace.name!r} delivers {self.bits_per_pass:.4g} bits per pass; a chunk of "
                f"{size_bits:.4g} bits would need more than {MAX_TRACE_PASSES} passes over it. The trace is "
                "too slow for this video: scale it up (Trace.scaled) or use a lower ladder"
            )
        sent_bits = 0.0
        elapsed_s = 0.0
        while True:
            rate_bps = rates[self.ptr]
            duration_s = times[self.ptr] - self.clock_s
            payload_bits = rate_bps * duration_s * eff
            if sent_bits + payload_bits > size_bits:
                fraction_s = (size_bits - sent_bits) / rate_bps / eff
                elapsed_s += fraction_s
                self.clock_s += fraction_s
                yield self.env.timeout(fraction_s * dilation)
                break
            sent_bits += payload_bits
            elapsed_s += duration_s
            self.clock_s = times[self.ptr]
            self._advance_ptr()
            if duration_s > 0:
                yield self.env.timeout(duration_s * dilation)
        self.delivered_bits += size_bits
        return elapsed_s

    def idle(self, duration_s: float) -> Generator[simpy.Event, object, None]:
        """Let ``duration_s`` pass on the link without delivering anything (the trace clock runs)."""
        times = self._times_s
        remaining_s = duration_s
        while True:
            interval_s = times[self.ptr] - self.clock_s
            if interval_s > remaining_s:
                self.clock_s += remaining_s
                yield self.env.timeout(remaining_s)
                return
            remaining_s -= interval_s
            self.clock_s = times[self.ptr]
            self._advance_ptr()
            if interval_s > 0:
                yield self.env.timeout(interval_s)
