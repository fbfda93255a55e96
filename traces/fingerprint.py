"""Content fingerprints of traces: the same measurement hashes equal whatever its file name or folder.

A fingerprint is the SHA-256 hex digest of the trace's samples only: the little-endian float64 bytes of
``times_s - times_s[0]`` followed by those of ``throughput_bps``. The name, family and source path are left
out, so a copy of a trace under another name, in another folder or in another file format (when it reads to
the same numbers) has the same fingerprint; a shift of the whole trace in time does not change it either.
Any changed sample (time or throughput) gives another fingerprint. A trace scaled by a factor is other
content, so fingerprints are taken of traces as read, before any scaling.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from traces.types import Trace

#: The byte order and type the samples are hashed in (little-endian float64), whatever the platform.
_HASHED_DTYPE = np.dtype("<f8")


def trace_fingerprint(trace: Trace) -> str:
    """The SHA-256 hex digest of a trace's content (relative sample times and throughputs).

    Args:
        trace: the trace (its name, family and source are not hashed).

    Returns:
        64 lowercase hex digits.

    >>> a = Trace(np.array([0.0, 1.0, 2.0]), np.array([1e6, 2e6, 3e6]), name="a", family="fcc")
    >>> b = Trace(np.array([5.0, 6.0, 7.0]), np.array([1e6, 2e6, 3e6]), name="copy", family="other")
    >>> trace_fingerprint(a) == trace_fingerprint(b), len(trace_fingerprint(a))
    (True, 64)
    >>> trace_fingerprint(a) == trace_fingerprint(a.scaled(2.0))
    False
    """
    times = np.ascontiguousarray(trace.times_s - trace.times_s[0], dtype=_HASHED_DTYPE)
    rates = np.ascontiguousarray(trace.throughput_bps, dtype=_HASHED_DTYPE)
    digest = hashlib.sha256()
    digest.update(times.tobytes())
    digest.update(rates.tobytes())
    return digest.hexdigest()


def trace_fingerprints(traces: Iterable[Trace]) -> list[str]:
    """The sorted, de-duplicated fingerprints of ``traces``.

    >>> t = Trace(np.array([0.0, 1.0]), np.array([1e6, 1e6]))
    >>> len(trace_fingerprints([t, t]))
    1
    """
    return sorted({trace_fingerprint(t) for t in traces})
