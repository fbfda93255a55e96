"""A stable-baselines3 ``VecEnv`` over the batched core, so PPO and A2C train on it directly.

Importing this module needs the ``rl`` extra (stable-baselines3); without it the import raises
:class:`~simulator.errors.MissingExtraError`. ``simulator`` itself never imports it.

SB3 expects same-step autoreset: when a sub-environment's episode ends, ``step_wait`` returns the first
observation of its next episode and puts the last one in ``infos[i]["terminal_observation"]``. Seeding
follows the project's rule rather than SB3's ``seed + i``: ``seed(s)`` makes the next ``reset`` seed
sub-environment ``i`` with ``simulator.vector_env.child_seeds(s, num_envs)[i]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from simulator.errors import MissingExtraError
from simulator.vector_env import AbrVectorEnv, child_seeds

#: The ``rl`` extra's packages this module needs, by import name: only their absence means "install the extra".
_RL_EXTRA_PACKAGES = {"stable_baselines3": "stable-baselines3", "torch": "torch"}

try:
    from stable_baselines3.common.vec_env import VecEnv
    from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn
except ModuleNotFoundError as error:  # exercised by tests that hide the packages
    missing = (error.name or "").partition(".")[0]
    if missing not in _RL_EXTRA_PACKAGES:  # a broken install (a dependency of theirs is missing): say so as it is
        raise
    raise MissingExtraError(_RL_EXTRA_PACKAGES[missing], "rl") from error


class AbrSb3VecEnv(VecEnv):  # type: ignore[misc]
    """SB3 ``VecEnv`` view of an :class:`~simulator.vector_env.AbrVectorEnv`.

    Args:
        num_envs: number of sub-environments (ignored when ``venv`` is given).
        venv: an existing vector env to wrap; otherwise one is built from ``num_envs`` and ``kwargs``.
        **kwargs: ``AbrVectorEnv``'s arguments (``traces``, ``video``, ``sim_config``, ``qoe``, ``config``).

    Attribute access (``get_attr``, ``set_attr``, ``env_method``) goes to the one shared vector env; the
    answer is repeated for every index asked for.

    >>> from simulator.env import EnvConfig
    >>> venv = AbrSb3VecEnv(2, config=EnvConfig(training=False))
    >>> _ = venv.seed(0)
    >>> venv.reset().shape
    (2, 6, 8)
    """

    def __init__(self, num_envs: int = 1, *, venv: AbrVectorEnv | None = None, **kwargs: Any) -> None:
        self.venv = venv if venv is not None else AbrVectorEnv(num_envs, **kwargs)
        self._seed: int | None = None
        self._actions: np.ndarray | None = None
        super().__init__(self.venv.num_envs, self.venv.single_observation_space, self.venv.single_action_space)

    def seed(self, seed: int | None = None) -> Sequence[int | None]:
        """Seed the next ``reset``; returns each sub-environment's seed (see the module docstring)."""
        self._seed = seed
        return [None] * self.num_envs if seed is None else child_seeds(seed, self.num_envs)

    def reset(self) -> VecEnvObs:
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed = None
        self._reset_seeds()
        self._reset_options()
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = np.asarray(actions).reshape(self.num_envs)

    def step_wait(self) -> VecEnvStepReturn:
        if self._actions is None:
            raise RuntimeError("step_wait() called without step_async()")
        obs, rewards, terminated, truncated, _ = self.venv.step(self._actions)
        self._actions = None
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if dones.any():
            final_obs = obs
            obs, reset_infos = self.venv.reset_done()
            for i in np.flatnonzero(dones).tolist():
                infos[i] = {"terminal_observation": final_obs[i], "TimeLimit.truncated": bool(truncated[i])}
                self.reset_infos[i] = reset_infos[i]
        return obs, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        self.venv.close()

    def _indices(self, indices: VecEnvIndices) -> list[int]:
        return list(self._get_indices(indices))

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self.venv, attr_name)
        return [value for _ in self._indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        setattr(self.venv, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        result = getattr(self.venv, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._indices(indices)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._indices(indices)]

    def get_images(self) -> Sequence[np.ndarray | None]:
        return [None for _ in range(self.num_envs)]
