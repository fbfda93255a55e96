"""``abr sessions simulate`` and ``abr sessions recommender`` end to end, and their errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from abr.cli import app
from traces.readers import read_trace_dir

runner = CliRunner()
SMALL = ["--users", "40", "--days", "2", "--horizon-min", "2", "--catalog", "synthetic", "--network", "norway/test"]


def test_simulate_writes_every_output(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--agent", "bba", "--agent", "fixed-top",
                                 "--seed", "3", *SMALL, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "elapsed" in result.output and "A/B fixed-top - bba" in result.output
    names = {p.name for p in out.iterdir() if not p.name.startswith(".abr-run.")}
    assert names == {"sessions.csv", "users.csv", "policies.csv", "recommender.csv", "validation.json",
                     "retention.csv", "outcomes.json", "power.csv", "ab.json", "config.json", "report.md",
                     "retention.png", "watch_hours.png", "engagement.png", "recommender.png"}
    sessions = (out / "sessions.csv").read_text().splitlines()
    assert sessions[0].startswith("agent,day,user,household,view")
    users = (out / "users.csv").read_text().splitlines()
    assert len(users) == 1 + 2 * 40  # one row per (policy, user)
    config = json.loads((out / "config.json").read_text())
    assert config["config"]["users"] == 40 and config["config"]["agents"] == ["bba", "fixed-top"]
    n_traces = len(read_trace_dir(data_dir / "traces" / "norway" / "test"))
    assert "--seed 3" in config["command"] and config["networks"] == {"norway/test": n_traces}
    recommender = (out / "recommender.csv").read_text().splitlines()
    assert len(recommender) == 1 + 2 * 2  # (policy, day)
    report = (out / "report.md").read_text()
    assert "Validation of the effect estimators" in report and "Retention over 2 days" in report
    assert "calibrat" not in report.replace("not a calibration", "")


def test_simulate_without_a_data_dir_uses_synthetic_inputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--users", "20", "--days", "1",
                                 "--horizon-min", "1", "--no-plots"])
    assert result.exit_code == 0, result.output
    config = json.loads((out / "config.json").read_text())
    assert config["catalog"] == "synthetic" and list(config["networks"]) == ["synthetic"]


@pytest.mark.parametrize(("args", "message"), [
    (["--agent", "nope"], "unknown agent 'nope'"),
    (["--agent", "optimal"], "needs the whole trace in advance"),
    (["--agent", "bba", "--agent", "rb", "--agent", "bola"], "give one policy, or two"),
    (["--agent", "bba", "--agent", "bba"], "each arm needs a different policy"),
    (["--users", "0"], "users=0 must be an integer >= 1"),
    (["--days", "-1"], "days=-1 must be an integer >= 1"),
    (["--catalog", "imdb"], "catalog='imdb' is not one of"),
    (["--network", "no/such/set"], "no/such/set"),
])
def test_bad_input_is_one_clear_line_and_writes_nothing(tmp_path: Path, data_dir: Path, args: list[str],
                                                        message: str) -> None:
    out = tmp_path / "run"
    base = ["sessions", "simulate", "--out", str(out), "--users", "10", "--days", "1", "--catalog", "synthetic",
            "--data-dir", str(data_dir)]
    result = runner.invoke(app, base + args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() or not any(out.iterdir())


def test_a_malformed_ratings_file_is_named(tmp_path: Path, data_dir: Path) -> None:
    bad = tmp_path / "data"
    (bad / "recsys" / "ml-latest-small").mkdir(parents=True)
    shutil.copy(data_dir / "recsys" / "ml-latest-small" / "movies.csv", bad / "recsys" / "ml-latest-small")
    (bad / "recsys" / "ml-latest-small" / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,3,four,964981247\n")
    shutil.copytree(data_dir / "traces" / "norway" / "test", bad / "traces" / "norway" / "test")
    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--users", "10", "--days", "1",
                                 "--catalog", "movielens", "--network", "norway/test", "--data-dir", str(bad)])
    assert result.exit_code == 2, result.output
    assert "ratings.csv:3: rating='four' is not a number" in result.output
    assert not out.exists()


def test_recommender_command_prints_both_models(data_dir: Path) -> None:
    result = runner.invoke(app, ["sessions", "recommender", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    assert "als" in result.output and "popularity" in result.output and "NDCG@10" in result.output


def test_a_reused_out_is_refused_and_overwrite_leaves_no_stale_ab_json(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "run"
    base = ["sessions", "simulate", "--out", str(out), *SMALL, "--no-plots", "--data-dir", str(data_dir)]
    assert runner.invoke(app, [*base, "--agent", "bba", "--agent", "rb"]).exit_code == 0
    assert (out / "ab.json").exists()
    (out / "notes.md").write_text("mine")
    refused = runner.invoke(app, [*base, "--agent", "robustmpc"])
    assert refused.exit_code == 2, refused.output
    assert "--agent bba --agent rb" in refused.stderr and "--overwrite" in refused.stderr
    same = runner.invoke(app, [*base, "--agent", "bba", "--agent", "rb"])
    assert same.exit_code == 0 and "nothing to do" in same.stdout, same.output
    replaced = runner.invoke(app, [*base, "--agent", "robustmpc", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert not (out / "ab.json").exists()  # one policy: no A/B; the old run's file is gone
    assert (out / "notes.md").read_text() == "mine"
    assert json.loads((out / "config.json").read_text())["config"]["agents"] == ["robustmpc"]


def test_an_out_that_is_a_file_is_refused_before_simulating(tmp_path: Path, data_dir: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), *SMALL, "--data-dir", str(data_dir)])
    assert result.exit_code == 2 and "is an existing file" in result.stderr, result.output
    assert out.read_text() == "x"


def test_a_network_too_slow_for_the_video_is_refused_before_simulating(tmp_path: Path, data_dir: Path) -> None:
    slow = tmp_path / "slow"
    slow.mkdir()
    (slow / "crawl").write_text("".join(f"{t}\t0.000001\n" for t in range(5)))
    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--users", "10", "--days", "1",
                                 "--catalog", "synthetic", "--network", str(slow), "--data-dir", str(data_dir)])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "'crawl'" in result.stderr and "too slow for this video" in result.stderr
    assert "busiest title" in result.stderr
    assert not out.exists()


def test_sensitivity_runs_each_unpublished_parameter_at_both_ends_and_resumes(tmp_path: Path, data_dir: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import csv

    from abr.sessions import SessionsConfig, api
    from abr.sessions.outcomes import retention_summary
    from abr.sessions.sensitivity import JOURNAL_FILE, SENSITIVITY

    out = tmp_path / "sens"
    args = ["sessions", "sensitivity", "--out", str(out), "--agent", "bba", "--agent", "fixed-top", "--users", "20",
            "--days", "9", "--horizon-min", "1", "--catalog", "synthetic", "--network", "norway/test",
            "--engine", "serial", "--data-dir", str(data_dir)]
    real_run = api.run_population
    calls: list[SessionsConfig] = []

    def interrupted(config, *a, **k):  # the third run is interrupted
        calls.append(config)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_run(config, *a, **k)

    monkeypatch.setattr(api, "run_population", interrupted)
    assert runner.invoke(app, args).exit_code != 0
    assert len(json.loads((out / JOURNAL_FILE).read_text())["runs"]) == 2 and not (out / "sensitivity.csv").exists()
    first_calls = list(calls)
    calls.clear()

    def counted(config, *a, **k):
        calls.append(config)
        return real_run(config, *a, **k)

    monkeypatch.setattr(api, "run_population", counted)
    result = runner.invoke(app, args)  # the same command resumes: the two finished runs are read back
    assert result.exit_code == 0, result.output
    assert len(calls) == 1 + 2 * len(SENSITIVITY) - 2 == 11
    assert {p.name for p in out.iterdir() if not p.name.startswith(".abr-run.")} == {
        "sensitivity.csv", "sensitivity.md", "sensitivity.png", JOURNAL_FILE}
    rows = list(csv.DictReader((out / "sensitivity.csv").open()))
    assert len(rows) == 3 * len(SENSITIVITY) == 18
    defaults = [r for r in rows if r["is_default"] == "True"]
    assert len(defaults) == len(SENSITIVITY) and len({r["watch_hours_difference"] for r in defaults}) == 1
    by = {(r["parameter"], float(r["value"])): r for r in rows}
    # 9 days: nobody can be 14 days idle; after 7 idle days the least active viewers have churned.
    assert float(by[("returns.churn_idle_days", 14.0)]["churned_a"]) == 0.0
    assert float(by[("returns.churn_idle_days", 7.0)]["churned_a"]) > 0.0
    assert float(by[("returns.churn_idle_days", 7.0)]["churned_difference"]) > 0  # fixed-top's viewers leave
    assert "returns.per_unwatched_share" in (out / "sensitivity.md").read_text()
    # The runs read back from the journal are the runs: the defaults' run again, here, gives the same summary.
    fresh = retention_summary(real_run(first_calls[0], None, plots=False, catalog="synthetic",
                                       networks=("norway/test",), data_dir=data_dir, engine="serial").result)["ab"]
    assert json.loads(json.dumps(fresh)) == json.loads((out / JOURNAL_FILE).read_text())["runs"]["default"]
    assert float(defaults[0]["watch_hours_difference"]) == fresh["watch_hours"]["difference"]


def test_sensitivity_hands_its_viewers_option_to_every_run(tmp_path: Path, data_dir: Path) -> None:
    result = runner.invoke(app, ["sessions", "sensitivity", "--out", str(tmp_path / "s"), "--agent", "bba", "--agent",
                                 "fixed-top", "--users", "5", "--days", "1", "--catalog", "synthetic", "--viewers",
                                 "cloned", "--engine", "serial", "--data-dir", str(data_dir)])
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "viewers='cloned' is not one of clones, drawn" in result.output


def test_without_the_return_model_both_arms_start_the_same_views(tmp_path: Path, data_dir: Path) -> None:
    import csv

    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--agent", "bba", "--agent", "fixed-top",
                                 "--no-return-model", "--no-plots", *SMALL, "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    views: dict[str, set[tuple[str, str, str]]] = {"bba": set(), "fixed-top": set()}
    for row in csv.DictReader((out / "sessions.csv").open()):
        views[row["agent"]].add((row["day"], row["user"], row["view"]))
    assert views["bba"] == views["fixed-top"] and views["bba"]
    assert "--no-return-model" in json.loads((out / "config.json").read_text())["command"]
