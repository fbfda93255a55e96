"""What to record next to every result: package versions, the git commit and the time of the run."""

from __future__ import annotations

import datetime as _dt
import logging
import platform
import subprocess
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

#: Distributions whose versions are recorded, by the name used in ``config.json``.
RECORDED_DISTRIBUTIONS: dict[str, str] = {
    "abr": "abr-lab",
    "numpy": "numpy",
    "simpy": "simpy",
    "gymnasium": "gymnasium",
}
_GIT_TIMEOUT_S = 5.0


def package_versions() -> dict[str, str | None]:
    """Installed versions of the recorded distributions (``None`` if not installed), and Python's.

    >>> sorted(package_versions())
    ['abr', 'gymnasium', 'numpy', 'python', 'simpy']
    """
    versions: dict[str, str | None] = {}
    for key, dist in RECORDED_DISTRIBUTIONS.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[key] = None
    versions["python"] = platform.python_version()
    return versions


def git_state(where: str | Path | None = None) -> dict[str, str | bool | None]:
    """The commit hash of the repository holding ``where`` (default: this package) and whether it is dirty.

    Returns ``{"commit": None, "dirty": None}`` outside a git work tree or without git.
    """
    folder = Path(where) if where is not None else Path(__file__).resolve().parent
    commit = _git(folder, "rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "dirty": None}
    status = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return {"commit": commit, "dirty": None if status is None else bool(status)}


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True,
                              timeout=_GIT_TIMEOUT_S, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        logger.debug("git %s failed: %s", " ".join(args), exc)
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip()


def utc_timestamp() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
