"""Errors raised by the agents layer."""

from __future__ import annotations

from simulator.errors import ConfigError


class PolicyLoadError(ConfigError):
    """A trained policy file cannot be used: missing, corrupt, or made for another observation layout.

    The message names the file, what is wrong and how to fix it. A :class:`ConfigError` (so a ``ValueError``):
    a bad model file is bad input.
    """


__all__ = ["PolicyLoadError"]
