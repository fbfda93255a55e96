"""Summary statistics: percentiles, the seeded percentile bootstrap and the group layout."""

from __future__ import annotations

import numpy as np
import pytest

from abr.evaluation.stats import (
    BOOTSTRAP_RESAMPLES,
    bootstrap_generator,
    bootstrap_indices,
    describe,
    percentile_ci,
    summarize,
)


def test_constant_values_have_a_zero_width_interval():
    indices = bootstrap_indices(4, bootstrap_generator(0))
    assert percentile_ci([2.5] * 4, indices) == (2.5, 2.5)


def test_interval_is_the_percentiles_of_resampled_means():
    values = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    indices = bootstrap_indices(values.size, bootstrap_generator(7))
    assert indices.shape == (BOOTSTRAP_RESAMPLES, values.size)
    means = values[indices].mean(axis=1)
    assert percentile_ci(values, indices) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))


def test_interval_narrows_with_more_sessions():
    rng = np.random.default_rng(1)
    few, many = rng.normal(0.0, 1.0, 10), rng.normal(0.0, 1.0, 400)
    width = {}
    for name, values in (("few", few), ("many", many)):
        low, high = percentile_ci(values, bootstrap_indices(values.size, bootstrap_generator(0)))
        width[name] = high - low
    assert width["many"] < width["few"] / 3


def test_describe_reports_percentiles_of_the_values():
    values = np.arange(101, dtype=float)
    row = describe("a", "s", "qoe", values, bootstrap_indices(values.size, bootstrap_generator(0)))
    assert (row.n, row.mean, row.median, row.p5, row.p95) == (101, 50.0, 50.0, 5.0, 95.0)
    assert row.ci_low < 50.0 < row.ci_high


def test_summarize_groups_by_agent_and_set_then_pools_all_sets():
    rows = [{"agent": a, "trace_set": s, "qoe": q}
            for a in ("x", "y") for s, q in (("s1", 1.0), ("s1", 3.0), ("s2", 8.0))]
    summary = summarize(rows, ["qoe"], seed=0)
    assert [(r.agent, r.trace_set, r.n, r.mean) for r in summary] == [
        ("x", "s1", 2, 2.0), ("x", "s2", 1, 8.0), ("x", "all", 3, 4.0),
        ("y", "s1", 2, 2.0), ("y", "s2", 1, 8.0), ("y", "all", 3, 4.0),
    ]


def test_summary_intervals_are_reproducible_for_a_seed_and_change_with_it():
    values = np.random.default_rng(3).normal(10.0, 5.0, 30)
    rows = [{"agent": "x", "trace_set": "s", "qoe": float(v)} for v in values]
    summary = summarize(rows, ["qoe"], seed=0)
    assert summarize(rows, ["qoe"], seed=0) == summary
    assert [(r.ci_low, r.ci_high) for r in summarize(rows, ["qoe"], seed=1)] != [
        (r.ci_low, r.ci_high) for r in summary]


def test_an_empty_group_cannot_be_resampled():
    with pytest.raises(ValueError, match="empty group"):
        bootstrap_indices(0, bootstrap_generator(0))
