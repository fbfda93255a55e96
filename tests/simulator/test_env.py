"""The Gymnasium environment: API conformance, determinism, rewards and observations."""

from __future__ import annotations

import pickle

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import simulator  # noqa: F401  (registers the ids)
from simulator import QoEWeights, preset, session_metrics
from simulator.context import PlayerContext
from simulator.des import Session
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import ConfigError
from simulator.observation import encode_observation
from simulator.records import ChunkOutcome
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return generate_trace_set(3, 4)


def _rollout(env: gym.Env, seed: int, n_steps: int, action_seed: int = 0) -> list[tuple]:
    actions = np.random.default_rng(action_seed)
    obs, info = env.reset(seed=seed)
    out = [(obs.copy(), info["trace_idx"], info["start_idx"])]
    for _ in range(n_steps):
        obs, reward, terminated, truncated, info = env.step(int(actions.integers(env.action_space.n)))
        out.append((obs.copy(), reward, terminated, info.get("download_time_s")))
        if terminated:
            obs, info = env.reset()
            out.append((obs.copy(), info["trace_idx"], info["start_idx"]))
    return out


def _equal(a: list[tuple], b: list[tuple]) -> bool:
    return len(a) == len(b) and all(
        all(np.array_equal(x, y) if isinstance(x, np.ndarray) else x == y for x, y in zip(ra, rb))
        for ra, rb in zip(a, b)
    )


def test_passes_gymnasium_env_checker(traces: list[Trace]) -> None:
    check_env(AbrEnv(traces=traces), skip_render_check=True)
    check_env(AbrEnv(traces=traces, config=EnvConfig(training=False)), skip_render_check=True)


def test_registered_id_makes_the_env() -> None:
    env = gym.make("abr/Abr-v0", config=EnvConfig(training=False))
    obs, _ = env.reset(seed=0)
    assert isinstance(env.unwrapped, AbrEnv)
    assert obs.shape == (6, 8) and env.action_space.n == 6


@pytest.mark.parametrize("training", [True, False])
def test_same_seed_same_episodes(traces: list[Trace], training: bool) -> None:
    config = EnvConfig(training=training)
    a = _rollout(AbrEnv(traces=traces, config=config), seed=11, n_steps=120)
    b = _rollout(AbrEnv(traces=traces, config=config), seed=11, n_steps=120)
    c = _rollout(AbrEnv(traces=traces, config=config), seed=12, n_steps=120)
    assert _equal(a, b)
    if training:  # trace choice, start offset and noise all come from the seed
        assert not _equal(a, c)


@pytest.mark.parametrize("core", ["simpy", "fast"])
def test_pickle_round_trip_continues_identically(traces: list[Trace], core: str) -> None:
    env = AbrEnv(traces=traces, core=core)
    env.reset(seed=5)
    env.step(2)
    clone = pickle.loads(pickle.dumps(env))
    for action in (0, 5, 3, 1):
        a, b = env.step(action), clone.step(action)
        assert np.array_equal(a[0], b[0]) and a[1:4] == b[1:4]


def test_rewards_sum_to_session_qoe_and_episode_has_47_steps(traces: list[Trace]) -> None:
    env = AbrEnv(traces=traces, config=EnvConfig(training=False), qoe=QoEWeights(kind="log"))
    _, info = env.reset(seed=0)
    total, steps = info["first_chunk_qoe"], 0
    terminated = False
    while not terminated:
        _, reward, terminated, truncated, info = env.step(steps % 6)
        total += reward
        steps += 1
        r = info["rewards"]
        assert reward == pytest.approx(r["utility"] - r["rebuffer_penalty"] - r["smoothness_penalty"], abs=1e-12)
        assert not truncated
    assert steps == 47
    session = env.unwrapped._session if hasattr(env, "unwrapped") else None
    metrics = session_metrics(session.outcomes, env.video.bitrates_bps, env.qoe, chunk_duration_s=4.0)
    assert total == pytest.approx(metrics.qoe, rel=1e-12)
    with pytest.warns(UserWarning, match="after the episode terminated"):
        env.step(0)


def test_evaluation_mode_matches_a_plain_session(traces: list[Trace]) -> None:
    env = AbrEnv(traces=traces, config=EnvConfig(training=False))
    for expected_idx in (0, 1, 2, 3, 0):
        obs, info = env.reset()
        assert info["trace_idx"] == expected_idx and info["start_idx"] == 1
    session = Session(traces[1], env.video, preset("pensieve"))
    env.reset(options={"trace_idx": 1})
    session.step(1)
    for action in (4, 4, 0, 2):
        obs, _, _, _, info = env.step(action)
        outcome = session.step(action)
        assert info["download_time_s"] == outcome.download_time_s
        assert np.array_equal(obs, encode_observation(session.context()))


def test_observation_rows_hold_the_documented_quantities(step_trace: Trace) -> None:
    video = Video.cbr([1e6, 2e6, 4e6], chunk_duration_s=4.0, n_chunks=5)
    env = AbrEnv(traces=[step_trace], video=video, config=EnvConfig(training=False))
    env.reset()
    obs, _, _, _, info = env.step(2)
    first = env._session.outcomes[0]
    assert obs[0, -2:].tolist() == pytest.approx([2e6 / 4e6, 1.0])
    assert obs[1, -1] == pytest.approx(info["buffer_s"] / 10.0)
    assert obs[2, -2] == pytest.approx(first.throughput_bps / 8e6)
    assert obs[3, -1] == pytest.approx(info["download_time_s"] / 10.0)
    assert obs[4, :3].tolist() == pytest.approx([4e6 / 8e6, 8e6 / 8e6, 16e6 / 8e6])
    assert obs[5, -2:].tolist() == pytest.approx([4 / 5, 3 / 5])
    assert np.all(obs[:, :-2][[0, 1, 2, 3, 5]] == 0)


def test_bad_actions_and_options_are_rejected(traces: list[Trace]) -> None:
    env = AbrEnv(traces=traces)
    with pytest.raises(gym.error.ResetNeeded):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action=9 \(int\) is not in the action space Discrete\(6\): give an "
                                         r"integer quality index in \[0, 5\]"):
        env.step(9)
    with pytest.raises(ValueError, match="trace_idx"):
        env.reset(options={"trace_idx": 10})
    with pytest.raises(ValueError, match="traces is empty"):
        AbrEnv(traces=[])


def test_v2_rows_are_ladder_relative_and_bounded(step_trace: Trace) -> None:
    video = Video.cbr([1e6, 2e6, 4e6], chunk_duration_s=4.0, n_chunks=5)
    env = AbrEnv(traces=[step_trace], video=video, config=EnvConfig(training=False, observation="abr-6row-v2"))
    env.reset()
    obs, _, _, _, info = env.step(2)
    first = env._session.outcomes[0]
    assert obs[0, -2:].tolist() == pytest.approx([2e6 / 4e6, 1.0])
    assert obs[1, -1] == pytest.approx(info["buffer_s"] / 10.0)
    assert obs[2, -2] == pytest.approx((np.log2(first.throughput_bps / 4e6) + 6.0) / 10.0)
    assert obs[3, -1] == pytest.approx(info["download_time_s"] / 10.0)
    assert obs[4, :3].tolist() == pytest.approx([0.25, 0.5, 1.0])  # sizes / one top-bitrate chunk (16 Mbit)
    # The bounds: a link 1000x faster than the top bitrate reads like one 16x faster, 1/80 of it like 1/64,
    # and a 100 s download as 40 s.
    fast_and_slow = [ChunkOutcome(0, 2, 4e6, 16e6, 0.0, 0.004, 0.004, 4e9, 0.0, 0.0, 4.0, 0.0),
                     ChunkOutcome(1, 2, 4e6, 16e6, 0.0, 100.0, 100.0, 5e4, 96.0, 0.0, 4.0, 0.0)]
    v2 = encode_observation(PlayerContext(video, tuple(fast_and_slow), 4.0), encoder="abr-6row-v2")
    assert v2[2, -2:].tolist() == [1.0, 0.0] and v2[3, -2:].tolist() == pytest.approx([0.0004, 4.0])
    v1 = encode_observation(PlayerContext(video, tuple(fast_and_slow), 4.0))
    assert v1[2, -2] == pytest.approx(500.0)  # Pensieve's scale: far outside any trained range
    with pytest.raises(ConfigError, match="observation encoder 'v9' is not one of"):
        EnvConfig(observation="v9")


@pytest.mark.parametrize("action", [2.5, 5.9, np.float32(1.7), "3", np.array([2]), None, float("nan"), 6, -1,
                                    np.array(1.0)])
def test_an_action_outside_the_space_is_refused_never_cast(traces: list[Trace], action: object) -> None:
    env = AbrEnv(traces=traces, config=EnvConfig(training=False))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"is not in the action space Discrete\(6\): give an integer quality index"):
        env.step(action)
    assert env._session is not None and len(env._session.outcomes) == 1  # nothing was played (the forced chunk only)


@pytest.mark.parametrize("action", [3, np.int64(3), np.int32(3), np.array(3), np.uint8(3)])
def test_integer_actions_and_0d_integer_arrays_play(traces: list[Trace], action: object) -> None:
    env = AbrEnv(traces=traces, config=EnvConfig(training=False))
    env.reset(seed=0)
    _, _, _, _, info = env.step(action)
    assert info["quality_idx"] == 3


def test_arguments_of_the_wrong_type_are_refused_by_name() -> None:
    with pytest.raises(ConfigError, match=r"config='x' \(str\) must be a simulator.env.EnvConfig"):
        gym.make("abr/Abr-v0", config="x")
    with pytest.raises(ConfigError, match=r"qoe=3 \(int\) must be a simulator.qoe.QoEWeights"):
        AbrEnv(qoe=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"config=\{'training': False\} \(dict\) must be a simulator.env.EnvConfig"):
        gym.make_vec("abr/Abr-v0", num_envs=2, config={"training": False})
