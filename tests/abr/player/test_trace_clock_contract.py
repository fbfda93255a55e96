"""The real player's link against the SimPy reference, :class:`~simulator.link.TraceLink` (hypothesis).

The contract is :mod:`simulator.link_contract`; the player's deliberate differences are stated there (wall
clock scaled by ``speed``, start at the trace's start, the RTT always running the trace clock, no noise, no
refusal, capacity granted in ticks). Two steps hold the player to the reference:

* :meth:`TraceClock.finish_s`, the player's pure time accounting, ends every lone transfer where TraceLink
  does, from the same position (sessions of several requests with RTT and idle time between them);
* :meth:`PlayerLink.grant`, the pacing that serves the real responses, driven on a fake wall clock at any
  ``speed``, ends each transfer at the first tick at or after the time processor sharing gives it:
  :meth:`TraceClock.finish_s` for the total work, as the simulator's shared link is held to TraceLink.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from abr.player.shaping import PlayerLink, TraceClock, Transfer
from simulator.fast import EQUIVALENCE_ATOL, EQUIVALENCE_RTOL
from simulator.link import MAX_TRACE_PASSES
from tests.simulator._strategies import traces
from tests.simulator.test_link_contract import (
    Reference,
    assert_one_chunk_two_ends,
    processor_sharing_work,
    to_boundary,
    within_tolerance,
)
from traces.types import Trace

CONTRACT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

RTTS_S = st.sampled_from([0.0, 0.08, 0.2])
GAPS_S = st.sampled_from([0.0, 0.5, 1.0, 2.0]) | st.floats(0.0, 60.0)
#: A chunk: its size in bits, or an integer ``k``: the payload up to the end of the k-th interval (a tie).
SIZES = st.sampled_from([0.5e6, 1e6, 2e6, 3e6]) | st.floats(1e3, 3e7) | st.integers(1, 30)


@CONTRACT
@given(trace=traces(), eff=st.sampled_from([0.95, 1.0]), rtt_s=RTTS_S,
       requests=st.lists(st.tuples(GAPS_S, SIZES), min_size=1, max_size=8))
def test_finish_s_ends_each_lone_transfer_where_tracelink_does(trace: Trace, eff: float, rtt_s: float,
                                                               requests: list[tuple[float, float | int]]) -> None:
    """A session of requests, each ``gap`` after the previous chunk ended: TraceLink from the trace's start with
    ``rtt_advances_trace`` (RTT and gaps are idles) against the player's clock in session seconds."""
    clock = TraceClock(trace, payload_efficiency=eff)
    ref = Reference.start(trace, eff)
    now_s = 0.0  # session time = trace time since t[0], as both sides count it
    for idx, (gap_s, size) in enumerate(requests):
        request_s = now_s + gap_s
        ref.idle(request_s - float(ref.env.now))
        ref.idle(rtt_s)
        size_bits = float(size)
        if isinstance(size, int):
            kind, size_bits = to_boundary(ref.link, "transfer_to", size)
            if kind != "transfer":
                size_bits = 1e6
        ptr, clock_s = ref.link.ptr, ref.link.clock_s
        first_bit_s = request_s + rtt_s
        end_s = clock.finish_s(first_bit_s, size_bits)
        # The player's own accounting: it offered exactly the chunk by its end.
        offered = clock.bits_until(end_s) - clock.bits_until(first_bit_s)
        assert within_tolerance(offered, size_bits), (idx, offered, size_bits)
        expected = ref.transfer(size_bits)
        if expected is None:  # TraceLink refuses a chunk over MAX_TRACE_PASSES passes; the player walks it
            assert size_bits > MAX_TRACE_PASSES * ref.link.bits_per_pass
            event("refused by TraceLink, walked by the player")
            return
        elapsed = end_s - first_bit_s
        if not within_tolerance(elapsed, expected):
            # Only a tie may differ: the player ends when the bits are in, TraceLink after a gap of nothing.
            event("a tie before a gap")
            assert elapsed < expected, (idx, elapsed, expected)
            assert_one_chunk_two_ends(trace, eff, ptr, clock_s, size_bits, (elapsed, expected),
                                      EQUIVALENCE_RTOL * size_bits + EQUIVALENCE_ATOL)
        now_s = max(end_s, float(ref.env.now))  # after a tie the next request waits for both
        ref.idle(now_s - float(ref.env.now))


@CONTRACT
@given(trace=traces(may_be_slow=False), eff=st.sampled_from([0.95, 1.0]), rtt_s=RTTS_S,
       speed=st.sampled_from([1.0, 4.0, 0.5, 2.5]), n_clients=st.sampled_from([1, 1, 2, 3, 5]),
       requests=st.lists(st.tuples(GAPS_S, st.floats(2.0, 150.0)), min_size=1, max_size=5), data=st.data())
def test_the_paced_link_ends_each_transfer_at_the_first_tick_after_processor_sharing_would(
        trace: Trace, eff: float, rtt_s: float, speed: float, n_clients: int,
        requests: list[tuple[float, float]], data: st.DataObject) -> None:
    """:meth:`PlayerLink.grant` on a fake wall clock, as :meth:`PlayerLink.send` drives it: the session starts at
    wall 0, each request's first byte is due ``rtt_s / speed`` wall seconds later, when the pacer starts and
    grants every tick. Times are read on the fake wall clock and mapped to session time by ``speed``."""
    wall = [0.0]
    link = PlayerLink(trace, payload_efficiency=eff, rtt_s=rtt_s, speed=speed, clock=lambda: wall[0])
    link._start_wall = 0.0  # what send() records at the session's first request
    request_wall = 0.0
    for idx, (gap_s, ticks_per_transfer) in enumerate(requests):
        request_wall += gap_s / speed
        first_byte_wall = request_wall + link.rtt_s / link.speed  # send()'s RTT wait
        sizes_bytes = data.draw(st.lists(st.integers(1, 3_000_000), min_size=n_clients, max_size=n_clients)
                                | st.integers(1, 3_000_000).map(lambda size: [size] * n_clients), label=f"sizes {idx}")
        transfers = [Transfer(size, f"chunk {idx}", client=f"client {i}") for i, size in enumerate(sizes_bytes)]
        wall[0] = first_byte_wall
        assert link.session_time() == first_byte_wall * speed  # the contract's mapping of wall to session time
        link._last_trace_s = link.session_time()  # what _ensure_pacer() does when the pacer starts
        link._active = list(transfers)
        start_s = first_byte_wall * speed
        ends_s = [link.capacity.finish_s(start_s, 8.0 * work)
                  for work in processor_sharing_work([float(size) for size in sizes_bytes])]
        tick_wall = (max(ends_s) - start_s) / speed / ticks_per_transfer
        done_tick: dict[int, int] = {}
        tick = 0
        while link._active:
            tick += 1
            wall[0] = first_byte_wall + tick * tick_wall
            link.grant(link.session_time())
            for i, transfer in enumerate(transfers):
                if i not in done_tick and transfer.needed <= 1e-6:  # send() writes the rest and returns
                    done_tick[i] = tick
                    link._active.remove(transfer)
            assert tick <= ticks_per_transfer + 2, "a transfer outlived the time processor sharing gives it"
        for i, end_s in enumerate(ends_s):
            end_wall = first_byte_wall + done_tick[i] * tick_wall
            before_wall = end_wall - tick_wall
            slack_s = EQUIVALENCE_RTOL * (end_s + 1.0)
            # The first tick at or after the end in session time, the wall tick scaled by speed.
            assert before_wall * speed < end_s + slack_s, (idx, i, before_wall * speed, end_s)
            assert end_wall * speed >= end_s - slack_s, (idx, i, end_wall * speed, end_s)
            assert 0 <= transfers[i].size - transfers[i].granted <= 1e-6  # send() then writes the whole rest
        request_wall = first_byte_wall + max(done_tick.values()) * tick_wall


def test_finish_s_crosses_a_gap_only_when_bits_are_missing() -> None:
    # 1 Mbit/s for 2 s, nothing for 5 s, then 1 Mbit/s for 13 s; the trace starts at 10 s and loops.
    trace = Trace(np.array([10.0, 12.0, 17.0, 30.0]), np.array([0.0, 1e6, 0.0, 1e6]), name="gap")
    clock = TraceClock(trace, payload_efficiency=0.5)
    assert clock.finish_s(0.0, 1e6) == 2.0  # all in before the gap (TraceLink: 7.0, the tie of the contract)
    assert clock.finish_s(0.0, 1.5e6) == 8.0  # 1 Mbit, the gap, then 0.5 Mbit at 0.5 Mbit/s
    assert clock.finish_s(3.0, 8e6) == 28.0  # 6.5 Mbit to the pass's end at 20 s, 1 by 22, the gap, 0.5 by 28
