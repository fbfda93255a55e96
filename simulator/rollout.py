"""The one rollout loop: a bitrate policy plays a session, on the SimPy core or the fast core.

A policy is anything with the :class:`QualityChooser` shape (``agents.base.Policy`` has it); a policy that also
has ``prepare`` (:class:`Prepares`, e.g. the offline optimum) is shown the whole session before it starts; one that
has ``use_qoe`` (:class:`UsesQoE`, e.g. MPC) is told the evaluation's QoE model after its reset, so it can plan with
it (MPC plans with the chunks' SSIM under the ``ssim`` QoE). The
decision step, :func:`choose_quality`, is shared with the shared-link runner
(:mod:`simulator.shared_session`), so every loop asks the policy and checks its answer the same way.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from simulator.config import SimConfig
from simulator.context import PlayerContext
from simulator.des import Session
from simulator.errors import ConfigError
from simulator.fast_session import FastSession
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from traces.types import Trace, Video

#: The session cores a rollout can run on: the SimPy reference or the fast core's arithmetic.
CORES: tuple[str, ...] = ("simpy", "fast")


class QualityChooser(Protocol):
    """The part of a bitrate policy the rollout loop uses (``agents.base.Policy`` satisfies it)."""

    name: str

    def reset(self, rng: np.random.Generator | None = None) -> None: ...

    def select(self, context: PlayerContext) -> int: ...


@runtime_checkable
class Prepares(Protocol):
    """A policy that sees the whole session before it starts (``agents.base.ClairvoyantPolicy``)."""

    def prepare(self, trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights, start_idx: int) -> None: ...


@runtime_checkable
class UsesQoE(Protocol):
    """A policy that plans with the evaluation's QoE model (``agents.base.QoEAwarePolicy``; MPC, SODA)."""

    def use_qoe(self, qoe: QoEWeights) -> None: ...


class _Steppable(Protocol):
    @property
    def forced_quality_idx(self) -> int | None: ...

    def context(self) -> PlayerContext: ...


def check_core(core: str) -> str:
    """``core`` if it names a session core, else a :class:`ConfigError` listing them.

    >>> check_core("fast")
    'fast'
    """
    if core not in CORES:
        raise ConfigError(f"core={core!r} is not one of {', '.join(CORES)}")
    return core


def choose_quality(policy: QualityChooser, session: _Steppable, n_levels: int) -> int:
    """The level of the session's next chunk: the one the player imposes, else the policy's choice (checked).

    Raises:
        ValueError: the policy chose something that is not a level of the ladder.
    """
    quality_idx = session.forced_quality_idx
    if quality_idx is not None:
        return quality_idx
    choice = int(policy.select(session.context()))
    if not 0 <= choice < n_levels:
        raise ValueError(f"policy {policy.name!r} chose quality {choice}, not a level of the {n_levels}-level ladder")
    return choice


def start_policy(policy: QualityChooser, rng: np.random.Generator | None, qoe: QoEWeights | None = None) -> None:
    """Start a session for ``policy``: reset it with ``rng``, and tell a planner (``use_qoe``) the QoE model it is
    judged by (default linear). Every loop that plays sessions starts its policies here."""
    policy.reset(rng)
    if isinstance(policy, UsesQoE):
        policy.use_qoe(qoe if qoe is not None else QoEWeights())


def run_session(policy: QualityChooser, trace: Trace, video: Video, config: SimConfig, *,
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
        qoe: the QoE model of the evaluation, handed to clairvoyant policies and to those with ``use_qoe``
            (default linear).
        core: ``"simpy"`` (the reference, :class:`simulator.des.Session`) or ``"fast"`` (the fast core's
            arithmetic, :class:`simulator.fast_session.FastSession`; equal to 1e-9 relative).

    Returns:
        The chunk outcomes, in order.
    """
    session_type = FastSession if check_core(core) == "fast" else Session
    session = session_type(trace, video, config, start_idx=start_idx, rng=rng)
    start_policy(policy, rng, qoe)
    if isinstance(policy, Prepares):
        policy.prepare(trace, video, config, qoe if qoe is not None else QoEWeights(), start_idx)
    n_levels = video.n_levels
    while not session.is_done:
        session.step(choose_quality(policy, session, n_levels))
    return session.outcomes
