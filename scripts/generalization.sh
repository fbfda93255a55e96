#!/usr/bin/env bash
# Every generalisation figure of a model, in one command:
#   bash scripts/generalization.sh [MODEL] [OUT]
# MODEL (omitted or ""): agents/models/ppo_robust.zip (made by scripts/train_robust.sh), or when it does not
#   exist the shipped `ppo` model (agents.registry.SHIPPED_PPO_MODEL). OUT: default reports/generalization
#   (git-ignored).
# Runs `abr generalization` (see abr/evaluation/generalization.py) three times:
#   1. OUT/: envivio_dash3 on the default sets (the test split of every family in the data directory, plus
#      every file of each default family the model never saw), lumos5g, nyu_lte and ucc5g held out whole;
#      unscaled and scaled to 1.25 Mbit/s;
#   2. OUT/<title>/ for the MERINA titles merina_avengers and merina_ssb_sita_sings_the_blues: fcc/test and
#      norway/test, unscaled only, with the Envivio ladder (their folders have no ladder file; their
#      PROVENANCE.md names it); these runs add the titles check (model >= robustmpc on fcc/test+norway/test).
# Then copies each run's small files, generalization.{md,csv,json,png} (not the sessions/chunks tables under
# unscaled/ and scaled/), to docs/generalization/ (envivio) and docs/generalization/<title>/, to be committed;
# ABR_GENERALIZATION_DOCS overrides that folder; with the default folder the README block between the
# generalization:begin/end markers is rewritten from them (scripts/readme_generalization.py). An interrupted run
# resumes when the command is run again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
model="${1:-}"  # empty: the default (so that OUT can be given alone: bash scripts/generalization.sh "" OUT)
if [ -z "$model" ]; then
  model=agents/models/ppo_robust.zip
  if [ ! -f "$model" ]; then
    model="$(.venv/bin/python -c 'from agents.registry import SHIPPED_PPO_MODEL; print(SHIPPED_PPO_MODEL)')"
    echo "agents/models/ppo_robust.zip not found (bash scripts/train_robust.sh makes it): using the shipped" \
         "ppo model $model" >&2
  fi
fi
out="${2:-reports/generalization}"
docs="${ABR_GENERALIZATION_DOCS:-docs/generalization}"
titles=(merina_avengers merina_ssb_sita_sings_the_blues)
envivio_ladder_kbps=300,750,1200,1850,2850,4300  # the MERINA titles' ladder (their PROVENANCE.md)

.venv/bin/abr generalization "$model" --out "$out" --video envivio_dash3 --held-out lumos5g,nyu_lte,ucc5g
for title in "${titles[@]}"; do
  .venv/bin/abr generalization "$model" --out "$out/$title" --traces fcc/test --traces norway/test \
    --video "$title" --ladder-kbps "$envivio_ladder_kbps" --scalings unscaled
done

copy_report() {  # copy_report FROM TO: the four generalization.* files of one run
  mkdir -p "$2"
  for ext in md csv json png; do
    cp "$1/generalization.$ext" "$2/generalization.$ext"
  done
  echo "  $2/generalization.{md,csv,json,png}  (from $1)"
}
echo "generalisation reports copied, to be committed (the evaluations stay under $out):"
copy_report "$out" "$docs"
for title in "${titles[@]}"; do
  copy_report "$out/$title" "$docs/$title"
done
# The README's generalisation block is generated from these files, never typed by hand.
if [ "$docs" = "docs/generalization" ]; then
  .venv/bin/python scripts/readme_generalization.py "$docs" README.md
fi
