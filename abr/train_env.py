"""The training environments of :mod:`abr.train`: ``AbrEnv`` instances in training mode, vectorised for SB3.

Domain randomisation:

* trace choice and start offset: ``AbrEnv`` in training mode draws both per episode;
* download-time noise U(``train_noise_low``, ``train_noise_high``): ``EnvConfig``;
* throughput scaling: :class:`RandomThroughputScale` multiplies the episode's whole trace by a factor drawn
  log-uniformly from [``throughput_scale_low``, ``throughput_scale_high``].

:func:`make_training_vec_env` is the one place that builds the vector environment, so the engine behind it
(today SB3's ``DummyVecEnv`` over the SimPy ``AbrEnv``) can be swapped for a batched core in one change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from simulator.config import SimConfig
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import ConfigError, MissingExtraError
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

#: Engines behind the training vector environment.
ENV_CORES: tuple[str, ...] = ("simpy", "fast")
#: Stream of the throughput-scale generator, apart from the environment's own (``SeedSequence`` spawn key).
_SCALE_SPAWN_KEY = 7


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
            ``simulator.sb3_vec_env``; no throughput scaling).
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
        if self.env_core == "fast" and self.is_scaled:
            raise ConfigError("env_core='fast' does not scale throughput: use env_core='simpy' or scale 1/1")

    @property
    def is_scaled(self) -> bool:
        return self.throughput_scale_low != 1.0 or self.throughput_scale_high != 1.0


class RandomThroughputScale(gym.Wrapper[Any, Any, Any, Any]):
    """Draw the episode's trace and a throughput scale factor, and play the scaled trace.

    The factor is log-uniform in ``[low, high]``; both draws come from a generator seeded by ``reset(seed=...)``
    (``SeedSequence(seed, spawn_key=(7,))``, apart from the environment's generator). The reset ``info`` gains
    ``throughput_scale``. The wrapped ``AbrEnv`` must be in training mode (it draws the start offset).

    Args:
        env: an ``AbrEnv`` in training mode.
        low: lowest scale factor (> 0).
        high: highest scale factor (>= low).

    >>> from traces.synthetic import generate_trace_set
    >>> env = RandomThroughputScale(AbrEnv(generate_trace_set(0, 2)), 0.5, 2.0)
    >>> _, info = env.reset(seed=1)
    >>> 0.5 <= info["throughput_scale"] <= 2.0
    True
    """

    def __init__(self, env: AbrEnv, low: float, high: float) -> None:
        super().__init__(env)
        if not 0 < low <= high:
            raise ConfigError(f"throughput scale low={low}, high={high}: need 0 < low <= high")
        self._base_traces = list(env.traces)
        self._log_low, self._log_high = math.log(low), math.log(high)
        self._scale_rng = np.random.default_rng(np.random.SeedSequence(0, spawn_key=(_SCALE_SPAWN_KEY,)))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        if seed is not None:
            self._scale_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(_SCALE_SPAWN_KEY,)))
        options = dict(options or {})
        trace_idx = options.pop("trace_idx", None)
        if trace_idx is None:
            trace_idx = int(self._scale_rng.integers(len(self._base_traces)))
        scale = math.exp(float(self._scale_rng.uniform(self._log_low, self._log_high)))
        inner = self.env.unwrapped
        assert isinstance(inner, AbrEnv)
        inner.traces = [self._base_traces[int(trace_idx)].scaled(scale)]  # the episode's only trace
        obs, info = self.env.reset(seed=seed, options={**options, "trace_idx": 0})
        info["trace_idx"] = int(trace_idx)
        info["throughput_scale"] = scale
        return obs, info


def make_training_env(spec: TrainEnvSpec) -> gym.Env[Any, Any]:
    """One training environment: ``AbrEnv`` (training mode), throughput scaling if enabled.

    >>> from traces.synthetic import generate_trace_set
    >>> spec = TrainEnvSpec(tuple(generate_trace_set(0, 2)), AbrEnv().video, SimConfig(), QoEWeights(),
    ...                     EnvConfig())
    >>> make_training_env(spec).observation_space.shape
    (6, 8)
    """
    env: gym.Env[Any, Any] = AbrEnv(spec.traces, spec.video, spec.sim_config, spec.qoe, spec.env_config)
    if spec.is_scaled:
        env = RandomThroughputScale(env, spec.throughput_scale_low, spec.throughput_scale_high)  # type: ignore[arg-type]
    return env


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
                        qoe=spec.qoe, config=spec.env_config)
    vec_env: Any = VecMonitor(core)
    if spec.reward_scale != 1.0:
        vec_env = _ScaleReward(vec_env)
    vec_env.seed(seed)
    return vec_env

