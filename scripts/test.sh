#!/usr/bin/env bash
# Lint (ruff), type-check (mypy) and the whole test suite (slow and browser-marked tests included), after setting up .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
.venv/bin/ruff check abr simulator traces agents tests
.venv/bin/mypy abr simulator traces agents
exec .venv/bin/python -m pytest --doctest-modules abr simulator traces agents tests -p no:cacheprovider "$@"
