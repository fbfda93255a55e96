"""MovieLens files that are not what they claim: refused naming the file, the line and the field."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from traces.errors import RecsysFormatError
from traces.movielens import load_movielens, read_movies, read_ratings

HEADER = "userId,movieId,rating,timestamp\n"


def _ratings(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(HEADER + body)
    return path


def test_binary_garbage_names_the_file_and_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_bytes(HEADER.encode() + b"1,1,4.0,5\n\xa6\xff\x13garbage\n")
    with pytest.raises(RecsysFormatError, match=re.escape(f"{path}:3: cannot be decoded as UTF-8 text (bad byte "
                                                          "0xa6")):
        read_ratings(path)
    path.write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(RecsysFormatError, match=re.escape(f"{path}:1: looks like a binary file")):
        read_ratings(path)
    movies = tmp_path / "movies.csv"
    movies.write_bytes(b"movieId,title,genres\n1,Caf\xe9,Drama\n")  # Latin-1, not UTF-8
    with pytest.raises(RecsysFormatError, match=re.escape(f"{movies}:2: cannot be decoded as UTF-8")):
        read_movies(movies)


@pytest.mark.parametrize(("body", "message"), [
    ("1,1,4.0,5\n1,2,3.0,-7\n", "ratings.csv:3: timestamp=-7 must be an integer >= 0"),
    ("1,1,4.0,5\n-2,2,3.0,7\n", "ratings.csv:3: userId=-2 must be an integer >= 1"),
    ("1,0,4.0,5\n", "ratings.csv:2: movieId=0 must be an integer >= 1"),
    ("1,1,4.0,5\n2,1,3.0,6\n1,1,2.5,9\n", r"ratings.csv:4: userId=1 rated movieId=1 again \(first on line 2\)"),
    ("1,1,nan,5\n", "ratings.csv:2: rating=nan must be between 0.5 and 5"),
    ("1,1,four,5\n", "ratings.csv:2: rating='four' is not a number"),
])
def test_out_of_range_and_duplicate_ratings_are_refused(tmp_path, body, message):
    with pytest.raises(RecsysFormatError, match=message):
        read_ratings(_ratings(tmp_path, body))


def test_a_rating_of_an_unknown_movie_is_refused(tmp_path):
    (tmp_path / "movies.csv").write_text("movieId,title,genres\n1,A,Drama\n2,B,Comedy\n")
    path = _ratings(tmp_path, "1,1,4.0,5\n1,2,3.0,6\n2,99,3.0,6\n")
    with pytest.raises(RecsysFormatError, match=r"ratings.csv:4: movieId=99 is not in movies.csv"):
        read_ratings(path, read_movies(tmp_path / "movies.csv"))
    assert len(read_ratings(path)) == 3  # without the movie list, nothing to check them against


def test_load_movielens_checks_ratings_against_movies(tmp_path):
    folder = tmp_path / "recsys" / "ml-latest-small"
    folder.mkdir(parents=True)
    (folder / "movies.csv").write_text("movieId,title,genres\n1,A,Drama\n")
    (folder / "ratings.csv").write_text(HEADER + "1,1,4.0,5\n1,7,3.0,6\n")
    with pytest.raises(RecsysFormatError, match=r"ratings.csv:3: movieId=7 is not in movies.csv"):
        load_movielens(tmp_path)
    (folder / "ratings.csv").write_text(HEADER + "1,1,4.0,5\n")
    ratings, movies = load_movielens(tmp_path)
    assert ratings.movie_ids.tolist() == [1] and set(movies) == {1}


def test_a_movie_listed_twice_is_refused(tmp_path):
    path = tmp_path / "movies.csv"
    path.write_text('movieId,title,genres\n1,A,Drama\n2,"B, the sequel",Comedy\n1,A again,Drama\n')
    with pytest.raises(RecsysFormatError, match=r"movies.csv:4: movieId=1 is listed again \(first on line 2\)"):
        read_movies(path)


def test_the_shared_movielens_data_still_loads(shared_data_dir):
    ratings, movies = load_movielens(shared_data_dir)
    assert len(ratings) == 100836 and len(movies) == 9742
    assert set(ratings.movie_ids.tolist()) <= set(movies)
    assert ratings.timestamps_s.min() >= 0
