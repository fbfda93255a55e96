"""Every error type of the project, in one place, so callers can import them from ``abr``.

Each type subclasses a builtin, so callers can also catch broadly: bad input is a ``ValueError``
(:class:`TraceFormatError`, :class:`ConfigError`) or a ``FileNotFoundError`` (:class:`DataDirError`).

``traces/`` and ``simulator/`` each define a ``ConfigError`` (the data layer cannot import the simulator);
the simulator's is exported as :class:`ConfigError`, the data layer's as :class:`TracesConfigError`.
"""

from __future__ import annotations

from agents.errors import PolicyLoadError
from simulator.errors import ConfigError, MissingExtraError, SimulationInvariantError
from traces.errors import ConfigError as TracesConfigError
from traces.errors import DataDirError, DownloadError, TraceFormatError, VideoFormatError


class AbrError(Exception):
    """Base class of the errors raised by the application layer (``abr/``)."""


class EvaluationError(AbrError, RuntimeError):
    """A session failed during an evaluation; the message names the agent, the trace set and the trace.

    The original exception is chained as ``__cause__``.
    """


class PolicyExportError(AbrError, RuntimeError):
    """An exported policy (ONNX, JSON weights) does not reproduce the trained policy, or cannot be written."""


#: Errors caused by bad user input (a file, a name, a value): the CLI reports them in one line.
INPUT_ERRORS: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)

__all__ = [
    "INPUT_ERRORS",
    "AbrError",
    "ConfigError",
    "DataDirError",
    "DownloadError",
    "EvaluationError",
    "MissingExtraError",
    "PolicyExportError",
    "PolicyLoadError",
    "SimulationInvariantError",
    "TraceFormatError",
    "TracesConfigError",
    "VideoFormatError",
]
