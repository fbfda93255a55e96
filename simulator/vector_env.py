"""A Gymnasium ``VectorEnv`` of N ABR sessions on the batched core (:mod:`simulator.fast`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

from simulator.config import SimConfig, preset
from simulator.env import (
    OBS_HIGH,
    EnvConfig,
    _default_traces,
    check_env_arguments,
    core_keyword,
    default_video,
    episode_config,
)
from simulator.errors import ConfigError
from simulator.fast import BatchedSessions, ChunkBatch
from simulator.observation import BatchedObservations, observation_shape
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from traces.types import Trace, Video

ObsArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]
REWARD_KEYS = ("utility", "rebuffer_penalty", "smoothness_penalty")


def child_seeds(seed: int, n: int) -> list[int]:
    """The seed of each of ``n`` sub-environments: one integer from each child of ``SeedSequence(seed)``.

    Sub-environment ``i`` of ``AbrVectorEnv(n).reset(seed=seed)`` plays exactly the episodes of an
    ``AbrEnv`` reset with ``seed=child_seeds(seed, n)[i]``.

    >>> child_seeds(0, 2) == child_seeds(0, 3)[:2]
    True
    """
    if not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ConfigError(f"seed={seed!r} must be an integer >= 0")
    return [int(child.generate_state(1, np.uint64)[0]) for child in np.random.SeedSequence(int(seed)).spawn(n)]


class AbrVectorEnv(gym.vector.VectorEnv[ObsArray, IntArray, Any]):
    """
    ## Description

    ``num_envs`` independent copies of :class:`simulator.env.AbrEnv` stepped in lock-step on the batched
    core. Sub-environment ``i`` is the same environment as an ``AbrEnv`` with the same arguments (and
    ``core="fast"``: bit for bit; with the SimPy core within ``simulator.fast.EQUIVALENCE_RTOL``),
    seeded with ``child_seeds(seed, num_envs)[i]``.

    ## Action Space

    ``MultiDiscrete([n_levels] * num_envs)``; ``single_action_space`` is ``Discrete(n_levels)``.

    ## Observation Space

    ``(num_envs, 6, max(history_len, n_levels))`` float32, each row as in ``AbrEnv`` (and
    ``simulator.observation``); ``single_observation_space`` is ``AbrEnv``'s.

    ## Rewards

    Per sub-environment, the QoE of the chunk just downloaded (as in ``AbrEnv``); ``info["rewards"]``
    holds the three terms.

    ## Starting State

    As in ``AbrEnv``, per sub-environment: evaluation mode walks the traces in order (every
    sub-environment from the first), training mode draws the trace and start interval from the
    sub-environment's own generator. ``reset(options={"trace_idx": ..., "start_idx": ...})`` takes an int
    or one value per sub-environment.

    ## Episode End

    * Termination: the video is finished (the last chunk is downloaded). A one-chunk video whose chunk the
      player downloads during reset terminates at the first step, with reward 0 (as ``AbrEnv``).
    * Truncation: never (traces loop when exhausted).

    Autoreset: Gymnasium's default next-step mode (``metadata["autoreset_mode"]``): the ``step`` after a
    sub-environment terminates resets it and ignores its action; it returns the first observation of the
    new episode, reward 0, ``terminated`` and ``truncated`` false and the reset keys in ``info``.

    ## Arguments

    ``num_envs``, then ``AbrEnv``'s arguments (``traces``, ``video``, ``sim_config``, ``qoe``, ``config``).
    ``core`` is accepted for ``gymnasium.make_vec`` and must be ``"fast"`` (``engine``, its deprecated old
    name, still works with a ``DeprecationWarning``).

    ## Info

    A dict of arrays with ``_key`` masks (Gymnasium's vector convention). After a step: the chunk
    outcome's fields (``download_time_s``, ``buffer_s``, ...) and ``rewards``; after a reset: ``trace_idx``,
    ``start_idx``, ``trace_name`` and, when the player picks the first chunk, ``first_chunk`` (the
    outcome's fields) and ``first_chunk_qoe``.

    ## Examples

    >>> import gymnasium as gym
    >>> import simulator
    >>> from simulator.env import EnvConfig
    >>> envs = gym.make_vec("abr/Abr-v0", num_envs=3, config=EnvConfig(training=False))
    >>> obs, info = envs.reset(seed=0)
    >>> obs.shape
    (3, 6, 8)
    >>> obs, rewards, terminated, truncated, info = envs.step(np.array([0, 3, 5]))
    >>> info["chunk_idx"].tolist(), terminated.tolist()
    ([1, 1, 1], [False, False, False])
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.NEXT_STEP}

    def __init__(self, num_envs: int = 1, traces: Sequence[Trace] | None = None, video: Video | None = None,
                 sim_config: SimConfig | str = "pensieve", qoe: QoEWeights | None = None,
                 config: EnvConfig | None = None, render_mode: str | None = None, core: str = "fast",
                 engine: str | None = None) -> None:
        core = core_keyword(core, engine, default="fast", owner="AbrVectorEnv")
        if core != "fast":
            raise ConfigError(f"core={core!r}: AbrVectorEnv runs on the batched core (core='fast'); for "
                              "SimPy sub-environments use gymnasium.make_vec(..., vectorization_mode='sync')")
        if render_mode is not None:
            raise ConfigError(f"render_mode={render_mode!r}: AbrVectorEnv does not render")
        self.traces = list(traces) if traces is not None else _default_traces()
        if not self.traces:
            raise ConfigError("traces is empty: give at least one Trace")
        self.sim_config = preset(sim_config) if isinstance(sim_config, str) else sim_config
        check_env_arguments(self.sim_config, qoe, config, video)
        self.qoe = qoe if qoe is not None else QoEWeights()
        self.config = config if config is not None else EnvConfig()
        self.core = BatchedSessions(self.traces, video if video is not None else default_video(),
                                    episode_config(self.sim_config, self.config), num_envs, qoe=self.qoe)
        self.video = self.core.video
        self.num_envs = self.core.num_envs
        n_levels = self.video.n_levels
        self.single_action_space = gym.spaces.Discrete(n_levels)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = gym.spaces.Box(
            0.0, OBS_HIGH, shape=observation_shape(n_levels, self.config.history_len), dtype=np.float32)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.render_mode = None
        self._obs = BatchedObservations(self.video, self.num_envs, self.config.history_len,
                                        self.config.observation)
        self._trace_lengths = np.array([t.times_s.size for t in self.traces], dtype=np.int64)
        self.np_randoms: list[np.random.Generator] = []
        self._scale_rngs: list[np.random.Generator] = []
        self._next_trace_idx = np.zeros(self.num_envs, dtype=np.int64)
        self._needs_reset = np.zeros(self.num_envs, dtype=bool)
        self._is_started = False

    def reset(self, *, seed: int | Sequence[int] | None = None,
              options: dict[str, Any] | None = None) -> tuple[ObsArray, dict[str, Any]]:
        """Reset every sub-environment.

        Args:
            seed: an int seeds sub-environment ``i`` with ``child_seeds(seed, num_envs)[i]``; a sequence gives
                each sub-environment its seed. As in ``AbrEnv``, a seed restarts the walk over the traces.
            options: ``{"trace_idx": ..., "start_idx": ...}``, each an int or one value per sub-environment.
        """
        if seed is not None or not self.np_randoms:
            seeds: Sequence[int | None]
            if seed is None:
                seeds = [None] * self.num_envs
            elif isinstance(seed, (int, np.integer)):
                super().reset(seed=int(seed))
                seeds = child_seeds(int(seed), self.num_envs)
            else:
                seeds = list(seed)
                if len(seeds) != self.num_envs:
                    raise ConfigError(f"got {len(seeds)} seeds for {self.num_envs} sub-environments")
            self.core.sync_rngs()  # the old generators are dropped; leave them consistent anyway
            self.np_randoms = [seeding.np_random(s)[0] for s in seeds]
            self._scale_rngs = [self.config.scale_rng(s) for s in seeds]
            if seed is not None:
                self._next_trace_idx[:] = 0
        options = options or {}
        unknown = set(options) - {"trace_idx", "start_idx"}
        if unknown:
            raise ConfigError(f"unknown reset options {sorted(unknown)}; allowed: trace_idx, start_idx")
        info = self._reset_envs(np.arange(self.num_envs), options.get("trace_idx"), options.get("start_idx"))
        self._is_started = True
        return self._obs.observation(self.core.state.chunk_idx), info

    def _reset_envs(self, idx: IntArray, trace_opt: Any = None, start_opt: Any = None) -> dict[str, Any]:
        """Start new episodes in sub-environments ``idx``; returns their reset info (full-size arrays)."""
        n, training = idx.size, self.config.training
        self.core.sync_rngs(idx)
        gens = [self.np_randoms[i] for i in idx.tolist()]
        scale = None
        if self.config.is_scaled:  # as AbrEnv: trace and factor from each sub-environment's scale generator
            drawn = [self.config.draw_scale(self._scale_rngs[i], len(self.traces)) for i in idx.tolist()]
            scale = np.array([f for _, f in drawn])
            if trace_opt is None:
                trace_opt = np.array([m for m, _ in drawn], dtype=np.int64)
        if trace_opt is not None:
            trace_idx = np.broadcast_to(np.asarray(trace_opt, dtype=np.int64), (n,)).copy()
            bad = (trace_idx < 0) | (trace_idx >= len(self.traces))
            if np.any(bad):
                raise ConfigError(f"options['trace_idx']={int(trace_idx[np.argmax(bad)])} must be in "
                                  f"[0, {len(self.traces) - 1}]")
        elif training:
            trace_idx = np.array([int(g.integers(len(self.traces))) for g in gens], dtype=np.int64)
        else:
            trace_idx = self._next_trace_idx[idx].copy()
            self._next_trace_idx[idx] = (trace_idx + 1) % len(self.traces)
        if start_opt is not None:
            start_idx = np.broadcast_to(np.asarray(start_opt, dtype=np.int64), (n,)).copy()
        elif training:
            lengths = self._trace_lengths[trace_idx].tolist()
            start_idx = np.array([int(g.integers(1, n_samples)) for g, n_samples in zip(gens, lengths)],
                                 dtype=np.int64)
        else:
            start_idx = np.ones(n, dtype=np.int64)
        everyone = n == self.num_envs
        self.core.reset(trace_idx, start_idx, sessions=None if everyone else idx,
                        rngs=gens if self.core.config.is_noisy else None, throughput_scale=scale)
        self._obs.reset(None if everyone else idx)
        self._needs_reset[idx] = False
        info: dict[str, Any] = {}
        names = np.array([self.traces[m].name for m in trace_idx.tolist()], dtype=object)
        _put(info, idx, self.num_envs, {"trace_idx": trace_idx, "start_idx": start_idx, "trace_name": names})
        if scale is not None:
            _put(info, idx, self.num_envs, {"throughput_scale": scale})
        forced = self.core.forced_quality_idx
        if forced is not None:
            first = self.core.step(np.full(n, forced, dtype=np.int64), sessions=None if everyone else idx)
            self._push(None if everyone else idx, first)
            _put(info, idx, self.num_envs, {"first_chunk": _outcome_fields(first), "first_chunk_qoe": first.qoe})
        return info

    def _push(self, idx: IntArray | None, batch: ChunkBatch) -> None:
        self._obs.push(idx, batch.bitrate_bps, batch.buffer_s, batch.throughput_bps, batch.download_time_s,
                       batch.chunk_idx)

    def step(self, actions: npt.ArrayLike) -> tuple[ObsArray, npt.NDArray[np.float64], npt.NDArray[np.bool_],
                                                    npt.NDArray[np.bool_], dict[str, Any]]:
        """Step every sub-environment (next-step autoreset of those that terminated at the last step)."""
        if not self._is_started:
            raise gym.error.ResetNeeded("call reset() before step()")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,):
            raise ValueError(f"expected {self.num_envs} actions, one per sub-environment, got shape {actions.shape}")
        if actions.dtype.kind not in "iu":  # no silent casts of 2.5 or "3" (vectorised: one dtype check)
            raise ValueError(f"actions must be an integer array of quality indices (the action space "
                             f"{self.action_space}), got dtype {actions.dtype}: {actions.tolist()!r}")
        bad = (actions < 0) | (actions >= self.video.n_levels)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"action {int(actions[i])} of sub-environment {i} is not in {self.single_action_space} "
                             f"(quality indices 0 to {self.video.n_levels - 1})")
        n = self.num_envs
        rewards = np.zeros(n)
        terminated = np.zeros(n, dtype=bool)
        info: dict[str, Any] = {}
        # A video already finished at reset (one chunk, downloaded by the player) ends without a step.
        finished = ~self._needs_reset & self.core.is_done
        if self._needs_reset.any() or finished.any():
            resetting = np.flatnonzero(self._needs_reset)
            stepping = np.flatnonzero(~self._needs_reset & ~finished)
            terminated[finished] = True
            if resetting.size:
                info = self._reset_envs(resetting)
        else:
            stepping = None
        if stepping is None or stepping.size:
            batch = self.core.step(actions if stepping is None else actions[stepping], sessions=stepping)
            self._push(stepping, batch)
            where: Any = slice(None) if stepping is None else stepping
            rewards[where] = batch.qoe
            terminated[where] = batch.is_last
            step_info = _outcome_fields(batch)
            step_info["rewards"] = {"utility": batch.utility, "rebuffer_penalty": batch.rebuffer_penalty,
                                    "smoothness_penalty": batch.smoothness_penalty}
            _put(info, np.arange(n) if stepping is None else stepping, n, step_info)
        self._needs_reset = terminated.copy()
        return self._obs.observation(self.core.state.chunk_idx), rewards, terminated, np.zeros(n, dtype=bool), info

    def reset_done(self) -> tuple[ObsArray, list[dict[str, Any]]]:
        """Reset now the sub-environments that terminated at the last step (same-step autoreset, for SB3).

        Returns the observations of every sub-environment and, for each one reset, its reset info.
        """
        idx = np.flatnonzero(self._needs_reset)
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        if idx.size:
            info = self._reset_envs(idx)
            for i in idx.tolist():
                infos[i] = {key: value[i] for key, value in info.items()
                            if not key.startswith("_") and not isinstance(value, dict)}
        return self._obs.observation(self.core.state.chunk_idx), infos

    def close_extras(self, **kwargs: Any) -> None:
        """Nothing to release: the sessions live in this process."""


def _outcome_fields(batch: ChunkBatch) -> dict[str, Any]:
    return {name: getattr(batch, name) for name in ChunkOutcome._fields}


def _put(info: dict[str, Any], idx: IntArray, n: int, values: dict[str, Any]) -> None:
    """Add per-sub-environment ``values`` (arrays over ``idx``) to a vector info dict, with ``_key`` masks."""
    everyone = idx.size == n
    for key, value in values.items():
        if isinstance(value, dict):
            nested = info.setdefault(key, {})
            _put(nested, idx, n, value)
        else:
            value = np.asarray(value)
            if not everyone:
                known = info.get(key)
                if known is None:
                    known = np.full(n, None, dtype=object) if value.dtype == object else np.zeros(n, value.dtype)
                known[idx] = value
                value = known
            info[key] = value
        mask = info.get(f"_{key}")
        if mask is None:
            mask = np.zeros(n, dtype=bool)
        mask[idx] = True
        info[f"_{key}"] = mask
