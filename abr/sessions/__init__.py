"""Viewing sessions: a catalog and recommender, a viewer population on shared household links, engagement,
return and churn.

:func:`run_population` is the entry point behind ``abr sessions simulate``; see :mod:`abr.sessions.simulate`
for the day loop, :mod:`abr.sessions.engagement` for the viewer model, its confounders and its sources,
:mod:`abr.sessions.retention` for return and churn, :mod:`abr.sessions.estimation` for the effect estimators,
:mod:`abr.sessions.sensitivity` for ``abr sessions sensitivity`` and :mod:`simulator.shared_link` for the
sharing model.
"""

from __future__ import annotations

from abr.sessions.api import DEFAULT_NETWORKS, PopulationRun, load_rating_data, offline_evaluation, run_population
from abr.sessions.engagement import Confounding, EngagementModel
from abr.sessions.retention import ReturnModel
from abr.sessions.simulate import SessionsConfig, SimulationResult

__all__ = ["DEFAULT_NETWORKS", "Confounding", "EngagementModel", "PopulationRun", "ReturnModel", "SessionsConfig",
           "SimulationResult", "load_rating_data", "offline_evaluation", "run_population"]
