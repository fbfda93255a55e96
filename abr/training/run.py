"""Training a learned bitrate policy with stable-baselines3 (PPO or A2C) on ``AbrEnv``.

:func:`train` runs one seeded training run into ``out_dir``:

* ``config.toml``: the :class:`~abr.training.config.TrainConfig` (reload it with ``abr train --config``);
* ``config.json``: the resolved configuration: trace sets (names of every trace), video, simulator config,
  QoE, observation layout, package versions, git commit, command;
* ``evaluations.csv``: the learning curve: one row per validation, the columns of
  :data:`~abr.training.validation.EVALUATION_COLUMNS` (``timesteps, mean_qoe, mean_qoe_excl_first,
  mean_bitrate_kbps, mean_rebuffer_s, train_episode_qoe, ent_coef, wall_s``;
  :class:`~abr.training.validation.EvaluationPoint` says what each holds);
* ``best_model.zip``: the model with the best validation mean QoE; ``model.zip``: the final model;
  ``checkpoint.zip``: the latest model, written at every validation, from which ``resume=True`` continues;
* ``tb/``: TensorBoard logs (SB3's ``rollout/``, ``train/`` scalars, ``train/ent_coef``, and each validation's
  ``eval/mean_qoe``, ``eval/mean_qoe_excl_first``, ``eval/mean_bitrate_kbps``, ``eval/mean_rebuffer_s``);
* ``.abr-run.lock``: held with ``flock`` while a run writes into the folder, so a second run is refused.

Validation plays the current policy greedily on the validation traces with the SimPy core
(:func:`simulator.rollout.run_session`; the preset as it is: without the environments' training noise
``train_noise_low``/``high``, with the preset's own noise, none in ``pensieve`` and U(0.9, 1.1) in
``pensieve-train``), before training, every ``eval_freq_steps`` environment steps and at the end. Two runs with
the same config (and seed) give identical models: one torch thread, SB3 seeding (``random``, numpy, torch and
environment ``i`` with ``seed + i``). A resumed run continues from its last checkpoint; it is not bit-identical
to an uninterrupted run (the environments restart their episodes). Resumed with a larger ``total_timesteps``,
the entropy and learning-rate schedules are recomputed over the new total, so they step back from their end
values (the shipped policy's second stage went from entropy 0.005 back to 0.01).
"""

from __future__ import annotations

import contextlib
import copy
import csv
import dataclasses
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_json_atomic
from abr.common.inputs import load_trace_set, load_video
from abr.common.provenance import git_state, package_versions, utc_timestamp
from abr.common.run_folder import LOCK_FILE, FolderInUseError
from abr.errors import ConfigError
from abr.training.config import VALIDATION_SYNTHETIC_SEED, TrainConfig, load_train_config, save_train_config
from abr.training.envs import TrainEnvSpec, make_training_vec_env
from abr.training.imitation import (
    ImitationReport,
    merge,
    pretrain_policy,
    student_demonstrations,
    teacher_demonstrations,
)
from abr.training.validation import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILE,
    EVALUATION_COLUMNS,
    MODEL_FILE,
    EvaluationPoint,
    save_model,
)
from agents.errors import PolicyLoadError
from agents.provenance import (
    PROVENANCE_ATTR,
    SYNTHETIC_FAMILY,
    build_provenance,
    model_provenance,
    spec_family,
    with_parent,
)
from agents.rl import CRITIC_PREFIXES, LAYOUT_ATTR, algorithm_class, load_model, observation_layout, single_thread_torch
from simulator.config import SimConfig, preset
from simulator.env import EnvConfig
from simulator.qoe import QoEWeights
from traces.synthetic import generate_trace_set
from traces.synthetic_broad import generate_broad_trace_set
from traces.types import Trace, Video

logger = logging.getLogger(__name__)

#: ``progress(timesteps_done, total_timesteps, last_validation_mean_qoe)``; called after each rollout.
TrainProgress = Callable[[int, int, "float | None"], None]
TB_RUN_NAME = "run"
#: Config fields a resumed run may change; every other field must match the run's config.toml.
#: What the imitation stage did (:class:`~abr.training.imitation.ImitationReport`), when the run has one.
IMITATION_FILE = "imitation.json"
RESUMABLE_CHANGES = frozenset({"total_timesteps", "eval_freq_steps", "patience", "tensorboard"})


@dataclass(frozen=True, slots=True)
class TrainInputs:
    """The resolved inputs of a run: traces, video, simulator config, QoE.

    ``train_sets``/``val_sets`` are the sets by spec, each trace once (synthetic traces as ``"synthetic"``);
    ``provenance`` is the model's :data:`~agents.provenance.PROVENANCE_ATTR` record (see :mod:`agents.provenance`).
    """

    train_traces: tuple[Trace, ...]
    val_traces: tuple[Trace, ...]
    video: Video
    sim_config: SimConfig
    qoe: QoEWeights
    train_sets: tuple[tuple[str, tuple[Trace, ...]], ...] = ()
    val_sets: tuple[tuple[str, tuple[Trace, ...]], ...] = ()
    provenance: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What :func:`train` produced: the files, the learning curve and the speed."""

    out_dir: Path
    model_path: Path
    best_model_path: Path
    evaluations: tuple[EvaluationPoint, ...]
    timesteps: int
    steps_per_s: float

    @property
    def best_mean_qoe(self) -> float:
        return max(p.mean_qoe for p in self.evaluations)


def resolve_inputs(config: TrainConfig, data_dir: str | Path | None = None) -> TrainInputs:
    """Load the run's trace sets (training, validation) and video.

    >>> inputs = resolve_inputs(TrainConfig(synthetic_traces=3, val_synthetic_traces=2))
    >>> len(inputs.train_traces), len(inputs.val_traces), inputs.video.n_levels
    (3, 2, 6)
    """
    for spec in (*config.traces, *config.val_traces):
        family = spec_family(spec, data_dir)
        if family in config.held_out:
            raise ConfigError(f"trace set {spec!r} belongs to the held-out family {family!r} (held_out = "
                              f"{list(config.held_out)}); remove it from traces/val_traces, or the family from "
                              "held_out")
    loaded = {spec: load_trace_set(spec, data_dir).traces for spec in dict.fromkeys((*config.traces,
                                                                                    *config.val_traces))}
    repeats = config.trace_repeats or (1,) * len(config.traces)
    train = [t for spec, k in zip(config.traces, repeats) for t in loaded[spec] * k]
    if config.n_synthetic_train:
        generate = generate_broad_trace_set if config.synthetic_kind == "broad" else generate_trace_set
        train += generate(config.seed, config.n_synthetic_train)
    train_sets = _sets_by_spec(config.traces, loaded, train, config.n_synthetic_train)
    if config.rescaled_traces:  # copies of training traces: their provenance is their originals'
        by_spec = dict(train_sets)
        train += rescaled_copies([t for spec in config.rescaled_traces for t in by_spec[spec]], config)
    val = [t for spec in config.val_traces for t in loaded[spec]]
    if config.n_synthetic_val:
        generate = generate_broad_trace_set if config.synthetic_kind == "broad" else generate_trace_set
        val += generate(VALIDATION_SYNTHETIC_SEED, config.n_synthetic_val)
    if not train:
        raise ConfigError("no training traces: give traces or synthetic_traces > 0")
    if not val:
        raise ConfigError("no validation traces: give val_traces or val_synthetic_traces > 0")
    val_sets = _sets_by_spec(config.val_traces, loaded, val, config.n_synthetic_val)
    provenance = build_provenance(train_sets, val_sets, _synthetic_record(config), data_dir=data_dir)
    video = load_video(config.video, data_dir, ladder_kbps=config.ladder_kbps,
                       ladder_option="ladder_kbps (--ladder-kbps)")
    return TrainInputs(tuple(train), tuple(val), video, preset(config.preset),
                       QoEWeights(kind=config.qoe), train_sets, val_sets, provenance)  # type: ignore[arg-type]


#: Stream of the rescaled copies' target means (``TrainConfig.rescaled_traces``).
RESCALE_SPAWN_KEY = 13


def rescaled_copies(traces: Sequence[Trace], config: TrainConfig) -> list[Trace]:
    """Each trace scaled to its own time-weighted mean, log-uniform in the config's rescaled range (seeded).

    >>> from traces.synthetic import generate_trace_set
    >>> copies = rescaled_copies(generate_trace_set(0, 3), TrainConfig(rescaled_mean_low_mbps=1.0,
    ...                                                                 rescaled_mean_high_mbps=2.0))
    >>> [1e6 <= c.mean_throughput_bps <= 2e6 for c in copies], copies[0].name.endswith("@rescaled")
    ([True, True, True], True)
    """
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(RESCALE_SPAWN_KEY,)))
    low, high = np.log(config.rescaled_mean_low_mbps * 1e6), np.log(config.rescaled_mean_high_mbps * 1e6)
    copies = []
    for trace in traces:
        target = float(np.exp(rng.uniform(low, high)))
        scaled = trace.scaled(target / trace.mean_throughput_bps)
        copies.append(dataclasses.replace(scaled, name=f"{trace.name}@rescaled"))
    return copies


def _sets_by_spec(specs: Sequence[str], loaded: dict[str, tuple[Trace, ...]], traces: Sequence[Trace],
                  n_synthetic: int) -> tuple[tuple[str, tuple[Trace, ...]], ...]:
    """The sets of a run by spec, each trace once; the synthetic traces (the last ``n_synthetic``) as one set."""
    sets = [(spec, loaded[spec]) for spec in dict.fromkeys(specs)]
    if n_synthetic:
        sets.append((SYNTHETIC_FAMILY, tuple(traces[len(traces) - n_synthetic:])))
    return tuple(sets)


def _synthetic_record(config: TrainConfig) -> dict[str, Any] | None:
    """The provenance's description of a run's seeded synthetic traces (``None`` without any)."""
    kind = getattr(config, "synthetic_kind", "markov")
    record = {part: {"count": n, "seed": seed, "kind": kind} for part, n, seed in (
        ("train", config.n_synthetic_train, config.seed), ("validation", config.n_synthetic_val,
                                                            VALIDATION_SYNTHETIC_SEED)) if n}
    return record or None


def env_spec(config: TrainConfig, inputs: TrainInputs) -> TrainEnvSpec:
    """The training-environment spec of a run.

    >>> config = TrainConfig(synthetic_traces=2, val_synthetic_traces=1, throughput_scale_high=2.0)
    >>> spec = env_spec(config, resolve_inputs(config))
    >>> spec.is_scaled, spec.env_config.train_noise_high
    (True, 1.1)
    """
    env_config = EnvConfig(training=True, train_noise_low=config.train_noise_low,
                           train_noise_high=config.train_noise_high, history_len=config.history_len,
                           observation=config.observation)
    return TrainEnvSpec(inputs.train_traces, inputs.video, inputs.sim_config, inputs.qoe, env_config,
                        config.throughput_scale_low, config.throughput_scale_high, config.reward_scale,
                        config.env_core)


def build_model(config: TrainConfig, vec_env: Any, n_levels: int, tensorboard_log: str | None, *,
                provenance: dict[str, Any] | None = None) -> Any:
    """A new SB3 model for ``config`` on ``vec_env`` (seeded; the observation layout and ``provenance`` attached)."""
    import torch

    cls = algorithm_class(config.algorithm)
    policy_kwargs: dict[str, Any] = {
        "net_arch": {"pi": list(config.hidden_sizes), "vf": list(config.hidden_sizes)},
        "activation_fn": torch.nn.ReLU if config.policy == "pensieve" else torch.nn.Tanh,
        "share_features_extractor": config.share_features,
    }
    if config.policy == "pensieve":
        from agents.features import PensieveExtractor

        policy_kwargs["features_extractor_class"] = PensieveExtractor
        policy_kwargs["features_extractor_kwargs"] = {
            "history_len": config.history_len, "n_levels": n_levels, "n_filters": config.n_filters,
            "kernel_size": config.kernel_size}
    common: dict[str, Any] = {
        "learning_rate": learning_rate_schedule(config), "n_steps": config.n_steps, "gamma": config.gamma,
        "gae_lambda": config.gae_lambda, "ent_coef": config.ent_coef_start, "vf_coef": config.vf_coef,
        "max_grad_norm": config.max_grad_norm, "policy_kwargs": policy_kwargs, "seed": config.seed,
        "device": "cpu", "verbose": 0, "tensorboard_log": tensorboard_log}
    if config.algorithm == "ppo":
        common.update(batch_size=config.batch_size, n_epochs=config.n_epochs, clip_range=config.clip_range)
    model = cls("MlpPolicy", vec_env, **common)
    setattr(model, LAYOUT_ATTR, observation_layout(n_levels, config.history_len, config.observation))
    if provenance is not None:
        setattr(model, PROVENANCE_ATTR, provenance)
    return model


@dataclass(frozen=True, slots=True)
class LinearSchedule:
    """The learning-rate schedule of older runs: ``start`` at the beginning of training, ``end`` at its end.

    Kept, unchanged, because model files saved before runs switched to stable-baselines3's own
    ``LinearSchedule`` pickled this class as ``abr.train.LinearSchedule`` (that path is now an alias of
    this module, ``abr.MOVED_MODULES``): resuming such a checkpoint needs it.
    New runs do not use it (:func:`learning_rate_schedule`), so their files pickle only SB3 objects and load
    without ``abr``; :func:`agents.rl.load_model` never unpickles it for inference.

    >>> LinearSchedule(1e-3, 1e-4)(0.0)  # SB3 passes the remaining share of training, 1 -> 0
    0.0001
    """

    start: float
    end: float

    def __call__(self, progress_remaining: float) -> float:
        return self.end + (self.start - self.end) * progress_remaining


def learning_rate_schedule(config: TrainConfig) -> Any:
    """The run's learning rate for SB3: a float, or SB3's ``LinearSchedule`` to ``learning_rate_end``.

    SB3 calls a schedule with the remaining share of training (1 at the start, 0 at the end). Only SB3 classes
    are returned, so a saved model holds no pickled ``abr`` object (before SB3 2.6, which has no schedule
    classes, the legacy :class:`LinearSchedule`).

    >>> schedule = learning_rate_schedule(TrainConfig(learning_rate=1e-3, learning_rate_end=1e-4))
    >>> [round(schedule(p), 12) for p in (1.0, 0.5, 0.0)]  # SB3 passes the remaining share, 1 -> 0
    [0.001, 0.00055, 0.0001]
    >>> learning_rate_schedule(TrainConfig(learning_rate=1e-3))
    0.001
    """
    if config.learning_rate_end is None:
        return config.learning_rate
    try:
        from stable_baselines3.common.utils import LinearSchedule as SB3LinearSchedule
    except ImportError:  # stable-baselines3 < 2.6
        return LinearSchedule(config.learning_rate, config.learning_rate_end)
    return SB3LinearSchedule(config.learning_rate, config.learning_rate_end, end_fraction=1.0)


def train(config: TrainConfig, out_dir: str | Path, *, progress: TrainProgress | None = None,
          resume: bool = False, data_dir: str | Path | None = None, command: str | None = None) -> TrainResult:
    """Run (or resume) a training run and write its files to ``out_dir`` (see the module docstring).

    Args:
        config: the run.
        out_dir: the run folder (created if missing).
        progress: called after every rollout with (timesteps done, total, last validation mean QoE).
        resume: continue the run in ``out_dir`` from its ``checkpoint.zip`` up to ``config.total_timesteps``;
            ``config`` may differ from the run's ``config.toml`` only in ``total_timesteps``,
            ``eval_freq_steps``, ``patience`` and ``tensorboard``.
        data_dir: the data directory for trace and video names (else ``$ABR_DATA_DIR``).
        command: the command line, recorded in ``config.json``.

    Returns:
        The model files, the learning curve (every validation of the run, resumed parts included) and the
        training speed of this call in environment steps per second.

    Every input is checked (the config, the folder, the traces and video, ``init_from``'s network and layout, a
    resumed run's step count) before anything is written: a refused run leaves ``out_dir`` as it was. While the
    run goes on it holds ``<out_dir>/.abr-run.lock`` (:func:`run_folder_lock`).

    Raises:
        ConfigError: bad inputs, an ``out_dir`` holding another run (without ``resume``), a resume with a
            changed config, without a checkpoint, or with a ``total_timesteps`` the run has already reached.
        FolderInUseError: another run into ``out_dir`` is going on.
        PolicyLoadError: ``init_from`` cannot be loaded, or has another network or observation layout.
        MissingExtraError: stable-baselines3 or torch is not installed.
    """
    algorithm_class(config.algorithm)  # fail (MissingExtraError) before reading any trace
    single_thread_torch()
    out = Path(out_dir)
    with contextlib.ExitStack() as stack:
        if resume and out.is_dir():  # a resumed run reads the folder's files: no other run may be writing them
            stack.enter_context(run_folder_lock(out))
        _check_out_dir(out, config, resume)
        inputs = resolve_inputs(config, data_dir)
        initial = load_model(config.init_from, config.algorithm)[0] if config.init_from and not resume else None
        if initial is not None and inputs.provenance is not None:  # a fine-tuned model has seen its parent's traces
            inputs = dataclasses.replace(inputs, provenance=with_parent(
                inputs.provenance, model_provenance(initial), str(config.init_from)))
        vec_env = make_training_vec_env(env_spec(config, inputs), config.n_envs, config.seed)
        stack.callback(vec_env.close)
        tb_log = _tensorboard_dir(out, config)
        if resume:
            model = algorithm_class(config.algorithm).load(str(out / CHECKPOINT_FILE), env=vec_env, device="cpu",
                                                          tensorboard_log=tb_log)
            _check_resumed_total(out, config, int(model.num_timesteps))
        else:
            model = build_model(config, vec_env, inputs.video.n_levels, tb_log, provenance=inputs.provenance)
            if initial is not None:
                copy_policy_weights(initial, model, str(config.init_from))
            # Every check has passed: only now is the folder made, claimed and written to.
            out.mkdir(parents=True, exist_ok=True)
            stack.enter_context(run_folder_lock(out))
            _check_out_dir(out, config, resume)  # another run may have claimed the folder since the first check
            if config.imitation_teacher != "none":
                write_json_atomic(out / IMITATION_FILE, imitation_stage(config, inputs, model).as_dict())
        save_train_config(config, out / "config.toml")
        write_json_atomic(out / "config.json", resolved_config(config, inputs, command))
        from abr.training.callbacks import EntropySchedule, Validation

        validation = Validation(config, inputs, out, progress, history=_read_evaluations(out) if resume else [])
        remaining = config.total_timesteps - int(model.num_timesteps)
        start_steps, start_s = int(model.num_timesteps), time.perf_counter()
        logger.info("training %s/%s for %d steps (%d envs) into %s", config.algorithm, config.policy, remaining,
                    config.n_envs, out)
        model.learn(total_timesteps=remaining, callback=[EntropySchedule(config), validation],
                    reset_num_timesteps=not resume, tb_log_name=TB_RUN_NAME, progress_bar=False)
        elapsed_s = time.perf_counter() - start_s
        save_model(model, out / MODEL_FILE)
    done = int(model.num_timesteps) - start_steps
    steps_per_s = done / elapsed_s if elapsed_s > 0 else 0.0
    logger.info("trained %d steps in %.1f s (%.0f steps/s); best validation QoE %.2f", done, elapsed_s,
                steps_per_s, max(p.mean_qoe for p in validation.history))
    return TrainResult(out, out / MODEL_FILE, out / BEST_MODEL_FILE, tuple(validation.history),
                       int(model.num_timesteps), steps_per_s)


def imitation_stage(config: TrainConfig, inputs: TrainInputs, model: Any) -> ImitationReport:
    """The run's cloning stage (:mod:`abr.training.imitation`): demonstrations, then the fit of ``model``.

    With ``imitation_keep_best`` the student plays the demonstrations' sessions after every fit (a DAgger
    round's play is that measurement for the fit before it; the last fit gets a play of its own, labelling
    nothing) and ``model`` ends with the weights of the fit whose mean QoE there was best (the earliest on a tie).
    """
    spec = env_spec(config, inputs)
    started = time.perf_counter()
    teacher, horizon = config.imitation_teacher, config.imitation_horizon
    discount = config.imitation_teacher_discount
    demos = teacher_demonstrations(
        inputs.train_traces, inputs.video, inputs.sim_config, inputs.qoe, spec.env_config, seed=config.seed,
        per_trace=config.imitation_demos_per_trace, scale_low=config.throughput_scale_low,
        scale_high=config.throughput_scale_high, gamma=config.gamma, reward_scale=config.reward_scale,
        sessions=config.imitation_sessions, teacher=teacher, horizon=horizon, discount=discount)
    logger.info("imitation: %d demonstrations (%d decisions, %d skipped) of the %s teacher in %.1f s",
                len(demos.teacher_qoe), len(demos), demos.skipped, config.imitation_teacher, demos.solve_s)
    fit = dict(epochs=config.imitation_epochs, batch_size=config.batch_size,
               learning_rate=config.imitation_learning_rate, vf_coef=config.vf_coef,
               teacher=config.imitation_teacher)
    report = pretrain_policy(model, demos, seed=config.seed, **fit)  # type: ignore[arg-type]
    play = dict(video=inputs.video, sim_config=inputs.sim_config, qoe=inputs.qoe, env_config=spec.env_config,
                seed=config.seed, teacher=teacher, horizon=horizon, discount=discount)
    rounds: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any], ImitationReport] | None = None  # (QoE, fit, weights, report)
    fit_qoe: list[float] = []  # the student's mean QoE on the sessions after each fit (keep_best)
    for round_idx in range(config.imitation_dagger_rounds + (1 if config.imitation_keep_best else 0)):
        is_dagger = round_idx < config.imitation_dagger_rounds
        labelled = student_demonstrations(
            model.policy, inputs.train_traces, demos.draws, round_idx=round_idx,
            per_episode=config.imitation_dagger_states if is_dagger else 0, **play)  # type: ignore[arg-type]
        student_qoe = float(np.mean(labelled.teacher_qoe))
        if config.imitation_keep_best:
            fit_qoe.append(student_qoe)
            if best is None or student_qoe > best[0]:
                best = (student_qoe, round_idx, copy.deepcopy(model.policy.state_dict()), report)
        if not is_dagger:
            break
        demos = merge(demos, labelled)
        report = pretrain_policy(model, demos, seed=config.seed + 1 + round_idx, **fit)  # type: ignore[arg-type]
        rounds.append({"round": round_idx + 1, "student_mean_qoe": student_qoe,
                       "labelled": len(labelled), "solve_s": labelled.solve_s,
                       "train_agreement": report.train_agreement, "holdout_agreement": report.holdout_agreement})
        logger.info("imitation: DAgger round %d: the student's mean QoE %.2f before it; %d states labelled in %.1f s",
                    round_idx + 1, student_qoe, len(labelled), labelled.solve_s)
    if best is not None:
        model.policy.load_state_dict(best[2])
        report = dataclasses.replace(best[3], kept_fit=best[1], kept_student_mean_qoe=best[0],
                                     fit_student_mean_qoe=tuple(fit_qoe))
        logger.info("imitation: keeping fit %d (the student's mean QoE %.2f on the sessions)", best[1], best[0])
    report = dataclasses.replace(report, dagger_rounds=tuple(rounds), stage_s=time.perf_counter() - started,
                                 horizon=horizon if teacher == "horizon-mpc" else None, teacher_discount=discount)
    logger.info("imitation: greedy agreement with the teacher %.1f%% (held out %.1f%%) after %d epochs in %.1f s",
                100 * report.train_agreement, 100 * report.holdout_agreement, report.epochs, report.fit_s)
    return report


@contextlib.contextmanager
def run_folder_lock(folder: Path) -> Iterator[None]:
    """Hold ``<folder>/.abr-run.lock`` (``flock``, exclusive) for the ``with`` block; refuse a folder in use.

    The operating system releases the lock when the process ends, however it ends, so a killed run never
    strands its folder. The lock file holds the holder's pid (for the message of a refused run). It is the lock
    file of :class:`abr.common.run_folder.RunFolder`, so a training run and another command's run never share a folder.

    Raises:
        FolderInUseError: another process holds the lock (a run into ``folder`` is going on).
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - no flock (Windows): runs are not guarded against each other
        yield
        return
    path = folder / LOCK_FILE
    with open(path, "a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip()
            who = f" (pid {holder})" if holder.isdigit() and _is_running(int(holder)) else ""
            raise FolderInUseError(f"{folder} is in use by another abr run{who}; wait for it to end, or give "
                                   "another --out") from None
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)  # still held: no other run can have written its pid since
    # closing the file (above, or the process ending however it ends) releases the lock


def _is_running(pid: int) -> bool:
    """Whether a process ``pid`` exists (a killed run's pid may linger in the lock file)."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _check_resumed_total(out: Path, config: TrainConfig, done_steps: int) -> None:
    """Refuse a resume whose ``total_timesteps`` leaves nothing to train."""
    if config.total_timesteps <= done_steps:
        raise ConfigError(f"cannot resume {out}: the run is already at {done_steps} steps, and total_timesteps="
                          f"{config.total_timesteps} must exceed that; give a larger total (--timesteps) to train "
                          "it further", field="total_timesteps", value=config.total_timesteps)


def copy_policy_weights(source: Any, model: Any, path: str) -> None:
    """Copy the policy weights (actor and critic) of ``source``, loaded from ``path``, into the new ``model``.

    A zeroed critic (an inference copy written by ``abr export``, such as the shipped policy) would never learn
    again (zero weights pass no gradient through ReLUs), so then only the actor is copied.

    Raises:
        PolicyLoadError: ``source`` was made for another observation layout, or its network differs from
            ``model``'s (the message names the file and a differing parameter).
    """
    if getattr(source, LAYOUT_ATTR, None) != getattr(model, LAYOUT_ATTR):
        raise PolicyLoadError(f"init_from={str(path)!r} was trained for the observation layout "
                              f"{getattr(source, LAYOUT_ATTR, None)}, not this run's {getattr(model, LAYOUT_ATTR)}; "
                              "give a model of the same video ladder and history_len")
    target, weights = model.policy.state_dict(), source.policy.state_dict()
    differing = sorted(k for k in set(target) | set(weights)
                       if k not in target or k not in weights or target[k].shape != weights[k].shape)
    if differing:
        raise PolicyLoadError(
            f"init_from={str(path)!r} has another network than this run ({len(differing)} parameters differ, "
            f"e.g. {differing[0]}); set policy, hidden_sizes, n_filters, kernel_size and share_features as in "
            "the run that wrote it (its config.toml)")
    critic = [k for k in weights if k.startswith(CRITIC_PREFIXES)]
    if critic and all(not weights[k].any() for k in critic):  # an inference copy (abr export): a zeroed critic
        logger.warning("init_from=%r has a zeroed critic (an inference copy, such as the shipped policy): the "
                       "actor starts from it, the critic from a new initialisation", path)
        weights = {k: target[k] if k in critic else v for k, v in weights.items()}
    model.policy.load_state_dict(weights)
    logger.info("starting from the policy weights of %s", path)


def _check_out_dir(out: Path, config: TrainConfig, resume: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"out_dir={str(out)!r} is an existing file; give a folder for the run")
    stored = out / "config.toml"
    if not resume:
        if (out / CHECKPOINT_FILE).exists():
            raise ConfigError(f"{out} already holds a training run; resume it (--resume) or give a new --out")
        return
    if not (out / CHECKPOINT_FILE).is_file() or not stored.is_file():
        raise ConfigError(f"cannot resume: {out} holds no {CHECKPOINT_FILE} and config.toml of a training run")
    old = load_train_config(stored)
    changed = [f.name for f in dataclasses.fields(TrainConfig)
               if f.name not in RESUMABLE_CHANGES and getattr(old, f.name) != getattr(config, f.name)]
    if changed:
        raise ConfigError(f"cannot resume {out} with a changed config ({', '.join(changed)}); only "
                          f"{', '.join(sorted(RESUMABLE_CHANGES))} may change; start a new run in another --out")


def _tensorboard_dir(out: Path, config: TrainConfig) -> str | None:
    if not config.tensorboard:
        return None
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        logger.warning("tensorboard is not installed: no TensorBoard logs (pip install tensorboard, or set "
                       "tensorboard = false)")
        return None
    return str(out / "tb")


def _read_evaluations(out: Path) -> list[EvaluationPoint]:
    path = out / "evaluations.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return [EvaluationPoint(int(row["timesteps"]), *(float(row[c]) for c in EVALUATION_COLUMNS[1:]))
                for row in csv.DictReader(handle)]


def resolved_config(config: TrainConfig, inputs: TrainInputs, command: str | None) -> dict[str, Any]:
    """The ``config.json`` of a run: the config, what it resolved to, versions and provenance."""
    versions: dict[str, Any] = package_versions()
    from importlib import metadata

    for dist in ("torch", "stable-baselines3", "tensorboard"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    video = inputs.video
    return {
        "created_utc": utc_timestamp(),
        "command": command,
        "train_config": config.as_dict(),
        "train_traces": {"count": len(inputs.train_traces), "traces": [t.name for t in inputs.train_traces]},
        "val_traces": {"count": len(inputs.val_traces), "traces": [t.name for t in inputs.val_traces],
                       "synthetic_seed": VALIDATION_SYNTHETIC_SEED if config.n_synthetic_val else None},
        "video": {"name": video.name, "source": video.source, "n_chunks": video.n_chunks,
                  "n_levels": video.n_levels, "bitrates_bps": video.bitrates_bps.tolist(),
                  "chunk_duration_s": video.chunk_duration_s},
        "sim_config": dataclasses.asdict(inputs.sim_config),
        "qoe": {**dataclasses.asdict(inputs.qoe), "rebuffer_penalty_per_s": inputs.qoe.rebuffer_penalty,
                "hd_utilities": list(inputs.qoe.hd_utilities)},
        "observation_layout": observation_layout(video.n_levels, config.history_len, config.observation),
        "provenance": inputs.provenance,
        "seeding": "SB3 seed (random, numpy, torch); environment i reset with seed + i; 1 torch thread",
        "versions": versions,
        "git": git_state(),
    }
