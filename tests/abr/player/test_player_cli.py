"""``abr player content``, ``abr play`` and ``abr fidelity`` from the command line (real ffmpeg and chromium)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.evaluation.tables import SESSION_COLUMNS
from abr.player.content import Content, read_content
from agents.registry import make_agent
from simulator.config import preset
from simulator.rollout import run_session
from traces.readers import read_trace

from ..._requirements import require_ffmpeg
from .conftest import step_trace

runner = CliRunner()


def write_trace(path: Path, mbps_low: float, mbps_high: float, at_s: int) -> Path:
    trace = step_trace(mbps_low, mbps_high, at_s, path.stem, seconds=300)
    path.write_text("".join(f"{t:g}\t{b / 1e6:g}\n" for t, b in zip(trace.times_s, trace.throughput_bps)))
    return path


def test_content_command_makes_a_small_ladder(tmp_path: Path) -> None:
    require_ffmpeg()
    result = runner.invoke(app, ["player", "content", str(tmp_path / "c"), "--ladder", "300,1200", "--duration", "8"])
    assert result.exit_code == 0, result.output
    c = read_content(tmp_path / "c")
    assert c.n_segments == 2 and c.ladder_kbps == (300.0, 1200.0)
    bad = runner.invoke(app, ["player", "content", str(tmp_path / "d"), "--ladder", "300,abc"])
    assert bad.exit_code == 2 and "--ladder" in bad.output


@pytest.mark.browser
def test_play_writes_the_session_in_the_evaluate_schema(tmp_path: Path, player_content: Content) -> None:
    trace = write_trace(tmp_path / "step.txt", 1.0, 6.0, 30)
    out = tmp_path / "out"
    result = runner.invoke(app, ["play", "--agent", "robustmpc", "--trace", str(trace), "--out", str(out),
                                 "--content", str(player_content.folder), "--speed", "4"])
    assert result.exit_code == 0, result.output
    with open(out / "sessions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1 and tuple(rows[0]) == SESSION_COLUMNS
    assert rows[0]["agent"] == "robustmpc" and int(rows[0]["n_chunks"]) == player_content.n_segments
    assert f"{float(rows[0]['qoe']):.2f}" in result.output
    with open(out / "chunks.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == player_content.n_segments
    log = json.loads((out / "player_log.json").read_text())["sessions"][0]
    assert log["complete"] and log["undecided"] == []


def test_play_refuses_a_folder_holding_another_runs_results_before_starting_chromium(
        tmp_path: Path, player_content: Content) -> None:
    from abr.common.run_folder import RunFolder

    trace = write_trace(tmp_path / "t.txt", 1.0, 2.0, 10)
    out = tmp_path / "o"
    with RunFolder(out, kind="evaluate", fingerprint="another", command="abr evaluate -a bba (earlier)") as folder:
        folder.will_write("sessions.csv")
        (out / "sessions.csv").write_text("earlier\n")
        folder.done()
    result = runner.invoke(app, ["play", "--agent", "bba", "--trace", str(trace), "--out", str(out), "--content",
                                 str(player_content.folder)])
    assert result.exit_code == 2, result.output
    assert "abr evaluate -a bba (earlier)" in result.stderr and "--overwrite" in result.stderr
    assert (out / "sessions.csv").read_text() == "earlier\n" and not (out / "policy").exists()


def test_play_refuses_bad_input_clearly(tmp_path: Path, player_content: Content) -> None:
    trace = write_trace(tmp_path / "t.txt", 1.0, 2.0, 10)
    args = ["--trace", str(trace), "--out", str(tmp_path / "o"), "--content", str(player_content.folder)]
    no_rule = runner.invoke(app, ["play", "--agent", "bola", *args])
    assert no_rule.exit_code == 2 and "no browser rule" in no_rule.output and "robustmpc" in no_rule.output
    no_content = runner.invoke(app, ["play", "--agent", "bba", "--trace", str(trace), "--out", str(tmp_path / "o"),
                                     "--content", str(tmp_path / "nowhere")])
    assert no_content.exit_code == 2 and "not a content folder" in no_content.output
    (tmp_path / "bad.txt").write_text("0 1\nnot a number\n")
    bad_trace = runner.invoke(app, ["play", "--agent", "bba", "--trace", str(tmp_path / "bad.txt"), "--out",
                                    str(tmp_path / "o"), "--content", str(player_content.folder)])
    assert bad_trace.exit_code == 2 and "bad.txt" in bad_trace.output
    assert not (tmp_path / "o").exists()  # nothing half-written


def _mean_ladder_kbps(chunks_csv: Path, ladder_kbps: tuple[float, ...]) -> tuple[float, list[int]]:
    """Mean nominal bitrate of the chunks a chunks.csv lists (from their levels and the ladder), and the levels."""
    with open(chunks_csv, newline="") as f:
        levels = [int(row["quality_idx"]) for row in csv.DictReader(f)]
    return sum(ladder_kbps[q] for q in levels) / len(levels), levels


@pytest.mark.browser
def test_fidelity_compares_real_and_simulated_sessions(tmp_path: Path, player_content: Content) -> None:
    trace_file = write_trace(tmp_path / "fid.txt", 1.5, 4.0, 40)
    out = tmp_path / "fid"
    result = runner.invoke(app, ["fidelity", "--agent", "bba", "--traces", str(trace_file), "--out", str(out),
                                 "--content", str(player_content.folder)])
    assert result.exit_code == 0, result.output
    with open(out / "fidelity.csv", newline="") as f:
        (row,) = list(csv.DictReader(f))
    # Oracles independent of the fidelity code: the average bitrates from the chunks each side played (their
    # levels on the content's ladder), the simulated levels from the simulator's own rollout, and the relative
    # gap as real / sim - 1.
    ladder = player_content.ladder_kbps
    real_kbps, _ = _mean_ladder_kbps(out / "real" / "chunks.csv", ladder)
    sim_kbps, sim_levels = _mean_ladder_kbps(out / "sim" / "chunks.csv", ladder)
    rollout = run_session(make_agent("bba"), read_trace(trace_file), player_content.video(), preset("realistic"))
    assert sim_levels == [o.quality_idx for o in rollout]
    assert float(row["avg_bitrate_kbps_real"]) == pytest.approx(real_kbps, rel=1e-9)
    assert float(row["avg_bitrate_kbps_sim"]) == pytest.approx(sim_kbps, rel=1e-9)
    assert float(row["bitrate_rel_gap"]) == pytest.approx(real_kbps / sim_kbps - 1.0, abs=1e-9)
    assert abs(float(row["bitrate_rel_gap"])) < 0.25  # the same agent on the same trace plays similar qualities
    assert (out / "real" / "sessions.csv").is_file() and (out / "sim" / "sessions.csv").is_file()
    assert "bitrate_rel_gap" in (out / "fidelity_summary.csv").read_text()


def test_which_agents_run_in_the_player(tmp_path: Path) -> None:
    from abr.player.agents import browser_agent, has_browser_rule

    assert [has_browser_rule(n) for n in ("bba", "mpc", "robustmpc", "fastmpc", "ppo", "ppo:m.zip", "a2c:m.zip")] \
        == [True] * 7
    assert not any(has_browser_rule(n) for n in ("bola", "optimal", "random", "rb"))
    assert browser_agent("mpc", tmp_path).kind == "robustmpc"
    listing = runner.invoke(app, ["agents"])
    rows = {line.split("│")[1].strip(): line.split("│")[-2].strip() for line in listing.output.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert rows["bba"] == "yes" and rows["bola"] == ""
