"""There is one ConfigError: every layer raises, re-exports and catches the same class."""

from __future__ import annotations

import pytest

import abr.errors
import agents.errors
import simulator.errors
import traces.errors
from simulator.config import preset
from traces.synthetic import generate_trace_set


def test_every_layer_names_the_same_config_error() -> None:
    one = traces.errors.ConfigError
    assert simulator.errors.ConfigError is one and abr.errors.ConfigError is one
    assert abr.errors.TracesConfigError is one  # the older name of the same class
    assert issubclass(agents.errors.PolicyLoadError, one) and issubclass(one, ValueError)


def test_a_bad_value_from_any_layer_is_caught_as_the_one_config_error() -> None:
    with pytest.raises(abr.errors.ConfigError, match="nope"):
        preset("nope")  # simulator layer
    with pytest.raises(abr.errors.ConfigError):
        generate_trace_set(0, 0)  # data layer
