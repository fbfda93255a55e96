"""The engagement model: when viewers give up at startup, how much they watch, the confounders real data has,
and a churn-risk score.

Parametrised from Krishnan & Sitaraman, "Video Stream Quality Impacts Viewer Behavior: Inferring Causality
Using Quasi-Experimental Designs" (ACM IMC 2012):

* **Startup abandonment** starts after about 2 s of startup delay, and each further second increases the
  abandonment rate by about 5.8 percentage points. Modelled as a patience per view,
  ``patience_s = grace + U / 0.058`` with ``U ~ Uniform(0, 1)``, so ``P(abandon | delay d) = 0.058 (d - grace)``
  for ``grace <= d <= grace + 1/0.058``, 0 below, 1 above. The viewer leaves when the delay exceeds it.
* **Rebuffering**: a 1% increase in the rebuffering ratio reduces the viewing time by about 5% of the video
  length. Modelled as ``watch_fraction = clip(intended - 5 * rebuffer_ratio, 0, 1)`` with the rebuffering
  ratio ``rebuffer_s / (rebuffer_s + played_s)``.

Dobrian et al., "Understanding the Impact of Video Quality on User Engagement" (ACM SIGCOMM 2011) report
the same direction (the buffering ratio has the largest impact on play time; a 1% increase costs more than
3 minutes of a 90-minute live event) and motivate a per-view interest term: how much a viewer *intends* to
watch is drawn from a Beta distribution whose mean rises with their interest in the title,
``mean = 0.2 + 0.75 * interest``.

**Confounders** (:class:`Confounding`; their sizes are not published, their directions are): Krishnan &
Sitaraman find that viewers on faster connections are less patient, so the slow-connection viewers (the
household's connection class, :func:`connection_class`) wait ``slow_grace_shift_s`` longer before anyone leaves;
slow-connection viewers also differ in taste (they mean to watch ``slow_intent_shift`` more of a title); and
complex titles, which cost more bits and so rebuffer more, hold their viewers differently (the intended mean
moves by ``complexity_intent_gain`` per unit of log complexity). With them, the naive correlation of
abandonment with startup delay, or of watching with rebuffering, is not the effect; the quasi-experimental
estimator of :mod:`abr.sessions.estimation` compares views of the same title and connection class.

Churn risk (:func:`churn_risk`) is a score for ranking users, not a calibrated probability: a logistic
function of the user's recent, recency-weighted QoE and engagement (rebuffering ratio, startup abandons,
startup delay beyond 2 s, the share of what they meant to watch that they did not watch, and how often
they watched at all). Its weights are stated in :class:`ChurnWeights`; the report gives its ROC AUC against
the simulated churn (:mod:`abr.sessions.retention`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError

#: Krishnan & Sitaraman (IMC 2012): abandonment begins after ~2 s of startup delay ...
STARTUP_GRACE_S = 2.0
#: ... and rises by ~5.8 percentage points per further second.
ABANDON_PER_S = 0.058
#: Krishnan & Sitaraman (IMC 2012): +1% rebuffering ratio -> -5% of the video length watched.
WATCH_LOSS_PER_REBUFFER_RATIO = 5.0
#: The intended watch fraction's Beta mean is kept in this range whatever the confounders add.
INTENT_MEAN_RANGE = (0.05, 0.95)
#: Connection classes (by the mean throughput of the household's trace, in thirds): 0 slow, 1 medium, 2 fast.
CONNECTION_CLASSES = 3


@dataclass(frozen=True, slots=True)
class EngagementModel:
    """Parameters of the viewer model (defaults: the published figures in the module docstring).

    Args:
        startup_grace_s: startup delay below which nobody leaves, in seconds.
        abandon_per_s: abandonment probability added per second of delay beyond the grace.
        watch_loss_per_rebuffer_ratio: watched fraction of the title lost per unit of rebuffering ratio.
        interest_watch_base: intended watch fraction at interest 0 (its mean).
        interest_watch_gain: added to that mean at interest 1.
        watch_concentration: concentration ``a + b`` of the Beta distribution of the intended fraction.
    """

    startup_grace_s: float = STARTUP_GRACE_S
    abandon_per_s: float = ABANDON_PER_S
    watch_loss_per_rebuffer_ratio: float = WATCH_LOSS_PER_REBUFFER_RATIO
    interest_watch_base: float = 0.2
    interest_watch_gain: float = 0.75
    watch_concentration: float = 4.0

    def __post_init__(self) -> None:
        for name in ("startup_grace_s", "watch_loss_per_rebuffer_ratio", "interest_watch_base"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be >= 0")
        for name in ("abandon_per_s", "watch_concentration"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}={getattr(self, name)} must be > 0")
        if not 0 < self.interest_watch_base + self.interest_watch_gain < 1:
            raise ConfigError("interest_watch_base + interest_watch_gain must be in (0, 1)")

    def patience_s(self, u: float, grace_shift_s: float = 0.0) -> float:
        """Startup patience of a view from a uniform draw ``u`` in [0, 1) (``grace_shift_s``: a confounder's
        later start of abandonment, in seconds).

        >>> round(EngagementModel().patience_s(0.058), 6)  # 5.8% of viewers leave within 3 s
        3.0
        """
        return self.startup_grace_s + grace_shift_s + u / self.abandon_per_s

    def abandonment_probability(self, startup_delay_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """The target curve: ``P(abandon | startup delay)``."""
        d = np.asarray(startup_delay_s, dtype=np.float64)
        return np.clip(self.abandon_per_s * (d - self.startup_grace_s), 0.0, 1.0)

    def intended_fraction(self, interest: float, rng: np.random.Generator, shift: float = 0.0) -> float:
        """How much of the title the viewer means to watch with perfect playback (Beta, mean by interest,
        moved by ``shift`` (a confounder) within :data:`INTENT_MEAN_RANGE`)."""
        mean = self.interest_watch_base + self.interest_watch_gain * float(np.clip(interest, 0.0, 1.0)) + shift
        mean = float(np.clip(mean, *INTENT_MEAN_RANGE))
        return float(rng.beta(mean * self.watch_concentration, (1 - mean) * self.watch_concentration))

    def watch_fraction(self, intended: float, rebuffer_ratio: float) -> float:
        """The fraction watched after rebuffering cut it short.

        >>> EngagementModel().watch_fraction(0.8, 0.01)  # 1% rebuffering: 5% of the title less
        0.75
        """
        return float(min(max(intended - self.watch_loss_per_rebuffer_ratio * rebuffer_ratio, 0.0), 1.0))


@dataclass(frozen=True, slots=True)
class Confounding:
    """Who differs besides their network (see the module docstring; sizes unpublished, directions published).

    Args:
        slow_grace_shift_s: added to the startup grace of a slow-connection viewer (half for medium), seconds.
        slow_intent_shift: added to the intended watch fraction's mean of a slow-connection viewer (half for
            medium).
        complexity_intent_gain: added to that mean per unit of ``log(complexity)`` of the title.
        is_enabled: ``False``: nobody differs (the network and the title's complexity confound nothing).
    """

    slow_grace_shift_s: float = 1.5
    slow_intent_shift: float = 0.15
    complexity_intent_gain: float = 0.5
    is_enabled: bool = True

    def __post_init__(self) -> None:
        if not (np.isfinite(self.slow_grace_shift_s) and self.slow_grace_shift_s >= 0):
            raise ConfigError(f"slow_grace_shift_s={self.slow_grace_shift_s} must be >= 0")

    def grace_shift_s(self, connection: int) -> float:
        """Startup grace added for a viewer of connection class ``connection`` (0 slow .. 2 fast), seconds."""
        return self.slow_grace_shift_s * _slowness(connection) if self.is_enabled else 0.0

    def intent_shift(self, connection: int, complexity: float) -> float:
        """Added to the intended fraction's mean for that viewer watching a title of that complexity.

        >>> Confounding().intent_shift(2, 1.0), Confounding(is_enabled=False).intent_shift(0, 2.0)
        (0.0, 0.0)
        """
        if not self.is_enabled:
            return 0.0
        return self.slow_intent_shift * _slowness(connection) + self.complexity_intent_gain * math.log(complexity)

    @property
    def max_grace_shift_s(self) -> float:
        return self.slow_grace_shift_s if self.is_enabled else 0.0


def _slowness(connection: int) -> float:
    return (CONNECTION_CLASSES - 1 - connection) / (CONNECTION_CLASSES - 1)


def connection_class(mean_throughput_bps: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Each household's connection class from its link's mean throughput: thirds of the households
    (0 slow, 1 medium, 2 fast; ties go to the lower class).

    >>> connection_class([5e6, 1e6, 3e6, 2e6, 8e6, 4e6]).tolist()
    [2, 0, 1, 0, 2, 1]
    """
    x = np.asarray(mean_throughput_bps, dtype=np.float64)
    if x.size == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(x, [k / CONNECTION_CLASSES for k in range(1, CONNECTION_CLASSES)])
    return np.searchsorted(edges, x, side="left").astype(np.int64)


def rebuffer_ratio(rebuffer_s: float, played_s: float) -> float:
    """``rebuffer / (rebuffer + played)`` (0 when nothing was played or stalled).

    >>> rebuffer_ratio(1.0, 99.0)
    0.01
    """
    total = rebuffer_s + played_s
    return rebuffer_s / total if total > 0 else 0.0


# -- measuring the curves from simulated sessions ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CurvePoint:
    """One bin of a measured curve."""

    x_low: float
    x_high: float
    n: int
    measured: float
    target: float


def abandonment_curve(startup_delay_s: npt.ArrayLike, is_abandoned: npt.ArrayLike, model: EngagementModel,
                      edges_s: Sequence[float] = (0, 1, 2, 3, 4, 5, 6, 8, 10, 12, 15)) -> list[CurvePoint]:
    """Measured abandonment rate per startup-delay bin, next to the model's target (at the bin's mean delay)."""
    d = np.asarray(startup_delay_s, dtype=np.float64)
    a = np.asarray(is_abandoned, dtype=np.float64)
    points = []
    for lo, hi in zip(edges_s[:-1], edges_s[1:]):
        inside = (d >= lo) & (d < hi)
        if np.any(inside):
            target = float(np.mean(model.abandonment_probability(d[inside])))
            points.append(CurvePoint(float(lo), float(hi), int(inside.sum()), float(a[inside].mean()), target))
    return points


def abandonment_slope(startup_delay_s: npt.ArrayLike, is_abandoned: npt.ArrayLike, model: EngagementModel,
                      max_delay_s: float = 12.0) -> tuple[float, float]:
    """Least-squares slope of abandonment on startup delay beyond the grace (views with delays in
    ``[grace, max_delay_s]``), through the origin at the grace, in probability per second, and its standard
    error under the target curve (binomial noise: ``sqrt(sum x^2 p (1 - p)) / sum x^2``)."""
    d = np.asarray(startup_delay_s, dtype=np.float64)
    a = np.asarray(is_abandoned, dtype=np.float64)
    inside = (d >= model.startup_grace_s) & (d <= max_delay_s)
    x = d[inside] - model.startup_grace_s
    if not np.any(x > 0):
        return math.nan, math.nan
    p = model.abandonment_probability(d[inside])
    sxx = float(x @ x)
    return float(x @ a[inside] / sxx), float(np.sqrt(np.sum(x * x * p * (1 - p))) / sxx)


def watch_loss_slope(rebuffer_ratios: npt.ArrayLike, watch_fractions: npt.ArrayLike,
                     intended: npt.ArrayLike | None = None, max_ratio: float = 0.05) -> float:
    """Least-squares slope of the watched fraction lost on the rebuffering ratio, for started views with a
    ratio up to ``max_ratio``: the fraction of the title lost per unit of ratio (the target is 5).

    With ``intended`` (each view's watch fraction without stalls: its own counterfactual, as the matched
    designs of Krishnan & Sitaraman estimate it), the loss is ``intended - watched`` regressed through the
    origin. Without it, the observational slope of ``watched`` on the ratio (confounded by interest and far
    noisier; reported for comparison).
    """
    r = np.asarray(rebuffer_ratios, dtype=np.float64)
    w = np.asarray(watch_fractions, dtype=np.float64)
    inside = r <= max_ratio
    if np.count_nonzero(inside & (r > 0)) < 2:
        return math.nan
    if intended is None:
        return float(-np.polyfit(r[inside], w[inside], 1)[0])
    loss = np.asarray(intended, dtype=np.float64)[inside] - w[inside]
    x = r[inside]
    return float(x @ loss / (x @ x))


def watch_curve(rebuffer_ratios: npt.ArrayLike, watch_fractions: npt.ArrayLike, model: EngagementModel,
                edges: Sequence[float] = (0, 1e-9, 0.005, 0.01, 0.02, 0.03, 0.05, 0.1)) -> list[CurvePoint]:
    """Mean watched fraction per rebuffering-ratio bin, next to the published relation anchored at the views
    without rebuffering: ``target = mean watched (ratio 0) - 5 * mean ratio of the bin`` (Krishnan & Sitaraman).
    """
    r = np.asarray(rebuffer_ratios, dtype=np.float64)
    w = np.asarray(watch_fractions, dtype=np.float64)
    clean = r == 0
    baseline = float(w[clean].mean()) if np.any(clean) else math.nan
    points = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (r >= lo) & (r < hi)
        if np.any(inside):
            target = baseline - model.watch_loss_per_rebuffer_ratio * float(r[inside].mean())
            points.append(CurvePoint(float(lo), float(hi), int(inside.sum()), float(w[inside].mean()), target))
    return points


# -- churn risk -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChurnWeights:
    """Weights of the churn-risk logit (a stated heuristic, see the module docstring).

    Args:
        bias: the logit with perfect recent sessions.
        per_rebuffer_pct: per percentage point of recency-weighted rebuffering ratio.
        per_abandon_share: per unit share of recent views abandoned at startup.
        per_startup_s: per second of mean startup delay beyond the grace.
        per_unwatched_share: per unit share of the intended viewing that was not watched (QoE losses).
        per_idle_share: per unit share of recent days without a view.
        half_life_days: recency weighting of sessions.
    """

    bias: float = -3.0
    per_rebuffer_pct: float = 0.35
    per_abandon_share: float = 3.0
    per_startup_s: float = 0.25
    per_unwatched_share: float = 2.0
    per_idle_share: float = 1.0
    half_life_days: float = 3.0


def churn_risk(days: npt.ArrayLike, rebuffer_ratios: npt.ArrayLike, is_abandoned: npt.ArrayLike,
               startup_delay_s: npt.ArrayLike, watched: npt.ArrayLike, intended: npt.ArrayLike, *,
               today: int, n_days: int, weights: ChurnWeights | None = None,
               grace_s: float = STARTUP_GRACE_S) -> float:
    """Churn-risk score in (0, 1) of one user from their sessions up to ``today``.

    Args:
        days: day of each session.
        rebuffer_ratios: rebuffering ratio of each.
        is_abandoned: whether each was abandoned at startup.
        startup_delay_s: startup delay of each, in seconds.
        watched: fraction of the title watched.
        intended: fraction the viewer meant to watch.
        today: the day the score is for (later sessions are ignored).
        n_days: days observed (for the share of idle days).
        weights: the logit's weights.
        grace_s: startup delay that costs nothing, in seconds.

    >>> low = churn_risk([0], [0.0], [False], [0.5], [0.6], [0.6], today=0, n_days=1)
    >>> high = churn_risk([0], [0.05], [True], [9.0], [0.0], [0.6], today=0, n_days=1)
    >>> low < 0.1 < 0.9 < high
    True
    """
    w = weights or ChurnWeights()
    d = np.asarray(days, dtype=np.float64)
    keep = d <= today
    idle_share = 1.0 - len(set(d[keep].astype(int).tolist())) / max(n_days, 1)
    if not np.any(keep):
        return float(1.0 / (1.0 + math.exp(-(w.bias + w.per_idle_share * idle_share))))
    weight = 0.5 ** ((today - d[keep]) / w.half_life_days)
    weight /= weight.sum()
    rr = np.asarray(rebuffer_ratios, dtype=np.float64)[keep]
    ab = np.asarray(is_abandoned, dtype=np.float64)[keep]
    st = np.maximum(np.asarray(startup_delay_s, dtype=np.float64)[keep] - grace_s, 0.0)
    want = np.asarray(intended, dtype=np.float64)[keep]
    got = np.asarray(watched, dtype=np.float64)[keep]
    unwatched = float(weight @ np.where(want > 0, np.clip(1 - got / np.maximum(want, 1e-9), 0, 1), 0.0))
    logit = (w.bias + w.per_rebuffer_pct * 100 * float(weight @ rr) + w.per_abandon_share * float(weight @ ab)
             + w.per_startup_s * float(weight @ st) + w.per_unwatched_share * unwatched
             + w.per_idle_share * idle_share)
    return float(1.0 / (1.0 + math.exp(-logit)))
