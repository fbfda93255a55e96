"""The heuristic zoo: BOLA, BOLA-E, the throughput rule, DYNAMIC, fixed and random.

Expected values are worked out by hand from the formulas in the modules' docstrings (dash.js constants) and
typed in as numbers, so a change to a formula or a constant shows up here.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from agents import (
    Bola,
    BolaE,
    BolaParameters,
    Dynamic,
    FixedQuality,
    RandomQuality,
    ThroughputEstimator,
    ThroughputRule,
    agent_names,
    insufficient_buffer_cap,
    make_agent,
)
from simulator import ConfigError
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.readers import read_trace_dir
from traces.types import Trace, Video
from traces.videos import read_video

LADDER_BPS = [300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3]
VIDEO = Video.cbr(LADDER_BPS, chunk_duration_s=4.0, n_chunks=20)
# dash.js parameters for this ladder: T = max(18, 10 + 2 * 6) = 22 s, gp - 1 = ln(43/3) / 1.2, Vp = 10 / (gp - 1).
GP = 3.2188231892
VP_S = 4.5068935861
# Buffer levels (s) at which BOLA moves up from level i - 1 to i:
# Vp * (gp + (r_i v_{i-1} - r_{i-1} v_i) / (r_i - r_{i-1})).
SWITCH_UP_S = [11.7538104, 15.1060912, 17.1531642, 19.1026259, 21.0098109]
MAX_BUFFER_S = [14.5068936, 18.6365184, 20.7547748, 22.7056471, 24.6532262, 26.5068936]  # Vp * (v_q + gp)


def _outcome(quality_idx: int = 0, throughput_bps: float = 2e6, *, download_s: float = 1.0, buffer_s: float = 4.0,
             idle_s: float = 0.0, rebuffer_s: float = 0.0, idx: int = 0) -> ChunkOutcome:
    size_bits = throughput_bps * download_s
    return ChunkOutcome(idx, quality_idx, LADDER_BPS[quality_idx], size_bits, 0.0, download_s, download_s,
                        throughput_bps, rebuffer_s, 0.0, buffer_s, idle_s)


def _context(outcomes: list[ChunkOutcome], buffer_s: float) -> PlayerContext:
    return PlayerContext(VIDEO, tuple(outcomes), buffer_s)


# ----------------------------------------------------------------------------------------------- BOLA-BASIC


def test_bola_parameters_follow_dashjs_buffer_target() -> None:
    params = BolaParameters.from_buffer_target(LADDER_BPS)
    assert params.gp == pytest.approx(GP) and params.vp_s == pytest.approx(VP_S)
    assert params.utilities[0] == 0.0 and params.utilities[-1] == pytest.approx(math.log(4300 / 300))
    assert [params.min_buffer_s(q) for q in range(1, 6)] == pytest.approx(SWITCH_UP_S)
    assert [params.max_buffer_s(q) for q in range(6)] == pytest.approx(MAX_BUFFER_S)
    # A target above 10 + 2n wins: T = 30 s, gp - 1 = ln(43/3) / 2 = 1.3312939, Vp = 7.5114893 s.
    wide = BolaParameters.from_buffer_target(LADDER_BPS, 30.0)
    assert wide.gp == pytest.approx(2.3312939) and wide.vp_s == pytest.approx(7.5114893)
    # Two levels: T = max(18, 14) = 18, gp - 1 = ln 2 / 0.8.
    two = BolaParameters.from_buffer_target([1e6, 2e6])
    assert two.gp == pytest.approx(1.8664340) and two.vp_s == pytest.approx(11.5415603)


@pytest.mark.parametrize(
    ("buffer_s", "level"),
    [(0.0, 0), (11.7, 0), (11.8, 1), (15.0, 1), (15.2, 2), (17.1, 2), (17.2, 3), (19.0, 3), (19.2, 4),
     (20.95, 4), (21.05, 5), (60.0, 5)],
)
def test_bola_basic_levels_at_buffer_levels(buffer_s: float, level: int) -> None:
    assert Bola().select(_context([], buffer_s)) == level


def test_bola_ties_go_to_the_higher_level() -> None:
    # (1 * (0 + 1) - 0) / 1 == (1 * (1 + 1) - 0) / 2: dash.js keeps the later (higher) level on a tie.
    params = BolaParameters((1.0, 2.0), (0.0, 1.0), vp_s=1.0, gp=1.0)
    assert params.quality(0.0) == 1 and params.quality(-0.1) == 0 and params.quality(0.1) == 1


def test_bola_paper_parameters() -> None:
    # Vp = (60 - 4) / (ln(43/3) + 5) = 7.3082360 s; level 1 from 32.077 s, level 5 from 47.086 s.
    policy = Bola(buffer_target_s=60.0, gamma_p=5.0)
    params = policy.parameters(VIDEO)
    assert params.vp_s == pytest.approx(7.3082360) and params.gp == 5.0
    assert [policy.select(_context([], b)) for b in (32.0, 32.2, 47.0, 47.2)] == [0, 1, 4, 5]


def test_bola_chunk_sizes_replace_the_bitrates() -> None:
    # Two levels (gp = 1.866434, Vp = 11.541560): at 12 s the ladder says level 0 (switch at 13.54 s), but a
    # next chunk only 10 % larger at level 1 scores (29.5416 - 12) / 1.1e6 > (21.5416 - 12) / 1e6.
    sizes = np.array([[4e6, 4.4e6], [4e6, 8e6]])
    video = Video(np.array([1e6, 2e6]), 4.0, sizes)
    context = PlayerContext(video, (), 12.0)
    assert Bola().select(context) == 0
    assert Bola(use_chunk_sizes=True).select(context) == 1
    assert Bola().select(PlayerContext(video, (), 13.6)) == 1


def test_bola_one_level_ladder_and_bad_parameters() -> None:
    assert Bola().select(PlayerContext(Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=3), (), 30.0)) == 0
    assert BolaE().select(PlayerContext(Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=3), (), 30.0)) == 0
    with pytest.raises(ConfigError, match="buffer_target_s=0.0 must be a finite number > 0"):
        Bola(buffer_target_s=0.0)
    with pytest.raises(ConfigError, match="gamma_p=-1.0 must be a finite number > 0"):
        Bola(gamma_p=-1.0)
    with pytest.raises(ConfigError, match="buffer_size_s=4.0 must be > the chunk duration"):
        Bola(buffer_target_s=4.0, gamma_p=5.0).select(_context([], 1.0))
    with pytest.raises(ConfigError, match="safety_factor=0.0 must be a finite number in"):
        BolaE(safety_factor=0.0)


# ---------------------------------------------------------------------------------------------------- BOLA-E


def test_bola_e_startup_uses_throughput_and_sets_placeholder() -> None:
    policy = BolaE()
    policy.reset()
    assert policy.select(_context([], 0.0)) == 0  # nothing measured yet
    assert not policy.is_steady
    first = _outcome(1, 3e6, download_s=1.5)  # 3e6 * 0.9 = 2.7e6 -> level 3 (1850 kbit/s)
    assert policy.select(_context([first], 4.0)) == 3
    assert policy.placeholder_s == pytest.approx(SWITCH_UP_S[2] - 4.0)  # min_buffer(3) - 4 s = 13.153
    assert policy.is_steady  # the buffer holds one chunk
    # Next chunk (level 3, 1 s, 6 s left, no idle): decay 13.15316 * 0.99 = 13.02163, under the cap
    # max_buffer(3) - (6 + 1) = 15.70565; effective 19.02163 s -> level 3 (level 4 needs 19.103 s).
    second = _outcome(3, 3e6, buffer_s=6.0, idx=1)
    assert policy.select(_context([first, second], 6.0)) == 3
    assert policy.placeholder_s == pytest.approx((SWITCH_UP_S[2] - 4.0) * 0.99)


def test_bola_e_startup_waits_for_one_chunk_of_buffer() -> None:
    policy = BolaE()
    assert policy.select(_context([_outcome(1, 3e6)], 3.0)) == 3
    assert not policy.is_steady
    assert policy.placeholder_s == pytest.approx(SWITCH_UP_S[2] - 3.0)


def test_bola_e_placeholder_decays_is_capped_and_absorbs_idle_time() -> None:
    policy = BolaE()
    history = [_outcome(1, 5e6)]
    assert policy.select(_context(history, 4.0)) == 5  # startup at 4.5e6 -> top level
    assert policy.placeholder_s == pytest.approx(SWITCH_UP_S[4] - 4.0)  # 17.00981
    # The top chunk took 1 s, then the player idled 1 s; 8 s remain. Decay: 17.00981 * 0.99 = 16.83971; cap:
    # max_buffer(5) - (8 + 1 + 1) = 16.50689; plus the 1 s idle: 17.50689; effective 25.507 s -> level 5.
    history.append(_outcome(5, 5e6, download_s=1.0, buffer_s=8.0, idle_s=1.0, idx=1))
    assert policy.select(_context(history, 8.0)) == 5
    assert policy.placeholder_s == pytest.approx(MAX_BUFFER_S[5] - 10.0 + 1.0)
    assert Bola().select(_context(history, 8.0)) == 0  # BOLA-BASIC on the real buffer
    # A rebuffer empties the placeholder; the decision falls back to the real buffer (8 s -> level 0).
    history.append(_outcome(5, 5e6, buffer_s=8.0, rebuffer_s=0.5, idx=2))
    assert policy.select(_context(history, 8.0)) == 0
    assert policy.placeholder_s == 0.0


def test_bola_e_oscillation_avoidance() -> None:
    # Steady, 30 s of buffer: BOLA alone says level 5, but the throughput level is 2 (2e6 * 0.9 = 1.8e6).
    policy = BolaE()
    history = [_outcome(1, 2e6)]
    assert policy.select(_context(history, 4.0)) == 2
    history.append(_outcome(2, 2e6, buffer_s=30.0, idx=1))
    assert policy.select(_context(history, 30.0)) == 2  # held at max(throughput level 2, last level 2)
    history.append(_outcome(0, 2e6, buffer_s=30.0, idx=2))
    assert policy.select(_context(history, 30.0)) == 2  # up from 0, but only to the throughput level
    history.append(_outcome(4, 2e6, buffer_s=30.0, idx=3))
    assert policy.select(_context(history, 30.0)) == 4  # above the throughput level: held, not lowered
    history.append(_outcome(5, 2e6, buffer_s=30.0, idx=4))
    assert policy.select(_context(history, 30.0)) == 5  # no increase: BOLA's level stands


def test_insufficient_buffer_cap() -> None:
    two = [_outcome(0, 2e6), _outcome(0, 2e6, idx=1)]
    assert insufficient_buffer_cap(_context(two[:1], 2.0), 2e6) is None  # the first 2 chunks are ignored
    assert insufficient_buffer_cap(_context(two, 2.0), 2e6) == 0  # 2e6 * 0.7 * 2 / 4 = 0.7e6 < 750e3
    assert insufficient_buffer_cap(_context(two, 4.0), 2e6) == 2  # 1.4e6
    assert insufficient_buffer_cap(_context(two, 0.0), 2e6) == 0  # empty buffer: lowest level
    assert insufficient_buffer_cap(_context(two, 4.0), None) is None
    # In BOLA-E: startup says level 5 (5e6 * 0.9), the cap at 2 s says 5e6 * 0.7 * 0.5 = 1.75e6 -> level 2.
    fast = [_outcome(0, 5e6), _outcome(0, 5e6, idx=1)]
    assert BolaE().select(_context(fast, 2.0)) == 2
    assert BolaE(use_insufficient_buffer_rule=False).select(_context(fast, 2.0)) == 5


# ----------------------------------------------------------------------------------------- throughput rule


def test_ewma_estimate_by_hand() -> None:
    # 1 Mbit/s over 2 s (weight 3), then 4 Mbit/s over 1 s (weight 1.5). Fast (half-life 3): 2.35925e6 after the
    # zero-start correction; slow (half-life 8): 2.13240e6; the estimate is the smaller.
    rising = (_outcome(0, 1e6, download_s=2.0), _outcome(0, 4e6, download_s=1.0, idx=1))
    assert ThroughputEstimator().estimate_bps(rising) == pytest.approx(2.1324039e6)
    # Reversed, the fast average reacts to the drop and is the smaller: 1.67962e6.
    falling = (rising[1], rising[0])
    assert ThroughputEstimator().estimate_bps(falling) == pytest.approx(1.6796228e6)
    assert ThroughputEstimator().estimate_bps(()) is None


def test_ewma_estimator_is_incremental_and_restarts_on_a_new_session() -> None:
    estimator = ThroughputEstimator()
    rising = (_outcome(0, 1e6, download_s=2.0), _outcome(0, 4e6, download_s=1.0, idx=1))
    assert estimator.estimate_bps(rising[:1]) == pytest.approx(1e6)
    assert estimator.estimate_bps(rising) == pytest.approx(2.1324039e6)
    assert estimator.estimate_bps(rising[1:]) == pytest.approx(4e6)  # shorter history: a new session


def test_sliding_window_mean() -> None:
    history = tuple(_outcome(0, t, idx=i) for i, t in enumerate([9e6, 1e6, 1e6, 1e6, 1e6, 1e6]))
    assert ThroughputEstimator(method="sliding").estimate_bps(history) == pytest.approx(1e6)  # last 4, steady
    jumpy = tuple(_outcome(0, t, idx=i) for i, t in enumerate([9e6, 1e6, 2e6, 1e6, 2e6, 2e6]))
    # Ratios among the last 4 (2/2, 2/1, 1/2 ...) widen the window to all 6: mean 17e6 / 6.
    assert ThroughputEstimator(method="sliding").estimate_bps(jumpy) == pytest.approx(17e6 / 6)
    assert ThroughputRule(method="sliding").select(_context(list(jumpy), 10.0)) == 3  # 0.9 x 2.833e6 = 2.55e6
    # Only a drop (2/4 <= 0.7) widens [4, 4, 4, 2, 2, 2] to 5 samples: 14e6 / 5; only a rise (1.5 >= 1.3)
    # widens [1, 1, 1, 1.5, 1.5, 1.5] to 5 samples: 6.5e6 / 5.
    drop = tuple(_outcome(0, t * 1e6, idx=i) for i, t in enumerate([4, 4, 4, 2, 2, 2]))
    assert ThroughputEstimator(method="sliding").estimate_bps(drop) == pytest.approx(2.8e6)
    rise = tuple(_outcome(0, t * 1e6, idx=i) for i, t in enumerate([1, 1, 1, 1.5, 1.5, 1.5]))
    assert ThroughputEstimator(method="sliding").estimate_bps(rise) == pytest.approx(1.3e6)
    with pytest.raises(ConfigError, match="method='median' is not an estimate method; use one of 'ewma'"):
        ThroughputEstimator(method="median")


@pytest.mark.parametrize(
    ("throughput_bps", "level"),
    [(100e3, 0), (850e3, 1), (1.9e6, 2), (2e6, 2), (2.0556e6, 3), (3.16e6, 3), (3.2e6, 4), (4.77e6, 4),
     (4.8e6, 5)],
)
def test_throughput_rule_safety_factor_against_the_ladder(throughput_bps: float, level: int) -> None:
    # One sample: the estimate is the sample; the rule takes the highest bitrate <= 0.9 x estimate.
    assert ThroughputRule().select(_context([_outcome(0, throughput_bps)], 10.0)) == level


def test_throughput_rule_first_chunk_and_parameters() -> None:
    assert ThroughputRule().select(_context([], 0.0)) == 0
    assert ThroughputRule(safety_factor=1.0).select(_context([_outcome(0, 2e6)], 10.0)) == 3
    with pytest.raises(ConfigError, match="safety_factor=1.5 must be a finite number in"):
        ThroughputRule(safety_factor=1.5)


# ------------------------------------------------------------------------------------------------- DYNAMIC


def test_dynamic_hysteresis_thresholds() -> None:
    policy = Dynamic()
    assert [policy.uses_bola(b) for b in (17.9, 18.0, 9.0, 8.99, 17.99, 18.0)] == [
        False, True, True, False, False, True]
    policy.reset()
    assert not policy.is_using_bola
    short = Dynamic(buffer_time_default_s=12.0)
    assert [short.uses_bola(b) for b in (11.9, 12.0, 6.0, 5.9)] == [False, True, True, False]


def test_dynamic_routes_decisions_to_the_rule_in_use() -> None:
    policy = Dynamic()
    history = [_outcome(1, 5e6)]
    assert policy.select(_context(history, 10.0)) == 5  # throughput rule: 4.5e6 -> top
    assert not policy.is_using_bola
    history.append(_outcome(5, 5e6, buffer_s=18.5, idx=1))
    assert policy.select(_context(history, 18.5)) == 5  # BOLA-E's startup: the throughput level
    assert policy.is_using_bola
    # Steady BOLA-E: placeholder (21.00981 - 18.5) * 0.99 = 2.48471, effective 20.985 s -> level 4.
    history.append(_outcome(5, 5e6, buffer_s=18.5, idx=2))
    assert policy.select(_context(history, 18.5)) == 4
    history.append(_outcome(4, 5e6, buffer_s=9.5, idx=3))
    assert policy.select(_context(history, 9.5)) == 1  # still BOLA at >= 9 s: effective 11.96 s -> level 1
    history.append(_outcome(1, 5e6, buffer_s=8.9, idx=4))
    assert policy.select(_context(history, 8.9)) == 5  # below 9 s: back to the throughput rule
    assert not policy.is_using_bola


def test_dynamic_insufficient_buffer_cap() -> None:
    fast = [_outcome(0, 5e6), _outcome(0, 5e6, idx=1)]
    assert Dynamic().select(_context(fast, 2.0)) == 2  # 5e6 * 0.7 * 2 / 4 = 1.75e6
    assert Dynamic(use_insufficient_buffer_rule=False).select(_context(fast, 2.0)) == 5


# -------------------------------------------------------------------------------------------- fixed, random


def test_fixed_quality() -> None:
    assert all(FixedQuality(3).select(_context([], b)) == 3 for b in (0.0, 10.0, 60.0))
    assert FixedQuality(-1).select(_context([], 0.0)) == 5 and FixedQuality(-6).select(_context([], 0.0)) == 0
    with pytest.raises(ConfigError, match=r"level_idx=6 is not a level of the 6-level ladder; use 0\.\.5"):
        FixedQuality(6).select(_context([], 0.0))
    with pytest.raises(ConfigError, match="level_idx=1.5 must be an integer"):
        FixedQuality(1.5)  # type: ignore[arg-type]


def _draws(policy: RandomQuality, n: int = 300) -> list[int]:
    return [policy.select(_context([], 0.0)) for _ in range(n)]


def test_random_quality_is_seeded_by_the_session_generator() -> None:
    a, b, c = RandomQuality(), RandomQuality(), RandomQuality()
    rng = np.random.default_rng(11)
    state = rng.bit_generator.state
    a.reset(rng)
    assert rng.bit_generator.state == state  # spawning a child does not advance the session's stream
    b.reset(np.random.default_rng(11))
    c.reset(np.random.default_rng(12))
    first, second, other = _draws(a), _draws(b), _draws(c)
    assert rng.bit_generator.state == state  # the draws come from the child, not the session's stream
    assert first == second and first != other
    assert set(first) == set(range(6))
    a.reset(np.random.default_rng(11))
    assert _draws(a) == first  # reset restarts the sequence
    d, e = RandomQuality(), RandomQuality(seed=5)
    d.reset(None)
    e.reset(None)
    assert _draws(d) == _draws(RandomQuality()) and _draws(d) != _draws(e)  # no generator: the fixed seed


# ------------------------------------------------------------------------------------------ full sessions


@pytest.fixture(scope="module")
def real_inputs(data_dir: Path) -> tuple[list[Trace], Video]:
    traces = read_trace_dir(data_dir / "traces" / "genet_benchmark" / "fcc-test")[:3]
    return traces, read_video(data_dir / "videos" / "envivio_dash3")


def _constant(rate_bps: float) -> Trace:
    return Trace(np.array([0.0, 2000.0]), np.array([rate_bps, rate_bps]), name=f"const{rate_bps:g}")


@pytest.mark.parametrize("name", agent_names())
def test_every_agent_plays_real_sessions(name: str, real_inputs: tuple[list[Trace], Video]) -> None:
    traces, video = real_inputs
    config = preset("pensieve")
    for trace in traces:
        outcomes = run_session(make_agent(name), trace, video, config)
        assert len(outcomes) == 48
        assert all(0 <= o.quality_idx < video.n_levels for o in outcomes)
        assert outcomes[0].quality_idx == 1  # the preset's forced first chunk
    if name == "optimal":  # defined for the deterministic dynamics only
        with pytest.raises(ConfigError, match="noise"):
            run_session(make_agent(name), traces[0], video, preset("pensieve-train"), rng=np.random.default_rng(3))
        return
    noisy = run_session(make_agent(name), traces[0], video, preset("pensieve-train"), rng=np.random.default_rng(3))
    assert len(noisy) == 48


@pytest.mark.parametrize("name", ["bola", "bola-e", "throughput", "dynamic", "robustmpc", "rb", "bba"])
def test_adaptive_agents_follow_the_link(name: str, real_inputs: tuple[list[Trace], Video]) -> None:
    video = real_inputs[1]
    config = preset("pensieve")
    fast = [o.quality_idx for o in run_session(make_agent(name), _constant(50e6), video, config)]
    slow = [o.quality_idx for o in run_session(make_agent(name), _constant(0.3e6), video, config)]
    assert set(fast[-20:]) == {5}
    assert set(slow[1:]) == {0}


def test_realistic_preset_lets_agents_choose_the_first_chunk(real_inputs: tuple[list[Trace], Video]) -> None:
    traces, video = real_inputs
    for name in ("bola", "bola-e", "throughput", "dynamic", "fixed:2", "random"):
        outcomes = run_session(make_agent(name), traces[1], video, preset("realistic"))
        assert len(outcomes) == video.n_chunks
    first = run_session(make_agent("fixed:2"), traces[1], video, preset("realistic"))
    assert {o.quality_idx for o in first} == {2}


def test_random_sessions_depend_on_the_seed_only(real_inputs: tuple[list[Trace], Video]) -> None:
    traces, video = real_inputs
    config = preset("pensieve-train")

    def levels(seed: int) -> list[int]:
        return [o.quality_idx for o in run_session(make_agent("random"), traces[0], video, config,
                                                   rng=np.random.default_rng(seed))]

    assert levels(1) == levels(1) and levels(1) != levels(2)
