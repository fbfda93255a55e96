"""Accuracy and calibration of a learned transmission-time predictor on held-out test traces.

Sessions are played on each trace set (seeded behaviour policies and start offsets, as in training) and
every decision point gives rows for lookahead 0..4 (:func:`abr.training.predictor.session_rows`). For each row:

* the model's point forecast is the mean of its predicted distribution (``sum_m p_m x value_m``);
* the baseline is RobustMPC's throughput forecast before its error discount: the chunk's size divided by the
  harmonic mean of the last 5 measured throughputs (RTT included in those measurements, as the planner uses);
* errors: mean absolute error in seconds, mean relative absolute error ``|forecast - actual| / actual``,
  median absolute error;
* calibration (the model only): the PIT, the predicted CDF at the actual download time (linear inside the
  actual value's bin; a seeded uniform draw in the open-ended top bin), whose histogram is flat for a
  calibrated forecaster; the coverage of the central 80% (10-90%) and 50% (25-75%) predicted intervals;
  a reliability table (share of PIT values <= a for a = 0.1 .. 0.9); the mean log loss of the bin.

A trace set holding any trace the model was trained or validated on (by content hash) is refused.
Writes ``predictor_eval.json`` and ``predictor_eval.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.common.atomic import write_json_atomic, write_text_atomic
from abr.common.inputs import load_trace_set, load_video
from abr.common.provenance import utc_timestamp
from abr.errors import ConfigError
from abr.training.predictor import play_sessions
from agents.provenance import seen_fingerprints
from agents.ttp import PAST_CHUNKS, TransmissionTimePredictor, bin_index, predicted_cdf_at, predicted_mean_s
from simulator.config import preset
from traces.fingerprint import trace_fingerprint

logger = logging.getLogger(__name__)
FloatArray = npt.NDArray[np.float64]
#: Throughputs in the baseline's harmonic mean (RobustMPC's window).
BASELINE_WINDOW = 5
RELIABILITY_LEVELS: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(1, 10))
PIT_BINS = 10


def baseline_forecast_s(rows: FloatArray) -> FloatArray:
    """Size / harmonic mean of the last 5 measured throughputs, from unstandardised rows (see :mod:`agents.ttp`).

    >>> from agents.ttp import feature_rows, history_features
    >>> rows = feature_rows(history_features([2e6, 4e6], [1.0, 1.0]), np.array([[3e6]]))
    >>> baseline_forecast_s(rows).round(6).tolist()  # the last 5 of the padded history: 2, 2, 2, 2, 4 Mbit/s
    [1.35]
    """
    sizes = 2.0 ** rows[:, 0:2 * PAST_CHUNKS:2]
    times = 2.0 ** rows[:, 1:2 * PAST_CHUNKS:2]
    recent = (sizes / times)[:, -BASELINE_WINDOW:]  # Mbit/s
    harmonic = recent.shape[1] / np.sum(1.0 / recent, axis=1)
    return np.asarray(2.0 ** rows[:, 2 * PAST_CHUNKS] / harmonic)


def _errors(forecast: FloatArray, actual: FloatArray) -> dict[str, float]:
    error = np.abs(forecast - actual)
    return {"mae_s": float(error.mean()), "relative_mae": float((error / actual).mean()),
            "median_ae_s": float(np.median(error))}


def calibration(model: TransmissionTimePredictor, probs: FloatArray, actual: FloatArray,
                rng: np.random.Generator) -> dict[str, Any]:
    """PIT histogram, interval coverage, reliability table and log loss of predicted distributions."""
    pit = predicted_cdf_at(probs, model.bin_edges_s, actual, rng.uniform(size=actual.size))
    idx = bin_index(actual, model.bin_edges_s)
    hist = np.histogram(pit, bins=PIT_BINS, range=(0.0, 1.0))[0] / max(pit.size, 1)
    return {
        "coverage_10_90": float(np.mean((pit >= 0.1) & (pit <= 0.9))),
        "coverage_25_75": float(np.mean((pit >= 0.25) & (pit <= 0.75))),
        "pit_histogram": [round(float(h), 4) for h in hist],
        "reliability": {f"{a:.1f}": round(float(np.mean(pit <= a)), 4) for a in RELIABILITY_LEVELS},
        "log_loss": float(-np.mean(np.log(np.maximum(probs[np.arange(actual.size), idx], 1e-12)))),
    }


def _metrics(model: TransmissionTimePredictor, rows: FloatArray, actual: FloatArray,
             rng: np.random.Generator) -> dict[str, Any]:
    probs = model.probabilities(rows)
    lookahead = np.argmax(rows[:, 2 * PAST_CHUNKS + 1:], axis=1)
    forecast, baseline = predicted_mean_s(probs, model.bin_values_s), baseline_forecast_s(rows)
    by_step = {}
    for k in np.unique(lookahead):
        sel = lookahead == k
        by_step[str(int(k))] = {"rows": int(sel.sum()), "model": _errors(forecast[sel], actual[sel]),
                                "baseline": _errors(baseline[sel], actual[sel])}
    nxt = lookahead == 0
    return {"rows_next_chunk": int(nxt.sum()), "mean_download_time_s": float(actual[nxt].mean()),
            "model": _errors(forecast[nxt], actual[nxt]), "baseline": _errors(baseline[nxt], actual[nxt]),
            "calibration": calibration(model, probs[nxt], actual[nxt], rng), "by_lookahead": by_step}


def evaluate_predictor(model_path: str | Path, specs: Sequence[str], out_dir: str | Path, *,
                       video: str = "envivio_dash3", preset_name: str = "pensieve",
                       behaviour: Sequence[str] = ("bba", "robustmpc", "random"), seed: int = 1,
                       data_dir: str | Path | None = None, command: str | None = None) -> dict[str, Any]:
    """Evaluate the predictor at ``model_path`` on each trace set; writes JSON and Markdown to ``out_dir``.

    Raises:
        PolicyLoadError: the model files are missing or corrupt.
        ConfigError: no trace set, or a set holding traces the model was trained or validated on.
    """
    if not specs:
        raise ConfigError("give at least one trace set to evaluate on (--traces fcc/test ...)")
    model = TransmissionTimePredictor.from_file(model_path)
    seen = seen_fingerprints(model.metadata.get("provenance"))
    the_video = load_video(video, data_dir)
    config = preset(preset_name)
    results: dict[str, Any] = {}
    for i, spec in enumerate(specs):
        traces = load_trace_set(spec, data_dir).traces
        overlap = sum(trace_fingerprint(t) in seen for t in traces)
        if overlap:
            raise ConfigError(f"trace set {spec!r}: {overlap} of its traces were in the predictor's training or "
                              f"validation data ({model_path}); evaluate on held-out test traces")
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        rows, actual, counts = play_sessions(traces, the_video, config, tuple(behaviour), 1, rng)
        results[spec] = {"traces": len(traces), "sessions_by_agent": counts, **_metrics(model, rows, actual, rng)}
        logger.info("%s: %d rows", spec, actual.size)
    report = {"format": "abr-ttp-eval-v1", "created": utc_timestamp(), "command": command, "model": str(model_path),
              "model_created": model.metadata.get("created"), "video": video, "preset": preset_name,
              "behaviour": list(behaviour), "seed": seed, "sets": results}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "predictor_eval.json", report)
    write_text_atomic(out / "predictor_eval.md", markdown_report(report))
    return report


def markdown_report(report: dict[str, Any]) -> str:
    """The Markdown form of :func:`evaluate_predictor`'s report."""
    lines = ["# Transmission-time predictor: accuracy on held-out test traces", "",
             f"Model `{report['model']}` (trained {report['model_created']}); sessions played by "
             f"{', '.join(report['behaviour'])} (one per trace, seed {report['seed']}), video {report['video']}, "
             f"preset {report['preset']}. Generated by `{report['command'] or 'evaluate_predictor'}` "
             f"on {report['created']}.", "",
             "## Next chunk: error of the point forecast", "",
             "Model: the mean of the predicted distribution. Baseline: size / harmonic mean of the last 5 measured "
             "throughputs (RobustMPC's forecast before its error discount).", "",
             "| trace set | rows | mean download s | model MAE s | baseline MAE s | model rel. MAE | "
             "baseline rel. MAE | model median AE s | baseline median AE s |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for spec, r in report["sets"].items():
        m, b = r["model"], r["baseline"]
        lines.append(f"| {spec} | {r['rows_next_chunk']} | {r['mean_download_time_s']:.3f} | {m['mae_s']:.3f} | "
                     f"{b['mae_s']:.3f} | {m['relative_mae']:.3f} | {b['relative_mae']:.3f} | "
                     f"{m['median_ae_s']:.3f} | {b['median_ae_s']:.3f} |")
    lines += ["", "## Next chunk: calibration of the predicted distribution", "",
              "Coverage: share of actual download times inside the predicted central interval (nominal 0.80 and "
              "0.50). Reliability: share of PIT values <= a (nominal a). PIT histogram: 10 equal bins (flat = "
              "calibrated, 0.1 each).", "",
              "| trace set | cover 10-90% | cover 25-75% | log loss | reliability a=0.1 .. 0.9 | PIT histogram |",
              "|---|---:|---:|---:|---|---|"]
    for spec, r in report["sets"].items():
        c = r["calibration"]
        rel = " ".join(f"{v:.2f}" for v in c["reliability"].values())
        pit = " ".join(f"{v:.2f}" for v in c["pit_histogram"])
        lines.append(f"| {spec} | {c['coverage_10_90']:.3f} | {c['coverage_25_75']:.3f} | {c['log_loss']:.3f} | "
                     f"{rel} | {pit} |")
    lines += ["", "## Mean absolute error by lookahead (s): model / baseline", "",
              "| trace set | " + " | ".join(f"k={k}" for k in range(5)) + " |", "|---|" + "---:|" * 5]
    for spec, r in report["sets"].items():
        cells = [f"{s['model']['mae_s']:.3f} / {s['baseline']['mae_s']:.3f}" for s in r["by_lookahead"].values()]
        lines.append(f"| {spec} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


__all__ = ["baseline_forecast_s", "calibration", "evaluate_predictor", "markdown_report"]
