"""A trace-driven bottleneck shared by several players: processor sharing on SimPy.

The sharing model is the link contract's (:mod:`simulator.link_contract`, section 10: egalitarian processor
sharing, the fluid idealisation of TCP flows with equal RTTs; the trace clock runs with the SimPy clock from
``start_idx`` and loops; noise and the frozen-trace RTT are refused). Here rates are re-planned at every
arrival (a transfer starts), departure (one finishes or is cancelled) and trace change. Between two such
events every rate is constant, so each transfer's progress is exact (piecewise linear), not time-stepped, and
the link is work-conserving (while any transfer is active the shares add up to the capacity, and never
exceed it). ``tests/simulator/test_link_contract.py`` holds it equal to :class:`~simulator.link.TraceLink`,
with one player and with ``n`` identical ones.

Each player talks to the link through its own :class:`SharedLinkPort`, which has the interface of
:class:`~simulator.link.TraceLink` (``transfer``, ``idle``) so :class:`simulator.des.Session` runs on it
unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import NamedTuple

import simpy

from simulator.errors import ConfigError, SimulationInvariantError
from simulator.link import MAX_TRACE_PASSES
from traces.types import Trace

#: A transfer with at most this many bits left (relative to its size) is complete: the planned completion
#: time is exact, so what remains is floating-point rounding.
COMPLETION_RTOL = 1e-9
#: Absolute part of that tolerance, in bits.
COMPLETION_ATOL_BITS = 1e-6
#: Events closer than this (in seconds; more at large clock values, where floats are coarser) count as
#: simultaneous: a trace change or a completion due within it is taken now. Without it a timer could be
#: scheduled closer than the clock's resolution and fire forever without progress.
SNAP_S = 1e-10


def _snap_s(now_s: float) -> float:
    return max(SNAP_S, abs(now_s) * 1e-14)


class RateInterval(NamedTuple):
    """One interval of constant rates on the shared link (recorded when ``record_rates`` is set).

    Attributes:
        start_s: wall time the interval starts, in seconds.
        end_s: wall time it ends, in seconds.
        capacity_bps: payload capacity of the link in the interval, in bits per second.
        rates_bps: rate of each active transfer, by transfer id, in bits per second.
    """

    start_s: float
    end_s: float
    capacity_bps: float
    rates_bps: dict[int, float]


@dataclass(slots=True)
class _Transfer:
    transfer_id: int
    port_id: int
    size_bits: float
    remaining_bits: float
    done: simpy.Event
    start_s: float
    delivered_bits: float = 0.0


@dataclass(slots=True)
class SharedLink:
    """A processor-sharing bottleneck driven by a throughput trace (see :mod:`simulator.link_contract`).

    Args:
        env: the SimPy environment.
        trace: the throughput trace of the bottleneck.
        payload_efficiency: share of the throughput that carries payload.
        start_idx: index of the first trace interval at the environment's current time (1 = the trace's start).
        record_rates: keep a :class:`RateInterval` log of every constant-rate interval (for tests and plots).

    >>> import numpy as np
    >>> env = simpy.Environment()
    >>> link = SharedLink(env, Trace(np.array([0.0, 100.0]), np.array([2e6, 2e6])), payload_efficiency=1.0)
    >>> a, b = link.port(), link.port()
    >>> pa, pb = env.process(a.transfer(2e6)), env.process(b.transfer(2e6))
    >>> env.run()
    >>> pa.value, pb.value  # two equal transfers share 2 Mbit/s: 2 Mbit each in 2 s
    (2.0, 2.0)
    """

    env: simpy.Environment
    trace: Trace
    payload_efficiency: float
    start_idx: int = 1
    record_rates: bool = False
    rate_log: list[RateInterval] = field(default_factory=list)
    delivered_bits: float = 0.0
    _times_s: list[float] = field(default_factory=list)
    _rates_bps: list[float] = field(default_factory=list)
    bits_per_pass: float = 0.0
    _ptr: int = 1
    _clock_s: float = 0.0
    _last_s: float = 0.0
    _active: list[_Transfer] = field(default_factory=list)
    _plan_generation: int = 0
    _next_transfer_id: int = 0
    _next_port_id: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.payload_efficiency <= 1:
            raise ConfigError(f"payload_efficiency={self.payload_efficiency} must be in (0, 1]")
        n_samples = self.trace.times_s.size
        if not 1 <= self.start_idx < n_samples:
            raise ConfigError(f"start_idx={self.start_idx} must be in [1, {n_samples - 1}]")
        self._times_s = self.trace.times_s.tolist()
        self._rates_bps = self.trace.throughput_bps.tolist()
        self.bits_per_pass = float(sum(r * (t1 - t0) for r, t0, t1 in zip(
            self._rates_bps[1:], self._times_s, self._times_s[1:]))) * self.payload_efficiency
        self._ptr = self.start_idx
        self._clock_s = self._times_s[self.start_idx - 1]
        self._last_s = float(self.env.now)
        self._skip_empty_intervals()

    # -- the public interface -----------------------------------------------------------------------------

    def port(self) -> SharedLinkPort:
        """A new player's port on this link."""
        self._next_port_id += 1
        return SharedLinkPort(self, self._next_port_id - 1)

    @property
    def active_count(self) -> int:
        """Transfers in progress."""
        return len(self._active)

    def capacity_bps(self) -> float:
        """The payload capacity now, in bits per second."""
        self._advance()
        return self._rates_bps[self._ptr] * self.payload_efficiency

    # -- the fluid model ----------------------------------------------------------------------------------

    def _start(self, port_id: int, size_bits: float) -> _Transfer:
        self._advance()
        transfer = _Transfer(self._next_transfer_id, port_id, float(size_bits), float(size_bits),
                             self.env.event(), float(self.env.now))
        self._next_transfer_id += 1
        self._active.append(transfer)
        self._plan()
        return transfer

    def _cancel(self, transfer: _Transfer) -> None:
        self._advance()
        if transfer in self._active:
            self._active.remove(transfer)
        self._plan()

    def _skip_empty_intervals(self) -> None:
        """Move past intervals too short to schedule (zero length, or below the clock's resolution)."""
        times = self._times_s
        snap_s = _snap_s(float(self.env.now))
        for _ in range(len(times)):
            if times[self._ptr] - self._clock_s > snap_s:
                return
            self._next_interval()
        raise SimulationInvariantError(f"trace {self.trace.name!r} has no interval longer than {snap_s} s")

    def _next_interval(self) -> None:
        self._ptr += 1
        if self._ptr >= len(self._times_s):  # the trace loops
            self._ptr = 1
            self._clock_s = self._times_s[0]
        else:
            self._clock_s = self._times_s[self._ptr - 1]

    def _advance(self) -> None:
        """Bring every transfer's progress and the trace clock to the environment's current time."""
        now_s = float(self.env.now)
        elapsed_s = now_s - self._last_s
        start_s = self._last_s
        self._last_s = now_s
        times, rates = self._times_s, self._rates_bps
        snap_s = _snap_s(now_s)
        period_s = times[-1] - times[0]
        if not self._active and elapsed_s > period_s:
            elapsed_s = math.fmod(elapsed_s, period_s)  # whole passes bring the trace clock back where it was
        while elapsed_s > 0.0:
            interval_left_s = times[self._ptr] - self._clock_s
            step_s = interval_left_s if elapsed_s >= interval_left_s - snap_s else elapsed_s
            capacity_bps = rates[self._ptr] * self.payload_efficiency
            if self._active:
                share_bps = capacity_bps / len(self._active)
                for transfer in self._active:
                    transfer.remaining_bits -= share_bps * step_s
                    transfer.delivered_bits += share_bps * step_s
                if self.record_rates:
                    self.rate_log.append(RateInterval(start_s, start_s + step_s, capacity_bps,
                                                      {t.transfer_id: share_bps for t in self._active}))
            start_s += step_s
            elapsed_s -= step_s
            if step_s == interval_left_s:
                self._next_interval()
                self._skip_empty_intervals()
            else:
                self._clock_s += step_s

    def _plan(self) -> None:
        """Finish the transfers that are done, then schedule the next event (completion or trace change)."""
        share_bps = self._rates_bps[self._ptr] * self.payload_efficiency / max(len(self._active), 1)
        snap_bits = share_bps * _snap_s(float(self.env.now))
        finished = [t for t in self._active
                    if t.remaining_bits <= max(COMPLETION_RTOL * t.size_bits + COMPLETION_ATOL_BITS, snap_bits)]
        for transfer in finished:
            self._active.remove(transfer)
            self.delivered_bits += transfer.size_bits
            transfer.done.succeed(float(self.env.now) - transfer.start_s)
        self._plan_generation += 1
        if not self._active:
            return
        interval_left_s = self._times_s[self._ptr] - self._clock_s
        share_bps = self._rates_bps[self._ptr] * self.payload_efficiency / len(self._active)
        delay_s = interval_left_s
        if share_bps > 0:
            delay_s = min(delay_s, min(t.remaining_bits for t in self._active) / share_bps)
        generation = self._plan_generation
        timer = self.env.timeout(max(delay_s, 0.0))
        timer.callbacks.append(lambda _event: self._on_timer(generation))

    def _on_timer(self, generation: int) -> None:
        if generation != self._plan_generation:  # re-planned since: a stale timer
            return
        self._advance()
        self._plan()


@dataclass(slots=True)
class SharedLinkPort:
    """One player's access to a :class:`SharedLink`, with the interface of :class:`~simulator.link.TraceLink`."""

    link: SharedLink
    port_id: int
    delivered_bits: float = 0.0

    def transfer(self, size_bits: float, dilation: float = 1.0) -> Generator[simpy.Event, object, float]:
        """Deliver ``size_bits`` sharing the link; returns the transfer time in seconds.

        Raises:
            ConfigError: ``dilation`` is not 1 (download-time noise is a single-client convention).
        """
        if dilation != 1.0:
            raise ConfigError("download-time noise is not supported on a shared link: use a config without noise")
        if not (math.isfinite(size_bits) and size_bits > 0):
            raise SimulationInvariantError(f"size_bits={size_bits} must be a finite number > 0")
        if size_bits > MAX_TRACE_PASSES * self.link.bits_per_pass:
            raise SimulationInvariantError(
                f"trace {self.link.trace.name!r} delivers {self.link.bits_per_pass:.4g} bits per pass; a chunk of "
                f"{size_bits:.4g} bits would need more than {MAX_TRACE_PASSES} passes over it even alone on the "
                "link. The trace is too slow for this video: scale it up (Trace.scaled) or use a lower ladder"
            )
        transfer = self.link._start(self.port_id, size_bits)
        try:
            elapsed = yield transfer.done
        except simpy.Interrupt:
            self.link._cancel(transfer)
            raise
        self.delivered_bits += size_bits
        assert isinstance(elapsed, float)
        return elapsed

    def idle(self, duration_s: float) -> Generator[simpy.Event, object, None]:
        """Let ``duration_s`` pass without a transfer (the link's trace clock runs on for everyone)."""
        yield self.link.env.timeout(duration_s)
