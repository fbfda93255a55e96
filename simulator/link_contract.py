"""The link contract: what one chunk download costs, written once for every link model of the project.

Units: time in seconds, data in bits, rates in bits per second.

Who implements it
=================

The contract is implemented six times, each for a reason; every other implementation is held equal to the
reference by a differential test (``tests/simulator/test_link_contract.py`` and
``tests/abr/player/test_trace_clock_contract.py``), within the differences listed at the end.

* :class:`simulator.link.TraceLink`: **the reference**. One session on SimPy, walking the trace interval by
  interval.
* :mod:`simulator.fast_link` (:class:`~simulator.fast_link.PackedTraces`, ``transfer``, ``idle``): the same
  link for many sessions at once, closed-form on prefix sums of the payload (``BatchedSessions`` runs on it).
* :mod:`simulator.fast_session` (:class:`~simulator.fast_session.TraceLists`, ``transfer``, ``idle``,
  :class:`~simulator.fast_session.FastSession`): the fast link's arithmetic for one session, in plain Python.
* :class:`simulator.shared_link.SharedLink`: one trace shared by several players (processor sharing, SimPy).
* ``abr.player.shaping.TraceClock`` and ``abr.player.shaping.PlayerLink``: the real player's link, paced in
  wall-clock time for the browser.

1. The trace
============

A trace is samples ``(t[i], r[i])``, ``i = 0 .. n-1``, with ``t`` non-decreasing and ``t[n-1] > t[0]``.
Sample ``i >= 1`` gives the throughput of the interval ``(t[i-1], t[i]]``; ``r[0]`` is never used.
Zero-length intervals carry nothing, and zero-throughput intervals are crossed: a transfer waits through
them.

2. The trace clock and looping
==============================

A link's position is the interval in progress (``ptr``, numbered as the sample that ends it) and the trace
clock ``clock_s`` inside it. A session starts at the start of interval ``start_idx`` (``1`` = the trace's
start, clock ``t[start_idx - 1]``). When the clock reaches ``t[n-1]`` the trace loops back to ``t[0]`` at
once (no interval joins the last sample to the first). One pass lasts ``t[n-1] - t[0]``.

3. Payload share
================

Only ``payload_efficiency`` (``eff``, in ``(0, 1]``) of the throughput carries payload: interval ``i``
delivers ``r[i] * (t[i] - t[i-1]) * eff`` bits of chunk, and one pass delivers
``bits_per_pass = eff * sum(r[i] * (t[i] - t[i-1]))``.

4. A transfer
=============

A transfer of ``S`` bits starts at the link's position and walks the intervals, looping as often as it
needs. It completes in the first interval whose payload makes the delivered total **strictly exceed**
``S`` (the research simulator's test), at the point inside it where the total reaches ``S``. Its cost is
the trace time from its start to that point; the link's position moves there.

5. Too slow: the refusal
========================

A chunk of more than ``MAX_TRACE_PASSES * bits_per_pass`` bits (:data:`simulator.link.MAX_TRACE_PASSES`)
is refused with :class:`~simulator.errors.SimulationInvariantError` before any time passes; the link's
position is unchanged. :func:`simulator.link.check_trace_feasible` refuses such a trace for a whole video
up front.

6. Idle
=======

``idle(d)`` moves the trace clock by ``d`` seconds and delivers nothing (the player waits with a full
buffer).

7. The request RTT
==================

Each chunk request waits ``link_rtt_s`` before its first bit. With ``rtt_advances_trace=True`` (the
``realistic`` preset, and any real link) the trace clock runs through the RTT, as an idle; with ``False``
(the research simulator's convention) wall time passes while the trace clock stands still.

8. Download-time noise (dilation)
=================================

A noisy config draws one factor per chunk, ``noise ~ U(noise_low, noise_high)``, from the session's
generator, before the request. The RTT becomes ``link_rtt_s * noise`` (and moves the trace clock by that
much when ``rtt_advances_trace``); the transfer walks the trace as in 4 but takes ``noise`` times its trace
time in wall time (``TraceLink.transfer(S, dilation=noise)``). Noise is therefore the one thing, with the
frozen-trace RTT, that makes wall time and trace time part.

9. What a chunk costs
=====================

``download_time_s = (transfer_s + link_rtt_s) * noise``, with ``transfer_s`` the trace time of 4 (the
research simulator's arithmetic; ``noise = 1`` without noise). A session whose throughput is scaled by
``s`` (``FastSession(throughput_scale=s)``) plays ``Trace.scaled(s)``: its chunks cross the link as if
``s`` times smaller.

10. Sharing between concurrent transfers
========================================

When several transfers are in progress on one trace they share it by **processor sharing**: the payload
capacity ``r(t) * eff`` is split equally among the transfers in progress, and re-split whenever one starts
or ends or the trace changes. A player waiting for its RTT or idling with a full buffer holds no share;
capacity that nobody uses is lost. Hence with one player a shared link is :class:`~simulator.link.TraceLink`
with ``rtt_advances_trace=True`` and no noise, and ``n`` identical transfers started together each take as
long as one transfer of ``n * S`` bits alone. Noise and the frozen-trace RTT are single-client conventions:
the shared link refuses them.

Deliberate differences
======================

Each is tested, as a mapping where it is not an equality.

* **Rounding (fast link).** The fast link takes differences of prefix sums instead of the walk's running
  sum, so its times and trace clock differ from TraceLink's by rounding (below ``1e-9`` relative); when
  rounding could change which interval a chunk ends in (a near-tie at an interval boundary) it replays the
  walk, so from the same position every decision is TraceLink's. Positions that agree only to rounding
  (after a long walk) can still split an *exact* tie before a zero-throughput gap, as under "Ties" below;
  chunk sizes that do not depend on the link's position tie with probability zero. After an idle that ends
  exactly on a sample time it may name the next interval where TraceLink names the one that ended: the
  same position.
* **Ties before a gap (shared link, player).** A chunk whose payload is reached *exactly* at the end of an
  interval followed by zero throughput completes, under 4, only after the gap. The shared link and the
  player deliver bits as time passes and end it as soon as its last bit is in, before the gap. The two ends
  deliver the same bits and differ only by a stretch of zero throughput; any other difference is a bug.
* **The shared link's resolution.** It merges events closer than ``simulator.shared_link.SNAP_S`` and ends a
  transfer within ``COMPLETION_RTOL`` of its size, so its times match TraceLink's to about ``1e-9``.
* **The real player** (``abr.player.shaping``) runs on the wall clock:

  - *Time origin and speed.* Session time is wall time since the session's first shaped request times
    ``speed``; the trace clock is session time from ``t[0]`` (start at interval 1), looping. At ``speed``
    ``s`` the trace plays ``s`` times faster with ``s`` times its throughput, so in session seconds a run
    reads as at 1x. ``TraceClock.bits_until(t)`` is the payload offered over the first ``t`` session
    seconds and ``TraceClock.finish_s(start_s, S)`` when a lone transfer offered capacity from ``start_s``
    has its ``S`` bits: the pure time accounting that the differential test holds equal to TraceLink.
  - *Ticks.* Capacity is granted every ``tick_s`` wall seconds: what the trace offered since the last tick
    is water-filled among the transfers in progress (a transfer that needs less than its equal share gets
    what it needs and the rest is split among the others, the discrete form of processor sharing). A lone
    transfer therefore ends at the first tick at or after ``finish_s``.
  - *RTT and noise.* The RTT always runs the trace clock (a real link), and there is no noise.
  - *No refusal.* A chunk too large for the trace is not refused, it just takes long, as on a real link (a
    trace that delivers nothing at all is refused when the link is built).
"""
