"""Errors raised by the data layer. Each subclasses a builtin so callers can catch broadly."""

from __future__ import annotations

from pathlib import Path


class TraceFormatError(ValueError):
    """A trace or video file is malformed. The message names the file, the line and the fix."""

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None) -> None:
        self.path = None if path is None else str(path)
        self.line = line
        where = ""
        if self.path is not None:
            where = self.path if line is None else f"{self.path}:{line}"
            where += ": "
        super().__init__(where + message)


class VideoFormatError(TraceFormatError):
    """A video manifest or chunk-size table is malformed."""


class DataDirError(FileNotFoundError):
    """The data directory, or a dataset inside it, cannot be found."""


class DownloadError(RuntimeError):
    """A dataset download failed (network error, checksum mismatch, unsafe archive)."""


class ConfigError(ValueError):
    """A configuration value is out of range or unknown. The message names the field, the value and the fix.

    Args:
        message: what is wrong and how to fix it.
        field: the offending field name, if any.
        value: the offending value, if any.
    """

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(message)


class RecsysFormatError(TraceFormatError):
    """A recommender data file (MovieLens ``ratings.csv``/``movies.csv``) is malformed."""
