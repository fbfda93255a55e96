"""The generalisation protocol (``abr generalization``) on a tiny trained model and tiny trace families.

Families written by the tests: ``fama`` (trained on ``fama/train``) and ``famb`` (held out; very slow
traces, so the optimum's mean QoE is negative unscaled). ``famb/test`` also holds a copy of a ``fama/train``
trace under another name: seen by content, so never counted as out-of-distribution.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from typer.testing import CliRunner  # noqa: E402

from abr.cli import app  # noqa: E402
from abr.evaluation.compare import PairedRow  # noqa: E402
from abr.evaluation.generalization import (  # noqa: E402
    IN_DISTRIBUTION,
    OUT_OF_DISTRIBUTION,
    UNKNOWN,
    GeneralizationResult,
    ModelInfo,
    classify,
    run_generalization,
)
from abr.evaluation.generalization_stats import (  # noqa: E402
    ROW_COLUMNS,
    AcceptanceCriteria,
    GeneralizationRow,
    acceptance_checks,
    in_distribution_check,
    titles_check,
    worst_mean,
)
from abr.training.config import TrainConfig  # noqa: E402
from abr.training.run import train  # noqa: E402
from agents.provenance import PROVENANCE_ATTR, model_provenance  # noqa: E402
from agents.rl import load_model  # noqa: E402
from traces.fingerprint import trace_fingerprint  # noqa: E402
from traces.readers import read_trace, read_trace_dir  # noqa: E402

from .abr_test_helpers import read_csv, write_cooked, write_tiny_video_dir  # noqa: E402

TINY = TrainConfig(total_timesteps=256, n_envs=2, n_steps=64, batch_size=64, traces=("fama/train",),
                   val_traces=("fama/train",), synthetic_traces=2, val_synthetic_traces=0, eval_freq_steps=0,
                   n_filters=4, hidden_sizes=(8,), tensorboard=False, video="tiny")
#: Mbit/s patterns of the families' traces (20 samples, 2 s apart).
FAMA = {"train/a1": [0.8, 1.5, 1.0, 2.0], "train/a2": [2.5, 1.2, 3.0, 0.9], "train/a3": [0.6, 0.9, 1.4, 1.1],
        "test/a4": [1.0, 2.2, 0.7, 1.6], "test/a5": [3.0, 2.0, 1.0, 0.5]}
FAMB = {"train/b1": [0.05, 0.1, 0.08, 0.06], "train/b2": [0.1, 0.07, 0.12, 0.05],
        "test/b3": [0.06, 0.09, 0.05, 0.1], "test/b4": [0.08, 0.05, 0.11, 0.07]}
HEURISTICS = ("bba",)
AGENTS_PER_SET = 5  # model, bba, robustmpc, bola-e, optimal


def _write_family(root: Path, family: str, patterns: dict[str, list[float]]) -> None:
    for name, pattern in patterns.items():
        write_cooked(root / "traces" / family / name, [2.0 * i for i in range(20)],
                     [pattern[i % len(pattern)] for i in range(20)])


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gen") / "data"
    _write_family(root, "fama", FAMA)
    _write_family(root, "famb", FAMB)
    # the same content as fama/train/a2, under another name, in another family's folder
    shutil.copy(root / "traces" / "fama" / "train" / "a2", root / "traces" / "famb" / "test" / "zz_copy.log")
    write_tiny_video_dir(root / "videos" / "tiny", n_chunks=8)
    return root


@pytest.fixture(scope="module")
def model(data: Path) -> Path:
    return train(TINY, data.parent / "run", data_dir=data).best_model_path


@pytest.fixture(scope="module")
def protocol(model: Path, data: Path) -> GeneralizationResult:
    return run_generalization(model, data.parent / "gen", sets=["fama/test", "famb/test"], held_out=["famb"],
                              heuristics=HEURISTICS, video="tiny", data_dir=data, engine="serial")


def test_training_records_provenance_in_the_model_and_config(model: Path, data: Path) -> None:
    prov = model_provenance(load_model(model)[0])
    assert prov is not None
    assert prov["train"]["families"] == ["fama", "synthetic"]
    assert prov["train"]["trace_sets"] == ["fama/train", "synthetic"]
    assert prov["train"]["n_traces"] == 3 + 2
    assert prov["synthetic"]["train"] == {"count": 2, "seed": TINY.seed, "kind": "markov"}
    fama_train = read_trace_dir(data / "traces" / "fama" / "train")
    assert {trace_fingerprint(t) for t in fama_train} <= set(prov["validation"]["fingerprints"])
    assert len(prov["train"]["fingerprints"]) == 5
    config = json.loads((model.parent / "config.json").read_text())
    assert config["provenance"] == prov


def test_provenance_survives_the_exports_inference_copy(model: Path, tmp_path: Path) -> None:
    from abr.training.inference import write_inference_model

    copy = write_inference_model(model, tmp_path / "inference.zip")
    original = model_provenance(load_model(model)[0])
    assert original is not None and model_provenance(load_model(copy)[0]) == original


def test_an_old_model_without_provenance_loads_and_labels_nothing_out_of_distribution(model: Path,
                                                                                      tmp_path: Path) -> None:
    loaded, _ = load_model(model)
    delattr(loaded, PROVENANCE_ATTR)
    loaded.save(str(tmp_path / "old.zip"))
    info = ModelInfo(tmp_path / "old.zip", "ppo:old", model_provenance(load_model(tmp_path / "old.zip")[0]))
    assert info.provenance is None and not info.is_known
    trace = read_trace_dir(Path(str(model)).parents[1] / "data" / "traces" / "famb" / "test")
    assert classify("famb/test", "famb", ["famb/test"], trace, info).label == UNKNOWN


def test_a_copy_of_a_training_trace_is_seen_under_another_name_and_folder(protocol: GeneralizationResult,
                                                                          data: Path) -> None:
    sets = {s.name: s for s in protocol.sets}
    assert sets["fama/test"].label == IN_DISTRIBUTION and sets["fama/test"].n_seen == 0
    famb = sets["famb/test"]
    assert famb.label == OUT_OF_DISTRIBUTION
    assert [t.name for t, seen in zip(famb.traces, famb.seen, strict=True) if seen] == ["zz_copy.log"]
    assert [t.name for t in famb.evaluated] == ["b3", "b4"]  # the seen copy is not played as OOD
    held = sets["famb/all"]
    assert held.held_out and held.n_seen == 1 and len(held.evaluated) == 4
    copy = read_trace(data / "traces" / "famb" / "test" / "zz_copy.log")
    assert trace_fingerprint(copy) in set(protocol.model.provenance["train"]["fingerprints"])  # type: ignore[index]
    sessions = read_csv(protocol.out_dir / "unscaled" / "sessions.csv")
    assert not [r for r in sessions if r["trace"].endswith("zz_copy.log")]


def test_the_csv_has_one_row_per_set_scaling_and_agent(protocol: GeneralizationResult) -> None:
    rows = read_csv(protocol.out_dir / "generalization.csv")
    assert tuple(rows[0]) == ROW_COLUMNS
    assert len(rows) == 3 * 2 * AGENTS_PER_SET
    n = {(r["trace_set"], r["scaling"], r["agent"]): int(r["n"]) for r in rows}
    assert n[("fama/test", "scaled", "bba")] == 2 and n[("famb/all", "unscaled", "optimal")] == 4
    roles = {r["agent"]: r["role"] for r in rows}
    assert roles[protocol.model.agent] == "model" and roles["optimal"] == "optimum" and roles["bba"] == "heuristic"
    factors = {(r["trace_set"], r["scaling"]): float(r["scale_factor"]) for r in rows}
    assert factors[("famb/test", "unscaled")] == 1.0 and factors[("famb/test", "scaled")] > 10.0


def _sessions(protocol: GeneralizationResult, scaling: str, trace_set: str) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for r in read_csv(protocol.out_dir / scaling / "sessions.csv"):
        if r["trace_set"] == trace_set:
            out.setdefault(r["agent"], {})[r["trace"]] = float(r["qoe_excl_first"])
    return out


@pytest.mark.parametrize("scaling", ["unscaled", "scaled"])
def test_figures_and_paired_differences_match_the_sessions(protocol: GeneralizationResult, scaling: str) -> None:
    rows = {(r.trace_set, r.agent): r for r in protocol.rows if r.scaling == scaling}
    for trace_set in ("fama/test", "famb/all"):
        qoe = _sessions(protocol, scaling, trace_set)
        mine = np.array([qoe[protocol.model.agent][t] for t in sorted(qoe["robustmpc"])])
        row = rows[(trace_set, protocol.model.agent)]
        assert row.mean == pytest.approx(mine.mean()) and row.median == pytest.approx(np.median(mine))
        assert row.p10 == pytest.approx(np.percentile(mine, 10))
        assert row.worst5_mean == pytest.approx(mine.min())  # 5% of <= 20 traces: the worst one
        assert row.ci_low <= row.mean <= row.ci_high
        for prefix, baseline in (("robustmpc", "robustmpc"), ("bola_e", "bola-e")):
            theirs = np.array([qoe[baseline][t] for t in sorted(qoe["robustmpc"])])
            diff = row.vs[prefix]
            assert diff.mean_diff == pytest.approx((mine - theirs).mean())
            assert diff.win_rate == pytest.approx(np.mean(mine - theirs > 1e-9))
            assert diff.ci_low <= diff.mean_diff <= diff.ci_high
        best = max(("robustmpc", "bola-e"), key=lambda a: np.mean(list(qoe[a].values())))
        assert row.vs["best"].baseline == best
        assert rows[(trace_set, "robustmpc")].vs.get("robustmpc") is None  # no difference with itself


def test_share_of_optimum_only_where_the_optimums_mean_is_positive(protocol: GeneralizationResult) -> None:
    rows = read_csv(protocol.out_dir / "generalization.csv")
    blank = positive = 0
    for r in rows:
        optimum, mean = float(r["optimum_mean"]), float(r["mean"])
        assert float(r["diff_vs_optimum"]) == pytest.approx(mean - optimum)
        if optimum > 0:
            assert float(r["pct_of_optimum"]) == pytest.approx(100.0 * mean / optimum)
            positive += 1
        else:
            assert r["pct_of_optimum"] == ""
            blank += 1
    # famb unscaled (0.05-0.12 Mbit/s) has a negative optimum; fama and every scaled set a positive one
    famb = [r for r in rows if r["trace_set"].startswith("famb") and r["scaling"] == "unscaled"]
    assert famb and all(r["pct_of_optimum"] == "" for r in famb)
    assert blank == len(famb) and positive == len(rows) - blank


def test_report_json_and_plot(protocol: GeneralizationResult) -> None:
    out = protocol.out_dir
    document = json.loads((out / "generalization.json").read_text())
    checks = {c["name"]: c for c in document["checks"]}
    assert checks["in_distribution"]["passed"] is None  # fcc/test + norway/test are not part of this run
    assert checks["titles:tiny"]["passed"] is None  # another title than envivio_dash3, but no fcc/norway sets
    assert document["settings"]["scalings"] == ["unscaled", "scaled"]
    assert document["settings"]["ladder_kbps"] is None
    assert document["settings"]["video_ladder_kbps"] == [300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0]
    held = checks["held_out:famb"]
    model_rows = {(r.scaling): r for r in protocol.rows if r.trace_set == "famb/all" and r.role == "model"}
    mpc = {r.scaling: r for r in protocol.rows if r.trace_set == "famb/all" and r.agent == "robustmpc"}
    bola = {r.scaling: r for r in protocol.rows if r.trace_set == "famb/all" and r.agent == "bola-e"}
    expected = all(model_rows[s].mean >= max(mpc[s].mean, bola[s].mean) and model_rows[s].p10 >= mpc[s].p10
                   for s in ("unscaled", "scaled"))
    assert held["passed"] is expected
    assert held["figures"]["scaled"]["robustmpc_p10"] == pytest.approx(mpc["scaled"].p10)
    assert {s["name"]: s["n_seen"] for s in document["sets"]} == {"fama/test": 0, "famb/test": 1, "famb/all": 1}
    assert document["model"]["provenance"]["train"]["families"] == ["fama", "synthetic"]
    digest = hashlib.sha256(Path(document["model"]["path"]).read_bytes()).hexdigest()
    assert document["model"]["sha256"] == digest  # the report names the very file it evaluated
    assert len(document["rows"]) == 30
    text = (out / "generalization.md").read_text()
    assert f"sha256 `{digest}`" in text
    assert "## Acceptance checks" in text and "held_out:famb" in text and "`fama/train`" in text
    png = (out / "generalization.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def _diff(mean_diff: float, ci_low: float, ci_high: float, win_rate: float) -> PairedRow:
    return PairedRow("m", "robustmpc", "fcc/test+norway/test", "qoe_excl_first", 100, mean_diff, ci_low, ci_high,
                     win_rate, 0.0, 1.0 - win_rate)


def _row(agent: str, mean: float, *, pct: float | None = None, vs: dict[str, PairedRow] | None = None,
         ) -> GeneralizationRow:
    return GeneralizationRow("fcc/test+norway/test", "pooled", "fcc+norway", IN_DISTRIBUTION, "unscaled", 1.0,
                             agent, "model", 100, mean, mean - 1, mean + 1, mean, mean - 5, mean - 10, 0.01,
                             55.0, pct, mean - 55.0, vs or {})


def test_in_distribution_check_thresholds() -> None:
    criteria = AcceptanceCriteria()
    mpc = _row("robustmpc", 40.0)

    def check(diff: float, low: float, pct: float) -> bool | None:
        mine = _row("m", 40.0 + diff, pct=pct, vs={"robustmpc": _diff(diff, low, diff + 1, 0.6)})
        return in_distribution_check([mine, mpc], "m", criteria)["passed"]

    assert check(2.0, 0.5, 86.0) is True  # +5.0% of 40, CI above zero, 86% of the optimum
    assert check(1.9, 0.5, 86.0) is False  # +4.75%
    assert check(2.0, -0.1, 86.0) is False  # CI includes zero
    assert check(2.0, 0.5, 84.9) is False  # below 85% of the optimum


def test_titles_check_only_for_another_video_and_its_threshold() -> None:
    mpc = _row("robustmpc", 40.0)

    def rows(diff: float) -> list[GeneralizationRow]:
        return [_row("m", 40.0 + diff, vs={"robustmpc": _diff(diff, diff - 1, diff + 1, 0.5)}),
                mpc]

    criteria = AcceptanceCriteria()
    passed = titles_check(rows(0.0), "m", "merina_avengers", criteria)
    assert passed["name"] == "titles:merina_avengers" and passed["passed"] is True  # a tie passes (>=)
    assert passed["figures"]["ci_low"] == -1.0 and passed["figures"]["video"] == "merina_avengers"
    assert titles_check(rows(-0.1), "m", "merina_avengers", criteria)["passed"] is False
    assert titles_check([mpc], "m", "merina_avengers", criteria)["passed"] is None  # pooled sets not in the run
    names = {video: [c["name"] for c in acceptance_checks(rows(1.0), "m", {}, {}, video=video)]
             for video in (None, "envivio_dash3", "merina_avengers")}
    assert names[None] == names["envivio_dash3"] and not any(n.startswith("titles") for n in names[None])
    assert names["merina_avengers"] == [*names[None], "titles:merina_avengers"]


def test_checks_that_need_a_skipped_scaling_are_not_applicable(protocol: GeneralizationResult) -> None:
    unscaled = [r for r in protocol.rows if r.scaling == "unscaled"]
    checks = {c["name"]: c for c in acceptance_checks(unscaled, protocol.model.agent, {"famb": ["famb/all"]},
                                                      {"famb": "famb/all"}, scalings=("unscaled",))}
    held = checks["held_out:famb"]
    assert held["passed"] is None and "scaled evaluation was skipped (--scalings unscaled)" in held["note"]
    assert set(held["figures"]) == {"unscaled"}  # the scaling that ran keeps its figures
    scaled = [r for r in protocol.rows if r.scaling == "scaled"]
    checks = {c["name"]: c for c in acceptance_checks(scaled, protocol.model.agent, {}, {},
                                                      scalings=("scaled",), video="other")}
    assert all(c["passed"] is None and "unscaled evaluation was skipped" in c["note"] for c in checks.values())


def test_another_title_with_a_ladder_and_unscaled_only(model: Path, data: Path, tmp_path: Path) -> None:
    root = tmp_path / "data"
    for family in ("fcc", "norway"):
        _write_family(root, family, {f"test/{family}{i}": FAMA[name] for i, name in enumerate(["test/a4", "test/a5"])})
    video = write_tiny_video_dir(root / "videos" / "title", n_chunks=8)
    (video / "ladder.json").unlink()  # as the MERINA folders: the ladder comes from --ladder-kbps
    ladder = "300,750,1200,1850,2850,4300"
    base = ["generalization", str(model), "--data-dir", str(root), "--video", "title", "--engine", "serial",
            "--agent", "bba", "--traces", "fcc/test", "--traces", "norway/test"]
    runner = CliRunner()
    for args, message in (([], "--ladder-kbps"), (["--ladder-kbps", ladder, "--scalings", "unscaled,half"],
                                                  "--scalings")):
        failed = runner.invoke(app, [*base, "--out", str(tmp_path / "bad"), *args])
        assert failed.exit_code == 2 and message in failed.output, failed.output
        assert not (tmp_path / "bad").exists()
    out = tmp_path / "title"
    result = runner.invoke(app, [*base, "--out", str(out), "--ladder-kbps", ladder, "--scalings", "unscaled"])
    assert result.exit_code == 0, result.output
    assert (out / "unscaled" / "sessions.csv").is_file() and not (out / "scaled").exists()
    rows = read_csv(out / "generalization.csv")
    assert {r["scaling"] for r in rows} == {"unscaled"}
    assert {r["trace_set"] for r in rows} == {"fcc/test", "norway/test", "fcc/test+norway/test"}
    document = json.loads((out / "generalization.json").read_text())
    settings = document["settings"]
    assert settings["ladder_kbps"] == [300.0, 750.0, 1200.0, 1850.0, 2850.0, 4300.0]
    assert settings["video_ladder_kbps"] == settings["ladder_kbps"]
    assert settings["scalings"] == ["unscaled"] and settings["video"] == "title"
    assert list(document["evaluations"]) == ["unscaled"]
    checks = {c["name"]: c for c in document["checks"]}
    title = checks["titles:title"]
    pooled = {r["agent"]: r for r in rows if r["trace_set"] == "fcc/test+norway/test"}
    mine, mpc = pooled[f"ppo:{model.resolve()}"], pooled["robustmpc"]
    assert title["passed"] is (float(mine["mean"]) >= float(mpc["mean"]))
    assert title["figures"]["model_mean"] == pytest.approx(float(mine["mean"]))
    assert title["figures"]["robustmpc_mean"] == pytest.approx(float(mpc["mean"]))
    assert title["figures"]["ci_low"] == pytest.approx(float(mine["vs_robustmpc_ci_low"]))
    assert title["figures"]["n"] == 4
    assert checks["in_distribution"]["passed"] is not None  # the unscaled checks still run
    text = (out / "generalization.md").read_text()
    assert f"--ladder-kbps {ladder} --scalings unscaled" in text and document["command"] in text
    assert "titles:title" in text and "## Results, scaled" not in text and "Not evaluated" in text


def test_worst_share_mean() -> None:
    assert worst_mean(list(range(1, 41))) == pytest.approx(1.5)  # 5% of 40: the two worst


def test_cli_runs_the_protocol_and_refuses_bad_input(model: Path, data: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["generalization", str(model), "--data-dir", str(data), "--video", "tiny", "--engine", "serial",
            "--agent", "bba"]
    out = tmp_path / "cli"
    result = runner.invoke(app, [*base, "--out", str(out), "--traces", "fama/test"])
    assert result.exit_code == 0, result.output
    rows = read_csv(out / "generalization.csv")
    assert {r["trace_set"] for r in rows} == {"fama/test"} and len(rows) == 2 * AGENTS_PER_SET
    assert "abr generalization" in (out / "generalization.md").read_text()
    bad = {
        "missing model": (["generalization", str(tmp_path / "no.zip"), "--out", str(tmp_path / "x1")],
                          "no.zip does not exist"),
        "unknown set": ([*base, "--out", str(tmp_path / "x2"), "--traces", "famz/test"],
                        "unknown trace set 'famz/test'"),
        "held-out family": ([*base, "--out", str(tmp_path / "x3"), "--traces", "fama/test", "--held-out", "famq"],
                            "--held-out: family 'famq' not found"),
        "trained family": ([*base, "--out", str(tmp_path / "x4"), "--traces", "fama/test", "--held-out", "fama"],
                           "not held out"),
    }
    for what, (args, message) in bad.items():
        failed = runner.invoke(app, args)
        assert failed.exit_code == 2, (what, failed.output)
        assert message in failed.output and failed.output.count("error:") == 1, (what, failed.output)
        assert not Path(args[args.index("--out") + 1]).exists(), what  # nothing written


def test_the_result_keeps_the_sets_played_per_scaling(protocol: GeneralizationResult) -> None:
    played = {s.name: len(s.evaluated) for s in protocol.sets}
    for scaling, evaluation in protocol.evaluations.items():
        counts: dict[str, int] = {}
        for session in evaluation.sessions:
            if session.agent == "bba":
                counts[session.trace_set] = counts.get(session.trace_set, 0) + 1
        assert counts == played, scaling
    assert dataclasses.asdict(AcceptanceCriteria())["near_optimal_pct"] == 99.0


@pytest.mark.parametrize("module_name", ["abr.evaluation.generalization", "abr.evaluation.generalization_stats",
                                         "abr.cli.generalization"])
def test_doctests(module_name: str) -> None:
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module_name))
    assert result.attempted > 0 and result.failed == 0


def test_the_guard_option_plays_the_model_inside_the_guard(model: Path, data: Path, tmp_path: Path) -> None:
    out = tmp_path / "guarded"
    result = CliRunner().invoke(app, ["generalization", str(model), "--data-dir", str(data), "--video", "tiny",
                                      "--engine", "serial", "--agent", "bba", "--traces", "fama/test",
                                      "--scalings", "unscaled", "--guard", "--out", str(out)])
    assert result.exit_code == 0, result.output
    agent = f"guarded:ppo:{model.resolve()}"
    document = json.loads((out / "generalization.json").read_text())
    assert document["model"]["agent"] == agent and agent in document["settings"]["agents"]
    sessions = read_csv(out / "unscaled" / "sessions.csv")
    played = [float(r["qoe_excl_first"]) for r in sessions if r["agent"] == agent]
    rows = [r for r in read_csv(out / "generalization.csv") if r["agent"] == agent]
    assert len(rows) == 1 and len(played) == int(rows[0]["n"]) > 0
    assert float(rows[0]["mean"]) == pytest.approx(np.mean(played))
    assert "--guard" in (out / "generalization.md").read_text()
    refused = CliRunner().invoke(app, ["generalization", str(model), "--data-dir", str(data), "--video", "tiny",
                                       "--agent", "guarded:ppo", "--out", str(tmp_path / "refused")])
    assert refused.exit_code == 2 and "--agent takes heuristics only" in refused.output, refused.output
