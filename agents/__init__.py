"""Bitrate policies behind one :class:`Policy` protocol: the heuristics, the offline optimum and learned policies.

The learned policies (:class:`agents.rl.RLPolicy`: a stable-baselines3 model, ``ppo:PATH`` or ``a2c:PATH`` in
:func:`make_agent`) live in :mod:`agents.rl`; loading a model needs the ``rl`` extra (torch, stable-baselines3).
"""

from agents.base import Policy
from agents.bba import BBA
from agents.bola import Bola, BolaE, BolaParameters
from agents.dynamic import Dynamic
from agents.mpc import MPC, fast_mpc, robust_mpc
from agents.optimal import OfflineOptimal, OptimumResult, solve_offline_optimum
from agents.rate_based import RateBased, harmonic_mean
from agents.registry import AGENTS, agent_names, make_agent
from agents.simple import FixedQuality, RandomQuality
from agents.throughput import ThroughputEstimator, ThroughputRule, insufficient_buffer_cap, quality_for_rate

__all__ = [
    "AGENTS",
    "BBA",
    "MPC",
    "Bola",
    "BolaE",
    "BolaParameters",
    "Dynamic",
    "FixedQuality",
    "OfflineOptimal",
    "OptimumResult",
    "Policy",
    "RandomQuality",
    "RateBased",
    "ThroughputEstimator",
    "ThroughputRule",
    "agent_names",
    "fast_mpc",
    "harmonic_mean",
    "insufficient_buffer_cap",
    "make_agent",
    "quality_for_rate",
    "robust_mpc",
    "solve_offline_optimum",
]
