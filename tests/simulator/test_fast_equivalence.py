"""The batched core against the SimPy core, and the vector env against single envs (hypothesis).

Tolerance: every float of every chunk outcome and every QoE term within
``EQUIVALENCE_RTOL * max(|a|, |b|) + EQUIVALENCE_ATOL`` (1e-9 relative, 1e-9 absolute for differences of
nearly equal numbers such as a near-zero rebuffer); integers, decisions and refusals exactly. The
single-session fast core equals the batched core bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from simulator import QoEWeights, session_metrics
from simulator.config import SimConfig
from simulator.des import Session
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import SimulationInvariantError
from simulator.fast import EQUIVALENCE_ATOL, EQUIVALENCE_RTOL, BatchedSessions
from simulator.fast_session import FastSession
from simulator.observation import ENCODERS, encode_observation
from simulator.qoe import chunk_qoe
from simulator.records import ChunkOutcome
from simulator.vector_env import AbrVectorEnv, child_seeds
from tests.simulator._strategies import sim_configs, trace_lists, videos
from traces.types import Trace, Video

EQUIVALENCE = settings(max_examples=500, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= EQUIVALENCE_RTOL * max(abs(a), abs(b)) + EQUIVALENCE_ATOL


def _assert_outcomes_close(mine: ChunkOutcome, ref: ChunkOutcome, where: str) -> None:
    for field, x, y in zip(ChunkOutcome._fields, mine, ref):
        if isinstance(y, int):
            assert x == y, f"{where} {field}: {x} != {y}"
        else:
            assert _close(x, y), f"{where} {field}: {x!r} != {y!r}"


@EQUIVALENCE
@given(trace_lists(), videos(), sim_configs(), st.sampled_from(["linear", "log", "hd"]), st.data())
def test_batched_core_matches_the_simpy_core(traces: list[Trace], video: Video, config: SimConfig, kind: str,
                                               data: st.DataObject) -> None:
    weights = QoEWeights(kind=kind, hd_utilities=tuple(float(u) for u in range(1, video.n_levels + 1)))
    n = data.draw(st.integers(1, 4), label="sessions")
    trace_idx = [data.draw(st.integers(0, len(traces) - 1)) for _ in range(n)]
    start_idx = [data.draw(st.integers(1, traces[m].times_s.size - 1)) for m in trace_idx]
    actions = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=30), label="actions")
    seeds = np.random.SeedSequence(data.draw(st.integers(0, 2**32), label="seed")).spawn(n)
    core = BatchedSessions(traces, video, config, n, qoe=weights)
    core.reset(trace_idx, start_idx, rngs=[np.random.default_rng(s) for s in seeds])
    ref = [Session(traces[m], video, config, start_idx=j, rng=np.random.default_rng(s))
           for m, j, s in zip(trace_idx, start_idx, seeds)]
    fast = [FastSession(traces[m], video, config, start_idx=j, rng=np.random.default_rng(s))
            for m, j, s in zip(trace_idx, start_idx, seeds)]
    utilities = weights.utilities(video.bitrates_bps)
    for c in range(core.n_chunks):
        q = np.array([actions[(7 * i + c) % len(actions)] % video.n_levels for i in range(n)])
        if c == 0 and config.first_chunk_quality_idx is not None:
            q[:] = config.first_chunk_quality_idx
        errors: list[str] = []
        outcomes = []
        for i, session in enumerate(ref):
            try:
                outcomes.append(session.step(int(q[i])))
            except SimulationInvariantError as error:
                errors.append(str(error))
        if errors:  # refused exactly when the SimPy core refuses, with the same message
            with pytest.raises(SimulationInvariantError) as refused:
                core.step(q)
            assert str(refused.value) == errors[0]
            assert core.state.chunk_idx.tolist() == [c] * n  # the state is left unchanged
            return
        batch = core.step(q)
        for i in range(n):
            mine = batch.outcome(i)
            _assert_outcomes_close(mine, outcomes[i], f"session {i} chunk {c}")
            assert fast[i].step(int(q[i])) == mine  # the scalar twin: bit for bit
            previous = ref[i].outcomes[-2].quality_idx if c else int(q[i])
            terms = chunk_qoe(int(q[i]), previous, outcomes[i].rebuffer_s, utilities, weights)
            mine_terms = (batch.utility[i], batch.rebuffer_penalty[i], batch.smoothness_penalty[i])
            assert all(_close(float(x), y) for x, y in zip(mine_terms, terms)), (mine_terms, terms)
        assert batch.is_last.tolist() == [s.is_done for s in ref]
        assert np.array_equal(core.trace_pointer() >= 1, np.ones(n, dtype=bool))
    for i in range(n):  # whole-session QoE from the outcomes of each core
        got = session_metrics(fast[i].outcomes, video.bitrates_bps, weights, chunk_duration_s=video.chunk_duration_s)
        want = session_metrics(ref[i].outcomes, video.bitrates_bps, weights, chunk_duration_s=video.chunk_duration_s)
        for key, value in want.as_dict().items():
            assert _close(float(got.as_dict()[key]), float(value)), (key, got.as_dict()[key], value)
    assert core.is_done.all()


def _assert_infos_match(info: dict, single: dict, i: int, exact: bool) -> None:
    for key, value in single.items():
        if key in ("first_chunk", "rewards"):
            _assert_infos_match(info[key], value, i, exact)
            continue
        assert info[f"_{key}"][i], key
        got = info[key][i]
        if exact or isinstance(value, (int, str, np.integer)):
            assert got == value, (key, got, value)
        else:
            assert _close(float(got), float(value)), (key, got, value)


@EQUIVALENCE
@pytest.mark.filterwarnings("ignore:step\\(\\) called after the episode terminated")
@given(trace_lists(may_be_slow=False), videos(), st.sampled_from(["pensieve", "pensieve-train", "realistic"]),
       st.booleans(), st.sampled_from([1, 3, 8]), st.data())
def test_vector_env_equals_single_envs(traces: list[Trace], video: Video, preset_name: str, training: bool,
                                       history_len: int, data: st.DataObject) -> None:
    assume(preset_name == "realistic" or video.n_levels > 1)  # the pensieve presets start at level 1
    n = data.draw(st.integers(1, 3), label="num_envs")
    seed = data.draw(st.integers(0, 2**32), label="seed")
    actions = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=20), label="actions")
    n_steps = data.draw(st.integers(1, 2 * video.n_chunks + 2), label="steps")
    encoder = data.draw(st.sampled_from(ENCODERS), label="observation")
    scale = data.draw(st.sampled_from([(1.0, 1.0), (0.5, 2.0), (0.1, 30.0)]), label="throughput scale")
    config = EnvConfig(training=training, history_len=history_len, observation=encoder,
                       throughput_scale_low=scale[0], throughput_scale_high=scale[1])
    kwargs = {"traces": traces, "video": video, "sim_config": preset_name, "config": config}
    venv = AbrVectorEnv(n, **kwargs)
    singles = {core: [AbrEnv(**kwargs, core=core) for _ in range(n)] for core in ("fast", "simpy")}
    obs, info = venv.reset(seed=seed)
    for core, envs in singles.items():
        for i, (env, s) in enumerate(zip(envs, child_seeds(seed, n))):
            single_obs, single_info = env.reset(seed=s)
            _compare_obs(obs[i], single_obs, exact=core == "fast")
            _assert_infos_match(info, single_info, i, exact=core == "fast")
    ended = np.zeros(n, dtype=bool)
    for t in range(n_steps):
        a = np.array([actions[(3 * i + t) % len(actions)] % video.n_levels for i in range(n)])
        obs, rewards, terminated, truncated, info = venv.step(a)
        assert not truncated.any()
        for core, envs in singles.items():
            exact = core == "fast"
            for i, env in enumerate(envs):
                if ended[i]:  # next-step autoreset: the action is ignored
                    single_obs, single_info = env.reset()
                    reward, done = 0.0, False
                else:
                    single_obs, reward, done, _, single_info = env.step(int(a[i]))
                _compare_obs(obs[i], single_obs, exact)
                assert terminated[i] == done
                assert rewards[i] == reward if exact else _close(float(rewards[i]), reward)
                _assert_infos_match(info, single_info, i, exact)
                if exact:  # the incremental observation is encode_observation's
                    assert np.array_equal(single_obs, encode_observation(env._session.context(), history_len,
                                                                         encoder))
        ended = terminated


def _compare_obs(got: np.ndarray, want: np.ndarray, exact: bool) -> None:
    if exact:
        assert np.array_equal(got, want)
    else:  # float32 entries of values equal within 1e-9: at most one float32 rounding step apart
        np.testing.assert_allclose(got, want, rtol=2 * float(np.finfo(np.float32).eps), atol=1e-30)


def _both_fast_cores(trace: Trace, video: Video, config: SimConfig) -> list[list[ChunkOutcome]]:
    core = BatchedSessions([trace], video, config, 1)
    core.reset(0)
    batched = [core.step(np.array([0])).outcome(0) for _ in range(video.n_chunks)]
    single = FastSession(trace, video, config)
    return [batched, [single.step(0) for _ in range(video.n_chunks)]]


def test_chunk_equal_to_an_interval_payload_crosses_the_gap_after_it() -> None:
    # TraceLink ends a chunk in an interval only if the payload strictly exceeds it: a chunk of exactly
    # the first interval's 1 Mbit waits through the 10 s gap and completes at the start of the next one.
    trace = Trace(np.array([0.0, 1.0, 11.0, 12.0]), np.array([0.0, 1e6, 0.0, 1e6]), name="exact")
    video = Video(np.array([1e6]), 1.0, np.full((1, 1), 1e6))
    config = SimConfig(payload_efficiency=1.0, link_rtt_s=0.0, first_chunk_quality_idx=None)
    want = Session(trace, video, config).step(0)
    assert want.download_time_s == 11.0
    for outcomes in _both_fast_cores(trace, video, config):
        assert outcomes == [want]


def test_near_tie_before_a_gap_is_decided_as_the_walk_decides() -> None:
    # The second chunk is exactly the payload the walk sums over the rest of interval 1 and intervals 2-4,
    # so TraceLink crosses the 10 s zero-throughput gap after them. Differences of prefix sums round this
    # total up here and would end the chunk inside interval 4: the core must detect the near-tie and replay
    # it with the walk's arithmetic.
    rates = [72000.0, 86714.28571428571, 138571.42857142858, 104142.85714285714]
    trace = Trace(np.array([0.0, 1.0, 2.0, 3.0, 4.0, 14.0, 15.0]), np.array([0.0, *rates, 0.0, 1e6]), name="tie")
    first_bits = 38512.79950840835
    config = SimConfig(payload_efficiency=1.0, link_rtt_s=0.0, first_chunk_quality_idx=None)
    probe = Session(trace, Video(np.array([1.0]), 1.0, np.full((1, 1), first_bits)), config)
    probe.step(0)
    sent = rates[0] * (1.0 - probe.link.clock_s) * 1.0
    for k in (1, 2, 3):
        sent += rates[k] * 1.0 * 1.0
    cum = np.cumsum([0.0, *rates])
    assert (sent - rates[0] * (1.0 - probe.link.clock_s)) + cum[1] < cum[4]  # prefix sums say "inside interval 4"
    video = Video(np.array([1.0]), 1.0, np.array([[first_bits], [sent]]))
    ref = Session(trace, video, config)
    want = [ref.step(0), ref.step(0)]
    assert want[1].download_time_s > 10.0  # the gap is crossed
    for outcomes in _both_fast_cores(trace, video, config):
        for mine, ref_outcome in zip(outcomes, want):
            _assert_outcomes_close(mine, ref_outcome, "tie")


@EQUIVALENCE
@given(trace_lists(), videos(), sim_configs(), st.data())
def test_a_scaled_batched_session_plays_the_scaled_trace(traces: list[Trace], video: Video, config: SimConfig,
                                                         data: st.DataObject) -> None:
    # The batched core scales throughput by shrinking the chunk on the link; SimPy plays Trace.scaled.
    n = data.draw(st.integers(1, 3), label="sessions")
    trace_idx = [data.draw(st.integers(0, len(traces) - 1)) for _ in range(n)]
    start_idx = [data.draw(st.integers(1, traces[m].times_s.size - 1)) for m in trace_idx]
    scales = [data.draw(st.sampled_from([0.5, 2.0, 0.1]) | st.floats(0.05, 50.0)) for _ in range(n)]
    seeds = np.random.SeedSequence(data.draw(st.integers(0, 2**32), label="seed")).spawn(n)
    core = BatchedSessions(traces, video, config, n)
    core.reset(trace_idx, start_idx, rngs=[np.random.default_rng(s) for s in seeds], throughput_scale=scales)
    ref = [Session(traces[m].scaled(f), video, config, start_idx=j, rng=np.random.default_rng(s))
           for m, j, f, s in zip(trace_idx, start_idx, scales, seeds)]
    fast = [FastSession(traces[m], video, config, start_idx=j, rng=np.random.default_rng(s), throughput_scale=f)
            for m, j, f, s in zip(trace_idx, start_idx, scales, seeds)]
    for c in range(core.n_chunks):
        q = np.full(n, (c * 5 + 1) % video.n_levels) if config.first_chunk_quality_idx is None or c else \
            np.full(n, config.first_chunk_quality_idx)
        try:
            outcomes = [session.step(int(q[i])) for i, session in enumerate(ref)]
        except SimulationInvariantError:  # a scaled trace too slow for the video: the core refuses too
            with pytest.raises(SimulationInvariantError):
                core.step(q)
            return
        batch = core.step(q)
        for i in range(n):
            _assert_outcomes_close(batch.outcome(i), outcomes[i], f"session {i} chunk {c} scale {scales[i]}")
            assert fast[i].step(int(q[i])) == batch.outcome(i)  # the scalar twin: bit for bit
