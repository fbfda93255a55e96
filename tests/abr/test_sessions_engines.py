"""``abr sessions simulate`` on every engine writes byte-identical tables: this process (serial), local worker
processes, and a real local Ray instance (started by the run on loopback and stopped after it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from abr.errors import ConfigError
from abr.sessions import SessionsConfig, run_population
from abr.sessions.playback import PlaybackContext
from abr.sessions.runner import Runner

from .._requirements import require_installed

NETWORKS = ("norway/test", "fcc/test")
COMPARED = ("sessions.csv", "users.csv", "policies.csv", "recommender.csv", "validation.json", "retention.csv",
            "outcomes.json", "config.json", "report.md")


def _run(out: Path, data_dir: Path, engine: str, workers: int) -> dict[str, bytes]:
    config = SessionsConfig(users=80, days=2, agents=("robustmpc",), seed=9, horizon_s=180.0, workers=workers)
    run_population(config, out, catalog="synthetic", networks=NETWORKS, data_dir=data_dir, command="test",
                   plots=False, engine=engine)
    return {name: (out / name).read_bytes() for name in COMPARED}


@pytest.fixture(scope="module")
def serial_tables(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> dict[str, bytes]:
    return _run(tmp_path_factory.mktemp("serial"), data_dir, "serial", 2)


def test_local_processes_write_the_serial_tables(serial_tables, tmp_path, data_dir) -> None:
    assert serial_tables["sessions.csv"].count(b"\n") > 50  # views were played
    assert _run(tmp_path, data_dir, "local", 2) == serial_tables


def test_a_local_ray_instance_writes_the_serial_tables(serial_tables, tmp_path, data_dir) -> None:
    require_installed("ray", extra="ray")
    assert _run(tmp_path, data_dir, "ray", 2) == serial_tables
    import ray

    assert not ray.is_initialized()  # the run started its Ray instance and stopped it


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ConfigError, match="engine='dask' is not one of local, serial, ray"):
        Runner(PlaybackContext({}, None, None, None, ()), engine="dask")  # type: ignore[arg-type]
