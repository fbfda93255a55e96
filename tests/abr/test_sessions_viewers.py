"""Populations beyond the rating data: viewers drawn from the fitted taste model, with histories of their own,
the same for the same seed, in memory that grows with the viewers (never viewers x titles)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from abr.sessions import population
from abr.sessions.population import build_population, synthetic_rating_data
from abr.sessions.recommender import ALSConfig, ImplicitALS

ALS = ALSConfig(factors=8, iterations=4)
FAMILIES = {"a": 3, "b": 2}


def _population(n_users: int, seed: int, n_titles: int = 300):
    data = synthetic_rating_data(np.random.default_rng(seed), n_titles)
    return data, build_population(data, n_users, FAMILIES, np.random.default_rng(seed + 100), als=ALS,
                                  viewers="drawn")


def test_viewers_beyond_the_rating_data_are_drawn_with_histories_of_their_own() -> None:
    data, pop = _population(1200, seed=1)
    n_sources = data.history.n_users  # 200 synthetic source users
    assert sorted(pop.source_user[:n_sources].tolist()) == list(range(n_sources))  # each source user once
    assert np.all(pop.source_user[n_sources:] == -1)
    source_rows = {tuple(data.history.row(u)[0].tolist()) for u in range(n_sources)}
    drawn_rows = [tuple(pop.initial.row(u)[0].tolist()) for u in range(n_sources, pop.n_users)]
    assert all(len(r) > 0 for r in drawn_rows)
    assert not source_rows & set(drawn_rows)  # no drawn viewer holds a source user's history
    assert len(set(drawn_rows)) == len(drawn_rows)  # nor another drawn viewer's
    lengths = np.diff(pop.initial.indptr)[n_sources:]
    source_lengths = np.diff(data.history.indptr)
    assert lengths.min() >= source_lengths.min() and lengths.max() <= source_lengths.max()


def test_drawn_tastes_follow_the_fitted_model_and_histories_follow_taste() -> None:
    data, pop = _population(2200, seed=2)
    truth = ImplicitALS(ALS).fit(data.history, np.random.default_rng(102))  # what build_population fitted
    drawn = pop.interest.taste[data.history.n_users:]
    fitted = truth.user_factors
    spread = float(np.sqrt(np.trace(np.cov(fitted, rowvar=False))))
    assert np.linalg.norm(drawn.mean(axis=0) - fitted.mean(axis=0)) < 0.1 * spread
    assert np.trace(np.cov(drawn, rowvar=False)) == pytest.approx(spread**2, rel=0.1)
    # A drawn viewer's history leans towards the titles their taste favours (their true interest).
    lifts = []
    for u in range(data.history.n_users, data.history.n_users + 200):
        interest = pop.interest.rows(u, u + 1)[0]
        lifts.append(interest[pop.initial.row(u)[0]].mean() - interest.mean())
    assert np.mean(lifts) > 0.05


def test_the_same_seed_gives_the_same_population() -> None:
    _, a = _population(900, seed=3)
    _, b = _population(900, seed=3)
    _, c = _population(900, seed=4)
    assert np.array_equal(a.interest.taste, b.interest.taste)
    assert np.array_equal(a.initial.indices, b.initial.indices) and np.array_equal(a.initial.weights,
                                                                                   b.initial.weights)
    assert np.array_equal(a.interest.rows(850, 900), b.interest.rows(850, 900))
    assert not np.array_equal(a.interest.taste, c.interest.taste)


def test_memory_grows_with_viewers_not_viewers_times_titles(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(population, "INTEREST_BLOCK_BYTES", 1024**2)  # blocks of 43 users: both sizes use many
    n_titles = 3000
    peaks, held = [], []
    for n_users in (1000, 4000):
        data = synthetic_rating_data(np.random.default_rng(5), n_titles)
        tracemalloc.start()
        pop = build_population(data, n_users, FAMILIES, np.random.default_rng(6), als=ALS, viewers="drawn")
        peaks.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()
        held.append(pop.interest.nbytes + pop.initial.indices.nbytes + pop.initial.weights.nbytes)
    dense_growth = 3000 * n_titles * 8  # a dense float64 users x titles matrix would grow by 72 MB
    assert peaks[1] - peaks[0] < 0.25 * dense_growth
    assert held[1] < 0.1 * 4000 * n_titles * 8


def test_simulate_with_drawn_viewers_records_them(tmp_path, data_dir) -> None:
    import json

    from typer.testing import CliRunner

    from abr.cli import app

    runner = CliRunner()
    base = ["sessions", "simulate", "--users", "230", "--days", "1", "--horizon-min", "1", "--catalog", "synthetic",
            "--network", "norway/test", "--no-plots", "--engine", "serial", "--data-dir", str(data_dir)]
    result = runner.invoke(app, [*base, "--out", str(tmp_path / "run"), "--viewers", "drawn"])
    assert result.exit_code == 0, result.output
    config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert config["viewers"] == "drawn" and "--viewers drawn" in config["command"]
    refused = runner.invoke(app, [*base, "--out", str(tmp_path / "bad"), "--viewers", "cloned"])
    assert refused.exit_code == 2 and "viewers='cloned' is not one of clones, drawn" in refused.output
