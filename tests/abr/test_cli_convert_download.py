"""``abr traces convert`` and ``abr download``: a destination that cannot be written is refused first, in one
line naming it; a bad input file leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

import traces.download
from abr.cli import app
from traces import readers
from traces.download import DatasetSpec, download_dataset
from traces.errors import ConfigError

runner = CliRunner()


def _one_line(result: Result, *fragments: str, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), result.stderr
    assert "Errno" not in line, line
    for fragment in fragments:
        assert fragment in line, line
    return line


@pytest.fixture
def src(tmp_path: Path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "a").write_text("0 1\n1 2\n2 1\n")
    (folder / "b").write_text("0 3\n1 4\n2 3\n")
    return folder


def test_convert_a_folder_into_an_existing_file_is_refused(src, tmp_path):
    existing = tmp_path / "existing"
    existing.write_text("keep me\n")
    _one_line(runner.invoke(app, ["traces", "convert", str(src), str(existing)]),
              str(existing), "is a file, not a folder")
    assert existing.read_text() == "keep me\n"


def test_convert_under_a_file_is_refused(src, tmp_path):
    existing = tmp_path / "existing"
    existing.write_text("")
    _one_line(runner.invoke(app, ["traces", "convert", str(src / "a"), str(existing / "x")]),
              f"{existing} is a file, not a folder")


def test_a_bad_input_file_leaves_no_output_folder(src, tmp_path):
    (src / "c").write_text("0 1\n1 x\n")
    out = tmp_path / "out" / "deep"
    _one_line(runner.invoke(app, ["traces", "convert", str(src), str(out)]), str(src / "c"))
    assert not (tmp_path / "out").exists()


def test_a_failed_write_removes_what_it_wrote(src, tmp_path, monkeypatch):
    calls = []

    def failing_second_write(trace, path):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        return real(trace, path)

    real = readers.write_cooked_trace
    monkeypatch.setattr("abr.cli.data.write_cooked_trace", failing_second_write)
    out = tmp_path / "out"
    result = runner.invoke(app, ["traces", "convert", str(src), str(out)])
    assert result.exit_code == 1, result.output
    assert len(calls) == 2
    assert not out.exists()


def test_a_successful_folder_conversion_writes_every_trace(src, tmp_path):
    out = tmp_path / "out" / "deep"
    result = runner.invoke(app, ["traces", "convert", str(src), str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["a", "b"]
    assert (out / "b").read_text().splitlines()[1] == "1.0\t4.0"


def test_download_into_an_existing_file_is_refused_before_any_download(tmp_path, monkeypatch):
    fetched = []
    monkeypatch.setattr(traces.download, "_fetch", lambda *args: fetched.append(args) or "0" * 64)
    existing = tmp_path / "existing"
    existing.write_text("")
    _one_line(runner.invoke(app, ["download", "envivio-video", "--dest", str(existing)]),
              f"{existing} is a file, not a folder", "--dest")
    assert fetched == []


def test_download_dataset_refuses_a_file_on_the_install_path(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "traces").write_text("")
    spec = DatasetSpec("demo", (tmp_path / "nowhere.zip").as_uri(), None, "zip", install_dir="traces/demo")
    with pytest.raises(ConfigError, match=r"data/traces is a file, not a folder"):
        download_dataset(spec, tmp_path / "data")
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["traces"]  # no temporary folder left
