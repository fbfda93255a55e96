"""The training environments of :mod:`abr.training.run`: ``AbrEnv`` instances in training mode, vectorised for SB3.

Domain randomisation:

* trace choice and start offset: ``AbrEnv`` in training mode draws both per episode;
* download-time noise U(``train_noise_low``, ``train_noise_high``): ``EnvConfig``;
* throughput scaling: the episode's whole trace is multiplied by a factor drawn log-uniformly from
  [``throughput_scale_low``, ``throughput_scale_high``] (``EnvConfig``'s fields of the same names; both cores
  draw it the same way, so the SimPy and the batched core train on the same episodes).

:func:`make_training_vec_env` is the one place that builds the vector environment, on either core of
:data:`ENV_CORES`: SB3's ``DummyVecEnv`` over SimPy ``AbrEnv`` instances, or the batched fast core.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym

from simulator.config import SimConfig
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import ConfigError, MissingExtraError
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

#: The session cores the training vector environment can run on (``TrainConfig.env_core``).
ENV_CORES: tuple[str, ...] = ("simpy", "fast")


@dataclass(frozen=True, slots=True)
class TrainEnvSpec:
    """Everything a training environment is built from.

    Args:
        traces: the training traces (at least one).
        video: the video of every episode.
        sim_config: the link and player model (its noise is replaced by the training noise of ``env_config``).
        qoe: the reward model (per-chunk QoE).
        env_config: training mode, download-time noise and history length (``training`` must be true).
        throughput_scale_low: lowest throughput scale factor (> 0).
        throughput_scale_high: highest throughput scale factor (>= low); 1/1 disables scaling.
        reward_scale: factor on the reward the learner sees (the ``Monitor`` logs the unscaled QoE).
        env_core: ``"simpy"`` (SB3 ``DummyVecEnv`` of ``AbrEnv``) or ``"fast"`` (the batched numpy core,
            ``simulator.sb3_vec_env``).
    """

    traces: tuple[Trace, ...]
    video: Video
    sim_config: SimConfig
    qoe: QoEWeights
    env_config: EnvConfig
    throughput_scale_low: float = 1.0
    throughput_scale_high: float = 1.0
    reward_scale: float = 1.0
    env_core: str = "simpy"

    def __post_init__(self) -> None:
        if not self.traces:
            raise ConfigError("traces is empty: give at least one training trace")
        if not self.env_config.training:
            raise ConfigError("env_config.training=False: training environments run in training mode")
        low, high = self.throughput_scale_low, self.throughput_scale_high
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ConfigError(f"throughput_scale_low={low}, throughput_scale_high={high}: need 0 < low <= high")
        if not (math.isfinite(self.reward_scale) and self.reward_scale > 0):
            raise ConfigError(f"reward_scale={self.reward_scale} must be > 0")
        if self.env_core not in ENV_CORES:
            raise ConfigError(f"env_core={self.env_core!r} is not one of {', '.join(ENV_CORES)}")

    @property
    def is_scaled(self) -> bool:
        return self.throughput_scale_low != 1.0 or self.throughput_scale_high != 1.0

    @property
    def episode_config(self) -> EnvConfig:
        """The environments' config: ``env_config`` with this spec's throughput scaling."""
        return dataclasses.replace(self.env_config, throughput_scale_low=self.throughput_scale_low,
                                   throughput_scale_high=self.throughput_scale_high)


def make_training_env(spec: TrainEnvSpec) -> gym.Env[Any, Any]:
    """One training environment: ``AbrEnv`` in training mode, with the spec's throughput scaling.

    >>> from traces.synthetic import generate_trace_set
    >>> spec = TrainEnvSpec(tuple(generate_trace_set(0, 2)), AbrEnv().video, SimConfig(), QoEWeights(),
    ...                     EnvConfig())
    >>> make_training_env(spec).observation_space.shape
    (6, 8)
    """
    return AbrEnv(spec.traces, spec.video, spec.sim_config, spec.qoe, spec.episode_config)


def make_training_vec_env(spec: TrainEnvSpec, n_envs: int, seed: int) -> Any:
    """The SB3 vector environment of a training run: ``n_envs`` monitored training environments.

    With ``env_core="simpy"`` (default) this is SB3's ``DummyVecEnv`` over SimPy ``AbrEnv`` instances, and
    environment ``i`` is seeded ``seed + i`` at its first reset (SB3's convention; a model built with
    ``seed=`` re-seeds the environment the same way). With ``env_core="fast"`` it is the batched numpy core
    (``simulator.sb3_vec_env.AbrSb3VecEnv``), seeded with ``child_seeds(seed, n_envs)``.

    Args:
        spec: what every environment is built from.
        n_envs: number of environments (>= 1).
        seed: non-negative seed.

    Returns:
        A ``stable_baselines3.common.vec_env.VecEnv``.

    >>> from traces.synthetic import generate_trace_set
    >>> spec = TrainEnvSpec(tuple(generate_trace_set(0, 2)), AbrEnv().video, SimConfig(), QoEWeights(),
    ...                     EnvConfig())
    >>> make_training_vec_env(spec, 2, seed=0).reset().shape
    (2, 6, 8)
    """
    if n_envs < 1:
        raise ConfigError(f"n_envs={n_envs} must be >= 1")
    if seed < 0:
        raise ConfigError(f"seed={seed} must be >= 0")
    try:
        from stable_baselines3.common.monitor import Monitor
        from stable_baselines3.common.vec_env import DummyVecEnv
    except ImportError as exc:
        raise MissingExtraError("stable-baselines3", "rl") from exc

    def factory() -> Callable[[], gym.Env[Any, Any]]:
        def make() -> gym.Env[Any, Any]:
            env: gym.Env[Any, Any] = Monitor(make_training_env(spec))
            if spec.reward_scale != 1.0:
                env = gym.wrappers.TransformReward(env, lambda r: spec.reward_scale * float(r))
            return env

        return make

    if spec.env_core == "fast":
        return _fast_vec_env(spec, n_envs, seed)
    vec_env = DummyVecEnv([factory() for _ in range(n_envs)])
    vec_env.seed(seed)
    return vec_env


def _fast_vec_env(spec: TrainEnvSpec, n_envs: int, seed: int) -> Any:
    """The batched core's SB3 adapter, monitored, with the reward scaled (seeds: ``child_seeds``)."""
    from stable_baselines3.common.vec_env import VecEnvWrapper, VecMonitor

    from simulator.sb3_vec_env import AbrSb3VecEnv

    class _ScaleReward(VecEnvWrapper):  # type: ignore[misc]
        def reset(self) -> Any:
            return self.venv.reset()

        def step_wait(self) -> Any:
            obs, rewards, dones, infos = self.venv.step_wait()
            return obs, rewards * spec.reward_scale, dones, infos

    core = AbrSb3VecEnv(n_envs, traces=list(spec.traces), video=spec.video, sim_config=spec.sim_config,
                        qoe=spec.qoe, config=spec.episode_config)
    vec_env: Any = VecMonitor(core)
    if spec.reward_scale != 1.0:
        vec_env = _ScaleReward(vec_env)
    vec_env.seed(seed)
    return vec_env

