"""Agent parameters that are not finite numbers are named as such (not "inf must be > 0")."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from abr.cli import app
from agents.registry import make_agent
from simulator import ConfigError


@pytest.mark.parametrize(("name", "shown"), [
    ("bola:inf", "'inf'"), ("bola-e:-inf", "'-inf'"), ("bola:nan", "'nan'"), ("dynamic:1e999", "'1e999'"),
    ("throughput:NaN", "'nan'"),
])
def test_a_parameter_that_is_not_finite_is_refused_as_such(name, shown):
    with pytest.raises(ConfigError, match=rf"parameter {shown} must be a finite number; use ") as error:
        make_agent(name)
    assert "must be > 0" not in str(error.value)


def test_finite_parameters_still_parse():
    assert make_agent("bola:12.5").buffer_target_s == 12.5


def test_the_cli_names_the_agent_and_the_form(tmp_path):
    result = CliRunner().invoke(app, ["evaluate", "-a", "bola:inf", "--synthetic", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == ("error: agent 'bola': parameter 'inf' must be a finite number; use "
                                     "bola:<buffer_target_s> with seconds > 0")
    assert not (tmp_path / "o").exists()
