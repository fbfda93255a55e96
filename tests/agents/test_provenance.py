"""Model provenance records: families of specs, fingerprints, fine-tuning parents, models without a record."""

from __future__ import annotations

import doctest
from pathlib import Path

import numpy as np

import agents.provenance as provenance_module
from agents.provenance import (
    PROVENANCE_ATTR,
    build_provenance,
    is_complete,
    model_provenance,
    seen_families,
    seen_fingerprints,
    spec_family,
    with_parent,
)
from traces.fingerprint import trace_fingerprint
from traces.types import Trace


def _trace(rate_mbps: float, name: str) -> Trace:
    return Trace(np.array([0.0, 1.0, 2.0]), np.array([rate_mbps, rate_mbps, 2 * rate_mbps]) * 1e6, name=name)


def test_family_of_a_spec(tmp_path: Path) -> None:
    assert spec_family("fcc/train") == "fcc"
    assert spec_family("genet_benchmark/fcc-test") == "genet_benchmark"
    folder = tmp_path / "traces" / "norway" / "test"
    folder.mkdir(parents=True)
    (folder / "t1").write_text("0 1\n1 1\n")
    assert spec_family(str(folder), data_dir=tmp_path) == "norway"  # inside the data dir: its family
    assert spec_family(str(folder)) == "test"  # outside (no data dir): the folder's name
    assert spec_family(str(folder / "t1")) == "test"  # a file: its folder's name


def test_build_provenance_records_sets_families_and_sorted_fingerprints() -> None:
    a, b, c = _trace(1.0, "a"), _trace(2.0, "b"), _trace(3.0, "c")
    prov = build_provenance([("fcc/train", [a, b]), ("synthetic", [c])], [("fcc/train", [a])],
                            {"train": {"count": 1, "seed": 4}})
    assert prov["train"]["families"] == ["fcc", "synthetic"]
    assert prov["train"]["trace_sets"] == ["fcc/train", "synthetic"]
    assert prov["train"]["n_traces"] == 3
    assert prov["train"]["fingerprints"] == sorted(trace_fingerprint(t) for t in (a, b, c))
    assert prov["validation"]["fingerprints"] == [trace_fingerprint(a)]
    assert prov["synthetic"] == {"train": {"count": 1, "seed": 4}}
    assert seen_fingerprints(prov) == {trace_fingerprint(t) for t in (a, b, c)}
    assert seen_families(prov) == {"fcc", "synthetic"}


def test_a_fine_tuned_model_has_seen_its_parents_traces() -> None:
    a, b = _trace(1.0, "a"), _trace(2.0, "b")
    parent = build_provenance([("norway/train", [a])], [("norway/train", [a])])
    child = with_parent(build_provenance([("fcc/train", [b])], [("fcc/train", [b])]), parent, "stage1.zip")
    assert seen_fingerprints(child) == {trace_fingerprint(a), trace_fingerprint(b)}
    assert seen_families(child) == {"fcc", "norway"} and is_complete(child)
    orphan = with_parent(build_provenance([("fcc/train", [b])], []), None, "shipped.zip")
    assert not is_complete(orphan) and seen_fingerprints(orphan) == {trace_fingerprint(b)}


def test_model_provenance_reads_the_attribute_and_ignores_other_values() -> None:
    class Model:
        pass

    model = Model()
    assert model_provenance(model) is None
    setattr(model, PROVENANCE_ATTR, {"something": "else"})
    assert model_provenance(model) is None
    prov = build_provenance([("fcc/train", [_trace(1.0, "a")])], [])
    setattr(model, PROVENANCE_ATTR, prov)
    assert model_provenance(model) == prov


def test_doctests() -> None:
    result = doctest.testmod(provenance_module)
    assert result.attempted > 0 and result.failed == 0
