"""Comyco's "instant solver": the best qualities of the next few chunks, knowing the trace's throughput ahead.

Comyco (Huang et al., ACM MM 2019) imitates an expert that, at every decision, enumerates every quality
sequence of the next ``horizon`` chunks (8 in its code, ``MPC_FUTURE_CHUNK_COUNT``), simulates each with the
*true* download times of the trace from the current position (its virtual player replays the trace), and
takes the first quality of the sequence with the best QoE. It is clairvoyant over a short horizon only, so
its decisions depend on what a causal policy can roughly foresee, unlike the full-session optimum
(:mod:`agents.optimal`).

:class:`InstantSolver` does that search here: every sequence of ``min(horizon, chunks left)`` qualities, each
simulated with the core's own arithmetic (:meth:`agents.optimal._Model.expand`: request RTT, transfer over the
looping trace with ``payload_efficiency``, rebuffering, idling above ``max_buffer_s``, the QoE of
:mod:`simulator.qoe` for any :class:`~simulator.qoe.QoEWeights`), from a mid-session
:class:`~agents.optimal.SessionState`. The search is exhaustive (``n_levels ** horizon`` sequences, expanded as
a prefix tree), so no merge grid or bound is involved. Ties go to the sequence enumerated first in
lexicographic order (the lowest qualities). Chunks the core would refuse as too slow at a level are not
enumerated at that level; a trace too slow for some chunk at every level raises
:class:`~simulator.errors.SimulationInvariantError` when the solver is made.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from agents.optimal import SessionState, _Layer, _Model
from simulator.config import SimConfig
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

#: Comyco's horizon (``MPC_FUTURE_CHUNK_COUNT = 8`` in its instant solver); this module's default is shorter
#: (6 levels ** 8 = 1.7M sequences per decision is too slow on a 2-core machine for thousands of labels).
COMYCO_HORIZON = 8
DEFAULT_HORIZON = 5


@dataclass(frozen=True, slots=True)
class InstantPlan:
    """The best sequence of the next chunks from a state.

    Attributes:
        qualities: the quality of each of the next ``min(horizon, chunks left)`` chunks.
        qoe: their QoE (the first measured against the state's last quality), as the core measures it.
        sequences: how many sequences were compared.
    """

    qualities: tuple[int, ...]
    qoe: float
    sequences: int


class InstantSolver:
    """The instant solver of one session's trace (see the module docstring).

    Args:
        trace: the session's throughput trace (as the session plays it: scaled if the session is).
        video: the video (truncated to ``config.max_chunks`` as the core does).
        config: the simulator config; must be deterministic (no download-time noise).
        qoe: the QoE model (default linear).
        horizon: chunks planned ahead (>= 1).

    Raises:
        ConfigError: a noisy config or ``horizon < 1``.
        SimulationInvariantError: the trace is too slow for the core to finish some chunk at any level.

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 60.0]), np.array([2e6, 2e6]))
    >>> video = Video.cbr([0.5e6, 1e6, 1.5e6], chunk_duration_s=4.0, n_chunks=4)
    >>> solver = InstantSolver(trace, video, preset("pensieve"), horizon=2)
    >>> plan = solver.plan(SessionState(2, 10.0, 6.0, True, 0))
    >>> plan.qualities, plan.sequences
    ((2, 2), 9)
    """

    def __init__(self, trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights | None = None, *,
                 horizon: int = DEFAULT_HORIZON) -> None:
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ConfigError(f"horizon={horizon!r} must be an integer >= 1")
        self.horizon = horizon
        self._model = _Model(trace, video, config, qoe if qoe is not None else QoEWeights(), 1)

    def plan(self, state: SessionState) -> InstantPlan:
        """The best qualities of the next ``min(horizon, chunks left)`` chunks from ``state``."""
        model = self._model
        n_chunks = model.video.n_chunks
        if not 1 <= state.next_chunk_idx < n_chunks:
            raise ConfigError(f"state.next_chunk_idx={state.next_chunk_idx} must be in [1, {n_chunks - 1}]")
        clock_s = np.array([float(state.clock_s)])
        zero = np.zeros(1)
        layer = _Layer(clock_s, model.link.delivered_bits(clock_s), zero + state.buffer_s,
                       np.array([bool(state.is_playing)]), np.array([int(state.last_quality_idx)]), zero, zero,
                       np.array([-1]))
        history = []
        for k in range(state.next_chunk_idx, min(state.next_chunk_idx + self.horizon, n_chunks)):
            layer, actions = model.expand(layer, k)
            history.append((layer.parent, actions))
        best = int(np.argmax(layer.value))  # ties: the first enumerated (lexicographic, lowest qualities)
        qualities = []
        idx = best
        for parent, actions in reversed(history):
            qualities.append(int(actions[idx]))
            idx = int(parent[idx])
        return InstantPlan(tuple(reversed(qualities)), float(layer.value[best]), int(layer.value.size))

    def first_quality(self, state: SessionState) -> int:
        """The quality the solver asks for at ``state`` (the first of :meth:`plan`)."""
        return self.plan(state).qualities[0]
