"""Parameter checks shared by the agents: each raises ConfigError naming the field and the allowed range."""

from __future__ import annotations

import math

from simulator.errors import ConfigError


def check_fraction(name: str, value: float) -> None:
    """Require ``0 < value <= 1``.

    >>> check_fraction("safety_factor", 1.5)
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: safety_factor=1.5 must be a finite number in (0, 1]
    """
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 1):
        raise ConfigError(f"{name}={value!r} must be a finite number in (0, 1]", field=name, value=value)


def check_positive(name: str, value: float) -> None:
    """Require a finite ``value > 0``.

    >>> check_positive("buffer_target_s", 0.0)
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: buffer_target_s=0.0 must be a finite number > 0
    """
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{name}={value!r} must be a finite number > 0", field=name, value=value)
