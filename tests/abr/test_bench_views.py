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


def test_decision_times_count_every_decision_of_the_sessions_and_not_the_warm_up() -> None:
    import numpy as np

    from abr.evaluation.bench import bench_decisions
    from agents.registry import make_agent
    from simulator.config import preset
    from simulator.rollout import run_session
    from traces.synthetic import generate_trace_set
    from traces.types import Video

    traces = generate_trace_set(3, 2)
    video = Video.cbr([0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6], chunk_duration_s=4.0, n_chunks=12)
    config = preset("pensieve")

    class Counting:
        def __init__(self) -> None:
            self.inner, self.name, self.calls = make_agent("robustmpc"), "robustmpc", 0

        def reset(self, rng=None) -> None:
            self.inner.reset(rng)

        def select(self, context) -> int:
            self.calls += 1
            return self.inner.select(context)

    counting = Counting()
    for trace in traces:
        run_session(counting, trace, video, config, rng=np.random.default_rng(0))
    figures = bench_decisions(["robustmpc"], traces, video, config)["robustmpc"]
    assert figures["decisions"] == counting.calls == 2 * 11  # the forced first chunk is not a decision
    assert figures["mean_us"] > 0 and figures["includes_planning"] == 0.0
