"""The SimPy core against hand-computed downloads, buffers and idle periods."""

from __future__ import annotations

import math

import numpy as np
import pytest

from simulator import ConfigError, SimConfig, SimulationInvariantError, preset
from simulator.des import Session
from traces.types import Trace, Video

EFF = 0.95
RTT_S = 0.08


def test_first_chunk_inside_one_interval(step_trace: Trace, cbr_video: Video) -> None:
    session = Session(step_trace, cbr_video, preset("pensieve"))
    assert session.forced_quality_idx == 1
    out = session.step(1)
    transfer_s = 3e6 / 1e6 / EFF
    assert out.download_time_s == pytest.approx(transfer_s + RTT_S, rel=1e-12)
    assert out.rebuffer_s == pytest.approx(transfer_s + RTT_S, rel=1e-12)  # empty buffer: all of it stalls
    assert out.buffer_s == 4.0
    assert out.throughput_bps == pytest.approx(3e6 / (transfer_s + RTT_S), rel=1e-12)
    # The trace clock does not run during the RTT in the pensieve preset; the wall clock does.
    assert session.link.clock_s == pytest.approx(transfer_s, rel=1e-12)
    assert session.env.now == pytest.approx(transfer_s + RTT_S, rel=1e-12)


def test_download_crosses_trace_changes(step_trace: Trace, cbr_video: Video) -> None:
    session = Session(step_trace, cbr_video, preset("pensieve"))
    session.step(1)
    out = session.step(5)  # 4.3 Mbit/s x 4 s = 17.2 Mbit
    first_s = 3e6 / 1e6 / EFF
    left_in_first_s = 5.0 - first_s
    sent = left_in_first_s * 1e6 * EFF + 5.0 * 1e6 * EFF
    transfer_s = left_in_first_s + 5.0 + (17.2e6 - sent) / 3e6 / EFF
    assert out.download_time_s == pytest.approx(transfer_s + RTT_S, rel=1e-12)
    assert out.rebuffer_s == pytest.approx(transfer_s + RTT_S - 4.0, rel=1e-12)
    assert out.buffer_s == 4.0
    assert out.request_time_s == pytest.approx(first_s + RTT_S, rel=1e-12)


def test_trace_loops_when_exhausted(cbr_video: Video) -> None:
    short = Trace(np.array([0.0, 2.0]), np.array([0.0, 1e6]), name="short")
    long = Trace(np.array([0.0, 1000.0]), np.array([0.0, 1e6]), name="long")
    outs = []
    for trace in (short, long):
        session = Session(trace, cbr_video, preset("pensieve"))
        outs.append([session.step(q).download_time_s for q in (1, 3, 5, 0)])
    assert outs[0] == pytest.approx(outs[1], rel=1e-12)


def test_zero_throughput_gaps_are_crossed(cbr_video: Video) -> None:
    gappy = Trace(np.array([0.0, 1.0, 3.0, 4.0]), np.array([0.0, 1e6, 0.0, 1e6]), name="gappy")
    session = Session(gappy, cbr_video, preset("pensieve"))
    out = session.step(1)  # 3 Mbit: 0.95 Mbit in (0,1], none in (1,3], 0.95 in (3,4], loop, ...
    # Per pass of 4 s the link delivers 1.9 Mbit; 3 Mbit needs one pass + 1.1 Mbit: 4 s + 1 s + 2 s + 0.1/0.95 s.
    assert out.download_time_s == pytest.approx(4.0 + 1.0 + 2.0 + (3e6 - 2.85e6) / 0.95e6 + RTT_S, rel=1e-12)


def test_idle_while_buffer_full() -> None:
    trace = Trace(np.array([0.0, 10_000.0]), np.array([0.0, 10e6]), name="fast")
    video = Video.cbr([300e3], chunk_duration_s=4.0, n_chunks=40)
    config = preset("pensieve").replace(first_chunk_quality_idx=0)
    session = Session(trace, video, config)
    outs = [session.step(0) for _ in range(40)]
    idles = [o for o in outs if o.idle_s > 0]
    assert idles, "the buffer never reached the 60 s cap"
    for prev, o in zip(outs, outs[1:]):
        assert o.request_time_s == pytest.approx(prev.finish_time_s + prev.idle_s, rel=1e-12)
    for o in idles:
        assert o.idle_s / 0.5 == pytest.approx(round(o.idle_s / 0.5))  # a multiple of 0.5 s
        assert 59.5 <= o.buffer_s <= 60.0
    # The trace clock ran on during the idle periods, so the link clock equals wall time minus RTTs.
    assert session.link.clock_s == pytest.approx(session.env.now - 40 * RTT_S, rel=1e-9)


def test_realistic_preset_separates_startup_and_runs_trace_during_rtt(step_trace: Trace, cbr_video: Video) -> None:
    session = Session(step_trace, cbr_video, preset("realistic"))
    assert session.forced_quality_idx is None
    out = session.step(0)
    transfer_s = 1.2e6 / 1e6 / EFF
    assert out.rebuffer_s == 0.0
    assert out.startup_delay_s == pytest.approx(transfer_s + RTT_S, rel=1e-12)
    assert session.link.clock_s == pytest.approx(transfer_s + RTT_S, rel=1e-12)
    second = session.step(0)
    assert second.startup_delay_s == 0.0 and second.rebuffer_s == 0.0


def test_startup_threshold_waits_for_enough_buffer(step_trace: Trace, cbr_video: Video) -> None:
    config = preset("realistic").replace(startup_threshold_s=8.0)
    session = Session(step_trace, cbr_video, config)
    first, second, third = session.step(0), session.step(0), session.step(0)
    assert first.startup_delay_s > 0 and second.startup_delay_s > 0 and third.startup_delay_s == 0.0
    assert second.buffer_s == 8.0  # nothing played before the threshold was reached
    assert third.buffer_s == pytest.approx(12.0 - third.download_time_s, rel=1e-12)


def test_noise_dilates_download_time_and_needs_a_generator(step_trace: Trace, cbr_video: Video) -> None:
    noisy = preset("pensieve-train")
    with pytest.raises(ConfigError, match="rng=np.random.default_rng"):
        Session(step_trace, cbr_video, noisy)
    a = Session(step_trace, cbr_video, noisy, rng=np.random.default_rng(7)).step(1)
    b = Session(step_trace, cbr_video, noisy, rng=np.random.default_rng(7)).step(1)
    expected_noise = np.random.default_rng(7).uniform(0.9, 1.1)
    assert a == b
    assert a.download_time_s == pytest.approx((3e6 / 1e6 / EFF + RTT_S) * expected_noise, rel=1e-12)


def test_step_rejects_bad_quality_and_finished_session(step_trace: Trace) -> None:
    video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=2)
    session = Session(step_trace, video, preset("pensieve"))
    with pytest.raises(ValueError, match="quality_idx=7 is not a level of the 2-level ladder"):
        session.step(7)
    session.step(1)
    session.step(0)
    assert session.is_done
    with pytest.raises(SimulationInvariantError, match="fully downloaded"):
        session.step(0)


def test_first_chunk_level_must_exist(step_trace: Trace) -> None:
    video = Video.cbr([1e6], chunk_duration_s=4.0, n_chunks=2)
    with pytest.raises(ConfigError, match="first_chunk_quality_idx=1 is not a level"):
        Session(step_trace, video, preset("pensieve"))


def test_video_is_truncated_to_max_chunks(step_trace: Trace) -> None:
    video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=49)
    assert Session(step_trace, video, preset("pensieve")).video.n_chunks == 48
    assert Session(step_trace, video, preset("realistic")).video.n_chunks == 49


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("max_buffer_s", -5.0, "max_buffer_s=-5.0 must be > 0"),
        ("payload_efficiency", 1.5, "payload_efficiency=1.5 must be in"),
        ("link_rtt_s", math.nan, "link_rtt_s=nan must be >= 0"),
        ("idle_quantum_s", 0.0, "idle_quantum_s=0.0 must be > 0"),
        ("max_chunks", 0, "max_chunks=0 must be >= 1"),
        ("noise_high", 0.5, "noise_high=0.5 must be >= noise_low"),
        ("first_chunk_quality_idx", -1, "first_chunk_quality_idx=-1 must be >= 0"),
    ],
)
def test_bad_config_values_name_the_field(field: str, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        SimConfig(**{field: value})


def test_unknown_preset_lists_the_choices() -> None:
    with pytest.raises(ConfigError, match="unknown preset 'pensive'; choose one of: pensieve"):
        preset("pensive")


def test_hopelessly_slow_trace_is_refused_not_walked_forever(cbr_video: Video) -> None:
    trickle = Trace(np.array([0.0, 1.0]), np.array([0.0, 100.0]), name="trickle")  # 100 bit/s
    session = Session(trickle, cbr_video, preset("pensieve"))
    with pytest.raises(SimulationInvariantError, match="'trickle' delivers 95 bits per pass.*scale it up"):
        session.step(1)
