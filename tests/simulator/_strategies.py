"""Hypothesis strategies shared by the core-equivalence tests: traces, videos and simulator configs.

Values mix round numbers (exact ties between delivered payload and chunk sizes, zero-length intervals,
zero-throughput gaps) with arbitrary floats, and traces need not start at time 0.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from simulator.config import SimConfig, preset
from traces.types import Trace, Video

MIN_PASS_BITS = 2e6  # a "fast enough" trace delivers at least this much per pass


@st.composite
def traces(draw: st.DrawFn, name: str = "random", may_be_slow: bool = True) -> Trace:
    n = draw(st.integers(2, 25))
    t0 = draw(st.sampled_from([0.0, 0.0, 3.5]) | st.floats(0.0, 100.0))
    steps = draw(st.lists(st.sampled_from([0.0, 0.5, 1.0, 2.0]) | st.floats(0.05, 20.0),
                          min_size=n - 1, max_size=n - 1))
    rates = draw(st.lists(st.sampled_from([0.0, 0.5e6, 1e6, 3e6]) | st.floats(0.1e6, 20e6), min_size=n, max_size=n))
    times = t0 + np.concatenate([[0.0], np.cumsum(steps)])
    rates_bps = np.array(rates)
    if may_be_slow and draw(st.integers(0, 9)) == 0:
        rates_bps = rates_bps * 1e-3  # slow enough that some chunks are refused
    pass_bits = float(np.sum(rates_bps[1:] * np.diff(times)))
    if times[-1] <= times[0] or (pass_bits < MIN_PASS_BITS and not may_be_slow) or pass_bits <= 0:
        times = np.append(times, times[-1] + 2.0)
        rates_bps = np.append(rates_bps, 1e6)
    return Trace(times, rates_bps, name=name)


@st.composite
def trace_lists(draw: st.DrawFn, may_be_slow: bool = True) -> list[Trace]:
    n = draw(st.integers(1, 3))
    return [draw(traces(name=f"trace{i}", may_be_slow=may_be_slow)) for i in range(n)]


@st.composite
def videos(draw: st.DrawFn) -> Video:
    n_levels = draw(st.integers(1, 6))
    n_chunks = draw(st.integers(1, 20))
    ladder = np.cumsum(draw(st.lists(st.sampled_from([0.25, 0.5]) | st.floats(0.05, 3.0),
                                     min_size=n_levels, max_size=n_levels))) * 1e6
    jitter = draw(st.lists(st.just(1.0) | st.floats(0.5, 1.5), min_size=n_chunks, max_size=n_chunks))
    duration_s = draw(st.sampled_from([1.0, 2.0, 4.0]))
    return Video(ladder, duration_s, np.outer(jitter, ladder) * duration_s, name="random")


@st.composite
def sim_configs(draw: st.DrawFn) -> SimConfig:
    base = preset(draw(st.sampled_from(["pensieve", "pensieve-train", "realistic"])))
    return base.replace(
        link_rtt_s=draw(st.sampled_from([base.link_rtt_s, 0.0, 0.2])),
        payload_efficiency=draw(st.sampled_from([0.95, 1.0])),
        rtt_advances_trace=draw(st.booleans()),
        max_buffer_s=draw(st.sampled_from([60.0, 12.0, 5.0])),
        idle_quantum_s=draw(st.sampled_from([0.5, 0.25, 1.0])),
        first_chunk_quality_idx=draw(st.sampled_from([None, 0])),
        startup_threshold_s=draw(st.sampled_from([0.0, 4.0, 10.0])),
    )
