"""The recommender: implicit ALS against popularity on MovieLens, and the ranking metrics' arithmetic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abr.errors import ConfigError
from abr.sessions import offline_evaluation
from abr.sessions.recommender import (
    ALSConfig,
    ImplicitALS,
    Interactions,
    Popularity,
    evaluate_ranking,
    time_holdout,
    top_k,
)


def test_als_beats_popularity_on_the_movielens_time_holdout(data_dir: Path) -> None:
    metrics = offline_evaluation(data_dir, seed=0)
    als, pop = metrics["als"], metrics["popularity"]
    assert als.n_users == pop.n_users == 610  # every ml-latest-small user has >= 20 ratings
    # A clear margin on every metric, not a tie (measured: +32%, +61%, +26%).
    assert als.precision > 1.1 * pop.precision
    assert als.recall > 1.1 * pop.recall
    assert als.ndcg > 1.1 * pop.ndcg
    assert 0.02 < pop.precision < als.precision < 0.5


def test_ranking_metrics_on_a_hand_computed_case() -> None:
    train = Interactions.from_triples([0, 1], [0, 0], [1.0, 1.0], n_users=2, n_items=5)
    test = Interactions.from_triples([0, 0, 1], [1, 4, 3], [1.0, 1.0, 1.0], n_users=2, n_items=5)
    scores = np.array([[9.0, 5.0, 4.0, 3.0, 1.0], [9.0, 5.0, 4.0, 3.0, 1.0]])
    m = evaluate_ranking(scores, train, test, np.array([0, 1]), k=2)
    # Item 0 is seen by both, so both lists are [1, 2]: user 0 hits item 1 at rank 1; user 1 hits nothing.
    assert m.precision == pytest.approx((1 / 2 + 0) / 2)
    assert m.recall == pytest.approx((1 / 2 + 0) / 2)
    assert m.ndcg == pytest.approx((1.0 / (1 + 1 / np.log2(3)) + 0) / 2)


def test_time_holdout_keeps_each_users_latest_interactions() -> None:
    users = np.repeat([0, 1, 2], [10, 5, 3])
    times = np.concatenate([np.arange(10)[::-1], np.arange(5), np.arange(3)])
    mask = time_holdout(users, np.arange(18), times, test_fraction=0.2, min_interactions=5)
    assert mask[:10].tolist() == [True, True] + [False] * 8  # user 0's two latest (times 9 and 8)
    assert mask[10:15].tolist() == [False] * 4 + [True]
    assert not mask[15:].any()  # too few interactions: all in training
    with pytest.raises(ConfigError, match="test_fraction"):
        time_holdout(users, users, times, test_fraction=1.0)


def test_als_recovers_block_structure_and_is_seeded() -> None:
    rng = np.random.default_rng(3)
    users, items = [], []
    for u in range(40):
        block = u % 2  # users of a block like its 10 items
        chosen = rng.choice(10, size=6, replace=False) + 10 * block
        users += [u] * 6
        items += chosen.tolist()
    m = Interactions.from_triples(users, items, np.ones(len(users)), n_users=40, n_items=20)
    a = ImplicitALS(ALSConfig(factors=4, reg=0.1, iterations=8)).fit(m, np.random.default_rng(0))
    b = ImplicitALS(ALSConfig(factors=4, reg=0.1, iterations=8)).fit(m, np.random.default_rng(0))
    assert np.array_equal(a.item_factors, b.item_factors)
    lists = top_k(a.scores(np.arange(40)), m, np.arange(40), 4)
    in_block = (lists // 10) == (np.arange(40) % 2)[:, None]
    assert in_block[:, :3].mean() > 0.95  # each user has 4 unseen items of their block left
    assert in_block.mean() > 0.85
    for u in range(40):
        assert not set(lists[u].tolist()) & set(m.row(u)[0].tolist())  # seen items are never recommended
    pop = Popularity().fit(m)
    assert top_k(pop.scores([0]), m, np.array([0]), 20).shape == (1, 20)


def test_interactions_sum_duplicates_and_reject_bad_indices() -> None:
    m = Interactions.from_triples([1, 1, 0], [2, 2, 1], [0.5, 0.25, 1.0], n_users=2, n_items=3)
    assert m.row(1)[1].tolist() == [0.75]
    assert m.transpose().row(2)[0].tolist() == [1]
    with pytest.raises(ConfigError, match="out of range"):
        Interactions.from_triples([2], [0], [1.0], n_users=2, n_items=3)
    with pytest.raises(ConfigError, match="factors=0"):
        ALSConfig(factors=0)


def test_the_batched_row_solves_equal_one_solve_per_row() -> None:
    rng = np.random.default_rng(3)
    n_users, n_items = 300, 120
    counts = np.concatenate([[0, 1, 2, 3, 117], rng.integers(1, 60, n_users - 5)])  # empty, tiny and full rows
    users = np.repeat(np.arange(n_users), counts)
    items = np.concatenate([rng.choice(n_items, c, replace=False) for c in counts])
    matrix = Interactions.from_triples(users, items, rng.uniform(0.2, 1.0, users.size), n_users=n_users,
                                       n_items=n_items)
    model = ImplicitALS(ALSConfig(factors=16, reg=2.0, alpha=10.0))
    fixed = rng.normal(0.0, 0.5, (n_items, 16))
    batched = model._solve(matrix, fixed)
    gram = fixed.T @ fixed + 2.0 * np.eye(16)
    one_by_one = np.zeros_like(batched)
    for u in range(n_users):
        cols, strengths = matrix.row(u)
        if cols.size:
            one_by_one[u] = model._solve_row(gram, fixed[cols], strengths)
    assert np.all(batched[0] == 0.0) and np.abs(one_by_one).max() > 0.1
    # Stated tolerance: 1e-9 of the largest factor (the sums are taken in another order).
    np.testing.assert_allclose(batched, one_by_one, rtol=0, atol=1e-9 * np.abs(one_by_one).max())
