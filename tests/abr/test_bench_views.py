"""``abr bench``'s views per core second: a real population run per agent, reported (never asserted on speed)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.common.inputs import envivio_cbr_video, synthetic_trace_set
from abr.evaluation.bench import bench_views

runner = CliRunner()


def test_bench_views_counts_the_views_of_a_population_run() -> None:
    traces = synthetic_trace_set(4, 0).traces
    a = bench_views("robustmpc", traces, envivio_cbr_video(), users=30)
    b = bench_views("robustmpc", traces, envivio_cbr_video(), users=30)
    assert a["views"] == b["views"] > 5  # the same seeded population and days
    assert a["views_per_core_s"] == pytest.approx(a["views"] / a["cpu_s"])


def test_abr_bench_prints_views_per_core_second_for_bba_and_robustmpc(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)  # synthetic traces and video
    result = runner.invoke(app, ["bench", "--json", "--repeats", "1", "--limit", "2", "--view-users", "20"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert sorted(figures["views_per_core_s"]) == ["bba", "robustmpc"]
    assert all(rate > 0 for rate in figures["views_per_core_s"].values())
    table = runner.invoke(app, ["bench", "--repeats", "1", "--limit", "2", "--view-users", "20"])
    assert "views per core second: robustmpc" in table.output
