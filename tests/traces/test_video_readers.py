"""Video readers on the shared data and tiny folders, ladder sources, and writer round trips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from traces.errors import VideoFormatError
from traces.types import Video
from traces.videos import read_pensieve_video, read_sabre_manifest, read_video, write_pensieve_video

from .._paths import same_path

ENVIVIO_KBPS = [300, 750, 1200, 1850, 2850, 4300]


def test_envivio_uses_its_mpd_ladder(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "videos" / "envivio_dash3"
    video = read_video(folder)
    assert video.bitrates_bps.tolist() == [k * 1e3 for k in ENVIVIO_KBPS]
    assert (video.n_chunks, video.n_levels, video.chunk_duration_s) == (49, 6, 4.0)
    first_bytes = [int((folder / f"video_size_{k}").read_text().split()[0]) for k in range(6)]
    assert video.chunk_sizes_bits[0].tolist() == [8.0 * b for b in first_bytes]
    assert video.name == "envivio_dash3" and same_path(video.source, folder)


def test_sabre_bbb_manifest(shared_data_dir: Path) -> None:
    path = shared_data_dir / "videos" / "sabre_bbb" / "bbb.json"
    video = read_video(path)
    doc = json.loads(path.read_text())
    assert (video.n_levels, video.n_chunks, video.chunk_duration_s) == (10, 199, 3.0)
    assert video.bitrates_bps[0] == 230e3 and video.bitrates_bps[-1] == 6000e3
    assert video.chunk_sizes_bits.tolist() == doc["segment_sizes_bits"]  # already bits: no conversion
    assert video.name == "bbb"


def test_merina_folder_needs_a_ladder(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "videos" / "merina_ssb_sita_sings_the_blues"
    with pytest.raises(VideoFormatError, match=r"no bitrate ladder for the 6 levels: the folder has neither a "
                       r"ladder.json nor a Manifest.mpd \(its PROVENANCE.md may name the ladder\); pass bitrates_bps"):
        read_video(folder)
    with pytest.raises(VideoFormatError, match=r"pass --ladder-kbps with 6 bitrates"):
        read_video(folder, ladder_option="--ladder-kbps")
    video = read_video(folder, bitrates_bps=[k * 1e3 for k in ENVIVIO_KBPS], name="ssb")
    assert (video.n_chunks, video.n_levels, video.name) == (200, 6, "ssb")


def test_ladder_json_is_used_when_there_is_no_mpd(video_dir: Path) -> None:
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [300, 750]}')
    video = read_pensieve_video(video_dir, chunk_duration_s=8.0)
    assert video.bitrates_bps.tolist() == [3e5, 7.5e5]
    assert video.chunk_sizes_bits[:, 0].tolist() == [2.2e6, 2.42e6, 2.64e6]
    assert video.chunk_duration_s == 8.0


def test_argument_ladder_wins_over_files(video_dir: Path) -> None:
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [300, 750]}')
    assert read_pensieve_video(video_dir, bitrates_bps=[1e6, 2e6]).bitrates_bps.tolist() == [1e6, 2e6]


MPD_300_750 = ('<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period><AdaptationSet mimeType="video/mp4">'
               '<Representation id="lo" bandwidth="300000"/><Representation id="hi" bandwidth="750000"/>'
               '</AdaptationSet></Period></MPD>')


def test_ladder_json_and_mpd_are_read_when_they_agree(video_dir: Path) -> None:
    (video_dir / "Manifest.mpd").write_text(MPD_300_750)
    assert read_pensieve_video(video_dir).bitrates_bps.tolist() == [3e5, 7.5e5]  # the MPD alone
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [300, 750]}')
    assert read_pensieve_video(video_dir).bitrates_bps.tolist() == [3e5, 7.5e5]  # both, agreeing


def test_ladder_json_and_mpd_that_disagree_are_refused_naming_both(video_dir: Path) -> None:
    (video_dir / "Manifest.mpd").write_text(MPD_300_750)
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [400, 800]}')
    with pytest.raises(VideoFormatError) as caught:
        read_video(video_dir, ladder_option="--ladder-kbps")
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(video_dir))
    assert "ladder.json (400, 800 kbit/s) and Manifest.mpd (300, 750 kbit/s) give different ladders" in message
    assert "pass --ladder-kbps to override both, or fix one file so that they agree" in message
    # the option overrides both files, agreeing or not
    video = read_video(video_dir, bitrates_bps=[1e6, 2e6], ladder_option="--ladder-kbps")
    assert video.bitrates_bps.tolist() == [1e6, 2e6]


@pytest.mark.parametrize(("ladder", "fragment"), [
    ([3e5], "--ladder-kbps gives 1 bitrates (300 kbit/s) but the chunk-size table has 2 levels"),
    ([3e5, 7.5e5, 1.2e6], "--ladder-kbps gives 3 bitrates (300, 750, 1200 kbit/s) but the chunk-size table has 2"),
    ([7.5e5, 3e5], "--ladder-kbps gives 750, 300 kbit/s: the bitrates must be strictly increasing"),
    ([3e5, 3e5], "--ladder-kbps gives 300, 300 kbit/s: the bitrates must be strictly increasing"),
    ([0.0, 3e5], "--ladder-kbps gives 0, 300 kbit/s: every bitrate must be a finite number > 0"),
    ([-3e5, 3e5], "--ladder-kbps gives -300, 300 kbit/s: every bitrate must be a finite number > 0"),
])
def test_a_bad_ladder_argument_is_refused_naming_the_option(video_dir: Path, ladder: list[float],
                                                            fragment: str) -> None:
    with pytest.raises(VideoFormatError) as caught:
        read_video(video_dir, bitrates_bps=ladder, ladder_option="--ladder-kbps")
    assert fragment in str(caught.value) and str(caught.value).endswith("fix --ladder-kbps")


def test_a_bad_ladder_file_is_refused_naming_the_file_and_the_option(video_dir: Path) -> None:
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [750, 300]}')
    with pytest.raises(VideoFormatError, match=r"ladder.json gives 750, 300 kbit/s: the bitrates must be strictly "
                       r"increasing .*; fix the file or pass --ladder-kbps \(which overrides it\)"):
        read_video(video_dir, ladder_option="--ladder-kbps")
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [300, 750, 1200]}')
    with pytest.raises(VideoFormatError, match=r"ladder.json gives 3 bitrates .* has 2 levels"):
        read_video(video_dir)


def test_a_ladder_argument_replaces_a_sabre_manifests_ladder(shared_data_dir: Path) -> None:
    path = shared_data_dir / "videos" / "sabre_bbb" / "bbb.json"
    ladder = [200e3 * 1.5**k for k in range(10)]  # another ladder, each level within 1.3x of the manifest's
    assert read_video(path, bitrates_bps=ladder).bitrates_bps.tolist() == ladder
    with pytest.raises(VideoFormatError, match=r"bbb.json: --ladder-kbps gives 2 bitrates .* has 10 levels"):
        read_video(path, bitrates_bps=[1e5, 2e5], ladder_option="--ladder-kbps")


def test_mpd_ladder_is_sorted_and_ignores_audio(video_dir: Path) -> None:
    (video_dir / "Manifest.mpd").write_text(
        '<MPD xmlns="urn:mpeg:dash:schema:mpd:2011"><Period>'
        '<AdaptationSet mimeType="audio/mp4"><Representation id="a" bandwidth="64000"/></AdaptationSet>'
        '<AdaptationSet mimeType="video/mp4"><Representation id="hi" bandwidth="900000"/>'
        '<Representation id="lo" bandwidth="400000"/></AdaptationSet></Period></MPD>'
    )
    assert read_pensieve_video(video_dir).bitrates_bps.tolist() == [4e5, 9e5]


def test_pensieve_round_trip_of_envivio(shared_data_dir: Path, tmp_path: Path) -> None:
    original = read_video(shared_data_dir / "videos" / "envivio_dash3")
    out = write_pensieve_video(original, tmp_path / "copy")
    for level in range(6):
        src = (shared_data_dir / "videos" / "envivio_dash3" / f"video_size_{level}").read_text().split()
        assert (out / f"video_size_{level}").read_text().split() == src
    back = read_video(out)
    np.testing.assert_array_equal(back.chunk_sizes_bits, original.chunk_sizes_bits)
    np.testing.assert_array_equal(back.bitrates_bps, original.bitrates_bps)


def test_sabre_to_pensieve_round_trip(shared_data_dir: Path, tmp_path: Path) -> None:
    original = read_sabre_manifest(shared_data_dir / "videos" / "sabre_bbb" / "bbb.json")
    back = read_pensieve_video(write_pensieve_video(original, tmp_path / "bbb"), chunk_duration_s=3.0)
    np.testing.assert_array_equal(back.chunk_sizes_bits, original.chunk_sizes_bits)
    np.testing.assert_array_equal(back.bitrates_bps, original.bitrates_bps)


def test_writer_rounds_to_whole_bytes_and_refuses_stale_levels(tmp_path: Path) -> None:
    video = Video(np.array([1e5, 2e5]), 1.0, np.array([[801.0, 1603.0]]))
    out = write_pensieve_video(video, tmp_path / "v")
    assert (out / "video_size_0").read_text() == "100\n" and (out / "video_size_1").read_text() == "200\n"
    smaller = Video(np.array([1e5]), 1.0, np.array([[800.0]]))
    with pytest.raises(VideoFormatError, match=r"already holds \['video_size_1'\]"):
        write_pensieve_video(smaller, out)


def test_read_video_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(VideoFormatError, match=r"clip.mp4: unknown video file"):
        read_video(path)
