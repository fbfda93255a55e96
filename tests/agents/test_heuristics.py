"""BBA and rate-based decisions against their definitions."""

from __future__ import annotations

import numpy as np
import pytest

from agents import BBA, RateBased, agent_names, harmonic_mean, make_agent
from simulator import ConfigError
from simulator.context import PlayerContext
from simulator.records import ChunkOutcome
from traces.types import Video

VIDEO = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=10)


def _outcome(throughput_bps: float, idx: int = 0) -> ChunkOutcome:
    return ChunkOutcome(idx, 0, 300e3, 1.2e6, 0.0, 1.0, 1.0, throughput_bps, 0.0, 0.0, 4.0, 0.0)


@pytest.mark.parametrize(
    ("buffer_s", "level"),
    [(0.0, 0), (4.999, 0), (5.0, 0), (6.99, 0), (7.0, 1), (9.0, 2), (12.9, 3), (14.99, 4), (15.0, 5), (60.0, 5)],
)
def test_bba_levels_follow_the_buffer(buffer_s: float, level: int) -> None:
    assert BBA().select(PlayerContext(VIDEO, (), buffer_s)) == level


def test_bba_custom_reservoir_and_cushion() -> None:
    policy = BBA(reservoir_s=10.0, cushion_s=20.0)
    assert [policy.select(PlayerContext(VIDEO, (), b)) for b in (9.0, 10.0, 14.0, 22.0, 30.0)] == [0, 0, 1, 3, 5]


def test_rate_based_uses_harmonic_mean_of_last_five() -> None:
    # Older outcomes outside the window must not count: a 100 kbit/s sample 6 chunks ago.
    history = tuple(_outcome(t, i) for i, t in enumerate([100e3, 2e6, 2e6, 1e6, 4e6, 4e6]))
    estimate = harmonic_mean([2e6, 2e6, 1e6, 4e6, 4e6])
    assert estimate == pytest.approx(2e6)
    assert RateBased().select(PlayerContext(VIDEO, history, 10.0)) == 3  # 1850 kbit/s <= 2 Mbit/s < 2850
    assert RateBased(window=6).select(PlayerContext(VIDEO, history, 10.0)) == 0  # 100 kbit/s drags it down


def test_rate_based_boundaries() -> None:
    exact = (_outcome(1200e3),)
    assert RateBased().select(PlayerContext(VIDEO, exact, 0.0)) == 2  # equal bitrate is allowed
    assert RateBased().select(PlayerContext(VIDEO, (_outcome(100e3),), 0.0)) == 0
    assert RateBased().select(PlayerContext(VIDEO, (), 0.0)) == 0
    assert RateBased(safety_factor=0.5).select(PlayerContext(VIDEO, (_outcome(2.4e6),), 0.0)) == 2


def test_registry_and_bad_parameters() -> None:
    assert agent_names() == sorted(agent_names()) and {"bba", "rb"} <= set(agent_names())
    assert isinstance(make_agent("BBA"), BBA)
    with pytest.raises(ConfigError, match="unknown agent 'bolaa'; available agents: bba"):
        make_agent("bolaa")
    with pytest.raises(ConfigError, match="cushion_s=0.0 must be > 0"):
        BBA(cushion_s=0.0)
    with pytest.raises(ConfigError, match="window=0 must be >= 1"):
        RateBased(window=0)
    assert np.isclose(harmonic_mean([1.0, 4.0]), 1.6)
