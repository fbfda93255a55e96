"""Every error type of the project, in one place, so callers can import them from ``abr``.

Each type subclasses a builtin, so callers can also catch broadly: bad input is a ``ValueError``
(:class:`TraceFormatError`, :class:`ConfigError`) or a ``FileNotFoundError`` (:class:`DataDirError`).

There is one :class:`ConfigError`: the data layer defines it (:class:`traces.errors.ConfigError`, the lowest
layer, so every layer can raise it), and ``simulator.errors`` and this module re-export that same class; one
``except ConfigError`` catches a bad value from any layer. :class:`TracesConfigError` is the same class again,
under the name this module once gave the data layer's copy (kept so old imports still work).
"""

from __future__ import annotations

from agents.errors import PolicyLoadError
from simulator.errors import MissingExtraError, SimulationInvariantError
from traces.errors import ConfigError, DataDirError, DownloadError, TraceFormatError, VideoFormatError

#: The same class as :class:`ConfigError` (an older name, kept for old imports).
TracesConfigError = ConfigError


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
