"""``abr train`` refusals and interruptions: list fields given a string, a resume that would train nothing, a
refused ``--init-from``, a folder in use by another run, and Ctrl-C (exit 130 with the command that resumes)."""

from __future__ import annotations

import csv
import dataclasses
import fcntl
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from click.testing import Result  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from abr.cli import app  # noqa: E402
from abr.training.config import TrainConfig, load_train_config, save_train_config  # noqa: E402
from abr.training.run import CHECKPOINT_FILE, LOCK_FILE, FolderInUseError, run_folder_lock, train  # noqa: E402
from simulator import ConfigError  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: A tiny network and run: 256 steps per rollout (4 envs x 64 steps).
TINY = TrainConfig(total_timesteps=256, n_envs=4, n_steps=64, batch_size=64, synthetic_traces=4,
                   val_synthetic_traces=2, eval_freq_steps=128, n_filters=4, hidden_sizes=(8,), tensorboard=False)
runner = CliRunner()


def _one_line(result: Result, *fragments: str, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != LOCK_FILE}


@pytest.mark.parametrize(("field", "text", "fix"), [
    ("traces", '"good"', 'traces = ["good"]'),
    ("val_traces", '"fcc/test"', 'val_traces = ["fcc/test"]'),
    ("held_out", '"norway"', 'held_out = ["norway"]'),
    ("hidden_sizes", "128", "hidden_sizes = [128]"),
    ("trace_repeats", "2", "trace_repeats = [2]"),
    ("ladder_kbps", '"300,750"', "ladder_kbps = [300, 750"),
])
def test_a_list_field_given_a_single_value_is_refused_naming_field_file_and_fix(tmp_path, field, text, fix):
    config = tmp_path / "run.toml"
    config.write_text(f"{field} = {text}\n")
    with pytest.raises(ConfigError, match=rf"run\.toml: {field}=.* must be a list of .*; write ") as error:
        load_train_config(config)
    assert fix in str(error.value)


def test_a_list_item_of_the_wrong_type_is_refused():
    with pytest.raises(ConfigError, match=r"traces=\['fcc/train', 3\] must be a list of trace set names; 3 is not"):
        TrainConfig(traces=("fcc/train", 3))  # type: ignore[arg-type]
    assert TrainConfig(traces=["fcc/train"]).traces == ("fcc/train",)  # type: ignore[arg-type]


def test_the_train_command_refuses_a_string_trace_list_before_any_work(tmp_path):
    config = tmp_path / "run.toml"
    config.write_text('traces = "good"\n')
    out = tmp_path / "out"
    _one_line(runner.invoke(app, ["train", "--out", str(out), "--config", str(config)]),
              str(config), 'write traces = ["good"]')
    assert not out.exists()


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(TINY, out).timesteps == 256
    return out


@pytest.mark.parametrize("total", [64, 256])
def test_resuming_to_a_total_the_run_has_reached_is_refused_and_changes_nothing(finished_run, total):
    before = _snapshot(finished_run)
    result = runner.invoke(app, ["train", "--out", str(finished_run), "--resume", "--timesteps", str(total)])
    _one_line(result, str(finished_run), "already at 256 steps", f"total_timesteps={total} must exceed",
              "--timesteps")
    assert _snapshot(finished_run) == before
    assert load_train_config(finished_run / "config.toml").total_timesteps == 256


def test_a_refused_init_from_leaves_no_run_folder(finished_run, tmp_path):
    args = ["--init-from", str(finished_run / "best_model.zip"), "--timesteps", "256", "--synthetic", "4",
            "--val-synthetic", "2", "--no-tensorboard"]
    fresh = tmp_path / "fresh"
    _one_line(runner.invoke(app, ["train", "--out", str(fresh), *args]), "has another network than this run")
    assert not fresh.exists()
    existing = tmp_path / "existing"
    existing.mkdir()
    _one_line(runner.invoke(app, ["train", "--out", str(existing), "--policy", "mlp", *args]),
              "has another network than this run")
    assert list(existing.iterdir()) == []


def test_a_second_run_into_a_folder_in_use_is_refused(finished_run, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    with run_folder_lock(out):  # as a run going on in another process holds it
        config = tmp_path / "c.toml"
        save_train_config(TINY, config)
        _one_line(runner.invoke(app, ["train", "--out", str(out), "--config", str(config)]),
                  f"{out} is in use by another abr run (pid {os.getpid()})")
        assert not (out / "config.toml").exists()
        before = _snapshot(finished_run)
        with run_folder_lock(finished_run):
            with pytest.raises(FolderInUseError, match="is in use"):
                train(dataclasses.replace(TINY, total_timesteps=512), finished_run, resume=True)
        assert _snapshot(finished_run) == before
    assert train(TINY, out).timesteps == 256  # released: the folder is free again


def test_a_killed_run_never_strands_its_folder(tmp_path):
    out = tmp_path / "killed"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path\n"
         "from abr.training.run import run_folder_lock\n"
         "with run_folder_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(600)", str(out)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"), run_folder_lock(out):
            pass
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=60)
    finally:
        holder.kill()
    assert (out / LOCK_FILE).read_text().strip() == str(holder.pid)  # a killed run cannot clean up...
    # ... and its pid is not named when another command (abr.common.run_folder, which writes no pid) holds the lock.
    with open(out / LOCK_FILE, "a+") as other:
        fcntl.flock(other.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(FolderInUseError) as refused, run_folder_lock(out):
            pass
        assert "pid" not in str(refused.value)
    with run_folder_lock(out):
        assert (out / LOCK_FILE).read_text().strip() == str(os.getpid())
    assert (out / LOCK_FILE).read_text() == ""  # a run that ends leaves no pid behind


def _rows(path: Path) -> int:
    try:
        with path.open(newline="") as handle:
            return len(list(csv.DictReader(handle)))
    except FileNotFoundError:
        return 0


def test_ctrl_c_exits_130_with_the_command_that_resumes_the_run(tmp_path):
    from stable_baselines3 import PPO

    config = tmp_path / "long.toml"
    save_train_config(dataclasses.replace(TINY, total_timesteps=10**7), config)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # SIGINT's default action restored in the child: a shell's background job inherits it ignored.
    process = subprocess.Popen([sys.executable, "-m", "abr", "train", "--out", str(out), "--config", str(config)],
                               cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        while _rows(out / "evaluations.csv") < 3 and process.poll() is None:  # trained past two validations
            time.sleep(0.2)
        assert process.poll() is None, process.communicate()
        # While it runs, a resume of the same folder is refused.
        _one_line(runner.invoke(app, ["train", "--out", str(out), "--resume", "--timesteps", str(10**8)]),
                  "is in use by another abr run", f"pid {process.pid}")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    message = stderr.strip().splitlines()[-1]
    assert message.startswith(f"interrupted: the run is kept in {out / CHECKPOINT_FILE}"), stderr
    command = shlex.split(message.split("resume it with: ")[1])
    assert command == ["abr", "train", "--out", str(out), "--resume"]
    at = int(PPO.load(str(out / CHECKPOINT_FILE), device="cpu").num_timesteps)
    assert at >= 256
    resumed = runner.invoke(app, [*command[1:], "--timesteps", str(at + 256)])
    assert resumed.exit_code == 0, resumed.output
    assert load_train_config(out / "config.toml").total_timesteps == at + 256
