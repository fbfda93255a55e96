"""The Gymnasium environment: one bitrate decision per chunk, on the SimPy core (or the fast core)."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import numpy.typing as npt

from simulator.config import SimConfig, preset
from simulator.des import Session
from simulator.errors import ConfigError
from simulator.fast_session import FastSession, TraceLists
from simulator.observation import (
    DEFAULT_ENCODER,
    DEFAULT_HISTORY_LEN,
    ObservationHistory,
    check_encoder,
    observation_shape,
)
from simulator.qoe import QoEWeights, chunk_qoe
from simulator.records import ChunkOutcome
from traces.types import Trace, Video
from traces.units import bps_to_kbps
from traces.videos import envivio_cbr_video

ObsType = npt.NDArray[np.float32]
DEFAULT_SYNTHETIC_TRACES = 16
DEFAULT_SYNTHETIC_SEED = 0
# Upper bound of every observation entry: reached only by throughputs near 80 Gbit/s or 100,000 s buffers.
OBS_HIGH = 1e4
#: Stream of the throughput-scale generator, apart from the environment's own (``SeedSequence`` spawn key).
SCALE_SPAWN_KEY = 7
#: The session cores an environment can run on (its ``core`` keyword): the SimPy reference (``simulator.des``),
#: or the fast core's arithmetic for one session (``simulator.fast_session``; equal to SimPy within
#: ``simulator.fast``'s stated tolerance, and bit for bit equal to a session of the batched core and of
#: ``AbrVectorEnv``). ("Engine" names where an evaluation's sessions run, ``abr evaluate --engine``.)
CORES = ("simpy", "fast")


def core_keyword(core: str, engine: str | None, *, default: str, owner: str) -> str:
    """The session core from ``core=`` and the deprecated ``engine=`` keyword (its old name).

    ``engine`` still works, with a :class:`DeprecationWarning`; given with a different ``core`` it is refused.

    >>> core_keyword("fast", None, default="simpy", owner="AbrEnv")
    'fast'
    """
    if engine is None:
        return core
    warnings.warn(f"{owner}(engine={engine!r}) is deprecated: the keyword is now core={engine!r} (engine names "
                  "where an evaluation's sessions run)", DeprecationWarning, stacklevel=3)
    if core != default and core != engine:
        raise ConfigError(f"core={core!r} and engine={engine!r} disagree: give core only (engine is its "
                          "deprecated old name)")
    return engine


@dataclass(frozen=True, slots=True)
class EnvConfig:
    """How episodes are drawn.

    Args:
        training: training mode draws the trace and the start offset at random and replaces the preset's
            download-time noise by U(``train_noise_low``, ``train_noise_high``); evaluation mode walks the
            traces in order from their start with the preset's own noise (none in ``pensieve``, U(0.9, 1.1)
            in ``pensieve-train``).
        train_noise_low: lower bound of the training-mode noise U(low, high) on download times.
        train_noise_high: upper bound of that noise (the research simulator uses U(0.9, 1.1)).
        history_len: number of past chunks in the observation.
        observation: the observation encoder (``simulator.observation.ENCODERS``): ``"pensieve-6row-v1"``
            (Pensieve's scales, the default) or ``"abr-6row-v2"`` (ladder-relative, bounded rows).
        throughput_scale_low: training mode only: lowest factor on the episode's trace throughput. Each
            training episode draws its trace and a factor log-uniform in ``[low, high]`` from a generator
            of its own (``SeedSequence(seed, spawn_key=(7,))``, seeded by ``reset(seed=...)``), then plays
            ``Trace.scaled(factor)``; ``info["throughput_scale"]`` reports it. 1/1 (default) disables it.
        throughput_scale_high: the highest factor.
    """

    training: bool = True
    train_noise_low: float = 0.9  # Pensieve NOISE_LOW
    train_noise_high: float = 1.1  # Pensieve NOISE_HIGH
    history_len: int = DEFAULT_HISTORY_LEN
    observation: str = DEFAULT_ENCODER
    throughput_scale_low: float = 1.0
    throughput_scale_high: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.train_noise_low <= self.train_noise_high:
            raise ConfigError(
                f"train_noise_low={self.train_noise_low}, train_noise_high={self.train_noise_high}: "
                "need 0 < low <= high"
            )
        if self.history_len < 1:
            raise ConfigError(f"history_len={self.history_len} must be >= 1")
        check_encoder(self.observation)
        low, high = self.throughput_scale_low, self.throughput_scale_high
        if not (math.isfinite(low) and math.isfinite(high) and 0 < low <= high):
            raise ConfigError(f"throughput_scale_low={low}, throughput_scale_high={high}: need 0 < low <= high")

    @property
    def is_scaled(self) -> bool:
        """Whether training episodes scale their trace's throughput."""
        return self.training and (self.throughput_scale_low != 1.0 or self.throughput_scale_high != 1.0)

    def scale_rng(self, seed: int | None) -> np.random.Generator:
        """The generator of the trace choice and throughput scale of scaled training episodes.

        >>> int(EnvConfig().scale_rng(3).integers(100)) == int(EnvConfig().scale_rng(3).integers(100))
        True
        """
        return np.random.default_rng(np.random.SeedSequence(0 if seed is None else int(seed),
                                                            spawn_key=(SCALE_SPAWN_KEY,)))

    def draw_scale(self, rng: np.random.Generator, n_traces: int) -> tuple[int, float]:
        """Draw (trace index, throughput scale factor) for one scaled training episode from ``rng``."""
        trace_idx = int(rng.integers(n_traces))
        scale = math.exp(float(rng.uniform(math.log(self.throughput_scale_low),
                                           math.log(self.throughput_scale_high))))
        return trace_idx, scale


class AbrEnv(gym.Env[ObsType, np.int64]):
    """
    ## Description

    A video player streams one video over a network link whose throughput follows a real (or synthetic)
    trace. Before each chunk, the agent picks the quality (bitrate level) to download. The link, the
    buffer and the QoE follow the SimPy core (``simulator.des``) with the chosen preset; the default
    ``pensieve`` preset reproduces the research simulator of Mao et al. (SIGCOMM 2017).

    ## Action Space

    ``Discrete(n_levels)``: the quality index of the next chunk, 0 = lowest bitrate.

    ## Observation Space

    ``Box(0, 1e4, (6, max(history_len, n_levels)), float32)``, documented row by row in
    ``simulator.observation``: past bitrates / top bitrate, past buffer / 10 s, past throughput / 8e6 bit/s,
    past download time / 10 s, next chunk sizes per level / 8e6 bit, chunks remaining / chunks in video.

    ## Rewards

    The QoE of the chunk just downloaded: utility - rebuffer penalty - smoothness penalty
    (``simulator.qoe``; linear by default: bitrate in Mbit/s - 4.3 * rebuffer s - |change in Mbit/s|).
    ``info["rewards"]`` holds the three terms.

    ## Starting State

    Empty buffer at the start of a trace (evaluation) or at a random trace sample (training). With the
    ``pensieve`` preset the player downloads the first chunk at level 1 itself during ``reset``; its outcome
    and QoE are in the reset ``info`` (keys ``first_chunk`` and ``first_chunk_qoe``).

    ## Episode End

    * Termination: the video is finished (the last chunk is downloaded).
    * Truncation: never from the environment itself. Traces do not run out: an exhausted trace loops back
      to its first sample, as in the research simulator. Wrap with ``TimeLimit`` to cap the chunk count.

    ## Arguments

    * ``traces``: a sequence of :class:`~traces.types.Trace`; default: 16 seeded synthetic traces.
    * ``video``: a :class:`~traces.types.Video`; default: a constant-bitrate video on the Envivio ladder
      (300-4300 kbit/s, 48 chunks of 4 s).
    * ``sim_config``: a :class:`SimConfig` or a preset name (default ``"pensieve"``).
    * ``qoe``: :class:`QoEWeights` (default linear).
    * ``config``: :class:`EnvConfig` (default training mode).
    * ``core``: the session core, ``"simpy"`` (the reference, default) or ``"fast"`` (the batched core's
      arithmetic for one session, several times faster; see ``CORES``). ``engine`` is its deprecated old
      name: it still works, with a ``DeprecationWarning``.

    ## Examples

    >>> import gymnasium as gym
    >>> import simulator
    >>> env = gym.make("abr/Abr-v0", config=EnvConfig(training=False))
    >>> obs, info = env.reset(seed=42)
    >>> obs.shape
    (6, 8)
    >>> obs, reward, terminated, truncated, info = env.step(0)
    >>> info["chunk_idx"], terminated
    (1, False)
    """

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, traces: Sequence[Trace] | None = None, video: Video | None = None,
                 sim_config: SimConfig | str = "pensieve", qoe: QoEWeights | None = None,
                 config: EnvConfig | None = None, render_mode: str | None = None, core: str = "simpy",
                 engine: str | None = None) -> None:
        core = core_keyword(core, engine, default="simpy", owner="AbrEnv")
        if core not in CORES:
            raise ConfigError(f"core={core!r} is not one of {', '.join(CORES)}")
        #: The session core: ``"simpy"`` or ``"fast"``.
        self.core = core
        self.traces = list(traces) if traces is not None else _default_traces()
        if not self.traces:
            raise ConfigError("traces is empty: give at least one Trace")
        self.sim_config = preset(sim_config) if isinstance(sim_config, str) else sim_config
        check_env_arguments(self.sim_config, qoe, config, video)
        video = video if video is not None else default_video()
        if self.sim_config.max_chunks is not None and video.n_chunks > self.sim_config.max_chunks:
            video = video.truncated(self.sim_config.max_chunks)
        self.video = video
        self.qoe = qoe if qoe is not None else QoEWeights()
        self.config = config if config is not None else EnvConfig()
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ConfigError(f"render_mode={render_mode!r} is not one of {self.metadata['render_modes']}")
        self.render_mode = render_mode
        self.action_space = gym.spaces.Discrete(video.n_levels)
        self.observation_space = gym.spaces.Box(
            0.0, OBS_HIGH, shape=observation_shape(video.n_levels, self.config.history_len), dtype=np.float32
        )
        self._utilities = self.qoe.chunk_utilities(video)  # [n_chunks, n_levels]; ssim: the video's quality
        self._episode_sim_config = self._make_episode_sim_config()
        self._next_trace_idx = 0
        self._session: Session | FastSession | None = None
        self.trace: Trace | None = None
        self._history = ObservationHistory(video, self.config.history_len, self.config.observation)
        self._trace_lists: dict[int, TraceLists] = {}
        self._scale_rng = self.config.scale_rng(None)
        self.throughput_scale = 1.0

    @property
    def session(self) -> Session | FastSession | None:
        """The episode's session (its buffer, outcomes and, on the fast core, trace clock); ``None`` before reset.

        Read it, do not step it: the environment's observation follows only the chunks it steps itself.
        """
        return self._session

    def _make_episode_sim_config(self) -> SimConfig:
        return episode_config(self.sim_config, self.config)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[ObsType, dict[str, Any]]:
        """Start a new episode.

        Args:
            seed: seeds ``self.np_random``, the only source of randomness of the environment. In
                evaluation mode a seed also restarts the walk over the traces at the first one.
            options: ``{"trace_idx": i}`` picks the trace; ``{"start_idx": j}`` the first trace interval.
        """
        super().reset(seed=seed)
        if seed is not None:
            self._next_trace_idx = 0
            self._scale_rng = self.config.scale_rng(seed)
        options = options or {}
        trace_idx = options.get("trace_idx")
        self.throughput_scale = 1.0
        if self.config.is_scaled:
            drawn_idx, self.throughput_scale = self.config.draw_scale(self._scale_rng, len(self.traces))
            trace_idx = drawn_idx if trace_idx is None else trace_idx
        if trace_idx is None:
            if self.config.training:
                trace_idx = int(self.np_random.integers(len(self.traces)))
            else:
                trace_idx = self._next_trace_idx
                self._next_trace_idx = (self._next_trace_idx + 1) % len(self.traces)
        if not 0 <= int(trace_idx) < len(self.traces):
            raise ConfigError(f"options['trace_idx']={trace_idx} must be in [0, {len(self.traces) - 1}]")
        self.trace = self.traces[int(trace_idx)]
        if self.throughput_scale != 1.0 and self.core == "simpy":
            self.trace = self.trace.scaled(self.throughput_scale)
        start_idx = options.get("start_idx")
        if start_idx is None:
            n_samples = self.trace.times_s.size
            start_idx = int(self.np_random.integers(1, n_samples)) if self.config.training else 1
        self._session = self._new_session(int(trace_idx), int(start_idx))
        self._history.reset()
        info: dict[str, Any] = {"trace_name": self.trace.name, "trace_idx": int(trace_idx),
                                "start_idx": int(start_idx)}
        if self.config.is_scaled:
            info["throughput_scale"] = self.throughput_scale
        forced = self._session.forced_quality_idx
        if forced is not None:
            first = self._session.step(forced)
            self._history.push(first)
            u, reb, smooth = chunk_qoe(forced, forced, first.rebuffer_s, self._utilities[first.chunk_idx], self.qoe)
            info["first_chunk"] = first._asdict()
            info["first_chunk_qoe"] = u - reb - smooth
        return self._observation(), info

    def step(self, action: Any) -> tuple[ObsType, float, bool, bool, dict[str, Any]]:
        session = self._session
        if session is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if session.is_done:
            warnings.warn("step() called after the episode terminated; call reset()", stacklevel=2)
            return self._observation(), 0.0, True, False, {}
        if not self.action_space.contains(action):  # no silent casts: 2.5, "3" and np.float32(1.7) are refused
            raise ValueError(f"action={action!r} ({type(action).__name__}) is not in the action space "
                             f"{self.action_space}: give an integer quality index in [0, {self.video.n_levels - 1}]")
        quality_idx = int(action)
        previous = session.outcomes[-1].quality_idx if session.outcomes else quality_idx
        outcome = session.step(quality_idx)
        self._history.push(outcome)
        k = outcome.chunk_idx
        utility, rebuffer_pen, smooth_pen = chunk_qoe(quality_idx, previous, outcome.rebuffer_s, self._utilities[k],
                                                     self.qoe, previous_utilities=self._utilities[max(k - 1, 0)])
        reward = utility - rebuffer_pen - smooth_pen
        info = _outcome_info(outcome)
        info["rewards"] = {"utility": utility, "rebuffer_penalty": rebuffer_pen,
                           "smoothness_penalty": smooth_pen}
        return self._observation(), float(reward), session.is_done, False, info

    def _new_session(self, trace_idx: int, start_idx: int) -> Session | FastSession:
        assert self.trace is not None
        if self.core == "simpy":
            return Session(self.trace, self.video, self._episode_sim_config, start_idx=start_idx, rng=self.np_random)
        lists = self._trace_lists.get(trace_idx)
        if lists is None:
            lists = TraceLists(self.trace, payload_efficiency=self._episode_sim_config.payload_efficiency)
            self._trace_lists[trace_idx] = lists
        # The fast core scales as the batched core does (the chunk crosses the link as if smaller).
        return FastSession(self.trace, self.video, self._episode_sim_config, start_idx=start_idx,
                           rng=self.np_random, lists=lists, throughput_scale=self.throughput_scale)

    def _observation(self) -> ObsType:
        # Incremental: equal to encode_observation(self._session.context(), history_len), bit for bit.
        assert self._session is not None
        return self._history.observation(self._session.next_chunk_idx)

    def render(self) -> str | None:
        if self.render_mode != "ansi" or self._session is None or not self._session.outcomes:
            return None
        o = self._session.outcomes[-1]
        return (f"chunk {o.chunk_idx + 1}/{self.video.n_chunks} level {o.quality_idx} "
                f"({bps_to_kbps(o.bitrate_bps):.0f} kbit/s) download {o.download_time_s:.2f} s "
                f"rebuffer {o.rebuffer_s:.2f} s buffer {o.buffer_s:.1f} s")


def check_env_arguments(sim_config: object, qoe: object, config: object, video: object) -> None:
    """Refuse an environment argument of the wrong type, by name (before it fails deep inside).

    >>> check_env_arguments(preset("pensieve"), None, "x", None)
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: config='x' (str) must be a simulator.env.EnvConfig (or None for the default)
    """
    expected = (("sim_config", sim_config, SimConfig, "a simulator.config.SimConfig or a preset name"),
                ("qoe", qoe, QoEWeights, "a simulator.qoe.QoEWeights (or None for the default)"),
                ("config", config, EnvConfig, "a simulator.env.EnvConfig (or None for the default)"),
                ("video", video, Video, "a traces.types.Video (or None for the default)"))
    for name, value, cls, what in expected:
        if value is not None and not isinstance(value, cls):
            raise ConfigError(f"{name}={value!r} ({type(value).__name__}) must be {what}")


def episode_config(sim_config: SimConfig, config: EnvConfig) -> SimConfig:
    """The simulator config of an episode: training mode replaces the noise with the training noise.

    >>> episode_config(preset("pensieve"), EnvConfig(training=True)).noise_high
    1.1
    """
    if not config.training:
        return sim_config
    return sim_config.replace(noise_low=config.train_noise_low, noise_high=config.train_noise_high)


def _outcome_info(outcome: ChunkOutcome) -> dict[str, Any]:
    return outcome._asdict()


def default_video() -> Video:
    """A constant-bitrate video on the Envivio ladder, 48 chunks of 4 s (no data needed)."""
    return envivio_cbr_video(name="cbr-envivio")


def _default_traces() -> list[Trace]:
    from traces.synthetic import generate_trace_set

    return generate_trace_set(DEFAULT_SYNTHETIC_SEED, DEFAULT_SYNTHETIC_TRACES)
