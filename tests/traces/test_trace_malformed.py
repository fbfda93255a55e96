"""Malformed inputs: every error names the file (and the line where one applies) and what was expected."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from traces.errors import DataDirError, TraceFormatError, VideoFormatError
from traces.readers import (
    read_cooked_trace,
    read_csv_trace,
    read_mahimahi_trace,
    read_sabre_network,
    read_trace,
)
from traces.videos import read_pensieve_video, read_sabre_manifest, read_video

from .._paths import same_path

WriteFile = Callable[..., Path]


def _at(path: Path, line: int | None = None) -> str:
    """Regex prefix for an error located at ``path`` (and ``line``), followed by anything."""
    return re.escape(str(path) if line is None else f"{path}:{line}") + ": .*"


# --- cooked traces -----------------------------------------------------------------------------------------

COOKED_CASES = [
    pytest.param("", None, r"no samples; expected lines 'time_s throughput_mbit_s'", id="empty"),
    pytest.param("\n# only a comment\n\n", None, r"no samples", id="blank-and-comments-only"),
    pytest.param("0 1\n1 nan\n", 2, r"throughput_mbit_s is 'nan'; expected a finite number >= 0", id="nan"),
    pytest.param("0 1\n1 inf\n", 2, r"throughput_mbit_s is 'inf'; expected a finite number >= 0", id="inf"),
    pytest.param("0 1\n1 -0.5\n", 2, r"throughput_mbit_s is '-0.5'; expected a finite number >= 0",
                 id="negative-throughput"),
    pytest.param("-1 1\n1 1\n", 1, r"time_s is '-1'; expected a finite number >= 0", id="negative-time"),
    pytest.param("0 1\n2 1\n1 1\n", 3, r"time_s goes backwards: 1.0 after 2.0 on line 2; .*non-decreasing",
                 id="non-monotonic-time"),
    pytest.param("0 1\n1 2\n2 3 4\n", 3, r"expected 2 columns 'time_s throughput_mbit_s', got 3",
                 id="three-columns"),
    pytest.param("0 1\n1\n", 2, r"expected 2 columns 'time_s throughput_mbit_s', got 1", id="one-column"),
    pytest.param("0 1\n1 fast\n", 2, r"expected a number for throughput_mbit_s, got 'fast'",
                 id="non-numeric"),
    pytest.param("0 1.5\n", None, r"single sample; a trace needs at least 2 samples", id="single-sample"),
    pytest.param("0 0\n1 0\n2 0\n", None, r"delivers no data \(throughput is zero", id="all-zero"),
    pytest.param("0 1\n0 1\n", None, r"spans no time", id="zero-duration"),
]


@pytest.mark.parametrize(("content", "line", "message"), COOKED_CASES)
def test_cooked_malformed(write_file: WriteFile, content: str, line: int | None, message: str) -> None:
    path = write_file("fcc/x.txt", content)
    with pytest.raises(TraceFormatError, match=_at(path, line) + message) as info:
        read_cooked_trace(path)
    assert same_path(info.value.path, path) and info.value.line == line


def test_binary_garbage_is_a_clear_error(write_file: WriteFile) -> None:
    path = write_file("fcc/garbage", b"0 1\n\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(TraceFormatError, match=_at(path, 4) + r"looks like a binary file \(NUL byte"):
        read_trace(path)


def test_undecodable_bytes_are_a_clear_error(write_file: WriteFile) -> None:
    path = write_file("fcc/latin1", "0 1\n1 2\n2 3 # caf\u00e9\n".encode("latin-1"))
    message = r"cannot be decoded as UTF-8 text \(bad byte 0xe9"
    with pytest.raises(TraceFormatError, match=_at(path, 3) + message):
        read_cooked_trace(path)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=re.escape(str(tmp_path / "nope")) + r": file not found"):
        read_trace(tmp_path / "nope")


# --- Mahimahi, Sabre, CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        pytest.param("0\n12.5\n", 2, r"expected one non-negative integer timestamp_ms per line \(Mahimahi\), "
                     r"got '12.5'", id="non-integer"),
        pytest.param("0\n-3\n", 2, r"got '-3'", id="negative"),
        pytest.param("0\n5\n4\n", 3, r"timestamp_ms goes backwards: 4 after 5", id="decreasing"),
        pytest.param("\n\n", None, r"the file is empty; expected one integer timestamp_ms", id="empty"),
    ],
)
def test_mahimahi_malformed(write_file: WriteFile, content: str, line: int | None, message: str) -> None:
    path = write_file("cell/link.down", content)
    with pytest.raises(TraceFormatError, match=_at(path, line) + message):
        read_mahimahi_trace(path)


@pytest.mark.parametrize(
    ("document", "line", "message"),
    [
        pytest.param('{"duration_ms": 1}', None, r"expected a JSON list of periods .* got a dict",
                     id="not-a-list"),
        pytest.param('[{"duration_ms": 1000, "bandwidth_kbps": 5}, {"duration_ms": 1000}]', None,
                     r"period 2 \(1-based\) is missing key 'bandwidth_kbps'", id="missing-key"),
        pytest.param('[{"duration_ms": 1000, "bandwidth_kbps": "fast"}]', None,
                     r"period 1 \(1-based\): bandwidth_kbps is 'fast'; expected a finite number >= 0",
                     id="string-bandwidth"),
        pytest.param('[{"duration_ms": 1000, "bandwidth_kbps": 5, "latency_ms": null}]', None,
                     r"latency_ms is None", id="bad-latency"),
        pytest.param('[3]', None, r"period 1 \(1-based\) is a int", id="not-an-object"),
        pytest.param('[]', None, r"the period list is empty", id="empty-list"),
        pytest.param('[\n  {"duration_ms": 1000,\n  "bandwidth_kbps": 5,}\n]', 3, r"invalid JSON",
                     id="invalid-json"),
    ],
)
def test_sabre_network_malformed(
    write_file: WriteFile, document: str, line: int | None, message: str
) -> None:
    path = write_file("net.json", document)
    with pytest.raises(TraceFormatError, match=_at(path, line) + message):
        read_sabre_network(path)


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        pytest.param("time,rate\n0,1\n", 1, r"expected a header 'time_s,throughput_bps' or .*got 'time,rate'",
                     id="bad-header"),
        pytest.param("time_s,throughput_bps\n0,1\n1,2,3\n", 3,
                     r"expected 2 columns 'time_s,throughput_bps', got 3", id="three-fields"),
        pytest.param("time_s,throughput_bps\n0,1\n1,\n", 3, r"expected a number for throughput_bps, got ''",
                     id="empty-field"),
        pytest.param("", None, r"the file is empty", id="empty"),
    ],
)
def test_csv_malformed(write_file: WriteFile, content: str, line: int | None, message: str) -> None:
    path = write_file("t.csv", content)
    with pytest.raises(TraceFormatError, match=_at(path, line) + message):
        read_csv_trace(path)


# --- videos ------------------------------------------------------------------------------------------------


def test_video_level_files_with_mismatched_chunk_counts(write_file: WriteFile) -> None:
    write_file("v/video_size_0", "1\n2\n3\n")
    folder = write_file("v/video_size_1", "4\n5\n").parent
    message = r"video_size_0 has 3 chunks but video_size_1 has 2"
    with pytest.raises(VideoFormatError, match=_at(folder) + message):
        read_pensieve_video(folder, bitrates_bps=[1.0, 2.0])


def test_video_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match=r"unknown video folder .*nope"):
        read_video(tmp_path / "nope")
    with pytest.raises(DataDirError, match=r"unknown video folder .*nope"):
        read_pensieve_video(tmp_path / "nope")


def test_folder_without_level_files_is_unknown(write_file: WriteFile) -> None:
    folder = write_file("v/notes.md", "hi").parent
    with pytest.raises(VideoFormatError, match=_at(folder) + r"unknown video folder: no video_size_N files"):
        read_video(folder)


def test_video_ladder_count_mismatch_vs_mpd(video_dir: Path, shared_data_dir: Path) -> None:
    mpd = (shared_data_dir / "videos" / "envivio_dash3" / "Manifest.mpd").read_text()
    (video_dir / "Manifest.mpd").write_text(mpd)
    message = (r"Manifest.mpd gives 6 bitrates \(300, 750, 1200, 1850, 2850, 4300 kbit/s\) but the chunk-size table "
               r"has 2 levels; .*pass bitrates_bps")
    with pytest.raises(VideoFormatError, match=_at(video_dir) + message):
        read_pensieve_video(video_dir)


def test_video_ladder_count_mismatch_vs_argument(video_dir: Path) -> None:
    with pytest.raises(VideoFormatError, match=r"bitrates_bps gives 3 bitrates \(100, 200, 300 kbit/s\) but the "
                                               r"chunk-size table has 2 levels; .*fix bitrates_bps"):
        read_pensieve_video(video_dir, bitrates_bps=[1e5, 2e5, 3e5])


@pytest.mark.parametrize(
    ("content", "line", "message"),
    [
        pytest.param("100\n-5\n7\n", 2, r"chunk size is -5 bytes; expected an integer > 0", id="negative"),
        pytest.param("100\n0\n7\n", 2, r"chunk size is 0 bytes", id="zero"),
        pytest.param("100\n1.5e3\n7\n", 2, r"expected one integer chunk size in bytes per line, got '1.5e3'",
                     id="non-integer"),
        pytest.param("\n", None, r"the file is empty", id="empty"),
    ],
)
def test_video_bad_chunk_size(video_dir: Path, content: str, line: int | None, message: str) -> None:
    level_file = video_dir / "video_size_1"
    level_file.write_text(content)
    with pytest.raises(VideoFormatError, match=_at(level_file, line) + message):
        read_pensieve_video(video_dir, bitrates_bps=[1e5, 2e5])


def test_video_level_gap(video_dir: Path) -> None:
    (video_dir / "video_size_3").write_text("1\n2\n3\n")
    with pytest.raises(VideoFormatError, match=r"without gaps; missing levels \[2\]"):
        read_pensieve_video(video_dir)


def test_bad_mpd_and_ladder_json(video_dir: Path) -> None:
    (video_dir / "Manifest.mpd").write_text("<MPD><Period>\n<AdaptationSet>\n</MPD>")
    with pytest.raises(VideoFormatError, match=_at(video_dir / "Manifest.mpd", 3) + "invalid XML"):
        read_pensieve_video(video_dir)
    (video_dir / "Manifest.mpd").unlink()
    (video_dir / "ladder.json").write_text('{"bitrates_kbps": [300, "fast"]}')
    message = r"bitrates_kbps holds 'fast'"
    with pytest.raises(VideoFormatError, match=_at(video_dir / "ladder.json") + message):
        read_pensieve_video(video_dir)


_LADDER = {"segment_duration_ms": 3000, "bitrates_kbps": [1, 2]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(_LADDER, r"expected a JSON object with keys "
                     r"\['segment_duration_ms', 'bitrates_kbps', 'segment_sizes_bits'\]", id="missing-key"),
        pytest.param({**_LADDER, "segment_sizes_bits": [[1, 2], [3]]},
                     r"segment 2 \(1-based\) has 1 sizes; expected 2", id="short-row"),
        pytest.param({**_LADDER, "segment_sizes_bits": [[1, -2]]},
                     r"segment 1 \(1-based\), level 1: size -2 bits; expected a number > 0",
                     id="negative-size"),
        pytest.param({**_LADDER, "bitrates_kbps": [2, 1], "segment_sizes_bits": [[1, 2]]},
                     r"bitrates must be strictly increasing", id="descending-ladder"),
        pytest.param({**_LADDER, "segment_duration_ms": "3s", "segment_sizes_bits": [[1, 2]]},
                     r"segment_duration_ms holds '3s'; expected a finite number", id="duration-string"),
        pytest.param([1, 2], r"expected a JSON object with keys", id="list"),
    ],
)
def test_sabre_manifest_malformed(write_file: WriteFile, document: object, message: str) -> None:
    path = write_file("m.json", json.dumps(document))
    with pytest.raises(VideoFormatError, match=_at(path) + message):
        read_sabre_manifest(path)
