"""The one bootstrap (:mod:`abr.evaluation.stats`): paired rows, the interval it reads, and its users."""

from __future__ import annotations

import numpy as np
import pytest

from abr.evaluation.stats import bootstrap_ci, bootstrap_generator, bootstrap_means, percentile_interval


def test_paired_rows_are_resampled_with_the_same_indices() -> None:
    sample = np.random.default_rng(0).normal(size=50)
    shifted, doubled = bootstrap_means(np.stack([sample, sample + 5.0, 2.0 * sample]), bootstrap_generator(1))[1:]
    plain = bootstrap_means(sample, bootstrap_generator(1))
    np.testing.assert_allclose(shifted, plain + 5.0, rtol=0, atol=1e-12)  # a shift moves every resample's mean
    np.testing.assert_allclose(doubled, 2.0 * plain, rtol=1e-15)


def test_the_interval_is_the_central_share_of_the_statistics() -> None:
    # 0..1000: the 2.5th and 97.5th percentiles (linear interpolation) are 25 and 975.
    assert percentile_interval(np.arange(1001.0)) == pytest.approx((25.0, 975.0))
    assert percentile_interval(np.arange(1001.0), level=0.5) == pytest.approx((250.0, 750.0))


def test_a_sample_of_one_value_has_no_width() -> None:
    assert bootstrap_ci([3.0], bootstrap_generator(0)) == (3.0, 3.0)
    with pytest.raises(ValueError, match="empty group"):
        bootstrap_ci([], bootstrap_generator(0))
