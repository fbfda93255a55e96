"""Trace readers on real files and tiny fixtures: values, units, conventions, detection and round trips."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from traces.datadir import list_trace_files
from traces.errors import ConfigError, DataDirError
from traces.readers import (
    default_family,
    read_cooked_trace,
    read_csv_trace,
    read_mahimahi_trace,
    read_sabre_network,
    read_trace,
    read_trace_dir,
    write_cooked_trace,
)
from traces.types import Trace

from .._paths import same_path

WriteFile = Callable[..., Path]


def _pooled_mean_mbps(traces: list[Trace]) -> float:
    """Time-weighted mean over a set, as the PROVENANCE statistics define it."""
    bits = sum(float(np.sum(t.throughput_bps[1:] * np.diff(t.times_s))) for t in traces)
    return bits / sum(t.duration_s for t in traces) / 1e6


# --- real data ---------------------------------------------------------------------------------------------


def test_fcc_cooked_file_matches_its_text(shared_data_dir: Path) -> None:
    folder = shared_data_dir / "traces" / "fcc" / "test"
    path = list_trace_files(folder)[0]
    trace = read_cooked_trace(path, family="fcc/test")
    first_line = path.read_text().splitlines()[0].split()
    assert trace.times_s.size == 320
    assert trace.times_s[0] == float(first_line[0])
    assert trace.throughput_bps[0] == pytest.approx(float(first_line[1]) * 1e6)
    assert trace.name == path.name and trace.family == "fcc/test" and same_path(trace.source, path)


@pytest.mark.parametrize(
    ("dataset", "n_files", "mean_mbps"), [("fcc/test", 119, 1.311), ("norway/test", 142, 1.202)]
)
def test_trace_set_matches_provenance_statistics(
    data_env: Path, dataset: str, n_files: int, mean_mbps: float
) -> None:
    traces = read_trace_dir(data_env / "traces" / dataset)
    assert len(traces) == n_files
    assert {t.family for t in traces} == {dataset}
    assert _pooled_mean_mbps(traces) == pytest.approx(mean_mbps, abs=5e-4)


def test_oboe_txt_files_are_traces_and_readmes_are_not(shared_data_dir: Path) -> None:
    oboe = list_trace_files(shared_data_dir / "traces" / "oboe" / "test")
    mahimahi = [p.name for p in list_trace_files(shared_data_dir / "traces" / "mahimahi_cellular")]
    assert len(oboe) == 128 and all(p.suffix == ".txt" for p in oboe)
    assert "README_mahimahi_traces.txt" not in mahimahi and "PROVENANCE.md" not in mahimahi
    assert len(mahimahi) == 13


def test_mahimahi_down_file(shared_data_dir: Path) -> None:
    path = shared_data_dir / "traces" / "mahimahi_cellular" / "ATT-LTE-driving-2016.down"
    stamps_ms = np.loadtxt(path, dtype=np.int64)
    trace = read_trace(path)
    assert trace.family == "mahimahi_cellular"
    n_bins = int(stamps_ms[-1] // 1000) + 1
    assert trace.times_s.tolist() == [float(k) for k in range(n_bins + 1)]
    # every opportunity is counted once: total bits = lines x 1500 bytes
    assert np.sum(trace.throughput_bps[1:]) * 1.0 == pytest.approx(stamps_ms.size * 12_000)
    curator_mean_bps = stamps_ms.size * 12_000 / (stamps_ms[-1] / 1000)
    assert trace.mean_throughput_bps == pytest.approx(curator_mean_bps, rel=0.01)


def test_mahimahi_bin_width(shared_data_dir: Path) -> None:
    path = shared_data_dir / "traces" / "mahimahi_cellular" / "Verizon-LTE-short.down"
    one_s = read_mahimahi_trace(path)
    half_s = read_mahimahi_trace(path, bin_s=0.5)
    assert np.diff(half_s.times_s)[0] == 0.5
    total_bits = one_s.mean_throughput_bps * one_s.duration_s
    assert half_s.mean_throughput_bps * half_s.duration_s == pytest.approx(total_bits)


def test_sabre_network_json(shared_data_dir: Path) -> None:
    trace = read_sabre_network(shared_data_dir / "sabre_raw" / "network.json")
    assert trace.times_s.tolist() == [0.0, 30.0, 60.0, 90.0, 120.0]
    assert trace.throughput_bps.tolist() == [5e6, 5e6, 3e6, 1.5e6, 3e6]
    assert trace.mean_throughput_bps == pytest.approx((5 + 3 + 1.5 + 3) / 4 * 1e6)


def test_sabre_4g_log_agrees_with_its_cooked_conversion(shared_data_dir: Path) -> None:
    raw = read_trace(shared_data_dir / "traces" / "belgium4g" / "raw_sabre_json" / "report_bus_0001.json")
    cooked = read_trace(shared_data_dir / "traces" / "belgium4g" / "train" / "report_bus_0001")
    assert raw.family == "belgium4g/raw_sabre_json"
    # the curated file keeps the period *start* times and drops the end of the last period
    np.testing.assert_allclose(cooked.times_s, raw.times_s[:-1], atol=1e-9)
    np.testing.assert_allclose(cooked.throughput_bps, raw.throughput_bps[1:], rtol=1e-12)


def test_every_shared_trace_set_reads(data_env: Path) -> None:
    for dataset in ("genet_benchmark/fcc-test", "lumos5g/test", "ucc5g/test", "nyu_lte/test", "oboe/test"):
        traces = read_trace_dir(data_env / "traces" / dataset)
        assert traces and all(t.duration_s > 0 for t in traces)


# --- small files -------------------------------------------------------------------------------------------


def test_cooked_tolerates_comments_blank_lines_and_crlf(write_file: WriteFile) -> None:
    path = write_file("t", "# c\r\n\r\n0 1.0\r\n  1\t2.0  \r\n")
    assert read_cooked_trace(path).throughput_bps.tolist() == [1e6, 2e6]


def test_csv_reader_units(write_file: WriteFile) -> None:
    bps = read_csv_trace(write_file("a.csv", "time_s,throughput_bps\n0,500\n1,1500\n"))
    mbps = read_trace(write_file("b.csv", "time_s, throughput_mbps\n0, 0.5\n1, 1.5\n"))
    assert bps.throughput_bps.tolist() == [500.0, 1500.0]
    assert mbps.throughput_bps.tolist() == [5e5, 1.5e6]


def test_mahimahi_conversion_counts_packets_per_bin(write_file: WriteFile) -> None:
    path = write_file("x.up", "0\n0\n0\n999\n1000\n2500\n")
    trace = read_mahimahi_trace(path)
    assert trace.times_s.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert trace.throughput_bps.tolist() == [48_000.0, 48_000.0, 12_000.0, 12_000.0]


def test_mahimahi_bad_bin_width(write_file: WriteFile) -> None:
    with pytest.raises(ConfigError, match=r"bin_s=0 must be"):
        read_mahimahi_trace(write_file("x.down", "1\n2\n"), bin_s=0)


@pytest.mark.parametrize(
    ("name", "content", "expected_rates"),
    [
        ("a.json", '[{"duration_ms": 1000, "bandwidth_kbps": 2}]', [2e3, 2e3]),
        ("b.down", "0\n1500\n", [12e3, 12e3, 12e3]),
        ("c", "0\n1500\n", [12e3, 12e3, 12e3]),  # all-integer single column: Mahimahi
        ("d.csv", "time_s,throughput_kbps\n0,1\n1,2\n", [1e3, 2e3]),
        ("e.log", "0 1\n1 2\n", [1e6, 2e6]),
    ],
)
def test_read_trace_detects_format(
    write_file: WriteFile, name: str, content: str, expected_rates: list[float]
) -> None:
    assert read_trace(write_file(name, content)).throughput_bps.tolist() == expected_rates


def test_read_trace_forced_format_and_unknown_format(write_file: WriteFile) -> None:
    path = write_file("ints", "0 1\n1 2\n")
    assert read_trace(path, fmt="cooked").mean_throughput_bps == 2e6
    with pytest.raises(ConfigError, match="fmt='xml' is not a trace format"):
        read_trace(path, fmt="xml")


def test_default_family(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    assert default_family(tmp_path / "traces" / "fcc" / "test" / "x") == "fcc/test"
    assert default_family(tmp_path / "elsewhere" / "x") == "elsewhere"
    monkeypatch.setenv("ABR_DATA_DIR", str(tmp_path / "data"))
    assert default_family(tmp_path / "data" / "traces" / "norway" / "train" / "x") == "norway/train"


def test_read_trace_dir_sorted_and_family_override(tmp_path: Path, write_file: WriteFile) -> None:
    for name in ("b", "a", "README.md", "split.csv", ".hidden", "raw/c", "x.gz"):
        write_file(f"set/{name}", "0 1\n1 2\n")
    traces = read_trace_dir(tmp_path / "set", family="mine")
    assert [t.name for t in traces] == ["a", "b"]
    assert {t.family for t in traces} == {"mine"}


def test_read_trace_dir_errors_name_path_and_fix(tmp_path: Path, write_file: WriteFile) -> None:
    with pytest.raises(DataDirError, match=r"nowhere does not exist.*'fcc/test'"):
        read_trace_dir(tmp_path / "nowhere")
    write_file("parent/test/t", "0 1\n1 1\n")
    write_file("parent/README.md", "hello")
    with pytest.raises(DataDirError, match=r"parent holds no trace files; it has sub-folders test"):
        read_trace_dir(tmp_path / "parent")


# --- writers -----------------------------------------------------------------------------------------------


def test_cooked_round_trip_of_real_trace(shared_data_dir: Path, tmp_path: Path) -> None:
    original = read_trace(list_trace_files(shared_data_dir / "traces" / "norway" / "test")[0])
    back = read_cooked_trace(write_cooked_trace(original, tmp_path / "copy"))
    np.testing.assert_array_equal(back.times_s, original.times_s)
    np.testing.assert_allclose(back.throughput_bps, original.throughput_bps, rtol=1e-15)


def test_cooked_writer_output_is_the_cooked_format(tmp_path: Path) -> None:
    trace = Trace(np.array([0.0, 1.0, 2.5]), np.array([1e6, 2.5e5, 3e6]))
    text = write_cooked_trace(trace, tmp_path / "t").read_text()
    assert text == "0.0\t1.0\n1.0\t0.25\n2.5\t3.0\n"


def test_sabre_json_round_trip(tmp_path: Path) -> None:
    periods = [{"duration_ms": 500, "bandwidth_kbps": 800, "latency_ms": 40},
               {"duration_ms": 1500, "bandwidth_kbps": 1200}]
    path = tmp_path / "net.json"
    path.write_text(json.dumps(periods))
    trace = read_trace(path)
    assert trace.times_s.tolist() == [0.0, 0.5, 2.0]
    assert trace.throughput_bps.tolist() == [8e5, 8e5, 1.2e6]
