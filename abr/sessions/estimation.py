"""Estimating QoE effects from views: the naive correlation and the quasi-experimental design (QED) of
Krishnan & Sitaraman (IMC 2012), and a validation of both on simulated views whose true effect is known.

Observational data confound a QoE effect: slow connections cause long startups and stalls, and their viewers
may also be more patient or keener; complex titles stall more and may hold viewers differently
(:class:`~abr.sessions.engagement.Confounding`). The **naive** estimate regresses the outcome on the
treatment over all views (least squares with an intercept; heteroscedasticity-robust standard error, HC0).
The **QED** estimate follows Krishnan & Sitaraman's matched design: views are matched with views of the
*same title and viewer type* (connection class) that differ in the treatment. Within each stratum the views
are sorted by treatment and the ``i``-th of the lower half is paired with the ``i``-th of the upper half;
pairs whose treatments differ by less than ``min_gap`` are dropped. The effect is the ratio
``sum(y_high - y_low) / sum(x_high - x_low)`` over the pairs (per unit of treatment), with the delta-method
standard error ``sqrt(sum (dy - b dx)^2) / sum dx`` (pairs independent).

Two effects are estimated (:func:`estimate_effects`):

* **startup delay -> abandonment**, per second, over views with delays in ``[grace + the largest confounder
  shift, max_delay_s]`` (where the model's curve is linear for every viewer: the model's slope there is the
  true effect);
* **rebuffering ratio -> watched fraction lost**, per unit of ratio, over started views with a ratio up to
  ``max_ratio``. The true effect in those views is known to the simulation only: each view's intended
  fraction minus its watched fraction, regressed on the ratio through the origin (the model's 5 less what
  clipping at 0 takes).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.sessions.engagement import Confounding, EngagementModel

#: Abandonment is estimated over startup delays up to this, in seconds (the model is linear well beyond it).
MAX_DELAY_S = 12.0
#: Matched pairs differ by at least this much startup delay, in seconds ...
MIN_DELAY_GAP_S = 1.0
#: ... or this much rebuffering ratio.
MIN_RATIO_GAP = 0.002
#: Started views with rebuffering ratios up to this enter the rebuffering estimate.
MAX_RATIO = 0.05


@dataclass(frozen=True, slots=True)
class Estimate:
    """An effect estimate (per unit of treatment) with its standard error and sample size.

    Attributes:
        method: ``naive`` or ``qed``.
        value: the effect.
        se: its standard error.
        n: views (naive) or matched pairs (qed).
    """

    method: str
    value: float
    se: float
    n: int

    @property
    def ci95(self) -> tuple[float, float]:
        z = NormalDist().inv_cdf(0.975)
        return self.value - z * self.se, self.value + z * self.se

    def as_dict(self) -> dict[str, Any]:
        return {"method": self.method, "value": self.value, "se": self.se, "ci95": list(self.ci95), "n": self.n}


def naive_slope(x: npt.ArrayLike, y: npt.ArrayLike) -> Estimate:
    """Least-squares slope of ``y`` on ``x`` with an intercept, HC0 standard error.

    >>> e = naive_slope([0, 1, 2, 3], [1, 3, 5, 7])
    >>> e.value, e.se, e.n
    (2.0, 0.0, 4)
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    if xs.size < 3 or np.ptp(xs) == 0:
        return Estimate("naive", math.nan, math.nan, int(xs.size))
    xc = xs - xs.mean()
    sxx = float(xc @ xc)
    beta = float(xc @ (ys - ys.mean())) / sxx
    resid = ys - ys.mean() - beta * xc
    return Estimate("naive", beta, float(np.sqrt(np.sum(xc * xc * resid * resid))) / sxx, int(xs.size))


def matched_pairs(treatment: npt.ArrayLike, strata: npt.ArrayLike,
                  min_gap: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """``(high, low)`` indices of matched pairs: same stratum (an integer label), treatments ``min_gap`` apart.

    >>> high, low = matched_pairs([1.0, 5.0, 2.0, 9.0, 3.0], [0, 0, 0, 0, 1], 2.0)
    >>> high.tolist(), low.tolist()
    ([1, 3], [0, 2])
    """
    x = np.asarray(treatment, dtype=np.float64)
    _, group = np.unique(np.asarray(strata, dtype=np.int64), return_inverse=True)
    order = np.lexsort((np.arange(x.size), x, group))  # by stratum, then treatment, then index
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    highs, lows = [], []
    for members in np.split(order, bounds):
        half = members.size // 2
        lo, hi = members[:half], members[members.size - half:]
        keep = x[hi] - x[lo] >= min_gap
        highs.append(hi[keep])
        lows.append(lo[keep])
    if not highs:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(highs).astype(np.int64), np.concatenate(lows).astype(np.int64)


def qed_effect(x: npt.ArrayLike, y: npt.ArrayLike, strata: npt.ArrayLike, min_gap: float) -> Estimate:
    """The matched-pairs effect of ``x`` on ``y`` (see the module docstring).

    >>> e = qed_effect([0, 1, 0, 1], [0.0, 2.0, 10.0, 12.0], [0, 0, 1, 1], 0.5)  # strata differ by 10
    >>> e.value, e.n
    (2.0, 2)
    """
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    high, low = matched_pairs(xs, strata, min_gap)
    if high.size < 2:
        return Estimate("qed", math.nan, math.nan, int(high.size))
    dx, dy = xs[high] - xs[low], ys[high] - ys[low]
    beta = float(dy.sum() / dx.sum())
    return Estimate("qed", beta, float(np.sqrt(np.sum((dy - beta * dx) ** 2)) / dx.sum()), int(high.size))


def _negated(e: Estimate) -> Estimate:
    return Estimate(e.method, -e.value, e.se, e.n)


@dataclass(frozen=True, slots=True)
class ViewTable:
    """The columns the estimators read, one entry per view."""

    title: npt.NDArray[np.int64]
    connection: npt.NDArray[np.int64]
    startup_delay_s: npt.NDArray[np.float64]
    is_abandoned: npt.NDArray[np.bool_]
    rebuffer_ratio: npt.NDArray[np.float64]
    intended: npt.NDArray[np.float64]
    watched: npt.NDArray[np.float64]

    @property
    def strata(self) -> npt.NDArray[np.int64]:
        return self.title * 16 + self.connection


def estimate_effects(views: ViewTable, model: EngagementModel, confounding: Confounding) -> dict[str, Any]:
    """Naive and QED estimates of both effects, next to the true effects (see the module docstring)."""
    lo_s = model.startup_grace_s + confounding.max_grace_shift_s
    window = (views.startup_delay_s >= lo_s) & (views.startup_delay_s <= MAX_DELAY_S)
    d, a = views.startup_delay_s[window], views.is_abandoned[window].astype(np.float64)
    started = ~views.is_abandoned & (views.rebuffer_ratio <= MAX_RATIO)
    r, w = views.rebuffer_ratio[started], views.watched[started]
    lost = views.intended[started] - w
    true_loss = float(r @ lost / (r @ r)) if np.any(r > 0) else math.nan
    return {
        "abandonment": {
            "treatment": "startup delay (s)", "outcome": "abandoned at startup", "unit": "per second",
            "delay_range_s": [lo_s, MAX_DELAY_S], "views": int(window.sum()),
            "true_effect": model.abandon_per_s,
            "true_effect_is": "the model's slope, parametrised from Krishnan & Sitaraman (IMC 2012)",
            "naive": naive_slope(d, a).as_dict(),
            "qed": qed_effect(d, a, views.strata[window], MIN_DELAY_GAP_S).as_dict(),
        },
        "rebuffering": {
            "treatment": "rebuffering ratio", "outcome": "fraction of the title not watched", "unit": "per unit ratio",
            "max_ratio": MAX_RATIO, "views": int(started.sum()),
            "model_parameter": model.watch_loss_per_rebuffer_ratio,
            "true_effect": true_loss,
            "true_effect_is": "intended minus watched fraction on the ratio, through the origin (only a "
                              "simulation knows each view's intended fraction)",
            "naive": _negated(naive_slope(r, w)).as_dict(),
            "qed": _negated(qed_effect(r, w, views.strata[started], MIN_RATIO_GAP)).as_dict(),
        },
    }
