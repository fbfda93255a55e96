"""One run per output folder (abr.common.run_folder): reused folders, overwrites, locks, no stranded work."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.common.inputs import envivio_cbr_video, synthetic_trace_set
from abr.common.run_folder import LOCK_FILE, RECORD_FILE, FolderInUseError, RunFolder, read_record
from abr.errors import ConfigError
from abr.evaluation.engines import _Player
from abr.evaluation.harness import evaluate
from abr.evaluation.journal import JOURNAL_FILE, Journal
from abr.evaluation.tasks import EvaluationJob
from simulator.config import preset
from simulator.qoe import QoEWeights

from .._requirements import require_installed
from .abr_test_helpers import read_csv, write_cooked

runner = CliRunner()


def _evaluate(data: Path, out: Path, *extra: str) -> object:
    return runner.invoke(app, ["evaluate", "-t", "tiny", "--video", "tinyvid", "--engine", "serial", "--data-dir",
                               str(data), "--out", str(out), *extra])


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.name != LOCK_FILE}


# -- a reused --out ------------------------------------------------------------------------------------------


def test_a_folder_with_another_runs_results_is_refused_naming_that_run(data, tmp_path):
    out = tmp_path / "out"
    assert _evaluate(data, out, "-a", "bba", "-a", "rb").exit_code == 0
    before = _snapshot(out)
    refused = _evaluate(data, out, "-a", "robustmpc")
    assert refused.exit_code == 2, refused.output
    line = refused.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "--agent bba --agent rb" in line and "--overwrite" in line
    assert _snapshot(out) == before  # nothing touched


def test_overwrite_removes_only_the_files_the_earlier_run_recorded(data, tmp_path):
    out = tmp_path / "out"
    assert _evaluate(data, out, "-a", "bba", "-a", "rb", "-a", "optimal").exit_code == 0
    assert (out / "paired.csv").exists() and (out / "optimum.csv").exists() and (out / "vs_optimum.png").exists()
    (out / "notes.txt").write_text("mine")
    (out / "plots").mkdir()
    (out / "plots" / "keep.png").write_bytes(b"x")
    result = _evaluate(data, out, "-a", "robustmpc", "--overwrite")
    assert result.exit_code == 0, result.output
    # The old run's comparison files are gone (one agent: no paired.csv, no optimum), the user's files stay.
    assert not (out / "paired.csv").exists()
    assert not (out / "optimum.csv").exists() and not (out / "vs_optimum.png").exists()
    assert (out / "notes.txt").read_text() == "mine" and (out / "plots" / "keep.png").exists()
    assert {r["agent"] for r in read_csv(out / "sessions.csv")} == {"robustmpc"}
    record = read_record(out)
    assert record is not None and record.status == "done" and "--agent robustmpc" in (record.command or "")
    assert "notes.txt" not in record.outputs and "sessions.csv" in record.outputs


def test_the_same_command_on_a_finished_folder_has_nothing_to_do(data, tmp_path):
    out = tmp_path / "out"
    first = _evaluate(data, out, "-a", "bba", "-a", "rb")
    assert first.exit_code == 0
    before = _snapshot(out)
    again = _evaluate(data, out, "-a", "bba", "-a", "rb")
    assert again.exit_code == 0, again.output
    assert "nothing to do" in again.stdout
    assert _snapshot(out) == before
    # The summary printed is read back from the files: the same table as the first run printed.
    assert again.stdout.split("nothing to do")[0] == first.stdout.split("results written to")[0]


def test_result_files_that_no_run_recorded_are_never_replaced(data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "sessions.csv").write_text("someone else's\n")
    for extra in ((), ("--overwrite",)):
        result = _evaluate(data, out, "-a", "bba", *extra)
        assert result.exit_code == 2, result.output
        assert "sessions.csv" in result.stderr and "no abr run recorded" in result.stderr
        assert (out / "sessions.csv").read_text() == "someone else's\n"


def test_a_record_naming_files_outside_the_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / RECORD_FILE).write_text(json.dumps({
        "kind": "evaluate", "fingerprint": "x", "command": None, "status": "done", "outputs": ["../victim.txt"],
        "started_utc": "", "finished_utc": None, "pid": 0, "failed": 0, "version": 1}))
    with pytest.raises(ConfigError, match="outside the folder"):
        with RunFolder(out, kind="evaluate", fingerprint="y", overwrite=True):
            pass
    assert victim.read_text() == "keep"


def test_a_malformed_record_is_refused_naming_it(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / RECORD_FILE).write_text("{not json")
    with pytest.raises(ConfigError, match=r"\.abr-run\.json is not an abr run record"):
        with RunFolder(out, kind="evaluate", fingerprint="y"):
            pass


# -- the lock -----------------------------------------------------------------------------------------------

_HOLDER = """
import sys, time
from abr.common.run_folder import RunFolder
with RunFolder(sys.argv[1], kind="evaluate", fingerprint="other", command="abr evaluate (holder)"):
    print("holding", flush=True)
    time.sleep(600)
"""


def test_a_running_run_holds_the_folder_and_its_lock_dies_with_it(data, tmp_path):
    out = tmp_path / "out"
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, str(out)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        busy = _evaluate(data, out, "-a", "bba")
        assert busy.exit_code == 2, busy.output
        assert "is in use by another abr run" in busy.stderr and "abr evaluate (holder)" in busy.stderr
        assert f"pid {holder.pid}" in busy.stderr
        with pytest.raises(FolderInUseError):
            with RunFolder(out, kind="evaluate", fingerprint="other"):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # SIGKILL released the lock: the folder is free, and holds an interrupted run of another evaluation.
    refused = _evaluate(data, out, "-a", "bba")
    assert refused.exit_code == 2 and "interrupted or still running" in refused.stderr
    assert _evaluate(data, out, "-a", "bba", "--overwrite").exit_code == 0


def test_two_identical_evaluations_at_once_do_not_both_run(tmp_path):
    """The second waits for nothing: it is refused while the first holds the folder, and the first finishes."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ABR_DATA_DIR"}
    args = [sys.executable, "-m", "abr", "evaluate", "-a", "robustmpc", "--synthetic", "60", "--engine", "serial",
            "--out", str(out)]
    first = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / JOURNAL_FILE).exists() and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    second = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    first_err = first.communicate(timeout=300)[1]
    assert first.returncode == 0, first_err
    if second.returncode == 0:  # the first had already finished: then the second had nothing to do
        assert "nothing to do" in second.stdout
    else:
        assert second.returncode == 2 and "is in use by another abr run" in second.stderr
    assert len(read_csv(out / "sessions.csv")) == 60


# -- dead-end journals ---------------------------------------------------------------------------------------


def test_a_bad_agent_parameter_is_refused_before_anything_is_written(data, tmp_path):
    out = tmp_path / "out"
    result = _evaluate(data, out, "-a", "bba", "-a", "fixed:9")
    assert result.exit_code == 2, result.output
    assert "'fixed:9' cannot play video 'tinyvid'" in result.stderr and "6-level ladder" in result.stderr
    assert not out.exists()
    assert _evaluate(data, out, "-a", "bba", "-a", "fixed:5").exit_code == 0


@pytest.mark.parametrize("rates", [[1e-6, 1e-6, 1e-6], [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 2e-3]])
def test_a_trace_too_slow_for_the_video_is_refused_before_the_journal(data, tmp_path, rates):
    slow = data / "traces" / "tiny" / "z_slow"
    write_cooked(slow, [float(i) for i in range(len(rates))], rates)
    out = tmp_path / "out"
    result = _evaluate(data, out, "-a", "bba")
    assert result.exit_code == 2, result.output
    assert "'z_slow'" in result.stderr and "too slow for this video" in result.stderr
    assert not out.exists()
    slow.unlink()
    assert _evaluate(data, out, "-a", "bba").exit_code == 0


def test_an_unreachable_ray_address_is_refused_before_the_journal(data, tmp_path):
    require_installed("ray", extra="ray")  # not imported here: see engines._run_ray
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "-a", "bba", "-t", "tiny", "--video", "tinyvid", "--engine", "ray",
                                 "--ray-address", "127.0.0.1:1", "--data-dir", str(data), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "no Ray cluster answers" in result.stderr and not out.exists()


def test_a_ray_address_without_the_ray_engine_is_refused(data, tmp_path):
    result = _evaluate(data, tmp_path / "out", "-a", "bba", "--ray-address", "127.0.0.1:6379")
    assert result.exit_code == 2 and "--engine ray" in result.stderr


def _interrupted_journal(out: Path, traces: list, agents: tuple[str, ...], n_done: int) -> None:
    """A journal and run record as a run killed after ``n_done`` sessions leaves them."""
    job = EvaluationJob(agents, (("syn", tuple(sorted(traces, key=lambda t: t.name))),), (envivio_cbr_video(),),
                        preset("pensieve"), QoEWeights(), 0)
    from abr.evaluation.journal import fingerprint

    with RunFolder(out, kind="evaluate", fingerprint=fingerprint(job), command="abr evaluate (first)") as folder:
        folder.will_write(JOURNAL_FILE)
        player = _Player(job)
        with Journal(out, job) as journal:
            for task in job.tasks()[:n_done]:
                journal.append(player.play(task))


def test_reuse_finished_continues_a_run_whose_inputs_were_corrected(tmp_path):
    """A trace removed after the run was interrupted: its sessions of the other traces are kept, not replayed."""
    traces = list(synthetic_trace_set(6, 1).traces)
    out = tmp_path / "out"
    _interrupted_journal(out, traces, ("bba", "rb"), n_done=9)  # bba on all 6, rb on the first 3
    corrected = sorted(traces, key=lambda t: t.name)[:5]  # the last trace removed: indices of the rest unchanged

    def run(folder: Path, **kwargs: object) -> tuple[object, list[int]]:
        starts: list[int] = []

        def progress(done: int, total: int, what: str) -> None:
            if not starts:
                starts.append(done)

        result = evaluate(["bba", "rb"], {"syn": corrected}, envivio_cbr_video(), preset("pensieve"), QoEWeights(),
                          folder, progress=progress, **kwargs)  # type: ignore[arg-type]
        return result, starts

    with pytest.raises(ConfigError, match="--reuse-finished"):
        run(out)
    _, starts = run(out, reuse_finished=True)
    assert starts == [8]  # bba's 5 remaining traces and rb's first 3 were reused; the dropped trace's session not
    run(tmp_path / "fresh")
    for name in ("sessions.csv", "chunks.csv", "summary.csv", "paired.csv"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name
    assert not (out / JOURNAL_FILE).exists()


def test_reuse_finished_does_not_take_over_a_finished_run(data, tmp_path):
    out = tmp_path / "out"
    assert _evaluate(data, out, "-a", "bba").exit_code == 0
    result = _evaluate(data, out, "-a", "rb", "--reuse-finished")
    assert result.exit_code == 2 and "continues only an interrupted run" in result.stderr


def test_overwrite_discards_an_interrupted_journal_of_other_inputs(tmp_path):
    traces = list(synthetic_trace_set(4, 1).traces)
    out = tmp_path / "out"
    _interrupted_journal(out, traces, ("bba",), n_done=2)
    result = evaluate(["rb"], {"syn": traces}, envivio_cbr_video(), preset("pensieve"), QoEWeights(), out,
                      overwrite=True)
    assert [s.agent for s in result.sessions] == ["rb"] * 4
    assert not (out / JOURNAL_FILE).exists()


# -- silent acceptance -------------------------------------------------------------------------------------


def test_an_alias_and_its_agent_are_one_agent_given_twice(data, tmp_path):
    result = _evaluate(data, tmp_path / "out", "-a", "mpc", "-a", "robustmpc")
    assert result.exit_code == 2 and "'mpc' and 'robustmpc' are the same policy" in result.stderr
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("second", ["same", "slash", "file"])
def test_trace_sets_that_name_the_same_files_are_refused(data, tmp_path, second):
    folder = data / "traces" / "tiny"
    other = {"same": "tiny", "slash": f"{folder}/", "file": str(folder / "a_slow")}[second]
    result = _evaluate(data, tmp_path / "out", "-a", "bba", "-t", other)
    assert result.exit_code == 2, result.output
    assert "name the same files" in result.stderr and "give each trace set once" in result.stderr


def test_a_model_of_one_algorithm_is_not_played_as_another(tmp_path):
    from stable_baselines3 import A2C

    from agents.registry import SHIPPED_PPO_MODEL, make_agent
    from agents.rl import PolicyLoadError, saved_algorithm

    a2c_file = tmp_path / "a2c.zip"
    A2C("MlpPolicy", "CartPole-v1", n_steps=4, seed=0).save(a2c_file)
    assert saved_algorithm(a2c_file) == "a2c" and saved_algorithm(SHIPPED_PPO_MODEL) == "ppo"
    with pytest.raises(PolicyLoadError, match=r"was saved by PPO, not A2C; load it as ppo:"):
        make_agent(f"a2c:{SHIPPED_PPO_MODEL}")
    with pytest.raises(PolicyLoadError, match=r"was saved by A2C, not PPO; load it as a2c:"):
        make_agent(f"ppo:{a2c_file}")


def test_ctrl_c_on_worker_processes_exits_130_keeping_the_finished_sessions(tmp_path):
    """SIGINT to the whole process group, as a terminal sends it: the workers end with the parent, the journal
    keeps every finished session, and the same command completes the run."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ABR_DATA_DIR"}
    args = [sys.executable, "-m", "abr", "evaluate", "-a", "bba", "-a", "rb", "--synthetic", "1200",
            "--workers", "2", "--seed", "2", "--out", str(out)]
    # SIGINT's default action restored in the child: a shell's background job inherits it ignored.
    process = subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 180
    while _lines(out / JOURNAL_FILE) < 31 and process.poll() is None and time.monotonic() < deadline:  # 30 + header
        time.sleep(0.01)
    assert process.poll() is None, "the run ended before it could be interrupted"
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "rerun the same command to resume" in err
    leftover = _group_members(process.pid)
    wait_until = time.monotonic() + 30  # the resource tracker of spawned processes ends once it sees EOF
    while leftover and time.monotonic() < wait_until:
        time.sleep(0.1)
        leftover = _group_members(process.pid)
    assert leftover == [], f"processes outlived the run: {leftover}"
    kept = _lines(out / JOURNAL_FILE) - 1
    assert 30 <= kept < 2400
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=900)
    assert resumed.returncode == 0, resumed.stderr
    assert len(read_csv(out / "sessions.csv")) == 2400


def _group_members(group: int) -> list[str]:
    found = subprocess.run(["pgrep", "-a", "-g", str(group)], capture_output=True, text=True).stdout
    return found.splitlines()


def _lines(path: Path) -> int:
    try:
        return len(path.read_text().splitlines())
    except FileNotFoundError:
        return 0


# -- size ----------------------------------------------------------------------------------------------------


def test_an_evaluation_that_cannot_fit_in_memory_is_refused_with_its_estimate(data, tmp_path, monkeypatch):
    from abr.evaluation.harness import BYTES_PER_CHUNK

    monkeypatch.setenv("ABR_MEMORY_LIMIT_BYTES", "100000")
    result = _evaluate(data, tmp_path / "out", "-a", "bba", "-a", "rb")
    assert result.exit_code == 2, result.output
    # 2 agents x 5 traces x 8 chunks of the tiny video
    estimate = 2 * 5 * 8 * BYTES_PER_CHUNK / 1024**3
    assert "an evaluation of 10 sessions (80 chunks)" in result.stderr and f"{estimate:.4f} GiB" in result.stderr
    assert "split --traces" in result.stderr and not (tmp_path / "out").exists()
    monkeypatch.setenv("ABR_MEMORY_LIMIT_BYTES", str(2 * 5 * 8 * BYTES_PER_CHUNK))
    assert _evaluate(data, tmp_path / "out", "-a", "bba", "-a", "rb").exit_code == 0


# -- a full disk ---------------------------------------------------------------------------------------------


def _file_size_limit(limit_bytes: int):  # noqa: ANN202 - a preexec_fn
    def apply() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit then fail with EFBIG, as on a full disk
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_a_disk_that_fills_up_names_the_file_and_loses_no_finished_session(tmp_path):
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ABR_DATA_DIR"}
    args = [sys.executable, "-m", "abr", "evaluate", "-a", "bba", "-a", "rb", "--synthetic", "40", "--engine",
            "serial", "--out", str(out)]
    full = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(60_000))
    assert full.returncode == 1, full.stderr
    line = full.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and str(out / JOURNAL_FILE) in line and "rerun the same command" in line
    assert not (out / "sessions.csv").exists()
    kept = _lines(out / JOURNAL_FILE) - 1
    assert kept > 0
    resumed = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    fresh = subprocess.run([*args[:-1], str(tmp_path / "fresh")], env=env, capture_output=True, text=True,
                           timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    for name in ("sessions.csv", "chunks.csv", "summary.csv", "paired.csv"):
        assert (out / name).read_bytes() == (tmp_path / "fresh" / name).read_bytes(), name


def test_a_result_file_that_cannot_be_written_whole_is_named_and_left_out(tmp_path):
    """The journal fits but chunks.csv does not: no half-written result file, the error names the file."""
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k != "ABR_DATA_DIR"}
    args = [sys.executable, "-m", "abr", "evaluate", "-a", "bba", "--synthetic", "3", "--engine", "serial", "--out",
            str(out)]
    full = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300,
                          preexec_fn=_file_size_limit(22_000))
    assert full.returncode == 1, full.stderr
    line = full.stderr.strip().splitlines()[-1]
    assert line.startswith("error: ") and "cannot write" in line and str(out) in line
    assert not (out / "chunks.csv").exists() and not list(out.glob(".*.tmp"))
    assert _lines(out / JOURNAL_FILE) == 4  # the header and the three sessions: a rerun only writes the tables
    assert subprocess.run(args, env=env, capture_output=True, text=True, timeout=300).returncode == 0
    assert len(read_csv(out / "sessions.csv")) == 3


def test_a_retrained_model_under_the_same_name_is_another_evaluation(data, tmp_path):
    """The fingerprint holds the model file's content: a finished folder is not 'nothing to do' for a new model."""
    import shutil

    from agents.registry import SHIPPED_PPO_MODEL, SHIPPED_PPO_V1_MODEL

    model = tmp_path / "model.zip"
    shutil.copyfile(SHIPPED_PPO_V1_MODEL, model)
    out = tmp_path / "out"
    assert _evaluate(data, out, "-a", f"ppo:{model}").exit_code == 0
    same = _evaluate(data, out, "-a", f"ppo:{model}")
    assert same.exit_code == 0 and "nothing to do" in same.stdout
    shutil.copyfile(SHIPPED_PPO_MODEL, model)  # retrained in place
    again = _evaluate(data, out, "-a", f"ppo:{model}")
    assert again.exit_code == 2 and "holds the results of" in again.stderr, again.output
