#!/usr/bin/env bash
# The shipped policy `ppo` from scratch, everything included (one command):
#   bash scripts/train_robust.sh [RUN_DIR]        (default runs/ppo_robust)
# Steps 1-3 are scripts/train_shipped.sh's:
# 1. prints `abr bench` (the machine's speed, to read the training time against);
# 2. trains agents/models/ppo_robust.toml: PPO, its broad synthetic traces generated inside the run, seeded
#    (a config with imitation_teacher = "optimal" first runs the imitation stage, its figures in
#    RUN_DIR/imitation.json, copied beside the model; the shipped recipe does not: docs/experiments/imitation.md);
# 3. exports the best validation model (ONNX, JSON weights, encoder spec, verified test vectors) and copies
#    its inference copy (actor only) to agents/models/ppo_robust.zip, with the run's config and learning curve;
# 4. writes agents/models/ppo_robust.recipe.json (steps, training and recipe wall times, the bench figures).
# The same seed gives the same model. Times and steps/s are printed at each step.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
run="${1:-runs/ppo_robust}"
start=$(date +%s)
bash scripts/train_shipped.sh ppo_robust "$run"
.venv/bin/python - "$run" "$start" <<'PY'
import csv, json, sys, time
run, start = sys.argv[1], int(sys.argv[2])
rows = list(csv.DictReader(open(f"{run}/evaluations.csv")))
info = {"timesteps": int(rows[-1]["timesteps"]), "train_wall_s": float(rows[-1]["wall_s"]),
        "recipe_wall_s": time.time() - start, "bench": json.load(open(f"{run}.bench.json"))}
try:  # the imitation stage runs before the PPO steps that wall_s counts
    imitation = json.load(open(f"{run}/imitation.json"))
    info["imitation_s"] = imitation["solve_s"] + imitation["fit_s"]
except FileNotFoundError:
    pass
json.dump(info, open("agents/models/ppo_robust.recipe.json", "w"), indent=1)
print(f"recipe wall time {info['recipe_wall_s']:.0f} s; training {info['train_wall_s']:.0f} s for "
      f"{info['timesteps']} steps ({info['timesteps'] / info['train_wall_s']:.0f} steps/s)")
PY
