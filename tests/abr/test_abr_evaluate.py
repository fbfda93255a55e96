"""The evaluation harness on tiny traces: tables, recomputed metrics, summary, determinism, failures."""

from __future__ import annotations

import dataclasses
import json
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from abr.errors import ConfigError
from abr.evaluation.harness import SUMMARY_METRICS, evaluate
from abr.evaluation.tables import CHUNK_COLUMNS
from agents import make_agent
from agents.registry import AGENTS
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.types import Trace, Video

from .._paths import same_path
from .abr_test_helpers import read_csv

AGENT_PAIR = ["bba", "rb"]
RESULT_FILES = ("sessions.csv", "chunks.csv", "summary.csv", "config.json", "report.md", "qoe_cdf.png",
                "tradeoff.png", "components.png")
REQUIRED_SESSION_COLUMNS = (
    "agent", "trace_set", "trace", "qoe", "qoe_excl_first", "qoe_mean_per_chunk", "utility",
    "rebuffer_penalty", "smoothness_penalty", "avg_bitrate_kbps", "rebuffer_s", "rebuffer_excl_first_s",
    "rebuffer_ratio", "smoothness_mbps", "switch_count", "startup_delay_s", "n_chunks", "session_time_s",
)


def _run(out: Path, traces: list[Trace], video: Video, **kwargs: object) -> object:
    sets = kwargs.pop("trace_sets") if "trace_sets" in kwargs else {"tiny": traces}
    config = kwargs.pop("sim_config", preset("pensieve"))
    return evaluate(kwargs.pop("agents", AGENT_PAIR), sets, video, config, QoEWeights(), out, **kwargs)


def _outcomes_by_session(chunks: list[dict[str, str]]) -> dict[tuple[str, str, str], list[ChunkOutcome]]:
    sessions: dict[tuple[str, str, str], list[ChunkOutcome]] = defaultdict(list)
    for row in chunks:
        values = [int(row[f]) if f in ("chunk_idx", "quality_idx") else float(row[f])
                  for f in ChunkOutcome._fields]
        sessions[(row["agent"], row["trace_set"], row["trace"])].append(ChunkOutcome(*values))
    return sessions


def test_writes_every_file_with_one_session_row_per_agent_and_trace(tmp_path, tiny_traces, tiny_video):
    result = _run(tmp_path / "out", tiny_traces, tiny_video)
    for name in RESULT_FILES:
        assert (tmp_path / "out" / name).is_file(), name
    rows = read_csv(tmp_path / "out" / "sessions.csv")
    assert len(rows) == len(AGENT_PAIR) * len(tiny_traces) == len(result.sessions)
    assert set(REQUIRED_SESSION_COLUMNS) <= set(rows[0])
    assert [(r["agent"], r["trace"]) for r in rows] == [(a, t.name) for a in AGENT_PAIR for t in tiny_traces]
    chunks = read_csv(tmp_path / "out" / "chunks.csv")
    assert tuple(chunks[0]) == CHUNK_COLUMNS
    assert len(chunks) == sum(int(r["n_chunks"]) for r in rows) == len(rows) * tiny_video.n_chunks
    # Besides the results, only the run's record and lock (abr.common.run_folder): no temporary file is left.
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")) == [
        ".abr-run.json", ".abr-run.lock"]


def test_session_metrics_recomputed_from_chunks_csv_match_sessions_csv(tmp_path, tiny_traces, tiny_video):
    # The oracle is Pensieve's linear QoE written out here, not simulator.metrics: per chunk, the bitrate in
    # Mbit/s, minus 4.3 per second of rebuffering, minus the absolute bitrate change from the previous chunk.
    _run(tmp_path, tiny_traces, tiny_video)
    ladder_mbps = [b / 1e6 for b in tiny_video.bitrates_bps.tolist()]
    sessions = _outcomes_by_session(read_csv(tmp_path / "chunks.csv"))
    for row in read_csv(tmp_path / "sessions.csv"):
        outcomes = sessions[(row["agent"], row["trace_set"], row["trace"])]
        levels = [o.quality_idx for o in outcomes]
        mbps = [ladder_mbps[q] for q in levels]
        assert [o.bitrate_bps / 1e6 for o in outcomes] == pytest.approx(mbps, rel=1e-12)
        rebuffer = [o.rebuffer_s for o in outcomes]
        changes = [abs(b - a) for a, b in zip(mbps, mbps[1:])]
        qoe = sum(mbps) - 4.3 * sum(rebuffer) - sum(changes)
        assert float(row["qoe"]) == pytest.approx(qoe, rel=1e-9, abs=1e-9)
        assert float(row["qoe_excl_first"]) == pytest.approx(qoe - (mbps[0] - 4.3 * rebuffer[0]), rel=1e-9, abs=1e-9)
        assert float(row["qoe_mean_per_chunk"]) == pytest.approx(qoe / len(outcomes), rel=1e-9, abs=1e-9)
        assert float(row["utility"]) == pytest.approx(sum(mbps), rel=1e-9)
        assert float(row["rebuffer_penalty"]) == pytest.approx(4.3 * sum(rebuffer), rel=1e-9, abs=1e-12)
        assert float(row["smoothness_penalty"]) == pytest.approx(sum(changes), rel=1e-9, abs=1e-12)
        assert float(row["avg_bitrate_kbps"]) == pytest.approx(1e3 * sum(mbps) / len(mbps), rel=1e-12)
        assert float(row["smoothness_mbps"]) == pytest.approx(sum(changes), rel=1e-9, abs=1e-12)
        assert float(row["rebuffer_s"]) == pytest.approx(sum(rebuffer), rel=1e-12, abs=1e-12)
        assert float(row["rebuffer_ratio"]) == pytest.approx(sum(rebuffer) / (sum(rebuffer) + 4.0 * len(outcomes)),
                                                             rel=1e-9, abs=1e-12)
        assert int(row["switch_count"]) == sum(a != b for a, b in zip(levels, levels[1:]))
        assert int(row["n_chunks"]) == len(outcomes) == tiny_video.n_chunks


def test_summary_mean_is_the_mean_of_the_sessions_column_and_ci_brackets_it(tmp_path, tiny_traces,
                                                                             tiny_video):
    extra = {"tiny": tiny_traces, "tiny_b": tiny_traces[:3]}
    _run(tmp_path, tiny_traces, tiny_video, trace_sets=extra)
    sessions = read_csv(tmp_path / "sessions.csv")
    summary = read_csv(tmp_path / "summary.csv")
    assert {r["metric"] for r in summary} == set(SUMMARY_METRICS)
    assert len(summary) == len(AGENT_PAIR) * 3 * len(SUMMARY_METRICS)  # 2 sets + "all" per agent
    for row in summary:
        mine = [s for s in sessions if s["agent"] == row["agent"]
                and row["trace_set"] in ("all", s["trace_set"])]
        values = np.array([float(s[row["metric"]]) for s in mine])
        assert int(row["n"]) == values.size
        assert float(row["mean"]) == pytest.approx(values.mean(), rel=1e-12, abs=1e-12)
        assert float(row["median"]) == pytest.approx(np.median(values), rel=1e-12, abs=1e-12)
        assert float(row["ci_low"]) <= float(row["mean"]) + 1e-12
        assert float(row["mean"]) <= float(row["ci_high"]) + 1e-12
        assert values.min() - 1e-12 <= float(row["p5"]) <= float(row["p95"]) <= values.max() + 1e-12


def test_bootstrap_ci_is_reproducible_for_a_seed_and_changes_with_it(tmp_path, tiny_traces, tiny_video):
    for name, seed in (("a", 3), ("b", 3), ("c", 4)):
        _run(tmp_path / name, tiny_traces, tiny_video, seed=seed)
    summaries = {n: read_csv(tmp_path / n / "summary.csv") for n in "abc"}
    assert summaries["a"] == summaries["b"]
    ci = {n: [(r["ci_low"], r["ci_high"]) for r in s if r["metric"] == "qoe"] for n, s in summaries.items()}
    assert ci["a"] != ci["c"]


def test_two_runs_with_one_seed_write_identical_files_except_the_timestamp(tmp_path, tiny_traces, tiny_video):
    noisy = preset("pensieve-train")
    _run(tmp_path / "a", tiny_traces, tiny_video, seed=11, sim_config=noisy)
    _run(tmp_path / "b", tiny_traces, tiny_video, seed=11, sim_config=noisy)
    for name in RESULT_FILES:
        a, b = (tmp_path / d / name for d in "ab")
        if name == "config.json":
            ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
            assert ja.pop("created_utc") and jb.pop("created_utc")
            assert ja == jb
        else:
            assert a.read_bytes() == b.read_bytes(), name


def test_noisy_sessions_use_one_generator_per_agent_and_trace(tmp_path, tiny_traces, tiny_video):
    noisy = preset("pensieve-train")
    result = _run(tmp_path / "a", tiny_traces, tiny_video, seed=5, sim_config=noisy)
    other_seed = _run(tmp_path / "b", tiny_traces, tiny_video, seed=6, sim_config=noisy)
    assert [s.metrics.qoe for s in result.sessions] != [s.metrics.qoe for s in other_seed.sessions]
    agent_idx, trace_idx = 1, 2  # rb on the third trace of the only set
    rng = np.random.default_rng(np.random.SeedSequence(5, spawn_key=(agent_idx, 0, trace_idx)))
    expected = run_session(make_agent("rb"), tiny_traces[trace_idx], tiny_video, noisy, rng=rng)
    session = result.sessions[agent_idx * len(tiny_traces) + trace_idx]
    assert (session.agent, session.trace) == ("rb", tiny_traces[trace_idx].name)
    assert list(session.outcomes) == expected


def test_traces_are_played_in_name_order(tmp_path, tiny_traces, tiny_video):
    result = _run(tmp_path, list(reversed(tiny_traces)), tiny_video, agents=["bba"])
    assert [s.trace for s in result.sessions] == sorted(t.name for t in tiny_traces)


@dataclass
class FailsOnSlowLinks:
    """Plays the lowest level, and raises once the mean measured throughput is below 0.7 Mbit/s."""

    name: str = "flaky"

    def reset(self, rng: np.random.Generator | None = None) -> None:
        pass

    def select(self, context: PlayerContext) -> int:
        if context.outcomes and np.mean([o.throughput_bps for o in context.outcomes]) < 0.7e6:
            raise RuntimeError("simulated agent crash")
        return 0


def test_a_failing_session_is_recorded_with_its_reason_and_the_others_finish(
        tmp_path, tiny_traces, tiny_video, monkeypatch):
    monkeypatch.setitem(AGENTS, "flaky", FailsOnSlowLinks)
    out = tmp_path / "out"
    result = _run(out, tiny_traces, tiny_video, agents=["bba", "flaky"])
    assert [(f.agent, f.trace, f.reason) for f in result.failures] == [
        ("flaky", "a_slow", "RuntimeError: simulated agent crash")]
    rows = read_csv(out / "sessions.csv")
    assert len(rows) == 2 * len(tiny_traces) - 1 == len(result.sessions)
    assert ("flaky", "a_slow") not in {(r["agent"], r["trace"]) for r in rows}
    assert [(r["agent"], r["trace"], r["reason"]) for r in read_csv(out / "failures.csv")] == [
        ("flaky", "a_slow", "RuntimeError: simulated agent crash")]
    # The pooled comparison pairs only the traces both agents finished.
    pooled = [r for r in result.paired if r.trace_set == "all" and r.metric == "qoe"]
    assert [(r.agent, r.n) for r in pooled] == [("flaky", len(tiny_traces) - 1)]
    assert not (out / "journal.jsonl").exists()


def test_a_run_into_a_folder_of_other_results_is_refused_and_keeps_them(tmp_path, tiny_traces, tiny_video):
    out = tmp_path / "out"
    _run(out, tiny_traces, tiny_video, agents=["bba"])
    before = {name: (out / name).read_bytes() for name in RESULT_FILES}
    with pytest.raises(ConfigError, match="pass --overwrite to replace them"):
        _run(out, tiny_traces, tiny_video, agents=["rb"])
    assert {name: (out / name).read_bytes() for name in RESULT_FILES} == before
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == sorted(RESULT_FILES)


BAD_INPUTS = {
    "unknown agent": ({"agents": ["bba", "nope"]}, "unknown agent 'nope'; available agents: bba, bola"),
    "repeated agent": ({"agents": ["bba", "BBA"]}, "given twice"),
    "no agent": ({"agents": []}, "no agents"),
    "empty set": ({"trace_sets": {"tiny": []}}, "trace set 'tiny' is empty"),
    "no set": ({"trace_sets": {}}, "no trace sets"),
    "reserved name": ({"trace_sets": {"all": "TINY"}}, "'all' is reserved"),
    "repeated trace": ({"trace_sets": {"dup": "TINY+FIRST"}}, "two traces named 'a_slow'"),
    "negative seed": ({"seed": -1}, "seed=-1 must be a non-negative integer"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_is_rejected_before_anything_runs(tmp_path, tiny_traces, tiny_video, case):
    change, expected = BAD_INPUTS[case]
    stand_ins = {"TINY": tiny_traces, "TINY+FIRST": tiny_traces + tiny_traces[:1]}
    if "trace_sets" in change:
        sets = change["trace_sets"]
        change = {"trace_sets": {k: stand_ins[v] if isinstance(v, str) else v for k, v in sets.items()}}
    with pytest.raises(ConfigError, match=re.escape(expected)):
        _run(tmp_path / "out", tiny_traces, tiny_video, **change)
    assert not (tmp_path / "out").exists()


def test_a_config_that_does_not_fit_the_video_is_rejected(tmp_path, tiny_traces, tiny_video):
    two_levels = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=4)
    starts_at_level_2 = dataclasses.replace(preset("pensieve"), first_chunk_quality_idx=2)
    with pytest.raises(ConfigError, match="first_chunk_quality_idx=2"):
        _run(tmp_path / "out", tiny_traces, two_levels, sim_config=starts_at_level_2)
    assert not (tmp_path / "out").exists()


def test_config_json_records_the_resolved_run(tmp_path, tiny_traces, tiny_video, tiny_trace_dir):
    _run(tmp_path, tiny_traces, tiny_video, seed=9, command="abr evaluate ...",
         metadata={"preset": "pensieve"})
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["seed"] == 9 and config["agents"] == AGENT_PAIR and config["command"] == "abr evaluate ..."
    tiny = config["trace_sets"]["tiny"]
    assert tiny["count"] == len(tiny_traces) and same_path(tiny["path"], tiny_trace_dir)
    assert tiny["traces"] == [t.name for t in tiny_traces]
    assert config["videos"][0]["name"] == "tiny" and config["videos"][0]["n_chunks"] == 8
    assert config["sim_config"] == dataclasses.asdict(preset("pensieve"))
    assert config["qoe"]["kind"] == "linear" and config["qoe"]["rebuffer_penalty_per_s"] == 4.3
    assert {"abr", "numpy", "simpy", "gymnasium"} <= set(config["versions"])
    assert config["versions"]["numpy"] == np.__version__
    assert set(config["git"]) == {"commit", "dirty"}
    assert config["metadata"] == {"preset": "pensieve"}


def test_report_links_the_plots_and_shows_the_command(tmp_path, tiny_traces, tiny_video):
    _run(tmp_path, tiny_traces, tiny_video, command="abr evaluate --agent bba --agent rb")
    report = (tmp_path / "report.md").read_text()
    assert "abr evaluate --agent bba --agent rb" in report
    assert "(qoe_cdf.png)" in report and "(tradeoff.png)" in report
    assert "| bba | tiny | 5 |" in report and "| rb | all | 5 |" in report
    for plot in ("qoe_cdf.png", "tradeoff.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_progress_callback_counts_every_session(tmp_path, tiny_traces, tiny_video):
    calls: list[tuple[int, int, str]] = []
    _run(tmp_path, tiny_traces, tiny_video, progress=lambda *args: calls.append(args))
    total = len(AGENT_PAIR) * len(tiny_traces)
    assert [c[0] for c in calls] == list(range(total + 1))
    assert {c[1] for c in calls} == {total}
    assert calls[-1][2] == f"rb on tiny/{tiny_traces[-1].name}"


def test_importing_abr_does_not_import_plotting_cli_or_torch():
    heavy = ("matplotlib", "typer", "torch", "rich")
    code = f"import sys, abr; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_several_videos_play_every_trace_set_as_their_own_groups(tmp_path, tiny_traces, tiny_video):
    short = Video.cbr([k * 1e3 for k in (300, 750, 1200, 1850, 2850, 4300)], chunk_duration_s=2.0, n_chunks=5,
                      name="short")
    result = evaluate(AGENT_PAIR, {"tiny": tiny_traces}, [tiny_video, short], preset("pensieve"), QoEWeights(),
                      tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "sessions.csv")
    assert len(rows) == len(AGENT_PAIR) * len(tiny_traces) * 2
    assert {(r["trace_set"], r["video"]) for r in rows} == {("tiny@tiny", "tiny"), ("tiny@short", "short")}
    assert {int(r["n_chunks"]) for r in rows if r["video"] == "short"} == {5}
    # Each group is the same session as a single-video run of that video would play (noise-free preset).
    alone = evaluate(["bba"], {"tiny": tiny_traces}, short, preset("pensieve"), QoEWeights(), tmp_path / "alone")
    mine = [r for r in rows if r["agent"] == "bba" and r["video"] == "short"]
    assert [float(r["qoe"]) for r in mine] == [s.metrics.qoe for s in alone.sessions]
    assert {r.trace_set for r in result.summary} == {"tiny@tiny", "tiny@short", "all"}


def test_repeated_video_names_are_rejected(tmp_path, tiny_traces, tiny_video):
    with pytest.raises(ConfigError, match="video names must be unique"):
        evaluate(AGENT_PAIR, {"tiny": tiny_traces}, [tiny_video, tiny_video], preset("pensieve"), QoEWeights(),
                 tmp_path / "out")


def test_the_optimum_with_a_noisy_preset_is_refused_before_anything_runs(tmp_path, tiny_traces, tiny_video):
    with pytest.raises(ConfigError, match="'optimal' knows the future and is defined for noise-free presets"):
        evaluate(["bba", "optimal"], {"tiny": tiny_traces}, tiny_video, preset("pensieve-train"), QoEWeights(),
                 tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_the_optimum_beats_every_agent_and_its_share_is_reported(tmp_path, tiny_traces, tiny_video):
    result = evaluate(["bba", "rb", "robustmpc", "optimal"], {"tiny": tiny_traces}, tiny_video, preset("pensieve"),
                      QoEWeights(), tmp_path / "out")
    best = {s.trace: s.metrics.qoe for s in result.sessions if s.agent == "optimal"}
    for s in result.sessions:
        assert s.metrics.qoe <= best[s.trace] + 1e-9
    rows = read_csv(tmp_path / "out" / "optimum.csv")
    for row in rows:
        assert 0 < float(row["pct_of_optimum"]) <= 100.0 + 1e-9
    assert (tmp_path / "out" / "vs_optimum.png").exists()
    assert "## Share of the offline optimum" in (tmp_path / "out" / "report.md").read_text()
