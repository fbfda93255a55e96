"""``abr evaluate`` reproduces the research simulator's per-trace QoE on real FCC traces.

The reference CSV is rounded to 6 decimals, so a value matches within max(1e-6 * |ref|, 1e-6).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abr.cli import app
from traces.datadir import list_trace_files

from .abr_test_helpers import read_csv

N_TRACES = 5
REFERENCE_POLICY = {"bba": "bb", "rb": "rb"}
COLUMNS = {"qoe": "qoe_sum", "qoe_excl_first": "qoe_sum_excl_first", "avg_bitrate_kbps": "avg_bitrate_kbps",
           "rebuffer_s": "rebuffer_s", "smoothness_penalty": "smooth_penalty"}


def _close(mine: float, ref: float) -> bool:
    return abs(mine - ref) <= max(1e-6 * abs(ref), 1e-6)


@pytest.fixture
def five_fcc_traces(data_dir: Path, tmp_path: Path) -> Path:
    """The first five (by name) traces of genet_benchmark/fcc-test, copied to their own folder."""
    source = data_dir / "traces" / "genet_benchmark" / "fcc-test"
    files = list_trace_files(source)[:N_TRACES]
    assert len(files) == N_TRACES, f"{source} holds fewer than {N_TRACES} traces"
    folder = tmp_path / "fcc5"
    folder.mkdir()
    for path in files:
        shutil.copy(path, folder / path.name)
    return folder


def test_evaluate_matches_the_reference_results(five_fcc_traces, data_dir, reference_results, tmp_path):
    out = tmp_path / "out"
    args = ["evaluate", "--agent", "bba", "--agent", "rb", "--traces", str(five_fcc_traces), "--preset",
            "pensieve", "--video", "envivio_dash3", "--data-dir", str(data_dir), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "sessions.csv")
    assert len(rows) == len(REFERENCE_POLICY) * N_TRACES
    mismatches = []
    for row in rows:
        ref = reference_results[(REFERENCE_POLICY[row["agent"]], row["trace"])]
        assert ref["trace_set"] == "fcc-test" and int(row["n_chunks"]) == int(ref["n_chunks"]) == 48
        for mine_col, ref_col in COLUMNS.items():
            if not _close(float(row[mine_col]), float(ref[ref_col])):
                what = f"{row['agent']} {row['trace']} {mine_col}"
                mismatches.append(f"{what}: {row[mine_col]} vs reference {ref[ref_col]}")
    assert not mismatches, "\n".join(mismatches)
