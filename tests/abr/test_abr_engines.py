"""Every engine gives identical results: serial, local worker processes, and a real Ray instance."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from abr.common.inputs import envivio_cbr_video, synthetic_trace_set
from abr.errors import ConfigError
from abr.evaluation import engines
from abr.evaluation.engines import run_tasks
from abr.evaluation.harness import evaluate
from abr.evaluation.tasks import EvaluationJob
from simulator.config import preset
from simulator.qoe import QoEWeights

from .._requirements import require_executable, require_installed
from .abr_test_helpers import read_csv

AGENTS = ["bba", "rb", "robustmpc", "random"]
COMPARED_FILES = ("sessions.csv", "chunks.csv", "summary.csv", "paired.csv")


def _evaluate(out: Path, **kwargs: object) -> Path:
    traces = synthetic_trace_set(12, 3).traces
    sets = {"a": list(traces[:7]), "b": list(traces[7:])}
    evaluate(AGENTS, sets, envivio_cbr_video(), preset("pensieve-train"), QoEWeights(), out, seed=11, **kwargs)
    return out


@pytest.fixture(scope="module")
def serial_results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _evaluate(tmp_path_factory.mktemp("serial"), engine="serial")


def _same_files(a: Path, b: Path) -> None:
    for name in COMPARED_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def test_local_processes_give_the_serial_results(serial_results, tmp_path):
    _same_files(serial_results, _evaluate(tmp_path / "local", engine="local", workers=2))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Ray head node on loopback, started for these tests and stopped after them."""
    require_installed("ray", extra="ray")  # not imported here: see engines._run_ray
    venv_ray = Path(sys.executable).parent / "ray"  # the venv's ray command
    ray_bin = venv_ray if venv_ray.exists() else Path(require_executable("ray", hint='pip install -e ".[ray]"'))
    port = _free_port()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
    start = [str(ray_bin), "start", "--head", "--node-ip-address=127.0.0.1", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]
    subprocess.run(start, env=env, check=True, capture_output=True, timeout=120)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)


def test_a_real_ray_cluster_gives_the_serial_results(serial_results, ray_cluster, tmp_path):
    _same_files(serial_results, _evaluate(tmp_path / "ray", engine="ray", ray_address=ray_cluster))


class _FlakyRay:
    """Stands in for the ``ray`` module: ``ray.init`` fails with a ConnectionError ``failures`` times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls: list[dict[str, object]] = []

    def init(self, **kwargs: object) -> None:
        self.calls.append(kwargs)
        if len(self.calls) <= self.failures:
            raise ConnectionError("Failed to connect to Ray cluster")


def test_joining_a_cluster_retries_a_head_that_is_not_ready_then_names_it(monkeypatch):
    monkeypatch.setattr(engines.time, "sleep", lambda seconds: None)
    ray = _FlakyRay(failures=2)
    engines._join(ray, "127.0.0.1:6379", {"log_to_driver": False})
    assert len(ray.calls) == 3 and ray.calls[-1] == {"address": "127.0.0.1:6379", "log_to_driver": False}
    ray = _FlakyRay(failures=engines.RAY_JOIN_ATTEMPTS)
    with pytest.raises(ConfigError, match=r"ray_address='127.0.0.1:6379' answers but could not be joined after 4 "
                                          r"tries .*`ray status --address 127.0.0.1:6379` \(a cluster with token"):
        engines._join(ray, "127.0.0.1:6379", {})
    assert len(ray.calls) == engines.RAY_JOIN_ATTEMPTS


def test_a_driver_with_a_token_at_hand_joins_in_token_mode(monkeypatch, tmp_path):
    require_installed("ray", extra="ray")
    monkeypatch.delenv("RAY_AUTH_MODE", raising=False)
    monkeypatch.delenv("RAY_AUTH_TOKEN", raising=False)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "none"))
    engines.import_ray("127.0.0.1:6379")
    assert "RAY_AUTH_MODE" not in os.environ  # no token anywhere: Ray's own default
    (tmp_path / "token").write_text("0" * 64)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    engines.import_ray(None)
    assert "RAY_AUTH_MODE" not in os.environ  # a local instance: ray.init chooses
    engines.import_ray("127.0.0.1:6379")
    assert os.environ["RAY_AUTH_MODE"] == "token"  # `ray start` clusters require the token then


def test_an_unreachable_ray_address_fails_fast_with_a_clear_error(tmp_path):
    require_installed("ray", extra="ray")  # not imported here: see engines._run_ray
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"no Ray cluster answers at ray_address='127.0.0.1:\d+'"):
        _evaluate(tmp_path / "out", engine="ray", ray_address=f"127.0.0.1:{_free_port()}")
    assert time.monotonic() - started < 30
    assert not (tmp_path / "out" / "sessions.csv").exists()


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"engine": "spark"}, "engine='spark' is not one of local, serial, ray"),
    ({"workers": 0}, "workers=0 must be a positive integer"),
    ({"engine": "ray", "ray_address": "nowhere"}, "ray_address='nowhere' must be HOST:PORT"),
])
def test_bad_engine_settings_are_config_errors(kwargs, message):
    traces = synthetic_trace_set(1, 0).traces
    job = EvaluationJob(("bba",), (("s", traces),), (envivio_cbr_video(),), preset("pensieve"), QoEWeights(), 0)
    with pytest.raises(ConfigError, match=message):
        run_tasks(job, job.tasks(), lambda result: None, **kwargs)


def test_the_fast_core_gives_the_simpy_results_to_1e9(serial_results, tmp_path):
    fast = _evaluate(tmp_path / "fast", core="fast")
    mine = read_csv(fast / "sessions.csv")
    reference = read_csv(serial_results / "sessions.csv")
    assert [(r["agent"], r["trace"]) for r in mine] == [(r["agent"], r["trace"]) for r in reference]
    for a, b in zip(mine, reference, strict=True):
        assert a["n_chunks"] == b["n_chunks"] and a["switch_count"] == b["switch_count"]
        for column in ("qoe", "avg_bitrate_kbps", "rebuffer_s", "session_time_s"):
            assert float(a[column]) == pytest.approx(float(b[column]), rel=1e-9, abs=1e-9), column


def test_an_unknown_core_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="core='gpu' is not one of simpy, fast"):
        _evaluate(tmp_path / "out", core="gpu")
