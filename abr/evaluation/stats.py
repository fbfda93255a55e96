"""Summary statistics of per-session results, with seeded bootstrap confidence intervals.

Confidence intervals use the **percentile bootstrap**: draw ``n_resamples`` (1000) resamples of the
sessions with replacement, take the mean of each, and report the 2.5th and 97.5th percentiles of those
means as the 95% interval. Resampling is *paired*: within one group (agent x trace set) the same resampled
index sets serve every metric. The generator of each group is seeded by the evaluation seed alone, so a
group's interval does not change when other agents or trace sets are added to the run.
``p5``/``p95``/``median`` are percentiles of the session values themselves (linear interpolation).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
#: Key that separates the bootstrap's random stream from the per-session streams of an evaluation.
_BOOTSTRAP_SPAWN_KEY = (0xB007,)

SUMMARY_COLUMNS: tuple[str, ...] = (
    "agent", "trace_set", "metric", "n", "mean", "median", "p5", "p95", "ci_low", "ci_high",
)


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """Statistics of one metric over the sessions of one group (an agent on a trace set, or on ``"all"``)."""

    agent: str
    trace_set: str
    metric: str
    n: int
    mean: float
    median: float
    p5: float
    p95: float
    ci_low: float
    ci_high: float

    def as_tuple(self) -> tuple[str | int | float, ...]:
        return (self.agent, self.trace_set, self.metric, self.n, self.mean, self.median, self.p5, self.p95,
                self.ci_low, self.ci_high)


def bootstrap_generator(seed: int) -> np.random.Generator:
    """The generator of a group's bootstrap, derived from the evaluation seed.

    >>> bool(bootstrap_generator(0).integers(100) == bootstrap_generator(0).integers(100))
    True
    """
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=_BOOTSTRAP_SPAWN_KEY))


def bootstrap_indices(n: int, rng: np.random.Generator,
                      n_resamples: int = BOOTSTRAP_RESAMPLES) -> npt.NDArray[np.int64]:
    """``[n_resamples, n]`` indices of resamples with replacement of ``n`` items."""
    if n < 1:
        raise ValueError(f"n={n}: cannot resample an empty group")
    return rng.integers(0, n, size=(n_resamples, n))


def percentile_ci(values: npt.ArrayLike, indices: npt.NDArray[np.int64],
                  level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` from resample ``indices``.

    >>> rng = np.random.default_rng(0)
    >>> low, high = percentile_ci([1.0, 2.0, 3.0, 4.0], bootstrap_indices(4, rng))
    >>> bool(low <= 2.5 <= high)
    True
    """
    data = np.asarray(values, dtype=np.float64)
    means = data[indices].mean(axis=1)
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(means, [tail, 100.0 - tail])
    return float(low), float(high)


def describe(agent: str, trace_set: str, metric: str, values: npt.ArrayLike,
             indices: npt.NDArray[np.int64]) -> SummaryRow:
    """Mean, median, 5th/95th percentiles and bootstrap CI of one metric of one group."""
    data = np.asarray(values, dtype=np.float64)
    median, p5, p95 = np.percentile(data, [50.0, 5.0, 95.0])
    low, high = percentile_ci(data, indices)
    return SummaryRow(agent, trace_set, metric, int(data.size), float(data.mean()), float(median), float(p5),
                      float(p95), low, high)


def summarize(rows: Sequence[Mapping[str, object]], metrics: Sequence[str], *, seed: int,
              all_sets_label: str = "all") -> list[SummaryRow]:
    """Summary rows per (agent, trace set) and per agent over every set (``trace_set == all_sets_label``).

    Args:
        rows: one mapping per session with keys ``agent``, ``trace_set`` and every name in ``metrics``.
        metrics: the numeric columns to summarise.
        seed: the evaluation seed; seeds every group's bootstrap (see the module docstring).
        all_sets_label: the ``trace_set`` value of the rows over all sets.

    Returns:
        Rows ordered by agent (first appearance), then trace set (first appearance, ``all`` last), then
        metric (in ``metrics`` order).

    >>> rows = [{"agent": "a", "trace_set": "s", "qoe": q} for q in (1.0, 2.0, 3.0)]
    >>> [(r.trace_set, r.n, r.mean) for r in summarize(rows, ["qoe"], seed=0)]
    [('s', 3, 2.0), ('all', 3, 2.0)]
    """
    agents = list(dict.fromkeys(str(r["agent"]) for r in rows))
    sets = list(dict.fromkeys(str(r["trace_set"]) for r in rows))
    out: list[SummaryRow] = []
    for agent in agents:
        mine = [r for r in rows if r["agent"] == agent]
        groups = [(s, [r for r in mine if r["trace_set"] == s]) for s in sets]
        groups = [(s, g) for s, g in groups if g] + [(all_sets_label, mine)]
        for set_name, group in groups:
            indices = bootstrap_indices(len(group), bootstrap_generator(seed))
            for metric in metrics:
                values = [float(r[metric]) for r in group]  # type: ignore[arg-type]
                out.append(describe(agent, set_name, metric, values, indices))
    return out
