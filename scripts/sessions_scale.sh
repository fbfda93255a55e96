#!/usr/bin/env bash
# Issue 15's scale run: 100,000 drawn viewers x 28 days, one arm (RobustMPC), on this machine's cores, with
# `abr bench` beside it (these machines differ up to 4x in speed). The run's folder is results/sessions-scale
# (its sessions.csv has a row per view: too big to keep); docs/sessions/scale/ keeps run_time.txt
# (/usr/bin/time -v), bench.json and the run's small files.
#   USERS, DAYS, WORKERS: the run's size and processes (default 100,000 x 28, 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
USERS="${USERS:-100000}" DAYS="${DAYS:-28}" WORKERS="${WORKERS:-2}"
out=docs/sessions/scale
mkdir -p "$out"
.venv/bin/abr bench --json > "$out/bench.json"
/usr/bin/time -o "$out/run_time.txt" -v .venv/bin/abr sessions simulate --users "$USERS" --days "$DAYS" \
  --agent robustmpc --viewers drawn --seed 0 --workers "$WORKERS" --out results/sessions-scale --overwrite
for f in report.md outcomes.json policies.csv config.json retention.png; do
  cp "results/sessions-scale/$f" "$out/"
done
.venv/bin/python scripts/scale_summary.py "$out"
