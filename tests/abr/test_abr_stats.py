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


def test_interval_from_hand_made_resamples():
    # Resample means 0, 0.5, 1, 0.5, 1; sorted [0, .5, .5, 1, 1]. Linear interpolation: the 2.5th percentile
    # sits at rank 0.025 * 4 = 0.1 (0 + 0.1 * 0.5 = 0.05), the 97.5th at rank 3.9 (between 1 and 1).
    indices = np.array([[0, 0], [0, 1], [1, 1], [1, 0], [1, 1]])
    assert percentile_ci([0.0, 1.0], indices) == pytest.approx((0.05, 1.0), abs=1e-12)
    assert bootstrap_indices(5, bootstrap_generator(7)).shape == (BOOTSTRAP_RESAMPLES, 5)


def test_intervals_cover_the_true_mean_95_percent_of_the_time_with_the_normal_width():
    # A known distribution: samples of n = 40 from N(3, 2). The percentile bootstrap's resampled means have
    # variance sigma_hat^2 / n (sigma_hat the plug-in standard deviation), so its 95% interval is close to
    # mean +- 1.96 sigma_hat / sqrt(n), and it should cover the true mean in about 95% of the samples (a little
    # less at this n). 400 samples: the count of covering intervals has a standard deviation of about 4.5.
    n, n_samples, true_mean = 40, 400, 3.0
    rng = np.random.default_rng(2024)
    covered, width_ratios = 0, []
    for k in range(n_samples):
        values = rng.normal(true_mean, 2.0, n)
        rows = [{"agent": "x", "trace_set": "s", "qoe": float(v)} for v in values]
        row = summarize(rows, ["qoe"], seed=k)[0]
        covered += row.ci_low <= true_mean <= row.ci_high
        width_ratios.append((row.ci_high - row.ci_low) / (2 * 1.959964 * values.std() / np.sqrt(n)))
    assert 0.92 * n_samples <= covered <= 0.975 * n_samples  # a 90% interval covers ~0.89, a 99% one ~0.99
    assert np.mean(width_ratios) == pytest.approx(1.0, abs=0.03)  # a 90% interval is 0.84 of this width


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
