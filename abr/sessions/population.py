"""The world a population lives in: catalog, rating history, ground-truth tastes, households and networks.

Viewers (:data:`VIEWER_KINDS`). ``clones``: users are clones of rating-data users: each simulated user takes
the rating history of a source user (sampled with replacement) as their initial implicit feedback, and a taste
vector learned from the ratings (the source user's ALS factors, perturbed by ``TASTE_NOISE`` so clones differ).
``drawn``: the first users are the rating data's users, in a seeded order, each at most once (cloned as
above); users beyond them (a population larger than the rating data) are drawn from the fitted taste model
(:func:`draw_viewers`): a taste vector from the normal distribution with the mean and covariance of the
fitted user factors, and a viewing history of their own drawn from that taste (how many titles: a source
user's count, drawn; which: popularity times affinity; how strongly: the affinity), so every viewer's
recommender input is theirs. Each drawn viewer's draws come from their own generator (the same seed gives
the same population). Their true interest in a title is
``sigmoid(1.5 z + e)``, with ``z`` the standardised affinity ``taste . item_factors`` and ``e ~ N(0, 0.7^2)``
an idiosyncratic term per (user, title): the recommender never sees it. That ``[n_users, n_titles]`` matrix is
never stored: :class:`TrueInterest` computes any block of users' rows on demand (the same values), so a
population's memory grows with its users times its factors, not times the catalog.

Households group 1-4 users (35/35/15/15%) behind one link: a network profile is a trace family and one of
its traces, the household's bottleneck every day (from a seeded start offset). Each user has an activity
rate (mean views per day, Gamma with shape 2 around ``sessions_per_day``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError
from abr.sessions.catalog import Catalog, movielens_catalog, synthetic_catalog
from abr.sessions.recommender import ALSConfig, ImplicitALS, Interactions
from traces.movielens import Ratings
from traces.movielens import load_movielens as _load_movielens

HOUSEHOLD_SIZES = (1, 2, 3, 4)
HOUSEHOLD_SIZE_P = (0.35, 0.35, 0.15, 0.15)
TASTE_NOISE = 0.3  # clone perturbation, in units of the factors' standard deviation
INTEREST_SCALE = 1.5
INTEREST_NOISE_SD = 0.7
SYNTHETIC_SOURCE_USERS = 200
SYNTHETIC_FACTORS = 8
#: How a population's viewers are made (see the module docstring).
VIEWER_KINDS: tuple[str, ...] = ("clones", "drawn")
#: Users whose interest rows are computed together: a float64 ``[users, titles]`` block of at most this size.
INTEREST_BLOCK_BYTES = 32 * 1024**2
_FLOAT64_BYTES = 8


@dataclass(frozen=True, slots=True)
class RatingData:
    """The catalog and its rating history as implicit feedback (rows: source users; strength = stars / 5)."""

    catalog: Catalog
    history: Interactions
    times_s: npt.NDArray[np.int64] | None = None


@dataclass(frozen=True, slots=True)
class _StreamMarks:
    """The states of a generator at the start of each row of a ``[rows, row_size]`` draw, to draw rows again.

    PCG64-family generators (every ``np.random.default_rng``) keep 16 bytes a row: the only part of their
    state a draw of normals changes; any other bit generator keeps its whole state dict per row.
    """

    template: dict[str, Any]
    high: npt.NDArray[np.uint64]
    low: npt.NDArray[np.uint64]
    states: tuple[dict[str, Any], ...] = ()

    @classmethod
    def record(cls, rng: np.random.Generator, n_rows: int, row_size: int) -> _StreamMarks:
        """Advance ``rng`` past ``n_rows`` rows of ``row_size`` normals, marking where each row starts."""
        template = dict(rng.bit_generator.state)
        is_compact = template["bit_generator"] in ("PCG64", "PCG64DXSM")
        high = np.zeros(n_rows if is_compact else 0, dtype=np.uint64)
        low = np.zeros_like(high)
        states: list[dict[str, Any]] = []
        row = np.empty(row_size)
        for r in range(n_rows):
            state = dict(rng.bit_generator.state)
            if is_compact:
                value = int(state["state"]["state"])
                high[r], low[r] = value >> 64, value & 0xFFFF_FFFF_FFFF_FFFF
            else:
                states.append(state)
            rng.standard_normal(out=row)
        return cls(template, high, low, tuple(states))

    def generator_at(self, row: int) -> np.random.Generator:
        """A generator in the state ``rng`` had at the start of ``row``."""
        if self.states:
            state = self.states[row]
        else:
            value = (int(self.high[row]) << 64) | int(self.low[row])
            state = {**self.template, "state": {**self.template["state"], "state": value}}
        bit_generator = getattr(np.random, self.template["bit_generator"])()
        bit_generator.state = state
        return np.random.Generator(bit_generator)

    @property
    def nbytes(self) -> int:
        return int(self.high.nbytes + self.low.nbytes) + 1024 * len(self.states)

    def rows_between(self, start: int, stop: int) -> _StreamMarks:
        """The marks of rows ``start .. stop - 1`` alone (row 0 of the result is row ``start``)."""
        return _StreamMarks(self.template, self.high[start:stop], self.low[start:stop], self.states[start:stop])


@dataclass(frozen=True, slots=True)
class TrueInterest:
    """Every user's true interest in every title, ``[n_users, n_titles]`` in (0, 1), computed on demand.

    ``interest[u, i] = sigmoid(INTEREST_SCALE * z + e)``: ``z`` is ``taste[u] . item_factors[i]`` standardised
    by the mean and standard deviation over every (user, title) pair, ``e`` is element ``(u, i)`` of one
    ``N(0, INTEREST_NOISE_SD^2)`` draw of shape ``[n_users, n_titles]`` from the population's generator. The
    matrix is not kept: the generator's state at the start of each user's row is (see :class:`_StreamMarks`),
    so :meth:`rows` draws any block of rows again and returns the values the whole matrix would hold.

    Attributes:
        taste: each user's taste vector ``[n_users, factors]``.
        item_factors: each title's factors ``[n_titles, factors]``.
        mean: mean of ``taste @ item_factors.T``.
        std: its standard deviation (1 where it is 0).
        noise: where each user's row of the noise draw starts.
    """

    taste: npt.NDArray[np.float64]
    item_factors: npt.NDArray[np.float64]
    mean: float
    std: float
    noise: _StreamMarks

    @classmethod
    def draw(cls, taste: npt.NDArray[np.float64], item_factors: npt.NDArray[np.float64],
             rng: np.random.Generator) -> TrueInterest:
        """Standardise the affinities (block by block) and draw the noise, advancing ``rng`` past it."""
        n_users, n_titles = taste.shape[0], item_factors.shape[0]
        spans = list(interest_blocks(n_users, n_titles))
        total = 0.0
        for start, stop in spans:
            total += float((taste[start:stop] @ item_factors.T).sum())
        mean = total / (n_users * n_titles)
        squares = 0.0
        for start, stop in spans:
            deviation = taste[start:stop] @ item_factors.T - mean
            squares += float((deviation * deviation).sum())
        std = math.sqrt(squares / (n_users * n_titles)) or 1.0
        return cls(taste, item_factors, mean, std, _StreamMarks.record(rng, n_users, n_titles))

    @property
    def n_users(self) -> int:
        return int(self.taste.shape[0])

    @property
    def n_titles(self) -> int:
        return int(self.item_factors.shape[0])

    @property
    def nbytes(self) -> int:
        """Memory held (the factors and the stream marks), in bytes."""
        return int(self.taste.nbytes + self.item_factors.nbytes) + self.noise.nbytes

    def blocks(self) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` user ranges of at most :data:`INTEREST_BLOCK_BYTES` of float64 rows each."""
        return interest_blocks(self.n_users, self.n_titles)

    def users_between(self, start: int, stop: int) -> TrueInterest:
        """Users ``start .. stop - 1`` alone: its :meth:`rows` ``(0, stop - start)`` are this one's
        ``rows(start, stop)``, bit for bit (what a worker process plans a block of users with)."""
        if not 0 <= start <= stop <= self.n_users:
            raise IndexError(f"users {start}..{stop} are outside 0..{self.n_users}")
        return TrueInterest(self.taste[start:stop], self.item_factors, self.mean, self.std,
                            self.noise.rows_between(start, stop))

    def rows(self, start: int, stop: int) -> npt.NDArray[np.float32]:
        """The interest of users ``start .. stop - 1`` in every title, ``[stop - start, n_titles]``."""
        if not 0 <= start <= stop <= self.n_users:
            raise IndexError(f"users {start}..{stop} are outside 0..{self.n_users}")
        z = (self.taste[start:stop] @ self.item_factors.T - self.mean) / self.std
        noise = self.noise.generator_at(start).normal(0.0, INTEREST_NOISE_SD, z.shape) if stop > start else 0.0
        return (1.0 / (1.0 + np.exp(-(INTEREST_SCALE * z + noise)))).astype(np.float32)


def interest_blocks(n_users: int, n_titles: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` ranges covering ``n_users`` so that a float64 block of rows stays within
    :data:`INTEREST_BLOCK_BYTES` (at least one user a block).

    >>> list(interest_blocks(5, 2 * 1024**2))
    [(0, 2), (2, 4), (4, 5)]
    """
    size = max(1, INTEREST_BLOCK_BYTES // (_FLOAT64_BYTES * max(1, n_titles)))
    for start in range(0, n_users, size):
        yield start, min(start + size, n_users)


@dataclass(frozen=True, slots=True)
class Population:
    """The simulated users (see the module docstring).

    Attributes:
        source_user: the rating-data row each user was cloned from (-1: drawn from the taste model).
        household: household index of each user.
        household_family: network profile (trace family) of each household.
        household_trace: trace index (into the family's traces) of each household.
        activity: mean views per day of each user.
        interest: true interest ``[n_users, n_titles]`` in (0, 1), computed a block of users at a time.
        initial: the initial implicit feedback, one row per user.
    """

    source_user: npt.NDArray[np.int64]
    household: npt.NDArray[np.int64]
    household_family: tuple[str, ...]
    household_trace: npt.NDArray[np.int64]
    activity: npt.NDArray[np.float64]
    interest: TrueInterest
    initial: Interactions

    @property
    def n_users(self) -> int:
        return int(self.source_user.size)

    @property
    def n_households(self) -> int:
        return len(self.household_family)


def movielens_rating_data(rng: np.random.Generator, data_dir: str | None = None, *,
                          min_ratings: int = 5) -> RatingData:
    """MovieLens ``ml-latest-small`` as catalog and history (titles with at least ``min_ratings`` ratings)."""
    ratings, movies = _load_movielens(data_dir)
    return rating_data_from(ratings, movies, rng, min_ratings=min_ratings)


def rating_data_from(ratings: Ratings, movies: dict, rng: np.random.Generator, *, min_ratings: int = 5) -> RatingData:
    catalog = movielens_catalog(ratings, movies, rng, min_ratings=min_ratings)
    item_of = {int(m): i for i, m in enumerate(catalog.title_ids)}
    keep = np.array([int(m) in item_of for m in ratings.movie_ids])
    users, user_idx = np.unique(ratings.user_ids[keep], return_inverse=True)
    items = np.array([item_of[int(m)] for m in ratings.movie_ids[keep]], dtype=np.int64)
    history = Interactions.from_triples(user_idx, items, ratings.stars[keep] / 5.0, n_users=users.size,
                                        n_items=len(catalog))
    return RatingData(catalog, history, ratings.timestamps_s[keep])


def synthetic_rating_data(rng: np.random.Generator, n_titles: int = 300) -> RatingData:
    """A seeded synthetic catalog with a rating history from a latent-factor model (no data needed)."""
    catalog = synthetic_catalog(rng, n_titles)
    users = rng.normal(size=(SYNTHETIC_SOURCE_USERS, SYNTHETIC_FACTORS))
    items = rng.normal(size=(n_titles, SYNTHETIC_FACTORS))
    log_pop = np.log(catalog.popularity)
    rows, cols, stars = [], [], []
    for u in range(SYNTHETIC_SOURCE_USERS):
        affinity = items @ users[u] / np.sqrt(SYNTHETIC_FACTORS)
        logits = log_pop + 1.5 * affinity
        p = np.exp(logits - logits.max())
        chosen = rng.choice(n_titles, size=int(rng.integers(15, 60)), replace=False, p=p / p.sum())
        rows += [u] * chosen.size
        cols += chosen.tolist()
        stars += np.clip(np.round(3.0 + affinity[chosen] + rng.normal(0, 0.5, chosen.size)), 1, 5).tolist()
    history = Interactions.from_triples(rows, cols, np.array(stars) / 5.0, n_users=SYNTHETIC_SOURCE_USERS,
                                        n_items=n_titles)
    return RatingData(catalog, history)


@dataclass(frozen=True, slots=True)
class DrawnViewers:
    """Viewers drawn from the taste model: their tastes and their histories as ``(user, item, strength)``.

    Attributes:
        taste: ``[n, factors]``.
        users: the viewer (0-based among the drawn) of each history entry.
        items: the title of each entry.
        weights: its strength (a rating's stars / 5).
    """

    taste: npt.NDArray[np.float64]
    users: npt.NDArray[np.int64]
    items: npt.NDArray[np.int64]
    weights: npt.NDArray[np.float64]


def draw_viewers(truth: ImplicitALS, data: RatingData, n: int, seed: int) -> DrawnViewers:
    """``n`` viewers from the taste model fitted to ``data`` (see the module docstring), viewer ``j`` from
    ``default_rng([seed, j])`` alone.

    A viewer's history: ``m`` titles, ``m`` a source user's history length (uniformly chosen), picked without
    replacement with probability proportional to ``popularity * exp(INTEREST_SCALE * z)`` (``z``: their
    standardised affinity ``taste . item_factors``, Gumbel top-``m``); each with strength
    ``clip(round(3 + z + N(0, 0.5^2)), 1, 5) / 5``, as the synthetic catalog's ratings are drawn.

    >>> data = synthetic_rating_data(np.random.default_rng(0), 100)
    >>> truth = ImplicitALS(ALSConfig(factors=4, iterations=2)).fit(data.history, np.random.default_rng(0))
    >>> a, b = draw_viewers(truth, data, 3, seed=5), draw_viewers(truth, data, 5, seed=5)
    >>> a.taste.shape, bool(np.array_equal(a.taste, b.taste[:3])), bool(np.array_equal(a.items, b.items[:a.items.size]))
    ((3, 4), True, True)
    """
    factors = truth.user_factors
    k = factors.shape[1]
    mean = factors.mean(axis=0)
    covariance = np.cov(factors, rowvar=False).reshape(k, k) if factors.shape[0] > 1 else np.eye(k)
    # A square root of the covariance (eigen-decomposition: positive semi-definite is enough).
    values, vectors = np.linalg.eigh(covariance)
    root = vectors * np.sqrt(np.clip(values, 0.0, None))
    counts = np.diff(data.history.indptr)
    counts = counts[counts > 0] if np.any(counts > 0) else np.ones(1, dtype=np.int64)
    log_popularity = np.log(data.catalog.popularity)
    n_titles = truth.item_factors.shape[0]
    taste = np.empty((n, k))
    users, items, weights = [], [], []
    for j in range(n):
        rng = np.random.default_rng([seed, j])
        taste[j] = mean + root @ rng.standard_normal(k)
        affinity = truth.item_factors @ taste[j]
        z = (affinity - affinity.mean()) / (affinity.std() or 1.0)
        m = int(min(counts[int(rng.integers(counts.size))], n_titles))
        keys = log_popularity + INTEREST_SCALE * z + rng.gumbel(size=n_titles)
        chosen = np.sort(np.argpartition(-keys, m - 1)[:m])
        stars = np.clip(np.round(3.0 + z[chosen] + rng.normal(0.0, 0.5, m)), 1, 5)
        users.append(np.full(m, j, dtype=np.int64))
        items.append(chosen.astype(np.int64))
        weights.append(stars / 5.0)
    empty_int = np.zeros(0, dtype=np.int64)
    return DrawnViewers(taste, np.concatenate(users) if users else empty_int,
                        np.concatenate(items) if items else empty_int,
                        np.concatenate(weights) if weights else np.zeros(0))


def build_population(data: RatingData, n_users: int, families: dict[str, int], rng: np.random.Generator, *,
                     sessions_per_day: float = 0.8, als: ALSConfig | None = None,
                     viewers: str = "clones") -> Population:
    """Sample ``n_users`` users in households, with tastes learned from ``data`` (see the module docstring).

    Args:
        data: catalog and rating history.
        n_users: population size.
        families: network profiles: trace family name -> number of traces it has.
        rng: the population's generator.
        sessions_per_day: mean views per user per day.
        als: the factor model the tastes are learned with.
        viewers: ``clones`` or ``drawn`` (see the module docstring).
    """
    if n_users < 1:
        raise ConfigError(f"users={n_users} must be >= 1")
    if not families or any(n < 1 for n in families.values()):
        raise ConfigError("every network profile needs at least one trace")
    if viewers not in VIEWER_KINDS:
        raise ConfigError(f"viewers={viewers!r} is not one of {', '.join(VIEWER_KINDS)}")
    truth = ImplicitALS(als).fit(data.history, rng)
    n_sources = data.history.n_users
    n_cloned = n_users if viewers == "clones" else min(n_users, n_sources)
    if viewers == "clones":
        source = rng.integers(0, n_sources, n_users).astype(np.int64)
    else:
        source = np.concatenate([rng.permutation(n_sources)[:n_cloned],
                                 np.full(n_users - n_cloned, -1)]).astype(np.int64)
    spread = float(np.std(truth.user_factors)) or 1.0
    cloned = truth.user_factors[source[:n_cloned]] + rng.normal(0.0, TASTE_NOISE * spread,
                                                                 (n_cloned, truth.config.factors))
    drawn = draw_viewers(truth, data, n_users - n_cloned, int(rng.integers(2**63)) if n_users > n_cloned else 0)
    taste = np.concatenate([cloned, drawn.taste])
    interest = TrueInterest.draw(taste, truth.item_factors, rng)
    sizes: list[int] = []
    housed = 0
    while housed < n_users:
        sizes.append(int(rng.choice(HOUSEHOLD_SIZES, p=HOUSEHOLD_SIZE_P)))
        housed += sizes[-1]
    sizes[-1] -= housed - n_users
    household = np.repeat(np.arange(len(sizes)), sizes).astype(np.int64)
    names = sorted(families)
    family_of = [names[int(i)] for i in rng.integers(0, len(names), len(sizes))]
    trace_of = np.array([int(rng.integers(0, families[f])) for f in family_of], dtype=np.int64)
    activity = rng.gamma(2.0, sessions_per_day / 2.0, n_users)
    rows = [data.history.row(int(s)) for s in source[:n_cloned]]
    users = np.concatenate([np.repeat(np.arange(n_cloned), [r[0].size for r in rows]), drawn.users + n_cloned])
    items = np.concatenate([*(r[0] for r in rows), drawn.items])
    weights = np.concatenate([*(r[1] for r in rows), drawn.weights])
    initial = Interactions.from_triples(users, items, weights, n_users=n_users, n_items=data.history.n_items)
    return Population(source, household, tuple(family_of), trace_of, activity, interest, initial)
