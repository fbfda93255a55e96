"""Viewing sessions: a catalog and recommender, a viewer population on shared household links, engagement.

:func:`run_population` is the entry point behind ``abr sessions simulate``; see :mod:`abr.sessions.simulate`
for the day loop, :mod:`abr.sessions.engagement` for the viewer model and its sources,
:mod:`simulator.shared_link` for the sharing model.
"""

from __future__ import annotations

from abr.sessions.api import DEFAULT_NETWORKS, PopulationRun, load_rating_data, offline_evaluation, run_population
from abr.sessions.engagement import EngagementModel
from abr.sessions.simulate import SessionsConfig, SimulationResult

__all__ = ["DEFAULT_NETWORKS", "EngagementModel", "PopulationRun", "SessionsConfig", "SimulationResult",
           "load_rating_data", "offline_evaluation", "run_population"]
