"""The trace-shaped server under bad and heavy input: traversal, ranges, bodies, garbage, 20 clients at once."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from abr.player.agents import BrowserAgent
from abr.player.content import Content
from abr.player.server import CLIENT_HEADER, MAX_LOG_BYTES, PlayerServer, parse_range, safe_path
from abr.player.shaping import PlayerLink, TraceClock, Transfer, water_fill
from simulator.config import preset
from traces.types import Trace

from ..._requirements import require_module, require_npm_package
from .conftest import constant_trace

aiohttp = require_module("aiohttp", extra="player")  # the test client; the server needs it too

SECRET = "top-secret-outside-the-content-folder"


@pytest.fixture()
def server(player_content: Content, tmp_path: Path):  # type: ignore[no-untyped-def]
    require_npm_package("dashjs")  # the server serves dash.js
    (player_content.folder.parent / "secret.txt").write_text(SECRET)
    link = player_content.folder / "escape.txt"
    if not link.exists():
        link.symlink_to(player_content.folder.parent / "secret.txt")
    with PlayerServer(player_content, constant_trace(40.0, "fast"), BrowserAgent("bba", "bba"),
                      preset("realistic"), speed=1.0) as s:
        yield s
    link.unlink()


def raw_request(port: int, data: bytes, timeout_s: float = 10.0) -> bytes:
    """Send raw bytes to the server and read the whole answer (the server closes or we time out)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        chunks = []
        try:
            while block := sock.recv(65536):
                chunks.append(block)
                if b"\r\n\r\n" in b"".join(chunks):
                    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
                    length = [int(h.split(b":")[1]) for h in head.split(b"\r\n")
                              if h.lower().startswith(b"content-length")]
                    if length and len(body) >= length[0]:
                        break
        except TimeoutError:
            pass
    return b"".join(chunks)


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


@pytest.mark.parametrize("path", [
    "/content/../secret.txt", "/content/%2e%2e/secret.txt", "/content/..%2fsecret.txt",
    "/content/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/content//etc/passwd", "/content/escape.txt",
    "/plugin/../server.py", "/plugin/%2e%2e/server.py", "/policy/../../secret.txt", "/content/%00",
])
def test_no_file_outside_the_served_folders(server: PlayerServer, path: str) -> None:
    answer = raw_request(server.port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    assert status_of(answer) in (400, 403, 404), answer[:200]
    assert SECRET.encode() not in answer and b"root:" not in answer and b"def " not in answer


def test_ranges_good_bad_and_unsatisfiable(server: PlayerServer, player_content: Content) -> None:
    manifest = player_content.manifest.read_bytes()

    async def go() -> list[tuple[int, bytes, str]]:
        async with aiohttp.ClientSession() as http:
            out = []
            for header in ["bytes=0-9", "bytes=-5", "bytes=abc", "bytes=5-2", "bytes=0-1,4-5",
                           f"bytes={len(manifest) + 10}-"]:
                async with http.get(f"{server.url}content/manifest.mpd", headers={"Range": header}) as r:
                    out.append((r.status, await r.read(), r.headers.get("Content-Range", "")))
            return out

    answers = asyncio.run(go())
    assert answers[0][:2] == (206, manifest[:10]) and answers[0][2] == f"bytes 0-9/{len(manifest)}"
    assert answers[1][:2] == (206, manifest[-5:])
    assert [a[0] for a in answers[2:5]] == [400, 400, 400]
    assert answers[5][0] == 416 and answers[5][2] == f"bytes */{len(manifest)}"


def test_bodies_garbage_methods_and_logs(server: PlayerServer) -> None:
    port = server.port
    # A declared body over the limit is refused before it is read (no hang waiting for a terabyte).
    huge = raw_request(port, b"POST /session/log HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                             b"Content-Length: 1000000000000\r\n\r\n{}")
    assert status_of(huge) == 413
    assert status_of(raw_request(port, b"GARBAGE\x00\x01 nonsense\r\n\r\n")) == 400
    assert status_of(raw_request(port, b"PUT /content/manifest.mpd HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")) == 405

    async def go() -> list[tuple[int, str]]:
        async with aiohttp.ClientSession() as http:
            out = []
            async with http.post(f"{server.url}session/log", data=b"x" * (MAX_LOG_BYTES + 1)) as r:
                out.append((r.status, await r.text()))
            async with http.post(f"{server.url}session/log", data=b"{not json") as r:
                out.append((r.status, await r.text()))
            bad = {"session_id": server.session.session_id, "agent": "bba", "speed": 1, "decisions": [],
                   "segments": [{"chunk": 0, "quality": 9, "bytes": 1, "request_ms": 1, "end_ms": 2}], "events": []}
            async with http.post(f"{server.url}session/log", data=json.dumps(bad)) as r:
                out.append((r.status, await r.text()))
            bad["speed"] = "fast"
            async with http.post(f"{server.url}session/log", data=json.dumps(bad)) as r:
                out.append((r.status, await r.text()))
            async with http.get(f"{server.url}healthz") as r:
                out.append((r.status, await r.text()))
            return out

    answers = asyncio.run(go())
    assert answers[0][0] == 413
    assert answers[1][0] == 400 and "not JSON" in answers[1][1]
    assert answers[2][0] == 400 and "segments[0].quality" in answers[2][1]
    assert answers[3][0] == 400 and "'speed'" in answers[3][1]
    assert answers[4][0] == 200 and server.session.log is None  # nothing bad was recorded


def test_twenty_players_at_once_share_the_link(server: PlayerServer, player_content: Content) -> None:
    # 20 Python clients each fetch the manifest and 3 segments of level 0 at once over a 40 Mbit/s link. The
    # sharing is judged from the server's own accounting (/session/stats), not from the clients' clocks.
    files = [player_content.folder / f"chunk-0-{i:05d}.m4s" for i in (1, 2, 3)]
    want = [f.read_bytes() for f in files]

    async def client(http: aiohttp.ClientSession, name: str) -> bool:
        async with http.get(f"{server.url}content/manifest.mpd") as r:
            assert r.status == 200
        ok = True
        for f, data in zip(files, want):
            async with http.get(f"{server.url}content/{f.name}", headers={CLIENT_HEADER: name}) as r:
                ok &= r.status == 200 and await r.read() == data
        return ok

    async def go() -> tuple[list[bool], dict[str, Any]]:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            results = await asyncio.gather(*(client(http, f"player-{i}") for i in range(20)))
            async with http.get(f"{server.url}session/stats") as r:
                return list(results), await r.json()

    results, stats = asyncio.run(go())
    assert all(results)
    # Every segment went through the link: each player was granted exactly its 3 segments, no more.
    bits = 8.0 * sum(len(d) for d in want)
    assert stats["transfers_by_client"] == {f"player-{i}": 3 for i in range(20)}
    assert stats["granted_bits_by_client"] == pytest.approx({f"player-{i}": bits for i in range(20)}, rel=1e-9)
    assert stats["granted_bits"] <= stats["offered_bits"] + 1e-6  # never faster than the link
    # The link was contended (most players backlogged at once, for many ticks) and shared fairly: in every tick
    # the transfers still short of their size got the same grant.
    assert stats["max_backlogged"] >= 10 and stats["shared_ticks"] >= 5, stats
    assert stats["max_backlogged_grant_ratio"] == pytest.approx(1.0, abs=1e-9), stats


def test_the_accounting_sees_an_unfair_link(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the twenty-players test reads would catch a link that serves the first transfer first."""
    import abr.player.shaping as shaping

    def first_come_first_served(capacity: float, demands: list[float]) -> list[float]:
        grants, left = [], capacity
        for demand in demands:
            grants.append(min(demand, left))
            left -= grants[-1]
        return grants

    monkeypatch.setattr(shaping, "water_fill", first_come_first_served)
    link = PlayerLink(constant_trace(8.0, "eight"), payload_efficiency=1.0, speed=1.0)
    link._start_wall = 0.0
    link._active = [Transfer(200_000, f"s{i}", client=f"c{i}") for i in range(3)]
    for tick in range(1, 11):
        link.grant(tick * 0.01)  # 80 kbit (10 kB) a tick: the first transfer takes it all
    assert link.stats.granted_bits_by_client == {"c0": pytest.approx(800_000.0), "c1": 0.0, "c2": 0.0}
    assert link.stats.max_backlogged == 3 and link.stats.max_backlogged_grant_ratio == float("inf")


@given(capacity=st.floats(0.0, 1e7), demands=st.lists(st.floats(0.0, 1e7), max_size=30))
def test_water_fill_never_exceeds_capacity_or_demand(capacity: float, demands: list[float]) -> None:
    grants = water_fill(capacity, demands)
    assert sum(grants) <= capacity * (1 + 1e-12) + 1e-9
    assert all(0 <= g <= d + 1e-9 for g, d in zip(grants, demands))
    if sum(demands) <= capacity:
        assert np.allclose(grants, demands)
    else:  # max-min fair: the capacity is used, and anyone short got at least everyone else's grant
        assert sum(grants) == pytest.approx(capacity, rel=1e-9)
        short = [g for g, d in zip(grants, demands) if g < d - 1e-6]
        assert all(s >= max(grants) - 1e-6 for s in short)


@given(sizes=st.lists(st.integers(1, 2_000_000), min_size=1, max_size=12),
       steps=st.lists(st.floats(0.001, 0.5), min_size=1, max_size=40),
       rates=st.lists(st.floats(0.0, 5e7), min_size=2, max_size=10))
def test_shared_link_never_grants_more_than_the_trace_offers(sizes: list[int], steps: list[float],
                                                             rates: list[float]) -> None:
    rates[1] = max(rates[1], 1e3)  # the trace must deliver something (sample 0 only marks the start)
    trace = Trace(np.arange(len(rates), dtype=float), np.array(rates), name="t")
    link = PlayerLink(trace, speed=1.0)
    link._start_wall = 0.0
    link._active = [Transfer(size, str(i)) for i, size in enumerate(sizes)]
    now = 0.0
    for dt in steps:
        before = link.granted_bits
        start_s = now
        now += dt
        link.grant(now)
        offered = link.capacity.bits_until(now) - link.capacity.bits_until(start_s)
        assert link.granted_bits - before <= offered * (1 + 1e-9) + 1e-6
        assert all(0 <= t.granted <= t.size for t in link._active)
    assert link.granted_bits <= link.capacity.bits_until(now) * (1 + 1e-9) + 1e-6


def test_trace_clock_matches_the_simulators_looping_link() -> None:
    trace = Trace(np.array([0.0, 2.0, 3.0]), np.array([0.0, 1e6, 4e6]), name="t")
    clock = TraceClock(trace, payload_efficiency=0.5)
    assert clock.bits_until(2.0) == 1e6 and clock.bits_until(3.0) == 3e6 and clock.bits_until(6.0) == 6e6
    assert clock.rate_at(1.0) == 0.5e6 and clock.rate_at(2.5) == 2e6


def test_safe_path_and_parse_range_units(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.txt").write_text("x")
    assert safe_path(tmp_path / "a", "f.txt") is not None
    assert safe_path(tmp_path / "a", "../a/f.txt") is not None  # stays inside: fine
    assert safe_path(tmp_path / "a", "../b.txt") is None
    with pytest.raises(IndexError):
        parse_range("bytes=-0", 10)
    assert parse_range("bytes=5-100", 10) == (5, 10)


def test_serve_writes_each_posted_session_in_the_evaluate_schema(player_content: Content, tmp_path: Path) -> None:
    require_npm_package("dashjs")
    from abr.player.browser import session_writer
    from simulator.qoe import QoEWeights

    trace = constant_trace(5.0, "five")
    writer = session_writer(tmp_path / "serve", agent="bba", trace=trace, content=player_content, qoe=QoEWeights())
    with PlayerServer(player_content, trace, BrowserAgent("bba", "bba"), preset("realistic"), on_log=writer) as s:
        async def go() -> int:
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{s.url}session/config") as r:
                    config = await r.json()
                t0 = 1e12
                log = {"session_id": config["session_id"], "agent": "bba", "speed": 1.0, "reason": "ended",
                       "decisions": [{"chunk": 0, "quality": 0, "buffer_s": 0.0, "t_ms": t0, "decide_ms": 0.01}],
                       "segments": [{"chunk": 0, "quality": 0, "bytes": player_content.sizes_bytes[0][0],
                                     "request_ms": t0, "end_ms": t0 + 400.0}],
                       "events": [{"type": "playing", "t_ms": t0 + 450.0}]}
                async with http.post(f"{s.url}session/log", data=json.dumps(log)) as r:
                    return r.status

        assert asyncio.run(go()) == 200
    rows = (tmp_path / "serve" / "001" / "sessions.csv").read_text().splitlines()
    assert len(rows) == 2 and rows[1].startswith("bba,player,five,")
    assert (tmp_path / "serve" / "001" / "chunks.csv").read_text().count("\n") == 2
