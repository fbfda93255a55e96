"""Errors raised by the simulator layer."""

from __future__ import annotations

from traces.errors import ConfigError, TraceFormatError


class SimulationInvariantError(RuntimeError):
    """The simulation reached a state that its model forbids (a bug, or a trace that cannot deliver data)."""


class MissingExtraError(ImportError):
    """An optional dependency is missing; the message names the pip command that installs it."""

    def __init__(self, package: str, extra: str) -> None:
        super().__init__(
            f"{package} is required for this feature but is not installed; install it with "
            f'`pip install "abr-lab[{extra}]"`'
        )


__all__ = ["ConfigError", "MissingExtraError", "SimulationInvariantError", "TraceFormatError"]
