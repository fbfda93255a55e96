#!/usr/bin/env bash
# The main job: set up, then evaluate the agents on the default traces and write a report folder.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
out="${1:-reports/main}"
# The shipped PPO policy, the heuristic zoo and the offline optimum (the QoE ceiling of "% of optimum").
agents=()
for a in ppo bba rb throughput bola bola-e dynamic fastmpc robustmpc fixed random optimal; do agents+=(--agent "$a"); done
if [ -n "${ABR_DATA_DIR:-}" ] && [ -d "$ABR_DATA_DIR/traces/fcc/test" ]; then
  echo "data directory: $ABR_DATA_DIR" >&2
  exec .venv/bin/abr evaluate "${agents[@]}" \
    --traces fcc/test --traces norway/test \
    --traces genet_benchmark/fcc-test --traces genet_benchmark/norway-test \
    --video envivio_dash3 --preset pensieve --out "$out"
else
  echo "no data directory (set ABR_DATA_DIR): evaluating on 100 seeded synthetic traces" >&2
  exec .venv/bin/abr evaluate "${agents[@]}" --synthetic 100 --preset pensieve --out "$out"
fi
