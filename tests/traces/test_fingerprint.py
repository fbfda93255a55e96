"""Content fingerprints of traces: equal for the same samples under any name or folder, different otherwise."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np

import traces.fingerprint as fingerprint_module
from traces.fingerprint import trace_fingerprint, trace_fingerprints
from traces.readers import read_trace
from traces.types import Trace


def _write(path: Path, rows: list[tuple[float, float]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{t}\t{r}\n" for t, r in rows))
    return path


ROWS = [(0.0, 1.5), (1.0, 0.7), (2.0, 2.25), (3.0, 0.4)]


def test_the_same_content_under_another_name_and_folder_hashes_equal(tmp_path: Path) -> None:
    a = read_trace(_write(tmp_path / "fcc" / "train" / "trace_1", ROWS))
    b = read_trace(_write(tmp_path / "elsewhere" / "copy_of_it.log", ROWS))
    assert (a.name, a.source) != (b.name, b.source)
    assert trace_fingerprint(a) == trace_fingerprint(b)
    shifted = Trace(a.times_s + 100.0, a.throughput_bps, name="later")
    assert trace_fingerprint(shifted) == trace_fingerprint(a)  # only relative times are hashed


def test_one_changed_sample_changes_the_hash(tmp_path: Path) -> None:
    base = read_trace(_write(tmp_path / "a", ROWS))
    rate_changed = read_trace(_write(tmp_path / "b", [*ROWS[:2], (2.0, 2.26), ROWS[3]]))
    time_changed = read_trace(_write(tmp_path / "c", [*ROWS[:2], (2.5, 2.25), ROWS[3]]))
    digests = {trace_fingerprint(t) for t in (base, rate_changed, time_changed)}
    assert len(digests) == 3


def test_the_digest_is_sha256_of_the_little_endian_samples() -> None:
    import hashlib

    trace = Trace(np.array([2.0, 3.0, 5.0]), np.array([1e6, 2e6, 3e6]))
    expected = hashlib.sha256(np.array([0.0, 1.0, 3.0], "<f8").tobytes() + np.array([1e6, 2e6, 3e6], "<f8").tobytes())
    assert trace_fingerprint(trace) == expected.hexdigest()
    assert trace_fingerprints([trace, trace]) == [expected.hexdigest()]


def test_doctests() -> None:
    result = doctest.testmod(fingerprint_module)
    assert result.attempted > 0 and result.failed == 0
