"""The agent registry: keys, fresh factories, ``name:value`` parameters and the errors for bad ones."""

from __future__ import annotations

import pytest

from agents import MPC, Bola, BolaE, Dynamic, FixedQuality, Policy, ThroughputRule, agent_names, make_agent
from simulator import ConfigError
from simulator.context import PlayerContext
from traces.types import Video

VIDEO = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=5)


def test_registry_keys_and_factories() -> None:
    names = agent_names()
    assert names == sorted(names)
    expected = {"bba", "rb", "bola", "bola-e", "throughput", "dynamic", "fixed", "fixed-top", "random",
                "robustmpc", "fastmpc", "mpc"}
    assert expected <= set(names)
    for name in names:
        policy = make_agent(name)
        assert isinstance(policy, Policy)
        assert make_agent(name) is not policy  # a fresh policy each time
    assert make_agent("bola").name == "bola" and make_agent("BOLA-E").name == "bola-e"
    mpc = make_agent("mpc")
    assert isinstance(mpc, MPC) and mpc.is_robust and mpc.name == "robustmpc"
    fast_mpc = make_agent("fastmpc")
    assert isinstance(fast_mpc, MPC) and not fast_mpc.is_robust and fast_mpc.name == "fastmpc"
    top = make_agent("fixed-top")
    assert isinstance(top, FixedQuality) and top.level_idx == -1 and top.name == "fixed-top"


def test_registry_parameters() -> None:
    fixed = make_agent(" Fixed:3 ")
    assert isinstance(fixed, FixedQuality) and fixed.level_idx == 3 and fixed.name == "fixed:3"
    assert fixed.select(PlayerContext(VIDEO, (), 0.0)) == 3
    rule = make_agent("throughput:0.8")
    assert isinstance(rule, ThroughputRule) and rule.safety_factor == 0.8 and rule.name == "throughput:0.8"
    bola = make_agent("bola:30")
    assert isinstance(bola, Bola) and bola.buffer_target_s == 30.0
    bola_e = make_agent("bola-e:12")
    assert isinstance(bola_e, BolaE) and bola_e.buffer_target_s == 12.0
    dynamic = make_agent("dynamic:12")
    assert isinstance(dynamic, Dynamic) and dynamic.buffer_time_default_s == 12.0


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bolaa", "unknown agent 'bolaa'; available agents: bba, bola, bola-e"),
        ("nope:3", "unknown agent 'nope:3'"),
        ("fixed:abc", "agent 'fixed': bad parameter 'abc'; use fixed:<level_idx> with an integer level_idx"),
        ("fixed:1.5", "agent 'fixed': bad parameter '1.5'"),
        ("throughput:1.5",
         r"agent 'throughput': safety_factor=1.5 must be a finite number in \(0, 1\]; use throughput:"),
        ("bola:-2", "agent 'bola': buffer_target_s=-2.0 must be a finite number > 0; use bola:<buffer_target_s>"),
        ("dynamic:", "agent 'dynamic': bad parameter ''"),
        ("bba:3", "agent 'bba' takes no parameter: use 'bba'"),
        ("robustmpc:5", "agent 'robustmpc' takes no parameter"),
    ],
)
def test_registry_rejects_bad_names_and_parameters(name: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_agent(name)
