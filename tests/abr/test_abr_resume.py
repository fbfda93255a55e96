"""A killed evaluation resumes where it stopped: identical results, no duplicate rows, no half-written files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from abr.common.inputs import envivio_cbr_video, synthetic_trace_set
from abr.errors import ConfigError
from abr.evaluation.engines import _Player
from abr.evaluation.harness import evaluate
from abr.evaluation.journal import JOURNAL_FILE, Journal
from abr.evaluation.tasks import EvaluationJob
from simulator.config import preset
from simulator.qoe import QoEWeights

from .abr_test_helpers import read_csv

AGENTS = ("bba", "rb", "robustmpc")
N_TRACES = 150
COMPARED_FILES = ("sessions.csv", "chunks.csv", "summary.csv", "paired.csv")


def _command(out: Path) -> list[str]:
    args = [sys.executable, "-m", "abr", "evaluate", "--synthetic", str(N_TRACES), "--preset", "pensieve-train",
            "--engine", "serial", "--seed", "4", "--out", str(out)]
    for agent in AGENTS:
        args += ["--agent", agent]
    return args


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("ABR_DATA_DIR", None)  # synthetic traces and the synthetic Envivio video
    return env


def _journal_lines(out: Path) -> int:
    try:
        return len((out / JOURNAL_FILE).read_text().splitlines())
    except FileNotFoundError:
        return 0


def test_a_killed_run_resumes_to_the_results_of_an_uninterrupted_one(tmp_path):
    killed = tmp_path / "killed"
    process = subprocess.Popen(_command(killed), env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while _journal_lines(killed) < 40 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    total = len(AGENTS) * N_TRACES
    done_before = _journal_lines(killed) - 1
    assert 0 < done_before < total, "the run was not interrupted in the middle"
    assert not (killed / "sessions.csv").exists()

    resumed = subprocess.run(_command(killed), env=_env(), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run(_command(tmp_path / "fresh"), env=_env(), capture_output=True, text=True, timeout=300)
    assert fresh.returncode == 0, fresh.stderr

    for name in COMPARED_FILES:
        assert (killed / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    rows = read_csv(killed / "sessions.csv")
    keys = [(r["agent"], r["trace_set"], r["trace"]) for r in rows]
    assert len(keys) == total and len(set(keys)) == total
    assert not (killed / JOURNAL_FILE).exists()


def _tiny_run(out: Path, agents: tuple[str, ...] = ("bba", "rb"), seed: int = 0) -> object:
    traces = list(synthetic_trace_set(6, 1).traces)
    return evaluate(list(agents), {"syn": traces}, envivio_cbr_video(), preset("pensieve"), QoEWeights(), out,
                    seed=seed)


def test_a_torn_last_journal_line_is_dropped_and_replayed(tmp_path):
    complete = tmp_path / "complete"
    _tiny_run(complete)
    out = tmp_path / "torn"
    out.mkdir()
    # Build a journal that stopped in the middle of writing its fourth session.
    traces = tuple(synthetic_trace_set(6, 1).traces)
    job = EvaluationJob(("bba", "rb"), (("syn", traces),), (envivio_cbr_video(),), preset("pensieve"), QoEWeights(), 0)
    player = _Player(job)
    with Journal(out, job) as journal:
        for task in job.tasks()[:3]:
            journal.append(player.play(task))
    with open(out / JOURNAL_FILE, "a") as handle:
        handle.write('{"key":[0,0,3],"agent":"bba","trace_set":"syn","trace":"syn-00')
    _tiny_run(out)
    for name in COMPARED_FILES:
        assert (out / name).read_bytes() == (complete / name).read_bytes(), name


def test_a_journal_of_a_different_evaluation_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / JOURNAL_FILE).write_text('{"journal":1,"fingerprint":"0123"}\n')
    with pytest.raises(ConfigError, match="holds an interrupted run of a different evaluation"):
        _tiny_run(out)
    assert not (out / "sessions.csv").exists()


def test_a_file_that_is_not_a_journal_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / JOURNAL_FILE).write_text("agent,trace\n")
    with pytest.raises(ConfigError, match="is not an abr journal"):
        _tiny_run(out)
