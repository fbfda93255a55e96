"""Per-segment SSIM of the content (real ffmpeg): written for the default ladder, lower for worse encodes and
complex scenes, higher for higher levels, deterministic. Small encodes: 1-s segments, 12 fps, at most 180p."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.player.content import ENVIVIO_LADDER_KBPS, Content, make_content, read_content, scene_plan
from simulator.qoe import QoEWeights
from traces.videos import read_video

from ..._requirements import require_ffmpeg

require_ffmpeg()  # every test here runs the real ffmpeg

SMALL = {"segment_s": 1.0, "fps": 12, "max_height": 180}


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Content:
    """The default ladder and source (seeded scenes), 6 one-second segments at 320x180."""
    return make_content(tmp_path_factory.mktemp("q") / "scenes", duration_s=6, seed=1, **SMALL)


def test_ssim_is_written_for_the_default_ladder(scenes: Content) -> None:
    video = read_video(scenes.folder / "sizes", chunk_duration_s=1.0)
    assert video.ssim_db is not None and video.ssim_db.shape == (6, len(ENVIVIO_LADDER_KBPS))
    assert np.all((video.ssim_db > 0.0) & (video.ssim_db <= 60.0))
    for level in range(len(ENVIVIO_LADDER_KBPS)):  # one line per segment in each level's file
        lines = (scenes.folder / "sizes" / f"video_ssim_db_{level}").read_text().split()
        assert [float(x) for x in lines] == pytest.approx(video.ssim_db[:, level].tolist(), abs=1e-6)
    meta = json.loads((scenes.folder / "content.json").read_text())
    assert meta["quality"]["metric"] == "ssim_db" and meta["pattern"] == "scenes" and meta["seed"] == 1
    assert [s["kind"] for s in meta["scenes"]] == [s.kind for s in scene_plan(6, 1.0, seed=1)]
    assert meta["quality"]["mean_ssim_db"] == pytest.approx(video.ssim_db.mean(axis=0).tolist())
    assert np.allclose(np.asarray(read_content(scenes.folder).ssim_db), video.ssim_db)
    # The content plays under the perceptual QoE: its utilities are the table.
    assert np.array_equal(QoEWeights(kind="ssim").chunk_utilities(scenes.video()), video.ssim_db)


def test_higher_levels_score_higher_on_average(scenes: Content) -> None:
    means = np.asarray(scenes.ssim_db).mean(axis=0)
    assert np.all(np.diff(means) > 0), means
    assert means[-1] - means[0] > 3.0, means  # 4300 against 300 kbit/s at one frame size: clearly better


def test_quality_varies_with_the_scene_at_one_bitrate(scenes: Content) -> None:
    kinds = [s.kind for s in scene_plan(6, 1.0, seed=1) for _ in range(int(s.duration_s))]
    ssim = np.asarray(scenes.ssim_db)
    level = 1  # 750 kbit/s
    noisy = [ssim[i, level] for i, k in enumerate(kinds) if k == "noise"]
    easy = [ssim[i, level] for i, k in enumerate(kinds) if k in ("soft", "testsrc2")]
    assert noisy and easy, kinds
    assert max(noisy) + 3.0 < min(easy), (kinds, ssim[:, level])
    assert ssim[:, level].max() - ssim[:, level].min() > 5.0  # not the flat quality of a constant pattern


def test_a_visibly_worse_encode_scores_lower(tmp_path: Path) -> None:
    # The same scenes at 40 kbit/s (a blocky mess at 320x180) and 1500 kbit/s: every segment is worse.
    c = make_content(tmp_path / "worse", duration_s=4, seed=2, ladder_kbps=[40, 1500], **SMALL)
    ssim = np.asarray(c.ssim_db)
    assert np.all(ssim[:, 0] < ssim[:, 1]), ssim
    assert ssim[:, 1].mean() - ssim[:, 0].mean() > 3.0, ssim


def test_same_seed_same_table_and_the_old_pattern_stays(tmp_path: Path) -> None:
    # One x264 thread: bit-exact (several threads make VBV rate control differ by hundredths of a dB).
    a = make_content(tmp_path / "a", duration_s=3, seed=5, ladder_kbps=[300, 750], threads=1, **SMALL)
    b = make_content(tmp_path / "b", duration_s=3, seed=5, ladder_kbps=[300, 750], threads=1, **SMALL)
    assert a.ssim_db == b.ssim_db and a.sizes_bytes == b.sizes_bytes
    assert scene_plan(20, 1.0, seed=5) != scene_plan(20, 1.0, seed=6)
    old = make_content(tmp_path / "old", duration_s=2, pattern="testsrc2", measure_quality=False,
                       ladder_kbps=[300], **SMALL)
    meta = json.loads((old.folder / "content.json").read_text())
    assert meta["source"] == "ffmpeg testsrc2" and meta["scenes"][0]["kind"] == "testsrc2" and meta["quality"] is None
    assert old.ssim_db is None and read_video(old.folder / "sizes", chunk_duration_s=1.0).ssim_db is None


def test_a_users_video_is_measured_against_itself(tmp_path: Path) -> None:
    # A 4:3 source: the reference is the source letterboxed into the top frame, as the renditions are.
    src = tmp_path / "src.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x240:rate=12:duration=3",
                    "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", str(src)], check=True)
    c = make_content(tmp_path / "user", source=src, duration_s=3, ladder_kbps=[40, 1500], **SMALL)
    ssim = np.asarray(c.ssim_db)
    assert ssim.shape == (3, 2) and np.all(ssim[:, 0] < ssim[:, 1]), ssim
    assert ssim[:, 1].min() > 15.0, ssim  # 1.5 Mbit/s of a simple pattern at 320x180: close to the source
    meta = json.loads((c.folder / "content.json").read_text())
    assert meta["source"] == str(src) and meta["scenes"] is None and meta["pattern"] is None


def test_cli_makes_scenes_with_ssim_and_plays_them_under_the_ssim_qoe(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["player", "content", str(out), "--ladder-kbps", "300,1500", "--duration", "8",
                                      "--segment", "4", "--fps", "12", "--max-height", "180", "--seed", "4"])
    assert result.exit_code == 0, result.output
    means = np.asarray(read_content(out).ssim_db).mean(axis=0)
    assert f"mean SSIM per level (dB): {means[0]:.1f}, {means[1]:.1f}" in result.output
    assert json.loads((out / "content.json").read_text())["seed"] == 4
    # The same table (4-s chunks, what a video_size_N folder is read with) evaluates under --qoe ssim; the default
    # stand-in video (sizes only) is refused by that QoE alone.
    run = CliRunner().invoke(app, ["evaluate", "--agent", "bba", "--synthetic", "1", "--video", str(out / "sizes"),
                                   "--qoe", "ssim", "--out", str(tmp_path / "eval")])
    assert run.exit_code == 0, run.output
    refused = CliRunner().invoke(app, ["evaluate", "--agent", "bba", "--synthetic", "1", "--qoe", "ssim",
                                       "--out", str(tmp_path / "refused")])
    assert refused.exit_code != 0 and "needs the per-chunk quality (SSIM dB)" in refused.output
    assert "abr player content" in refused.output and not (tmp_path / "refused").exists()
    accepted = CliRunner().invoke(app, ["evaluate", "--agent", "bba", "--synthetic", "1", "--qoe", "linear",
                                        "--out", str(tmp_path / "linear")])
    assert accepted.exit_code == 0, accepted.output
