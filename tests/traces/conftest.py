"""Fixtures for the data-layer tests: tiny files written to tmp_path, and the shared real-data folder."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from traces.datadir import DATA_DIR_ENV

# <repo>/tests/traces/conftest.py -> <repo>/../shared/data
_DEFAULT_SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"

WriteFile = Callable[..., Path]


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The real data directory: ``$ABR_DATA_DIR`` if set, else ``<repo>/../shared/data``. Fails if missing."""
    chosen = Path(os.environ[DATA_DIR_ENV]) if os.environ.get(DATA_DIR_ENV) else _DEFAULT_SHARED_DATA
    if not (chosen / "traces").is_dir() or not (chosen / "videos").is_dir():
        pytest.fail(
            f"shared data directory {chosen} is missing (need traces/ and videos/ in it); "
            f"set {DATA_DIR_ENV} to the folder described in shared/data/README.md"
        )
    return chosen


@pytest.fixture
def data_env(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Point ``$ABR_DATA_DIR`` at the shared data for one test."""
    monkeypatch.setenv(DATA_DIR_ENV, str(shared_data_dir))
    return shared_data_dir


@pytest.fixture
def write_file(tmp_path: Path) -> WriteFile:
    """Write ``content`` (str or bytes) to ``tmp_path / name`` (folders created) and return the path."""

    def write(name: str, content: str | bytes) -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    return write


@pytest.fixture
def cooked_trace_file(write_file: WriteFile) -> Path:
    """A four-sample cooked trace with a comment and a blank line."""
    return write_file("traces/demo/set/t1.txt", "# demo trace\n0.0\t1.0\n1.0\t2.0\n\n2.0\t0.5\n3.0\t4.0\n")


@pytest.fixture
def video_dir(write_file: WriteFile) -> Path:
    """A 3-chunk, 2-level Pensieve video folder without a ladder (4-s chunks of about 600 and 1400 kbit/s)."""
    write_file("video/video_size_0", "275000\n302500\n330000\n")
    return write_file("video/video_size_1", "650000\n682500\n715000\n").parent
