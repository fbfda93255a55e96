"""The player's log turned into chunk records: times in session seconds, stalls, startup, buffer, idle."""

from __future__ import annotations

import pytest

from abr.player.session_log import LogError, chunk_outcomes, is_complete, parse_log, undecided_segments
from traces.types import Video

VIDEO = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=3)


def log(speed: float = 2.0) -> dict:
    t0 = 1_000_000.0  # epoch ms of the first request
    return {
        "session_id": "s", "agent": "bba", "speed": speed, "reason": "ended",
        "decisions": [{"chunk": 0, "quality": 0, "buffer_s": 0.0, "t_ms": t0, "decide_ms": 0.01},
                      {"chunk": 1, "quality": 1, "buffer_s": 3.5, "t_ms": t0 + 600, "decide_ms": 0.02},
                      {"chunk": 2, "quality": 1, "buffer_s": 1.0, "t_ms": t0 + 3000, "decide_ms": 0.02}],
        "segments": [{"chunk": 0, "quality": 0, "bytes": 500_000, "request_ms": t0, "end_ms": t0 + 500},
                     {"chunk": 1, "quality": 1, "bytes": 1_000_000, "request_ms": t0 + 600, "end_ms": t0 + 2900},
                     {"chunk": 2, "quality": 1, "bytes": 1_000_000, "request_ms": t0 + 3000, "end_ms": t0 + 3500}],
        "events": [{"type": "waiting", "t_ms": t0 - 10}, {"type": "playing", "t_ms": t0 + 550},
                   {"type": "waiting", "t_ms": t0 + 2500}, {"type": "playing", "t_ms": t0 + 2950},
                   {"type": "ended", "t_ms": t0 + 9000}],
        "anomalies": [],
    }


def test_outcomes_are_in_session_seconds_with_the_simulators_meanings() -> None:
    o = chunk_outcomes(parse_log(log(), n_chunks=3, n_levels=2), VIDEO)
    assert [x.chunk_idx for x in o] == [0, 1, 2] and [x.quality_idx for x in o] == [0, 1, 1]
    # speed 2: 500 wall ms = 1.0 session s
    assert o[0].request_time_s == 0.0 and o[0].finish_time_s == pytest.approx(1.0)
    assert o[0].download_time_s == pytest.approx(1.0) and o[0].throughput_bps == pytest.approx(4e6)
    assert o[1].request_time_s == pytest.approx(1.2) and o[1].download_time_s == pytest.approx(4.6)
    # Startup: first request to the first "playing" (550 ms wall = 1.1 s), charged to chunk 0 (requested
    # before it, up to the next request at 1.2 s).
    assert o[0].startup_delay_s == pytest.approx(1.1) and o[1].startup_delay_s == 0.0
    # The stall from 2500 to 2950 ms (0.9 s) began while chunk 1 downloaded (it ended at 2900 ms).
    assert o[1].rebuffer_s == pytest.approx(0.9) and o[0].rebuffer_s == 0.0 and o[2].rebuffer_s == 0.0
    # Buffer after a chunk: the level at the next decision; the last: its decision's level - download + 4 s.
    assert o[0].buffer_s == 3.5 and o[1].buffer_s == 1.0
    assert o[2].buffer_s == pytest.approx(max(1.0 - 1.0, 0.0) + 4.0)
    # Idle: the gap to the next request (100 ms wall = 0.2 s).
    assert o[0].idle_s == pytest.approx(0.2) and o[2].idle_s == 0.0
    assert is_complete(log(), 3) and undecided_segments(log()) == []


def test_undecided_and_incomplete_sessions_are_seen() -> None:
    bad = log()
    bad["segments"][2]["quality"] = 0  # downloaded at another quality than decided
    assert undecided_segments(bad) == [2]
    short = log()
    short["segments"].pop()
    assert not is_complete(short, 3)
    stopped = log()
    stopped["reason"] = "error"
    assert not is_complete(stopped, 3)


@pytest.mark.parametrize(("change", "field"), [
    (lambda d: d.pop("session_id"), "'session_id'"),
    (lambda d: d.update(speed=0), "'speed'"),
    (lambda d: d.update(segments={}), "'segments' must be a list"),
    (lambda d: d["segments"][1].update(bytes=float("nan")), "'segments[1].bytes'"),
    (lambda d: d["segments"][0].update(chunk=7), "'segments[0].chunk'=7"),
    (lambda d: d["decisions"][2].update(buffer_s="full"), "'decisions[2].buffer_s'"),
    (lambda d: d["events"].append({"type": 3, "t_ms": 1}), "'events[5].type'"),
    (lambda d: d["segments"][0].update(quality=True), "'segments[0].quality'"),
])
def test_malformed_logs_are_refused_naming_the_field(change, field: str) -> None:  # type: ignore[no-untyped-def]
    data = log()
    change(data)
    with pytest.raises(LogError, match=field.replace("[", r"\[").replace("]", r"\]")):
        parse_log(data, n_chunks=3, n_levels=2)
