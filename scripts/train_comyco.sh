#!/usr/bin/env bash
# The shipped agent `comyco` from scratch (one command): imitation of Comyco's instant solver, no RL step.
#   bash scripts/train_comyco.sh [RUN_DIR]        (default runs/comyco)
# abr bench, then agents/models/comyco.toml trained (the teacher's demonstrations, 5 DAgger rounds, the best fit
# kept; seeded: the same seed gives the same model), exported and copied to agents/models/comyco.*
# (scripts/train_shipped.sh). The wall time is printed at the end.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
start=$(date +%s)
bash "$root/scripts/train_shipped.sh" comyco "${1:-runs/comyco}"
echo "recipe wall time $(( $(date +%s) - start )) s"
