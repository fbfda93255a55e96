"""MovieLens reading (clear errors on malformed files) and the catalog's titles and chunk tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abr.sessions.catalog import DURATION_RANGE_MIN, Catalog, movielens_catalog, title_video
from traces.errors import ConfigError, DataDirError, RecsysFormatError
from traces.movielens import load_movielens, read_movies, read_ratings
from traces.types import Video


def test_movielens_is_read_and_the_catalog_follows_it(data_dir: Path) -> None:
    ratings, movies = load_movielens(data_dir)
    assert len(ratings) == 100836 and len(movies) == 9742
    catalog = movielens_catalog(ratings, movies, np.random.default_rng(0), min_ratings=5)
    counts = {int(m): int(c) for m, c in zip(*np.unique(ratings.movie_ids, return_counts=True))}
    assert len(catalog) == sum(c >= 5 for c in counts.values())
    i = int(np.flatnonzero(catalog.title_ids == 1)[0])  # Toy Story
    assert catalog.popularity[i] == counts[1] and "Animation" in catalog.genres[i]
    minutes = catalog.duration_s / 60
    assert minutes.min() >= DURATION_RANGE_MIN[0] and minutes.max() <= DURATION_RANGE_MIN[1]
    animation = np.array(["Animation" in g for g in catalog.genres])
    war = np.array(["War" in g for g in catalog.genres])
    assert np.median(minutes[war]) > np.median(minutes[animation])


@pytest.mark.parametrize(("content", "message"), [
    ("userId,movieId,stars,timestamp\n1,1,4.0,5\n", "expected the header userId,movieId,rating,timestamp"),
    ("userId,movieId,rating,timestamp\n1,1,4.0,5\n1,x,3.0,6\n", r"ratings.csv:3: movieId='x' is not an integer"),
    ("userId,movieId,rating,timestamp\n1,1,7.0,5\n", r"ratings.csv:2: rating=7.0 must be between 0.5 and 5"),
    ("userId,movieId,rating,timestamp\n1,1,4.0\n", r"ratings.csv:2: expected 4 fields"),
    ("userId,movieId,rating,timestamp\n", "no rows"),
])
def test_malformed_ratings_name_the_file_line_and_field(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "ratings.csv"
    path.write_text(content)
    with pytest.raises(RecsysFormatError, match=message):
        read_ratings(path)


def test_malformed_movies_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "movies.csv").write_text("movieId,title,genres\nabc,Film,Drama\n")
    with pytest.raises(RecsysFormatError, match=r"movies.csv:2: movieId='abc'"):
        read_movies(tmp_path / "movies.csv")
    with pytest.raises(DataDirError, match="ratings.csv"):
        read_ratings(tmp_path / "ratings.csv")
    with pytest.raises(DataDirError, match="no MovieLens data"):
        load_movielens(tmp_path)


def test_a_title_plays_the_base_table_tiled_and_scaled() -> None:
    # A hand-made catalog: title 0 (id 0, 8 s, complexity 1) and title 1 (id 13, 27 s, complexity 1.5).
    catalog = Catalog(np.array([0, 13]), ("zero", "thirteen"), (("Drama",), ("Action",)), np.array([8.0, 27.0]),
                      np.array([1.0, 1.0]), np.array([1.0, 1.5]), "synthetic")
    sizes = np.outer(np.arange(1, 6), [1e6, 2e6])  # 5 distinct chunks of 4 s: row r is (r + 1) x [1, 2] Mbit
    base = Video(np.array([0.25e6, 0.5e6]), 4.0, sizes, name="base")
    # Title 1: ceil(27 / 4) = 7 chunks, starting at row 13 mod 5 = 3 and wrapping: rows 3 4 0 1 2 3 4, x 1.5.
    full = title_video(catalog, 1, base)
    assert full.chunk_sizes_bits.tolist() == [[6e6, 12e6], [7.5e6, 15e6], [1.5e6, 3e6], [3e6, 6e6],
                                              [4.5e6, 9e6], [6e6, 12e6], [7.5e6, 15e6]]
    assert full.name == "base:title13" and full.bitrates_bps.tolist() == [0.25e6, 0.5e6]
    # Its first 10 s: ceil(10 / 4) = 3 chunks.
    window = title_video(catalog, 1, base, max_duration_s=10.0)
    assert window.chunk_sizes_bits.tolist() == [[6e6, 12e6], [7.5e6, 15e6], [1.5e6, 3e6]]
    # Title 0: exactly 8 s is 2 chunks (not 3), from row 0, unscaled.
    assert title_video(catalog, 0, base).chunk_sizes_bits.tolist() == [[1e6, 2e6], [2e6, 4e6]]
    with pytest.raises(ConfigError, match="title_idx=2 is not in the 2-title catalog"):
        title_video(catalog, 2, base)
