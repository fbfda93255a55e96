#!/usr/bin/env bash
# Set up everything the project needs (idempotent: each step is skipped when already done):
#   - Debian's ffmpeg and chromium (the real player's content and browser), when missing and apt-get can run;
#   - the npm packages of the player page (dash.js, onnxruntime-web) from package-lock.json;
#   - .venv at the repository root with abr and its extras.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ffmpeg and chromium with apt-get (first run: about 2 minutes)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg chromium >/dev/null
  else
    echo "warning: ffmpeg and/or chromium are missing and apt-get cannot run here; the real-player commands" \
         "and their tests need them (apt-get install ffmpeg chromium)" >&2
  fi
fi

if command -v npm >/dev/null 2>&1; then
  if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.abr-lock; then
    echo "installing the player's npm packages (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >/dev/null
    cp package-lock.json node_modules/.abr-lock
  fi
else
  echo "warning: npm is missing; the player page needs dash.js from npm (npm ci)" >&2
fi

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
.venv/bin/python -m pip install --quiet -e ".[rl,ray,export,player,dev]"
echo "$want" > "$stamp"
