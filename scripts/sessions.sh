#!/usr/bin/env bash
# The viewing-session figures of the README: an A/B run (bba vs robustmpc) and the sensitivity of its
# difference to the unpublished parameters, kept in docs/sessions/, then written into README.md by
# scripts/readme_sessions.py (never by hand).
#   AB_USERS, AB_DAYS: the A/B run's size (default 20,000 x 28, viewers drawn from the taste model);
#   SENS_USERS, SENS_DAYS: each sensitivity run's (default 5,000 x 28, issue 15's size, viewers drawn as in the
#   A/B run; thirteen runs: the analysis keeps a journal in results/sessions-sensitivity-SENS_USERS and an
#   interrupted one resumes when this script runs again); WORKERS: processes (default 2);
#   PARTS: which runs ("ab sensitivity" by default).
# Next to the A/B run's files: run_time.txt (/usr/bin/time of the run) and bench.json (`abr bench` on the same
# machine just before it: these machines differ up to 4x in speed).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
AB_USERS="${AB_USERS:-20000}" AB_DAYS="${AB_DAYS:-28}" SENS_USERS="${SENS_USERS:-5000}" SENS_DAYS="${SENS_DAYS:-28}"
WORKERS="${WORKERS:-2}" PARTS="${PARTS:-ab sensitivity}"
if [[ " $PARTS " == *" ab "* ]]; then
  mkdir -p docs/sessions/ab
  .venv/bin/abr bench --json > docs/sessions/ab/bench.json
  /usr/bin/time -o docs/sessions/ab/run_time.txt -v .venv/bin/abr sessions simulate --users "$AB_USERS" \
    --days "$AB_DAYS" --agent bba --agent robustmpc --viewers drawn --seed 0 --workers "$WORKERS" \
    --out "results/sessions-ab-$AB_USERS" --overwrite
  for f in report.md outcomes.json power.csv validation.json retention.csv retention.png policies.csv config.json; do
    cp "results/sessions-ab-$AB_USERS/$f" docs/sessions/ab/
  done
fi
if [[ " $PARTS " == *" sensitivity "* ]]; then
  sens="results/sessions-sensitivity-$SENS_USERS"  # no --overwrite: a run interrupted there resumes
  .venv/bin/abr sessions sensitivity --users "$SENS_USERS" --days "$SENS_DAYS" --agent bba --agent robustmpc \
    --seed 0 --viewers drawn --workers "$WORKERS" --out "$sens"
  mkdir -p docs/sessions/sensitivity
  for f in sensitivity.csv sensitivity.md sensitivity.png; do
    cp "$sens/$f" docs/sessions/sensitivity/
  done
fi
.venv/bin/python scripts/readme_sessions.py
