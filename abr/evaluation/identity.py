"""What identifies an evaluation's inputs, for the hashes that decide whether a run resumes or is another run.

The journal's fingerprint (:mod:`abr.evaluation.journal`), the benchmark's and the generalisation protocol's run
fingerprints all hash the same things the same way: the samples of every trace, and the code an agent plays
(the model file it loads, the source file of a ``py:`` agent, also inside ``guarded:``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from agents.external import code_hash
from agents.registry import agent_model_file, unguarded
from traces.types import Trace


def update_with_traces(digest: Any, traces: Iterable[Trace]) -> None:
    """Feed each trace's name and samples to ``digest`` (a :mod:`hashlib` object), in order."""
    for trace in traces:
        digest.update(trace.name.encode() + trace.times_s.tobytes() + trace.throughput_bps.tobytes())


def agent_code(agent: str) -> tuple[bytes | None, str | None]:
    """``(SHA-256 of the model file the agent loads, SHA-256 hex of its py: code file)``, each ``None`` if none.

    >>> agent_code("bba")
    (None, None)
    """
    file = agent_model_file(agent)
    model = hashlib.sha256(file.read_bytes()).digest() if file is not None and file.is_file() else None
    return model, code_hash(unguarded(agent))
