#!/usr/bin/env bash
# The generalisation report of the shipped policy: in-distribution test sets and out-of-distribution families.
# The OOD families are measured on networks 2x-400x faster than FCC/Norway (belgium4g ~28 Mbit/s, lumos5g ~510
# Mbit/s mean), where every agent would sit at the top of the Envivio ladder; each is scaled by one factor per set
# to a time-weighted mean of 1.25 Mbit/s (that of fcc/test + norway/test), keeping its own variability. Oboe
# (2.7 Mbit/s) is also evaluated unscaled.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
out="${1:-reports/generalization}"
agents=()
for a in ppo robustmpc bola-e dynamic bba rb optimal; do agents+=(--agent "$a"); done
.venv/bin/abr evaluate "${agents[@]}" --traces fcc/test --traces norway/test --video envivio_dash3 \
  --preset pensieve --out "$out/in_distribution"
.venv/bin/abr evaluate "${agents[@]}" --traces oboe/test --traces belgium4g/test --traces nyu_lte/test \
  --traces lumos5g/test --traces ucc5g/test --scale-mean-mbps 1.25 --video envivio_dash3 \
  --preset pensieve --out "$out/ood_scaled"
.venv/bin/abr evaluate "${agents[@]}" --traces oboe/test --video envivio_dash3 --preset pensieve \
  --out "$out/oboe_unscaled"
