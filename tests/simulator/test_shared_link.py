"""The shared bottleneck (processor sharing) and the multi-player engine on it."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from agents.registry import make_agent
from simulator.config import preset
from simulator.errors import ConfigError, SimulationInvariantError
from simulator.fast import EQUIVALENCE_ATOL, EQUIVALENCE_RTOL
from simulator.link import MAX_TRACE_PASSES
from simulator.rollout import run_session
from simulator.shared_link import SharedLink
from simulator.shared_session import PlayerSpec, jain_index, run_shared
from traces.readers import read_trace_dir
from traces.types import Trace, Video

from ._strategies import traces, videos

REALISTIC = preset("realistic")


def _constant(rate_bps: float, duration_s: float = 50.0) -> Trace:
    return Trace(np.array([0.0, duration_s]), np.array([rate_bps, rate_bps]), name="constant")


def _single_session(policy_name: str, trace: Trace, video: Video) -> list:
    return run_session(make_agent(policy_name), trace, video, REALISTIC)


@pytest.mark.parametrize("policy_name", ["bba", "fixed-top", "bola", "rb"])
def test_one_player_on_the_shared_link_is_the_single_session_engine(data_dir: Path, policy_name: str) -> None:
    video = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=30)
    for trace in read_trace_dir(data_dir / "traces" / "norway" / "test")[:4]:
        expected = _single_session(policy_name, trace, video)
        got = run_shared(trace, [PlayerSpec(make_agent(policy_name), video)], REALISTIC).players[0].outcomes
        assert len(got) == len(expected)
        for a, b in zip(expected, got):
            for name in a._fields:
                x, y = getattr(a, name), getattr(b, name)
                assert abs(x - y) <= EQUIVALENCE_RTOL * max(abs(x), abs(y)) + EQUIVALENCE_ATOL, (name, x, y)


@pytest.mark.parametrize("n_players", [1, 2, 3, 5])
@pytest.mark.parametrize("policy_name", ["bba", "fixed:2"])
def test_identical_players_on_a_constant_link_each_get_one_nth(n_players: int, policy_name: str) -> None:
    capacity_bps = 6e6 * REALISTIC.payload_efficiency
    video = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=40)
    specs = [PlayerSpec(make_agent(policy_name), video) for _ in range(n_players)]
    run = run_shared(_constant(6e6), specs, REALISTIC, record_rates=True)
    # Every transfer, whenever active, had exactly capacity / N (all players are in lock-step).
    shares = [rate for interval in run.rate_log for rate in interval.rates_bps.values()]
    assert shares and np.allclose(shares, capacity_bps / n_players, rtol=1e-12)
    # Measured on each player's own chunks: payload over transfer time (the RTT excluded).
    for player in run.players:
        transfer_s = sum(o.download_time_s - REALISTIC.link_rtt_s for o in player.outcomes)
        assert player.downloaded_bits / transfer_s == pytest.approx(capacity_bps / n_players, rel=1e-9)
    bitrates = [p.avg_bitrate_bps for p in run.players]
    assert bitrates == pytest.approx([bitrates[0]] * n_players, rel=1e-12)
    assert jain_index(bitrates) == pytest.approx(1.0)


def test_more_players_get_lower_bitrates_with_an_adaptive_policy() -> None:
    video = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=60)
    rates = [np.mean([p.avg_bitrate_bps for p in run_shared(
        _constant(5e6), [PlayerSpec(make_agent("rb"), video) for _ in range(n)], REALISTIC).players])
        for n in (1, 2, 4)]
    assert rates[0] > rates[1] > rates[2]


def test_staggered_players_share_fairly_over_a_long_session() -> None:
    video = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=150)
    specs = [PlayerSpec(make_agent("bba"), video, start_time_s=start) for start in (0.0, 13.0, 31.0)]
    run = run_shared(_constant(9e6, 3600.0), specs, REALISTIC)
    assert jain_index([p.avg_bitrate_bps for p in run.players]) > 0.98


@st.composite
def players(draw: st.DrawFn) -> list[tuple[float, int, Video]]:
    n = draw(st.integers(1, 4))
    return [(draw(st.sampled_from([0.0, 0.0, 1.0]) | st.floats(0.0, 40.0)), draw(st.integers(0, 5)),
             draw(videos())) for _ in range(n)]


def _payload_bits_per_pass(trace: Trace, efficiency: float) -> float:
    """Payload one pass over ``trace`` carries, summed interval by interval (sample ``i``'s rate holds over
    ``(t[i-1], t[i]]``), written here independently of the links' own sums."""
    t, r = trace.times_s.tolist(), trace.throughput_bps.tolist()
    return math.fsum(r[i] * (t[i] - t[i - 1]) for i in range(1, len(t))) * efficiency


def _largest_requested_bits(specs: list[tuple[float, int, Video]]) -> float:
    """The largest chunk fixed players ask for: each one downloads every chunk of its level."""
    return max(float(video.chunk_sizes_bits[:, min(level, video.n_levels - 1)].max()) for _, level, video in specs)


def _fixed_players(specs: list[tuple[float, int, Video]]) -> list[PlayerSpec]:
    return [PlayerSpec(make_agent(f"fixed:{min(level, video.n_levels - 1)}"), video, start_time_s=start)
            for start, level, video in specs]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces(may_be_slow=False), specs=players(), efficiency=st.sampled_from([0.95, 1.0]),
       slow_factor=st.sampled_from([1.0, 1.0, 1.0, 1.0, 1e-5]))
def test_the_link_never_exceeds_capacity_and_delivers_every_bit(
        trace: Trace, specs: list, efficiency: float, slow_factor: float) -> None:
    trace = trace.scaled(slow_factor)  # 1e-5: far too slow, so the run must be refused
    config = REALISTIC.replace(payload_efficiency=efficiency, max_buffer_s=12.0)
    player_specs = _fixed_players(specs)
    # Refused exactly when a requested chunk needs more than MAX_TRACE_PASSES passes over the trace (what the
    # single engine refuses); any other SimulationInvariantError is a bug and fails the test.
    largest_bits = _largest_requested_bits(specs)
    limit_bits = MAX_TRACE_PASSES * _payload_bits_per_pass(trace, efficiency)
    assume(not math.isclose(largest_bits, limit_bits, rel_tol=1e-9))  # a tie is decided by rounding
    event("refused" if largest_bits > limit_bits else "played")
    if largest_bits > limit_bits:
        with pytest.raises(SimulationInvariantError, match=f"more than {MAX_TRACE_PASSES} passes"):
            run_shared(trace, player_specs, config, record_rates=True)
        return
    run = run_shared(trace, player_specs, config, record_rates=True)
    for interval in run.rate_log:
        total_bps = sum(interval.rates_bps.values())
        assert interval.end_s >= interval.start_s
        # Never above capacity, and work-conserving: while anything is active the shares use all of it.
        assert total_bps <= interval.capacity_bps * (1 + 1e-12)
        assert total_bps == pytest.approx(interval.capacity_bps, rel=1e-12)
        assert len(set(interval.rates_bps.values())) <= 1  # equal shares
    sent_bits = sum(sum(o.size_bits for o in p.outcomes) for p in run.players)
    wanted_bits = sum(float(video.chunk_sizes_bits[:, min(level, video.n_levels - 1)].sum())
                      for _, level, video in specs)
    assert sent_bits == pytest.approx(wanted_bits, rel=1e-12)
    assert run.delivered_bits == pytest.approx(wanted_bits, rel=1e-12)
    carried_bits = sum(r * (i.end_s - i.start_s) for i in run.rate_log for r in i.rates_bps.values())
    assert carried_bits == pytest.approx(wanted_bits, rel=1e-6)
    for (start, _, _), player in zip(specs, run.players):
        assert player.start_time_s == start
        assert all(o.download_time_s > 0 and o.rebuffer_s >= 0 for o in player.outcomes)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trace=traces(may_be_slow=False), level=st.integers(0, 5), video=videos(),
       passes_needed=st.sampled_from([0.8, 0.999, 1.001, 1.25]) | st.floats(0.7, 1.4))
def test_a_refusal_happens_exactly_when_a_chunk_needs_more_than_the_allowed_passes(
        trace: Trace, level: int, video: Video, passes_needed: float) -> None:
    # Scale the trace so that the largest requested chunk needs passes_needed x MAX_TRACE_PASSES passes.
    video = Video(video.bitrates_bps, video.chunk_duration_s, video.chunk_sizes_bits[:3], name="short")
    specs = [(0.0, level, video)]
    largest_bits = _largest_requested_bits(specs)
    factor = largest_bits / (passes_needed * MAX_TRACE_PASSES * _payload_bits_per_pass(trace, 1.0))
    slowed = trace.scaled(factor)
    assume(not math.isclose(passes_needed, 1.0, rel_tol=1e-6))
    event("refused" if passes_needed > 1 else "played")
    if passes_needed > 1:
        with pytest.raises(SimulationInvariantError, match=f"more than {MAX_TRACE_PASSES} passes"):
            run_shared(slowed, _fixed_players(specs), REALISTIC.replace(payload_efficiency=1.0))
        return
    player = run_shared(slowed, _fixed_players(specs), REALISTIC.replace(payload_efficiency=1.0)).players[0]
    # Played to the end, the largest chunk taking at least (passes_needed x MAX_TRACE_PASSES - 1) whole passes.
    assert [o.chunk_idx for o in player.outcomes] == list(range(video.n_chunks))
    assert max(o.download_time_s for o in player.outcomes) >= (passes_needed * MAX_TRACE_PASSES - 1) * (
        trace.times_s[-1] - trace.times_s[0])


def test_a_player_that_runs_out_of_patience_stops_and_frees_the_link() -> None:
    video = Video.cbr([300e3, 4300e3], chunk_duration_s=4.0, n_chunks=20)
    impatient = PlayerSpec(make_agent("fixed-top"), video, startup_patience_s=2.0, name="impatient")
    patient = PlayerSpec(make_agent("fixed-top"), video, name="patient")
    run = run_shared(_constant(4e6, 1000.0), [impatient, patient], REALISTIC)
    left, stayed = run.players
    assert left.is_abandoned and len(left.outcomes) == 1 and left.startup_delay_s > 2.0
    assert not stayed.is_abandoned and len(stayed.outcomes) == video.n_chunks
    # After the impatient player left, the other one has the whole link.
    later = stayed.outcomes[5]
    assert later.size_bits / (later.download_time_s - REALISTIC.link_rtt_s) == pytest.approx(
        4e6 * REALISTIC.payload_efficiency, rel=1e-9)


def test_a_cancelled_transfer_releases_its_share() -> None:
    env = simpy.Environment()
    link = SharedLink(env, _constant(2e6, 100.0), payload_efficiency=1.0)
    a, b = link.port(), link.port()
    long = env.process(a.transfer(100e6))
    short = env.process(b.transfer(4e6))

    def cancel() -> object:
        yield env.timeout(1.0)
        long.interrupt("viewer left")

    env.process(cancel())
    long.defused = True
    with pytest.raises(simpy.Interrupt):
        env.run(until=long)
    env.run(until=short)
    # 1 s at 1 Mbit/s (shared), then the remaining 3 Mbit alone at 2 Mbit/s.
    assert short.value == pytest.approx(2.5)


@pytest.mark.parametrize("name", ["pensieve", "pensieve-train"])
def test_single_client_conventions_are_refused(name: str) -> None:
    video = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=2)
    with pytest.raises(ConfigError, match="shared link"):
        run_shared(_constant(1e6), [PlayerSpec(make_agent("bba"), video)], preset(name))


def test_bad_player_inputs_are_named() -> None:
    video = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=2)
    with pytest.raises(ConfigError, match="start_time_s=-1"):
        run_shared(_constant(1e6), [PlayerSpec(make_agent("bba"), video, start_time_s=-1.0)], REALISTIC)
    with pytest.raises(ConfigError, match="one per player"):
        run_shared(_constant(1e6), [PlayerSpec(make_agent("bba"), video)], REALISTIC, rngs=[])
    assert math.isclose(jain_index([]), 1.0)
