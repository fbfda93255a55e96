"""Reading MovieLens (``ml-latest-small``): ratings and movies, as the recommender and the catalog need them.

The files live under ``<data dir>/recsys/ml-latest-small`` (see :func:`movielens_dir`); they are never part of
the repository. ``ratings.csv`` has the columns ``userId,movieId,rating,timestamp`` (rating 0.5-5 stars,
timestamp in seconds since 1970); ``movies.csv`` has ``movieId,title,genres`` (genres joined by ``|``).
A malformed file raises :class:`~traces.errors.RecsysFormatError` naming the file, the line and the field:
binary or non-UTF-8 content, ids that are not integers >= 1, negative timestamps, ratings outside 0.5-5, a
user's second rating of one movie, a movie listed twice, or a rating of a movie ``movies.csv`` does not list.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from traces._text import read_text
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


def _rows(path: Path, columns: tuple[str, ...]) -> list[tuple[int, list[str]]]:
    """The rows after the header, each with its line number; the file decoded as UTF-8 text first."""
    if not path.exists():
        raise DataDirError(f"{path} does not exist: MovieLens needs {path.name} with columns {','.join(columns)}")
    text = read_text(path, expected=f"CSV rows {','.join(columns)} (MovieLens)", error=RecsysFormatError)
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:len(columns)]) != columns:
            raise RecsysFormatError(f"expected the header {','.join(columns)}, got {','.join(header or [])!r}",
                                    path=path, line=1)
        rows = [(reader.line_num, row) for row in reader if row]
    except csv.Error as exc:
        raise RecsysFormatError(f"not valid CSV ({exc})", path=path, line=reader.line_num) from None
    if not rows:
        raise RecsysFormatError("the file has a header but no rows", path=path, line=2)
    return rows


def _integer(column: str, value: str, low: int, path: Path, line: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RecsysFormatError(f"{column}={value!r} is not an integer", path=path, line=line) from None
    if number < low:
        raise RecsysFormatError(f"{column}={number} must be an integer >= {low}", path=path, line=line)
    return number


def read_ratings(path: str | Path, movies: Collection[int] | None = None) -> Ratings:
    """Read a MovieLens ``ratings.csv``.

    Args:
        path: the file.
        movies: the ``movieId`` values of ``movies.csv``; a rating of any other movie is refused. ``None``:
            not checked.

    Raises:
        RecsysFormatError: a binary or non-UTF-8 file, a missing column, a non-integer or non-positive id, a
            non-integer or negative timestamp, a rating outside 0.5-5, a second rating of one movie by one
            user, or a movie not in ``movies`` (the message names the file, the line and the field).
    """
    path = Path(path)
    rows = _rows(path, RATINGS_COLUMNS)
    users = np.empty(len(rows), dtype=np.int64)
    movie_ids = np.empty(len(rows), dtype=np.int64)
    stars = np.empty(len(rows))
    stamps = np.empty(len(rows), dtype=np.int64)
    first_line: dict[tuple[int, int], int] = {}
    for i, (line, row) in enumerate(rows):
        if len(row) < len(RATINGS_COLUMNS):
            raise RecsysFormatError(f"expected {len(RATINGS_COLUMNS)} fields ({','.join(RATINGS_COLUMNS)}), got "
                                    f"{len(row)}", path=path, line=line)
        users[i] = user = _integer("userId", row[0], 1, path, line)
        movie_ids[i] = movie = _integer("movieId", row[1], 1, path, line)
        try:
            stars[i] = float(row[2])
        except ValueError:
            raise RecsysFormatError(f"rating={row[2]!r} is not a number", path=path, line=line) from None
        if not 0.5 <= stars[i] <= 5.0:
            raise RecsysFormatError(f"rating={row[2].strip()} must be between 0.5 and 5 stars", path=path,
                                    line=line)
        stamps[i] = _integer("timestamp", row[3], 0, path, line)  # seconds since 1970
        if movies is not None and movie not in movies:
            raise RecsysFormatError(f"movieId={movie} is not in movies.csv; remove the rating or add the movie",
                                    path=path, line=line)
        earlier = first_line.setdefault((user, movie), line)
        if earlier != line:
            raise RecsysFormatError(f"userId={user} rated movieId={movie} again (first on line {earlier}); keep one "
                                    "rating per user and movie", path=path, line=line)
    return Ratings(users, movie_ids, stars, stamps)


def read_movies(path: str | Path) -> dict[int, Movie]:
    """Read a MovieLens ``movies.csv`` into ``{movieId: Movie}``.

    Raises:
        RecsysFormatError: a binary or non-UTF-8 file, a missing field, a non-integer or non-positive
            ``movieId``, or one listed twice.
    """
    path = Path(path)
    movies: dict[int, Movie] = {}
    lines: dict[int, int] = {}
    for line, row in _rows(path, MOVIES_COLUMNS):
        if len(row) < len(MOVIES_COLUMNS):
            raise RecsysFormatError(f"expected 3 fields (movieId,title,genres), got {len(row)}", path=path, line=line)
        movie_id = _integer("movieId", row[0], 1, path, line)
        if movie_id in movies:
            raise RecsysFormatError(f"movieId={movie_id} is listed again (first on line {lines[movie_id]}); keep one "
                                    "row per movie", path=path, line=line)
        genres = tuple(g for g in row[2].split("|") if g and g != NO_GENRE)
        movies[movie_id] = Movie(movie_id, row[1], genres)
        lines[movie_id] = line
    return movies


def load_movielens(data_dir: str | Path | None = None) -> tuple[Ratings, dict[int, Movie]]:
    """Ratings and movies of ``ml-latest-small`` from the data directory."""
    folder = movielens_dir(data_dir)
    movies = read_movies(folder / "movies.csv")
    return read_ratings(folder / "ratings.csv", movies), movies
