"""Synthetic Markov traces: determinism, independence, ranges and config validation."""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from traces.errors import ConfigError
from traces.synthetic import MarkovTraceConfig, generate_markov_trace, generate_trace_set


def test_same_seed_gives_identical_traces() -> None:
    a = generate_trace_set(42, 5)
    b = generate_trace_set(42, 5)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x.times_s, y.times_s)
        np.testing.assert_array_equal(x.throughput_bps, y.throughput_bps)
        assert x.name == y.name


def test_different_seeds_and_children_differ() -> None:
    a = generate_trace_set(1, 3)
    b = generate_trace_set(2, 3)
    assert not np.array_equal(a[0].throughput_bps, b[0].throughput_bps)
    assert not np.array_equal(a[0].throughput_bps, a[1].throughput_bps)


def test_growing_the_set_keeps_earlier_traces() -> None:
    small, large = generate_trace_set(9, 2), generate_trace_set(9, 6)
    for x, y in zip(small, large, strict=False):
        np.testing.assert_array_equal(x.throughput_bps, y.throughput_bps)


def test_generator_draws_only_from_the_given_rng() -> None:
    before = pickle.dumps(np.random.get_state())
    a = generate_markov_trace(np.random.default_rng(5))
    b = generate_markov_trace(np.random.default_rng(5))
    np.testing.assert_array_equal(a.throughput_bps, b.throughput_bps)
    assert pickle.dumps(np.random.get_state()) == before  # the global RNG is untouched


def test_default_config_range_suits_the_envivio_ladder() -> None:
    traces = generate_trace_set(0, 50)
    for t in traces:
        assert t.family == "synthetic"
        assert t.times_s[0] == 0.0 and t.duration_s == 320.0
        assert np.all(np.diff(t.times_s) == 1.0)
        assert t.throughput_bps.min() >= 0.2e6 and t.throughput_bps.max() <= 6e6
    means = np.array([t.mean_throughput_bps for t in traces])
    assert 0.3e6 < np.median(means) < 4.3e6
    assert means.max() / means.min() > 2  # the set is diverse, not 50 copies of one level


def test_custom_config_and_sticky_chain() -> None:
    config = MarkovTraceConfig(duration_s=10.0, step_s=0.5, state_means_bps=(1e6,), noise_std_fraction=0.0,
                               switch_probability=1.0)
    trace = generate_markov_trace(np.random.default_rng(0), config, name="flat")
    assert trace.times_s.size == 21 and trace.name == "flat"
    assert np.all(trace.throughput_bps == 1e6)


def test_switching_stays_within_max_jump() -> None:
    means = tuple(float(m) for m in range(1, 11))  # state i has mean i+1 bit/s
    config = MarkovTraceConfig(duration_s=2000.0, state_means_bps=means, switch_probability=0.5,
                               max_state_jump=1, noise_std_fraction=0.0, floor_bps=0.5, ceiling_bps=100.0)
    rates = generate_markov_trace(np.random.default_rng(3), config).throughput_bps
    assert set(np.abs(np.diff(rates)).tolist()) <= {0.0, 1.0}
    assert len(set(rates.tolist())) > 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"duration_s": 0.0}, r"duration_s=0.0 must be a finite number > 0"),
        ({"step_s": float("nan")}, r"step_s=nan must be"),
        ({"duration_s": 1.0, "step_s": 2.0}, r"step_s=2.0 must be <= duration_s=1.0"),
        ({"state_means_bps": ()}, r"state_means_bps must list at least one"),
        ({"state_means_bps": (1e6, -1.0)}, r"state_means_bps=-1.0 must be"),
        ({"switch_probability": 1.5}, r"switch_probability=1.5 must be in \[0, 1\]"),
        ({"max_state_jump": 0}, r"max_state_jump=0 must be an integer >= 1"),
        ({"noise_std_fraction": -0.1}, r"noise_std_fraction=-0.1 must be"),
        ({"floor_bps": 0.0}, r"floor_bps=0.0 must be"),
        ({"floor_bps": 5e6, "ceiling_bps": 1e6}, r"ceiling_bps=1000000.0 must be > floor_bps=5000000.0"),
    ],
)
def test_config_validation(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        MarkovTraceConfig(**kwargs)
    assert isinstance(info.value, ValueError) and info.value.field is not None


@pytest.mark.parametrize(("seed", "n"), [(-1, 2), (1.5, 2), (1, 0), (True, 1)])
def test_trace_set_argument_validation(seed: object, n: int) -> None:
    with pytest.raises(ConfigError, match=r"must be"):
        generate_trace_set(seed, n)  # type: ignore[arg-type]


def test_config_is_frozen_and_hashable() -> None:
    config = MarkovTraceConfig(state_means_bps=[1e6, 2e6])  # type: ignore[arg-type]
    assert config.state_means_bps == (1e6, 2e6)
    assert hash(config) == hash(MarkovTraceConfig(state_means_bps=(1e6, 2e6)))
    with pytest.raises(AttributeError):
        config.duration_s = 5.0  # type: ignore[misc]
