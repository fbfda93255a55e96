"""Validation during training: a policy played on the validation traces, the learning-curve point it gives,
and the model files a run writes (saved atomically). :mod:`abr.training.callbacks` and :mod:`abr.training.run`
both use it, so neither imports the other at run time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_atomic
from agents.base import Policy
from simulator.config import SimConfig
from simulator.metrics import SessionMetrics, session_metrics
from simulator.qoe import QoEWeights
from simulator.rollout import run_session
from traces.types import Trace, Video
from traces.units import bps_to_kbps

EVALUATION_COLUMNS: tuple[str, ...] = ("timesteps", "mean_qoe", "mean_qoe_excl_first", "mean_bitrate_kbps",
                                       "mean_rebuffer_s", "train_episode_qoe", "ent_coef", "wall_s")
MODEL_FILE, BEST_MODEL_FILE, CHECKPOINT_FILE = "model.zip", "best_model.zip", "checkpoint.zip"


@dataclass(frozen=True, slots=True)
class EvaluationPoint:
    """One validation of the learning curve (means over the validation traces).

    ``train_episode_qoe`` is the mean return of the last (up to 100) training episodes, with the training
    policy's sampled actions, noise and randomisation (the first chunk excluded; NaN before any episode).
    """

    timesteps: int
    mean_qoe: float
    mean_qoe_excl_first: float
    mean_bitrate_kbps: float
    mean_rebuffer_s: float
    train_episode_qoe: float
    ent_coef: float
    wall_s: float


def validate_policy(policy: Policy, traces: Sequence[Trace], video: Video, sim_config: SimConfig,
                    qoe: QoEWeights, *, seed: int = 0) -> list[SessionMetrics]:
    """Play ``policy`` on every trace (from its start) with the SimPy core; one metrics record per trace.

    Session ``i`` gets ``default_rng(SeedSequence(seed, spawn_key=(i,)))`` (used only by noisy presets).
    Any :class:`~agents.base.Policy` plays (training validates an :class:`~agents.rl.RLPolicy`).

    >>> from agents.bba import BBA
    >>> from abr.common.inputs import envivio_cbr_video
    >>> from simulator.config import preset
    >>> from traces.synthetic import generate_trace_set
    >>> m = validate_policy(BBA(), generate_trace_set(0, 2), envivio_cbr_video(), preset("pensieve"), QoEWeights())
    >>> len(m), m[0].n_chunks
    (2, 48)
    """
    metrics = []
    for i, trace in enumerate(traces):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        outcomes = run_session(policy, trace, video, sim_config, rng=rng, qoe=qoe)
        metrics.append(session_metrics(outcomes, video, qoe, chunk_duration_s=video.chunk_duration_s))
    return metrics


def save_model(model: Any, path: Path) -> Path:
    """``model.save(path)`` atomically: a run interrupted while saving keeps the previous complete file."""
    return write_atomic(path, lambda tmp: model.save(str(tmp)))


def evaluation_point(timesteps: int, metrics: Sequence[SessionMetrics], train_episode_qoe: float, ent_coef: float,
                     wall_s: float) -> EvaluationPoint:
    """The learning-curve point of one validation.

    >>> from simulator.metrics import SessionMetrics
    >>> m = SessionMetrics(10.0, 12.0, 0.2, 20.0, 5.0, 5.0, 1e6, 1.0, 0.5, 0.01, 0.0, 0, 0.0, 1e8, 200.0, 48)
    >>> evaluation_point(100, [m], float("nan"), 0.1, 1.0).mean_bitrate_kbps
    1000.0
    """
    return EvaluationPoint(
        timesteps=int(timesteps),
        mean_qoe=float(np.mean([m.qoe for m in metrics])),
        mean_qoe_excl_first=float(np.mean([m.qoe_excl_first for m in metrics])),
        mean_bitrate_kbps=bps_to_kbps(float(np.mean([m.avg_bitrate_bps for m in metrics]))),
        mean_rebuffer_s=float(np.mean([m.rebuffer_s for m in metrics])),
        train_episode_qoe=float(train_episode_qoe),
        ent_coef=float(ent_coef),
        wall_s=float(wall_s),
    )
