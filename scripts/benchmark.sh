#!/usr/bin/env bash
# The leaderboard, in one command:
#   bash scripts/benchmark.sh [OUT]        (default reports/benchmark, git-ignored)
# 1. `abr bench --json` (this machine's speed, to read the runtime against) into OUT.bench.json;
# 2. `abr benchmark --out OUT`: every agent (the zoo, soda, predictor-mpc, the shipped ppo, the optimum) over the
#    standard suite (abr/evaluation/benchmark.py); an interrupted run resumes when the command is run again;
# 3. copies leaderboard.{md,csv,json,png} and the bench figures to docs/benchmark/ (ABR_BENCHMARK_DOCS overrides
#    it), to be committed: the README links them, and types none of their numbers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
out="${1:-reports/benchmark}"
docs="${ABR_BENCHMARK_DOCS:-docs/benchmark}"
mkdir -p "$(dirname "$out")"
.venv/bin/abr bench --json > "$out.bench.json"
echo "abr bench (this machine's speed): $(cat "$out.bench.json")"
.venv/bin/abr benchmark --out "$out"
mkdir -p "$docs"
for ext in md csv json png; do
  cp "$out/leaderboard.$ext" "$docs/leaderboard.$ext"
done
cp "$out.bench.json" "$docs/bench.json"
echo "leaderboard copied to $docs/leaderboard.{md,csv,json,png} (and $docs/bench.json), to be committed"
