"""Session-core invariants on random traces, videos and action sequences (hypothesis)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simulator import QoEWeights, preset, session_metrics
from simulator.des import Session
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import SimulationInvariantError
from simulator.link import MAX_TRACE_PASSES
from traces.types import Trace, Video

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def traces(draw: st.DrawFn) -> Trace:
    n = draw(st.integers(2, 30))
    steps = draw(st.lists(st.just(0.0) | st.floats(0.05, 20.0), min_size=n - 1, max_size=n - 1))
    rates_mbps = draw(st.lists(st.just(0.0) | st.floats(0.1, 20.0), min_size=n, max_size=n))
    times = np.concatenate([[0.0], np.cumsum(steps)])
    rates = np.array(rates_mbps) * 1e6
    if times[-1] <= 0 or not np.any(rates[1:] * np.diff(times) > 0):
        times = np.append(times, times[-1] + 1.0)
        rates = np.append(rates, 1e6)
    if times[-1] < 1.0:  # keep a pass over the trace long enough to carry a chunk in few passes
        times = np.append(times, times[-1] + 5.0)
        rates = np.append(rates, 1e6)
    return Trace(times, rates, name="random")


@st.composite
def videos(draw: st.DrawFn) -> Video:
    n_levels = draw(st.integers(1, 6))
    n_chunks = draw(st.integers(1, 20))
    ladder = np.cumsum(draw(st.lists(st.floats(0.05, 3.0), min_size=n_levels, max_size=n_levels))) * 1e6
    jitter = draw(st.lists(st.floats(0.5, 1.5), min_size=n_chunks, max_size=n_chunks))
    duration_s = draw(st.sampled_from([1.0, 2.0, 4.0]))
    sizes = np.outer(jitter, ladder) * duration_s
    return Video(ladder, duration_s, sizes, name="random")


configs = st.sampled_from(["pensieve", "pensieve-train", "realistic"]).map(preset)


def _play(trace: Trace, video: Video, config, actions: list[int], seed: int) -> Session:
    session = Session(trace, video, config.replace(first_chunk_quality_idx=None, max_buffer_s=12.0),
                      rng=np.random.default_rng(seed))
    for i in range(video.n_chunks):
        session.step(actions[i % len(actions)] % video.n_levels)
    return session


@SETTINGS
@given(traces(), videos(), configs, st.lists(st.integers(0, 5), min_size=1, max_size=20), st.integers(0, 2**32))
def test_core_invariants(trace: Trace, video: Video, config, actions: list[int], seed: int) -> None:
    try:
        session = _play(trace, video, config, actions, seed)
    except SimulationInvariantError as error:
        # Refused only when a chosen chunk really needs more than MAX_TRACE_PASSES passes over the trace.
        bits_per_pass = config.payload_efficiency * float(np.sum(trace.throughput_bps[1:] * np.diff(trace.times_s)))
        chosen = [video.chunk_sizes_bits[i, actions[i % len(actions)] % video.n_levels] for i in range(video.n_chunks)]
        assert max(chosen) > MAX_TRACE_PASSES * bits_per_pass
        assert "too slow for this video" in str(error)
        return
    outs = session.outcomes
    cap_s = session.config.max_buffer_s
    previous_end_s = 0.0
    for o in outs:
        assert 0.0 <= o.buffer_s <= cap_s + 1e-9
        assert o.rebuffer_s >= 0.0 and o.startup_delay_s >= 0.0 and o.idle_s >= 0.0
        assert o.request_time_s == pytest.approx(previous_end_s, abs=1e-9)
        assert o.finish_time_s >= o.request_time_s
        assert o.download_time_s == pytest.approx(o.finish_time_s - o.request_time_s, rel=1e-9, abs=1e-9)
        previous_end_s = o.finish_time_s + o.idle_s
    chosen = sum(video.chunk_sizes_bits[o.chunk_idx, o.quality_idx] for o in outs)
    assert session.link.delivered_bits == pytest.approx(chosen, rel=1e-12)
    metrics = session_metrics(outs, video.bitrates_bps, QoEWeights(), chunk_duration_s=video.chunk_duration_s)
    assert metrics.downloaded_bits == pytest.approx(chosen, rel=1e-12)
    assert metrics.qoe == pytest.approx(
        metrics.utility - metrics.rebuffer_penalty - metrics.smoothness_penalty, rel=1e-9, abs=1e-9)
    # Wall time = downloads + idles; played time can't exceed what was downloaded.
    assert session.env.now == pytest.approx(previous_end_s - outs[-1].idle_s + outs[-1].idle_s, abs=1e-9)
    assert metrics.rebuffer_s + metrics.startup_delay_s <= session.env.now + 1e-9


@SETTINGS
@given(traces(), videos(), configs, st.lists(st.integers(0, 5), min_size=1, max_size=20), st.integers(0, 2**32))
def test_same_seed_same_session(trace: Trace, video: Video, config, actions: list[int], seed: int) -> None:
    def outcomes() -> list[object]:
        try:
            return list(_play(trace, video, config, actions, seed).outcomes)
        except SimulationInvariantError as error:  # a too-slow trace is refused the same way every time
            return [str(error)]

    assert outcomes() == outcomes()


@settings(max_examples=50, deadline=None)
@given(traces(), st.integers(0, 2**32), st.sampled_from(["linear", "log", "hd"]))
def test_env_rewards_sum_to_session_qoe(trace: Trace, seed: int, kind: str) -> None:
    env = AbrEnv(traces=[trace], qoe=QoEWeights(kind=kind), config=EnvConfig(training=True))
    bits_per_pass = env.sim_config.payload_efficiency * float(np.sum(trace.throughput_bps[1:] * np.diff(trace.times_s)))
    assume(env.video.chunk_sizes_bits.max() <= MAX_TRACE_PASSES * bits_per_pass)  # else refused: see above
    _, info = env.reset(seed=seed)
    total = info["first_chunk_qoe"]
    terminated = False
    while not terminated:
        _, reward, terminated, _, _ = env.step(int(env.np_random.integers(6)))
        total += reward
    outcomes = env._session.outcomes
    metrics = session_metrics(outcomes, env.video.bitrates_bps, env.qoe, chunk_duration_s=4.0)
    assert total == pytest.approx(metrics.qoe, rel=1e-9, abs=1e-9)
