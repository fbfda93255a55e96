"""``abr benchmark``: ranks by CI, unranked members with the published numbers, learned policies never ranked on
what they trained on, a user's policy by import path (in worker processes too, keyed by its code), resuming a
killed run to the same tables."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from abr.common.inputs import synthetic_trace_set
from abr.evaluation import benchmark
from abr.evaluation.benchmark import learned_seen, paired_ranks, run_benchmark, standard_suite
from abr.evaluation.journal import JOURNAL_FILE, fingerprint
from abr.evaluation.tasks import EvaluationJob
from agents.external import make_external
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights
from traces.fingerprint import trace_fingerprint
from traces.readers import read_trace_dir
from traces.types import Video

from .abr_test_helpers import read_csv, write_cooked, write_tiny_video_dir


class HalfwayPolicy:
    """A user's policy, defined here and named by import path: the middle level of any ladder."""

    name = "halfway"

    def reset(self, rng: np.random.Generator | None = None) -> None:
        pass

    def select(self, context: PlayerContext) -> int:
        return context.video.n_levels // 2


def _data(root: Path, n_fast: int = 8, n_genet: int = 3) -> Path:
    """fcc/test: fast traces (4-6 Mbit/s, the top level streams); genet_benchmark/fcc-test: a few more."""
    rng = np.random.default_rng(3)
    for i in range(n_fast):
        write_cooked(root / "traces" / "fcc" / "test" / f"t{i:03d}", [2.0 * k for k in range(30)],
                     list(rng.uniform(4.0, 6.0, 30)))
    for i in range(n_genet):
        write_cooked(root / "traces" / "genet_benchmark" / "fcc-test" / f"g{i}", [2.0 * k for k in range(30)],
                     list(rng.uniform(0.5, 3.0, 30)))
    write_tiny_video_dir(root / "videos" / "envivio_dash3", n_chunks=8)
    reference = root.parent / "reference"
    reference.mkdir(parents=True, exist_ok=True)
    (reference / "pensieve_fixed_env_results.csv").write_text(
        "policy,trace_set,qoe_sum_excl_first\nbb,fcc-test,10.0\nbb,fcc-test,15.0\nmpc_fixed,fcc-test,20.5\n")
    return root


def test_ranks_come_from_paired_differences_on_the_same_traces():
    a = [1.0, 5.0, 9.0, 13.0, 17.0, 21.0]
    b = [x - 0.5 for x in a]  # always 0.5 behind a: the agents' own CIs overlap almost entirely
    c = [x + d for x, d in zip(a, [0.3, -0.3, 0.2, -0.2, 0.1, -0.1], strict=True)]  # as good as a on average
    d = [0.0] * 6  # below everyone on every trace but the first
    ranks = paired_ranks({"a": a, "b": b, "c": c, "d": d}, seed=0)
    # a - b is 0.5 on every trace (CI [0.5, 0.5]); c - a is noise around 0 (its CI spans zero: a tie); c - b is
    # 0.5 +- at most 0.3, above zero on every trace; everyone is above d on every trace (d: 0, the others >= 0.5)
    assert ranks == {"a": 1, "c": 1, "b": 3, "d": 4}


def test_the_standard_suite_is_what_the_data_directory_holds(tmp_path):
    members, missing = standard_suite(_data(tmp_path / "data"))
    assert [(m.trace_set, m.scaling, m.ranked) for m in members] == [
        ("fcc/test", "unscaled", True), ("fcc/test", "scaled", True), ("genet_benchmark/fcc-test", "unscaled", False)]
    assert "trace set norway/test" in missing and "video sabre_bbb/bbb.json" in missing


AGENTS = ["bba", "fixed:0", f"py:{__name__}:HalfwayPolicy", "bola-e"]


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[benchmark.BenchmarkResult, Path]:
    data = _data(tmp_path_factory.mktemp("bench") / "data")
    result = run_benchmark(tmp_path_factory.mktemp("out") / "run", agents=AGENTS, data_dir=data, engine="local",
                           workers=2, seed=1)  # worker processes import the py: policy by name
    return result, data


def test_the_leaderboard_ranks_every_agent_by_its_ci_on_every_member(tiny_run):
    result, _ = tiny_run
    rows = read_csv(result.out_dir / "leaderboard.csv")
    agents = [*AGENTS, "optimal"]
    assert len(rows) == 3 * len(agents) and {r["agent"] for r in rows} == set(agents)
    assert "| bola-e |" in (result.out_dir / "leaderboard.md").read_text()
    for member in ("fcc/test", "genet_benchmark/fcc-test"):
        for scaling in {r["scaling"] for r in rows if r["trace_set"] == member}:
            group = [r for r in rows if r["trace_set"] == member and r["scaling"] == scaling]
            assert next(r for r in group if r["agent"] == "optimal")["note"] == "upper bound"
            if member.startswith("genet"):
                assert all(r["rank"] == "" and r["note"] in ("unranked", "upper bound") for r in group)
                continue
            sessions = read_csv(result.out_dir / "envivio_dash3" / scaling / "sessions.csv")
            per_trace = {a: [float(r["qoe_excl_first"]) for r in sorted(sessions, key=lambda r: r["trace"])
                             if r["agent"] == a and r["trace_set"] == member] for a in AGENTS}
            assert {r["agent"]: int(r["rank"]) for r in group if r["rank"]} == paired_ranks(per_trace, seed=1)
    fast = {r["agent"]: r for r in rows if r["trace_set"] == "fcc/test" and r["scaling"] == "unscaled"}
    # on 4-6 Mbit/s links the lowest level is far behind the others: its CI lies below theirs, it ranks last
    assert int(fast["fixed:0"]["rank"]) == len(AGENTS) and min(int(fast[a]["rank"]) for a in ("bba", "bola-e")) == 1
    assert float(fast["optimal"]["mean"]) >= max(float(r["mean"]) for r in fast.values())
    # the paired difference to bola-e (every agent plays every trace: the difference of the means), blank for
    # bola-e itself and against robustmpc, which did not play
    for agent in ("bba", "fixed:0"):
        expected = float(fast[agent]["mean"]) - float(fast["bola-e"]["mean"])
        assert float(fast[agent]["minus_bola-e"]) == pytest.approx(expected, abs=1e-9)
    assert fast["bola-e"]["minus_bola-e"] == "" and fast["bba"]["minus_robustmpc"] == ""
    # the user's policy played (the middle level) and differs from both others
    halfway = float(fast[AGENTS[2]]["mean"])
    assert float(fast["fixed:0"]["mean"]) < halfway < float(fast["bba"]["mean"])


def test_the_report_shows_the_published_numbers_beside_ours_and_its_runtime(tiny_run):
    result, data = tiny_run
    text = (result.out_dir / "leaderboard.md").read_text()
    assert "| bb | 12.50 | bba |" in text and "| mpc_fixed | 20.50 | robustmpc |" in text
    assert "Runtime of the run that wrote this file:" in text and result.runtime_s > 0
    assert (result.out_dir / "leaderboard.png").read_bytes()[:4] == b"\x89PNG"
    again = run_benchmark(result.out_dir, agents=AGENTS, data_dir=data, engine="serial", seed=1)
    assert again.nothing_to_do and [r.record() for r in again.rows] == [r.record() for r in result.rows]


def test_a_learned_policy_is_not_ranked_on_what_it_trained_on(tiny_run, monkeypatch):
    result, data = tiny_run
    trained = frozenset(trace_fingerprint(t) for t in read_trace_dir(data / "traces" / "fcc" / "test")[:1])
    seen = {a: (trained if a == "bba" else None) for a in result.agents}  # bba "trained" on one fcc/test trace
    unscaled = {m.trace_set: benchmark.load_trace_set(m.trace_set, data) for m in result.members}
    rows = benchmark.leaderboard_rows(result.members, result.evaluations, unscaled, seen, seed=1)
    fcc = [r for r in rows if r.member.trace_set == "fcc/test"]
    assert {(r.member.scaling, r.rank, r.note) for r in fcc if r.stats.agent == "bba"} == {
        ("unscaled", None, "trained on"), ("scaled", None, "trained on")}
    assert all(r.rank is not None for r in fcc if r.stats.agent not in ("bba", "optimal"))


def test_the_shipped_learned_agents_record_what_they_saw(data_dir):
    fcc_train = read_trace_dir(data_dir / "traces" / "fcc" / "train")[:5]
    fcc_test = read_trace_dir(data_dir / "traces" / "fcc" / "test")
    for agent in ("predictor-mpc", "ppo"):
        seen = learned_seen(agent)
        assert seen is not None and {trace_fingerprint(t) for t in fcc_train} <= seen, agent
        assert not seen & {trace_fingerprint(t) for t in fcc_test}, agent
    assert learned_seen("robustmpc") is None


def test_a_user_policy_by_file_is_keyed_by_its_code(tmp_path):
    code = tmp_path / "mine.py"
    code.write_text("class Mine:\n    name = 'mine'\n    def reset(self, rng=None): pass\n"
                    "    def select(self, context): return 0\n")
    agent = f"py:{code}:Mine"
    assert make_external(agent).select(None) == 0  # type: ignore[arg-type]
    traces = synthetic_trace_set(2, 0).traces
    video = Video.cbr([3e5, 1e6], chunk_duration_s=4.0, n_chunks=4)

    def job() -> EvaluationJob:
        return EvaluationJob((agent,), (("s", traces),), (video,), preset("pensieve"), QoEWeights(), 0)

    before = fingerprint(job())
    assert fingerprint(job()) == before
    code.write_text(code.read_text().replace("return 0", "return 1"))
    assert fingerprint(job()) != before  # an edited policy is another evaluation, never resumed as the old one


@pytest.mark.parametrize(("agent", "message"), [
    ("py:no_such_module_xyz:P", "no module 'no_such_module_xyz' can be imported"),
    ("py:/nowhere/p.py:P", "no file '/nowhere/p.py'"),
    (f"py:{__name__}:Missing", "has no class or function 'Missing'"),
    (f"py:{__name__}:_data", "_data\\(\\) failed: TypeError"),
    ("py:json:dumps", "dumps\\(\\) failed"),
    ("py:nocolon", "give py:MODULE:NAME"),
])
def test_a_bad_import_path_is_a_clear_error(agent, message):
    with pytest.raises(ConfigError, match=message):
        make_external(agent)


def _bench_command(out: Path, data: Path) -> list[str]:
    return [sys.executable, "-m", "abr", "benchmark", "--out", str(out), "--agent", "bba", "--agent", "rb",
            "--engine", "serial", "--data-dir", str(data)]


def test_a_killed_benchmark_resumes_to_the_tables_of_an_uninterrupted_one(tmp_path):
    data = _data(tmp_path / "data", n_fast=150, n_genet=2)
    killed = tmp_path / "killed"
    journal = killed / "envivio_dash3" / "unscaled" / JOURNAL_FILE
    process = subprocess.Popen(_bench_command(killed, data), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while (not journal.exists() or len(journal.read_text().splitlines()) < 40) and process.poll() is None \
            and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (killed / "leaderboard.csv").exists()
    resumed = subprocess.run(_bench_command(killed, data), capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(_bench_command(tmp_path / "fresh", data), capture_output=True, text=True, timeout=600)
    assert fresh.returncode == 0, fresh.stderr
    assert (killed / "leaderboard.csv").read_bytes() == (tmp_path / "fresh" / "leaderboard.csv").read_bytes()
    assert len(read_csv(killed / "leaderboard.csv")) == 3 * 3  # members x (bba, rb, optimal)


def test_ray_workers_import_the_user_policy_and_give_the_local_leaderboard(tiny_run, tmp_path):
    from .._requirements import require_installed

    require_installed("ray", extra="ray")
    result, data = tiny_run
    on_ray = run_benchmark(tmp_path / "ray", agents=AGENTS, data_dir=data, engine="ray", workers=2, seed=1)
    assert (on_ray.out_dir / "leaderboard.csv").read_bytes() == (result.out_dir / "leaderboard.csv").read_bytes()
