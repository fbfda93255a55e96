"""Test vectors for the plug-in's JS: the heuristics' decisions and an RL policy's export, from Python.

:func:`write_vectors` writes into a folder what the Node tests (``tests/js``) check the plug-in against:

* ``rule_vectors.json``: whole sessions of every heuristic with a browser rule (``realistic`` preset,
  seeded synthetic traces and the Envivio video): the chunk outcomes, from which the JS replays each
  decision (the context before chunk ``k`` is outcomes ``0..k-1`` and the buffer ``outcomes[k-1].buffer_s``)
  and must choose ``outcomes[k].quality_idx``;
* the export of an RL policy (:func:`abr.training.export.export_policy`: ``weights.json``, ``encoder_spec.json``,
  ``test_vectors.json``, ``encoder_vectors.json``).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from abr.common.atomic import write_json_atomic
from abr.common.inputs import envivio_cbr_video
from abr.player.agents import BROWSER_HEURISTICS
from abr.training.export import export_policy
from abr.training.vectors import video_json
from agents.registry import SHIPPED_PPO_MODEL, make_agent
from simulator.config import preset
from simulator.rollout import run_session
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video

RULE_VECTORS = "rule_vectors.json"


def rule_vectors(agents: Sequence[str] = BROWSER_HEURISTICS, *, traces: Sequence[Trace] | None = None,
                 video: Video | None = None, seed: int = 0, n_traces: int = 4) -> dict[str, Any]:
    """Sessions of each heuristic (see the module docstring)."""
    video = video if video is not None else envivio_cbr_video()
    traces = list(traces) if traces is not None else generate_trace_set(seed, n_traces)
    config = preset("realistic")
    sessions = []
    for name in agents:
        for trace in traces:
            outcomes = run_session(make_agent(name), trace, video, config)
            sessions.append({"agent": name, "trace": trace.name, "outcomes": [o._asdict() for o in outcomes]})
    return {"video": video_json(video), "sessions": sessions}


def write_vectors(out_dir: str | Path, *, model: str | Path = SHIPPED_PPO_MODEL, video: Video | None = None,
                  traces: Sequence[Trace] | None = None, seed: int = 0) -> Path:
    """Write the rule vectors and the export of ``model`` into ``out_dir``; returns the folder.

    ``video`` and ``traces`` (default: the CBR Envivio ladder and seeded synthetic traces) are played by both.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / RULE_VECTORS, rule_vectors(video=video, traces=traces, seed=seed))
    export_policy(model, out, video=video, traces=traces, seed=seed)
    return out
