"""Bitrate policies: heuristics and (later) learned agents, behind one :class:`Policy` protocol."""

from agents.base import Policy
from agents.bba import BBA
from agents.rate_based import RateBased, harmonic_mean
from agents.registry import AGENTS, agent_names, make_agent

__all__ = ["AGENTS", "BBA", "Policy", "RateBased", "agent_names", "harmonic_mean", "make_agent"]
