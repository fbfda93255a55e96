"""The broad synthetic generator: seeded, covering slow to very fast links, with outages in some traces."""

from __future__ import annotations

import numpy as np
import pytest

from traces.errors import ConfigError
from traces.synthetic_broad import BroadTraceConfig, generate_broad_trace, generate_broad_trace_set


def test_same_seed_same_traces_and_children_are_stable() -> None:
    a, b = generate_broad_trace_set(5, 6), generate_broad_trace_set(5, 6)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.throughput_bps, y.throughput_bps)
    longer = generate_broad_trace_set(5, 9)
    np.testing.assert_array_equal(longer[5].throughput_bps, a[5].throughput_bps)  # adding traces keeps earlier ones
    assert [t.name for t in a[:2]] == ["broad_5_0000", "broad_5_0001"] and a[0].family == "synthetic-broad"


def test_the_set_spans_slow_fast_steady_bursty_and_outages() -> None:
    traces = generate_broad_trace_set(0, 400)
    means = np.array([t.throughput_bps[1:].mean() for t in traces])  # sample 0 repeats sample 1
    cfg = BroadTraceConfig()
    assert means.min() >= cfg.floor_bps * (1 - 1e-9)  # never too slow for a video
    assert (means < 1e6).mean() > 0.1 and (means > 50e6).mean() > 0.05  # below the ladder and far above it
    variation = np.array([t.throughput_bps.std() / t.throughput_bps.mean() for t in traces])
    assert variation.min() < 0.15 and variation.max() > 1.0  # steady and bursty
    outage_share = np.mean([(t.throughput_bps < 0.05 * np.median(t.throughput_bps)).mean() > 0.01 for t in traces])
    assert 0.15 < outage_share < 0.6  # about outage_share = 0.35 of the traces have outages


def test_config_ranges_are_checked() -> None:
    with pytest.raises(ConfigError, match="fast_share=1.5 must be in"):
        BroadTraceConfig(fast_share=1.5)
    with pytest.raises(ConfigError, match="slow_high_bps"):
        BroadTraceConfig(slow_low_bps=10e6, slow_high_bps=8e6)
    with pytest.raises(ConfigError, match="n_traces=0"):
        generate_broad_trace_set(0, 0)
    no_fast = generate_broad_trace(np.random.default_rng(1), BroadTraceConfig(fast_share=0.0, outage_share=0.0,
                                                                              sigma_high=0.1))
    assert no_fast.throughput_bps.max() < 8e6 * 3  # ladder range, narrow spread, no fast regime
