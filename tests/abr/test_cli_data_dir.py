"""A configured data directory that is missing or a file is named as such, never taken for "none configured"."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from abr.cli import app
from abr.common import inputs
from traces.errors import DataDirError

runner = CliRunner()


def _one_line(result: Result, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), result.stderr
    assert "no data directory" not in line, line
    return line


def test_missing_environment_data_dir_is_named_with_its_origin(tmp_path, monkeypatch):
    monkeypatch.setenv("ABR_DATA_DIR", str(tmp_path / "nonexistent"))
    line = _one_line(runner.invoke(app, ["traces", "info", "fcc/test"]))
    assert f"{tmp_path / 'nonexistent'} (from $ABR_DATA_DIR) does not exist" in line


def test_environment_data_dir_that_is_a_file_says_so(tmp_path, monkeypatch):
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    monkeypatch.setenv("ABR_DATA_DIR", str(a_file))
    line = _one_line(runner.invoke(app, ["traces", "info", "fcc/test"]))
    assert f"{a_file} (from $ABR_DATA_DIR) is a file, not a folder" in line


def test_data_dir_option_that_is_a_file_names_the_option(tmp_path, monkeypatch):
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    a_file = tmp_path / "passwd"
    a_file.write_text("root:x:0:0\n")
    line = _one_line(runner.invoke(app, ["traces", "info", "fcc/test", "--data-dir", str(a_file)]))
    assert f"{a_file} (from --data-dir) is a file, not a folder" in line


def test_a_broken_data_dir_is_not_taken_for_none(tmp_path, monkeypatch):
    """The default video is synthetic only when no data directory is configured, not when it is mistyped."""
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    assert not inputs.has_data_dir()
    assert inputs.load_video(None).name == "envivio_cbr_synthetic"
    monkeypatch.setenv("ABR_DATA_DIR", str(tmp_path / "typo"))
    with pytest.raises(DataDirError, match=r"typo \(from \$ABR_DATA_DIR\) does not exist"):
        inputs.load_video(None)


def test_an_existing_path_needs_no_data_dir(tmp_path: Path, monkeypatch):
    folder = tmp_path / "set"
    folder.mkdir()
    (folder / "t1").write_text("0 1\n1 1\n2 1\n")
    monkeypatch.setenv("ABR_DATA_DIR", str(tmp_path / "nonexistent"))
    assert [t.name for t in inputs.load_trace_set(str(folder)).traces] == ["t1"]
