#!/usr/bin/env bash
# The whole test suite (slow and browser-marked tests included), after setting up .venv.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
exec .venv/bin/python -m pytest --doctest-modules abr simulator traces agents tests -p no:cacheprovider "$@"
