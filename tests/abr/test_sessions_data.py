"""MovieLens reading (clear errors on malformed files) and the catalog's titles and chunk tables."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abr.sessions.catalog import DURATION_RANGE_MIN, movielens_catalog, synthetic_catalog, title_video
from traces.errors import DataDirError, RecsysFormatError
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
    catalog = synthetic_catalog(np.random.default_rng(1), 50)
    sizes = np.outer(np.arange(1, 6), [1e6, 2e6])  # 5 distinct chunks
    base = Video(np.array([0.25e6, 0.5e6]), 4.0, sizes, name="base")
    full = title_video(catalog, 7, base)
    assert full.n_chunks == int(np.ceil(catalog.duration_s[7] / 4.0))
    offset = int(catalog.title_ids[7]) % 5
    expected_rows = (offset + np.arange(full.n_chunks)) % 5
    assert np.allclose(full.chunk_sizes_bits, sizes[expected_rows] * catalog.complexity[7])
    window = title_video(catalog, 7, base, max_duration_s=30.0)
    assert window.n_chunks == 8 and np.array_equal(window.chunk_sizes_bits, full.chunk_sizes_bits[:8])
    assert np.array_equal(window.bitrates_bps, base.bitrates_bps)
