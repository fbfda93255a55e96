"""Bitrate ladders of videos: ``--ladder-kbps`` on every command that takes a video, ``TrainConfig.ladder_kbps``,
the precedence over ``ladder.json`` and ``Manifest.mpd``, and the errors that name the fix."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.common import inputs
from abr.training.config import TrainConfig, load_train_config, save_train_config, train_config_from_dict
from traces.errors import ConfigError, VideoFormatError

from .._requirements import require_module
from .abr_test_helpers import write_tiny_video_dir

runner = CliRunner()
MERINA = "merina_avengers"
ENVIVIO_KBPS = "300,750,1200,1850,2850,4300"  # the MERINA videos' ladder (their PROVENANCE.md)


def _one_line_error(result: Any, *fragments: str) -> str:
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: ") and "Traceback" not in result.output, line
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_evaluate_plays_a_merina_video_with_the_ladder_option(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "-a", "bba", "-a", "rb", "--synthetic", "2", "--video", MERINA,
                                 "--ladder-kbps", ENVIVIO_KBPS, "--engine", "serial", "--data-dir", str(data_dir),
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    kbps = [300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0]
    assert config["metadata"]["ladder_kbps"] == kbps
    assert config["metadata"]["video_ladders_kbps"] == {MERINA: kbps}
    assert config["videos"][0]["bitrates_bps"] == [k * 1e3 for k in kbps]
    assert config["videos"][0]["n_chunks"] == 150
    assert f"--ladder-kbps {ENVIVIO_KBPS}" in config["command"]
    sessions = (out / "sessions.csv").read_text().splitlines()
    assert len(sessions) == 1 + 2 * 2  # header + 2 agents x 2 traces


def test_evaluate_without_a_ladder_for_a_merina_video_names_the_option(data_dir: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["evaluate", "-a", "bba", "--synthetic", "1", "--video", MERINA,
                                 "--data-dir", str(data_dir), "--out", str(tmp_path / "out")])
    _one_line_error(result, MERINA, "no bitrate ladder for the 6 levels", "pass --ladder-kbps with 6 bitrates")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(("ladder", "fragment"), [
    ("300,750", "--ladder-kbps gives 2 bitrates (300, 750 kbit/s) but the chunk-size table has 6 levels"),
    ("300,abc", "--ladder-kbps='300,abc': expected kbit/s values separated by commas"),
    ("300,750,700,1850,2850,4300", "the bitrates must be strictly increasing"),
    ("0,750,1200,1850,2850,4300", "every bitrate must be a finite number of kbit/s > 0"),
])
def test_a_bad_ladder_option_is_one_clear_error(data_dir: Path, tmp_path: Path, ladder: str, fragment: str) -> None:
    result = runner.invoke(app, ["evaluate", "-a", "bba", "--synthetic", "1", "--video", MERINA, "--ladder-kbps",
                                 ladder, "--data-dir", str(data_dir), "--out", str(tmp_path / "out")])
    _one_line_error(result, fragment)


def test_disagreeing_ladder_files_are_refused_unless_the_option_overrides_them(tmp_path: Path) -> None:
    folder = write_tiny_video_dir(tmp_path / "vid")  # its ladder.json is the Envivio ladder
    (folder / "Manifest.mpd").write_text(
        '<MPD><Period><AdaptationSet mimeType="video/mp4">'
        + "".join(f'<Representation bandwidth="{k * 1000}"/>' for k in (200, 400, 800, 1600, 3200, 6400))
        + "</AdaptationSet></Period></MPD>")
    args = ["evaluate", "-a", "bba", "--synthetic", "1", "--video", str(folder), "--engine", "serial"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "a")])
    _one_line_error(result, "ladder.json (300, 750, 1200, 1850, 2850, 4300 kbit/s) and Manifest.mpd (200, 400, "
                    "800, 1600, 3200, 6400 kbit/s) give different ladders",
                    "pass --ladder-kbps to override both, or fix one file")
    result = runner.invoke(app, [*args, "--ladder-kbps", "250,500,1000,1500,2500,4000", "--out", str(tmp_path / "b")])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "b" / "config.json").read_text())
    assert config["videos"][0]["bitrates_bps"] == [k * 1e3 for k in (250, 500, 1000, 1500, 2500, 4000)]


def test_load_video_precedence_and_the_synthetic_default(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    envivio = inputs.load_video("envivio_dash3", data_dir)  # its Manifest.mpd
    assert envivio.bitrates_bps.tolist() == [k * 1e3 for k in (300, 750, 1200, 1850, 2850, 4300)]
    custom = inputs.load_video("envivio_dash3", data_dir, ladder_kbps=[250, 500, 1000, 1500, 2500, 4000])
    assert custom.bitrates_bps.tolist() == [k * 1e3 for k in (250, 500, 1000, 1500, 2500, 4000)]
    assert custom.chunk_sizes_bits.tolist() == envivio.chunk_sizes_bits.tolist()
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    cbr = inputs.load_video(None, ladder_kbps="500,1000")  # no data dir: the CBR stand-in with that ladder
    assert cbr.bitrates_bps.tolist() == [5e5, 1e6] and cbr.n_chunks == inputs.ENVIVIO_N_CHUNKS


def test_the_train_config_field(data_dir: Path, tmp_path: Path) -> None:
    config = TrainConfig(video=MERINA, ladder_kbps=(300, 750, 1200, 1850, 2850, 4300))
    assert config.ladder_kbps == (300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0)
    assert load_train_config(save_train_config(config, tmp_path / "c.toml")) == config
    assert "ladder_kbps = [300.0, 750.0" in (tmp_path / "c.toml").read_text()
    assert TrainConfig().ladder_kbps is None
    assert "ladder_kbps" not in save_train_config(TrainConfig(), tmp_path / "d.toml").read_text()  # None: left out
    assert train_config_from_dict({"ladder_kbps": [300, 750]}).ladder_kbps == (300.0, 750.0)
    for bad, fragment in (([750, 300], "strictly increasing"), ([0, 300], "> 0"), ("300,750", "must be a list")):
        with pytest.raises(ConfigError, match=f"ladder_kbps.*{fragment}"):
            train_config_from_dict({"ladder_kbps": bad})

    from abr.training.run import resolve_inputs

    small: dict[str, Any] = {"synthetic_traces": 1, "val_synthetic_traces": 1}
    video = resolve_inputs(TrainConfig(video=MERINA, ladder_kbps=(300, 750, 1200, 1850, 2850, 4300), **small),
                           data_dir).video
    assert video.name == MERINA and video.bitrates_bps[-1] == 4.3e6
    with pytest.raises(VideoFormatError, match=r"pass ladder_kbps \(--ladder-kbps\) with 6 bitrates"):
        resolve_inputs(TrainConfig(video=MERINA, **small), data_dir)
    with pytest.raises(VideoFormatError, match=r"ladder_kbps \(--ladder-kbps\) gives 2 bitrates"):
        resolve_inputs(TrainConfig(video=MERINA, ladder_kbps=(300, 750), **small), data_dir)


def test_train_passes_the_option_to_its_config(data_dir: Path, tmp_path: Path) -> None:
    require_module("stable_baselines3", extra="rl")
    result = runner.invoke(app, ["train", "--video", MERINA, "--ladder-kbps", "300,750", "--synthetic", "1",
                                 "--val-synthetic", "1", "--data-dir", str(data_dir), "--out", str(tmp_path / "run")])
    _one_line_error(result, "ladder_kbps (--ladder-kbps) gives 2 bitrates (300, 750 kbit/s)", "has 6 levels")
    result = runner.invoke(app, ["train", "--ladder-kbps", "300,abc", "--out", str(tmp_path / "run2")])
    _one_line_error(result, "--ladder-kbps='300,abc'")


@pytest.mark.parametrize("command", [["evaluate"], ["train"], ["export"], ["bench"], ["sessions", "simulate"],
                                     ["player", "content"], ["generalization"]])
def test_every_command_that_takes_a_video_has_the_option(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "--ladder-kbps" in result.output, result.output


def test_parse_ladder_kbps_forms() -> None:
    assert inputs.parse_ladder_kbps(None) is None
    assert inputs.parse_ladder_kbps(" 300, 750 ") == (300.0, 750.0)
    assert inputs.parse_ladder_kbps([300, 750.5]) == (300.0, 750.5)
    with pytest.raises(ConfigError, match=r"ladder_kbps=.*is empty"):
        inputs.parse_ladder_kbps(",", option="ladder_kbps")
