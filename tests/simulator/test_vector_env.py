"""The Gymnasium vector env: registration, spaces, next-step autoreset, seeding, infos and bad input."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import simulator  # noqa: F401  (registers the ids)
from simulator import ConfigError
from simulator.env import AbrEnv, EnvConfig
from simulator.vector_env import AbrVectorEnv, child_seeds
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video


@pytest.fixture(scope="module")
def traces() -> list[Trace]:
    return generate_trace_set(3, 4)


SHORT = Video.cbr([300e3, 750e3, 1200e3], chunk_duration_s=4.0, n_chunks=3, name="short")


def test_make_vec_builds_the_batched_env_and_sync_mode_still_works(traces: list[Trace]) -> None:
    envs = gym.make_vec("abr/Abr-v0", num_envs=5, traces=traces)
    assert isinstance(envs, AbrVectorEnv) and envs.num_envs == 5
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.single_observation_space == AbrEnv(traces=traces).observation_space
    assert envs.observation_space.shape == (5, 6, 8) and envs.action_space.nvec.tolist() == [6] * 5
    sync = gym.make_vec("abr/Abr-v0", num_envs=2, vectorization_mode="sync", traces=traces)
    assert isinstance(sync, gym.vector.SyncVectorEnv)


def test_next_step_autoreset(traces: list[Trace]) -> None:
    envs = AbrVectorEnv(2, traces=traces, video=SHORT, config=EnvConfig(training=False))
    obs, info = envs.reset(seed=0)
    assert info["trace_idx"].tolist() == [0, 0] and info["_first_chunk_qoe"].all()
    for _ in range(2):  # chunks 2 and 3 (the player downloads chunk 1 at reset)
        obs, rewards, terminated, truncated, info = envs.step(np.array([2, 0]))
    assert terminated.all() and not truncated.any() and info["chunk_idx"].tolist() == [2, 2]
    assert np.all(obs[:, 4] == 0) and np.all(obs[:, 5, -1] == 0)  # nothing left to download
    obs, rewards, terminated, truncated, info = envs.step(np.array([1, 1]))  # ignored: both reset
    assert rewards.tolist() == [0.0, 0.0] and not terminated.any()
    assert info["trace_idx"].tolist() == [1, 1] and "chunk_idx" not in info  # the walk goes on
    single = AbrEnv(traces=traces, video=SHORT, config=EnvConfig(training=False))
    single.reset(options={"trace_idx": 1})
    assert np.array_equal(obs[0], single._observation()) and np.array_equal(obs[1], obs[0])
    obs, rewards, terminated, _, info = envs.step(np.array([1, 1]))
    assert info["chunk_idx"].tolist() == [1, 1] and info["_chunk_idx"].all()
    assert rewards.tolist() == pytest.approx(
        (info["rewards"]["utility"] - info["rewards"]["rebuffer_penalty"] - info["rewards"]["smoothness_penalty"])
        .tolist(), abs=1e-12)


def test_partial_resets_keep_the_other_envs_running(traces: list[Trace]) -> None:
    envs = AbrVectorEnv(3, traces=traces, config=EnvConfig(training=True))
    singles = [AbrEnv(traces=traces, config=EnvConfig(training=True), core="fast") for _ in range(3)]
    envs.reset(seed=4)
    for env, s in zip(singles, child_seeds(4, 3)):
        env.reset(seed=s)
    envs.step(np.array([1, 2, 3]))
    for env, a in zip(singles, (1, 2, 3)):
        env.step(a)
    envs._needs_reset[1] = True  # as if env 1 had terminated (episodes of one video end together)
    obs, rewards, terminated, _, info = envs.step(np.array([4, 4, 4]))
    single_obs, single_info = singles[1].reset()
    assert np.array_equal(obs[1], single_obs) and rewards[1] == 0.0
    assert info["_trace_idx"].tolist() == [False, True, False] and info["trace_idx"][1] == single_info["trace_idx"]
    assert info["_chunk_idx"].tolist() == [True, False, True]
    for i in (0, 2):
        single_obs, reward, *_ = singles[i].step(4)
        assert np.array_equal(obs[i], single_obs) and rewards[i] == reward


def test_seeds_make_the_same_episodes_and_map_to_child_seeds(traces: list[Trace]) -> None:
    def rollout(seed: int | list[int]) -> list[np.ndarray]:
        envs = AbrVectorEnv(3, traces=traces, config=EnvConfig(training=True))
        out = [envs.reset(seed=seed)[0]]
        for t in range(60):
            obs, rewards, *_ = envs.step(np.array([t % 6, (t + 2) % 6, 5]))
            out += [obs, rewards]
        return out

    a, b, c = rollout(7), rollout(7), rollout(8)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert all(np.array_equal(x, y) for x, y in zip(a, rollout(child_seeds(7, 3))))
    with pytest.raises(ConfigError, match="seed=-1 must be an integer >= 0"):
        child_seeds(-1, 2)


def test_options_pick_traces_and_start_intervals_per_env(traces: list[Trace]) -> None:
    envs = AbrVectorEnv(3, traces=traces, config=EnvConfig(training=False))
    _, info = envs.reset(seed=0, options={"trace_idx": [3, 1, 2], "start_idx": 5})
    assert info["trace_idx"].tolist() == [3, 1, 2] and info["start_idx"].tolist() == [5, 5, 5]
    assert info["trace_name"].tolist() == [traces[i].name for i in (3, 1, 2)]
    single = AbrEnv(traces=traces, config=EnvConfig(training=False))
    _, single_info = single.reset(seed=0, options={"trace_idx": 1, "start_idx": 5})
    assert info["first_chunk"]["download_time_s"][1] == single_info["first_chunk"]["download_time_s"]
    with pytest.raises(ConfigError, match="options\\['trace_idx'\\]=4 must be in \\[0, 3\\]"):
        envs.reset(options={"trace_idx": 4})
    with pytest.raises(ConfigError, match="unknown reset options \\['trace'\\]"):
        envs.reset(options={"trace": 1})
    with pytest.raises(ConfigError, match="got 2 seeds for 3 sub-environments"):
        envs.reset(seed=[1, 2])


def test_bad_use_is_refused_with_clear_errors(traces: list[Trace]) -> None:
    envs = AbrVectorEnv(2, traces=traces)
    with pytest.raises(gym.error.ResetNeeded):
        envs.step(np.array([0, 0]))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match="expected 2 actions, one per sub-environment, got shape \\(3,\\)"):
        envs.step(np.array([0, 0, 0]))
    with pytest.raises(ValueError, match=r"action 6 of sub-environment 0 is not in Discrete\(6\) "
                                         r"\(quality indices 0 to 5\)"):
        envs.step(np.array([6, 0]))
    with pytest.raises(ConfigError, match="vectorization_mode='sync'"):
        AbrVectorEnv(2, traces=traces, core="simpy")
    with pytest.raises(ConfigError, match="traces is empty"):
        AbrVectorEnv(2, traces=[])


@pytest.mark.parametrize("actions", [np.array([0.0, 1.5]), np.array(["1", "2"]), np.array([2.0, 3.0])])
def test_non_integer_action_arrays_are_refused(traces: list[Trace], actions: np.ndarray) -> None:
    envs = AbrVectorEnv(2, traces=traces, config=EnvConfig(training=False))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"actions must be an integer array of quality indices"):
        envs.step(actions)
    with pytest.raises(ValueError, match=r"action 6 of sub-environment 1 is not in Discrete\(6\)"):
        envs.step(np.array([0, 6]))
    _, _, _, _, info = envs.step(np.array([1, 5], dtype=np.int32))  # any integer dtype plays, nothing was cast
    assert info["quality_idx"].tolist() == [1, 5] and info["chunk_idx"].tolist() == [1, 1]
