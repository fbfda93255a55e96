"""The ABR simulation model: link, player, QoE, the SimPy session core and the Gymnasium environments."""

from simulator.config import PRESETS, SimConfig, preset
from simulator.context import PlayerContext
from simulator.des import Session
from simulator.errors import ConfigError, MissingExtraError, SimulationInvariantError
from simulator.fast import BatchedSessions, ChunkBatch
from simulator.metrics import SessionMetrics, session_metrics
from simulator.qoe import QoETerms, QoEWeights, qoe_terms
from simulator.records import ChunkOutcome
from simulator.registration import register_envs

__all__ = [
    "PRESETS",
    "BatchedSessions",
    "ChunkBatch",
    "ChunkOutcome",
    "ConfigError",
    "MissingExtraError",
    "PlayerContext",
    "QoETerms",
    "QoEWeights",
    "Session",
    "SessionMetrics",
    "SimConfig",
    "SimulationInvariantError",
    "preset",
    "qoe_terms",
    "register_envs",
    "session_metrics",
]

register_envs()
