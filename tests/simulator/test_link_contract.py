"""Every simulator link model against the SimPy reference, :class:`~simulator.link.TraceLink` (hypothesis).

The contract is :mod:`simulator.link_contract`. Each test drives an implementation and a TraceLink through the
same random operations (idles, transfers, request RTTs, noise) on random traces (zero-length intervals,
zero-throughput gaps, traces that loop, traces too slow for some chunks) and compares what each operation
cost: times within ``EQUIVALENCE_RTOL`` relative (``EQUIVALENCE_ATOL`` absolute), refusals exactly, and the
link position after each operation. The player's link is held to the same reference in
``tests/abr/player/test_trace_clock_contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from simulator import fast_link, fast_session
from simulator.config import SimConfig
from simulator.errors import ConfigError, SimulationInvariantError
from simulator.fast import EQUIVALENCE_ATOL, EQUIVALENCE_RTOL
from simulator.fast_session import FastSession, TraceLists
from simulator.link import MAX_TRACE_PASSES, TraceLink, check_trace_feasible
from simulator.shared_link import SharedLink, SharedLinkPort
from traces.types import Trace, Video

from ._strategies import sim_configs, trace_lists, traces, videos

CONTRACT = settings(max_examples=300, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

DURATIONS_S = st.sampled_from([0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 60.0)
SIZES_BITS = st.sampled_from([0.5e6, 1e6, 2e6, 3e6]) | st.floats(1e3, 3e7)
#: One operation on a link: ("idle", seconds) or ("transfer", bits), or the same to exactly the end of the
#: n-th interval ahead ("idle_to", n), ("transfer_to", n): ties, where the contract's rules decide.
OPS = st.lists(st.tuples(st.just("idle"), DURATIONS_S) | st.tuples(st.just("transfer"), SIZES_BITS)
               | st.tuples(st.sampled_from(["idle_to", "transfer_to"]), st.integers(1, 30)),
               min_size=1, max_size=12)


def within_tolerance(a: float, b: float) -> bool:
    return abs(a - b) <= EQUIVALENCE_RTOL * max(abs(a), abs(b)) + EQUIVALENCE_ATOL


def _same_position(trace: Trace, clock_a: float, clock_b: float, scale_s: float) -> bool:
    """Whether two trace clocks name the same point of the looping trace (a pass's end is its start)."""
    t0, pass_s = float(trace.times_s[0]), float(trace.times_s[-1] - trace.times_s[0])
    gap = ((clock_a - t0) - (clock_b - t0)) % pass_s
    return min(gap, pass_s - gap) <= EQUIVALENCE_RTOL * (abs(clock_a) + pass_s + scale_s) + EQUIVALENCE_ATOL


def to_boundary(link: TraceLink, kind: str, value: float) -> tuple[str, float]:
    """An operation of :data:`OPS` as ("idle", seconds) or ("transfer", bits), from ``link``'s position.

    ``("transfer_to", n)`` is the payload up to the end of the n-th interval ahead, summed as TraceLink sums
    it (so the chunk ties exactly), ``("idle_to", n)`` the time up to it; ``n`` is capped at one pass.
    """
    if kind in ("idle", "transfer"):
        return kind, value
    times, rates = link.trace.times_s.tolist(), link.trace.throughput_bps.tolist()
    ptr, clock_s = link.ptr, link.clock_s
    sent_bits, elapsed_s = 0.0, 0.0
    for _ in range(min(int(value), len(times) - 1)):
        sent_bits += rates[ptr] * (times[ptr] - clock_s) * link.payload_efficiency
        elapsed_s += times[ptr] - clock_s
        clock_s, ptr = times[ptr], ptr + 1
        if ptr >= len(times):
            ptr, clock_s = 1, times[0]
    if kind == "idle_to" or sent_bits <= 0:
        return "idle", elapsed_s
    return "transfer", sent_bits


def _start_idx(data: st.DataObject, trace: Trace) -> int:
    return data.draw(st.integers(1, trace.times_s.size - 1), label="start_idx")


def payload_between(trace: Trace, eff: float, clock_s: float, ptr: int, duration_s: float) -> float:
    """Payload the trace offers over ``duration_s`` from position (``ptr``, ``clock_s``), looping, in bits."""
    times, rates = trace.times_s.tolist(), trace.throughput_bps.tolist()
    bits, left_s = 0.0, duration_s
    while left_s > 0:
        interval_s = times[ptr] - clock_s
        if interval_s > left_s:
            return bits + rates[ptr] * left_s * eff
        bits += rates[ptr] * interval_s * eff
        left_s -= interval_s
        ptr, clock_s = ptr + 1, times[ptr]
        if ptr >= len(times):
            ptr, clock_s = 1, times[0]
    return bits


def assert_one_chunk_two_ends(trace: Trace, eff: float, ptr: int, clock_s: float, size_bits: float,
                              ends_s: tuple[float, float], tolerance_bits: float) -> None:
    """Two transfer times of one chunk from one position differ only by a stretch of zero payload (a tie)."""
    early_s, late_s = sorted(ends_s)
    assert payload_between(trace, eff, clock_s, ptr, early_s) >= size_bits - tolerance_bits, ends_s
    assert payload_between(trace, eff, clock_s, ptr, late_s) <= size_bits + tolerance_bits, ends_s


@dataclass
class Reference:
    """A TraceLink in its own SimPy environment, stepped one operation at a time."""

    env: simpy.Environment
    link: TraceLink

    @classmethod
    def start(cls, trace: Trace, payload_efficiency: float, start_idx: int = 1) -> Reference:
        env = simpy.Environment()
        return cls(env, TraceLink(env, trace, payload_efficiency=payload_efficiency, start_idx=start_idx))

    @classmethod
    def at(cls, trace: Trace, payload_efficiency: float, ptr: int, clock_s: float) -> Reference:
        """A fresh reference at a given position (interval ``ptr``, trace clock ``clock_s``)."""
        ref = cls.start(trace, payload_efficiency)
        ref.link.ptr, ref.link.clock_s = ptr, clock_s
        return ref

    def _run(self, body: Callable[[], Generator[simpy.Event, object, float | None]]) -> float | None:
        process = self.env.process(body())
        self.env.run(until=process)
        value = process.value
        assert value is None or isinstance(value, float)
        return value

    def idle(self, duration_s: float) -> None:
        def body() -> Generator[simpy.Event, object, None]:
            yield from self.link.idle(duration_s)
        self._run(body)

    def transfer(self, size_bits: float, dilation: float = 1.0) -> float | None:
        """The transfer time on the trace clock, in seconds; None if the link refuses the chunk."""
        def body() -> Generator[simpy.Event, object, float | None]:
            try:
                return (yield from self.link.transfer(size_bits, dilation))
            except SimulationInvariantError:
                return None
        return self._run(body)


# -- the fast core: PackedTraces and the vectorised transfer / idle ----------------------------------------------

@CONTRACT
@given(traces=trace_lists(), eff=st.sampled_from([0.95, 1.0]), data=st.data())
def test_the_vectorised_fast_link_walks_every_trace_as_tracelink(traces: list[Trace], eff: float,
                                                                 data: st.DataObject) -> None:
    packed = fast_link.PackedTraces.pack(traces, payload_efficiency=eff)
    n_links = data.draw(st.integers(1, 4), label="n_links")
    trace_idx = np.array([data.draw(st.integers(0, len(traces) - 1)) for _ in range(n_links)], dtype=np.int64)
    start = [_start_idx(data, traces[m]) for m in trace_idx.tolist()]
    refs = [Reference.start(traces[m], eff, j) for m, j in zip(trace_idx.tolist(), start)]
    state = packed.start(trace_idx, start)
    diverged: set[int] = set()  # links whose state a tie decided apart by rounding: no longer compared
    for step in range(data.draw(st.integers(1, 10), label="n_steps")):
        ops = [to_boundary(ref.link, *data.draw(OPS.map(lambda ops: ops[0]), label=f"step {step}"))
               for ref in refs]
        before = [(ref.link.ptr, ref.link.clock_s) for ref in refs]
        clock_before = state.clock_s.copy()
        idle = np.array([kind == "idle" for kind, _ in ops])
        values = np.array([value for _, value in ops])
        expected: list[float | None] = []
        for ref, (kind, value) in zip(refs, ops):
            if kind == "idle":
                ref.idle(value)
            expected.append(None if kind == "idle" else ref.transfer(value))
        # The refusal, link by link: exactly the chunks TraceLink refuses.
        refused = np.zeros(n_links, dtype=bool)
        for i in np.flatnonzero(~idle).tolist():
            try:
                packed.check_chunk_sizes(trace_idx[i:i + 1], values[i:i + 1])
            except SimulationInvariantError:
                refused[i] = True
            assert refused[i] == (expected[i] is None), (step, i, values[i])
            event("refused" if refused[i] else "transferred")
        g, clock = state.interval_idx.copy(), state.clock_s.copy()
        moving = np.flatnonzero(~idle & ~refused)
        if moving.size:
            out = fast_link.transfer(packed, trace_idx[moving], fast_link.LinkState(g[moving], clock[moving]),
                                     values[moving])
            g[moving], clock[moving] = out.interval_idx, out.clock_s
            for i, elapsed in zip(moving.tolist(), out.elapsed_s.tolist()):
                ref_elapsed = expected[i]
                assert ref_elapsed is not None
                if i in diverged or within_tolerance(elapsed, ref_elapsed):
                    continue
                # From the same position the decision is TraceLink's; from positions that rounding set apart
                # (after a walk of many intervals) an exact tie may fall either side of a zero-payload gap.
                assert clock_before[i] != before[i][1], (step, i, elapsed, ref_elapsed)
                assert_one_chunk_two_ends(traces[int(trace_idx[i])], eff, *before[i], float(values[i]),
                                           (elapsed, ref_elapsed), EQUIVALENCE_RTOL * float(values[i]))
                event("a tie decided apart by rounding")
                diverged.add(i)
        waiting = np.flatnonzero(idle)
        if waiting.size:
            after = fast_link.idle(packed, trace_idx[waiting], fast_link.LinkState(g[waiting], clock[waiting]),
                                   values[waiting])
            g[waiting], clock[waiting] = after.interval_idx, after.clock_s
        state = fast_link.LinkState(g, clock)
        for i, ref in enumerate(refs):
            trace = traces[int(trace_idx[i])]
            if i not in diverged:
                assert _same_position(trace, float(clock[i]), ref.link.clock_s, float(ref.env.now)), (step, i)


@CONTRACT
@given(trace=traces(), eff=st.sampled_from([0.95, 1.0]), ops=OPS, data=st.data())
def test_the_scalar_fast_link_walks_the_trace_as_tracelink(trace: Trace, eff: float, ops: list[tuple[str, float]],
                                                           data: st.DataObject) -> None:
    lists = TraceLists(trace, payload_efficiency=eff)
    start_idx = _start_idx(data, trace)
    ref = Reference.start(trace, eff, start_idx)
    ptr, clock = start_idx, float(trace.times_s[start_idx - 1])
    for step, op in enumerate(ops):
        kind, value = to_boundary(ref.link, *op)
        before = ref.link.ptr, ref.link.clock_s
        if kind == "idle":
            ref.idle(value)
            ptr, clock = fast_session.idle(lists, ptr, clock, value)
        else:
            expected = ref.transfer(value)
            # FastSession's refusal test: above max_chunk_bits the packed traces refuse the chunk.
            assert (value > lists.max_chunk_bits) == (expected is None), (step, value, lists.max_chunk_bits)
            if expected is None:
                with pytest.raises(SimulationInvariantError, match="passes over it"):
                    lists.packed.check_chunk_sizes(np.zeros(1, dtype=np.int64), np.array([value]))
                event("refused")
                continue
            ref_ptr, ref_clock = before
            clock_before = clock
            ptr, clock, elapsed = fast_session.transfer(lists, eff, ptr, clock, value)
            if not within_tolerance(elapsed, expected):  # only a tie, only from positions that rounding set apart
                assert clock_before != ref_clock, (step, elapsed, expected)
                assert_one_chunk_two_ends(trace, eff, ref_ptr, ref_clock, value, (elapsed, expected),
                                           EQUIVALENCE_RTOL * value)
                event("a tie decided apart by rounding")
                return
        assert _same_position(trace, clock, ref.link.clock_s, float(ref.env.now)), (step, clock, ref.link.clock_s)


@CONTRACT
@given(trace=traces(), video=videos(), eff=st.sampled_from([0.95, 1.0]))
def test_a_trace_is_refused_up_front_exactly_when_tracelink_would_refuse_the_largest_chunk(
        trace: Trace, video: Video, eff: float) -> None:
    largest_bits = float(video.chunk_sizes_bits.max())
    refused = Reference.start(trace, eff).transfer(largest_bits) is None
    if refused:
        event("refused")
        with pytest.raises(ConfigError, match="too slow for this video"):
            check_trace_feasible(trace, video, eff)
    else:
        check_trace_feasible(trace, video, eff)


def test_the_refusal_threshold_is_max_trace_passes_whole_passes() -> None:
    # One pass delivers 10 Mbit (10 s at 1 Mbit/s): a chunk of exactly 100 passes is walked, a bit more is not.
    trace = Trace(np.array([0.0, 10.0]), np.array([1e6, 1e6]), name="ten")
    lists = TraceLists(trace, payload_efficiency=1.0)
    limit_bits = MAX_TRACE_PASSES * 10e6
    assert Reference.start(trace, 1.0).transfer(limit_bits) == pytest.approx(MAX_TRACE_PASSES * 10.0)
    assert Reference.start(trace, 1.0).transfer(limit_bits * (1 + 1e-9)) is None
    assert lists.max_chunk_bits == limit_bits


# -- FastSession: the chunk cost (RTT, noise, idle) on top of the link ----------------------------------------------

@CONTRACT
@given(trace=traces(), video=videos(), config=sim_configs(), scale=st.sampled_from([1.0, 1.0, 0.5, 2.5]),
       seed=st.integers(0, 2**16), data=st.data())
def test_fast_session_chunks_cost_what_the_contract_says_on_tracelink(trace: Trace, video: Video, config: SimConfig,
                                                                       scale: float, seed: int,
                                                                       data: st.DataObject) -> None:
    start_idx = _start_idx(data, trace)
    session = FastSession(trace, video, config, start_idx=start_idx, rng=np.random.default_rng(seed),
                          throughput_scale=scale)
    # The reference: TraceLink on the scaled trace, with the contract's chunk cost (sections 7-9) spelled out.
    ref = Reference.start(trace.scaled(scale), config.payload_efficiency, start_idx)
    noise_rng = np.random.default_rng(seed)
    n_levels = video.n_levels
    for chunk_idx in range(session.video.n_chunks):
        quality = data.draw(st.integers(0, n_levels - 1), label=f"quality {chunk_idx}")
        size_bits = float(session.video.chunk_sizes_bits[chunk_idx, quality])
        noise = float(noise_rng.uniform(config.noise_low, config.noise_high)) if config.is_noisy else 1.0
        request_s = float(ref.env.now)
        if config.rtt_advances_trace:
            ref.idle(config.link_rtt_s * noise)
        elif config.link_rtt_s > 0:  # wall time passes, the trace clock stands still
            ref.env.run(until=ref.env.now + config.link_rtt_s * noise)
        transfer_s = ref.transfer(size_bits, dilation=noise)
        if transfer_s is None:
            with pytest.raises(SimulationInvariantError, match="passes over it"):
                session.step(quality)
            event("refused")
            return
        outcome = session.step(quality)
        assert within_tolerance(outcome.request_time_s, request_s), (chunk_idx, outcome.request_time_s, request_s)
        assert within_tolerance(outcome.download_time_s, (transfer_s + config.link_rtt_s) * noise), chunk_idx
        assert within_tolerance(outcome.finish_time_s, float(ref.env.now)), (chunk_idx, outcome.finish_time_s)
        ref.idle(outcome.idle_s)  # the player's decision; the link only lets the time pass
        assert _same_position(trace, session.clock_s, ref.link.clock_s, float(ref.env.now)), chunk_idx


# -- SharedLink: one player, and several sharing it (processor sharing) ----------------------------------------

def _shared_transfers(env: simpy.Environment, ports: list[SharedLinkPort],
                      sizes_bits: list[float]) -> list[float | None]:
    """Start one transfer on each port at once; each one's time (None if refused)."""
    def body(port: SharedLinkPort, size_bits: float) -> Generator[simpy.Event, object, float | None]:
        try:
            return (yield from port.transfer(size_bits))
        except SimulationInvariantError:
            return None
    processes = [env.process(body(port, size)) for port, size in zip(ports, sizes_bits)]
    env.run(until=env.all_of(processes))
    return [p.value for p in processes]


def _shared_idle(env: simpy.Environment, ports: list[SharedLinkPort], duration_s: float) -> None:
    processes = [env.process(port.idle(duration_s)) for port in ports]
    env.run(until=env.all_of(processes))


def processor_sharing_work(sizes_bits: list[float]) -> list[float]:
    """For transfers started together and shared equally: the payload the link has delivered, in all, when
    each one ends (the i-th smallest ends when every transfer has had its bits: those smaller are done).

    >>> processor_sharing_work([3.0, 1.0, 2.0])
    [6.0, 3.0, 5.0]
    """
    order = sorted(sizes_bits)
    n = len(order)
    done = [sum(order[:i]) + (n - i) * size for i, size in enumerate(order)]
    return [done[order.index(size)] for size in sizes_bits]


@CONTRACT
@given(trace=traces(), eff=st.sampled_from([0.95, 1.0]), n_players=st.sampled_from([1, 1, 2, 3, 5]),
       chunks=st.lists(st.tuples(DURATIONS_S, st.booleans(), st.integers(1, 30)), min_size=1, max_size=8),
       data=st.data())
def test_the_shared_link_is_tracelink_for_one_player_and_shares_it_among_many(
        trace: Trace, eff: float, n_players: int, chunks: list[tuple[float, bool, int]], data: st.DataObject) -> None:
    """Each chunk: all players wait (RTT or full buffer), then fetch one chunk each at once; a player's transfer
    ends when TraceLink, alone from the same position, would have delivered :func:`processor_sharing_work`
    (``n x size`` for ``n`` identical chunks). Ties before a zero-throughput gap may end earlier on the shared
    link (the contract). A chunk drawn as a tie is sized so that all of it ends exactly at an interval's end.
    """
    start_idx = _start_idx(data, trace)
    env = simpy.Environment()
    shared = SharedLink(env, trace, payload_efficiency=eff, start_idx=start_idx)
    ports = [shared.port() for _ in range(n_players)]
    ref = Reference.start(trace, eff, start_idx)
    for chunk_idx, (wait_s, is_tie, boundary) in enumerate(chunks):
        # Both start the chunk at the same wall time (= trace time): the later of the two clocks plus the wait.
        begin_s = max(float(env.now), float(ref.env.now)) + wait_s
        _shared_idle(env, ports, begin_s - float(env.now))
        ref.idle(begin_s - float(ref.env.now))
        kind, tie_bits = to_boundary(ref.link, "transfer_to", boundary)
        if is_tie and kind == "transfer":
            sizes = [tie_bits / n_players] * n_players
        else:
            sizes = data.draw(st.lists(SIZES_BITS, min_size=n_players, max_size=n_players)
                              | SIZES_BITS.map(lambda size: [size] * n_players), label=f"sizes {chunk_idx}")
        # A chunk too large for the trace even alone is refused at once and shares nothing.
        is_refused = [size > MAX_TRACE_PASSES * shared.bits_per_pass for size in sizes]
        started = [size for size, refused in zip(sizes, is_refused) if not refused]
        work = iter(processor_sharing_work(started))
        ptr, clock_s = ref.link.ptr, ref.link.clock_s
        got = _shared_transfers(env, ports, sizes)
        for size, elapsed, refused in zip(sizes, got, is_refused):
            if refused:
                assert elapsed is None, (chunk_idx, size)
                event("refused")
                continue
            total = next(work)
            expected = Reference.at(trace, eff, ptr, clock_s).transfer(total)
            if expected is None:  # TraceLink refuses the shared work; the shared link walks it
                assert n_players > 1 and total > MAX_TRACE_PASSES * shared.bits_per_pass
                return
            assert elapsed is not None, (chunk_idx, size)
            if within_tolerance(elapsed, expected):
                continue
            # Only a tie may differ: the shared link ended when the bits were in, TraceLink after a gap of nothing.
            event("a tie before a gap")
            assert elapsed < expected, (chunk_idx, elapsed, expected)
            assert_one_chunk_two_ends(trace, eff, ptr, clock_s, total, (elapsed, expected),
                                       n_players * (EQUIVALENCE_RTOL * total + 1e-6) + EQUIVALENCE_ATOL)
        if started:  # the reference moves on to where the last transfer ended
            assert ref.transfer(sum(started)) is not None


def test_a_tie_before_a_gap_ends_before_it_on_the_shared_link_and_after_it_on_tracelink() -> None:
    # 1 Mbit/s for 2 s, nothing for 5 s, then 1 Mbit/s: a 2 Mbit chunk is complete at exactly 2 s.
    trace = Trace(np.array([0.0, 2.0, 7.0, 20.0]), np.array([0.0, 1e6, 0.0, 1e6]), name="gap")
    assert Reference.start(trace, 1.0).transfer(2e6) == 7.0  # strictly exceeds only after the gap
    env = simpy.Environment()
    shared = SharedLink(env, trace, payload_efficiency=1.0)
    assert _shared_transfers(env, [shared.port()], [2e6]) == [2.0]  # its last bit arrived at 2 s
    assert payload_between(trace, 1.0, 0.0, 1, 7.0) == payload_between(trace, 1.0, 0.0, 1, 2.0) == 2e6
