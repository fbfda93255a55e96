"""The ``abr`` command line, through typer's CliRunner, on tiny data written to a temporary data dir."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import abr.cli.main as cli_app
from abr.cli import app
from abr.cli.common import configure_logging
from abr.common.inputs import load_video
from agents.registry import AGENTS
from traces.download import REGISTRY
from traces.readers import read_cooked_trace, read_trace

from .._paths import same_path
from .abr_test_helpers import read_csv, write_cooked

runner = CliRunner()


@pytest.fixture
def no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)


def _evaluate(data: Path, out: Path, *extra: str) -> object:
    args = ["evaluate", "-a", "bba", "-a", "rb", "--video", "tinyvid", "--data-dir", str(data),
            "--out", str(out), *extra]
    return runner.invoke(app, args)


def _assert_one_line_error(result: object, *fragments: str, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("error: "), result.stderr
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_evaluate_writes_results_and_prints_the_summary(data, tmp_path, no_env_data_dir):
    out = tmp_path / "out"
    result = _evaluate(data, out, "-t", "tiny", "--seed", "3")
    assert result.exit_code == 0, result.output
    for token in ("bba", "rb", "tiny", "all", "QoE"):
        assert token in result.stdout
    assert len(read_csv(out / "sessions.csv")) == 2 * 5
    config = json.loads((out / "config.json").read_text())
    expected = ("abr evaluate --agent bba --agent rb --traces tiny --video tinyvid --preset pensieve "
                f"--qoe linear --out {out} --seed 3 --data-dir {data}")
    assert config["command"] == expected
    assert config["seed"] == 3 and config["metadata"]["preset"] == "pensieve"
    assert config["videos"][0]["name"] == "tinyvid" and config["videos"][0]["n_chunks"] == 8
    assert same_path(config["trace_sets"]["tiny"]["path"], data / "traces" / "tiny")
    assert expected in (out / "report.md").read_text()


def test_trace_paths_and_synthetic_traces_make_named_sets(data, tmp_path, no_env_data_dir):
    spec = str(data / "traces" / "tiny")
    out = tmp_path / "out"
    result = _evaluate(data, out, "-t", spec, "--synthetic", "2", "--qoe", "log")
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "sessions.csv")
    assert sorted({r["trace_set"] for r in rows}) == sorted([spec, "synthetic"])
    assert len(rows) == 2 * (5 + 2)
    assert json.loads((out / "config.json").read_text())["qoe"]["kind"] == "log"
    assert all(float(r["utility"]) <= 0 for r in rows)  # log utility: ln(R / R_max) <= 0


def test_without_a_data_dir_the_default_video_is_a_synthetic_envivio_ladder(tmp_path, no_env_data_dir):
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", "-a", "bba", "--synthetic", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    video = json.loads((out / "config.json").read_text())["videos"][0]
    assert video["name"] == "envivio_cbr_synthetic" and video["n_chunks"] == 48
    assert video["bitrates_bps"] == [300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3]
    assert video["chunk_duration_s"] == 4.0


def test_with_a_data_dir_the_default_video_is_envivio(tmp_path, data_dir, no_env_data_dir):
    out = tmp_path / "out"
    args = ["evaluate", "-a", "rb", "--synthetic", "1", "--data-dir", str(data_dir), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    video = json.loads((out / "config.json").read_text())["videos"][0]
    assert video["name"] == "envivio_dash3" and video["n_chunks"] == 49


def test_unknown_agent_is_one_line_listing_the_agents(data, tmp_path):
    result = runner.invoke(app, ["evaluate", "-a", "bba", "-a", "nope", "-t", "tiny", "--data-dir", str(data),
                                 "--out", str(tmp_path / "out")])
    _assert_one_line_error(result, "unknown agent 'nope'", "bba, bola")
    assert not (tmp_path / "out").exists()


def test_unknown_preset_is_one_line_listing_the_presets(data, tmp_path):
    result = _evaluate(data, tmp_path / "out", "-t", "tiny", "--preset", "fast")
    _assert_one_line_error(result, "unknown preset 'fast'", "pensieve", "realistic")


def test_missing_trace_dir_is_one_line_naming_it(data, tmp_path):
    missing = str(tmp_path / "nowhere" / "fcc")
    _assert_one_line_error(_evaluate(data, tmp_path / "out", "-t", missing), missing)
    _assert_one_line_error(_evaluate(data, tmp_path / "out", "-t", "fcc/nope"), "'fcc/nope'", "tiny")


def test_missing_trace_path_without_a_data_dir_names_the_path(tmp_path, no_env_data_dir):
    missing = str(tmp_path / "nowhere")
    result = runner.invoke(app, ["evaluate", "-a", "bba", "-t", missing, "--out", str(tmp_path / "out")])
    _assert_one_line_error(result, missing, "ABR_DATA_DIR")


def test_malformed_trace_file_is_one_line_naming_the_file(data, tmp_path):
    bad = data / "traces" / "tiny" / "c_fast"
    bad.write_text("0.0\t1.0\n1.0\tfast\n")
    _assert_one_line_error(_evaluate(data, tmp_path / "out", "-t", "tiny"), str(bad))


def test_no_traces_at_all_is_an_error(data, tmp_path):
    _assert_one_line_error(_evaluate(data, tmp_path / "out"), "--traces", "--synthetic")


class _BrokenOnSlowLinks:
    """Plays the lowest level, and raises once the mean measured throughput is below 0.7 Mbit/s."""

    name = "broken"

    def reset(self, rng=None):
        pass

    def select(self, context):
        if context.outcomes and np.mean([o.throughput_bps for o in context.outcomes]) < 0.7e6:
            raise RuntimeError("no decision on a slow link")
        return 0


def test_a_failing_session_is_recorded_and_the_run_goes_on_with_exit_1(data, tmp_path, monkeypatch):
    monkeypatch.setitem(AGENTS, "broken", _BrokenOnSlowLinks)
    out = tmp_path / "out"
    # In-process (serial): a monkeypatched agent does not exist in spawned worker processes.
    args = ["evaluate", "-a", "broken", "-a", "bba", "-t", "tiny", "--video", "tinyvid", "--engine", "serial",
            "--data-dir", str(data), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "failed: broken on tiny/a_slow: RuntimeError: no decision on a slow link"
    assert lines[-1].startswith("error: 1 sessions failed") and "failures.csv" in lines[-1]
    # The other nine sessions are in the results; the failure is listed with its reason.
    sessions = read_csv(out / "sessions.csv")
    assert sorted((r["agent"], r["trace"]) for r in sessions if r["agent"] == "broken") == [
        ("broken", name) for name in ("b_medium", "c_fast", "d_swing", "e_ramp")]
    assert len([r for r in sessions if r["agent"] == "bba"]) == 5
    failures = read_csv(out / "failures.csv")
    assert [(f["agent"], f["trace"], f["reason"]) for f in failures] == [
        ("broken", "a_slow", "RuntimeError: no decision on a slow link")]
    assert "1 sessions failed" in (out / "report.md").read_text()
    # Paired with bba only on the four traces both finished.
    paired = [r for r in read_csv(out / "paired.csv") if r["trace_set"] == "all" and r["metric"] == "qoe"]
    assert [(r["agent"], r["baseline"], r["n"]) for r in paired] == [("bba", "broken", "4")]
    assert not (out / "journal.jsonl").exists()
    # The same command again: nothing to do, and the exit code still says a session failed.
    again = runner.invoke(app, args)
    assert again.exit_code == 1 and "nothing to do" in again.stdout, again.output
    assert read_csv(out / "sessions.csv") == sessions


def test_agents_and_presets_are_listed():
    agents = runner.invoke(app, ["agents"])
    assert agents.exit_code == 0
    assert "bba" in agents.stdout and "Buffer-based" in agents.stdout and "rb" in agents.stdout
    assert "guarded:AGENT" in agents.stdout and "py:MODULE:NAME" in agents.stdout
    presets = runner.invoke(app, ["-q", "presets"])
    assert presets.exit_code == 0
    for token in ("pensieve", "pensieve-train", "realistic", "max_buffer_s", "link_rtt_s", "0.08"):
        assert token in presets.stdout


def test_traces_info_reports_count_hours_and_mean(data):
    result = runner.invoke(app, ["-v", "traces", "info", "tiny", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    traces = [read_trace(p) for p in sorted((data / "traces" / "tiny").iterdir())]
    total_s = sum(t.duration_s for t in traces)
    mean_mbps = sum(t.mean_throughput_bps * t.duration_s for t in traces) / total_s / 1e6
    assert "5" in result.stdout
    assert f"{total_s / 3600:.2f}" in result.stdout and f"{mean_mbps:.3f}" in result.stdout


def test_traces_info_on_a_malformed_file_names_it(data):
    bad = write_cooked(data / "traces" / "bad" / "t1", [0.0, 1.0], [1.0, -2.0])
    result = runner.invoke(app, ["traces", "info", str(bad)])
    _assert_one_line_error(result, str(bad))


def test_traces_convert_mahimahi_to_cooked(tmp_path):
    src = tmp_path / "link.down"
    src.write_text("".join(f"{ms}\n" for ms in [0, 0, 10, 400, 900, 1200, 1300, 2500]))
    dst = tmp_path / "link.cooked"
    result = runner.invoke(app, ["traces", "convert", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    original, cooked = read_trace(src), read_cooked_trace(dst)
    np.testing.assert_array_equal(cooked.times_s, original.times_s)
    np.testing.assert_allclose(cooked.throughput_bps, original.throughput_bps, rtol=1e-12)


def test_traces_convert_a_folder(data, tmp_path):
    dst = tmp_path / "converted"
    result = runner.invoke(app, ["traces", "convert", str(data / "traces" / "tiny"), str(dst)])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (data / "traces" / "tiny").iterdir())
    assert sorted(p.name for p in dst.iterdir()) == names


def test_traces_convert_a_missing_file_is_one_line(tmp_path):
    missing = tmp_path / "absent.down"
    _assert_one_line_error(runner.invoke(app, ["traces", "convert", str(missing), str(tmp_path / "x")]),
                           str(missing))


def test_download_lists_the_registry_and_rejects_unknown_names(tmp_path):
    listing = runner.invoke(app, ["download", "--list"])
    assert listing.exit_code == 0
    for name in REGISTRY:
        assert name in listing.stdout
    unknown = runner.invoke(app, ["download", "nope", "--dest", str(tmp_path)])
    _assert_one_line_error(unknown, "unknown dataset 'nope'", sorted(REGISTRY)[0])
    _assert_one_line_error(runner.invoke(app, ["download", "--dest", str(tmp_path)]), "--list")


def test_python_dash_m_abr_runs_the_cli():
    done = subprocess.run([sys.executable, "-m", "abr", "--help"], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0 and "evaluate" in done.stdout


def test_verbosity_flags_set_the_log_level_only_while_the_command_runs():
    traces_logger = logging.getLogger("traces")
    before = (traces_logger.level, list(traces_logger.handlers), traces_logger.propagate)
    seen: dict[str, int] = {}

    def spy(verbose: int, quiet: bool):
        restore = configure_logging(verbose, quiet)
        seen["level"] = traces_logger.getEffectiveLevel()
        return restore

    for flags, level in ((["-q"], logging.ERROR), ([], logging.WARNING), (["-v"], logging.INFO),
                         (["-vv"], logging.DEBUG)):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(cli_app, "configure_logging", spy)
            assert runner.invoke(app, [*flags, "agents"]).exit_code == 0
        assert seen["level"] == level
        assert (traces_logger.level, list(traces_logger.handlers), traces_logger.propagate) == before


def test_bench_json_prints_one_object_with_positive_rates_over_the_given_traces(data):
    result = runner.invoke(app, ["bench", "--json", "--traces", "tiny", "--video", "tinyvid", "--repeats", "1",
                                 "--limit", "3", "--data-dir", str(data)])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["traces"] == 3 and figures["repeats"] == 1 and figures["trace_sets"] == ["tiny"]
    for engine in ("simpy_single", "gym_env", "rollout_bba"):
        assert figures[engine] > 0
    assert figures["machine"]["cpu_count"] >= 1


def test_bench_without_a_data_dir_falls_back_to_synthetic_traces(no_env_data_dir):
    result = runner.invoke(app, ["bench", "--json", "--repeats", "1", "--limit", "2"])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.stdout)
    assert figures["trace_sets"] == ["synthetic"] and figures["traces"] == 2


def test_scale_mean_mbps_scales_each_set_by_one_factor(data, tmp_path):
    from abr.common.inputs import load_trace_set

    tiny = load_trace_set("tiny", data)
    result = _evaluate(data, tmp_path / "out", "-t", "tiny", "--scale-mean-mbps", "2.5", "--engine", "serial")
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    factor = config["metadata"]["trace_scale_factors"]["tiny"]
    assert factor == pytest.approx(2.5e6 / tiny.mean_throughput_bps, rel=1e-12)
    assert "--scale-mean-mbps 2.5" in config["command"]
    # The sessions are those of the traces scaled by that factor.
    from agents import make_agent
    from simulator.config import preset
    from simulator.rollout import run_session

    rows = [r for r in read_csv(tmp_path / "out" / "sessions.csv") if r["agent"] == "bba"]
    video = load_video("tinyvid", data)
    for row, trace in zip(rows, tiny.traces, strict=True):
        outcomes = run_session(make_agent("bba"), trace.scaled(factor), video, preset("pensieve"))
        assert float(row["rebuffer_s"]) == pytest.approx(sum(o.rebuffer_s for o in outcomes), rel=1e-12, abs=1e-12)
