"""The title catalog: genres, duration, popularity and an encoding complexity per title, and the chunk table
each title plays.

From MovieLens (:func:`movielens_catalog`): every movie with at least ``min_ratings`` ratings; popularity is
its number of ratings. MovieLens has no running time, so each title's duration is drawn (seeded) from a
log-normal around a genre-dependent median (:data:`GENRE_MEDIAN_MIN`, the first of its genres in this order:
war 125 min, animation and children 90, documentary 95, horror and comedy 100, action and drama 115; any
other title :data:`DEFAULT_MEDIAN_MIN`, 110), sd 0.15 in log space, clipped to 60-200 min. The synthetic
catalog (:func:`synthetic_catalog`, the no-download default) draws genres, Zipf popularity and a seeded
rating history from a latent-factor model, and its durations as above, so the whole pipeline runs without
data.

Chunk tables (:func:`title_video`): a title plays a real chunk-size table (``videos/envivio_dash3`` by
default) tiled to the title's length from a title-specific offset and multiplied by the title's encoding
complexity (:data:`GENRE_COMPLEXITY`, the product over its genres, times log-normal noise of median 1:
animation/action/sci-fi/adventure busier, documentaries/dramas/romances calmer), so the same ladder costs
more bits on a busy title. The nominal ladder is unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError
from traces.movielens import Movie, Ratings
from traces.types import Video

#: Median running time by genre, in minutes (the first matching genre in this order wins).
GENRE_MEDIAN_MIN: tuple[tuple[str, float], ...] = (
    ("War", 125.0), ("Animation", 90.0), ("Children", 90.0), ("Documentary", 95.0), ("Horror", 100.0),
    ("Comedy", 100.0), ("Action", 115.0), ("Drama", 115.0),
)
DEFAULT_MEDIAN_MIN = 110.0
DURATION_LOG_SD = 0.15
DURATION_RANGE_MIN = (60.0, 200.0)
#: Encoding-complexity multipliers by genre (the product over a title's genres, then log-normal noise).
GENRE_COMPLEXITY: dict[str, float] = {"Action": 1.15, "Animation": 1.2, "Sci-Fi": 1.1, "Adventure": 1.05,
                                      "Documentary": 0.85, "Drama": 0.92, "Romance": 0.95}
COMPLEXITY_LOG_SD = 0.12
COMPLEXITY_RANGE = (0.6, 1.6)
SYNTHETIC_GENRES = ("Action", "Adventure", "Animation", "Comedy", "Crime", "Documentary", "Drama", "Horror",
                    "Romance", "Sci-Fi", "Thriller")


@dataclass(frozen=True, slots=True)
class Catalog:
    """Titles as parallel arrays (index = title index).

    Attributes:
        title_ids: the source id (MovieLens ``movieId``; 0..n-1 for the synthetic catalog).
        names: display names.
        genres: genres of each title.
        duration_s: running time, in seconds.
        popularity: number of ratings (or synthetic views) behind the title.
        complexity: encoding-complexity factor (median 1).
        source: ``"movielens"`` or ``"synthetic"``.
    """

    title_ids: npt.NDArray[np.int64]
    names: tuple[str, ...]
    genres: tuple[tuple[str, ...], ...]
    duration_s: npt.NDArray[np.float64]
    popularity: npt.NDArray[np.float64]
    complexity: npt.NDArray[np.float64]
    source: str

    def __len__(self) -> int:
        return int(self.title_ids.size)


def _durations_and_complexity(genres: tuple[tuple[str, ...], ...], rng: np.random.Generator
                              ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    medians = np.array([next((m for g, m in GENRE_MEDIAN_MIN if g in gs), DEFAULT_MEDIAN_MIN) for gs in genres])
    minutes = np.clip(medians * np.exp(rng.normal(0.0, DURATION_LOG_SD, medians.size)), *DURATION_RANGE_MIN)
    base = np.array([float(np.prod([GENRE_COMPLEXITY.get(g, 1.0) for g in gs])) for gs in genres])
    complexity = np.clip(base * np.exp(rng.normal(0.0, COMPLEXITY_LOG_SD, base.size)), *COMPLEXITY_RANGE)
    return minutes * 60.0, complexity


def movielens_catalog(ratings: Ratings, movies: dict[int, Movie], rng: np.random.Generator, *,
                      min_ratings: int = 5) -> Catalog:
    """The catalog of MovieLens titles with at least ``min_ratings`` ratings, sorted by ``movieId``.

    Raises:
        ConfigError: no title has that many ratings.
    """
    ids, counts = np.unique(ratings.movie_ids, return_counts=True)
    keep = counts >= min_ratings
    if not np.any(keep):
        raise ConfigError(f"min_ratings={min_ratings}: no title has that many ratings")
    ids, counts = ids[keep], counts[keep]
    unknown = [int(m) for m in ids if int(m) not in movies]
    names = tuple(movies[int(m)].title if int(m) in movies else f"movie {int(m)}" for m in ids)
    genres = tuple(movies[int(m)].genres if int(m) in movies else () for m in ids)
    if unknown:
        raise ConfigError(f"ratings.csv rates movieId {unknown[0]} (and {len(unknown) - 1} more) that movies.csv "
                          "does not list: use matching ratings.csv and movies.csv files")
    duration_s, complexity = _durations_and_complexity(genres, rng)
    return Catalog(ids.astype(np.int64), names, genres, duration_s, counts.astype(np.float64), complexity,
                   "movielens")


def synthetic_catalog(rng: np.random.Generator, n_titles: int = 300) -> Catalog:
    """A seeded synthetic catalog: 1-3 genres per title, Zipf(1.1) popularity.

    >>> c = synthetic_catalog(np.random.default_rng(0), 20)
    >>> len(c), c.source, bool(np.all(c.duration_s >= 3600))
    (20, 'synthetic', True)
    """
    if n_titles < 10:
        raise ConfigError(f"n_titles={n_titles} must be >= 10")
    genres = tuple(tuple(sorted(rng.choice(SYNTHETIC_GENRES, size=int(rng.integers(1, 4)), replace=False).tolist()))
                   for _ in range(n_titles))
    popularity = np.round(1000.0 / np.arange(1, n_titles + 1) ** 1.1 + 1.0)[rng.permutation(n_titles)]
    duration_s, complexity = _durations_and_complexity(genres, rng)
    names = tuple(f"title {i:04d}" for i in range(n_titles))
    return Catalog(np.arange(n_titles, dtype=np.int64), names, genres, duration_s, popularity, complexity,
                   "synthetic")


def title_video(catalog: Catalog, title_idx: int, base: Video, *, max_duration_s: float | None = None) -> Video:
    """The chunk table title ``title_idx`` plays: ``base`` tiled to its length, scaled by its complexity.

    Args:
        catalog: the catalog.
        title_idx: the title.
        base: the real chunk-size table whose ladder and variability the title takes.
        max_duration_s: build only the first this many seconds (the part a session plays).

    >>> c = synthetic_catalog(np.random.default_rng(0), 10)
    >>> v = title_video(c, 3, Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=5), max_duration_s=40.0)
    >>> v.n_chunks, round(float(v.chunk_sizes_bits[0, 0]) / 4e6, 6) == round(float(c.complexity[3]), 6)
    (10, True)
    """
    if not 0 <= title_idx < len(catalog):
        raise ConfigError(f"title_idx={title_idx} is not in the {len(catalog)}-title catalog")
    duration_s = float(catalog.duration_s[title_idx])
    if max_duration_s is not None:
        duration_s = min(duration_s, max_duration_s)
    n_chunks = max(1, int(np.ceil(duration_s / base.chunk_duration_s - 1e-9)))
    offset = int(catalog.title_ids[title_idx]) % base.n_chunks
    rows = (offset + np.arange(n_chunks)) % base.n_chunks
    sizes = base.chunk_sizes_bits[rows] * float(catalog.complexity[title_idx])
    name = f"{base.name}:title{int(catalog.title_ids[title_idx])}"
    return Video(base.bitrates_bps, base.chunk_duration_s, sizes, name=name)
