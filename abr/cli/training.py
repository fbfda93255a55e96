"""Learned-policy commands of the ``abr`` CLI: ``abr train`` and ``abr export``.

Registered in :mod:`abr.cli` with ``app.command("train")(train_command)`` and
``app.command("export")(export_command)``. Options override the values of ``--config`` (a TOML file of
:class:`~abr.training.config.TrainConfig` fields); ``--resume`` continues the run in ``--out`` from its config.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shlex
import sys
from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from abr.cli.common import (
    EXIT_INTERRUPTED,
    SEED_MAX,
    Algorithm,
    Core,
    DataDirOption,
    LadderOption,
    ProgressUpdate,
    QoEKind,
    progress_bar,
    reported_errors,
)
from abr.common import inputs
from abr.training.config import TrainConfig, load_train_config

#: Exit code of a command ended by Ctrl-C (SIGINT), as ``abr evaluate`` (128 + SIGINT).


class PolicyKind(str, Enum):
    """The policy networks (see ``abr.training.config.TrainConfig.policy``)."""

    pensieve = "pensieve"
    mlp = "mlp"




def train_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="Run folder: models, config, learning curve, logs.")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="TOML file of TrainConfig fields (options below override it).")] = None,
    resume: Annotated[bool, typer.Option(
        "--resume", help="Continue the run in --out from its checkpoint (its config.toml is the base config).")
    ] = False,
    algo: Annotated[Algorithm | None, typer.Option("--algo", help="Algorithm (default ppo).")] = None,
    policy: Annotated[PolicyKind | None, typer.Option(
        "--policy", help="Network: Pensieve per-row encoders or a plain MLP (default pensieve).")] = None,
    timesteps: Annotated[int | None, typer.Option(
        "--timesteps", "-n", min=0,
        help="Total environment steps (chunk decisions) of the run (0: the imitation stage only).")] = None,
    n_envs: Annotated[int | None, typer.Option("--n-envs", min=1, help="Environments stepped together.")] = None,
    seed: Annotated[int | None, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of the run.")] = None,
    traces: Annotated[list[str] | None, typer.Option(
        "--traces", "-t", help="Training trace set (path or name under <data dir>/traces); repeatable.")] = None,
    synthetic: Annotated[int | None, typer.Option(
        "--synthetic", min=0, help="Seeded synthetic training traces (default 64 without --traces).")] = None,
    val_traces: Annotated[list[str] | None, typer.Option(
        "--val-traces", help="Validation trace set; repeatable.")] = None,
    val_synthetic: Annotated[int | None, typer.Option(
        "--val-synthetic", min=0, help="Synthetic validation traces (default 16 without --val-traces).")] = None,
    video: Annotated[str | None, typer.Option("--video", help="Video (path or name under <data dir>/videos).")
                     ] = None,
    ladder_kbps: LadderOption = None,
    preset_name: Annotated[str | None, typer.Option("--preset", help="Simulator preset.")] = None,
    qoe: Annotated[QoEKind | None, typer.Option("--qoe", help="QoE variant (reward).")] = None,
    learning_rate: Annotated[float | None, typer.Option("--lr", help="Learning rate.")] = None,
    ent_start: Annotated[float | None, typer.Option("--ent-start", help="Entropy weight at the start.")] = None,
    ent_end: Annotated[float | None, typer.Option("--ent-end", help="Entropy weight after the decay.")] = None,
    noise: Annotated[tuple[float, float] | None, typer.Option(
        "--noise", help="Training download-time noise U(LOW, HIGH).")] = None,
    scale: Annotated[tuple[float, float] | None, typer.Option(
        "--throughput-scale", help="Per-episode throughput scale, log-uniform in [LOW, HIGH].")] = None,
    eval_freq: Annotated[int | None, typer.Option(
        "--eval-freq", min=0, help="Environment steps between validations (0: start and end only).")] = None,
    patience: Annotated[int | None, typer.Option(
        "--patience", min=0, help="Stop after this many validations in a row without improvement (0: never).")
    ] = None,
    env_core: Annotated[Core | None, typer.Option(
        "--env-core", help="Session core of the training environments: AbrEnv on SimPy (default) or the batched "
        "numpy core.")] = None,
    tensorboard: Annotated[bool | None, typer.Option(
        "--tensorboard/--no-tensorboard", help="TensorBoard logs under <out>/tb.")] = None,
    init_from: Annotated[Path | None, typer.Option(
        "--init-from", help="Start from this model zip's policy weights (fine-tuning; same network and layout)."
    )] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Train a PPO/A2C bitrate policy; validate it periodically and keep the best model."""
    with reported_errors():
        from abr.training.run import train

        base = _base_config(out, config, resume)
        overrides: dict[str, Any] = {
            "algorithm": algo.value if algo else None, "policy": policy.value if policy else None,
            "total_timesteps": timesteps, "n_envs": n_envs, "seed": seed,
            "traces": tuple(traces) if traces else None, "synthetic_traces": synthetic,
            "val_traces": tuple(val_traces) if val_traces else None, "val_synthetic_traces": val_synthetic,
            "video": video, "ladder_kbps": inputs.parse_ladder_kbps(ladder_kbps),
            "preset": preset_name, "qoe": qoe.value if qoe else None,
            "learning_rate": learning_rate, "ent_coef_start": ent_start, "ent_coef_end": ent_end,
            "eval_freq_steps": eval_freq, "patience": patience, "tensorboard": tensorboard,
            "env_core": env_core.value if env_core else None,
            "init_from": str(init_from) if init_from else None,
        }
        if noise is not None:
            overrides.update(train_noise_low=noise[0], train_noise_high=noise[1])
        if scale is not None:
            overrides.update(throughput_scale_low=scale[0], throughput_scale_high=scale[1])
        run_config = dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})
        command = shlex.join(sys.argv)  # the process's command line, as typed
        with _resumable_training(out, data_dir), progress_bar("training", time_remaining=True) as update:
            result = train(run_config, out, progress=_training_progress(update), resume=resume, data_dir=data_dir,
                           command=command)
        table = Table(title=f"Training run {out} ({result.timesteps} steps, {result.steps_per_s:,.0f} steps/s)")
        for header in ("timesteps", "mean QoE", "QoE excl. first", "bitrate kbps", "rebuffer s"):
            table.add_column(header, justify="right")
        for p in result.evaluations:
            table.add_row(str(p.timesteps), f"{p.mean_qoe:.2f}", f"{p.mean_qoe_excl_first:.2f}",
                          f"{p.mean_bitrate_kbps:.0f}", f"{p.mean_rebuffer_s:.2f}")
        Console().print(table)
        if result.timesteps < run_config.total_timesteps:
            Console().print(f"stopped early at {result.timesteps} steps: {run_config.patience} validations in a row "
                            "without improvement (patience)")
        Console().print(f"best model (validation QoE {result.best_mean_qoe:.2f}): {result.best_model_path}")


@contextlib.contextmanager
def _resumable_training(out: Path, data_dir: Path | None) -> Iterator[None]:
    """Ctrl-C ends a training run with exit 130 and the command that resumes it from its checkpoint."""
    from abr.training.run import CHECKPOINT_FILE

    try:
        yield
    except KeyboardInterrupt:
        checkpoint = out / CHECKPOINT_FILE
        if checkpoint.is_file() and (out / "config.toml").is_file():
            command = ["abr", "train", "--out", str(out), "--resume"]
            if data_dir is not None:
                command += ["--data-dir", str(data_dir)]
            typer.echo(f"interrupted: the run is kept in {checkpoint} (its last validation); resume it with: "
                       f"{shlex.join(command)}", err=True)
        else:
            typer.echo(f"interrupted before the run's first checkpoint ({checkpoint}): there is nothing to resume; "
                       "rerun the same command", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None


def _base_config(out: Path, config: Path | None, resume: bool) -> TrainConfig:
    if resume:
        if config is not None:
            raise typer.BadParameter("--resume takes the run's own config.toml; leave out --config")
        stored = out / "config.toml"
        if not stored.is_file():
            raise FileNotFoundError(f"cannot resume: {stored} does not exist (not a training run folder)")
        return load_train_config(stored)
    return load_train_config(config) if config is not None else TrainConfig()


def _training_progress(update: ProgressUpdate) -> Callable[[int, int, float | None], None]:
    """``train``'s progress (timesteps done, total, last validation mean QoE) on a progress bar."""
    def progress(done: int, total: int, mean_qoe: float | None) -> None:
        update(done, total, "training" if mean_qoe is None else f"training (validation QoE {mean_qoe:.2f})")

    return progress


def export_command(
    model: Annotated[Path, typer.Argument(help="The model zip (e.g. <run>/best_model.zip).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the ONNX, JSON weights and test files.")],
    algo: Annotated[Algorithm, typer.Option("--algo", help="Algorithm of the model.")] = Algorithm.ppo,
    traces: Annotated[str | None, typer.Option(
        "--traces", "-t", help="Trace set whose sessions give test observations (default: 4 synthetic).")] = None,
    video: Annotated[str | None, typer.Option(
        "--video", help="Video of those sessions (default: the CBR Envivio ladder).")] = None,
    ladder_kbps: LadderOption = None,
    n_session: Annotated[int, typer.Option("--n-session", min=0, help="Test vectors from sessions.")] = 64,
    n_random: Annotated[int, typer.Option("--n-random", min=0, help="Random test vectors.")] = 32,
    seed: Annotated[int, typer.Option("--seed", min=0, max=SEED_MAX, help="Seed of the random test vectors.")] = 0,
    overwrite: Annotated[bool, typer.Option(
        "--overwrite", help="Replace export files in --out that another model's export (or anything else) wrote.")
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Export a trained policy as ONNX and JSON weights, with its encoder spec and verified test vectors.

    The files are verified before they replace anything in --out; files of another export are replaced only
    with --overwrite.
    """
    with reported_errors():
        from abr.training.export import export_policy

        trace_list = list(inputs.load_trace_set(traces, data_dir).traces) if traces else None
        if ladder_kbps is not None and video is None:
            raise typer.BadParameter("--ladder-kbps sets the ladder of --video; give the video too")
        the_video = inputs.load_video(video, data_dir, ladder_kbps=ladder_kbps) if video else None
        result = export_policy(model, out, algorithm=algo.value, traces=trace_list, video=the_video,
                               n_session=n_session, n_random=n_random, seed=seed, overwrite=overwrite)
        check = result.check
        onnx = "not checked" if check.max_abs_diff_onnx is None else f"{check.max_abs_diff_onnx:.2e}"
        Console().print(f"exported {model} to {result.out_dir}: {', '.join(p.name for p in result.files.values())}")
        Console().print(f"{check.n_vectors} test vectors; max |dprob| numpy {check.max_abs_diff_numpy:.2e}, "
                        f"onnx {onnx}")
