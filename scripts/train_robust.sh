#!/usr/bin/env bash
# The shipped policy `ppo` from scratch, everything included (one command):
#   bash scripts/train_robust.sh [RUN_DIR]        (default runs/ppo_robust)
# 1. prints `abr bench` (the machine's speed, to read the training time against);
# 2. trains agents/models/ppo_robust.toml (its broad synthetic traces are generated inside the run, seeded);
# 3. exports the best validation model (ONNX, JSON weights, encoder spec, verified test vectors) and copies
#    its inference copy (actor only) to agents/models/ppo_robust.zip, with the run's config and learning curve.
# The same seed gives the same model. Times and steps/s are printed at each step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
run="${1:-runs/ppo_robust}"
start=$(date +%s)
mkdir -p "$(dirname "$run")"
.venv/bin/abr bench --json > "$run.bench.json"
echo "abr bench (this machine's speed): $(cat "$run.bench.json")"
.venv/bin/abr train --config agents/models/ppo_robust.toml --out "$run"
.venv/bin/abr export "$run/best_model.zip" --out "$run/export" --traces fcc/test --video envivio_dash3
cp "$run/export/model_inference.zip" agents/models/ppo_robust.zip
cp "$run/config.json" agents/models/ppo_robust.config.json
cp "$run/evaluations.csv" agents/models/ppo_robust.evaluations.csv
echo "recipe wall time: $(( $(date +%s) - start )) s (training throughput: see the table title above)"
