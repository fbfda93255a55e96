"""The batched core and its link arithmetic: hand-computed cases, subsets, noise streams and bad input."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from simulator import ConfigError, SimConfig, SimulationInvariantError, preset
from simulator.des import Session
from simulator.env import AbrEnv, EnvConfig
from simulator.fast import BatchedSessions
from simulator.fast_link import PackedTraces, idle, transfer
from simulator.fast_session import FastSession
from simulator.vector_env import AbrVectorEnv
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video

EFF = 0.95


@pytest.fixture(scope="module")
def packed() -> PackedTraces:
    """Two traces of different lengths: 1 then 3 Mbit/s over 10 s, and a 4 s trace with a gap."""
    return PackedTraces.pack([
        Trace(np.array([0.0, 5.0, 10.0]), np.array([0.0, 1e6, 3e6]), name="step"),
        Trace(np.array([2.0, 3.0, 5.0, 6.0]), np.array([0.0, 1e6, 0.0, 1e6]), name="gappy"),
    ], payload_efficiency=EFF)


def test_packing_keeps_each_trace_and_its_pass_totals(packed: PackedTraces) -> None:
    assert packed.first_idx.tolist() == [0, 3] and packed.last_idx.tolist() == [2, 6]
    assert packed.pass_bits.tolist() == pytest.approx([(5e6 + 15e6) * EFF, 2e6 * EFF], rel=1e-15)
    assert packed.pass_s.tolist() == [10.0, 4.0]
    with pytest.raises(ValueError, match="no traces"):
        PackedTraces.pack([], payload_efficiency=EFF)


def test_transfers_in_one_interval_across_intervals_and_across_passes(packed: PackedTraces) -> None:
    m = np.array([0, 0, 1, 1])
    state = packed.start(m, np.array([1, 1, 1, 1]))
    size = np.array([1e6, 8e6, 0.5e6, 3e6])
    out = transfer(packed, m, state, size)
    # 8 Mbit: 4.75 in (0, 5], then 3.25 at 2.85 Mbit/s of payload.
    expected_s = [1e6 / 1e6 / EFF, 5.0 + (8e6 - 5e6 * EFF) / 3e6 / EFF, 0.5e6 / 1e6 / EFF,
                  # gappy: 1.9 Mbit per 4 s pass; 3 Mbit = one pass, 0.95 in (2, 3], 2 s gap, 0.15 at 0.95.
                  4.0 + 1.0 + 2.0 + (3e6 - 2 * 0.95e6 - 0.95e6) / 1e6 / EFF]
    assert out.elapsed_s.tolist() == pytest.approx(expected_s, rel=1e-12)
    assert (out.interval_idx - packed.first_idx[m]).tolist() == [1, 2, 1, 3]
    assert out.clock_s.tolist() == pytest.approx([1e6 / 1e6 / EFF, 5.0 + expected_s[1] - 5.0, 2.0 + 0.5e6 / 0.95e6,
                                                 5.0 + 0.15e6 / 0.95e6], rel=1e-12)


def test_idle_walks_the_clock_and_wraps_to_the_first_sample_time(packed: PackedTraces) -> None:
    m = np.array([0, 1, 1])
    state = packed.start(m, np.array([1, 1, 2]))  # clocks 0, 2 and 3
    after = idle(packed, m, state, np.array([3.0, 9.5, 2.0]))
    assert after.clock_s.tolist() == pytest.approx([3.0, 3.5, 5.0], abs=1e-12)  # 9.5 s = 2 passes + 1.5 s
    assert (after.interval_idx - packed.first_idx[m]).tolist()[:2] == [1, 2]


def test_start_rejects_intervals_outside_the_trace(packed: PackedTraces) -> None:
    with pytest.raises(ValueError, match="start_idx=3 must be in \\[1, 2\\] for trace 'step'"):
        packed.start([0], [3])


def _core(traces: list[Trace], video: Video, config: SimConfig, n: int) -> BatchedSessions:
    core = BatchedSessions(traces, video, config, n)
    core.reset(np.arange(n) % len(traces), rngs=[np.random.default_rng(i) for i in range(n)])
    return core


def test_stepping_subsets_equals_stepping_the_whole_batch() -> None:
    traces = generate_trace_set(1, 3)
    video = Video.cbr([300e3, 1200e3, 4300e3], chunk_duration_s=4.0, n_chunks=12)
    config = preset("pensieve-train").replace(max_buffer_s=10.0)
    whole, parts = _core(traces, video, config, 3), _core(traces, video, config, 3)
    for c in range(12):
        q = np.array([c % 3, (c + 1) % 3, 2])
        full = whole.step(q)
        first = parts.step(q[[2, 0]], sessions=[2, 0])
        second = parts.step(q[[1]], sessions=np.array([1]))
        assert first.sessions.tolist() == [2, 0] and second.sessions.tolist() == [1]
        for i, (batch, j) in {0: (first, 1), 1: (second, 0), 2: (first, 0)}.items():
            assert batch.outcome(j) == full.outcome(i)
    assert np.array_equal(whole.state.clock_s, parts.state.clock_s)
    assert whole.is_done.all()


def test_pointer_matches_the_simpy_link() -> None:
    trace = generate_trace_set(2, 1)[0]
    video = Video.cbr([300e3, 4300e3], chunk_duration_s=4.0, n_chunks=20)
    config = preset("realistic").replace(max_buffer_s=9.0)
    core = _core([trace], video, config, 1)
    session = Session(trace, video, config)
    for c in range(20):
        core.step(np.array([c % 2]))
        session.step(c % 2)
        assert core.trace_pointer()[0] == session.link.ptr
        assert core.state.clock_s[0] == pytest.approx(session.link.clock_s, rel=1e-12)


def test_bad_actions_and_sessions_are_refused_with_clear_errors() -> None:
    video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=2)
    core = _core(generate_trace_set(0, 2), video, preset("realistic"), 3)
    with pytest.raises(ValueError, match="expected 3 actions .* got shape \\(2,\\)"):
        core.step(np.array([0, 1]))
    with pytest.raises(ValueError, match="action 2 of stepped session 1 is not a quality index in \\[0, 1\\]"):
        core.step(np.array([0, 2, 1]))
    with pytest.raises(ValueError, match="must be integer quality indices"):
        core.step(np.array([0.5, 1.0, 0.0]))
    with pytest.raises(ValueError, match="distinct"):
        core.step(np.array([0, 0]), sessions=[1, 1])
    with pytest.raises(ValueError, match="session indices must be in \\[0, 2\\]"):
        core.step(np.array([0]), sessions=[3])
    assert core.step(np.array([1.0, 0.0, 1.0])).quality_idx.tolist() == [1, 0, 1]  # integral floats are fine
    core.step(np.array([0, 0]), sessions=[0, 2])
    with pytest.raises(SimulationInvariantError, match="sessions \\[0, 2\\] have downloaded the whole video"):
        core.step(np.array([0, 0, 0]))
    assert core.is_done.tolist() == [True, False, True]


def test_bad_configuration_and_resets_are_refused() -> None:
    traces, video = generate_trace_set(0, 2), Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=2)
    with pytest.raises(ConfigError, match="num_envs=0 must be an integer >= 1"):
        BatchedSessions(traces, video, preset("realistic"), 0)
    with pytest.raises(ConfigError, match="first_chunk_quality_idx=1 is not a level"):
        BatchedSessions(traces, video, preset("pensieve"), 2)
    core = BatchedSessions(traces, video, preset("pensieve-train").replace(first_chunk_quality_idx=0), 2)
    with pytest.raises(ConfigError, match="pass rngs, one Generator for each of the 2 sessions reset \\(got none\\)"):
        core.reset([0, 1])
    with pytest.raises(ConfigError, match="trace_idx=2 must be in \\[0, 1\\]"):
        core.reset([0, 2], rngs=[np.random.default_rng(0)] * 2)
    assert core.is_done.all()  # nothing was started


def test_too_slow_trace_is_refused_naming_it_and_the_state_is_kept() -> None:
    slow = Trace(np.array([0.0, 1.0]), np.array([0.0, 1e3]), name="dial-up")
    video = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=2)
    config = preset("realistic")
    core = BatchedSessions([generate_trace_set(0, 1)[0], slow], video, config, 2)
    core.reset([0, 1])
    with pytest.raises(SimulationInvariantError, match="trace 'dial-up' delivers 950 bits per pass") as refused:
        core.step(np.array([0, 0]))
    with pytest.raises(SimulationInvariantError) as simpy_refused:
        Session(slow, video, config).step(0)
    assert str(refused.value) == str(simpy_refused.value)
    assert core.state.chunk_idx.tolist() == [0, 0]
    with pytest.raises(SimulationInvariantError, match="dial-up"):
        FastSession(slow, video, config).step(0)


def test_abandoned_session_leaves_its_generator_as_per_chunk_draws_would() -> None:
    video = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=10)
    config = preset("pensieve-train").replace(first_chunk_quality_idx=None)
    core = BatchedSessions(generate_trace_set(0, 1), video, config, 2)
    rngs = [np.random.default_rng(5), np.random.default_rng(6)]
    core.reset(0, rngs=rngs)
    for _ in range(3):
        core.step(np.array([0, 0]))
    core.reset(0, sessions=[0], rngs=[rngs[0]])  # session 0 drew 3 values, then 10 for the new episode
    core.sync_rngs([1])
    expected = [np.random.default_rng(5), np.random.default_rng(6)]
    expected[0].uniform(0.9, 1.1, size=13)
    expected[1].uniform(0.9, 1.1, size=3)
    for got, want in zip(rngs, expected):
        assert got.random() == want.random()


def test_fast_core_env_passes_the_checker_and_refuses_an_unknown_core() -> None:
    traces = generate_trace_set(3, 4)  # the pickle round trip of both cores: tests/simulator/test_env.py
    check_env(AbrEnv(traces=traces, core="fast"), skip_render_check=True)
    with pytest.raises(ConfigError, match="core='numba' is not one of simpy, fast"):
        AbrEnv(traces=traces, core="numba")


def test_the_old_engine_keyword_still_picks_the_core_with_a_deprecation_warning() -> None:
    traces = generate_trace_set(3, 4)
    deprecated = r"AbrEnv\(engine='fast'\) is deprecated: the keyword is now core='fast'"
    with pytest.warns(DeprecationWarning, match=deprecated):
        old = AbrEnv(traces=traces, engine="fast")
    new = AbrEnv(traces=traces, core="fast")
    assert old.core == "fast"
    old_steps, new_steps = ([env.reset(seed=3)[1]["trace_idx"], *(env.step(a)[1] for a in (0, 5, 2))]
                            for env in (old, new))
    assert old_steps == new_steps
    with pytest.warns(DeprecationWarning), pytest.raises(ConfigError, match="core='fast' and engine='numba'"):
        AbrEnv(traces=traces, core="fast", engine="numba")
    with pytest.warns(DeprecationWarning, match=r"AbrVectorEnv\(engine='fast'\)"):
        assert AbrVectorEnv(2, traces=traces, engine="fast").num_envs == 2


def test_fast_core_env_reproduces_the_simpy_core_on_a_training_episode() -> None:
    traces = generate_trace_set(3, 4)
    envs = [AbrEnv(traces=traces, config=EnvConfig(training=True), core=c) for c in ("simpy", "fast")]
    infos = [env.reset(seed=9)[1] for env in envs]
    assert infos[0]["trace_idx"] == infos[1]["trace_idx"] and infos[0]["start_idx"] == infos[1]["start_idx"]
    for step in range(47):
        (_, r0, d0, _, i0), (_, r1, d1, _, i1) = (env.step(step % 6) for env in envs)
        assert r1 == pytest.approx(r0, rel=1e-9, abs=1e-9) and d0 == d1
        assert i1["download_time_s"] == pytest.approx(i0["download_time_s"], rel=1e-9)
    assert d0
