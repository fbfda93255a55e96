"""The stable-baselines3 VecEnv adapter: same-step autoreset, seeding, and PPO/A2C training on it."""

from __future__ import annotations

import importlib
import importlib.abc
import sys

import numpy as np
import pytest

from simulator.env import EnvConfig
from simulator.errors import MissingExtraError
from simulator.vector_env import child_seeds
from traces.synthetic import generate_trace_set
from traces.types import Video

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")
torch = require_module("torch", extra="rl")

from stable_baselines3 import A2C, PPO  # noqa: E402
from stable_baselines3.common.vec_env import VecEnv, VecMonitor  # noqa: E402

from simulator.sb3_vec_env import AbrSb3VecEnv  # noqa: E402

SHORT = Video.cbr([300e3, 750e3, 1200e3], chunk_duration_s=4.0, n_chunks=4, name="short")


@pytest.fixture(autouse=True)
def one_thread() -> None:
    torch.set_num_threads(1)


def test_reset_and_step_follow_the_vec_env_contract() -> None:
    venv = AbrSb3VecEnv(3, traces=generate_trace_set(0, 3), video=SHORT, config=EnvConfig(training=False))
    assert isinstance(venv, VecEnv) and venv.num_envs == 3
    assert venv.seed(0) == child_seeds(0, 3)
    obs = venv.reset()
    assert obs.shape == (3, 6, 8) and obs.dtype == np.float32 and venv.observation_space.contains(obs[0])
    returns = np.zeros(3)
    for step in range(3):  # chunks 2-4; the last one ends the episode
        obs, rewards, dones, infos = venv.step(np.array([step % 3, 2, 0]))
        returns += rewards
        assert rewards.shape == (3,) and dones.dtype == bool and len(infos) == 3
    assert dones.all()
    for i, info in enumerate(infos):
        final = info["terminal_observation"]
        assert final[5, -1] == 0.0 and np.all(final[4] == 0)  # the episode's last observation
        assert obs[i, 5, -1] == pytest.approx(3 / 4)  # the next episode, after its first chunk
        assert info["TimeLimit.truncated"] is False
    assert venv.reset_infos[0]["trace_idx"] == 1  # evaluation mode walks on to the next trace
    assert venv.get_attr("num_envs", [0, 2]) == [3, 3] and venv.env_is_wrapped(VecMonitor) == [False] * 3


def test_same_seed_same_rollout_and_vec_monitor_counts_episodes() -> None:
    def rollout(seed: int) -> tuple[list[np.ndarray], list[dict]]:
        venv = VecMonitor(AbrSb3VecEnv(2, traces=generate_trace_set(1, 3), video=SHORT))
        venv.seed(seed)
        out, episodes = [venv.reset()], []
        for t in range(7):
            obs, rewards, dones, infos = venv.step(np.array([t % 3, 1]))
            out += [obs, rewards]
            episodes += [info["episode"] for info in infos if "episode" in info]
        return out, episodes

    (a, episodes), (b, _), (c, _) = rollout(3), rollout(3), rollout(4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))
    assert len(episodes) == 4 and all(e["l"] == 3 for e in episodes)  # two episodes of 3 steps in each env
    assert episodes[0]["r"] == pytest.approx(float(a[2][0] + a[4][0] + a[6][0]), abs=1e-5)


@pytest.mark.parametrize("algorithm", [PPO, A2C])
def test_ppo_and_a2c_train_on_it(algorithm: type) -> None:
    venv = AbrSb3VecEnv(4, traces=generate_trace_set(0, 4))
    model = algorithm("MlpPolicy", venv, n_steps=64 if algorithm is PPO else 8, seed=0)
    model.learn(256)
    assert model.num_timesteps == 256
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (4,) and venv.action_space.contains(int(actions[0]))


def test_missing_stable_baselines3_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "stable_baselines3", None)
    monkeypatch.setitem(sys.modules, "stable_baselines3.common.vec_env", None)
    monkeypatch.delitem(sys.modules, "simulator.sb3_vec_env")
    with pytest.raises(MissingExtraError, match='stable-baselines3 is required.*pip install "abr-lab\\[rl\\]"'):
        importlib.import_module("simulator.sb3_vec_env")
    monkeypatch.undo()
    assert importlib.import_module("simulator.sb3_vec_env").AbrSb3VecEnv is AbrSb3VecEnv


class _FailingImport(importlib.abc.MetaPathFinder):
    """Makes importing ``stable_baselines3.common.vec_env`` raise ``error``, as a broken install would."""

    def __init__(self, error: ImportError) -> None:
        self.error = error

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "stable_baselines3.common.vec_env":
            raise self.error
        return None


def _import_adapter_with(monkeypatch: pytest.MonkeyPatch, error: ImportError) -> None:
    for name in [m for m in sys.modules if m.startswith("stable_baselines3.common.vec_env")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.delitem(sys.modules, "simulator.sb3_vec_env")
    monkeypatch.setattr(sys, "meta_path", [_FailingImport(error), *sys.meta_path])
    importlib.import_module("simulator.sb3_vec_env")


def test_missing_torch_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MissingExtraError, match='torch is required.*pip install "abr-lab\\[rl\\]"'):
        _import_adapter_with(monkeypatch, ModuleNotFoundError("No module named 'torch'", name="torch"))


@pytest.mark.parametrize("error", [
    ModuleNotFoundError("No module named 'cloudpickle'", name="cloudpickle"),  # a dependency of SB3's is missing
    ImportError("cannot import name 'VecEnv'", name="stable_baselines3.common.vec_env"),  # an incompatible SB3
], ids=["missing-dependency", "missing-name"])
def test_other_import_errors_are_not_reported_as_a_missing_extra(
        monkeypatch: pytest.MonkeyPatch, error: ImportError) -> None:
    with pytest.raises(ImportError) as raised:
        _import_adapter_with(monkeypatch, error)
    assert raised.value is error and not isinstance(raised.value, MissingExtraError)
