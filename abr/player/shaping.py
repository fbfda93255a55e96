"""Delivery shaped to a throughput trace: one shared link, in real time, for the player server.

The link model is the project's link contract (:mod:`simulator.link_contract`), in wall-clock time: see its
"Deliberate differences" for how the player maps onto it (session time is wall time since the session's first
shaped request times ``speed``; the trace clock runs during the RTT and while the player idles; no noise; no
refusal; capacity granted in ticks). Compare real sessions with simulated ones under the ``realistic`` preset.
A page playing at ``video.playbackRate = speed`` keeps its buffer in step with the sped-up link.

:class:`TraceClock` is the pure time accounting (payload offered by a time, and when a lone transfer ends);
:class:`PlayerLink` paces the responses: every few milliseconds of wall time the capacity the trace offered
since the last tick is split equally among the transfers in progress; a transfer that needs less than its share
gets what it needs and the rest is split among the others (water-filling). Capacity offered while no transfer
is active is lost, as on a real link. The sum of the bytes granted never exceeds the capacity (a property the
tests check).

Accounting (:class:`LinkStats`, :attr:`PlayerLink.stats`): the bits granted to each client, and at every
tick the grants of the transfers still backlogged after it (those that got less than they needed): with fair
sharing they are equal, so the largest ratio of two such grants in one tick stays 1. It is the server's own
record of how the link was shared, whatever the clients' clocks and scheduling.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from abr.errors import ConfigError
from traces.types import Trace

DEFAULT_TICK_S = 0.003


class TraceClock:
    """Payload capacity of a trace, as a function of session time since the trace's start (looping).

    The pure time accounting of the player's link (see :mod:`simulator.link_contract`).

    >>> import numpy as np
    >>> from traces.types import Trace
    >>> clock = TraceClock(Trace(np.array([0.0, 1.0, 2.0]), np.array([8e6, 8e6, 4e6])), payload_efficiency=1.0)
    >>> clock.bits_until(1.5), clock.bits_until(2.0), clock.bits_until(3.0)  # (0,1] at 8, (1,2] at 4; loops
    (10000000.0, 12000000.0, 20000000.0)
    >>> clock.finish_s(1.5, 12e6)  # 2 Mbit by 2.0, 8 more by 3.0 (looped: (0,1] again), the last 2 by 3.5
    3.5
    """

    def __init__(self, trace: Trace, *, payload_efficiency: float) -> None:
        times = np.asarray(trace.times_s, dtype=np.float64)
        rates = np.asarray(trace.throughput_bps, dtype=np.float64)
        if times.size < 2:
            raise ConfigError(f"trace {trace.name!r} has {times.size} sample(s); the link needs at least 2")
        self.offsets_s = times - times[0]
        self.duration_s = float(self.offsets_s[-1])
        bits = np.concatenate([[0.0], np.cumsum(rates[1:] * np.diff(times))]) * payload_efficiency
        self.cum_bits = bits
        self.bits_per_pass = float(bits[-1])
        if not self.bits_per_pass > 0:
            raise ConfigError(f"trace {trace.name!r} delivers nothing (all zero throughput); it cannot shape a link")

    def bits_until(self, t_s: float) -> float:
        """Payload bits the link offers from the trace's start until ``t_s`` seconds later."""
        passes, rest = divmod(max(t_s, 0.0), self.duration_s)
        return passes * self.bits_per_pass + float(np.interp(rest, self.offsets_s, self.cum_bits))

    def finish_s(self, start_s: float, size_bits: float) -> float:
        """When a transfer alone on the link, offered the capacity from ``start_s`` on, has ``size_bits``.

        The inverse of :meth:`bits_until`: the earliest session time ``t >= start_s`` (seconds) with
        ``bits_until(t) - bits_until(start_s) >= size_bits``. :meth:`PlayerLink.grant` ends such a transfer at
        its first tick at or after this time.
        """
        start_s = max(start_s, 0.0)
        if not size_bits > 0:
            return start_s
        target = self.bits_until(start_s) + size_bits
        per_pass = self.bits_per_pass
        passes = math.ceil(target / per_pass) - 1  # whole passes before the one where ``target`` is reached
        rest = target - passes * per_pass  # in (0, per_pass], up to rounding
        if rest <= 0:
            passes, rest = passes - 1, rest + per_pass
        elif rest > per_pass:
            passes, rest = passes + 1, rest - per_pass
        cum, offsets = self.cum_bits, self.offsets_s
        i = int(np.searchsorted(cum, min(rest, per_pass), side="left"))  # first sample with cum_bits >= rest
        i = min(max(i, 1), cum.size - 1)
        inside_s = (rest - cum[i - 1]) * (offsets[i] - offsets[i - 1]) / (cum[i] - cum[i - 1])
        return max(passes * self.duration_s + float(offsets[i - 1] + inside_s), start_s)

    def rate_at(self, t_s: float) -> float:
        """Payload throughput (bit/s) at ``t_s`` seconds after the trace's start."""
        rest = max(t_s, 0.0) % self.duration_s
        i = int(np.searchsorted(self.offsets_s, rest, side="right"))
        i = min(max(i, 1), self.offsets_s.size - 1)
        return float((self.cum_bits[i] - self.cum_bits[i - 1]) / (self.offsets_s[i] - self.offsets_s[i - 1]))


def water_fill(capacity: float, demands: Sequence[float]) -> list[float]:
    """Split ``capacity`` equally among ``demands``, none getting more than it asks (max-min fairness).

    >>> water_fill(9.0, [1.0, 10.0, 10.0])
    [1.0, 4.0, 4.0]
    >>> water_fill(9.0, [1.0, 2.0])
    [1.0, 2.0]
    """
    grants = [0.0] * len(demands)
    left = capacity
    open_ = sorted(range(len(demands)), key=lambda i: demands[i])
    while open_ and left > 1e-12:
        share = left / len(open_)
        i = open_[0]
        if demands[i] <= share:
            grants[i] = demands[i]
            left -= demands[i]
            open_.pop(0)
        else:
            for j in open_:
                grants[j] = share
            left = 0.0
            break
    return grants


@dataclass(slots=True)
class Transfer:
    """One shaped response in progress: what it needs and what it was granted (bytes)."""

    size: int
    label: str
    granted: float = 0.0
    client: str = ""
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    request_wall: float = 0.0
    first_byte_wall: float = math.nan
    end_wall: float = math.nan

    @property
    def needed(self) -> float:
        return self.size - self.granted


@dataclass(slots=True)
class LinkStats:
    """How a :class:`PlayerLink` shared its capacity in one session (see the module docstring).

    Attributes:
        granted_bits_by_client: payload bits granted to each client (the ``client`` of :meth:`PlayerLink.send`).
        transfers_by_client: responses sent to each client.
        offered_bits: payload bits the trace offered while transfers were active.
        shared_ticks: ticks after which two or more transfers were still backlogged (short of their size).
        max_backlogged: the most transfers backlogged after one tick.
        max_backlogged_grant_ratio: over all ticks, the largest ratio of two grants to backlogged transfers in
            the same tick (1.0: every backlogged transfer got the same share; ``inf`` if one got nothing).
    """

    granted_bits_by_client: dict[str, float] = field(default_factory=dict)
    transfers_by_client: dict[str, int] = field(default_factory=dict)
    offered_bits: float = 0.0
    shared_ticks: int = 0
    max_backlogged: int = 0
    max_backlogged_grant_ratio: float = 1.0

    def record(self, offered_bits: float, clients: Sequence[str], grants_bits: Sequence[float],
               backlogged: Sequence[bool]) -> None:
        """Account one tick: the bits offered, and each transfer's client, grant (bits) and whether it is still
        backlogged.

        >>> stats = LinkStats()
        >>> stats.record(30.0, ["a", "b", "c"], [5.0, 10.0, 10.0], [False, True, True])  # fair: b and c equal
        >>> stats.record(30.0, ["a", "b", "c"], [0.0, 20.0, 10.0], [True, True, True])  # a got nothing
        >>> stats.granted_bits_by_client, stats.shared_ticks, stats.max_backlogged_grant_ratio
        ({'a': 5.0, 'b': 30.0, 'c': 20.0}, 2, inf)
        """
        self.offered_bits += offered_bits
        for client, bits in zip(clients, grants_bits, strict=True):
            self.granted_bits_by_client[client] = self.granted_bits_by_client.get(client, 0.0) + bits
        shares = [bits for bits, short in zip(grants_bits, backlogged, strict=True) if short]
        self.max_backlogged = max(self.max_backlogged, len(shares))
        if len(shares) >= 2:
            self.shared_ticks += 1
            low, high = min(shares), max(shares)
            ratio = high / low if low > 0 else math.inf
            self.max_backlogged_grant_ratio = max(self.max_backlogged_grant_ratio, ratio)

    def as_dict(self) -> dict[str, object]:
        """The stats as JSON-ready values (``inf`` as ``None``)."""
        ratio = self.max_backlogged_grant_ratio
        return {"granted_bits_by_client": dict(self.granted_bits_by_client),
                "transfers_by_client": dict(self.transfers_by_client), "offered_bits": self.offered_bits,
                "granted_bits": sum(self.granted_bits_by_client.values()), "shared_ticks": self.shared_ticks,
                "max_backlogged": self.max_backlogged,
                "max_backlogged_grant_ratio": ratio if math.isfinite(ratio) else None}


@dataclass(frozen=True, slots=True)
class TransferRecord:
    """What the link did for one response, in session seconds (wall seconds since the session start x speed)."""

    label: str
    size_bytes: int
    request_s: float
    first_byte_s: float
    end_s: float
    concurrent_max: int


class PlayerLink:
    """A trace-shaped link shared by every response that goes through :meth:`send` (see the module docstring).

    Args:
        trace: the throughput trace.
        payload_efficiency: share of the throughput that carries payload (the simulator's 0.95).
        rtt_s: request round-trip time in session seconds (the simulator's 0.08), waited before the first byte.
        speed: time scale (session seconds per wall second).
        tick_s: wall seconds between two grants.
        clock: the wall clock (``time.monotonic``); tests may pass another.
    """

    def __init__(self, trace: Trace, *, payload_efficiency: float = 0.95, rtt_s: float = 0.08, speed: float = 1.0,
                 tick_s: float = DEFAULT_TICK_S, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ConfigError(f"speed={speed} must be > 0")
        if not 0 < payload_efficiency <= 1:
            raise ConfigError(f"payload_efficiency={payload_efficiency} must be in (0, 1]")
        if not rtt_s >= 0:
            raise ConfigError(f"rtt_s={rtt_s} must be >= 0")
        self.trace = trace
        self.capacity = TraceClock(trace, payload_efficiency=payload_efficiency)
        self.rtt_s = rtt_s
        self.speed = speed
        self.tick_s = tick_s
        self._clock = clock
        self._start_wall: float | None = None
        self._last_trace_s = 0.0
        self._active: list[Transfer] = []
        self._pacer: asyncio.Task[None] | None = None
        self.records: list[TransferRecord] = []
        self.stats = LinkStats()
        self.granted_bits = 0.0
        self.offered_bits = 0.0

    def reset(self) -> None:
        """Start a new session: the trace clock restarts at the next request (in-flight transfers go on)."""
        self._start_wall = None
        self._last_trace_s = 0.0
        self.records = []
        self.stats = LinkStats()

    def session_time(self, wall: float | None = None) -> float:
        """Session seconds since the first shaped request (0 before it)."""
        if self._start_wall is None:
            return 0.0
        return ((self._clock() if wall is None else wall) - self._start_wall) * self.speed

    async def send(self, data: bytes, write: Callable[[bytes], Awaitable[object]], *,
                   label: str = "", client: str = "") -> TransferRecord:
        """Deliver ``data`` through ``write`` at the link's pace, accounted to ``client``; returns what happened."""
        now = self._clock()
        if self._start_wall is None:
            self._start_wall = now
            self._last_trace_s = 0.0
        transfer = Transfer(len(data), label, client=client, request_wall=now)
        self.stats.transfers_by_client[client] = self.stats.transfers_by_client.get(client, 0) + 1
        await asyncio.sleep(self.rtt_s / self.speed)
        concurrent = 0
        self._active.append(transfer)
        try:
            self._ensure_pacer()
            sent = 0
            while sent < transfer.size:
                await transfer.ready.wait()
                transfer.ready.clear()
                concurrent = max(concurrent, len(self._active))
                upto = transfer.size if transfer.needed <= 1e-6 else int(transfer.granted)
                if upto > sent:
                    if math.isnan(transfer.first_byte_wall):
                        transfer.first_byte_wall = self._clock()
                    await write(data[sent:upto])
                    sent = upto
            transfer.end_wall = self._clock()
        finally:
            if transfer in self._active:
                self._active.remove(transfer)
        record = TransferRecord(label, transfer.size, self.session_time(transfer.request_wall),
                                self.session_time(transfer.first_byte_wall), self.session_time(transfer.end_wall),
                                concurrent)
        self.records.append(record)
        return record

    def _ensure_pacer(self) -> None:
        if self._pacer is None or self._pacer.done():
            self._last_trace_s = self.session_time()
            self._pacer = asyncio.get_running_loop().create_task(self._pace())

    async def _pace(self) -> None:
        while self._active:
            await asyncio.sleep(self.tick_s)
            self.grant(self.session_time())

    def grant(self, trace_s: float) -> float:
        """Share the capacity offered up to session time ``trace_s`` among the active transfers (bits granted)."""
        offered = self.capacity.bits_until(trace_s) - self.capacity.bits_until(self._last_trace_s)
        self._last_trace_s = max(trace_s, self._last_trace_s)
        active = list(self._active)
        if not active or offered <= 0:
            return 0.0
        self.offered_bits += offered
        grants = water_fill(offered / 8.0, [t.needed for t in active])
        for transfer, extra in zip(active, grants):
            if extra > 0:
                transfer.granted = min(transfer.size, transfer.granted + extra)
                transfer.ready.set()
        self.stats.record(offered, [t.client for t in active], [8.0 * g for g in grants],
                          [t.needed > 1e-6 for t in active])
        granted_bits = 8.0 * sum(grants)
        self.granted_bits += granted_bits
        return granted_bits
