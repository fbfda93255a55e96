"""The application layer of the ABR lab: the evaluation harness, the rollout loop and the ``abr`` CLI.

Importing ``abr`` does not import matplotlib, torch or typer: plots are drawn lazily by
:mod:`abr.report`, and the CLI lives in :mod:`abr.cli`.
"""

from __future__ import annotations

from abr.errors import (
    AbrError,
    ConfigError,
    DataDirError,
    DownloadError,
    EvaluationError,
    MissingExtraError,
    SimulationInvariantError,
    TraceFormatError,
    VideoFormatError,
)
from abr.evaluate import EvaluationResult, SessionResult, evaluate
from abr.inputs import TraceSetInput, envivio_cbr_video, load_trace_set, load_video
from simulator.rollout import run_session
from abr.stats import SummaryRow
from agents import Policy, agent_names, make_agent
from simulator import PRESETS, ChunkOutcome, QoEWeights, SessionMetrics, SimConfig, preset, session_metrics
from traces import Trace, Video

__all__ = [
    "PRESETS",
    "AbrError",
    "ChunkOutcome",
    "ConfigError",
    "DataDirError",
    "DownloadError",
    "EvaluationError",
    "EvaluationResult",
    "MissingExtraError",
    "Policy",
    "QoEWeights",
    "SessionMetrics",
    "SessionResult",
    "SimConfig",
    "SimulationInvariantError",
    "SummaryRow",
    "Trace",
    "TraceFormatError",
    "TraceSetInput",
    "Video",
    "VideoFormatError",
    "agent_names",
    "envivio_cbr_video",
    "evaluate",
    "load_trace_set",
    "load_video",
    "make_agent",
    "preset",
    "run_session",
    "session_metrics",
]
