"""DASH content from the real ffmpeg: ladder, segments, keyframes, sizes table."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from abr.errors import ConfigError
from abr.player.content import ENVIVIO_LADDER_KBPS, Content, frame_size, make_content, read_content
from traces.videos import read_video

from ..._requirements import require_ffmpeg
from .conftest import TEST_CONTENT_S

require_ffmpeg()  # every test here runs the real ffmpeg


def test_content_has_the_ladder_segments_and_size_table(player_content: Content) -> None:
    c = player_content
    assert c.ladder_kbps == tuple(float(k) for k in ENVIVIO_LADDER_KBPS)
    assert c.n_segments == TEST_CONTENT_S / 4
    video = read_video(c.folder / "sizes", chunk_duration_s=4.0)
    assert video.bitrates_bps.tolist() == [k * 1e3 for k in ENVIVIO_LADDER_KBPS]
    for level in range(6):
        for i in range(c.n_segments):
            assert (c.folder / f"chunk-{level}-{i + 1:05d}.m4s").stat().st_size * 8 == video.chunk_sizes_bits[i, level]
    # CBR: each rendition's mean segment rate is within 10% of its nominal bitrate.
    mean_kbps = video.chunk_sizes_bits.mean(axis=0) / 4.0 / 1e3
    assert np.allclose(mean_kbps, ENVIVIO_LADDER_KBPS, rtol=0.10), mean_kbps


def test_segments_are_4s_with_one_keyframe_each_and_exact_16_9_sizes(player_content: Content) -> None:
    folder = player_content.folder
    mpd = (folder / "manifest.mpd").read_text()
    for kbps in ENVIVIO_LADDER_KBPS:
        w, h = frame_size(kbps)
        assert w * 9 == h * 16 and f'width="{w}" height="{h}"' in mpd
    # Keyframes of the top rendition: exactly one per segment, at multiples of 4 s.
    joined = folder / "top.mp4"
    with open(joined, "wb") as out:
        out.write((folder / "init-5.m4s").read_bytes())
        for i in range(player_content.n_segments):
            out.write((folder / f"chunk-5-{i + 1:05d}.m4s").read_bytes())
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
                            "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(joined)],
                           capture_output=True, text=True, check=True)
    keyframes = [float(x.strip(",")) for x in probe.stdout.split()]
    assert np.allclose(keyframes, np.arange(player_content.n_segments) * 4.0, atol=0.05), keyframes
    joined.unlink()


def test_content_json_and_read_back(player_content: Content) -> None:
    meta = json.loads((player_content.folder / "content.json").read_text())
    assert meta["n_segments"] == player_content.n_segments and meta["segment_s"] == 4.0
    again = read_content(player_content.folder)
    assert again.sizes_bytes == player_content.sizes_bytes


def test_bad_content_requests_fail_clearly_and_leave_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="strictly increasing"):
        make_content(tmp_path / "a", ladder_kbps=[750, 300])
    with pytest.raises(ConfigError, match="does not exist"):
        make_content(tmp_path / "b", source=tmp_path / "missing.mp4")
    bad = tmp_path / "not-a-video.mp4"
    bad.write_text("this is not a video")
    with pytest.raises(ConfigError, match="ffmpeg failed"):
        make_content(tmp_path / "c", source=bad, duration_s=8)
    assert not (tmp_path / "c").exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".c.")]
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "keep.txt").write_text("x")
    with pytest.raises(ConfigError, match="not empty"):
        make_content(tmp_path / "d", duration_s=8)
    with pytest.raises(ConfigError, match="not a content folder"):
        read_content(tmp_path / "d")


def test_packages_a_users_video_letterboxed(tmp_path: Path, player_content: Content) -> None:
    # A 4:3 source is letterboxed into the exact 16:9 frames, cut to the requested length.
    src = tmp_path / "src.mp4"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x480:rate=24:duration=9",
                    "-c:v", "libx264", "-preset", "ultrafast", str(src)], check=True)
    c = make_content(tmp_path / "user", source=src, duration_s=8, ladder_kbps=[300, 750])
    assert c.n_segments == 2 and 'width="640" height="360"' in c.manifest.read_text()


def test_audio_track_is_its_own_representation_outside_the_size_table(tmp_path: Path) -> None:
    c = make_content(tmp_path / "av", duration_s=8, ladder_kbps=[300, 750], audio_kbps=64)
    assert c.has_audio and c.n_segments == 2
    assert (tmp_path / "av" / "chunk-2-00001.m4s").is_file()  # audio: representation 2, after the video levels
    assert read_video(tmp_path / "av" / "sizes", chunk_duration_s=4.0).n_levels == 2
    assert 'contentType="audio"' in c.manifest.read_text()
