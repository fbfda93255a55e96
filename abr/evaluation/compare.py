"""Paired comparisons between agents and the share of the offline optimum they reach.

Both are computed over the traces two agents have in common in a trace set (every agent of an evaluation
plays every trace, so that is the whole set), pairing the two sessions of each trace:

* **Paired comparison** of ``agent`` against ``baseline`` on a metric: the mean over traces of
  ``agent - baseline`` with a 95% percentile-bootstrap CI (traces resampled with replacement), and the
  win / tie / loss rates (tie: |difference| <= :data:`TIE_TOLERANCE`).
* **% of optimum**: ``100 * mean(agent) / mean(optimum)`` of ``qoe_excl_first`` (the literature's
  convention: a ratio of means, which stays meaningful when single traces have an optimum near zero),
  with a bootstrap CI that resamples traces and recomputes the ratio. Needs the ``optimal`` agent in the run.

The bootstrap of each (trace set) group is seeded from the evaluation seed alone (see :mod:`abr.evaluation.stats`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import astuple, dataclass

import numpy as np
import numpy.typing as npt

from abr.evaluation.stats import bootstrap_ci, bootstrap_generator, bootstrap_means, percentile_interval

OPTIMUM_AGENT = "optimal"
TIE_TOLERANCE = 1e-9
PAIRED_METRICS: tuple[str, ...] = ("qoe", "qoe_excl_first")
OPTIMUM_METRIC = "qoe_excl_first"
PAIRED_COLUMNS: tuple[str, ...] = (
    "agent", "baseline", "trace_set", "metric", "n", "mean_diff", "ci_low", "ci_high", "win_rate", "tie_rate",
    "loss_rate",
)
OPTIMUM_COLUMNS: tuple[str, ...] = (
    "agent", "trace_set", "n", "metric", "mean", "optimum_mean", "pct_of_optimum", "ci_low", "ci_high",
)

Row = Mapping[str, object]


@dataclass(frozen=True, slots=True)
class PairedRow:
    """``agent`` minus ``baseline`` on ``metric`` over the ``n`` traces of ``trace_set`` they share."""

    agent: str
    baseline: str
    trace_set: str
    metric: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    win_rate: float
    tie_rate: float
    loss_rate: float

    def as_tuple(self) -> tuple[str | int | float, ...]:
        return astuple(self)

    @property
    def is_significant(self) -> bool:
        """Whether the 95% CI of the mean difference excludes zero."""
        return self.ci_low > 0.0 or self.ci_high < 0.0


@dataclass(frozen=True, slots=True)
class OptimumRow:
    """``agent``'s mean ``metric`` as a percentage of the offline optimum's on ``trace_set``."""

    agent: str
    trace_set: str
    n: int
    metric: str
    mean: float
    optimum_mean: float
    pct_of_optimum: float
    ci_low: float
    ci_high: float

    def as_tuple(self) -> tuple[str | int | float, ...]:
        return astuple(self)


def _paired_values(rows: Sequence[Row], agent: str, other: str, trace_set: str | None,
                   metric: str) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Values of ``metric`` for ``agent`` and ``other`` on the traces both played, in a stable order."""
    def values(name: str) -> dict[tuple[str, str], float]:
        return {(str(r["trace_set"]), str(r["trace"])): float(r[metric])  # type: ignore[arg-type]
                for r in rows if r["agent"] == name and (trace_set is None or r["trace_set"] == trace_set)}

    mine, theirs = values(agent), values(other)
    keys = sorted(mine.keys() & theirs.keys())
    return np.array([mine[k] for k in keys]), np.array([theirs[k] for k in keys])


def _groups(rows: Sequence[Row], all_sets_label: str) -> list[tuple[str, str | None]]:
    sets = list(dict.fromkeys(str(r["trace_set"]) for r in rows))
    return [(s, s) for s in sets] + [(all_sets_label, None)]


def paired_comparisons(rows: Sequence[Row], baseline: str, *, seed: int, metrics: Sequence[str] = PAIRED_METRICS,
                       all_sets_label: str = "all") -> list[PairedRow]:
    """Every other agent against ``baseline``, per trace set and over all sets.

    >>> rows = [{"agent": a, "trace_set": "s", "trace": t, "qoe": q}
    ...         for a, t, q in [("a", "x", 1.0), ("a", "y", 3.0), ("b", "x", 0.0), ("b", "y", 3.0)]]
    >>> r = paired_comparisons(rows, "b", seed=0, metrics=["qoe"])[0]
    >>> (r.agent, r.n, r.mean_diff, r.win_rate, r.tie_rate)
    ('a', 2, 0.5, 0.5, 0.5)
    """
    agents = [a for a in dict.fromkeys(str(r["agent"]) for r in rows) if a != baseline]
    out: list[PairedRow] = []
    for agent in agents:
        for label, trace_set in _groups(rows, all_sets_label):
            for metric in metrics:
                mine, theirs = _paired_values(rows, agent, baseline, trace_set, metric)
                if mine.size == 0:
                    continue
                diff = mine - theirs
                low, high = bootstrap_ci(diff, bootstrap_generator(seed))
                out.append(PairedRow(agent, baseline, label, metric, int(diff.size), float(diff.mean()), low, high,
                                     float(np.mean(diff > TIE_TOLERANCE)),
                                     float(np.mean(np.abs(diff) <= TIE_TOLERANCE)),
                                     float(np.mean(diff < -TIE_TOLERANCE))))
    return out


def percent_of_optimum(rows: Sequence[Row], *, seed: int, optimum: str = OPTIMUM_AGENT,
                       metric: str = OPTIMUM_METRIC, all_sets_label: str = "all") -> list[OptimumRow]:
    """Each agent's mean ``metric`` as a % of the optimum's, per trace set and over all sets.

    Returns an empty list when ``optimum`` did not play.

    >>> rows = [{"agent": a, "trace_set": "s", "trace": t, "m": q}
    ...         for a, t, q in [("a", "x", 1.0), ("a", "y", 2.0), ("optimal", "x", 2.0), ("optimal", "y", 4.0)]]
    >>> [(r.agent, r.pct_of_optimum) for r in percent_of_optimum(rows, seed=0, metric="m")][0]
    ('a', 50.0)
    """
    if not any(r["agent"] == optimum for r in rows):
        return []
    out: list[OptimumRow] = []
    for agent in dict.fromkeys(str(r["agent"]) for r in rows):
        for label, trace_set in _groups(rows, all_sets_label):
            mine, best = _paired_values(rows, agent, optimum, trace_set, metric)
            if mine.size == 0:
                continue
            resampled_mine, resampled_best = bootstrap_means(np.stack([mine, best]), bootstrap_generator(seed))
            with np.errstate(divide="ignore", invalid="ignore"):
                ratios = 100.0 * resampled_mine / resampled_best
                pct = 100.0 * float(mine.mean()) / float(best.mean())
            finite = ratios[np.isfinite(ratios)]
            low, high = percentile_interval(finite) if finite.size else (np.nan, np.nan)
            out.append(OptimumRow(agent, label, int(mine.size), metric, float(mine.mean()), float(best.mean()),
                                  pct, low, high))
    return out

