"""Fixtures shared by every test package: the real-data directory and tiny synthetic inputs."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import settings

from traces.types import Trace, Video

# Property tests draw the same examples on every run (determinism), and keep no example database.
settings.register_profile("abr", derandomize=True, database=None, deadline=None, print_blob=True)
settings.load_profile("abr")

REPO_ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = REPO_ROOT.parent / "shared" / "reference"
ENVIVIO_LADDER_BPS = [300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3]


def _data_dir() -> Path:
    env = os.environ.get("ABR_DATA_DIR")
    path = Path(env) if env else REPO_ROOT.parent / "shared" / "data"
    if not path.is_dir():
        pytest.fail(f"the data directory {path} does not exist: set ABR_DATA_DIR to the shared data folder")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The real-data folder (ABR_DATA_DIR, else ../shared/data beside the repository)."""
    return _data_dir()


@pytest.fixture(scope="session")
def reference_dir() -> Path:
    if not REFERENCE_DIR.is_dir():
        pytest.fail(f"the reference results folder {REFERENCE_DIR} does not exist")
    return REFERENCE_DIR


@pytest.fixture
def step_trace() -> Trace:
    """1 Mbit/s for 10 s, then 3 Mbit/s for 10 s (samples every 5 s)."""
    times = np.array([0.0, 5.0, 10.0, 15.0, 20.0])
    rates = np.array([1e6, 1e6, 1e6, 3e6, 3e6])
    return Trace(times, rates, name="step", family="test")


@pytest.fixture
def cbr_video() -> Video:
    """Envivio ladder, constant bitrate, 10 chunks of 4 s."""
    return Video.cbr(ENVIVIO_LADDER_BPS, chunk_duration_s=4.0, n_chunks=10, name="cbr10")
