"""Provenance of a trained model: which traces it was trained and validated on, by content.

A model trained by ``abr train`` carries the attribute :data:`PROVENANCE_ATTR`, a JSON-able dict that
stable-baselines3's ``model.save`` writes into the model zip (as it does the observation layout), so it survives
``load``/``save`` round trips and ``abr export``'s inference copy::

    {"format": "abr-provenance-v1",
     "train": {"families": [...], "trace_sets": [...], "n_traces": N, "fingerprints": [sorted hex digests]},
     "validation": {... the same fields ...},
     "synthetic": {"train": {"count": N, "seed": S}, ...},      # optional: seeded synthetic traces
     "init_from": {"path": "...", "provenance": {...} | None}}   # optional: the model it was fine-tuned from

Fingerprints are :func:`traces.fingerprint.trace_fingerprint` digests (content only), so a trace the model
saw is recognised under any other name or folder. The family of a trace-set spec is its first path
component under the data directory (``"fcc/train"`` -> ``"fcc"``, ``"genet_benchmark/fcc-test"`` ->
``"genet_benchmark"``); an absolute path outside the data directory is named by its folder. Synthetic traces
form the family ``"synthetic"``. Models saved before provenance existed have none (:func:`model_provenance`
returns ``None``). This module does not import ``abr``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from traces.datadir import TRACES_SUBDIR
from traces.fingerprint import trace_fingerprints
from traces.types import Trace

#: Model attribute (saved inside the zip by ``model.save``) holding the provenance dict.
PROVENANCE_ATTR = "abr_provenance"
PROVENANCE_FORMAT = "abr-provenance-v1"
#: The family of seeded synthetic traces (and the spec naming them in ``trace_sets``).
SYNTHETIC_FAMILY = "synthetic"
_PARTS = ("train", "validation")

#: A trace set as recorded: its spec (``"fcc/train"``, a path, ``"synthetic"``) and its traces.
TraceSetSpec = tuple[str, Sequence[Trace]]


def spec_family(spec: str | Path, data_dir: str | Path | None = None) -> str:
    """The family of a trace-set spec: its first path component under ``<data_dir>/traces``.

    Args:
        spec: a data-set name such as ``"fcc/train"``, or a path.
        data_dir: the data directory, to name an absolute path inside it by its family.

    Returns:
        The family; for an absolute path outside the data directory, the name of its folder (of the file's
        folder for a trace file).

    >>> spec_family("fcc/train"), spec_family("genet_benchmark/fcc-test"), spec_family("/x/y/oboe")
    ('fcc', 'genet_benchmark', 'oboe')
    >>> spec_family("/data/traces/norway/test", data_dir="/data")
    'norway'
    """
    text = str(spec)
    path = Path(text).expanduser()
    if not path.is_absolute():
        parts = [p for p in PurePosixPath(text.replace("\\", "/")).parts if p not in (".", "")]
        return parts[0] if parts else text
    if data_dir is not None:
        root = Path(data_dir).expanduser() / TRACES_SUBDIR
        for candidate, base in ((path, root), (path.resolve(), root.resolve())):
            try:
                relative = candidate.relative_to(base)
            except ValueError:
                continue
            if relative.parts:
                return relative.parts[0]
    return path.parent.name if path.is_file() else path.name


def describe_trace_sets(trace_sets: Sequence[TraceSetSpec], data_dir: str | Path | None = None) -> dict[str, Any]:
    """The provenance record of some trace sets: families, specs, trace count and sorted fingerprints.

    >>> import numpy as np
    >>> t = Trace(np.array([0.0, 1.0]), np.array([1e6, 2e6]), name="a")
    >>> d = describe_trace_sets([("fcc/train", [t]), ("norway/train", [t])])
    >>> d["families"], d["n_traces"], len(d["fingerprints"])
    (['fcc', 'norway'], 2, 1)
    """
    specs = [str(spec) for spec, _ in trace_sets]
    return {
        "families": sorted({spec_family(spec, data_dir) for spec in specs}),
        "trace_sets": specs,
        "n_traces": sum(len(traces) for _, traces in trace_sets),
        "fingerprints": trace_fingerprints(t for _, traces in trace_sets for t in traces),
    }


def build_provenance(train_sets: Sequence[TraceSetSpec], val_sets: Sequence[TraceSetSpec],
                     synthetic: Mapping[str, Any] | None = None, *,
                     data_dir: str | Path | None = None) -> dict[str, Any]:
    """The provenance dict of a training run (see the module docstring).

    Args:
        train_sets: the training sets as ``(spec, traces)``; seeded synthetic traces as ``("synthetic", traces)``.
        val_sets: the validation sets, likewise.
        synthetic: an optional JSON-able description of the synthetic traces (counts and seeds).
        data_dir: the data directory, to name absolute paths inside it by their family.

    Returns:
        A JSON-able dict.

    >>> import numpy as np
    >>> t = Trace(np.array([0.0, 1.0]), np.array([1e6, 2e6]), name="a")
    >>> p = build_provenance([("fcc/train", [t])], [("synthetic", [t])], {"validation": {"count": 1, "seed": 7}})
    >>> p["format"], p["train"]["families"], p["validation"]["families"], p["synthetic"]["validation"]["seed"]
    ('abr-provenance-v1', ['fcc'], ['synthetic'], 7)
    """
    provenance: dict[str, Any] = {
        "format": PROVENANCE_FORMAT,
        "train": describe_trace_sets(train_sets, data_dir),
        "validation": describe_trace_sets(val_sets, data_dir),
    }
    if synthetic:
        provenance["synthetic"] = dict(synthetic)
    return provenance


def with_parent(provenance: Mapping[str, Any], parent: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
    """``provenance`` of a fine-tuning run, recording the provenance of the model it started from.

    A fine-tuned model has seen its parent's traces too: :func:`seen_fingerprints` and :func:`seen_families`
    include them, and a parent without provenance makes the record incomplete (:func:`is_complete`).

    >>> child = with_parent({"format": PROVENANCE_FORMAT}, None, "old.zip")
    >>> child["init_from"], is_complete(child)
    ({'path': 'old.zip', 'provenance': None}, False)
    """
    return {**provenance, "init_from": {"path": str(path), "provenance": None if parent is None else dict(parent)}}


def model_provenance(model: Any) -> dict[str, Any] | None:
    """The provenance dict a model carries, or ``None`` (a model saved before provenance was recorded).

    >>> class M: pass
    >>> model_provenance(M()) is None
    True
    """
    stored = getattr(model, PROVENANCE_ATTR, None)
    if not isinstance(stored, Mapping) or stored.get("format") != PROVENANCE_FORMAT:
        return None
    return dict(stored)


def _lineage(provenance: Mapping[str, Any] | None) -> list[Mapping[str, Any] | None]:
    """The record and those of the models it was fine-tuned from (``None`` where one has no record)."""
    chain: list[Mapping[str, Any] | None] = []
    current = provenance
    while current is not None:
        chain.append(current)
        parent = current.get("init_from")
        current = parent.get("provenance") if isinstance(parent, Mapping) else None
        if isinstance(parent, Mapping) and current is None:
            chain.append(None)
    return chain


def is_complete(provenance: Mapping[str, Any] | None) -> bool:
    """Whether the provenance is known for the model and every model it was fine-tuned from.

    >>> is_complete(None), is_complete({"format": PROVENANCE_FORMAT})
    (False, True)
    """
    chain = _lineage(provenance)
    return bool(chain) and all(p is not None for p in chain)


def seen_fingerprints(prov: Mapping[str, Any] | None) -> frozenset[str]:
    """Every fingerprint the model was trained or validated on (its parents' included); empty without provenance.

    >>> seen_fingerprints({"train": {"fingerprints": ["a"]}, "validation": {"fingerprints": ["b"]}}) == {"a", "b"}
    True
    """
    return frozenset(fp for p in _lineage(prov) if p is not None for part in _PARTS
                     for fp in (p.get(part) or {}).get("fingerprints", ()))


def seen_families(prov: Mapping[str, Any] | None) -> frozenset[str]:
    """Every family the model was trained or validated on (its parents' included); empty without provenance.

    >>> sorted(seen_families({"train": {"families": ["fcc"]}, "validation": {"families": ["norway"]}}))
    ['fcc', 'norway']
    """
    return frozenset(f for p in _lineage(prov) if p is not None for part in _PARTS
                     for f in (p.get(part) or {}).get("families", ()))


def provenance_summary(prov: Mapping[str, Any] | None) -> dict[str, Any]:
    """A short JSON-able summary (no fingerprints) for reports.

    >>> provenance_summary(None)
    {'recorded': False}
    """
    if prov is None:
        return {"recorded": False}
    summary: dict[str, Any] = {"recorded": True, "complete": is_complete(prov)}
    for part in _PARTS:
        record = prov.get(part) or {}
        summary[part] = {"families": list(record.get("families", [])), "trace_sets": list(record.get("trace_sets", [])),
                         "n_traces": record.get("n_traces"), "n_fingerprints": len(record.get("fingerprints", []))}
    if prov.get("synthetic"):
        summary["synthetic"] = prov["synthetic"]
    parent = prov.get("init_from")
    if isinstance(parent, Mapping):
        summary["init_from"] = {"path": parent.get("path"), "provenance": provenance_summary(parent.get("provenance"))}
    return summary
