"""Fixtures of the application-layer tests: tiny cooked traces and videos on disk, and the real data."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from simulator.config import SimConfig, preset
from traces.readers import read_trace_dir
from traces.types import Trace, Video

from .abr_test_helpers import ENVIVIO_LADDER_KBPS, write_tiny_trace_dir, write_tiny_video_dir

#: ``../shared`` beside the repository: the real data and the reference results.
SHARED_DIR = Path(__file__).resolve().parents[2].parent / "shared"


@pytest.fixture(scope="session")
def reference_results(data_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """Rows of the research simulator's results, by (policy, trace file)."""
    path = SHARED_DIR / "reference" / "pensieve_fixed_env_results.csv"
    if not path.is_file():
        pytest.fail(f"the reference results {path} do not exist")
    with open(path, newline="") as f:
        return {(row["policy"], row["trace_file"]): row for row in csv.DictReader(f)}


@pytest.fixture
def tiny_trace_dir(tmp_path: Path) -> Path:
    return write_tiny_trace_dir(tmp_path / "data" / "traces" / "tiny")


@pytest.fixture
def tiny_traces(tiny_trace_dir: Path) -> list[Trace]:
    return read_trace_dir(tiny_trace_dir)


@pytest.fixture
def tiny_video() -> Video:
    """Envivio ladder, constant bitrate, 8 chunks of 4 s."""
    return Video.cbr([k * 1e3 for k in ENVIVIO_LADDER_KBPS], chunk_duration_s=4.0, n_chunks=8, name="tiny")


@pytest.fixture
def pensieve() -> SimConfig:
    return preset("pensieve")


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """A data dir with ``traces/tiny`` (5 cooked traces) and ``videos/tinyvid`` (8 chunks, 6 levels); a test module
    may define its own ``data`` (test_generalization does)."""
    root = tmp_path / "data"
    write_tiny_trace_dir(root / "traces" / "tiny")
    write_tiny_video_dir(root / "videos" / "tinyvid")
    return root
