"""A lightweight implicit-feedback recommender: ALS matrix factorisation, a popularity baseline, metrics.

Model: implicit ALS of Hu, Koren & Volinsky, "Collaborative Filtering for Implicit Feedback Datasets"
(ICDM 2008). An observed interaction ``(u, i)`` of strength ``r`` gives preference ``p = 1`` with confidence
``c = 1 + alpha * r``; every unobserved pair has ``p = 0`` and ``c = 1``. Alternating exact least-squares
steps minimise ``sum c (p - x_u . y_i)^2 + reg (|x|^2 + |y|^2)``, each row solved in closed form with the
``Y^T Y`` trick (cost linear in the number of interactions). Compact numpy, seeded, no compiled extension:
the catalog is thousands of titles and the population a thousand or so users, where this takes seconds,
and it keeps the closed loop (fold-in of new feedback, warm-started retraining) in plain sight. Item-kNN
would be simpler but has no user vectors to fold feedback into.

Offline evaluation: :func:`time_holdout` keeps each user's last ``test_fraction`` of interactions (by time)
for testing; :func:`evaluate_ranking` reports precision@k, recall@k and NDCG@k (binary relevance), with the
items a user has in training excluded from their list, for both models.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Interactions:
    """Implicit feedback as a CSR matrix ``[n_users, n_items]`` of strengths (duplicates summed).

    Attributes:
        n_users: rows.
        n_items: columns.
        indptr: CSR row pointers (``n_users + 1``).
        indices: item of each stored entry.
        weights: strength of each entry (> 0).
    """

    n_users: int
    n_items: int
    indptr: IntArray
    indices: IntArray
    weights: FloatArray

    @classmethod
    def from_triples(cls, users: npt.ArrayLike, items: npt.ArrayLike, weights: npt.ArrayLike, *,
                     n_users: int, n_items: int) -> Interactions:
        """Build from parallel arrays (duplicate pairs are summed).

        >>> m = Interactions.from_triples([0, 0, 1], [2, 2, 0], [1.0, 0.5, 3.0], n_users=2, n_items=3)
        >>> m.row(0)[0].tolist(), m.row(0)[1].tolist()
        ([2], [1.5])
        """
        u = np.asarray(users, dtype=np.int64)
        i = np.asarray(items, dtype=np.int64)
        w = np.asarray(weights, dtype=np.float64)
        if u.size and (u.min() < 0 or u.max() >= n_users or i.min() < 0 or i.max() >= n_items):
            raise ConfigError("an interaction's user or item index is out of range")
        key = u * n_items + i
        unique, inverse = np.unique(key, return_inverse=True)
        summed = np.bincount(inverse, weights=w, minlength=unique.size)
        keep = summed > 0
        unique, summed = unique[keep], summed[keep]
        rows = unique // n_items
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_users))]).astype(np.int64)
        return cls(n_users, n_items, indptr, (unique % n_items).astype(np.int64), summed.astype(np.float64))

    def row(self, u: int) -> tuple[IntArray, FloatArray]:
        start, end = self.indptr[u], self.indptr[u + 1]
        return self.indices[start:end], self.weights[start:end]

    def rows_between(self, start: int, stop: int) -> Interactions:
        """Rows ``start .. stop - 1`` alone, as a matrix of ``stop - start`` rows.

        >>> m = Interactions.from_triples([0, 1, 1, 2], [2, 0, 1, 1], [1.0, 2.0, 3.0, 4.0], n_users=3, n_items=3)
        >>> part = m.rows_between(1, 3)
        >>> part.n_users, part.row(0)[0].tolist(), part.row(1)[1].tolist()
        (2, [0, 1], [4.0])
        """
        lo, hi = int(self.indptr[start]), int(self.indptr[stop])
        return Interactions(stop - start, self.n_items, self.indptr[start:stop + 1] - lo, self.indices[lo:hi],
                            self.weights[lo:hi])

    def transpose(self) -> Interactions:
        users = np.repeat(np.arange(self.n_users), np.diff(self.indptr))
        return Interactions.from_triples(self.indices, users, self.weights, n_users=self.n_items, n_items=self.n_users)

    @property
    def item_counts(self) -> FloatArray:
        """How many users interacted with each item."""
        return np.bincount(self.indices, minlength=self.n_items).astype(np.float64)


#: The most memory one batch of row solves gathers (its ``[rows, interactions, factors]`` factors), in bytes.
SOLVE_BLOCK_BYTES = 16 * 1024**2

#: Where row solves run (``ImplicitALS.solver``): ``(matrix, fixed, gram, alpha)`` -> :func:`solve_rows`'s result.
RowSolver = Callable[[Interactions, FloatArray, FloatArray, float], FloatArray]


def padded_lengths(counts: npt.ArrayLike) -> IntArray:
    """Each count rounded up to the next of 1, 2, 3, 4, 6, 8, 12, 16, 24, ... (powers of two and 1.5 times them):
    rows solved together are padded to their group's length, at most a third more than their own.

    >>> padded_lengths([1, 3, 5, 7, 9, 13, 100]).tolist()
    [1, 3, 6, 8, 12, 16, 128]
    """
    c = np.maximum(np.asarray(counts, dtype=np.int64), 1)
    power = 2 ** np.floor(np.log2(c)).astype(np.int64)
    steps = np.where(c <= power, power, np.where(c <= power + power // 2, power + power // 2, 2 * power))
    return steps.astype(np.int64)


@dataclass(frozen=True, slots=True)
class ALSConfig:
    """Hyper-parameters of :class:`ImplicitALS` (defaults tuned on the MovieLens time hold-out).

    Args:
        factors: latent dimensions.
        reg: L2 regularisation weight.
        alpha: confidence per unit of interaction strength (``c = 1 + alpha * r``).
        iterations: alternating sweeps of a full fit.
    """

    factors: int = 32
    reg: float = 5.0
    alpha: float = 10.0
    iterations: int = 12

    def __post_init__(self) -> None:
        for name in ("factors", "iterations"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be an integer >= 1")
        for name in ("reg", "alpha"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value >= 0):
                raise ConfigError(f"{name}={value!r} must be a number >= 0")


class ImplicitALS:
    """Implicit-feedback ALS (see the module docstring).

    Args:
        config: hyper-parameters.

    >>> m = Interactions.from_triples([0, 0, 1, 1, 2], [0, 1, 0, 1, 2], [1.0] * 5, n_users=3, n_items=3)
    >>> als = ImplicitALS(ALSConfig(factors=2, iterations=5)).fit(m, np.random.default_rng(0))
    >>> als.recommend(m, 0, k=1).tolist()  # user 0 has seen items 0 and 1
    [2]
    """

    def __init__(self, config: ALSConfig | None = None) -> None:
        self.config = config or ALSConfig()
        #: Where the row solves run: ``solver(matrix, fixed, gram, alpha)`` returns what :func:`solve_rows`
        #: returns for every row of ``matrix`` (a pool of processes, say); ``None``: in this process.
        self.solver: RowSolver | None = None
        self.user_factors: FloatArray = np.zeros((0, self.config.factors))
        self.item_factors: FloatArray = np.zeros((0, self.config.factors))

    def fit(self, matrix: Interactions, rng: np.random.Generator | None = None, *,
            iterations: int | None = None, warm_start: bool = False) -> ImplicitALS:
        """Fit on ``matrix``; ``warm_start`` continues from the current item factors (rows added since are
        initialised randomly), which is how the closed loop retrains in a few sweeps."""
        k = self.config.factors
        rng = rng if rng is not None else np.random.default_rng(0)
        items = rng.normal(0.0, 0.01, (matrix.n_items, k))
        if warm_start and self.item_factors.shape[0]:
            n = min(self.item_factors.shape[0], matrix.n_items)
            items[:n] = self.item_factors[:n]
        transposed = matrix.transpose()
        users = np.zeros((matrix.n_users, k))
        for _ in range(iterations if iterations is not None else self.config.iterations):
            users = self._solve(matrix, items)
            items = self._solve(transposed, users)
        self.user_factors, self.item_factors = users, items
        return self

    def _solve(self, matrix: Interactions, fixed: FloatArray) -> FloatArray:
        """Closed-form least squares of every row of ``matrix`` against the ``fixed`` factors
        (:func:`solve_rows`, on :attr:`solver` when one is set)."""
        gram = fixed.T @ fixed + self.config.reg * np.eye(fixed.shape[1])
        if self.solver is not None:
            return self.solver(matrix, fixed, gram, self.config.alpha)
        return solve_rows(matrix.indptr, matrix.indices, matrix.weights, fixed, gram, self.config.alpha)

    def _solve_row(self, gram: FloatArray, factors: FloatArray, strengths: FloatArray) -> FloatArray:
        confidence = 1.0 + self.config.alpha * strengths
        lhs = gram + (factors.T * (confidence - 1.0)) @ factors
        solution: FloatArray = np.asarray(np.linalg.solve(lhs, factors.T @ confidence), dtype=np.float64)
        return solution

    def fold_in(self, items: IntArray, strengths: FloatArray) -> FloatArray:
        """A user vector for an interaction history, against the fitted item factors (no refit)."""
        k = self.config.factors
        if items.size == 0:
            return np.zeros(k)
        gram = self.item_factors.T @ self.item_factors + self.config.reg * np.eye(k)
        return self._solve_row(gram, self.item_factors[items], strengths)

    def scores(self, users: npt.ArrayLike | None = None) -> FloatArray:
        """Predicted preference ``[len(users), n_items]`` (all users by default)."""
        rows = self.user_factors if users is None else self.user_factors[np.asarray(users, dtype=np.int64)]
        return rows @ self.item_factors.T

    def recommend(self, matrix: Interactions, user: int, k: int = 10) -> IntArray:
        """The ``k`` best items for ``user`` that are not in their row of ``matrix``."""
        return top_k(self.scores([user]), matrix, np.array([user]), k)[0]


def solve_rows(indptr: npt.ArrayLike, indices: npt.ArrayLike, weights: npt.ArrayLike, fixed: FloatArray,
               gram: FloatArray, alpha: float) -> FloatArray:
    """Implicit ALS's closed-form solution of every row of a CSR matrix against the ``fixed`` factors, batched.

    ``gram`` is ``fixed.T @ fixed + reg * I``. Rows are grouped by their number of interactions rounded up
    (:func:`padded_lengths`) and each group's normal equations are built and solved as stacked arrays (padding
    entries weigh exactly nothing); the solutions equal :meth:`ImplicitALS._solve_row`'s one row at a time up to
    summation order (``tests/abr/test_sessions_recommender`` holds them within 1e-9 relative). A row's solution
    depends on that row alone, bit for bit: solving a range of rows on its own (``indptr`` sliced and rebased)
    gives the rows the whole matrix gives, which is how a pool of processes shares the work."""
    indptr = np.asarray(indptr, dtype=np.int64)
    indices = np.asarray(indices, dtype=np.int64)
    weights = np.asarray(weights, dtype=np.float64)
    k = fixed.shape[1]
    out = np.zeros((indptr.size - 1, k))
    counts = np.diff(indptr)
    rows = np.flatnonzero(counts)
    if rows.size == 0:
        return out
    lengths = padded_lengths(counts[rows])
    last = indices.size - 1
    for n in np.unique(lengths).tolist():
        members = rows[lengths == n]
        block = max(1, SOLVE_BLOCK_BYTES // (8 * n * k))
        for start in range(0, members.size, block):
            users = members[start:start + block]
            position = indptr[users][:, None] + np.arange(n)  # [users, n]
            valid = np.arange(n) < counts[users][:, None]
            position = np.minimum(position, last)
            factors = fixed[indices[position]] * valid[..., None]  # [users, n, k]
            confidence = np.where(valid, 1.0 + alpha * weights[position], 0.0)
            extra = np.where(valid, confidence - 1.0, 0.0)
            transposed = factors.transpose(0, 2, 1)  # [users, k, n]
            lhs = gram + np.matmul(transposed * extra[:, None, :], factors)
            rhs = np.matmul(transposed, confidence[..., None])
            out[users] = np.linalg.solve(lhs, rhs)[..., 0]
    return out


class Popularity:
    """The baseline: every user gets the items most users interacted with (their own seen items excluded)."""

    def __init__(self) -> None:
        self.counts: FloatArray = np.zeros(0)

    def fit(self, matrix: Interactions) -> Popularity:
        self.counts = matrix.item_counts
        return self

    def scores(self, users: npt.ArrayLike) -> FloatArray:
        n = np.asarray(users).size
        # Ties broken by item index (a tiny decreasing offset), so rankings are deterministic.
        return np.tile(self.counts - np.arange(self.counts.size) * 1e-9, (n, 1))


def top_k(scores: FloatArray, seen: Interactions, users: IntArray, k: int) -> IntArray:
    """Indices ``[len(users), k]`` of the best-scored items, excluding each user's items in ``seen``."""
    masked = np.array(scores, dtype=np.float64, copy=True)
    for row, u in enumerate(users):
        masked[row, seen.row(int(u))[0]] = -np.inf
    k = min(k, masked.shape[1])
    part = np.argpartition(-masked, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(masked, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


@dataclass(frozen=True, slots=True)
class RankingMetrics:
    """Mean top-k metrics over the evaluated users."""

    precision: float
    recall: float
    ndcg: float
    n_users: int
    k: int

    def as_dict(self) -> dict[str, float | int]:
        return {f"precision@{self.k}": self.precision, f"recall@{self.k}": self.recall,
                f"ndcg@{self.k}": self.ndcg, "n_users": self.n_users}


def time_holdout(users: npt.ArrayLike, items: npt.ArrayLike, times: npt.ArrayLike, *,
                 test_fraction: float = 0.2, min_interactions: int = 5) -> npt.NDArray[np.bool_]:
    """A mask of the test interactions: each user's last ``test_fraction`` by time (ties by item).

    Users with fewer than ``min_interactions`` keep everything in training.

    >>> time_holdout([0] * 5 + [1], [1, 2, 3, 4, 5, 6], [5, 1, 2, 3, 4, 9]).tolist()
    [True, False, False, False, False, False]
    """
    if not 0 < test_fraction < 1:
        raise ConfigError(f"test_fraction={test_fraction} must be in (0, 1)")
    u, i, t = (np.asarray(a) for a in (users, items, times))
    order = np.lexsort((i, t, u))
    test = np.zeros(u.size, dtype=bool)
    boundaries = np.flatnonzero(np.diff(u[order])) + 1
    for group in np.split(order, boundaries):
        if group.size >= min_interactions:
            n_test = max(1, int(round(test_fraction * group.size)))
            test[group[-n_test:]] = True
    return test


def evaluate_ranking(scores: FloatArray, train: Interactions, test: Interactions, users: IntArray,
                     k: int = 10) -> RankingMetrics:
    """precision@k, recall@k (hits / test items) and NDCG@k of ``scores`` rows for ``users``."""
    lists = top_k(scores, train, users, k)
    discounts = 1.0 / np.log2(np.arange(2, k + 2))
    precision, recall, ndcg = [], [], []
    for row, u in enumerate(users):
        relevant = set(test.row(int(u))[0].tolist())
        if not relevant:
            continue
        hits = np.array([item in relevant for item in lists[row].tolist()], dtype=np.float64)
        precision.append(hits.sum() / k)
        recall.append(hits.sum() / len(relevant))
        ideal = discounts[:min(len(relevant), k)].sum()
        ndcg.append(float(hits @ discounts[:hits.size]) / ideal)
    if not precision:
        raise ConfigError("no user has test interactions: nothing to evaluate")
    return RankingMetrics(float(np.mean(precision)), float(np.mean(recall)), float(np.mean(ndcg)),
                          len(precision), k)


def evaluate_in_batches(model: ImplicitALS | Popularity, train: Interactions, test: Interactions,
                        k: int = 10, batch: int = 256) -> RankingMetrics:
    """:func:`evaluate_ranking` over every user with test interactions, scoring ``batch`` users at a time."""
    users = np.flatnonzero(np.diff(test.indptr) > 0)
    parts: list[tuple[RankingMetrics, int]] = []
    for start in range(0, users.size, batch):
        chunk = users[start:start + batch]
        metrics = evaluate_ranking(model.scores(chunk), train, test, chunk, k)
        parts.append((metrics, metrics.n_users))
    total = sum(n for _, n in parts)

    def mean(name: str) -> float:
        return float(sum(getattr(m, name) * n for m, n in parts) / total)

    return RankingMetrics(mean("precision"), mean("recall"), mean("ndcg"), total, k)


def dense_index(values: Sequence[int] | npt.ArrayLike) -> tuple[IntArray, IntArray]:
    """``(unique values, index of each value)``: MovieLens ids to contiguous indices."""
    unique, inverse = np.unique(np.asarray(values), return_inverse=True)
    return unique.astype(np.int64), inverse.astype(np.int64)
