"""End to end in a real browser: Debian's chromium (Playwright), dash.js 5 with abr's rule, the shaped server.

Three traces (low, high, a step up) x two agents (the shipped RL policy and BBA), at 4x speed.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from abr.evaluation.tables import SESSION_COLUMNS
from abr.player.browser import PlayResult, play_session, write_session
from abr.player.content import Content
from simulator.config import preset
from simulator.qoe import QoEWeights

from ..._requirements import require_module, require_npm_package
from .conftest import constant_trace, step_trace

pytestmark = pytest.mark.browser  # conftest.py checks chromium, Playwright and dash.js for these

TRACES = {
    "low": constant_trace(0.6, "low-0.6mbps"),
    "high": constant_trace(12.0, "high-12mbps"),
    "step": step_trace(0.8, 10.0, 36, "step-0.8-to-10mbps"),
}
AGENTS = ("ppo", "bba")


@pytest.fixture(scope="module")
def sessions(player_content: Content) -> dict[tuple[str, str], PlayResult]:
    return {(agent, kind): play_session(agent, trace, player_content, preset("realistic"), QoEWeights(), speed=4.0)
            for agent in AGENTS for kind, trace in TRACES.items()}


@pytest.mark.parametrize("agent", AGENTS)
@pytest.mark.parametrize("kind", list(TRACES))
def test_every_segment_is_decided_by_our_rule_and_the_log_is_complete(
        sessions: dict[tuple[str, str], PlayResult], player_content: Content, agent: str, kind: str) -> None:
    r = sessions[agent, kind]
    n = player_content.n_segments
    assert r.complete, r.log["reason"]
    assert [s["chunk"] for s in r.log["segments"]] == list(range(n))
    assert sorted(d["chunk"] for d in r.log["decisions"]) == list(range(n))
    assert r.undecided == [] and r.log["anomalies"] == []
    assert all(d["policy"] == agent for d in r.log["decisions"])
    o = r.result.outcomes
    assert [x.chunk_idx for x in o] == list(range(n))
    assert all(x.download_time_s > 0 and x.size_bits == player_content.sizes_bytes[x.chunk_idx][x.quality_idx] * 8
               for x in o)
    assert r.result.metrics.n_chunks == n and r.result.metrics.startup_delay_s > 0
    # The page times the policy back to back over the session's contexts after playback (figures: abr play).
    bench = r.benchmark
    assert bench is not None and bench["n"] == 5 * n and 0 <= bench["p50_ms"] <= bench["max_ms"]


@pytest.mark.parametrize("agent", AGENTS)
def test_qualities_follow_the_trace(sessions: dict[tuple[str, str], PlayResult], agent: str) -> None:
    def levels(kind: str) -> np.ndarray:
        return np.array([x.quality_idx for x in sessions[agent, kind].result.outcomes])

    low, high, step = levels("low"), levels("high"), levels("step")
    assert np.mean(low <= 1) >= 0.8, low            # 0.6 Mbit/s: the two lowest levels (300, 750 kbit/s)
    assert np.mean(high >= 4) >= 0.6, high          # 12 Mbit/s: mostly the two highest
    assert step[-5:].mean() >= step[:5].mean() + 2, step  # up after the step
    # Measured throughput follows the link (payload 95% of the trace), after the first segment.
    tput = np.array([x.throughput_bps for x in sessions[agent, "low"].result.outcomes[1:]])
    assert 0.6e6 * 0.95 * 0.75 < np.median(tput) <= 0.6e6 * 0.95 * 1.02


def test_sessions_are_written_in_the_evaluate_schema(sessions: dict[tuple[str, str], PlayResult],
                                                      tmp_path: Path) -> None:
    files = write_session(list(sessions.values()), tmp_path)
    with open(files["sessions"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == SESSION_COLUMNS and len(rows) == len(sessions)
    by = {(r["agent"], r["trace"]): r for r in rows}
    for (agent, kind), result in sessions.items():
        row = by[agent, TRACES[kind].name]
        assert float(row["avg_bitrate_kbps"]) == pytest.approx(result.result.metrics.avg_bitrate_bps / 1e3)
    with open(files["decisions"], newline="") as f:
        decisions = list(csv.DictReader(f))
    assert len(decisions) == sum(len(r.log["decisions"]) for r in sessions.values())


def test_onnx_runtime_web_backend_decides_and_agrees_with_the_json_network(player_content: Content) -> None:
    require_npm_package("onnxruntime-web")
    require_module("onnx", extra="export")  # the policy is exported to ONNX for the page
    r = play_session("ppo", TRACES["step"], player_content, preset("realistic"), QoEWeights(), speed=4.0,
                     backend="onnx")
    assert r.complete and r.undecided == []
    decisions = r.log["decisions"]
    assert [d["backend"] for d in decisions] == ["onnx"] * player_content.n_segments
    assert max(d["onnx_json_max_dprob"] for d in decisions) <= 1e-5
    # The prepared observation estimates the last buffer level; the action is the exact one nearly always.
    assert np.mean([d["same_as_exact"] for d in decisions]) >= 0.8
    assert decisions[0]["obs_estimate_max_abs_err"] == 0.0  # the first decision is prepared exactly
