#!/usr/bin/env bash
# The shipped agent `comyco` from scratch (one command): imitation of Comyco's instant solver, no RL step.
#   bash scripts/train_comyco.sh [RUN_DIR]        (default runs/comyco)
# Prints `abr bench` (the machine's speed), trains agents/models/comyco.toml (the teacher's demonstrations,
# 5 DAgger rounds, the best fit kept; seeded: the same seed gives the same model), exports the model (ONNX,
# JSON weights, verified test vectors) and copies its inference copy, config, validation and imitation record
# to agents/models/comyco.*. The wall time is printed at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
run="${1:-runs/comyco}"
start=$(date +%s)
mkdir -p "$(dirname "$run")"
.venv/bin/abr bench --json > "$run.bench.json"
echo "abr bench (this machine's speed): $(cat "$run.bench.json")"
.venv/bin/abr train --config agents/models/comyco.toml --out "$run"
.venv/bin/abr export "$run/best_model.zip" --out "$run/export" --traces fcc/test --video envivio_dash3
cp "$run/export/model_inference.zip" agents/models/comyco.zip
cp "$run/config.json" agents/models/comyco.config.json
cp "$run/evaluations.csv" agents/models/comyco.evaluations.csv
cp "$run/imitation.json" agents/models/comyco.imitation.json
echo "recipe wall time $(( $(date +%s) - start )) s"
