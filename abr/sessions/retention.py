"""Return and churn: how often a viewer comes back depends on what they experienced, and who stays away leaves.

**The return model** (:class:`ReturnModel`). Each viewer ``u`` has an activity rate ``lambda_u`` (mean views per
day with nothing to complain about; :mod:`abr.sessions.population`). On day ``t`` the number of views they start
is Poisson with rate ``lambda_u * m_u(t)``, drawn by inversion from one uniform per (viewer, day), so both arms of
an A/B run share it and a lower rate can only mean fewer views, never other ones. The multiplier looks back
``memory_days`` days (``t - memory_days .. t - 1``)::

    m_u(t) = exp(-(per_failed_start * F + per_rebuffer_pct * 100 * R + per_unwatched_share * U))

* ``F``: views that failed at startup (abandoned before playback started), counted;
* ``R``: mean rebuffering ratio of the started views;
* ``U``: share of the intended watching the stalls cut off, ``sum(intended - watched) / sum(intended)``.

``per_failed_start`` is **parametrised from** Krishnan & Sitaraman (IMC 2012): a viewer whose visit failed is
2.32% less likely to return to the site within a week. Read as **2.32 percentage points** of the probability of
returning within a week: their quasi-experimental "net outcome" is the share of matched pairs where the treated
viewer did worse minus the share where the untreated one did, a difference of two proportions. (Read as 2.32%
of that probability instead, the drop is ``0.0232 * P(return)``; with the default population's ``P(return)``
of 0.98 (:func:`weekly_return_probability`) the two readings differ by 2% of the effect, and
:func:`failed_start_log_rate` takes either.) With the Gamma(2) activities of the population, a failed view
lands on a viewer of rate ``lambda`` in proportion to ``lambda`` (a Gamma(3) viewer), whose chance of no view in
the next 7 days is ``E[exp(-7 m lambda)] = (1 + 7 m theta)^-3``: :func:`failed_start_log_rate` solves that
for the drop of 2.32 points, which gives ``per_failed_start`` = 0.393 (``m`` = 0.675) at 0.8 views a day.

Dobrian et al. (SIGCOMM 2011) find that buffering lowers how much a viewer watches over their visits, not only
within a view, but give no figure for how often they return: ``per_rebuffer_pct`` and ``per_unwatched_share``
are **not published**; they are parameters with a plausible range (:data:`UNPUBLISHED`), and
:mod:`abr.sessions.sensitivity` shows how an A/B conclusion moves across it.

**Churn** (a stated rule, not a published one): a viewer with no view for ``churn_idle_days`` days in a row
(counting from the start of the run) has churned, on the first day after that spell; churn is absorbing (they
never start a view again). The churn day of every viewer who has not churned by the run's end is censored
there.

**Outcomes** (:func:`kaplan_meier`, :func:`paired_outcomes`, :func:`power_table`): Kaplan-Meier survival of
active viewers per arm with Greenwood 95% intervals (on the log-log scale, so they stay in [0, 1]); per viewer,
watch hours, churned (0/1) and active days (the days before churn, up to the run's length: the restricted mean
survival time); the paired difference of each between the arms (the arms share viewers and random numbers);
and how many viewers and days an A/B test needs to detect a given difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError

#: Krishnan & Sitaraman (IMC 2012): a failed visit -> 2.32% less likely to return within a week (read as
#: percentage points, see the module docstring).
FAILED_VISIT_RETURN_DROP = 0.0232
#: ... "within a week".
RETURN_WINDOW_DAYS = 7
#: The population's activity rates are Gamma with this shape (abr.sessions.population.build_population).
ACTIVITY_SHAPE = 2.0
DEFAULT_SESSIONS_PER_DAY = 0.8
#: Inversion of a Poisson count stops here (a rate above ~500 views a day is not a viewer).
_MAX_DAILY_VIEWS = 1000


def weekly_return_probability(multiplier: float = 1.0, *, sessions_per_day: float = DEFAULT_SESSIONS_PER_DAY,
                              shape: float = ACTIVITY_SHAPE, days: int = RETURN_WINDOW_DAYS) -> float:
    """Probability that a viewer just seen viewing views again within ``days``, their rate times ``multiplier``.

    Viewers' rates are Gamma(``shape``, ``sessions_per_day / shape``); the one just seen is drawn in proportion
    to their rate (Gamma(``shape + 1``)), so ``1 - (1 + days * multiplier * theta) ** -(shape + 1)``.

    >>> round(weekly_return_probability(), 4)
    0.9818
    """
    theta = sessions_per_day / shape
    return 1.0 - (1.0 + days * multiplier * theta) ** -(shape + 1.0)


def failed_start_log_rate(drop: float = FAILED_VISIT_RETURN_DROP, *, relative: bool = False,
                          sessions_per_day: float = DEFAULT_SESSIONS_PER_DAY, shape: float = ACTIVITY_SHAPE,
                          days: int = RETURN_WINDOW_DAYS) -> float:
    """``per_failed_start``: the log-rate cut that lowers the weekly return probability by ``drop``.

    Args:
        drop: the published drop (percentage points as a fraction, or a relative drop with ``relative``).
        relative: read ``drop`` as a share of the return probability instead of points.
        sessions_per_day: the population's mean activity.
        shape: the Gamma shape of the activities.
        days: the return window.

    >>> round(failed_start_log_rate(), 3), round(failed_start_log_rate(relative=True), 3)
    (0.393, 0.388)
    """
    theta = sessions_per_day / shape
    base_away = 1.0 - weekly_return_probability(sessions_per_day=sessions_per_day, shape=shape, days=days)
    points = drop * (1.0 - base_away) if relative else drop
    away = base_away + points
    if not 0 < away < 1:
        raise ConfigError(f"drop={drop}: a return probability cannot fall below 0")
    multiplier = (away ** (-1.0 / (shape + 1.0)) - 1.0) / (days * theta)
    return float(-math.log(multiplier))


#: The default ``per_failed_start`` (0.393 at 0.8 views a day).
PER_FAILED_START = failed_start_log_rate()


@dataclass(frozen=True, slots=True)
class ReturnModel:
    """How recent experience changes a viewer's daily rate, and when they churn (see the module docstring).

    Args:
        per_failed_start: log-rate cut per startup failure in the memory (parametrised from Krishnan &
            Sitaraman, IMC 2012).
        per_rebuffer_pct: log-rate cut per percentage point of mean rebuffering ratio (unpublished).
        per_unwatched_share: log-rate cut per unit share of intended watching lost to stalls (unpublished).
        memory_days: days of experience that count (Krishnan & Sitaraman's week).
        churn_idle_days: days in a row without a view after which a viewer has churned (a stated rule).
        is_enabled: ``False``: rates ignore experience and nobody churns (the model before issue 15).
    """

    per_failed_start: float = PER_FAILED_START
    per_rebuffer_pct: float = 0.05
    per_unwatched_share: float = 0.5
    memory_days: int = RETURN_WINDOW_DAYS
    churn_idle_days: int = 14
    is_enabled: bool = True

    def __post_init__(self) -> None:
        for name in ("per_failed_start", "per_rebuffer_pct", "per_unwatched_share"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}={value!r} must be >= 0")
        for name in ("memory_days", "churn_idle_days"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be an integer >= 1")


#: Parameters without a published value: (name, low, default, high) of their plausible range.
UNPUBLISHED: tuple[tuple[str, float, float, float], ...] = (
    ("per_rebuffer_pct", 0.0, 0.05, 0.15),
    ("per_unwatched_share", 0.0, 0.5, 1.5),
    ("churn_idle_days", 7, 14, 21),
)


def poisson_count(u: float, rate: float) -> int:
    """The Poisson(``rate``) count at quantile ``u`` (inversion: non-decreasing in ``rate`` for a fixed ``u``).

    >>> [poisson_count(0.5, r) for r in (0.0, 0.5, 2.0)]
    [0, 0, 2]
    """
    if rate <= 0:
        return 0
    k, p = 0, math.exp(-rate)
    cdf = p
    while u >= cdf and k < _MAX_DAILY_VIEWS:
        k += 1
        p *= rate / k
        cdf += p
    return k


@dataclass(frozen=True, slots=True)
class DayExperience:
    """What each viewer went through on one day (arrays over viewers; zeros for those without a view)."""

    views: npt.NDArray[np.int32]
    failed: npt.NDArray[np.int32]
    started: npt.NDArray[np.int32]
    rebuffer_ratio_sum: npt.NDArray[np.float64]
    intended_sum: npt.NDArray[np.float64]
    lost_sum: npt.NDArray[np.float64]

    @classmethod
    def collect(cls, n_users: int, users: Sequence[int], is_failed: Sequence[bool], ratios: Sequence[float],
                intended: Sequence[float], watched: Sequence[float]) -> DayExperience:
        """Sum the day's views by viewer."""
        u = np.asarray(users, dtype=np.int64)
        failed = np.asarray(is_failed, dtype=bool)
        ok = ~failed
        want = np.asarray(intended, dtype=np.float64)
        lost = np.where(ok, np.maximum(want - np.asarray(watched, dtype=np.float64), 0.0), 0.0)
        return cls(np.bincount(u, minlength=n_users).astype(np.int32),
                   np.bincount(u, weights=failed, minlength=n_users).astype(np.int32),
                   np.bincount(u, weights=ok, minlength=n_users).astype(np.int32),
                   _sums(u, np.where(ok, np.asarray(ratios, dtype=np.float64), 0.0), n_users),
                   _sums(u, np.where(ok, want, 0.0), n_users), _sums(u, lost, n_users))


def _sums(users: npt.NDArray[np.int64], values: npt.NDArray[np.float64], n: int) -> npt.NDArray[np.float64]:
    return np.bincount(users, weights=values, minlength=n).astype(np.float64)


@dataclass(slots=True)
class ReturnState:
    """One arm's memory of every viewer: the last ``memory_days`` days' experience (a ring), the last day
    with a view, and the churn day (-1: active). Memory grows with the viewers, not with the days."""

    model: ReturnModel
    n_users: int
    failed: npt.NDArray[np.int32] = field(init=False)
    started: npt.NDArray[np.int32] = field(init=False)
    ratio_sum: npt.NDArray[np.float64] = field(init=False)
    intended_sum: npt.NDArray[np.float64] = field(init=False)
    lost_sum: npt.NDArray[np.float64] = field(init=False)
    last_view_day: npt.NDArray[np.int32] = field(init=False)
    churn_day: npt.NDArray[np.int32] = field(init=False)

    def __post_init__(self) -> None:
        shape = (self.model.memory_days, self.n_users)
        self.failed = np.zeros(shape, dtype=np.int32)
        self.started = np.zeros(shape, dtype=np.int32)
        self.ratio_sum = np.zeros(shape)
        self.intended_sum = np.zeros(shape)
        self.lost_sum = np.zeros(shape)
        self.last_view_day = np.full(self.n_users, -1, dtype=np.int32)  # the run's start counts as a visit
        self.churn_day = np.full(self.n_users, -1, dtype=np.int32)

    def multiplier(self) -> npt.NDArray[np.float64]:
        """Each viewer's rate multiplier ``m_u`` for the next day (1 without the model)."""
        m = self.model
        if not m.is_enabled:
            return np.ones(self.n_users)
        started = self.started.sum(axis=0)
        ratio = np.divide(self.ratio_sum.sum(axis=0), started, out=np.zeros(self.n_users), where=started > 0)
        intended = self.intended_sum.sum(axis=0)
        unwatched = np.divide(self.lost_sum.sum(axis=0), intended, out=np.zeros(self.n_users), where=intended > 0)
        return np.exp(-(m.per_failed_start * self.failed.sum(axis=0) + m.per_rebuffer_pct * 100.0 * ratio
                        + m.per_unwatched_share * unwatched))

    def rates(self, day: int, activity: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """Each viewer's view rate on ``day`` (0 once churned); marks who churns at the start of ``day``."""
        if self.model.is_enabled:
            leaving = (self.churn_day < 0) & (day - self.last_view_day - 1 >= self.model.churn_idle_days)
            self.churn_day[leaving] = day
        return np.where(self.churn_day >= 0, 0.0, activity * self.multiplier())

    def record(self, day: int, seen: DayExperience) -> None:
        """Take in ``day``'s experience (it replaces the day that falls out of the memory)."""
        slot = day % self.model.memory_days
        self.failed[slot] = seen.failed
        self.started[slot] = seen.started
        self.ratio_sum[slot] = seen.rebuffer_ratio_sum
        self.intended_sum[slot] = seen.intended_sum
        self.lost_sum[slot] = seen.lost_sum
        self.last_view_day[seen.views > 0] = day


# -- outcomes ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SurvivalCurve:
    """Kaplan-Meier survival at the end of each day (``time`` = days survived) with Greenwood 95% bounds."""

    time: npt.NDArray[np.int64]
    at_risk: npt.NDArray[np.int64]
    events: npt.NDArray[np.int64]
    survival: npt.NDArray[np.float64]
    ci_low: npt.NDArray[np.float64]
    ci_high: npt.NDArray[np.float64]


def kaplan_meier(durations: npt.ArrayLike, is_event: npt.ArrayLike, horizon: int) -> SurvivalCurve:
    """Kaplan-Meier estimate on the integer times ``1 .. horizon``.

    Args:
        durations: each subject's time to the event or to censoring (days survived).
        is_event: whether the event was seen (else censored at ``durations``).
        horizon: the last time reported.

    Greenwood's variance ``S^2 sum d / (n (n - d))``, with the interval on the log(-log) scale
    (``S^exp(+-1.96 sigma)``, ``sigma^2 = sum d / (n (n - d)) / log(S)^2``).

    >>> km = kaplan_meier([1, 2, 2, 3], [True, True, False, False], horizon=3)
    >>> [round(float(s), 4) for s in km.survival]
    [0.75, 0.5, 0.5]
    """
    t = np.asarray(durations, dtype=np.int64)
    e = np.asarray(is_event, dtype=bool)
    z = NormalDist().inv_cdf(0.975)
    times = np.arange(1, horizon + 1)
    at_risk = np.array([int(np.sum(t >= k)) for k in times], dtype=np.int64)
    events = np.array([int(np.sum((t == k) & e)) for k in times], dtype=np.int64)
    ratio = np.divide(events, at_risk, out=np.zeros(times.size), where=at_risk > 0)
    survival = np.cumprod(1.0 - ratio).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        green = np.cumsum(np.where((at_risk > events) & (at_risk > 0),
                                   events / (at_risk * (at_risk - events)).astype(np.float64), 0.0))
        log_s = np.log(survival)
        sigma = np.sqrt(green) / np.abs(log_s)
        low = survival ** np.exp(z * sigma)
        high = survival ** np.exp(-z * sigma)
    exact = (events.cumsum() == 0) | (survival <= 0)  # no event yet (or none left): no interval width
    return SurvivalCurve(times, at_risk, events, survival, np.where(exact, survival, low),
                         np.where(exact, survival, high))


@dataclass(frozen=True, slots=True)
class ViewerOutcomes:
    """Per viewer of one arm: watch hours, churned (0/1), active days (up to the run's length)."""

    watch_hours: npt.NDArray[np.float64]
    is_churned: npt.NDArray[np.bool_]
    active_days: npt.NDArray[np.int64]


def viewer_outcomes(users: npt.ArrayLike, watch_s: npt.ArrayLike, churn_day: npt.ArrayLike,
                    n_days: int) -> ViewerOutcomes:
    """The outcomes of an arm's viewers from its views (``users``, ``watch_s``) and churn days (-1: none)."""
    churn = np.asarray(churn_day, dtype=np.int64)
    hours = _sums(np.asarray(users, dtype=np.int64), np.asarray(watch_s, dtype=np.float64) / 3600.0, churn.size)
    return ViewerOutcomes(hours, churn >= 0, np.where(churn >= 0, churn, n_days))


OUTCOMES: tuple[str, ...] = ("watch_hours", "churned", "active_days")


def outcome_values(o: ViewerOutcomes, name: str) -> npt.NDArray[np.float64]:
    """One outcome per viewer (:data:`OUTCOMES`)."""
    values = {"watch_hours": o.watch_hours, "churned": o.is_churned, "active_days": o.active_days}[name]
    return np.asarray(values, dtype=np.float64)


def paired_outcomes(a: ViewerOutcomes, b: ViewerOutcomes, rng_factory: Any) -> dict[str, dict[str, Any]]:
    """``b - a`` of each outcome's per-viewer mean, with a paired percentile-bootstrap 95% CI over viewers.

    Args:
        a: the first arm's viewers.
        b: the second arm's (the same viewers, in the same order).
        rng_factory: ``() -> Generator``; called once per outcome, so every outcome resamples the same viewers.
    """
    from abr.evaluation.stats import bootstrap_ci

    out = {}
    for name in OUTCOMES:
        va, vb = outcome_values(a, name), outcome_values(b, name)
        diff = vb - va
        low, high = bootstrap_ci(diff, rng_factory())
        out[name] = {"a": float(va.mean()), "b": float(vb.mean()), "difference": float(diff.mean()),
                     "ci95": [float(low), float(high)],
                     "relative": float(diff.mean() / va.mean()) if va.mean() != 0 else math.nan,
                     "sd_paired": float(diff.std(ddof=1)) if diff.size > 1 else math.nan,
                     "sd_a": float(va.std(ddof=1)) if va.size > 1 else math.nan,
                     "sd_b": float(vb.std(ddof=1)) if vb.size > 1 else math.nan}
    return out


#: Relative differences (of arm A's per-viewer mean) the power table is for.
POWER_EFFECTS: tuple[float, ...] = (0.01, 0.02, 0.05, 0.10)
POWER_ALPHA = 0.05
POWER = 0.80


def viewers_needed(sd: float, effect: float, *, alpha: float = POWER_ALPHA, power: float = POWER,
                   arms: int = 2) -> float:
    """Viewers a two-sided z-test at ``alpha`` needs to detect a mean difference ``effect`` with ``power``.

    ``arms=1``: a paired design (``sd`` of the per-viewer difference: viewers in total). ``arms=2``: two
    independent groups (``sd`` of one viewer's outcome: viewers per arm, ``2 (z_a + z_b)^2 sd^2 / effect^2``).

    NaN when the outcome does not vary (``sd`` 0) or the effect is 0: the run cannot tell.

    >>> round(viewers_needed(1.0, 0.1, arms=2))  # the textbook 2 x 7.85 / 0.01
    1570
    """
    if effect == 0 or not math.isfinite(sd) or sd == 0:
        return math.nan
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    return float(arms * (z * sd / effect) ** 2)


def power_table(per_day_outcomes: Sequence[tuple[int, ViewerOutcomes, ViewerOutcomes]],
                effects: Sequence[float] = POWER_EFFECTS) -> list[dict[str, Any]]:
    """Viewers needed per outcome, run length and relative effect (of arm A's mean).

    Args:
        per_day_outcomes: ``(days, arm A outcomes, arm B outcomes)`` measured over the first ``days`` days.
        effects: relative differences to detect.

    Each row gives the viewers per arm of a randomised A/B test (viewers split between the arms: the variance of
    one viewer's outcome, pooled over both arms) and the viewers of a paired simulation (the variance of the
    per-viewer difference under common random numbers, which a real test cannot have).
    """
    rows = []
    for days, a, b in per_day_outcomes:
        for name in OUTCOMES:
            va, vb = outcome_values(a, name), outcome_values(b, name)
            mean = float(va.mean())
            sd = math.sqrt((float(va.var(ddof=1)) + float(vb.var(ddof=1))) / 2) if va.size > 1 else math.nan
            sd_diff = float((vb - va).std(ddof=1)) if va.size > 1 else math.nan
            for r in effects:
                delta = r * mean
                rows.append({"outcome": name, "days": days, "relative_effect": r, "absolute_effect": delta,
                             "mean_a": mean, "sd_viewer": sd, "sd_paired_difference": sd_diff,
                             "viewers_per_arm_randomised": _ceil(viewers_needed(sd, delta, arms=2)),
                             "viewers_paired_simulation": _ceil(viewers_needed(sd_diff, delta, arms=1))})
    return rows


def _ceil(x: float) -> float | int:
    return int(math.ceil(x)) if math.isfinite(x) else math.nan


def roc_auc(scores: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Area under the ROC curve (Mann-Whitney, ties count one half); NaN without both classes.

    >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
    0.75
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(labels, dtype=bool)
    pos, neg = s[y], s[~y]
    if pos.size == 0 or neg.size == 0:
        return math.nan
    order = np.argsort(np.concatenate([pos, neg]), kind="mergesort")
    ranks = np.empty(order.size)
    values = np.concatenate([pos, neg])[order]
    i = 0
    while i < values.size:  # average ranks of ties
        j = i
        while j + 1 < values.size and values[j + 1] == values[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[:pos.size].sum() - pos.size * (pos.size + 1) / 2) / (pos.size * neg.size))
