"""``abr predictor train|evaluate``: the learned transmission-time predictor of ``predictor-mpc``.

Registered in :mod:`abr.cli.main` with ``app.add_typer(predictor_app, name="predictor")``. ``train`` plays
sessions on training traces and fits the predictor (:func:`abr.training.predictor.train_predictor`);
``evaluate`` measures its accuracy and calibration on held-out test traces
(:func:`abr.training.predictor_eval.evaluate_predictor`). Options override the values of ``--config`` (a TOML
file of :class:`~abr.training.predictor.PredictorTrainConfig` fields).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from abr.cli.common import SEED_MAX, DataDirOption, reported_errors

predictor_app = typer.Typer(
    help="The learned download-time predictor of predictor-mpc (Fugu-style): train it, evaluate it.",
    no_args_is_help=True,
)


def _command_line() -> str:
    return "abr " + shlex.join(sys.argv[1:])


@predictor_app.command("train")
def train_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for predictor.npz, predictor.json and "
                                      "training_log.csv.")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="TOML file of PredictorTrainConfig fields (options below override it).")] = None,
    traces: Annotated[list[str] | None, typer.Option(
        "--traces", "-t", help="Training trace set (default: the train splits of fcc, norway, oboe, belgium4g "
        "and mahimahi_cellular); repeatable. Held-out families and test splits are refused.")] = None,
    behaviour: Annotated[list[str] | None, typer.Option(
        "--behaviour", help="Agent that plays the training sessions, one drawn per session (default bba, "
        "robustmpc, random); repeatable.")] = None,
    sessions_per_trace: Annotated[int | None, typer.Option(
        "--sessions-per-trace", min=1, help="Sessions played on each trace (default 1).")] = None,
    epochs: Annotated[int | None, typer.Option("--epochs", min=1, help="Training epochs (default 12).")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of every random choice "
                                             "(default 0).")] = None,
    video: Annotated[str | None, typer.Option("--video", help="Video (default envivio_dash3).")] = None,
    preset_name: Annotated[str | None, typer.Option("--preset", help="Simulator preset (default pensieve).")] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Play sessions on training traces and train the download-time predictor (torch, one CPU thread)."""
    from abr.training.predictor import config_with, load_predictor_config, train_predictor

    with reported_errors():
        overrides: dict[str, Any] = {"traces": tuple(traces) if traces else None,
                     "behaviour": tuple(behaviour) if behaviour else None,
                     "sessions_per_trace": sessions_per_trace, "epochs": epochs, "seed": seed, "video": video,
                     "preset": preset_name}
        cfg = load_predictor_config(config, **overrides) if config else config_with({}, **overrides)
        metadata = train_predictor(cfg, out, data_dir=data_dir, command=_command_line())
    best = metadata["best_epoch"]
    typer.echo(f"wrote {out / 'predictor.npz'} (best epoch {int(best['epoch'])}: validation loss "
               f"{best['val_loss']:.4f}, {metadata['data']['train_rows']} training rows)")


@predictor_app.command("evaluate")
def evaluate_command(
    model: Annotated[Path, typer.Argument(help="The predictor's .npz (its .json beside it).")],
    traces: Annotated[list[str], typer.Option(
        "--traces", "-t", help="Held-out test trace set, e.g. fcc/test; repeatable.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for predictor_eval.json and .md.")],
    behaviour: Annotated[list[str] | None, typer.Option(
        "--behaviour", help="Agent that plays the sessions, one drawn per session (default bba, robustmpc, "
        "random); repeatable.")] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of the sessions.")] = 1,
    video: Annotated[str, typer.Option("--video", help="Video.")] = "envivio_dash3",
    preset_name: Annotated[str, typer.Option("--preset", help="Simulator preset.")] = "pensieve",
    data_dir: DataDirOption = None,
) -> None:
    """Accuracy (MAE vs a harmonic-mean baseline) and calibration (interval coverage, PIT) on test traces."""
    from abr.training.predictor_eval import evaluate_predictor

    with reported_errors():
        report = evaluate_predictor(model, traces, out, video=video, preset_name=preset_name,
                                    behaviour=tuple(behaviour or ("bba", "robustmpc", "random")), seed=seed,
                                    data_dir=data_dir, command=_command_line())
    for spec, r in report["sets"].items():
        typer.echo(f"{spec}: MAE {r['model']['mae_s']:.3f} s (baseline {r['baseline']['mae_s']:.3f} s), "
                   f"10-90% coverage {r['calibration']['coverage_10_90']:.3f}")
    typer.echo(f"wrote {out / 'predictor_eval.md'}")
