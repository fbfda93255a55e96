"""``abr sessions simulate`` on every engine writes byte-identical tables: this process (serial), local worker
processes (which also plan the days and share the recommender's solves), and a real local Ray instance (started by
the run on loopback and stopped after it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abr.errors import ConfigError
from abr.sessions import SessionsConfig, population, run_population
from abr.sessions.playback import PlaybackContext
from abr.sessions.recommender import Interactions, solve_rows
from abr.sessions.runner import Runner, _balanced_cuts

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


def test_the_workers_plan_blocks_of_users_and_share_the_solves_bit_for_bit(serial_tables, tmp_path, data_dir,
                                                                          monkeypatch) -> None:
    # Blocks of 7 users (the synthetic catalog has 300 titles): the 80 users' days are planned in 12 blocks on the
    # workers, merged in user order, and every ALS solve runs in ranges of rows there; nothing may change.
    monkeypatch.setattr(population, "INTEREST_BLOCK_BYTES", 7 * 8 * 300)
    assert len(list(population.interest_blocks(80, 300))) == 12
    assert _run(tmp_path, data_dir, "local", 2) == serial_tables


def test_the_row_solves_in_ranges_on_workers_equal_one_solve_here() -> None:
    rng = np.random.default_rng(4)
    counts = rng.integers(0, 40, 300)
    counts[[5, 6, 200]] = [0, 700, 1]  # an empty row, a long one, a single interaction
    users = np.repeat(np.arange(counts.size), counts)
    matrix = Interactions.from_triples(users, rng.integers(0, 50, users.size), rng.random(users.size),
                                       n_users=counts.size, n_items=50)
    fixed = rng.normal(size=(50, 6))
    gram = fixed.T @ fixed + 2.0 * np.eye(6)
    here = solve_rows(matrix.indptr, matrix.indices, matrix.weights, fixed, gram, 10.0)
    assert len(_balanced_cuts(matrix.indptr, 6, 4)) == 5  # four ranges of rows
    with Runner(PlaybackContext({}, None, None, None, ()), engine="local", workers=2) as runner:  # type: ignore[arg-type]
        assert runner.row_solver is not None
        shared = runner.solve_rows(matrix, fixed, gram, 10.0)
        again = runner.solve_rows(matrix, fixed * 2.0, gram, 10.0)  # the same matrix: its files are reused
        assert len(runner._shared) == 1
        folder = runner._folder
    assert np.array_equal(shared, here) and np.abs(here).sum() > 0
    assert np.array_equal(again, solve_rows(matrix.indptr, matrix.indices, matrix.weights, fixed * 2.0, gram, 10.0))
    assert folder is not None and not Path(folder).exists()  # the files go with the runner
