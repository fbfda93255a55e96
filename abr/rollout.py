"""The one rollout loop: a policy plays a session on the SimPy engine."""

from __future__ import annotations

import numpy as np

from agents.base import ClairvoyantPolicy, Policy
from simulator.config import SimConfig
from simulator.des import Session
from simulator.errors import ConfigError
from simulator.fast_session import FastSession
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from traces.types import Trace, Video

#: The session engines a rollout can run on.
CORES: tuple[str, ...] = ("simpy", "fast")


def check_core(core: str) -> str:
    """``core`` if it names a session engine, else a :class:`ConfigError` listing them.

    >>> check_core("fast")
    'fast'
    """
    if core not in CORES:
        raise ConfigError(f"core={core!r} is not one of {', '.join(CORES)}")
    return core


def run_session(policy: Policy, trace: Trace, video: Video, config: SimConfig, *,
                rng: np.random.Generator | None = None, start_idx: int = 1,
                qoe: QoEWeights | None = None, core: str = "simpy") -> list[ChunkOutcome]:
    """Play ``video`` over ``trace`` with ``policy`` choosing every chunk the player does not impose.

    Args:
        policy: the bitrate policy (reset at the start).
        trace: the link's throughput trace.
        video: the video.
        config: the link and player model.
        rng: generator for download noise and for stochastic policies.
        start_idx: first trace interval (1 = the trace's start).
        qoe: the QoE model of the evaluation, handed to clairvoyant policies (default linear).
        core: ``"simpy"`` (the reference engine, :class:`simulator.des.Session`) or ``"fast"`` (the fast core's
            arithmetic, :class:`simulator.fast_session.FastSession`; equal to 1e-9 relative).

    Returns:
        The chunk outcomes, in order.
    """
    session_type = FastSession if check_core(core) == "fast" else Session
    session = session_type(trace, video, config, start_idx=start_idx, rng=rng)
    policy.reset(rng)
    if isinstance(policy, ClairvoyantPolicy):
        policy.prepare(trace, video, config, qoe if qoe is not None else QoEWeights(), start_idx)
    n_levels = video.n_levels
    while not session.is_done:
        quality_idx = session.forced_quality_idx
        if quality_idx is None:
            quality_idx = int(policy.select(session.context()))
            if not 0 <= quality_idx < n_levels:
                raise ValueError(
                    f"policy {policy.name!r} chose quality {quality_idx}, not a level of the "
                    f"{n_levels}-level ladder"
                )
        session.step(quality_idx)
    return session.outcomes
