"""Agents by name: lowercase registry keys, each a factory of a fresh policy."""

from __future__ import annotations

from collections.abc import Callable

from agents.base import Policy
from agents.bba import BBA
from agents.rate_based import RateBased
from simulator.errors import ConfigError

AGENTS: dict[str, Callable[[], Policy]] = {
    "bba": BBA,
    "rb": RateBased,
}


def make_agent(name: str) -> Policy:
    """A new policy by registry name.

    >>> make_agent("bba").name
    'bba'
    """
    key = name.strip().lower()
    if key not in AGENTS:
        raise ConfigError(f"unknown agent {name!r}; available agents: {', '.join(sorted(AGENTS))}")
    return AGENTS[key]()


def agent_names() -> list[str]:
    return sorted(AGENTS)
