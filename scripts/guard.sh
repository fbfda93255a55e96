#!/usr/bin/env bash
# The guard around the shipped policy (agents/guard.py), measured, in one command:
#   bash scripts/guard.sh [OUT]        (default reports/guard, git-ignored)
# 1. the threshold, chosen on training families only: the shipped ppo inside the guard at four thresholds, ppo,
#    bola-e and robustmpc, on their train splits unscaled and scaled to 1.25 Mbit/s (plus 200 seeded synthetic
#    traces, scaled): OUT/tuning_unscaled and OUT/tuning_scaled (`abr evaluate`);
# 2. the generalisation protocol of the guarded policy (`abr generalization --guard`, the shipped policy's protocol
#    otherwise): OUT/protocol;
# 3. a comparison of its protocol figures with the unguarded policy's (docs/generalization/generalization.csv);
# and copies the reports (not the per-chunk tables) to docs/experiments/guard/ (ABR_GUARD_DOCS overrides it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
out="${1:-reports/guard}"
docs="${ABR_GUARD_DOCS:-docs/experiments/guard}"
v=py:docs/experiments/guard/variants.py
agents=(-a ppo -a bola-e -a robustmpc -a $v:max_error_0_5 -a $v:max_error_0_7 -a $v:max_error_1_0 -a $v:max_error_2_0)
mkdir -p "$out"
.venv/bin/abr bench --json > "$out/bench.json"
start=$(date +%s)
.venv/bin/abr evaluate "${agents[@]}" -t fcc/train -t norway/train -t belgium4g/train -t oboe/train \
  -t mahimahi_cellular --out "$out/tuning_unscaled"
.venv/bin/abr evaluate "${agents[@]}" -t fcc/train -t norway/train -t belgium4g/train -t oboe/train \
  -t mahimahi_cellular --synthetic 200 --scale-mean-mbps 1.25 --out "$out/tuning_scaled"
.venv/bin/abr generalization agents/models/ppo_robust.zip --guard --out "$out/protocol" \
  --held-out lumos5g,nyu_lte,ucc5g --video envivio_dash3 --scalings unscaled,scaled --preset pensieve \
  --scale-mean-mbps 1.25 --algo ppo --seed 0
.venv/bin/python scripts/compare_protocols.py docs/generalization/generalization.csv "$out/protocol/generalization.csv" \
  > "$out/comparison.md"
echo "guard runs took $(( $(date +%s) - start )) s (abr bench: $out/bench.json)"
mkdir -p "$docs/tuning_unscaled" "$docs/tuning_scaled" "$docs/protocol"
for t in tuning_unscaled tuning_scaled; do
  cp "$out/$t/report.md" "$out/$t/summary.csv" "$out/$t/sessions.csv" "$docs/$t/"
done
cp "$out"/protocol/generalization.{md,csv,json,png} "$docs/protocol/"
cp "$out/comparison.md" "$out/bench.json" "$docs/"
echo "copied to $docs"
