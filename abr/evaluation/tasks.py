"""The task and result types every evaluation engine shares (:mod:`abr.evaluation.engines`): one job, its
session tasks, and what a session gives back (a result, or a failure with its reason)."""

from __future__ import annotations

from dataclasses import dataclass

from simulator.config import SimConfig
from simulator.metrics import SessionMetrics
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from traces.types import Trace, Video


@dataclass(frozen=True, slots=True)
class SessionResult:
    """One agent's session on one trace: its metrics and its chunk outcomes."""

    agent: str
    trace_set: str
    trace: str
    metrics: SessionMetrics
    outcomes: tuple[ChunkOutcome, ...]
    key: tuple[int, int, int] = (0, 0, 0)
    video: str = ""


@dataclass(frozen=True, slots=True)
class SessionFailure:
    """A session that raised: the evaluation records it (with its reason) and goes on with the others."""

    agent: str
    trace_set: str
    trace: str
    reason: str
    key: tuple[int, int, int] = (0, 0, 0)
    video: str = ""


@dataclass(frozen=True, slots=True)
class SessionTask:
    """One session to play: agent ``key[0]`` on trace ``key[2]`` of trace set ``key[1]`` of the job."""

    key: tuple[int, int, int]


@dataclass(frozen=True, slots=True)
class EvaluationJob:
    """Everything a worker needs to play any session of an evaluation (picklable)."""

    agents: tuple[str, ...]
    trace_sets: tuple[tuple[str, tuple[Trace, ...]], ...]
    videos: tuple[Video, ...]
    sim_config: SimConfig
    qoe: QoEWeights
    seed: int
    #: index into ``videos`` of each entry of ``trace_sets`` (default: all play ``videos[0]``).
    set_videos: tuple[int, ...] = ()
    #: the session core: ``"simpy"`` (reference) or ``"fast"`` (see :func:`simulator.rollout.run_session`).
    core: str = "simpy"

    def video_of(self, set_idx: int) -> Video:
        """The video the sessions of trace-set entry ``set_idx`` play."""
        return self.videos[self.set_videos[set_idx] if self.set_videos else 0]

    def tasks(self) -> list[SessionTask]:
        """Every session of the job, in play order (agent, then trace set, then trace by name)."""
        return [SessionTask((a, s, t)) for a in range(len(self.agents))
                for s, (_, traces) in enumerate(self.trace_sets) for t in range(len(traces))]
