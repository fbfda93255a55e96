"""What a test needs beyond the core install: skipped on a user's partial install, a failure where all is required.

The test command (``scripts/test.sh``, which ``.ci/run`` runs) installs every extra (``rl``, ``export``, ``ray``,
``player``, ``dev``), the player page's npm packages, chromium and ffmpeg, and sets ``ABR_REQUIRE_EXTRAS=1``.
With that variable set, a missing requirement fails the test (at module level: a collection error, which stops
the run) with the command that installs it, so CI cannot pass by silently skipping a suite. Without it, as on a
user's partial install, the test is skipped with the same hint.

Use these instead of ``pytest.importorskip`` and ``skipif(shutil.which(...) is None)``::

    require_module("stable_baselines3", extra="rl")       # at module level, before the imports that need it
    node = require_executable("node", hint="install Node.js (https://nodejs.org)")
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType
from typing import NoReturn

import pytest

#: Set (to anything but ``0`` or empty) by the test command: every requirement below must then be present.
REQUIRE_EXTRAS_ENV = "ABR_REQUIRE_EXTRAS"
REPO_ROOT = Path(__file__).resolve().parents[1]
SETUP_HINT = "bash scripts/setup.sh installs everything the test command needs"


def extras_required() -> bool:
    """Whether a missing requirement must fail (``ABR_REQUIRE_EXTRAS`` set) rather than skip."""
    return os.environ.get(REQUIRE_EXTRAS_ENV, "") not in ("", "0")


def missing(what: str, hint: str) -> NoReturn:
    """Skip (partial install) or fail (``ABR_REQUIRE_EXTRAS`` set) because ``what`` is missing; ``hint`` says how
    to install it. Works at module level, in fixtures and in tests."""
    message = f"{what} is missing: {hint} ({SETUP_HINT})"
    if extras_required():
        pytest.fail(f"{message}. {REQUIRE_EXTRAS_ENV} is set, so this is a failure, not a skip", pytrace=False)
    pytest.skip(message, allow_module_level=True)


def require_module(name: str, *, extra: str) -> ModuleType:
    """Import and return module ``name`` from the optional ``extra``, or skip/fail naming the extra.

    Only a missing module (:class:`ModuleNotFoundError`, e.g. torch missing under stable-baselines3) counts as a
    partial install; any other ImportError is a broken install and propagates.
    """
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        reason = str(error)  # reported below, outside the handler, so the report is one message, not a chain
    missing(f"Python module {name!r} of the {extra!r} extra ({reason})",
            f'pip install -e ".[{extra}]" (or pip install "abr-lab[{extra}]")')


def require_installed(name: str, *, extra: str) -> None:
    """Like :func:`require_module` without importing ``name``: for a module whose import must happen later, in
    the code under test (Ray reads settings from the environment when it is first imported)."""
    if importlib.util.find_spec(name) is None:
        missing(f"Python module {name!r} of the {extra!r} extra (not found)",
                f'pip install -e ".[{extra}]" (or pip install "abr-lab[{extra}]")')


def require_executable(name: str, *alternatives: str, hint: str, env: str | None = None) -> str:
    """The path of executable ``name`` (or one of ``alternatives``) on PATH, or of ``$env`` when that is set;
    else skip/fail with ``hint``."""
    configured = os.environ.get(env) if env else None
    if configured:
        if Path(configured).is_file() and os.access(configured, os.X_OK):
            return configured
        missing(f"executable {configured!r} (from ${env})", hint)
    for candidate in (name, *alternatives):
        path = shutil.which(candidate)
        if path:
            return path
    missing(f"executable {name!r} (not on PATH)", hint)


def node_modules_dir() -> Path:
    """The player page's npm packages: ``$ABR_NODE_MODULES``, else ``node_modules`` at the repository root."""
    env = os.environ.get("ABR_NODE_MODULES")
    return Path(env) if env else REPO_ROOT / "node_modules"


def require_npm_package(name: str) -> Path:
    """The folder of npm package ``name`` (from package.json) in :func:`node_modules_dir`, or skip/fail."""
    folder = node_modules_dir() / name
    if not (folder / "package.json").is_file():
        missing(f"npm package {name!r} (no {folder / 'package.json'})", "npm ci at the repository root")
    return folder


def require_ffmpeg() -> None:
    """ffmpeg and ffprobe (Debian's ffmpeg package), which make and check the player's DASH content."""
    for name in ("ffmpeg", "ffprobe"):
        require_executable(name, hint="apt-get install ffmpeg")


def require_browser() -> None:
    """What a real browser session needs: the ``player`` extra's Playwright, chromium and dash.js."""
    require_module("playwright", extra="player")
    require_executable("chromium", "chromium-browser", env="ABR_CHROMIUM", hint="apt-get install chromium")
    require_npm_package("dashjs")
