"""Data directory resolution: override > environment variable > error; dataset and video names."""

from __future__ import annotations

from pathlib import Path

import pytest

from traces.datadir import (
    DATA_DIR_ENV,
    available_trace_sets,
    available_videos,
    data_dir,
    resolve_traces,
    resolve_video,
)
from traces.errors import DataDirError


def test_override_beats_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "a"))
    assert data_dir() == (tmp_path / "a").resolve()
    assert data_dir(tmp_path / "b") == (tmp_path / "b").resolve()


def test_unset_environment_is_an_error_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    with pytest.raises(DataDirError, match=r"set the ABR_DATA_DIR environment variable or pass --data-dir"):
        data_dir()


def test_missing_directory_names_its_origin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "gone"))
    with pytest.raises(DataDirError, match=r"gone \(from \$ABR_DATA_DIR\) does not exist"):
        data_dir()
    with pytest.raises(DataDirError, match=r"gone2 \(from --data-dir\) does not exist"):
        data_dir(tmp_path / "gone2")


def test_resolve_trace_names_in_shared_data(data_env: Path) -> None:
    assert resolve_traces("fcc/test") == data_env / "traces" / "fcc" / "test"
    assert resolve_traces("genet_benchmark/fcc-test") == data_env / "traces" / "genet_benchmark" / "fcc-test"
    existing = data_env / "traces" / "norway" / "test"
    assert resolve_traces(existing) == existing


def test_unknown_trace_set_lists_the_available_ones(data_env: Path) -> None:
    with pytest.raises(DataDirError, match=r"unknown trace set 'fcc/tset'.*Available: .*fcc/test, fcc/train"):
        resolve_traces("fcc/tset")


def test_available_sets_skip_raw_folders(data_env: Path) -> None:
    names = available_trace_sets()
    assert {"fcc/test", "norway/train", "mahimahi_cellular", "genet_benchmark/norway-test"} <= set(names)
    assert not any(n.split("/")[-1] == "raw" or "/raw/" in n for n in names)
    assert names == sorted(names)


def test_resolve_video_names(data_env: Path) -> None:
    assert resolve_video("envivio_dash3") == data_env / "videos" / "envivio_dash3"
    assert resolve_video("sabre_bbb/bbb") == data_env / "videos" / "sabre_bbb" / "bbb.json"
    assert "sabre_bbb/bbb4k.json" in available_videos()
    with pytest.raises(DataDirError, match=r"unknown video 'envivio'.*Available: envivio_dash3"):
        resolve_video("envivio")


def test_explicit_data_dir_argument(shared_data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)
    assert resolve_traces("oboe/test", shared_data_dir).name == "test"
    with pytest.raises(DataDirError, match=r"set the ABR_DATA_DIR"):
        resolve_traces("oboe/test")
