"""A chunk-size table and a ladder that do not belong together: each level's MEAN rate is judged against its
ladder bitrate (within LEVEL_RATE_TOLERANCE either way); single VBR chunks far from the nominal rate are fine."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abr.cli import app
from traces.datadir import available_videos, resolve_video
from traces.errors import VideoFormatError
from traces.videos import LEVEL_RATE_TOLERANCE, read_video

#: The ladder of the MERINA folders (their PROVENANCE.md), which carry no ladder file.
MERINA_KBPS = (300, 750, 1200, 1850, 2850, 4300)


def _folder(tmp_path: Path, kbps: list[float], mean_rates_kbps: list[float], *, n_chunks: int = 10,
            spread: float = 0.0) -> Path:
    """A folder of 4-s chunks whose level k averages ``mean_rates_kbps[k]``; chunks alternate +-``spread``."""
    folder = tmp_path / "video"
    folder.mkdir()
    wobble = np.where(np.arange(n_chunks) % 2 == 0, 1.0 - spread, 1.0 + spread)
    for level, rate in enumerate(mean_rates_kbps):
        sizes = np.rint(rate * 1e3 * 4.0 / 8.0 * wobble).astype(int)
        (folder / f"video_size_{level}").write_text("".join(f"{b}\n" for b in sizes))
    (folder / "ladder.json").write_text(json.dumps({"bitrates_kbps": kbps}))
    return folder


def test_every_shared_video_passes_with_its_ladder(shared_data_dir):
    names = available_videos(shared_data_dir)
    assert len(names) >= 5
    for name in names:
        ladder = [k * 1e3 for k in MERINA_KBPS] if name.startswith("merina") else None
        video = read_video(resolve_video(name, shared_data_dir), bitrates_bps=ladder)
        ratio = video.chunk_sizes_bits.mean(axis=0) / video.chunk_duration_s / video.bitrates_bps
        assert np.all(ratio < LEVEL_RATE_TOLERANCE / 1.5) and np.all(ratio > 1.5 / LEVEL_RATE_TOLERANCE), name


def test_vbr_chunks_far_from_the_nominal_rate_are_fine(tmp_path):
    """Chunks at 0.05x and 1.95x of the ladder bitrate (mean 1x), as real VBR titles have."""
    video = read_video(_folder(tmp_path, [300, 750], [300, 750], spread=0.95))
    chunk_rates = video.chunk_sizes_bits / 4.0 / video.bitrates_bps
    assert chunk_rates.min() < 0.06 and chunk_rates.max() > 1.9


def test_a_level_14x_below_its_ladder_bitrate_is_refused_naming_level_rates_and_fix(tmp_path):
    folder = _folder(tmp_path, [300, 750, 4300], [300, 750, 307])
    with pytest.raises(VideoFormatError) as caught:
        read_video(folder, ladder_option="--ladder-kbps")
    message = str(caught.value)
    assert message.startswith(f"{folder}: level 2 (of 3): its chunks average 307 kbit/s, 14.0x below its ladder "
                              "bitrate 4300 kbit/s (from ladder.json)")
    assert "--ladder-kbps" in message and "fix the video_size_N files (bytes per 4-s chunk)" in message


@pytest.mark.parametrize(("rate", "refused"), [(4.0 * 750, True), (750 / 4.0, True), (2.5 * 750, False),
                                               (750 / 2.5, False)])
def test_the_tolerance_either_way(tmp_path, rate, refused):
    folder = _folder(tmp_path, [300, 750], [300, rate])
    if refused:
        direction = "above" if rate > 750 else "below"
        with pytest.raises(VideoFormatError, match=rf"level 1 \(of 2\): .* 4\.0x {direction} its ladder bitrate 750"):
            read_video(folder)
    else:
        assert read_video(folder).n_levels == 2


def test_a_wrong_ladder_argument_is_refused_too(tmp_path, shared_data_dir):
    envivio = shared_data_dir / "videos" / "envivio_dash3"
    with pytest.raises(VideoFormatError, match=r"level 5 \(of 6\): .* above its ladder bitrate 600 kbit/s \(from "
                       r"--ladder-kbps\); 5 other level\(s\) too"):
        read_video(envivio, bitrates_bps=[k * 1e5 for k in range(1, 7)], ladder_option="--ladder-kbps")


def test_a_sabre_manifest_is_checked_too(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"segment_duration_ms": 3000, "bitrates_kbps": [100, 200],
                                "segment_sizes_bits": [[3e5, 6e6], [3e5, 6e6]]}))
    with pytest.raises(VideoFormatError, match=r"m\.json: level 1 \(of 2\): its chunks average 2000 kbit/s, 10\.0x "
                       r"above its ladder bitrate 200 kbit/s \(from bitrates_kbps\).*fix segment_sizes_bits"):
        read_video(path)


def test_the_cli_refuses_in_one_line(tmp_path):
    folder = _folder(tmp_path, [300, 750, 4300], [300, 750, 307])
    result = CliRunner().invoke(app, ["evaluate", "-a", "bba", "--synthetic", "1", "--video", str(folder),
                                      "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert "level 2 (of 3)" in line and "307 kbit/s" in line and "4300 kbit/s" in line and "--ladder-kbps" in line
