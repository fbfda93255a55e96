"""Paired comparisons and % of the optimum, checked against values recomputed from sessions.csv."""

from __future__ import annotations

import re
from collections import defaultdict

import numpy as np
import pytest

from abr.common.inputs import envivio_cbr_video, synthetic_trace_set
from abr.evaluation.compare import paired_comparisons, percent_of_optimum
from abr.evaluation.harness import evaluate
from simulator.config import preset
from simulator.qoe import QoEWeights

from .abr_test_helpers import read_csv

AGENTS = ["bba", "rb", "robustmpc", "throughput"]


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("compare")
    traces = list(synthetic_trace_set(16, 2).traces)
    evaluate(AGENTS, {"x": traces[:9], "y": traces[9:]}, envivio_cbr_video(), preset("pensieve"), QoEWeights(),
             out, seed=5)
    return out


def _per_trace(rows, agent, metric, trace_set=None):
    return {(r["trace_set"], r["trace"]): float(r[metric]) for r in rows
            if r["agent"] == agent and (trace_set is None or r["trace_set"] == trace_set)}


def test_paired_csv_matches_differences_recomputed_from_sessions_csv(results):
    sessions = read_csv(results / "sessions.csv")
    paired = read_csv(results / "paired.csv")
    assert {r["baseline"] for r in paired} == {"robustmpc"}  # the default baseline when it plays
    assert {r["agent"] for r in paired} == {"bba", "rb", "throughput"}
    for row in paired:
        set_filter = None if row["trace_set"] == "all" else row["trace_set"]
        mine = _per_trace(sessions, row["agent"], row["metric"], set_filter)
        base = _per_trace(sessions, "robustmpc", row["metric"], set_filter)
        diff = np.array([mine[k] - base[k] for k in sorted(mine)])
        assert int(row["n"]) == diff.size == (16 if set_filter is None else (9 if set_filter == "x" else 7))
        assert float(row["mean_diff"]) == pytest.approx(diff.mean(), rel=1e-12, abs=1e-12)
        assert float(row["win_rate"]) == pytest.approx(np.mean(diff > 1e-9))
        assert float(row["loss_rate"]) == pytest.approx(np.mean(diff < -1e-9))
        assert float(row["win_rate"]) + float(row["tie_rate"]) + float(row["loss_rate"]) == pytest.approx(1.0)
        assert float(row["ci_low"]) <= float(row["mean_diff"]) <= float(row["ci_high"])


def test_report_numbers_match_sessions_csv(results):
    sessions = read_csv(results / "sessions.csv")
    report = (results / "report.md").read_text()
    by_group = defaultdict(list)
    for r in sessions:
        by_group[(r["agent"], r["trace_set"])].append(r)
        by_group[(r["agent"], "all")].append(r)
    checked = 0
    for line in report.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) != 8 or (cells[0], cells[1]) not in by_group:
            continue
        group = by_group[(cells[0], cells[1])]
        assert int(cells[2]) == len(group)
        mean_qoe = float(re.match(r"(-?[\d.]+) \[", cells[3]).group(1))
        assert mean_qoe == pytest.approx(np.mean([float(r["qoe"]) for r in group]), abs=0.005)
        for cell, column in zip(cells[4:], ("qoe_excl_first", "avg_bitrate_kbps", "rebuffer_s", "smoothness_mbps"),
                                strict=True):
            assert float(cell) == pytest.approx(np.mean([float(r[column]) for r in group]), abs=0.005)
        checked += 1
    assert checked == len(AGENTS) * 3
    for png in ("qoe_cdf.png", "tradeoff.png", "components.png"):
        assert f"]({png})" in report and (results / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_percent_of_optimum_is_a_ratio_of_means_with_a_bracketing_ci():
    rng = np.random.default_rng(0)
    best = rng.uniform(20, 60, 40)
    mine = best * rng.uniform(0.5, 1.0, 40)
    rows = [{"agent": a, "trace_set": "s", "trace": f"t{i}", "qoe_excl_first": float(v)}
            for a, values in (("optimal", best), ("a", mine)) for i, v in enumerate(values)]
    result = {(r.agent, r.trace_set): r for r in percent_of_optimum(rows, seed=0)}
    row = result[("a", "s")]
    assert row.pct_of_optimum == pytest.approx(100 * mine.mean() / best.mean(), rel=1e-12)
    assert row.ci_low < row.pct_of_optimum < row.ci_high
    assert result[("optimal", "all")].pct_of_optimum == pytest.approx(100.0)
    assert percent_of_optimum([r for r in rows if r["agent"] == "a"], seed=0) == []


def test_paired_comparison_counts_ties_and_significance():
    rows = [{"agent": a, "trace_set": "s", "trace": f"t{i}", "qoe": q}
            for i in range(30) for a, q in (("base", float(i)), ("better", float(i) + (1.0 if i % 3 else 0.0)))]
    (row,) = [r for r in paired_comparisons(rows, "base", seed=1, metrics=["qoe"]) if r.trace_set == "s"]
    assert (row.n, row.win_rate, row.tie_rate, row.loss_rate) == (30, pytest.approx(2 / 3), pytest.approx(1 / 3), 0.0)
    assert row.mean_diff == pytest.approx(20 / 30) and row.is_significant
