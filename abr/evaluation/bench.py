"""Speed benchmarks: chunk-steps per second of the engines, measured, never asserted.

Each figure is the median over ``repeats`` runs, in one process, of chunk downloads per second:

* ``simpy_single``: the SimPy session core, one session at a time, constant action, no policy;
* ``gym_env``: ``env.step`` of ``gymnasium.make("abr/Abr-v0")`` in evaluation mode, observation included
  (the default SimPy engine); ``gym_env_fast``: the same with ``core="fast"``;
* ``batched``: per batch size N, chunk-steps of the batched core (:class:`simulator.fast.BatchedSessions`),
  N sessions in lock-step over the traces (session ``i`` of episode ``e`` on trace ``(e * N + i) mod n``),
  whole episodes including their resets, actions cycling over the ladder, no observation;
* ``vector_env``: per N, sub-environment steps of ``AbrVectorEnv`` (observations, rewards, infos and
  autoresets included);
* ``rollout_bba``: the evaluation rollout loop with the BBA policy (decisions included);
* ``decisions``: per agent, decisions per second and mean / 99th-percentile microseconds per decision of
  ``select`` alone (the time to build the context is not counted), over full sessions on the traces;
* ``views_per_core_s``: per agent (bba and robustmpc by default), views per CPU second of one core of a
  population run (:func:`abr.sessions.simulate.simulate` on the serial engine: recommender, choices, household
  playback and engagement, all included): ``view_users`` synthetic-catalog viewers for ``view_days`` days on
  the traces (one network profile), 10 minutes a view. CPU time of this process, not wall time, so a busy
  machine does not lower it; this is the figure a population run's speed is compared with. ``VIEW_USERS``
  viewers by default (about 800 views: with 150, the run's fixed costs and the few households whose views
  overlap made repeated figures differ by a half).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np

from agents.bba import BBA
from simulator.config import SimConfig, preset
from simulator.des import Session
from simulator.env import EnvConfig
from simulator.fast import BatchedSessions
from simulator.rollout import run_session
from simulator.vector_env import AbrVectorEnv
from traces.types import Trace, Video

BATCH_SIZES = (1, 64, 1024, 4096)
VIEW_AGENTS = ("bba", "robustmpc")
VIEW_USERS = 1000
VECTOR_SIZES = (64, 1024)


def _rate(fn: Callable[[], int], repeats: int) -> float:
    rates = []
    for _ in range(repeats):
        start = time.perf_counter()
        steps = fn()
        rates.append(steps / (time.perf_counter() - start))
    return float(statistics.median(rates))


def bench_simpy_single(traces: Sequence[Trace], video: Video, config: SimConfig, action: int = 2) -> int:
    steps = 0
    for trace in traces:
        session = Session(trace, video, config)
        while not session.is_done:
            session.step(action)
            steps += 1
    return steps


def _timed_loop(body: Callable[[], int], min_time_s: float) -> Callable[[], tuple[int, float]]:
    """A run that repeats ``body`` (which returns its step count) for at least ``min_time_s`` seconds."""

    def run() -> tuple[int, float]:
        steps, start = 0, time.perf_counter()
        while True:
            steps += body()
            elapsed = time.perf_counter() - start
            if elapsed >= min_time_s:
                return steps, elapsed

    return run


def _rate_timed(run: Callable[[], tuple[int, float]], repeats: int) -> float:
    run()  # warm-up: first-touch allocations and caches
    return float(statistics.median(steps / elapsed for steps, elapsed in (run() for _ in range(repeats))))


def bench_batched(traces: Sequence[Trace], video: Video, config: SimConfig, num_envs: int) -> Callable[[], int]:
    """One episode of ``num_envs`` sessions on the batched core per call; returns its chunk-steps."""
    core = BatchedSessions(traces, video, config, num_envs)
    n_levels, n_chunks = core.video.n_levels, core.n_chunks
    actions = [(np.arange(num_envs) + c) % n_levels for c in range(n_chunks)]
    if core.forced_quality_idx is not None:
        actions[0] = np.full(num_envs, core.forced_quality_idx)
    sessions = np.arange(num_envs)
    episode = [0]

    def body() -> int:
        core.reset((sessions + episode[0] * num_envs) % len(traces))
        episode[0] += 1
        for quality in actions:
            core.step(quality)
        return num_envs * n_chunks

    return body


def bench_vector_env(traces: Sequence[Trace], video: Video, num_envs: int) -> Callable[[], int]:
    """200 steps of ``AbrVectorEnv`` per call; returns the sub-environment steps."""
    envs = AbrVectorEnv(num_envs, traces=list(traces), video=video, config=EnvConfig(training=False))
    envs.reset(seed=0)
    n_levels = envs.video.n_levels
    actions = [(np.arange(num_envs) + t) % n_levels for t in range(200)]

    def body() -> int:
        for a in actions:
            envs.step(a)
        return 200 * num_envs

    return body


def bench_gym_env(traces: Sequence[Trace], video: Video, n_steps: int, core: str = "simpy") -> int:
    env = gym.make("abr/Abr-v0", traces=list(traces), video=video, config=EnvConfig(training=False), core=core)
    env.reset(seed=0)
    for i in range(n_steps):
        _, _, terminated, _, _ = env.step(i % 6)
        if terminated:
            env.reset()
    env.close()
    return n_steps


def bench_rollout(traces: Sequence[Trace], video: Video, config: SimConfig) -> int:
    return sum(len(run_session(BBA(), trace, video, config)) for trace in traces)


class _TimedPolicy:
    """Wraps a policy and records the wall time of every ``select`` call, in seconds."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.name = policy.name
        self.times_s: list[float] = []

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self.policy.reset(rng)

    def select(self, context: Any) -> int:
        start = time.perf_counter()
        choice = self.policy.select(context)
        self.times_s.append(time.perf_counter() - start)
        return int(choice)


def bench_decisions(agent_names: Sequence[str], traces: Sequence[Trace], video: Video,
                    config: SimConfig) -> dict[str, dict[str, float]]:
    """Decisions per second and microseconds per decision of each agent's ``select``.

    Clairvoyant agents (the offline optimum) plan the whole session in ``prepare``; their figure counts
    that planning, spread over the session's decisions (``includes_planning``). Other agents play one session
    untimed first, so that loading compiled code (the MPC search) and filling caches is not counted.
    """
    from agents.base import ClairvoyantPolicy
    from agents.registry import make_agent

    figures: dict[str, dict[str, float]] = {}
    for name in agent_names:
        policy = make_agent(name)
        if isinstance(policy, ClairvoyantPolicy):
            start = time.perf_counter()
            n = sum(len(run_session(policy, t, video, config, rng=np.random.default_rng(0))) for t in traces)
            per_s = (time.perf_counter() - start) / max(n, 1)
            figures[name] = {"decisions_per_s": 1.0 / per_s, "mean_us": per_s * 1e6, "p99_us": float("nan"),
                             "includes_planning": 1.0}
            continue
        run_session(policy, traces[0], video, config, rng=np.random.default_rng(0))  # untimed: loads compiled code
        timed = _TimedPolicy(policy)
        for trace in traces:
            run_session(timed, trace, video, config, rng=np.random.default_rng(0))
        times = np.array(timed.times_s)
        figures[name] = {"decisions_per_s": float(times.size / times.sum()), "mean_us": float(times.mean() * 1e6),
                         "p99_us": float(np.percentile(times, 99) * 1e6), "includes_planning": 0.0,
                         "decisions": float(times.size)}
    return figures


def bench_views(agent: str, traces: Sequence[Trace], video: Video, *, users: int = 150, days: int = 1,
                seed: int = 0) -> dict[str, float]:
    """Views per CPU second of a population run with ``agent`` (see the module docstring).

    Returns:
        ``views``, ``cpu_s`` (CPU seconds of this process) and ``views_per_core_s``.
    """
    from abr.sessions.playback import PlaybackContext
    from abr.sessions.population import build_population, synthetic_rating_data
    from abr.sessions.simulate import POPULATION_KEY, SessionsConfig, simulate

    config = SessionsConfig(users=users, days=days, agents=(agent,), seed=seed)
    data = synthetic_rating_data(np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 0))))
    families = {"bench": tuple(traces)}
    population = build_population(data, users, {"bench": len(traces)}, np.random.default_rng(seed),
                                  als=config.als)
    ctx = PlaybackContext(families, data.catalog, video, preset("realistic"), config.agents)
    start = time.process_time()
    result = simulate(config, data, population, ctx, engine="serial")
    cpu_s = time.process_time() - start
    return {"views": float(len(result.views)), "cpu_s": cpu_s, "views_per_core_s": len(result.views) / cpu_s}


def run_benchmarks(traces: Sequence[Trace], video: Video, *, repeats: int = 3,
                   gym_steps: int = 20_000, agents: Sequence[str] = (), batch_sizes: Sequence[int] = BATCH_SIZES,
                   vector_sizes: Sequence[int] = VECTOR_SIZES, min_time_s: float = 0.3,
                   view_agents: Sequence[str] = VIEW_AGENTS, view_users: int = VIEW_USERS) -> dict[str, Any]:
    """Measure every engine on ``traces`` and ``video``; returns chunk-steps per second by engine.

    Args:
        traces: the traces to play (each one session per repeat).
        video: the video.
        repeats: runs per figure; the median is reported.
        gym_steps: environment steps per ``gym_env`` run.
        agents: agents whose decision time is measured (``decisions``); none by default.
        batch_sizes: batch sizes N of the ``batched`` figures.
        vector_sizes: numbers of sub-environments of the ``vector_env`` figures.
        min_time_s: each ``batched`` and ``vector_env`` run repeats whole episodes (or 200 steps) for at
            least this long, in seconds.
        view_agents: agents whose population-run views per core second are measured (``views_per_core_s``).
        view_users: viewers of those runs (one day each).
    """
    import simulator  # noqa: F401  (registers the environment ids)

    config = preset("pensieve")
    return {
        "simpy_single": _rate(lambda: bench_simpy_single(traces, video, config), repeats),
        "gym_env": _rate(lambda: bench_gym_env(traces, video, gym_steps), repeats),
        "gym_env_fast": _rate(lambda: bench_gym_env(traces, video, gym_steps, core="fast"), repeats),
        "batched": {str(n): _rate_timed(_timed_loop(bench_batched(traces, video, config, n), min_time_s), repeats)
                    for n in batch_sizes},
        "vector_env": {str(n): _rate_timed(_timed_loop(bench_vector_env(traces, video, n), min_time_s), repeats)
                       for n in vector_sizes},
        "rollout_bba": _rate(lambda: bench_rollout(traces, video, config), repeats),
        "decisions": bench_decisions(agents, traces, video, config) if agents else {},
        "views_per_core_s": {name: bench_views(name, traces, video, users=view_users)["views_per_core_s"]
                             for name in view_agents},
        "traces": len(traces),
        "repeats": repeats,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_model": _cpu_model(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
        },
    }


def _cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (Linux), else the platform's machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()
