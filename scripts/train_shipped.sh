#!/usr/bin/env bash
# The steps every shipped policy's recipe shares (scripts/train_robust.sh, scripts/train_comyco.sh call it):
#   bash scripts/train_shipped.sh NAME RUN_DIR
# 1. prints `abr bench` (the machine's speed, to read the training time against) into RUN_DIR.bench.json;
# 2. trains agents/models/NAME.toml into RUN_DIR (seeded: the same seed gives the same model);
# 3. exports the best validation model (ONNX, JSON weights, encoder spec, verified test vectors) and copies its
#    inference copy (actor only) to agents/models/NAME.zip, with the run's config, validation curve and, where
#    the run had an imitation stage, its record (NAME.config.json, NAME.evaluations.csv, NAME.imitation.json).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
name="$1"
run="$2"
bash scripts/setup.sh
source scripts/env.sh
mkdir -p "$(dirname "$run")"
.venv/bin/abr bench --json > "$run.bench.json"
echo "abr bench (this machine's speed): $(cat "$run.bench.json")"
.venv/bin/abr train --config "agents/models/$name.toml" --out "$run"
.venv/bin/abr export "$run/best_model.zip" --out "$run/export" --traces fcc/test --video envivio_dash3
cp "$run/export/model_inference.zip" "agents/models/$name.zip"
cp "$run/config.json" "agents/models/$name.config.json"
cp "$run/evaluations.csv" "agents/models/$name.evaluations.csv"
if [ -f "$run/imitation.json" ]; then cp "$run/imitation.json" "agents/models/$name.imitation.json"; fi
