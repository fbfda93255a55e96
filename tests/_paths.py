"""Comparing paths in tests: by the place they name, not by their spelling."""

from __future__ import annotations

import os
from pathlib import Path


def same_path(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name the same place: both resolved, so a symlinked temporary folder, ``..``,
    a trailing slash or a relative spelling does not make equal paths differ.

    >>> same_path("/tmp/x/", "/tmp/y/../x")
    True
    """
    return Path(a).resolve() == Path(b).resolve()
