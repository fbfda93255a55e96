"""Speed benchmarks: chunk-steps per second of the engines, measured, never asserted.

Each figure is the median over ``repeats`` runs, in one process, of chunk downloads per second:

* ``simpy_single``: the SimPy session engine, one session at a time, constant action, no policy;
* ``gym_env``: ``env.step`` of ``gymnasium.make("abr/Abr-v0")`` in evaluation mode, observation included;
* ``rollout_bba``: the evaluation rollout loop with the BBA policy (decisions included).
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

from abr.rollout import run_session
from agents.bba import BBA
from simulator.config import SimConfig, preset
from simulator.des import Session
from simulator.env import EnvConfig
from traces.types import Trace, Video


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


def bench_gym_env(traces: Sequence[Trace], video: Video, n_steps: int) -> int:
    env = gym.make("abr/Abr-v0", traces=list(traces), video=video, config=EnvConfig(training=False))
    env.reset(seed=0)
    for i in range(n_steps):
        _, _, terminated, _, _ = env.step(i % 6)
        if terminated:
            env.reset()
    env.close()
    return n_steps


def bench_rollout(traces: Sequence[Trace], video: Video, config: SimConfig) -> int:
    return sum(len(run_session(BBA(), trace, video, config)) for trace in traces)


def run_benchmarks(traces: Sequence[Trace], video: Video, *, repeats: int = 3,
                   gym_steps: int = 20_000) -> dict[str, Any]:
    """Measure every engine on ``traces`` and ``video``; returns chunk-steps per second by engine.

    Args:
        traces: the traces to play (each one session per repeat).
        video: the video.
        repeats: runs per figure; the median is reported.
        gym_steps: environment steps per ``gym_env`` run.
    """
    import simulator  # noqa: F401  (registers the environment ids)

    config = preset("pensieve")
    return {
        "simpy_single": _rate(lambda: bench_simpy_single(traces, video, config), repeats),
        "gym_env": _rate(lambda: bench_gym_env(traces, video, gym_steps), repeats),
        "rollout_bba": _rate(lambda: bench_rollout(traces, video, config), repeats),
        "traces": len(traces),
        "repeats": repeats,
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "numpy": np.__version__,
        },
    }
