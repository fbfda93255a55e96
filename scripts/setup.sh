#!/usr/bin/env bash
# Create .venv at the repository root and install abr with its extras (idempotent: skips when up to date).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
python="${PYTHON:-$(command -v python3.11 || command -v python3)}"
stamp=".venv/.abr-installed"
want="$(cat pyproject.toml | sha256sum | cut -d' ' -f1)"
if [ -x .venv/bin/python ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
echo "setting up .venv (first run: about a minute)" >&2
"$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip 2>/dev/null || true
# torch is pinned in pyproject.toml to the range of the local CPU build (a looser range pulls CUDA).
.venv/bin/python -m pip install --quiet -e ".[rl,ray,export,dev]"
echo "$want" > "$stamp"
