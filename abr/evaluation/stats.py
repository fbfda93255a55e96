"""Summary statistics of per-session results, and the project's one bootstrap.

Confidence intervals use the **percentile bootstrap**: draw ``n_resamples`` (1000) resamples of the
sessions with replacement, take the mean of each, and report the 2.5th and 97.5th percentiles of those
means as the 95% interval. Resampling is *paired*: within one group (agent x trace set) the same resampled
index sets serve every metric. The generator of each group is seeded by the evaluation seed alone, so a
group's interval does not change when other agents or trace sets are added to the run.
``p5``/``p95``/``median`` are percentiles of the session values themselves (linear interpolation).

Every bootstrap of the project goes through this module: :func:`bootstrap_means` draws the resamples (in
blocks of bounded memory) and :func:`percentile_interval` reads the interval off them; :func:`bootstrap_ci`
does both. The comparisons (:mod:`abr.evaluation.compare`), the generalisation table and the sessions' A/B
comparison (:mod:`abr.sessions.outputs`) use them with the same settings.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
#: Resample indices drawn at once by :func:`bootstrap_means`: an int64 ``[resamples, n]`` block of at most
#: this size. Blocks draw the same numbers as one draw of every resample (numpy's bounded integers continue
#: one stream), so the block size changes memory, never a result.
BOOTSTRAP_BLOCK_BYTES = 32 * 1024**2
_INDEX_BYTES = 8
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


def bootstrap_means(values: npt.ArrayLike, rng: np.random.Generator,
                    n_resamples: int = BOOTSTRAP_RESAMPLES) -> npt.NDArray[np.float64]:
    """Means of ``n_resamples`` resamples with replacement of the last axis of ``values``.

    ``values`` is one sample ``[n]`` or several paired samples ``[k, n]``: the rows are resampled together
    (the same indices serve every row), so the result is ``[n_resamples]`` or ``[k, n_resamples]``. The
    indices are drawn in blocks of at most :data:`BOOTSTRAP_BLOCK_BYTES`, which give the same numbers as
    ``bootstrap_indices(n, rng, n_resamples)`` drawn at once.

    >>> values = np.array([1.0, 2.0, 4.0])
    >>> means = bootstrap_means(values, bootstrap_generator(3))
    >>> expected = values[bootstrap_indices(3, bootstrap_generator(3))].mean(axis=1)
    >>> means.shape, bool((means == expected).all())
    ((1000,), True)
    """
    data = np.asarray(values, dtype=np.float64)
    n = data.shape[-1]
    if n < 1:
        raise ValueError(f"n={n}: cannot resample an empty group")
    rows_per_block = max(1, BOOTSTRAP_BLOCK_BYTES // (_INDEX_BYTES * n))
    rows = data.reshape(-1, n)
    means = np.empty((rows.shape[0], n_resamples))
    for start in range(0, n_resamples, rows_per_block):
        stop = min(start + rows_per_block, n_resamples)
        indices = bootstrap_indices(n, rng, stop - start)
        for row, sample in zip(means, rows, strict=True):
            # One [resamples, n] gather a row: numpy sums it as it sums any 2-D mean (pairwise along the
            # row), where a 3-D gather may add in another order and change the last bits.
            row[start:stop] = sample[indices].mean(axis=1)
    return means.reshape(*data.shape[:-1], n_resamples)


def percentile_interval(statistics: npt.ArrayLike, level: float = CI_LEVEL) -> tuple[float, float]:
    """The central ``level`` interval of bootstrap ``statistics`` (their percentiles, linear interpolation).

    >>> [round(x, 9) for x in percentile_interval(np.arange(101.0))]
    [2.5, 97.5]
    """
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(np.asarray(statistics, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ci(values: npt.ArrayLike, rng: np.random.Generator, n_resamples: int = BOOTSTRAP_RESAMPLES,
                 level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values``: :func:`bootstrap_means`, then
    :func:`percentile_interval`.

    >>> low, high = bootstrap_ci([1.0, 2.0, 3.0, 4.0], bootstrap_generator(0))
    >>> bool(low <= 2.5 <= high)
    True
    """
    return percentile_interval(bootstrap_means(values, rng, n_resamples), level)


def percentile_ci(values: npt.ArrayLike, indices: npt.NDArray[np.int64],
                  level: float = CI_LEVEL) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values`` from given resample ``indices``
    (``[n_resamples, n]``, as :func:`bootstrap_indices` draws them).

    >>> rng = np.random.default_rng(0)
    >>> low, high = percentile_ci([1.0, 2.0, 3.0, 4.0], bootstrap_indices(4, rng))
    >>> bool(low <= 2.5 <= high)
    True
    """
    return percentile_interval(np.asarray(values, dtype=np.float64)[indices].mean(axis=1), level)


def describe(agent: str, trace_set: str, metric: str, values: npt.ArrayLike,
             indices: npt.NDArray[np.int64]) -> SummaryRow:
    """Mean, median, 5th/95th percentiles and bootstrap CI (from resample ``indices``) of one metric of one group."""
    return _summary_row(agent, trace_set, metric, values, percentile_ci(values, indices))


def _summary_row(agent: str, trace_set: str, metric: str, values: npt.ArrayLike,
                 interval: tuple[float, float]) -> SummaryRow:
    data = np.asarray(values, dtype=np.float64)
    median, p5, p95 = np.percentile(data, [50.0, 5.0, 95.0])
    return SummaryRow(agent, trace_set, metric, int(data.size), float(data.mean()), float(median), float(p5),
                      float(p95), *interval)


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
            values = np.array([[float(r[m]) for r in group] for m in metrics],  # type: ignore[arg-type]
                              dtype=np.float64).reshape(len(metrics), len(group))
            means = bootstrap_means(values, bootstrap_generator(seed))  # one resampling serves every metric
            for metric, sample, resampled in zip(metrics, values, means, strict=True):
                out.append(_summary_row(agent, set_name, metric, sample, percentile_interval(resampled)))
    return out
