"""Plots of a population run (matplotlib's Agg canvas, imported lazily; PNGs written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from abr.common.plotting import save_figure
from abr.sessions.retention import SurvivalCurve
from abr.sessions.simulate import SimulationResult

_FIGSIZE_IN = (9.0, 4.0)
_DPI = 100
#: Curve bins with fewer views are left out of the plots (they stay in validation.json).
MIN_PLOTTED_BIN_VIEWS = 10


def _save(path: Path, draw: Any) -> Path:
    return save_figure(path, draw, figsize_in=_FIGSIZE_IN, dpi=_DPI)


def draw_all(out: Path, result: SimulationResult, checked: dict[str, Any], curves: list[SurvivalCurve]) -> None:
    agents = result.config.agents
    days = result.config.days

    def watch_hours(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for a, agent in enumerate(agents):
            per_day = np.zeros(days)
            for v in result.views:
                if v.arm == a:
                    per_day[v.day] += v.watch_s / 3600.0
            ax.plot(np.arange(1, days + 1), per_day, marker="o", label=agent)
        ax.set_xlabel("day")
        ax.set_ylabel("watch hours")
        ax.legend()

    def engagement(fig: Any) -> None:
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for ax, key, xlabel, ylabel, scale in (
                (left, "abandonment", "startup delay (s)", "startup abandonment rate", 1.0),
                (right, "rebuffering", "rebuffering ratio (%)", "watched fraction of the title", 100.0)):
            bins = [b for b in checked["curves"][key] if b["n"] >= MIN_PLOTTED_BIN_VIEWS]
            x = [(b["x_low"] + b["x_high"]) / 2 * scale for b in bins]
            ax.plot(x, [b["measured"] for b in bins], "o-", label="measured (all views)")
            ax.plot(x, [b["model"] for b in bins], "k--", label="model without confounders (from K&S 2012)")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
            ax.legend()

    def recommender(fig: Any) -> None:
        left, right = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
        for a, agent in enumerate(agents):
            rows = [d for d in result.days if d.arm == a]
            x = [d.day + 1 for d in rows]
            left.plot(x, [d.precision_at_k_true for d in rows], "o-", label=agent)
            right.plot(x, [d.mean_watch_fraction for d in rows], "o-", label=agent)
        left.set_ylabel("precision@k vs true top-k")
        right.set_ylabel("mean watched fraction")
        for ax in (left, right):
            ax.set_xlabel("day")
            ax.legend()

    def retention(fig: Any) -> None:
        ax = fig.add_subplot(1, 1, 1)
        for agent, c in zip(agents, curves):
            x = np.concatenate([[0], c.time])
            line = ax.step(x, np.concatenate([[1.0], c.survival]), where="post", label=agent)[0]
            ax.fill_between(x, np.concatenate([[1.0], c.ci_low]), np.concatenate([[1.0], c.ci_high]), step="post",
                            alpha=0.2, color=line.get_color())
        ax.set_xlabel("day")
        ax.set_ylabel("viewers not churned (Kaplan-Meier, 95% CI)")
        ax.legend()

    _save(out / "retention.png", retention)
    _save(out / "watch_hours.png", watch_hours)
    _save(out / "engagement.png", engagement)
    _save(out / "recommender.png", recommender)
