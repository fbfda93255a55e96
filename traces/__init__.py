"""Data layer: trace and video types, readers and writers, the data directory, synthetic traces, downloads.

Units inside the project: seconds, bits, bits per second (see :mod:`traces.units`).
"""

from __future__ import annotations

from traces import errors, readers, units
from traces.datadir import DATA_DIR_ENV, data_dir, list_trace_files, resolve_traces, resolve_video
from traces.download import REGISTRY, DatasetSpec, download_dataset
from traces.errors import ConfigError, DataDirError, DownloadError, TraceFormatError, VideoFormatError
from traces.readers import read_trace, read_trace_dir, write_cooked_trace
from traces.synthetic import MarkovTraceConfig, generate_markov_trace, generate_trace_set
from traces.types import Trace, Video
from traces.videos import read_video, write_pensieve_video

__all__ = [
    "DATA_DIR_ENV",
    "REGISTRY",
    "ConfigError",
    "DataDirError",
    "DatasetSpec",
    "DownloadError",
    "MarkovTraceConfig",
    "Trace",
    "TraceFormatError",
    "Video",
    "VideoFormatError",
    "data_dir",
    "download_dataset",
    "errors",
    "generate_markov_trace",
    "generate_trace_set",
    "list_trace_files",
    "read_trace",
    "read_trace_dir",
    "read_video",
    "readers",
    "resolve_traces",
    "resolve_video",
    "units",
    "write_cooked_trace",
    "write_pensieve_video",
]
