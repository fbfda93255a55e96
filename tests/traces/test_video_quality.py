"""Per-chunk quality (``Video.ssim_db``) in the video readers: round trips, optional, and refused when malformed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from traces.errors import VideoFormatError
from traces.types import Video
from traces.videos import read_pensieve_video, read_sabre_manifest, read_video, write_pensieve_video

QUALITY = np.array([[8.25, 12.5], [9.125, 14.0], [3.5, 6.75]])


def _video(quality: np.ndarray | None = QUALITY) -> Video:
    base = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=3, name="q")
    return Video(base.bitrates_bps, 4.0, base.chunk_sizes_bits, name="q", ssim_db=quality)


def test_pensieve_folder_round_trips_the_quality(tmp_path: Path) -> None:
    folder = write_pensieve_video(_video(), tmp_path / "v")
    assert (folder / "video_ssim_db_1").read_text() == "12.500000\n14.000000\n6.750000\n"
    back = read_video(folder, chunk_duration_s=4.0)
    assert back.ssim_db is not None and back.ssim_db.tolist() == QUALITY.tolist()
    assert back.truncated(2).ssim_db.tolist() == QUALITY[:2].tolist()
    bare = read_pensieve_video(write_pensieve_video(_video(None), tmp_path / "bare"))
    assert bare.ssim_db is None and not bare.has_quality
    assert bare.chunk_sizes_bits.tolist() == back.chunk_sizes_bits.tolist()


def test_sabre_manifest_reads_the_optional_quality(tmp_path: Path) -> None:
    doc = {"segment_duration_ms": 4000, "bitrates_kbps": [1000, 2000],
           "segment_sizes_bits": [[4e6, 8e6]] * 3}
    (tmp_path / "bare.json").write_text(json.dumps(doc))
    assert read_sabre_manifest(tmp_path / "bare.json").ssim_db is None
    (tmp_path / "q.json").write_text(json.dumps({**doc, "segment_ssim_db": QUALITY.tolist()}))
    assert read_video(tmp_path / "q.json").ssim_db.tolist() == QUALITY.tolist()  # type: ignore[union-attr]
    (tmp_path / "short.json").write_text(json.dumps({**doc, "segment_ssim_db": QUALITY[:2].tolist()}))
    with pytest.raises(VideoFormatError, match=r"short\.json: segment_ssim_db has 2 rows; expected 3"):
        read_video(tmp_path / "short.json")
    (tmp_path / "nan.json").write_text(json.dumps({**doc, "segment_ssim_db": [[1, 2], [3, "x"], [5, 6]]}))
    with pytest.raises(VideoFormatError, match=r"segment_ssim_db holds 'x'; expected a finite number"):
        read_video(tmp_path / "nan.json")


def test_video_refuses_a_quality_of_the_wrong_shape_or_not_finite() -> None:
    with pytest.raises(VideoFormatError, match=r"q: ssim_db has shape \(2, 2\) but the chunk-size table is \(3, 2\)"):
        _video(QUALITY[:2])
    bad = QUALITY.copy()
    bad[2, 1] = np.inf
    with pytest.raises(VideoFormatError, match="chunk 3 at level 1 has ssim_db inf"):
        _video(bad)


def test_pensieve_quality_files_must_match_the_size_table(tmp_path: Path) -> None:
    folder = write_pensieve_video(_video(), tmp_path / "v")
    (folder / "video_ssim_db_1").write_text("12.5\n14\n")
    with pytest.raises(VideoFormatError, match=r"video_ssim_db_1: 2 quality lines but the size table has 3 chunks"):
        read_video(folder, chunk_duration_s=4.0)
    (folder / "video_ssim_db_1").write_text("12.5\nnan\n6\n")
    with pytest.raises(VideoFormatError, match=r"video_ssim_db_1:2: quality is 'nan'"):
        read_video(folder, chunk_duration_s=4.0)
    (folder / "video_ssim_db_1").unlink()
    with pytest.raises(VideoFormatError, match=r"must cover the levels 0\.\.1 .* found levels \[0\]"):
        read_video(folder, chunk_duration_s=4.0)
    with pytest.raises(VideoFormatError, match="quality it does not have"):
        write_pensieve_video(_video(None), folder)  # a stale video_ssim_db_0 would be read with the new sizes
