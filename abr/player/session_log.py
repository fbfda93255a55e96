"""The real player's session log: checked on arrival, turned into the simulator's chunk records.

The page posts one JSON object (``player.js``): ``session_id``, ``agent``, ``speed``, ``reason``, ``error``,
``decisions`` (``chunk, quality, buffer_s, t_ms, decide_ms, policy``: one per segment the rule decided),
``segments`` (``chunk, quality, bytes, request_ms, first_byte_ms, end_ms, decided``: one per video
segment dash.js downloaded), ``events`` (``type, t_ms, media_s``: the video element's ``waiting``,
``playing``, ``ended``, ...) and ``anomalies``. Times are wall-clock epoch milliseconds.

:func:`chunk_outcomes` rebuilds the :class:`~simulator.records.ChunkOutcome` of every segment in session
seconds (wall seconds since the first segment request x ``speed``), with the simulator's meanings:

* ``download_time_s`` from the request to the last byte as dash.js saw them (RTT included);
* ``buffer_s``: the buffer level at the next segment's decision (after any idle time); for the last
  segment, the level at its decision less its download time plus one segment (the simulator's update);
* ``idle_s``: the gap between a segment's last byte and the next request;
* ``startup_delay_s``: the wait from the first request to the first ``playing`` event, spread over the
  segments requested before it; ``rebuffer_s``: every later stall (``waiting`` to ``playing``), charged
  to the segment being downloaded when it began (the first one whose last byte came after).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from simulator.records import ChunkOutcome
from traces.types import Video

MAX_RECORDS = 100_000


class LogError(ValueError):
    """A session log that is malformed; the message names the field."""


_SCHEMAS: dict[str, dict[str, type | tuple[type, ...]]] = {
    "decisions": {"chunk": int, "quality": int, "buffer_s": (int, float), "t_ms": (int, float),
                  "decide_ms": (int, float)},
    "segments": {"chunk": int, "quality": int, "bytes": (int, float), "request_ms": (int, float),
                 "end_ms": (int, float)},
    "events": {"type": str, "t_ms": (int, float)},
}


def _number_ok(value: Any, kinds: type | tuple[type, ...]) -> bool:
    if isinstance(value, bool) or not isinstance(value, kinds):
        return False
    return not isinstance(value, float) or math.isfinite(value)


def parse_log(data: Any, *, n_chunks: int, n_levels: int) -> dict[str, Any]:
    """Check a posted log (see the module docstring) and return it; raises :class:`LogError` naming the field."""
    if not isinstance(data, dict):
        raise LogError(f"expected a JSON object, got {type(data).__name__}")
    for key in ("session_id", "agent"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise LogError(f"'{key}' must be a non-empty string")
    speed: Any = data.get("speed")
    if not _number_ok(speed, (int, float)) or not speed > 0:
        raise LogError(f"'speed' must be a number > 0, got {speed!r}")
    for name, schema in _SCHEMAS.items():
        _check_records(data.get(name), name, schema)
    for i, seg in enumerate(data["segments"]):
        if not 0 <= seg["chunk"] < n_chunks:
            raise LogError(f"'segments[{i}].chunk'={seg['chunk']} is not a segment of the {n_chunks}-segment video")
        if not 0 <= seg["quality"] < n_levels:
            raise LogError(f"'segments[{i}].quality'={seg['quality']} is not a level of the {n_levels}-level ladder")
    for key in ("anomalies",):
        if not isinstance(data.get(key, []), list):
            raise LogError(f"'{key}' must be a list")
    return data


def _check_records(records: Any, name: str, schema: Mapping[str, type | tuple[type, ...]]) -> None:
    if not isinstance(records, list):
        raise LogError(f"'{name}' must be a list")
    if len(records) > MAX_RECORDS:
        raise LogError(f"'{name}' has {len(records)} records; at most {MAX_RECORDS}")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise LogError(f"'{name}[{i}]' must be an object")
        for key, kinds in schema.items():
            if not _number_ok(record.get(key), kinds):
                raise LogError(f"'{name}[{i}].{key}' is missing or not a finite {_kind_name(kinds)}")


def _kind_name(kinds: type | tuple[type, ...]) -> str:
    return "string" if kinds is str else "integer" if kinds is int else "number"


def is_complete(log: Mapping[str, Any], n_chunks: int) -> bool:
    """Whether every segment of the video was downloaded exactly once and playback ended."""
    chunks = sorted(s["chunk"] for s in log["segments"])
    return chunks == list(range(n_chunks)) and log.get("reason") == "ended"


def _stalls(events: Sequence[Mapping[str, Any]]) -> tuple[float | None, list[tuple[float, float]]]:
    """The first ``playing`` time and the stall intervals after it (epoch ms)."""
    play_start: float | None = None
    stalls: list[tuple[float, float]] = []
    waiting_since: float | None = None
    for e in sorted(events, key=lambda e: e["t_ms"]):
        kind, t = e["type"], float(e["t_ms"])
        if kind == "playing":
            if play_start is None:
                play_start = t
            elif waiting_since is not None:
                stalls.append((waiting_since, t))
            waiting_since = None
        elif kind == "waiting" and play_start is not None and waiting_since is None:
            waiting_since = t
        elif kind in ("ended", "finish") and waiting_since is not None:
            stalls.append((waiting_since, t))
            waiting_since = None
    return play_start, stalls


def chunk_outcomes(log: Mapping[str, Any], video: Video) -> list[ChunkOutcome]:
    """The chunk records of a real session (see the module docstring), in segment order."""
    speed = float(log["speed"])
    first: dict[int, Mapping[str, Any]] = {}
    for seg in log["segments"]:
        first.setdefault(int(seg["chunk"]), seg)
    segs = [first[k] for k in sorted(first)]
    if not segs:
        return []
    decisions = {int(d["chunk"]): d for d in log["decisions"]}
    t0 = float(segs[0]["request_ms"])

    def session_s(t_ms: float) -> float:
        return (t_ms - t0) / 1000.0 * speed

    play_start, stalls = _stalls(log["events"])
    play_start_s = session_s(play_start) if play_start is not None else math.inf
    requests = [session_s(float(s["request_ms"])) for s in segs]
    finishes = [session_s(float(s["end_ms"])) for s in segs]
    rebuffer = [0.0] * len(segs)
    for start_ms, end_ms in stalls:
        start = session_s(start_ms)
        k = next((i for i, f in enumerate(finishes) if f >= start), len(segs) - 1)
        rebuffer[k] += session_s(end_ms) - start
    outcomes: list[ChunkOutcome] = []
    for i, seg in enumerate(segs):
        chunk, quality = int(seg["chunk"]), int(seg["quality"])
        request, finish = requests[i], finishes[i]
        download = max(finish - request, 1e-9)
        size_bits = float(seg["bytes"]) * 8.0
        next_request = requests[i + 1] if i + 1 < len(segs) else finish
        startup = max(0.0, min(play_start_s, next_request) - request) if request < play_start_s else 0.0
        nxt = decisions.get(chunk + 1)
        if nxt is not None:
            buffer_s = float(nxt["buffer_s"])
        else:
            own = decisions.get(chunk)
            before = float(own["buffer_s"]) if own is not None else 0.0
            buffer_s = max(before - download, 0.0) + video.chunk_duration_s
        outcomes.append(ChunkOutcome(
            chunk_idx=chunk, quality_idx=quality, bitrate_bps=float(video.bitrates_bps[quality]),
            size_bits=size_bits, request_time_s=request, finish_time_s=finish, download_time_s=download,
            throughput_bps=size_bits / download, rebuffer_s=rebuffer[i], startup_delay_s=startup,
            buffer_s=buffer_s, idle_s=max(next_request - finish, 0.0),
        ))
    return outcomes


def decision_times_ms(log: Mapping[str, Any]) -> list[float]:
    """The time each decision took in the browser, in milliseconds."""
    return [float(d["decide_ms"]) for d in log["decisions"]]


def undecided_segments(log: Mapping[str, Any]) -> list[int]:
    """Segments whose downloaded quality is not the quality the rule decided for them (should be empty)."""
    decided = {int(d["chunk"]): int(d["quality"]) for d in log["decisions"]}
    return [int(s["chunk"]) for s in log["segments"] if decided.get(int(s["chunk"])) != int(s["quality"])]
