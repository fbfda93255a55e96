"""What ``abr sessions simulate`` writes: tables, summaries, retention, the estimators' validation, an A/B comparison.

Files in the output folder (each written atomically; no wall-clock time or host detail goes into them, so
the same seed and inputs give byte-identical files):

* ``sessions.csv``: one row per view (policy, day, user, title, list rank, QoE, engagement).
* ``users.csv``: one row per (policy, user): views, watch hours, abandonment, QoE, churn day, churn-risk score at
  the end (its ROC AUC for churn is in ``outcomes.json``).
* ``policies.csv``: one row per policy: totals and means, fairness on shared links.
* ``recommender.csv``: online recommender metrics per (policy, day).
* ``validation.json``: the naive and quasi-experimental estimates of the startup-delay and rebuffering effects
  from the views, next to the true effects the model holds (a validation of the estimators, not a
  calibration: the model's effects are inputs), and the measured curves (:mod:`abr.sessions.outcomes`).
* ``retention.csv``: Kaplan-Meier survival of active viewers per (policy, day) with Greenwood 95% bounds.
* ``outcomes.json``: per policy, watch hours, churned share and active days per viewer; with two policies their
  paired differences (bootstrap CIs as for ``ab.json``) and the SODA order-of-magnitude check; the churn-risk
  score's ROC AUC.
* ``power.csv`` (two policies): viewers an A/B test needs per outcome, run length and effect size.
* ``ab.json`` (two policies): the paired difference in watch hours per user with a 95% percentile-bootstrap
  CI: the evaluation's bootstrap and settings (:func:`abr.evaluation.stats.bootstrap_ci`: 1,000 resamples of
  the users, drawn from the run seed's bootstrap stream :func:`abr.evaluation.stats.bootstrap_generator`).
* ``config.json``: the resolved settings, seed and package versions; ``report.md`` and the plots.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from abr.common.provenance import package_versions
from abr.evaluation.stats import bootstrap_ci, bootstrap_generator
from abr.sessions.outcomes import (
    churn_risk_auc,
    churn_risk_scores,
    power_rows,
    retention_summary,
    survival_curves,
    validation,
)
from abr.sessions.population import Population, RatingData
from abr.sessions.simulate import SimulationResult, ViewRecord
from traces.units import bps_to_kbps

SESSION_COLUMNS = ("agent", "day", "user", "household", "view", "start_time_s", "title_id", "title_rank",
                   "interest", "intended_fraction", "patience_s", "window_s", "is_abandoned", "startup_delay_s",
                   "rebuffer_s", "played_s", "rebuffer_ratio", "avg_bitrate_kbps", "qoe_per_chunk", "switch_count",
                   "concurrent_views", "group_fairness", "title_duration_s", "watch_fraction", "watch_s",
                   "connection_class")


def session_rows(result: SimulationResult, data: RatingData) -> Iterator[tuple[object, ...]]:
    """The rows of ``sessions.csv``, one view at a time (a table of every view would double the views' memory)."""
    agents = result.config.agents
    ids = data.catalog.title_ids
    return ((agents[v.arm], v.day, v.user, v.household, v.view, v.start_time_s, int(ids[v.title_idx]), v.rank,
             v.interest, v.intended_fraction, v.patience_s, v.window_s, int(v.result.is_abandoned),
             v.result.startup_delay_s, v.result.rebuffer_s, v.result.played_s, v.rebuffer_ratio,
             bps_to_kbps(v.result.avg_bitrate_bps), v.result.qoe_per_chunk, v.result.switch_count, v.result.concurrent,
             v.result.group_fairness, v.title_duration_s, v.watch_fraction, v.watch_s, v.connection)
            for v in result.views)


def _arm_views(result: SimulationResult, arm: int) -> list[ViewRecord]:
    return [v for v in result.views if v.arm == arm]


def user_table(result: SimulationResult, population: Population) -> Iterator[tuple[object, ...]]:
    """The rows of ``users.csv``, one (policy, user) at a time."""
    for a, agent in enumerate(result.config.agents):
        by_user: dict[int, list[ViewRecord]] = {}
        for v in _arm_views(result, a):
            by_user.setdefault(v.user, []).append(v)
        risk = churn_risk_scores(result, a, result.config.days)
        for u in range(population.n_users):
            mine = by_user.get(u, [])
            started = [v for v in mine if not v.result.is_abandoned]
            yield (agent, u, int(population.household[u]), population.household_family[population.household[u]],
                   len(mine), sum(v.watch_s for v in mine) / 3600.0,
                   float(np.mean([v.result.is_abandoned for v in mine])) if mine else 0.0,
                   float(np.mean([v.rebuffer_ratio for v in started])) if started else 0.0,
                   float(np.mean([v.result.startup_delay_s for v in mine])) if mine else 0.0,
                   int(result.churn_day[a, u]), float(risk[u]))


USER_COLUMNS = ("agent", "user", "household", "network", "views", "watch_hours", "abandoned_share",
                "mean_rebuffer_ratio", "mean_startup_delay_s", "churn_day", "churn_risk")


def policy_summary(result: SimulationResult, population: Population) -> list[dict[str, Any]]:
    out = []
    for a, agent in enumerate(result.config.agents):
        views = _arm_views(result, a)
        started = [v for v in views if not v.result.is_abandoned]
        shared = [v for v in views if v.result.concurrent > 0]
        out.append({
            "agent": agent,
            "views": len(views),
            "watch_hours": sum(v.watch_s for v in views) / 3600.0,
            "watch_hours_per_user": sum(v.watch_s for v in views) / 3600.0 / population.n_users,
            "startup_abandonment_rate": _mean([v.result.is_abandoned for v in views]),
            "mean_watch_fraction": _mean([v.watch_fraction for v in views]),
            "mean_startup_delay_s": _mean([v.result.startup_delay_s for v in views]),
            "mean_rebuffer_ratio": _mean([v.rebuffer_ratio for v in started]),
            "mean_bitrate_kbps": _mean([bps_to_kbps(v.result.avg_bitrate_bps) for v in started]),
            "mean_qoe_per_chunk": _mean([v.result.qoe_per_chunk for v in started]),
            "churned_share": float(np.mean(result.churn_day[a] >= 0)),
            "shared_view_share": len(shared) / len(views) if views else 0.0,
            "shared_mean_fairness": _mean([v.result.group_fairness for v in shared]),
            "shared_mean_bitrate_kbps": _mean([bps_to_kbps(v.result.avg_bitrate_bps) for v in shared
                                               if not v.result.is_abandoned]),
        })
    return out


def _mean(values: list[Any]) -> float:
    return float(np.mean(values)) if values else math.nan


def ab_comparison(result: SimulationResult, population: Population) -> dict[str, Any]:
    """Arm 1 minus arm 0: watch hours per user (paired by user), with a seeded bootstrap 95% CI (the module
    docstring gives its settings)."""
    a_name, b_name = result.config.agents[:2]
    hours = np.zeros((2, population.n_users))
    for v in result.views:
        if v.arm < 2:
            hours[v.arm, v.user] += v.watch_s / 3600.0
    diff = hours[1] - hours[0]
    low, high = bootstrap_ci(diff, bootstrap_generator(result.config.seed))
    return {
        "a": a_name, "b": b_name,
        "watch_hours_a": float(hours[0].sum()), "watch_hours_b": float(hours[1].sum()),
        "delta_watch_hours_per_user": float(diff.mean()),
        "delta_ci95": [float(low), float(high)],
        "relative_change": float(hours[1].sum() / hours[0].sum() - 1.0) if hours[0].sum() > 0 else math.nan,
        "users_better_with_b": int(np.sum(diff > 0)), "users_worse_with_b": int(np.sum(diff < 0)),
        "paired_by": "user (same population, view times, choices' random numbers, traces and start offsets)",
    }


def write_outputs(out: Path, result: SimulationResult, data: RatingData, population: Population,
                  settings: dict[str, Any], *, plots: bool = True) -> dict[str, Any]:
    """Write every output file into ``out`` (created if needed); returns the summary dict."""
    out.mkdir(parents=True, exist_ok=True)
    write_csv_atomic(out / "sessions.csv", SESSION_COLUMNS, session_rows(result, data))
    write_csv_atomic(out / "users.csv", USER_COLUMNS, user_table(result, population))
    policies = policy_summary(result, population)
    write_csv_atomic(out / "policies.csv", list(policies[0]), [list(p.values()) for p in policies])
    agents = result.config.agents
    write_csv_atomic(out / "recommender.csv", ("agent", "day", "mean_list_interest", "precision_at_k_true",
                                                "list_share", "mean_watch_fraction"),
                     [(agents[d.arm], d.day, d.mean_list_interest, d.precision_at_k_true, d.list_share,
                       d.mean_watch_fraction) for d in result.days])
    checked = validation(result)
    write_json_atomic(out / "validation.json", checked)
    curves = survival_curves(result)
    write_csv_atomic(out / "retention.csv", RETENTION_COLUMNS,
                     [(agents[a], int(c.time[i]), int(c.at_risk[i]), int(c.events[i]), float(c.survival[i]),
                       float(c.ci_low[i]), float(c.ci_high[i]))
                      for a, c in enumerate(curves) for i in range(c.time.size)])
    retention = {**retention_summary(result), "churn_risk": churn_risk_auc(result)}
    write_json_atomic(out / "outcomes.json", retention)
    summary: dict[str, Any] = {"policies": policies, "validation": checked, "retention": retention}
    power = power_rows(result)
    if len(agents) >= 2:
        summary["ab"] = ab_comparison(result, population)
        write_json_atomic(out / "ab.json", summary["ab"])
        write_csv_atomic(out / "power.csv", list(power[0]), [list(r.values()) for r in power])
    write_json_atomic(out / "config.json", {**settings, "versions": package_versions()})
    if plots:
        from abr.sessions.plots import draw_all

        draw_all(out, result, checked, curves)
    from abr.sessions.report import render_report

    write_text_atomic(out / "report.md", render_report(policies, checked, retention, power, summary.get("ab"),
                                                       settings))
    return summary


RETENTION_COLUMNS = ("agent", "day", "at_risk", "churned", "survival", "ci_low", "ci_high")
