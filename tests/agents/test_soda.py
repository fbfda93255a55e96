"""SODA against decisions worked out by hand from the paper's cost (see agents/soda.py and docs/baselines/soda.md).

Units in the hand calculations: time in intervals of one chunk duration (dt = 4 s here), so a buffer of 8 s is
x = 2 and downloading at w bit/s a level of r bit/s adds w / r intervals of video per interval. The cost of one
step is v(r) * w / r + beta * b(x) + gamma * (v(r) - v(r_prev))**2 with b(x) = (x_bar - x)**2 below the target
and epsilon * (x - x_bar)**2 above it. A context with one past download at throughput T has the prediction T
(dash.js's EWMA of a single sample is the sample).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from agents.registry import make_agent
from agents.soda import SodaPolicy, bitrate_utilities, monotone_sequences
from simulator import ConfigError
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video

TWO = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=10)  # log utility (0, 1): distortion v = (1, 0)
THREE = Video.cbr([1e6, 2e6, 4e6], chunk_duration_s=4.0, n_chunks=10)  # v = (1, 0.5, 0)
ENVIVIO = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=48)
# One step (max_horizon_s = dt), target 8 s (x_bar = 2), beta = 1, epsilon = 0.1.
ONE_STEP = {"max_horizon_s": 4.0, "target_buffer_s": 8.0, "buffer_weight": 1.0, "overshoot_weight": 0.1}


class _WithQuality:
    """A video with a per-chunk quality table ``ssim_db`` (duck-typed, whether or not Video has the field yet)."""

    def __init__(self, video: Video, ssim_db: np.ndarray) -> None:
        self._video, self.ssim_db = video, ssim_db

    def __getattr__(self, name: str) -> object:
        return getattr(self._video, name)


def _context(video: Video | _WithQuality, throughput_bps: float, buffer_s: float, last_idx: int) -> PlayerContext:
    rate = float(video.bitrates_bps[last_idx])
    past = ChunkOutcome(0, last_idx, rate, rate * 4.0, 0.0, 1.0, 1.0, throughput_bps, 0.0, 0.0, buffer_s, 0.0)
    return PlayerContext(video, (past,), buffer_s)  # type: ignore[arg-type]


def _choice(policy: SodaPolicy, video: Video | _WithQuality, throughput_bps: float, buffer_s: float,
            last_idx: int) -> int:
    policy.reset()  # each context is a new one-chunk session (the estimator must not keep the last one's sample)
    return policy.select(_context(video, throughput_bps, buffer_s, last_idx))


# ------------------------------------------------------------------------------------- hand-derived decisions

def test_one_step_costs_and_the_switching_penalty() -> None:
    # w = 1.5 Mbit/s, buffer 8 s (x0 = 2), last level 0; the cap allows level 1 (the lowest rung >= 1.5 Mbit/s).
    # level 0: w/r = 1.5, x1 = 2.5 (above target: 0.1 * 0.5**2 = 0.025); distortion 1 * 1.5; no switch -> 1.525
    # level 1: w/r = 0.75, x1 = 1.75 (below: 0.25**2 = 0.0625); distortion 0; switch gamma * (0 - 1)**2 -> 1.0625 (g=1)
    policy = SodaPolicy(switch_weight=1.0, **ONE_STEP)
    context = _context(TWO, 1.5e6, 8.0, 0)
    distortion = policy.distortions(policy.level_utilities(context, 1))
    assert distortion.tolist() == [[1.0, 0.0]]
    costs = policy.costs(np.array([[0], [1]]), distortion, TWO.bitrates_bps, 1.5e6, 8.0, 0, 4.0)
    assert costs == pytest.approx([1.525, 1.0625])
    assert policy.select(context) == 1
    # gamma = 2: level 1 costs 2.0625 > 1.525, so the switch is not worth it.
    assert _choice(SodaPolicy(switch_weight=2.0, **ONE_STEP), TWO, 1.5e6, 8.0, 0) == 0
    # Already at level 1 there is nothing to pay for staying: level 1 costs 0.0625, level 0 1.525 + 2 * 1 = 3.525.
    assert _choice(SodaPolicy(switch_weight=2.0, **ONE_STEP), TWO, 1.5e6, 8.0, 1) == 1


def test_a_low_buffer_picks_the_lower_level() -> None:
    # gamma = 0, buffer 2 s (x0 = 0.5): level 0 -> x1 = 1.0, cost 1.5 + 1.0**2 = 2.5;
    # level 1 -> x1 = 0.25, cost 0 + 1.75**2 = 3.0625. At 8 s (first test, gamma = 0): 1.525 vs 0.0625.
    policy = SodaPolicy(switch_weight=0.0, **ONE_STEP)
    costs = policy.costs(np.array([[0], [1]]), np.array([[1.0, 0.0]]), TWO.bitrates_bps, 1.5e6, 2.0, 0, 4.0)
    assert costs == pytest.approx([2.5, 3.0625])
    assert _choice(policy, TWO, 1.5e6, 2.0, 0) == 0
    assert _choice(policy, TWO, 1.5e6, 8.0, 0) == 1


def test_a_sequence_that_would_empty_the_buffer_is_infeasible() -> None:
    # Empty buffer, w = 1.5 Mbit/s: level 1 gives x1 = 0 + 0.75 - 1 < 0, infeasible, even with no buffer weight
    # (where its cost, 0, would beat level 0's 1.5).
    policy = SodaPolicy(switch_weight=0.0, buffer_weight=0.0, max_horizon_s=4.0, target_buffer_s=8.0)
    costs = policy.costs(np.array([[0], [1]]), np.array([[1.0, 0.0]]), TWO.bitrates_bps, 1.5e6, 0.0, 0, 4.0)
    assert costs[0] == pytest.approx(1.5) and costs[1] == np.inf
    assert _choice(policy, TWO, 1.5e6, 0.0, 0) == 0
    # Nothing feasible at all (w = 0.5 Mbit/s, below the lowest rung, empty buffer): the lowest level.
    assert _choice(policy, TWO, 0.5e6, 0.0, 1) == 0


def test_the_prediction_caps_the_level() -> None:
    # w = 0.9 Mbit/s: the lowest rung >= 0.9 Mbit/s is level 0, so level 0 even with 40 s of buffer (x0 = 10).
    # Without the cap: level 0 -> x1 = 10.9 - 1 = 9.9, 0.9 + 0.1 * 7.9**2 = 7.141;
    # level 1 -> x1 = 9.45, 0 + 0.1 * 7.45**2 + 1 = 6.55025 (gamma = 1): level 1.
    capped = SodaPolicy(switch_weight=1.0, **ONE_STEP)
    assert capped.cap_idx(TWO.bitrates_bps, 0.9e6) == 0 and capped.cap_idx(TWO.bitrates_bps, 9e6) == 1
    assert _choice(capped, TWO, 0.9e6, 40.0, 0) == 0
    free = SodaPolicy(switch_weight=1.0, cap_at_prediction=False, **ONE_STEP)
    costs = free.costs(np.array([[0], [1]]), np.array([[1.0, 0.0]]), TWO.bitrates_bps, 0.9e6, 40.0, 0, 4.0)
    assert costs == pytest.approx([7.141, 6.55025])
    assert _choice(free, TWO, 0.9e6, 40.0, 0) == 1


def test_two_step_plan_searches_only_monotone_sequences() -> None:
    # Ladder 1, 2, 4 Mbit/s (v = 1, 0.5, 0), dt = 4 s, K = 2, w = 2 Mbit/s (cap: level 1), buffer 4 s (x0 = 1),
    # last level 1, target 8 s (x_bar = 2), beta = 1, epsilon = 0.1, gamma = 0.5. Per step (w/r: 2 at level 0,
    # 1 at level 1):
    # (1, 1): x = 1, 1 -> (0.5 + 1) + (0.5 + 1) = 3.0
    # (1, 0): 1.5, then x = 2 -> 2 + 0 + 0.5 * 0.25 = 2.125; total 3.625
    # (0, 0): x = 2 -> 2 + 0 + 0.125 = 2.125, then x = 3 -> 2 + 0.1 = 2.1; total 4.225
    # (0, 1): 2.125, then x = 2 -> 0.5 + 0 + 0.125 = 0.625; total 2.75 (down then up: not monotone)
    kwargs = {"max_horizon_s": 8.0, "target_buffer_s": 8.0, "buffer_weight": 1.0, "overshoot_weight": 0.1,
              "switch_weight": 0.5}
    monotone = SodaPolicy(**kwargs)
    context = _context(THREE, 2e6, 4.0, 1)
    assert monotone.horizon(context) == 2
    seqs = np.array([[1, 1], [1, 0], [0, 0], [0, 1]])
    distortion = monotone.distortions(monotone.level_utilities(context, 2))
    assert distortion.tolist() == [[1.0, 0.5, 0.0], [1.0, 0.5, 0.0]]
    costs = monotone.costs(seqs, distortion, THREE.bitrates_bps, 2e6, 4.0, 1, 4.0)
    assert costs == pytest.approx([3.0, 3.625, 4.225, 2.75])
    assert sorted(map(tuple, monotone.candidates(3, 2, 1, 1).tolist())) == [(0, 0), (1, 0), (1, 1)]
    assert monotone.plan(context, 2e6).tolist() == [1, 1]
    assert monotone.select(context) == 1
    exhaustive = SodaPolicy(solver="exhaustive", **kwargs)
    assert exhaustive.plan(context, 2e6).tolist() == [0, 1]
    assert exhaustive.select(context) == 0


def test_monotone_sequences_and_utilities() -> None:
    seqs = monotone_sequences(3, 2)
    assert sorted(map(tuple, seqs.tolist())) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2), (2, 0), (2, 1),
                                                 (2, 2)]
    assert monotone_sequences(6, 5).shape == (2 * 252 - 6, 5)  # 2 * C(10, 5), the 6 constant ones once
    assert bitrate_utilities([1e6, 2e6, 4e6], "linear").tolist() == pytest.approx([0.0, 1 / 3, 1.0])
    assert bitrate_utilities([3e6]).tolist() == [1.0]
    # The planner's horizon: floor(10 s / dt), at least 1, no more than the chunks left.
    policy = SodaPolicy()
    assert policy.horizon(_context(ENVIVIO, 1e6, 4.0, 0)) == 2
    assert policy.horizon(PlayerContext(Video.cbr([1e6, 2e6], chunk_duration_s=2.0, n_chunks=10), (), 0.0)) == 5
    assert policy.horizon(PlayerContext(Video.cbr([1e6, 2e6], chunk_duration_s=12.0, n_chunks=10), (), 0.0)) == 1


# ------------------------------------------------------------------------------------------ shape of decisions

@pytest.mark.parametrize("last_idx", range(6))
def test_more_buffer_never_picks_a_lower_level(last_idx: int) -> None:
    # Where the buffer capacity does not bind (it can: a plan capped at 60 s makes low levels as good at the
    # buffer cost, see docs/baselines/soda.md), more buffer never lowers the choice.
    policy = SodaPolicy(max_buffer_s=1000.0)
    for throughput_bps in np.geomspace(0.2e6, 8e6, 12):
        levels = [_choice(policy, ENVIVIO, float(throughput_bps), float(b), last_idx) for b in np.linspace(0, 60, 31)]
        assert levels == sorted(levels), (throughput_bps, levels)
    assert _choice(policy, ENVIVIO, 2e6, 0.0, last_idx) < _choice(policy, ENVIVIO, 2e6, 40.0, last_idx)


@pytest.mark.parametrize("last_idx", range(6))
def test_more_throughput_never_picks_a_lower_level_above_the_target(last_idx: int) -> None:
    policy = SodaPolicy(max_buffer_s=1000.0)
    for buffer_s in (20.0, 30.0, 45.0, 60.0):
        levels = [_choice(policy, ENVIVIO, float(t), buffer_s, last_idx) for t in np.geomspace(0.2e6, 8e6, 30)]
        assert levels == sorted(levels), (buffer_s, levels)
        assert levels[0] == 0 and levels[-1] > max(last_idx - 1, 0)  # up from r_0, a step at a time (switch cost)


def test_the_switching_weight_suppresses_an_oscillation() -> None:
    # The link alternates 1.6 and 2.6 Mbit/s every 4 s, around the 1850 kbit/s rung.
    times = np.arange(0.0, 801.0, 4.0)
    rates = np.where(np.arange(times.size) % 2 == 0, 1.6e6, 2.6e6)
    trace = Trace(times, rates, name="square")
    config = preset("pensieve")

    def switches(policy: SodaPolicy) -> int:
        levels = [o.quality_idx for o in run_session(policy, trace, ENVIVIO, config)]
        return sum(a != b for a, b in zip(levels, levels[1:]))

    free, smooth = switches(SodaPolicy(switch_weight=0.0)), switches(SodaPolicy())
    assert smooth < free / 2, (smooth, free)


# ----------------------------------------------------------------------------- sessions, determinism, errors

def test_sessions_are_deterministic_and_reset_forgets_the_last_one() -> None:
    trace = generate_trace_set(seed=7, n_traces=1)[0]
    config = preset("pensieve")
    policy = SodaPolicy()
    first = run_session(policy, trace, ENVIVIO, config)
    again = run_session(policy, trace, ENVIVIO, config)  # the same object: reset clears the estimator
    fresh = run_session(make_agent("soda"), trace, ENVIVIO, config)
    assert [o.quality_idx for o in first] == [o.quality_idx for o in again] == [o.quality_idx for o in fresh]
    assert len({o.quality_idx for o in first}) > 1  # it adapts (a constant choice would make this test empty)


def test_full_sessions_against_robustmpc_on_synthetic_traces() -> None:
    traces = generate_trace_set(seed=3, n_traces=6)
    config, weights = preset("pensieve"), QoEWeights()
    totals: dict[str, np.ndarray] = {}
    for name in ("soda", "robustmpc", "fixed:0"):
        rows = []
        for trace in traces:
            outcomes = run_session(make_agent(name), trace, ENVIVIO, config)
            m = session_metrics(outcomes, ENVIVIO.bitrates_bps, weights, chunk_duration_s=4.0)
            rows.append((m.qoe_mean_per_chunk, m.switch_count, m.rebuffer_s, m.avg_bitrate_bps))
        totals[name] = np.array(rows).mean(axis=0)
    soda, mpc, lowest = totals["soda"], totals["robustmpc"], totals["fixed:0"]
    assert soda[1] < mpc[1]  # the paper's point: fewer switches than RobustMPC
    assert soda[0] > lowest[0] and soda[3] > 2 * lowest[3]  # it does stream above the lowest rung
    assert soda[0] > mpc[0] - 0.25 * abs(mpc[0])  # and its QoE is in RobustMPC's range (not a broken planner)


def test_any_ladder_plays_a_session() -> None:
    bbb = Video.cbr([float(r) for r in np.geomspace(0.2e6, 8e6, 10)], chunk_duration_s=3.0, n_chunks=40)
    one = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=5)
    trace = generate_trace_set(seed=5, n_traces=1)[0].scaled(2.0)
    config = dataclasses.replace(preset("pensieve"), first_chunk_quality_idx=0)
    levels = [o.quality_idx for o in run_session(SodaPolicy(), trace, bbb, config)]
    assert len(levels) == 40 and max(levels) >= 5
    assert [o.quality_idx for o in run_session(SodaPolicy(), trace, one, config)] == [0] * 5


def test_the_utility_comes_from_one_place() -> None:
    # A utility that prefers the lowest rung (the hook a perceptual quality replaces): SODA follows it.
    def reversed_utility(context: PlayerContext, horizon: int) -> np.ndarray:
        return np.tile(-context.video.bitrates_bps, (horizon, 1))

    assert _choice(SodaPolicy(), ENVIVIO, 8e6, 40.0, 5) == 5
    assert _choice(SodaPolicy(utility_fn=reversed_utility), ENVIVIO, 8e6, 40.0, 0) == 0
    # A video carrying a per-chunk quality table (Video.ssim_db, SSIM dB) is planned with it when asked to.
    # Level 1 has the best quality; the quality range 8..20 dB scales to v = (1, 0, 0.75, 0.75, 0.75, 0.75).
    ssim_db = np.tile(np.array([8.0, 20.0, 11.0, 11.0, 11.0, 11.0]), (ENVIVIO.n_chunks, 1))
    video = _WithQuality(ENVIVIO, ssim_db)
    perceptual = SodaPolicy(use_video_quality=True)
    assert perceptual.level_utilities(_context(video, 8e6, 40.0, 1), 2).tolist() == [[0, 1, 0.25, 0.25, 0.25, 0.25]] * 2
    assert _choice(perceptual, video, 8e6, 40.0, 1) == 1
    assert _choice(SodaPolicy(), video, 8e6, 40.0, 1) >= 4  # off by default: the ladder's utility
    with pytest.raises(ConfigError, match=r"shape \(1, 6\).*\(2, 6\)"):
        SodaPolicy(utility_fn=lambda c, k: np.zeros((1, 6))).select(_context(ENVIVIO, 2e6, 10.0, 0))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"target_buffer_s": 0.0}, r"target_buffer_s=0.0 must be a finite number > 0"),
    ({"max_horizon_s": -1.0}, r"max_horizon_s=-1.0 must be a finite number > 0"),
    ({"switch_weight": -1.0}, r"switch_weight=-1.0 must be a finite number >= 0"),
    ({"buffer_weight": float("nan")}, r"buffer_weight=nan must be a finite number >= 0"),
    ({"overshoot_weight": 1.0}, r"overshoot_weight=1.0 must be a finite number in \[0, 1\)"),
    ({"target_buffer_s": 70.0}, r"target_buffer_s=70.0 must be <= max_buffer_s=60.0"),
    ({"distortion": "sqrt"}, r"distortion='sqrt' is not one of log, inverse, linear"),
    ({"solver": "greedy"}, r"solver='greedy' is not one of monotone, exhaustive"),
])
def test_bad_parameters_name_the_field(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        SodaPolicy(**kwargs)  # type: ignore[arg-type]


def test_registry() -> None:
    soda = make_agent("soda")
    assert isinstance(soda, SodaPolicy) and soda.name == "soda" and soda.target_buffer_s == 20.0
    custom = make_agent("SODA:30")
    assert isinstance(custom, SodaPolicy) and custom.target_buffer_s == 30.0 and custom.name == "soda:30"
    with pytest.raises(ConfigError, match=r"agent 'soda': target_buffer_s=0.0 must be a finite number > 0; use soda:"):
        make_agent("soda:0")
    with pytest.raises(ConfigError, match=r"agent 'soda': parameter 'inf' must be a finite number"):
        make_agent("soda:inf")
    assert make_agent("soda").select(PlayerContext(ENVIVIO, (), 0.0)) == 0  # no measurement yet
