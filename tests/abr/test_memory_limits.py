"""Sizes that cannot fit in memory are refused up front, naming the estimate and the option to change.

``ABR_MEMORY_LIMIT_BYTES`` fixes the available memory, so the refusals do not depend on the machine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from abr.cli import app
from abr.common import inputs
from abr.common.memory import GIB, MEMORY_LIMIT_ENV, available_memory_bytes, check_fits, format_gib
from abr.errors import ConfigError
from abr.evaluation import stats
from abr.sessions import SessionsConfig, run_population
from abr.sessions import api as sessions_api
from abr.sessions import population as population_module
from abr.sessions.api import check_run_fits, estimate_run_bytes
from abr.sessions.population import (
    INTEREST_NOISE_SD,
    INTEREST_SCALE,
    TrueInterest,
    build_population,
    synthetic_rating_data,
)

runner = CliRunner()
MOVIELENS_TITLES, MOVIELENS_RATINGS_PER_USER = 3650, 148.0  # ml-latest-small, titles with >= 5 ratings


# --- the helper ----------------------------------------------------------------------------------------------


def test_the_override_sets_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, "123456789")
    assert available_memory_bytes() == 123456789
    monkeypatch.delenv(MEMORY_LIMIT_ENV)
    assert 0 < available_memory_bytes() != 123456789


@pytest.mark.parametrize("value", ["lots", "-5", "0", "1.5e9"])
def test_a_bad_override_is_refused_by_name(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, value)
    with pytest.raises(ConfigError, match=f"{MEMORY_LIMIT_ENV}='{value}' must be a whole number of bytes > 0"):
        available_memory_bytes()


def test_check_fits_names_the_estimate_the_memory_and_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(2 * GIB))
    check_fits("--users 10", 2 * GIB, "use fewer --users")  # exactly what is available fits
    with pytest.raises(ConfigError) as info:
        check_fits("--users 10", 2 * GIB + 1, "use fewer --users")
    assert str(info.value) == ("--users 10 needs an estimated 2.0 GiB of memory, more than the 2.0 GiB available; "
                               "use fewer --users")
    with pytest.raises(ConfigError, match=r"needs an estimated 27\.2 GiB of memory, more than the 2\.0 GiB"):
        check_fits("a matrix", int(27.2 * GIB), "use fewer --users")


# --- abr sessions simulate -------------------------------------------------------------------------------------


def test_a_population_far_too_large_is_refused_before_any_work(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(24 * GIB))
    out = tmp_path / "run"
    result = runner.invoke(app, ["sessions", "simulate", "--out", str(out), "--users", "100000000",
                                 "--catalog", "synthetic", "--no-plots", "--workers", "2"])
    assert result.exit_code == 2, result.output
    # the lower bound checked first; the second worker process adds WORKER_BYTES (0.25 GiB)
    estimate = estimate_run_bytes(SessionsConfig(users=100_000_000, workers=2))
    assert format_gib(estimate) == "3,052.5 GiB"
    message = result.output.strip()
    assert message.startswith("error: a population of 100,000,000 users x 7 days x 1 policy needs an estimated "
                              "3,052.5 GiB of memory, more than the 24.0 GiB available; use fewer --users "
                              "(at most about ")
    assert len(message.splitlines()) == 1 and "Traceback" not in result.output
    assert not (out / "sessions.csv").exists()


def test_the_catalog_and_ratings_enter_the_estimate_once_loaded(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    config = SessionsConfig(users=2000, days=1, horizon_s=60.0)
    data = synthetic_rating_data(np.random.default_rng(0))
    ratings_per_user = data.history.indices.size / data.history.n_users
    lower = estimate_run_bytes(config)
    full = estimate_run_bytes(config, n_titles=len(data.catalog), ratings_per_user=ratings_per_user)
    assert lower < full
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str((lower + full) // 2))  # passes the first check, not the second

    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the population was built before the memory check")

    monkeypatch.setattr(sessions_api, "build_population", must_not_run)
    monkeypatch.delenv("ABR_DATA_DIR", raising=False)
    with pytest.raises(ConfigError) as info:
        run_population(config, tmp_path / "run", catalog="synthetic", plots=False)
    assert f"2,000 users x 1 days x 1 policy, {len(data.catalog)} titles needs an estimated {format_gib(full)}" \
        in str(info.value)
    assert "use fewer --users" in str(info.value)


def test_100k_viewers_for_a_day_fit_the_estimate_on_24_gib(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(24 * GIB))
    check_run_fits(SessionsConfig(users=100_000, days=1), n_titles=MOVIELENS_TITLES,
                   ratings_per_user=MOVIELENS_RATINGS_PER_USER)
    with pytest.raises(ConfigError, match=r"use fewer --users \(at most about [\d,]+ fit"):
        check_run_fits(SessionsConfig(users=2_000_000, days=1), n_titles=MOVIELENS_TITLES,
                       ratings_per_user=MOVIELENS_RATINGS_PER_USER)


def test_the_estimate_grows_with_users_and_views_but_not_users_times_titles() -> None:
    def estimate(users: int, days: int = 1, titles: int = MOVIELENS_TITLES) -> int:
        return estimate_run_bytes(SessionsConfig(users=users, days=days), n_titles=titles)

    per_user = estimate(200_000) - estimate(100_000)
    assert per_user == estimate(300_000) - estimate(200_000)  # linear in users
    assert estimate(100_000, days=7) > estimate(100_000, days=1)  # views
    # Ten times the titles adds one bigger block of interest rows, not 100,000 more rows of titles.
    assert estimate(100_000, titles=36_500) - estimate(100_000) < 100_000 * 3650 * 4


# --- the interest matrix is computed, not stored ----------------------------------------------------------


def _dense_interest(taste: np.ndarray, items: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The whole ``[users, titles]`` matrix as population.py built it before it was computed on demand."""
    affinity = taste @ items.T
    z = (affinity - affinity.mean()) / (affinity.std() or 1.0)
    noise = rng.normal(0.0, INTEREST_NOISE_SD, z.shape)
    return (1.0 / (1.0 + np.exp(-(INTEREST_SCALE * z + noise)))).astype(np.float32)


@pytest.mark.parametrize("block_bytes", [population_module.INTEREST_BLOCK_BYTES, 8 * 300 * 7])
def test_interest_rows_are_the_values_of_the_whole_matrix(monkeypatch: pytest.MonkeyPatch, block_bytes: int) -> None:
    monkeypatch.setattr(population_module, "INTEREST_BLOCK_BYTES", block_bytes)
    taste = np.random.default_rng(1).normal(size=(50, 8))
    items = np.random.default_rng(2).normal(size=(300, 8))
    before, lazy = np.random.default_rng(9), np.random.default_rng(9)
    dense = _dense_interest(taste, items, before)
    interest = TrueInterest.draw(taste, items, lazy)
    assert before.random() == lazy.random()  # the generator is left where the whole draw left it
    rows = np.concatenate([interest.rows(start, stop) for start, stop in interest.blocks()])
    assert len(list(interest.blocks())) == (1 if block_bytes > 50 * 300 * 8 else 8)
    if len(list(interest.blocks())) == 1:
        np.testing.assert_array_equal(rows, dense)  # one block: the very same computation
    else:  # several blocks: the mean and deviation are summed by block, so the last bits may differ
        np.testing.assert_allclose(rows, dense, rtol=1e-6)
    np.testing.assert_array_equal(interest.rows(17, 23), rows[17:23])  # any rows, drawn again
    assert interest.nbytes == taste.nbytes + items.nbytes + 16 * 50  # no [users, titles] array is kept


def test_a_population_keeps_memory_linear_in_users() -> None:
    data = synthetic_rating_data(np.random.default_rng(0))
    population = build_population(data, 3000, {"net": 4}, np.random.default_rng(1))
    factors = population.interest.taste.shape[1]
    assert population.interest.taste.shape == (3000, factors)
    assert population.interest.nbytes < 3000 * (factors + 3) * 8 + population.interest.item_factors.nbytes
    assert population.interest.rows(2990, 3000).shape == (10, len(data.catalog))


class _RecordingGenerator:
    """A generator that records the shape of every ``integers`` draw."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.sizes: list[tuple[int, int]] = []

    def integers(self, low: int, high: int, size: tuple[int, int]) -> np.ndarray:
        self.sizes.append(size)
        return self.rng.integers(low, high, size=size)


def test_bootstrap_blocks_stay_bounded_and_give_the_whole_draw(monkeypatch: pytest.MonkeyPatch) -> None:
    values = np.random.default_rng(3).normal(size=1000)
    whole = values[np.random.default_rng(5).integers(0, values.size, (stats.BOOTSTRAP_RESAMPLES, values.size))]
    np.testing.assert_array_equal(stats.bootstrap_means(values, np.random.default_rng(5)), whole.mean(axis=1))
    monkeypatch.setattr(stats, "BOOTSTRAP_BLOCK_BYTES", 8 * 1000 * 300)  # 300 resamples of 1,000 values a block
    rng = _RecordingGenerator(5)
    blocks = stats.bootstrap_means(values, rng)  # type: ignore[arg-type]
    assert rng.sizes == [(300, 1000)] * 3 + [(100, 1000)]
    np.testing.assert_array_equal(blocks, whole.mean(axis=1))  # the block size changes memory, not the result
    monkeypatch.undo()
    many = np.random.default_rng(4).normal(size=40_000)  # 1,000 x 40,000 indices would be 320 MB at once
    rng = _RecordingGenerator(6)
    means = stats.bootstrap_means(many, rng)  # type: ignore[arg-type]
    assert all(8 * rows * n <= stats.BOOTSTRAP_BLOCK_BYTES for rows, n in rng.sizes)
    assert means.shape == (stats.BOOTSTRAP_RESAMPLES,) and abs(float(means.mean()) - float(many.mean())) < 0.01


# --- abr evaluate --synthetic --------------------------------------------------------------------------------


def test_a_synthetic_set_too_large_is_refused_before_generating(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(16 * GIB))
    out = tmp_path / "eval"
    result = runner.invoke(app, ["evaluate", "--agent", "bba", "--synthetic", "1000000000", "--out", str(out)])
    assert result.exit_code == 2, result.output
    estimate = format_gib(inputs.synthetic_set_bytes(1_000_000_000))
    message = result.output.strip()
    assert message.startswith(f"error: --synthetic 1,000,000,000 (321 samples a trace, each played at least once) "
                              f"needs an estimated {estimate} of memory, more than the 16.0 GiB available; use fewer "
                              "--synthetic traces (at most about ")
    assert len(message.splitlines()) == 1 and not (out / "sessions.csv").exists()


def test_synthetic_refusal_follows_the_available_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("traces were generated before the memory check")

    per_trace = inputs.synthetic_set_bytes(1)
    monkeypatch.setenv(MEMORY_LIMIT_ENV, str(100 * per_trace))
    assert len(inputs.synthetic_trace_set(100, 0).traces) == 100  # exactly what is available fits
    monkeypatch.setattr(inputs, "generate_trace_set", must_not_run)
    with pytest.raises(ConfigError, match=r"--synthetic 101 .*\(at most about 100 fit\)"):
        inputs.synthetic_trace_set(101, 0)
    with pytest.raises(ConfigError, match=r"n_traces=0 must be an integer >= 1"):  # the count is checked first
        inputs.synthetic_trace_set(0, 0)
