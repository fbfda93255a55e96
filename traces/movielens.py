"""Reading MovieLens (``ml-latest-small``): ratings and movies, as the recommender and the catalog need them.

The files live under ``<data dir>/recsys/ml-latest-small`` (see :func:`movielens_dir`); they are never part of
the repository. ``ratings.csv`` has the columns ``userId,movieId,rating,timestamp`` (rating 0.5-5 stars,
timestamp in seconds since 1970); ``movies.csv`` has ``movieId,title,genres`` (genres joined by ``|``).
A malformed file raises :class:`~traces.errors.RecsysFormatError` naming the file, the line and the field.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from traces.datadir import data_dir as resolve_data_dir
from traces.errors import DataDirError, RecsysFormatError

MOVIELENS_SUBDIR = Path("recsys") / "ml-latest-small"
RATINGS_COLUMNS = ("userId", "movieId", "rating", "timestamp")
MOVIES_COLUMNS = ("movieId", "title", "genres")
NO_GENRE = "(no genres listed)"


@dataclass(frozen=True, slots=True)
class Ratings:
    """Ratings as parallel arrays, in file order.

    Attributes:
        user_ids: MovieLens ``userId`` of each rating.
        movie_ids: MovieLens ``movieId``.
        stars: the rating, 0.5-5.
        timestamps_s: when it was given, seconds since 1970.
    """

    user_ids: npt.NDArray[np.int64]
    movie_ids: npt.NDArray[np.int64]
    stars: npt.NDArray[np.float64]
    timestamps_s: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.user_ids.size)


@dataclass(frozen=True, slots=True)
class Movie:
    """One row of ``movies.csv``."""

    movie_id: int
    title: str
    genres: tuple[str, ...]


def movielens_dir(data_dir: str | Path | None = None) -> Path:
    """``<data dir>/recsys/ml-latest-small``, checked to exist.

    Raises:
        DataDirError: no data directory, or it holds no MovieLens folder.
    """
    folder = resolve_data_dir(data_dir) / MOVIELENS_SUBDIR
    if not folder.is_dir():
        raise DataDirError(f"no MovieLens data at {folder}: put ml-latest-small (ratings.csv, movies.csv) there, "
                           "or use the synthetic catalog (--catalog synthetic)")
    return folder


def _rows(path: Path, columns: tuple[str, ...]) -> list[list[str]]:
    if not path.is_file():
        raise DataDirError(f"{path} does not exist: MovieLens needs {path.name} with columns {','.join(columns)}")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:len(columns)]) != columns:
            raise RecsysFormatError(f"expected the header {','.join(columns)}, got {','.join(header or [])!r}",
                                    path=path, line=1)
        rows = list(reader)
    if not rows:
        raise RecsysFormatError("the file has a header but no rows", path=path, line=2)
    return rows


def read_ratings(path: str | Path) -> Ratings:
    """Read a MovieLens ``ratings.csv``.

    Raises:
        RecsysFormatError: a missing column, a non-numeric id or timestamp, or a rating outside 0.5-5.
    """
    path = Path(path)
    rows = _rows(path, RATINGS_COLUMNS)
    users = np.empty(len(rows), dtype=np.int64)
    movies = np.empty(len(rows), dtype=np.int64)
    stars = np.empty(len(rows))
    stamps = np.empty(len(rows), dtype=np.int64)
    for i, row in enumerate(rows):
        line = i + 2
        if len(row) < len(RATINGS_COLUMNS):
            raise RecsysFormatError(f"expected {len(RATINGS_COLUMNS)} fields ({','.join(RATINGS_COLUMNS)}), got "
                                    f"{len(row)}", path=path, line=line)
        for column, value, target, parse in (("userId", row[0], users, int), ("movieId", row[1], movies, int),
                                             ("rating", row[2], stars, float), ("timestamp", row[3], stamps, int)):
            try:
                target[i] = parse(value)
            except ValueError:
                kind = "a number" if parse is float else "an integer"
                raise RecsysFormatError(f"{column}={value!r} is not {kind}", path=path, line=line) from None
        if not 0.5 <= stars[i] <= 5.0:
            raise RecsysFormatError(f"rating={stars[i]} must be between 0.5 and 5 stars", path=path, line=line)
    return Ratings(users, movies, stars, stamps)


def read_movies(path: str | Path) -> dict[int, Movie]:
    """Read a MovieLens ``movies.csv`` into ``{movieId: Movie}``.

    Raises:
        RecsysFormatError: a missing field or a non-integer ``movieId``.
    """
    path = Path(path)
    movies: dict[int, Movie] = {}
    for i, row in enumerate(_rows(path, MOVIES_COLUMNS)):
        if len(row) < len(MOVIES_COLUMNS):
            raise RecsysFormatError(f"expected 3 fields (movieId,title,genres), got {len(row)}", path=path, line=i + 2)
        try:
            movie_id = int(row[0])
        except ValueError:
            raise RecsysFormatError(f"movieId={row[0]!r} is not an integer", path=path, line=i + 2) from None
        genres = tuple(g for g in row[2].split("|") if g and g != NO_GENRE)
        movies[movie_id] = Movie(movie_id, row[1], genres)
    return movies


def load_movielens(data_dir: str | Path | None = None) -> tuple[Ratings, dict[int, Movie]]:
    """Ratings and movies of ``ml-latest-small`` from the data directory."""
    folder = movielens_dir(data_dir)
    return read_ratings(folder / "ratings.csv"), read_movies(folder / "movies.csv")
