"""Parity with the research simulator: BBA, rate-based and RobustMPC on all 600 genet_benchmark traces,
on the SimPy core and on the fast core.

RobustMPC is compared with the reference policy ``mpc_fixed`` (errors reset per session, the sizes of the
chunks actually requested), as ../shared/reference/README.md specifies.

The reference CSV prints 6 decimals, so a value is matched within 1e-6 relative or, for values near zero
where the printed rounding dominates, 1e-6 absolute.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from agents import make_agent
from simulator import QoEWeights, preset, session_metrics
from simulator.rollout import run_session
from traces.readers import read_trace_dir
from traces.videos import read_video

REL_TOL = 1e-6
ABS_TOL = 1e-6  # the reference values are printed with 6 decimals
REFERENCE_POLICY = {"bba": "bb", "rb": "rb", "robustmpc": "mpc_fixed"}
TRACE_SETS = ("fcc-test", "norway-test")


def _close(mine: float, ref: float) -> bool:
    return abs(mine - ref) <= max(REL_TOL * abs(ref), ABS_TOL)


@pytest.fixture(scope="module")
def reference(reference_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    with open(reference_dir / "pensieve_fixed_env_results.csv", newline="") as f:
        return {(row["policy"], row["trace_file"]): row for row in csv.DictReader(f)}


@pytest.mark.parametrize("core", ["simpy", "fast"])
@pytest.mark.parametrize("agent", sorted(REFERENCE_POLICY))
def test_reference_results_reproduced_on_all_traces(agent: str, core: str, data_dir: Path, reference: dict) -> None:
    video = read_video(data_dir / "videos" / "envivio_dash3")
    config = preset("pensieve")
    models = {kind: QoEWeights(kind=kind) for kind in ("linear", "log", "hd")}
    checked = 0
    mismatches: list[str] = []
    for trace_set in TRACE_SETS:
        traces = read_trace_dir(data_dir / "traces" / "genet_benchmark" / trace_set)
        for trace in traces:
            outcomes = run_session(make_agent(agent), trace, video, config, core=core)
            ref = reference[(REFERENCE_POLICY[agent], trace.name)]
            linear = session_metrics(outcomes, video.bitrates_bps, models["linear"], chunk_duration_s=4.0)
            values = {
                "qoe_sum": linear.qoe,
                "qoe_sum_excl_first": linear.qoe_excl_first,
                "avg_bitrate_kbps": linear.avg_bitrate_bps / 1e3,
                "rebuffer_s": linear.rebuffer_s,
                "rebuffer_excl_first_s": linear.rebuffer_excl_first_s,
                "smooth_penalty": linear.smoothness_penalty,
                "n_chunks": linear.n_chunks,
                "qoe_log_sum": session_metrics(outcomes, video.bitrates_bps, models["log"], chunk_duration_s=4.0).qoe,
                "qoe_hd_sum": session_metrics(outcomes, video.bitrates_bps, models["hd"], chunk_duration_s=4.0).qoe,
            }
            for column, mine in values.items():
                if not _close(mine, float(ref[column])):
                    mismatches.append(f"{trace_set}/{trace.name} {column}: {mine!r} != {ref[column]}")
            checked += 1
    assert checked == 600
    assert not mismatches, f"{len(mismatches)} mismatches, first: {mismatches[:5]}"
