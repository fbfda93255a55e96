"""What a streaming team reads off a population run: retention, watch hours, churn, their A/B differences, the
power of an A/B test, whether the churn-risk score predicts churn, and the validation of the effect estimators.

Everything is computed from a :class:`~abr.sessions.simulate.SimulationResult` (methods in
:mod:`abr.sessions.retention` and :mod:`abr.sessions.estimation`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.evaluation.stats import bootstrap_generator
from abr.sessions.engagement import abandonment_curve, churn_risk, watch_curve
from abr.sessions.estimation import ViewTable, estimate_effects
from abr.sessions.retention import (
    FAILED_VISIT_RETURN_DROP,
    SurvivalCurve,
    ViewerOutcomes,
    kaplan_meier,
    paired_outcomes,
    power_table,
    roc_auc,
    viewer_outcomes,
    weekly_return_probability,
)
from abr.sessions.simulate import SimulationResult

#: SODA (SIGCOMM 2024): +5.9% viewing time in Prime Video's production A/B test of a deployed ABR change; an
#: order-of-magnitude check of simulated watch-time differences, not a target.
SODA_VIEWING_TIME_CHANGE = 0.059
#: Run lengths (days) of the power table, where the run is at least that long (its own length is always in).
POWER_DAYS: tuple[int, ...] = (7, 14, 28)
#: The churn-risk score is kept when its ROC AUC for later churn reaches this (else the report says: retire it).
CHURN_RISK_MIN_AUC = 0.7


def arm_outcomes(result: SimulationResult, arm: int, days: int | None = None) -> ViewerOutcomes:
    """Per-viewer outcomes of ``arm`` over the first ``days`` days (all by default).

    The first ``days`` days of a run are a run of that length (nothing later changes them), so prefixes give
    the outcomes of shorter runs.
    """
    n_days = result.config.days if days is None else days
    views = [v for v in result.views if v.arm == arm and v.day < n_days]
    churn = result.churn_day[arm]
    churn = np.where((churn >= 0) & (churn < n_days), churn, -1)
    return viewer_outcomes([v.user for v in views], [v.watch_s for v in views], churn, n_days)


def survival_curves(result: SimulationResult) -> list[SurvivalCurve]:
    """Kaplan-Meier survival of active viewers per arm, censored at the run's end."""
    curves = []
    for a in range(len(result.config.agents)):
        o = arm_outcomes(result, a)
        curves.append(kaplan_meier(o.active_days, o.is_churned, result.config.days))
    return curves


def retention_summary(result: SimulationResult) -> dict[str, Any]:
    """Per arm: watch hours, churned share and active days per viewer, final survival; with two arms, ``b - a``
    of each with a paired bootstrap CI, and the relative watch-time change next to SODA's."""
    config = result.config
    arms = []
    curves = survival_curves(result)
    for a, agent in enumerate(config.agents):
        o = arm_outcomes(result, a)
        arms.append({"agent": agent, "viewers": int(o.watch_hours.size),
                     "watch_hours_per_viewer": float(o.watch_hours.mean()),
                     "churned_share": float(o.is_churned.mean()), "active_days_per_viewer": float(o.active_days.mean()),
                     "survival_at_end": float(curves[a].survival[-1]),
                     "survival_ci95_at_end": [float(curves[a].ci_low[-1]), float(curves[a].ci_high[-1])]})
    out: dict[str, Any] = {
        "days": config.days, "arms": arms,
        "return_model": {"per_failed_start": config.returns.per_failed_start,
                         "per_failed_start_source": "parametrised from Krishnan & Sitaraman (IMC 2012): a failed "
                         f"visit lowers the weekly return probability by {FAILED_VISIT_RETURN_DROP:.2%} points",
                         "weekly_return_probability": weekly_return_probability(
                             sessions_per_day=config.sessions_per_day),
                         "per_rebuffer_pct": config.returns.per_rebuffer_pct,
                         "per_unwatched_share": config.returns.per_unwatched_share,
                         "memory_days": config.returns.memory_days, "churn_idle_days": config.returns.churn_idle_days,
                         "unpublished": ["per_rebuffer_pct", "per_unwatched_share", "churn_idle_days"],
                         "is_enabled": config.returns.is_enabled},
    }
    if len(config.agents) >= 2:
        seed = config.seed
        paired = paired_outcomes(arm_outcomes(result, 0), arm_outcomes(result, 1), lambda: bootstrap_generator(seed))
        out["ab"] = {"a": config.agents[0], "b": config.agents[1], "paired_by": "viewer (common random numbers)",
                     **paired,
                     "soda_check": {"simulated_watch_time_change": paired["watch_hours"]["relative"],
                                    "soda_prime_video_change": SODA_VIEWING_TIME_CHANGE,
                                    "ratio": paired["watch_hours"]["relative"] / SODA_VIEWING_TIME_CHANGE}}
    return out


def power_rows(result: SimulationResult) -> list[dict[str, Any]]:
    """The power table (:func:`abr.sessions.retention.power_table`) over the run's first 7, 14, 28 days and
    its whole length; empty with one arm."""
    if len(result.config.agents) < 2:
        return []
    n = result.config.days
    lengths = sorted({d for d in POWER_DAYS if d < n} | {n})
    return power_table([(d, arm_outcomes(result, 0, d), arm_outcomes(result, 1, d)) for d in lengths])


def churn_risk_scores(result: SimulationResult, arm: int, days: int) -> npt.NDArray[np.float64]:
    """Every viewer's churn-risk score (:func:`abr.sessions.engagement.churn_risk`) in ``arm`` from their views of
    the first ``days`` days."""
    config = result.config
    by_user: dict[int, list[Any]] = {}
    for v in result.views:
        if v.arm == arm and v.day < days:
            by_user.setdefault(v.user, []).append(v)
    n_users = result.churn_day.shape[1]
    scores = np.empty(n_users)
    for u in range(n_users):
        mine = by_user.get(u, [])
        scores[u] = churn_risk([v.day for v in mine], [v.rebuffer_ratio for v in mine],
                               [v.result.is_abandoned for v in mine], [v.result.startup_delay_s for v in mine],
                               [v.watch_fraction for v in mine], [v.intended_fraction for v in mine],
                               today=days - 1, n_days=max(days, 1), grace_s=config.engagement.startup_grace_s)
    return scores


def churn_risk_auc(result: SimulationResult) -> dict[str, Any]:
    """How well the churn-risk score, computed at the run's midpoint from the views before it, ranks the viewers
    active then by whether they churn later (ROC AUC, both arms pooled; NaN without churners)."""
    config = result.config
    mid = config.days // 2
    scores, labels = [], []
    for a in range(len(config.agents)):
        churn = result.churn_day[a]
        active = (churn < 0) | (churn >= mid)
        scores += churn_risk_scores(result, a, mid)[active].tolist()
        labels += (churn[active] >= mid).tolist()
    auc = roc_auc(scores, labels) if mid >= 1 else math.nan
    return {"scored_at_day": mid, "viewers": len(labels), "churned_later": int(np.sum(labels)), "roc_auc": auc,
            "min_auc_to_keep": CHURN_RISK_MIN_AUC,
            "verdict": "no churn to predict" if math.isnan(auc) else
            ("predicts churn: kept" if auc >= CHURN_RISK_MIN_AUC else "does not predict churn: retire it")}


def view_table(result: SimulationResult) -> ViewTable:
    """The estimators' columns over every view of every arm."""
    v = result.views
    return ViewTable(np.array([x.title_idx for x in v], dtype=np.int64), np.array([x.connection for x in v],
                                                                                   dtype=np.int64),
                     np.array([x.result.startup_delay_s for x in v]), np.array([x.result.is_abandoned for x in v]),
                     np.array([x.rebuffer_ratio for x in v]), np.array([x.intended_fraction for x in v]),
                     np.array([x.watch_fraction for x in v]))


def validation(result: SimulationResult) -> dict[str, Any]:
    """The estimators' validation on the run's views (the truth is the model's) and the measured curves."""
    model, confounding = result.config.engagement, result.config.confounding
    views = view_table(result)
    started = ~views.is_abandoned
    effects = estimate_effects(views, model, confounding)
    return {
        "what": "a validation of the effect estimators on simulated views whose true effects are known; not a "
                "calibration of the model (its effects are inputs, parametrised from the sources)",
        "sources": ["Krishnan & Sitaraman, Video Stream Quality Impacts Viewer Behavior, ACM IMC 2012",
                    "Dobrian et al., Understanding the Impact of Video Quality on User Engagement, ACM SIGCOMM 2011"],
        "confounding": {"is_enabled": confounding.is_enabled, "slow_grace_shift_s": confounding.slow_grace_shift_s,
                        "slow_intent_shift": confounding.slow_intent_shift,
                        "complexity_intent_gain": confounding.complexity_intent_gain},
        **effects,
        "curves": {
            "abandonment": [_point(p) for p in abandonment_curve(views.startup_delay_s, views.is_abandoned, model)],
            "rebuffering": [_point(p) for p in watch_curve(views.rebuffer_ratio[started], views.watched[started],
                                                           model)],
        },
    }


def _point(p: Any) -> dict[str, Any]:
    return {"x_low": p.x_low, "x_high": p.x_high, "n": p.n, "measured": p.measured, "model": p.target}
