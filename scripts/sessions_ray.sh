#!/usr/bin/env bash
# Ray = local at scale: the same viewer population played by local worker processes and by a local Ray instance,
# every table compared byte for byte; writes docs/sessions/ray/ray_vs_local.md (ABR_SESSIONS_RAY_DOCS overrides it).
#   bash scripts/sessions_ray.sh [OUT]     (default results/sessions-ray; USERS, DAYS: default 2000 x 7)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup.sh
source scripts/env.sh
out="${1:-results/sessions-ray}"
docs="${ABR_SESSIONS_RAY_DOCS:-docs/sessions/ray}"
USERS="${USERS:-2000}" DAYS="${DAYS:-7}"
mkdir -p "$out" "$docs"
.venv/bin/abr bench --json > "$out/bench.json"
for engine in local ray; do
  .venv/bin/abr sessions simulate --users "$USERS" --days "$DAYS" --agent robustmpc --viewers drawn --seed 0 \
    --engine "$engine" --workers 2 --no-plots --out "$out/$engine" --overwrite | tee "$out/$engine.log"
done
{
  echo "# Viewer sessions: a local Ray instance against local worker processes"
  echo
  echo "Written by \`bash scripts/sessions_ray.sh\`: \`abr sessions simulate --users $USERS --days $DAYS --agent robustmpc"
  echo "--viewers drawn --seed 0 --workers 2\`, once with \`--engine local\` and once with \`--engine ray\` (a Ray instance"
  echo "started by the command on this machine), then every table compared byte for byte (\`cmp\`)."
  echo
  echo "| file | local = ray |"
  echo "|---|---|"
  for f in $(cd "$out/local" && ls ./*.csv ./*.json | sed 's#^\./##' | grep -v '^config.json$'); do
    if cmp -s "$out/local/$f" "$out/ray/$f"; then echo "| $f | identical |"; else echo "| $f | **differs** |"; fi
  done
  echo
  echo "config.json and report.md record the command line, which names the output folder; nothing else differs there:"
  echo
  echo '```'
  diff <(sed "s#$out/local#OUT#g" "$out/local/config.json") <(sed "s#$out/ray#OUT#g" "$out/ray/config.json") \
    && echo "config.json: identical once the output folder is replaced by OUT"
  diff <(sed "s#$out/local#OUT#g" "$out/local/report.md") <(sed "s#$out/ray#OUT#g" "$out/ray/report.md") \
    && echo "report.md: identical once the output folder is replaced by OUT"
  echo '```'
  echo
  echo "Each run's own last line (views played, wall time):"
  echo
  for engine in local ray; do echo "- $engine: $(grep 'results written' "$out/$engine.log")"; done
  echo
  echo "This machine's \`abr bench\` (the same run): [bench.json](bench.json)."
} > "$docs/ray_vs_local.md"
cp "$out/bench.json" "$docs/bench.json"
cat "$docs/ray_vs_local.md"
