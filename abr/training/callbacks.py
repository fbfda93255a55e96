"""The SB3 callbacks of :mod:`abr.training.run`: the entropy schedule and the validation with checkpoints."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abr.common.atomic import write_csv_atomic
from agents.rl import LAYOUT_ATTR, RLPolicy
from simulator.errors import MissingExtraError

try:
    from stable_baselines3.common.callbacks import BaseCallback
except ImportError as exc:  # pragma: no cover - exercised only without the rl extra
    raise MissingExtraError("stable-baselines3", "rl") from exc

if TYPE_CHECKING:
    from abr.training.config import TrainConfig
    from abr.training.run import TrainInputs, TrainProgress

from abr.training.validation import (
    BEST_MODEL_FILE,
    CHECKPOINT_FILE,
    EVALUATION_COLUMNS,
    EvaluationPoint,
    evaluation_point,
    save_model,
    validate_policy,
)

logger = logging.getLogger(__name__)


class EntropySchedule(BaseCallback):
    """Set the model's entropy weight before every rollout from ``config.entropy_coef(num_timesteps)``."""

    def __init__(self, config: TrainConfig) -> None:
        super().__init__()
        self.config = config

    def _on_rollout_start(self) -> None:
        coef = self.config.entropy_coef(int(self.model.num_timesteps))
        self.model.ent_coef = coef  # type: ignore[attr-defined]  # PPO and A2C read it at every update
        self.logger.record("train/ent_coef", coef)

    def _on_step(self) -> bool:
        return True


class Validation(BaseCallback):
    """Validate the greedy policy, record the learning curve, keep the best model and a checkpoint.

    Validates before the first step (unless resuming a run that already has validations), every
    ``config.eval_freq_steps`` environment steps, and when training ends; stops the training once
    ``config.patience`` validations in a row bring no improvement.
    """

    def __init__(self, config: TrainConfig, inputs: TrainInputs, out_dir: Path,
                 progress: TrainProgress | None, history: list[EvaluationPoint]) -> None:
        super().__init__()
        self.config = config
        self.inputs = inputs
        self.out_dir = out_dir
        self.progress = progress
        self.history = list(history)
        self._last_eval_steps = self.history[-1].timesteps if self.history else -1
        self._start_s = time.perf_counter() - (self.history[-1].wall_s if self.history else 0.0)

    @property
    def best_mean_qoe(self) -> float:
        return max((p.mean_qoe for p in self.history), default=float("-inf"))

    def _on_training_start(self) -> None:
        if not self.history:
            self._validate()
        self._report()

    def _on_step(self) -> bool:
        freq = self.config.eval_freq_steps
        if freq and self.model.num_timesteps - self._last_eval_steps >= freq:
            self._validate()
            if self.out_of_patience:
                logger.info("stopping early: %d validations without improvement (best %.2f)",
                            self.config.patience, self.best_mean_qoe)
                return False
        return True

    @property
    def out_of_patience(self) -> bool:
        """Whether the last ``config.patience`` validations (> 0) all failed to improve on the best before them."""
        patience = self.config.patience
        if not patience or len(self.history) <= patience:
            return False
        before = max(p.mean_qoe for p in self.history[:-patience])
        return all(p.mean_qoe <= before for p in self.history[-patience:])

    def _on_rollout_end(self) -> None:
        self._report()

    def _on_training_end(self) -> None:
        if self.model.num_timesteps != self._last_eval_steps:
            self._validate()
        self._report()

    def _report(self) -> None:
        if self.progress is not None:
            last = self.history[-1].mean_qoe if self.history else None
            self.progress(int(self.model.num_timesteps), self.config.total_timesteps, last)

    def _validate(self) -> None:
        steps = int(self.model.num_timesteps)
        policy = RLPolicy(self.model, getattr(self.model, LAYOUT_ATTR), name=f"{self.config.algorithm}@{steps}")
        was_training = self.model.policy.training
        self.model.policy.set_training_mode(False)
        inputs = self.inputs
        metrics = validate_policy(policy, inputs.val_traces, inputs.video, inputs.sim_config, inputs.qoe,
                                  seed=self.config.seed)
        self.model.policy.set_training_mode(was_training)
        ent_coef = float(getattr(self.model, "ent_coef", float("nan")))
        episodes = [float(e["r"]) for e in (self.model.ep_info_buffer or [])]
        train_qoe = sum(episodes) / len(episodes) if episodes else float("nan")
        point = evaluation_point(steps, metrics, train_qoe, ent_coef, time.perf_counter() - self._start_s)
        improved = point.mean_qoe > self.best_mean_qoe
        self.history.append(point)
        self._last_eval_steps = steps
        for name in ("mean_qoe", "mean_qoe_excl_first", "mean_bitrate_kbps", "mean_rebuffer_s"):
            self.logger.record(f"eval/{name}", getattr(point, name))
        if improved:
            save_model(self.model, self.out_dir / BEST_MODEL_FILE)
        save_model(self.model, self.out_dir / CHECKPOINT_FILE)  # atomic: Ctrl-C while saving keeps the last one
        rows: list[Any] = [[getattr(p, c) for c in EVALUATION_COLUMNS] for p in self.history]
        write_csv_atomic(self.out_dir / "evaluations.csv", EVALUATION_COLUMNS, rows)
        logger.info("step %d: validation mean QoE %.2f (best %.2f)%s", steps, point.mean_qoe,
                    self.best_mean_qoe, " - saved best model" if improved else "")
