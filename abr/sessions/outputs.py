"""What ``abr sessions simulate`` writes: tables, summaries, the engagement calibration, an A/B comparison.

Files in the output folder (each written atomically; no wall-clock time or host detail goes into them, so
the same seed and inputs give byte-identical files):

* ``sessions.csv``: one row per view (policy, day, user, title, list rank, QoE, engagement).
* ``users.csv``: one row per (policy, user): views, watch hours, abandonment, QoE, churn risk.
* ``policies.csv``: one row per policy: totals and means, fairness on shared links.
* ``recommender.csv``: online recommender metrics per (policy, day).
* ``calibration.json``: the engagement curves measured from the sessions next to the published targets.
* ``ab.json`` (two policies): the paired difference in watch hours per user with a 95% percentile-bootstrap
  CI: the evaluation's bootstrap and settings (:func:`abr.evaluation.stats.bootstrap_ci`: 1,000 resamples of
  the users, drawn from the run seed's bootstrap stream :func:`abr.evaluation.stats.bootstrap_generator`).
* ``config.json``: the resolved settings, seed and package versions; ``report.md`` and the plots.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from abr.common.provenance import package_versions
from abr.common.tables import markdown_table
from abr.evaluation.stats import bootstrap_ci, bootstrap_generator
from abr.sessions.engagement import (
    CurvePoint,
    abandonment_curve,
    abandonment_slope,
    watch_curve,
    watch_loss_slope,
)
from abr.sessions.population import Population, RatingData
from abr.sessions.simulate import SimulationResult, ViewRecord
from traces.units import bps_to_kbps

#: Tolerances of the engagement calibration (measured against the targets, see ``calibration.json``).
ABANDON_SLOPE_TOL = 0.012  # +-1.2 percentage points per second around 5.8, or 3 standard errors if larger
WATCH_LOSS_SLOPE_TOL = 1.0  # +-1 % of the title per % of rebuffering ratio around 5
BIN_TOL = 0.05  # each bin's measured rate within 0.05 + 3 binomial standard errors of its target

SESSION_COLUMNS = ("agent", "day", "user", "household", "view", "start_time_s", "title_id", "title_rank",
                   "interest", "intended_fraction", "patience_s", "window_s", "is_abandoned", "startup_delay_s",
                   "rebuffer_s", "played_s", "rebuffer_ratio", "avg_bitrate_kbps", "qoe_per_chunk", "switch_count",
                   "concurrent_views", "group_fairness", "title_duration_s", "watch_fraction", "watch_s")


def session_rows(result: SimulationResult, data: RatingData) -> Iterator[tuple[object, ...]]:
    """The rows of ``sessions.csv``, one view at a time (a table of every view would double the views' memory)."""
    agents = result.config.agents
    ids = data.catalog.title_ids
    return ((agents[v.arm], v.day, v.user, v.household, v.view, v.start_time_s, int(ids[v.title_idx]), v.rank,
             v.interest, v.intended_fraction, v.patience_s, v.window_s, int(v.result.is_abandoned),
             v.result.startup_delay_s, v.result.rebuffer_s, v.result.played_s, v.rebuffer_ratio,
             bps_to_kbps(v.result.avg_bitrate_bps), v.result.qoe_per_chunk, v.result.switch_count, v.result.concurrent,
             v.result.group_fairness, v.title_duration_s, v.watch_fraction, v.watch_s) for v in result.views)


def _arm_views(result: SimulationResult, arm: int) -> list[ViewRecord]:
    return [v for v in result.views if v.arm == arm]


def user_table(result: SimulationResult, population: Population) -> Iterator[tuple[object, ...]]:
    """The rows of ``users.csv``, one (policy, user) at a time."""
    for a, agent in enumerate(result.config.agents):
        by_user: dict[int, list[ViewRecord]] = {}
        for v in _arm_views(result, a):
            by_user.setdefault(v.user, []).append(v)
        for u in range(population.n_users):
            mine = by_user.get(u, [])
            started = [v for v in mine if not v.result.is_abandoned]
            yield (agent, u, int(population.household[u]), population.household_family[population.household[u]],
                   len(mine), sum(v.watch_s for v in mine) / 3600.0,
                   float(np.mean([v.result.is_abandoned for v in mine])) if mine else 0.0,
                   float(np.mean([v.rebuffer_ratio for v in started])) if started else 0.0,
                   float(np.mean([v.result.startup_delay_s for v in mine])) if mine else 0.0,
                   float(result.churn[a, u]))


USER_COLUMNS = ("agent", "user", "household", "network", "views", "watch_hours", "abandoned_share",
                "mean_rebuffer_ratio", "mean_startup_delay_s", "churn_risk")


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
            "mean_churn_risk": float(np.mean(result.churn[a])),
            "shared_view_share": len(shared) / len(views) if views else 0.0,
            "shared_mean_fairness": _mean([v.result.group_fairness for v in shared]),
            "shared_mean_bitrate_kbps": _mean([bps_to_kbps(v.result.avg_bitrate_bps) for v in shared
                                               if not v.result.is_abandoned]),
        })
    return out


def _mean(values: list[Any]) -> float:
    return float(np.mean(values)) if values else math.nan


def calibration(result: SimulationResult, arm: int | None = None) -> dict[str, Any]:
    """The engagement curves measured from the views (all arms pooled unless ``arm``), against the targets."""
    model = result.config.engagement
    views = result.views if arm is None else _arm_views(result, arm)
    delays = np.array([v.result.startup_delay_s for v in views])
    abandoned = np.array([v.result.is_abandoned for v in views])
    started = [v for v in views if not v.result.is_abandoned]
    ratios = np.array([v.rebuffer_ratio for v in started])
    watched = np.array([v.watch_fraction for v in started])
    intended = np.array([v.intended_fraction for v in started])
    abandon_points = abandonment_curve(delays, abandoned, model)
    watch_points = watch_curve(ratios, watched, model)
    slope, slope_se = abandonment_slope(delays, abandoned, model)
    slope_tol = max(ABANDON_SLOPE_TOL, 3 * slope_se)
    loss = watch_loss_slope(ratios, watched, intended)
    below_grace = abandoned[delays < model.startup_grace_s]

    def point(p: CurvePoint, se: float) -> dict[str, Any]:
        return {**dataclasses.asdict(p), "tolerance": BIN_TOL + 3 * se,
                "within": bool(abs(p.measured - p.target) <= BIN_TOL + 3 * se)}

    return {
        "sources": ["Krishnan & Sitaraman, Video Stream Quality Impacts Viewer Behavior, ACM IMC 2012",
                    "Dobrian et al., Understanding the Impact of Video Quality on User Engagement, ACM SIGCOMM 2011"],
        "abandonment": {
            "target_grace_s": model.startup_grace_s,
            "measured_rate_below_grace": float(below_grace.mean()) if below_grace.size else math.nan,
            "target_slope_per_s": model.abandon_per_s,
            "measured_slope_per_s": slope,
            "measured_slope_se": slope_se,
            "slope_tolerance": slope_tol,
            "slope_within": bool(abs(slope - model.abandon_per_s) <= slope_tol),
            "bins": [point(p, math.sqrt(max(p.target * (1 - p.target), 1e-4) / p.n)) for p in abandon_points],
        },
        "rebuffering": {
            "target_loss_per_ratio": model.watch_loss_per_rebuffer_ratio,
            "measured_loss_per_ratio": loss,
            "method": "per view: intended minus watched fraction, regressed on the ratio (ratios up to 5%)",
            "observational_loss_per_ratio": watch_loss_slope(ratios, watched),
            "loss_tolerance": WATCH_LOSS_SLOPE_TOL,
            "loss_within": bool(abs(loss - model.watch_loss_per_rebuffer_ratio) <= WATCH_LOSS_SLOPE_TOL),
            "bins": [point(p, 0.3 / math.sqrt(p.n)) for p in watch_points],
        },
    }


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
    calib = calibration(result)
    write_json_atomic(out / "calibration.json", calib)
    summary: dict[str, Any] = {"policies": policies, "calibration_within": calib["abandonment"]["slope_within"]
                               and calib["rebuffering"]["loss_within"]}
    if len(agents) >= 2:
        summary["ab"] = ab_comparison(result, population)
        write_json_atomic(out / "ab.json", summary["ab"])
    write_json_atomic(out / "config.json", {**settings, "versions": package_versions()})
    if plots:
        from abr.sessions.plots import draw_all

        draw_all(out, result, calib)
    write_text_atomic(out / "report.md", render_report(policies, calib, summary.get("ab"), settings))
    return summary


def render_report(policies: list[dict[str, Any]], calib: dict[str, Any], ab: dict[str, Any] | None,
                  settings: dict[str, Any]) -> str:
    lines = ["# Viewing sessions", "", f"`{settings.get('command', '')}`", "",
             *markdown_table(
                 ("policy", "views", "watch h", "h/user", "startup abandon", "watch frac", "startup s",
                  "rebuffer ratio", "kbps", "churn risk", "fairness (shared)"),
                 [(p["agent"], p["views"], f"{p['watch_hours']:.1f}", f"{p['watch_hours_per_user']:.3f}",
                   f"{p['startup_abandonment_rate']:.3f}", f"{p['mean_watch_fraction']:.3f}",
                   f"{p['mean_startup_delay_s']:.2f}", f"{p['mean_rebuffer_ratio']:.4f}",
                   f"{p['mean_bitrate_kbps']:.0f}", f"{p['mean_churn_risk']:.3f}", f"{p['shared_mean_fairness']:.3f}")
                  for p in policies])]
    if ab:
        lines += ["", f"A/B ({ab['b']} - {ab['a']}): {ab['delta_watch_hours_per_user']:+.4f} watch hours per user "
                  f"(95% CI {ab['delta_ci95'][0]:+.4f} to {ab['delta_ci95'][1]:+.4f}), {ab['relative_change']:+.1%} "
                  "in total."]
    ab_cal, rb_cal = calib["abandonment"], calib["rebuffering"]
    lines += ["", "## Engagement calibration (Krishnan & Sitaraman, IMC 2012)", "",
              f"- startup abandonment slope: measured {ab_cal['measured_slope_per_s']:.4f}/s, target "
              f"{ab_cal['target_slope_per_s']}/s +- {ab_cal['slope_tolerance']} "
              f"({'within' if ab_cal['slope_within'] else 'OUTSIDE'})",
              f"- watch loss per unit rebuffering ratio: measured {rb_cal['measured_loss_per_ratio']:.2f}, target "
              f"{rb_cal['target_loss_per_ratio']} +- {rb_cal['loss_tolerance']} "
              f"({'within' if rb_cal['loss_within'] else 'OUTSIDE'})", "",
              "Plots: `watch_hours.png`, `engagement.png`, `churn_risk.png`, `recommender.png`.", ""]
    return "\n".join(lines)
