#!/usr/bin/env bash
# Lint (ruff), type-check (mypy) and the whole test suite (slow and browser-marked tests included), after setting up .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
# setup.sh installs every extra, node's npm packages, chromium and ffmpeg: a test that finds one missing then fails
# (with the install command) instead of skipping, so this command cannot pass on a partial install
# (tests/_requirements.py).
export ABR_REQUIRE_EXTRAS=1
.venv/bin/ruff check abr simulator traces agents tests
.venv/bin/mypy abr simulator traces agents
# pytest's configuration (pyproject.toml) collects the doctests of abr, simulator, traces and agents, and tests/.
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
