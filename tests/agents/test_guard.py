"""The guard around a policy: its error signal, its hand-over, and its registry form, against hand-derived values."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from agents.bola import BolaE
from agents.guard import DEFAULT_MAX_ERROR, GuardedPolicy
from agents.registry import agent_model_file, guarded_inner, make_agent, unguarded
from simulator import ConfigError
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.types import Trace, Video

VIDEO = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=10)


def _chunk(idx: int, throughput_bps: float) -> ChunkOutcome:
    return ChunkOutcome(idx, 0, 300e3, 1.2e6, 0.0, 1.0, 1.0, throughput_bps, 0.0, 0.0, 8.0, 0.0)


@dataclass
class Recorder:
    """Always ``level``; records every context it was asked about and the QoE model it was handed."""

    level: int
    name: str = "recorder"
    seen: list[int] = field(default_factory=list)
    resets: int = 0
    qoe: QoEWeights | None = None

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self.resets += 1

    def select(self, context: PlayerContext) -> int:
        self.seen.append(context.next_chunk_idx)
        return self.level

    def use_qoe(self, qoe: QoEWeights) -> None:
        self.qoe = qoe


def _decide(guard: GuardedPolicy, throughputs: list[float]) -> list[int]:
    """The guard's decision after each prefix of ``throughputs`` (one call per chunk, as a session makes)."""
    guard.reset()
    history = tuple(_chunk(i, t) for i, t in enumerate(throughputs))
    return [guard.select(PlayerContext(VIDEO, history[:k], 8.0)) for k in range(len(history) + 1)]


def test_the_error_is_robustmpcs_and_the_fallback_decides_while_it_is_high() -> None:
    primary, fallback = Recorder(5), Recorder(0)
    guard = GuardedPolicy(primary, fallback, max_error=1.0)
    # Hand-derived errors |H_(k-1) - C_k| / C_k, H the harmonic mean of the last (up to) 5 throughputs:
    # k=1: H=2 vs 2 -> 0; k=2: H=2 vs 0.8 -> 1.5 (guard up); k=3: H(2,2,0.8)=1.333 vs 2 -> 0.333 (1.5 still in
    # the window of 5); k=4..6 keep it; k=7: the 1.5 has left the window (errors of chunks 3..7 only).
    throughputs = [2e6, 2e6, 0.8e6, 2e6, 2e6, 2e6, 2e6, 2e6]
    decisions = _decide(guard, throughputs)
    assert decisions == [5, 5, 5, 0, 0, 0, 0, 0, 5]
    assert guard.guarded_decisions == 5 and guard.decisions == 9
    h = 3 / (1 / 2e6 + 1 / 2e6 + 1 / 0.8e6)
    assert guard._errors[:4] == pytest.approx([0.0, 0.0, 1.5, abs(h - 2e6) / 2e6])
    # both policies were asked every decision (the fallback's state follows the session)
    assert primary.seen == fallback.seen == list(range(len(throughputs) + 1))


def test_the_threshold_is_strict_and_configurable() -> None:
    throughputs = [2e6, 1e6]  # error |2 - 1| / 1 = exactly 1
    assert _decide(GuardedPolicy(Recorder(5), Recorder(0), max_error=1.0), throughputs)[-1] == 5
    assert _decide(GuardedPolicy(Recorder(5), Recorder(0), max_error=0.99), throughputs)[-1] == 0
    # a rise counts too: |1 - 3| / 3 = 0.667
    assert _decide(GuardedPolicy(Recorder(5), Recorder(0), max_error=0.6), [1e6, 3e6])[-1] == 0
    assert _decide(GuardedPolicy(Recorder(5), Recorder(0), max_error=0.7), [1e6, 3e6])[-1] == 5


def test_reset_forgets_the_session_and_a_shorter_history_restarts() -> None:
    primary, fallback = Recorder(5), Recorder(0)
    guard = GuardedPolicy(primary, fallback)
    assert _decide(guard, [4e6, 1e6])[-1] == 0  # error 3
    assert primary.resets == fallback.resets == 1
    guard.reset()
    assert guard.last_error == 0.0 and guard.guarded_decisions == 0
    # without reset, a context with fewer chunks than seen is a new session
    guard.select(PlayerContext(VIDEO, (_chunk(0, 4e6), _chunk(1, 1e6)), 8.0))
    assert guard.select(PlayerContext(VIDEO, (_chunk(0, 2e6),), 8.0)) == 5


def test_a_zero_throughput_raises_the_guard() -> None:
    assert _decide(GuardedPolicy(Recorder(5), Recorder(0)), [2e6, 0.0])[-1] == 0


def test_the_qoe_model_reaches_both_policies() -> None:
    primary, fallback = Recorder(5), Recorder(0)
    qoe = QoEWeights()
    GuardedPolicy(primary, fallback).use_qoe(qoe)
    assert primary.qoe is qoe and fallback.qoe is qoe


def test_bad_parameters_are_refused_with_the_field() -> None:
    for value in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ConfigError, match="guard max_error=.* must be a finite number > 0"):
            GuardedPolicy(Recorder(1), max_error=value)
    with pytest.raises(ConfigError, match="guard window=0 must be an integer >= 1"):
        GuardedPolicy(Recorder(1), window=0)


def test_a_session_with_bola_e_as_fallback_plays_bola_e_through_an_outage() -> None:
    # 3 Mbit/s, then a near-outage and bursts: the guard hands over; where it is down the primary's level plays.
    rates = [3e6] * 10 + ([0.2e6] * 6 + [6e6] * 6) * 6 + [3e6] * 60
    video = Video.cbr(list(VIDEO.bitrates_bps), chunk_duration_s=4.0, n_chunks=30)
    trace = Trace(np.arange(len(rates), dtype=float) * 2.0, np.array(rates), name="bursty")
    guard = GuardedPolicy(Recorder(5), BolaE())
    bola_alone = BolaE()
    config = preset("pensieve")
    guarded = run_session(guard, trace, video, config)
    assert 0 < guard.guarded_decisions < guard.decisions == video.n_chunks - 1  # the player sets chunk 0
    played = [o.quality_idx for o in guarded]
    assert played[1:3] == [5, 5]  # no error before the third chunk: the primary's top level
    assert set(played) - {5}  # and the fallback's lower levels while the guard was up
    assert run_session(bola_alone, trace, video, config) != guarded


def test_registry_form_and_the_model_file_inside() -> None:
    policy = make_agent("guarded:bba")
    assert isinstance(policy, GuardedPolicy) and policy.name == "guarded:bba"
    assert isinstance(policy.fallback, BolaE) and policy.max_error == DEFAULT_MAX_ERROR
    assert guarded_inner("Guarded:ppo:runs/A.zip") == "ppo:runs/A.zip" and guarded_inner("bba") is None
    assert unguarded("guarded:ppo:runs/A.zip") == "ppo:runs/A.zip" and unguarded("rb") == "rb"
    assert agent_model_file("guarded:ppo:runs/A.zip") == Path("runs/A.zip")
    assert agent_model_file("guarded:bba") is None
    for bad in ("guarded:", "guarded:guarded:bba"):
        with pytest.raises(ConfigError, match="give one agent to guard, as guarded:<agent>"):
            make_agent(bad)
    with pytest.raises(ConfigError, match="unknown agent 'nosuch'"):
        make_agent("guarded:nosuch")


def test_the_guard_keeps_the_primarys_fixed_ladder() -> None:
    @dataclass
    class Fixed6(Recorder):
        n_levels: int = 6

    assert GuardedPolicy(Fixed6(5)).n_levels == 6
    assert GuardedPolicy(Recorder(5)).n_levels is None
