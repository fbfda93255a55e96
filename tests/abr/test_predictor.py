"""Training and evaluating the transmission-time predictor: determinism, numpy = torch, refusals, the CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abr.cli.main import app
from abr.common.inputs import load_video
from abr.errors import ConfigError
from abr.training.predictor import (
    PredictorTrainConfig,
    check_training_sets,
    config_with,
    session_rows,
    train_predictor,
)
from agents.provenance import seen_fingerprints
from agents.registry import make_agent
from agents.ttp import MAX_LOOKAHEAD, PAST_CHUNKS, TransmissionTimePredictor, bin_index
from simulator.config import preset
from simulator.rollout import run_session
from traces.fingerprint import trace_fingerprint
from traces.readers import read_trace_dir

TINY = {"sessions_per_trace": 1, "epochs": 2, "hidden_sizes": (16,), "batch_size": 256}


def _folder(tmp_path: Path, data_dir: Path, split: str, name: str, n: int) -> Path:
    """A folder holding the first ``n`` trace files of ``fcc/<split>`` (named without 'test')."""
    source = sorted(p for p in (data_dir / "traces" / "fcc" / split).iterdir() if p.is_file())[:n]
    target = tmp_path / name
    target.mkdir()
    for path in source:
        shutil.copy(path, target / path.name)
    return target


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> tuple[Path, Path, dict[str, object]]:
    base = tmp_path_factory.mktemp("predictor")
    folder = _folder(base, data_dir, "train", "tiny_train", 4)
    cfg = PredictorTrainConfig(traces=(str(folder),), **TINY)  # type: ignore[arg-type]
    metadata = train_predictor(cfg, base / "a", data_dir=data_dir)
    return base, folder, metadata


def test_training_is_deterministic_and_records_its_traces(tiny_run: tuple[Path, Path, dict[str, object]],
                                                          data_dir: Path) -> None:
    base, folder, metadata = tiny_run
    cfg = PredictorTrainConfig(traces=(str(folder),), **TINY)  # type: ignore[arg-type]
    train_predictor(cfg, base / "b", data_dir=data_dir)
    first, second = np.load(base / "a" / "predictor.npz"), np.load(base / "b" / "predictor.npz")
    assert sorted(first.files) == sorted(second.files)
    for key in first.files:
        assert np.array_equal(first[key], second[key]), key
    assert (base / "a" / "training_log.csv").read_text().count("\n") == 1 + 2  # header + 2 epochs
    model = TransmissionTimePredictor.from_file(base / "a" / "predictor.npz")
    expected = {trace_fingerprint(t) for t in read_trace_dir(folder)}
    assert seen_fingerprints(model.metadata["provenance"]) == expected
    train_predictor(PredictorTrainConfig(traces=(str(folder),), **{**TINY, "seed": 1}),  # type: ignore[arg-type]
                    base / "c", data_dir=data_dir)
    assert not np.array_equal(np.load(base / "c" / "predictor.npz")["w0"], first["w0"])  # another seed


def test_numpy_inference_equals_the_torch_forward_pass(tiny_run: tuple[Path, Path, dict[str, object]]) -> None:
    import torch

    base = tiny_run[0]
    model = TransmissionTimePredictor.from_file(base / "a" / "predictor.npz")
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(50, model.feature_mean.size)) * 2.0
    layers: list[torch.nn.Module] = []
    for i, (w, b) in enumerate(model.weights):
        linear = torch.nn.Linear(w.shape[0], w.shape[1]).double()
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(w.T))
            linear.bias.copy_(torch.from_numpy(b))
        layers.append(linear)
        if i < len(model.weights) - 1:
            layers.append(torch.nn.ReLU())
    net = torch.nn.Sequential(*layers)
    with torch.no_grad():
        x = torch.from_numpy((rows - model.feature_mean) / model.feature_std)
        expected = torch.softmax(net(x), dim=1).numpy()
    assert np.abs(model.probabilities(rows) - expected).max() < 1e-12
    assert model.probabilities(rows).sum(axis=1) == pytest.approx(np.ones(50))


def test_session_rows_pair_each_chunk_with_its_history(data_dir: Path) -> None:
    trace = read_trace_dir(data_dir / "traces" / "fcc" / "train")[0]
    video = load_video("envivio_dash3", data_dir)
    outcomes = run_session(make_agent("random"), trace, video, preset("pensieve"), rng=np.random.default_rng(4))
    rows, labels = session_rows(outcomes)
    n = len(outcomes)
    assert labels.size == sum(min(MAX_LOOKAHEAD, n - t) for t in range(1, n))
    # The row of decision t = 10, lookahead 2: history chunks 2..9, candidate chunk 12.
    index = sum(min(MAX_LOOKAHEAD, n - t) for t in range(1, 10)) + 2
    assert labels[index] == outcomes[12].download_time_s
    assert rows[index, 2 * PAST_CHUNKS] == pytest.approx(np.log2(outcomes[12].size_bits / 1e6))
    assert rows[index, 2 * PAST_CHUNKS - 1] == pytest.approx(np.log2(outcomes[9].download_time_s))
    assert rows[index, 0] == pytest.approx(np.log2(outcomes[2].size_bits / 1e6))
    assert rows[index, 2 * PAST_CHUNKS + 1:].tolist() == [0, 0, 1, 0, 0]


def test_held_out_families_and_test_splits_are_refused(data_dir: Path) -> None:
    for spec in ("lumos5g/train", "nyu_lte", "ucc5g/test", str(data_dir / "traces" / "lumos5g")):
        with pytest.raises(ConfigError, match="held-out family"):
            check_training_sets([spec], ("lumos5g", "nyu_lte", "ucc5g"), data_dir)
    for spec in ("fcc/test", "oboe/test", str(data_dir / "traces" / "norway" / "test")):
        with pytest.raises(ConfigError, match="test split"):
            check_training_sets([spec], ("lumos5g",), data_dir)
    with pytest.raises(ConfigError, match="shares content with test splits"):
        check_training_sets(["genet_benchmark/fcc-test"], ("lumos5g",), data_dir)
    check_training_sets(["fcc/train", "mahimahi_cellular"], ("lumos5g",), data_dir)
    with pytest.raises(ConfigError, match="unknown key.*epoch_count"):
        config_with({"epoch_count": 3})
    with pytest.raises(ConfigError, match="val_fraction=1.5"):
        config_with({"val_fraction": 1.5})


def test_cli_evaluate_writes_the_report_and_refuses_training_traces(
        tiny_run: tuple[Path, Path, dict[str, object]], data_dir: Path, tmp_path: Path) -> None:
    base, folder, _ = tiny_run
    held = _folder(tmp_path, data_dir, "test", "held", 3)
    model = base / "a" / "predictor.npz"
    runner = CliRunner()
    result = runner.invoke(app, ["predictor", "evaluate", str(model), "--traces", str(held), "--out",
                                 str(tmp_path / "eval"), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "eval" / "predictor_eval.json").read_text())
    r = report["sets"][str(held)]
    assert r["rows_next_chunk"] == 3 * 47  # 48 chunks a session: 47 decisions with a history
    calibration = r["calibration"]
    assert sum(calibration["pit_histogram"]) == pytest.approx(1.0, abs=1e-3)
    assert calibration["coverage_25_75"] <= calibration["coverage_10_90"]
    assert calibration["reliability"]["0.9"] >= calibration["reliability"]["0.1"]
    assert r["model"]["mae_s"] > 0 and r["baseline"]["mae_s"] > 0
    assert "| " + str(held) + " |" in (tmp_path / "eval" / "predictor_eval.md").read_text()
    refused = runner.invoke(app, ["predictor", "evaluate", str(model), "--traces", str(folder), "--out",
                                  str(tmp_path / "eval2"), "--data-dir", str(data_dir)])
    assert refused.exit_code == 2 and "were in the predictor's training" in refused.output
    bins = bin_index([0.05, 1.0], np.array([0.1, 0.5]))
    assert bins.tolist() == [0, 2]
