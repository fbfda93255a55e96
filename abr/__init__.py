"""The application layer of the ABR lab; its folders are its parts:

* :mod:`abr.cli`: every ``abr`` command (one module per command group) and the options they share;
* :mod:`abr.evaluation`: the harness, its engines (serial, local processes, Ray), the resume journal,
  statistics, comparisons, the report, the generalisation protocol and the engine benchmarks;
* :mod:`abr.training`: training runs, their config, environments and callbacks, the policy export;
* :mod:`abr.player`: the real web player (content, server, chromium sessions, fidelity);
* :mod:`abr.sessions`: the viewer population (recommender, households on shared links, engagement);
* :mod:`abr.common`: inputs by name, atomic writes, provenance, output-folder claims, memory estimates,
  figures; :mod:`abr.errors`: every error type.

Importing ``abr`` does not import matplotlib, torch or typer. Module paths of earlier versions (``abr.evaluate``,
``abr.train``, ``abr.export``, ...; :data:`MOVED_MODULES`) still import, as aliases of their new places, so code
and pickled checkpoints that name them keep working.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

from abr.common.inputs import TraceSetInput, envivio_cbr_video, load_trace_set, load_video
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
from abr.evaluation.harness import EvaluationResult, SessionResult, evaluate
from abr.evaluation.stats import SummaryRow
from agents import Policy, agent_names, make_agent
from simulator import PRESETS, ChunkOutcome, QoEWeights, SessionMetrics, SimConfig, preset, session_metrics
from simulator.rollout import run_session
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


#: Old module path -> its new place (aliases: ``import abr.train`` gives :mod:`abr.training.run`).
MOVED_MODULES: dict[str, str] = {
    "abr._atomic": "abr.common.atomic",
    "abr.provenance": "abr.common.provenance",
    "abr.run_folder": "abr.common.run_folder",
    "abr._memory": "abr.common.memory",
    "abr.inputs": "abr.common.inputs",
    "abr._cli_common": "abr.cli.common",
    "abr.cli_data": "abr.cli.data",
    "abr.cli_generalization": "abr.cli.generalization",
    "abr.cli_player": "abr.cli.player",
    "abr.cli_rl": "abr.cli.training",
    "abr.cli_sessions": "abr.cli.sessions",
    "abr.evaluate": "abr.evaluation.harness",
    "abr.engines": "abr.evaluation.engines",
    "abr.journal": "abr.evaluation.journal",
    "abr.stats": "abr.evaluation.stats",
    "abr.compare": "abr.evaluation.compare",
    "abr.report": "abr.evaluation.report",
    "abr.bench": "abr.evaluation.bench",
    "abr.generalization_report": "abr.evaluation.generalization_report",
    "abr.generalization_stats": "abr.evaluation.generalization_stats",
    "abr.generalization": "abr.evaluation.generalization",
    "abr.train_config": "abr.training.config",
    "abr.train_env": "abr.training.envs",
    "abr._train_callbacks": "abr.training.callbacks",
    "abr._policy_weights": "abr.training.weights",
    "abr.export": "abr.training.export",
    "abr.train": "abr.training.run",
    "abr.rollout": "simulator.rollout",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Imports an old module path as the module at its new place (the same module object)."""

    def find_spec(self, fullname: str, path: object = None,
                  target: object = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in MOVED_MODULES:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return importlib.import_module(MOVED_MODULES[spec.name])

    def exec_module(self, module: types.ModuleType) -> None:
        return None


class _AbrPackage(types.ModuleType):
    """The ``abr`` package: importing an old module path must not replace a public name (``abr.evaluate``)."""

    def __setattr__(self, name: str, value: object) -> None:
        if name in __all__ and isinstance(value, types.ModuleType) and name in self.__dict__:
            return
        super().__setattr__(name, value)


if not any(isinstance(finder, _MovedModuleFinder) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
sys.modules[__name__].__class__ = _AbrPackage
