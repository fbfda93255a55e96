#!/usr/bin/env bash
# Views per second of a population run before and after a change, on this machine, in one go: the same
# command (RobustMPC, drawn viewers, local engine) at commit BEFORE (default f6fd9fc, before the compiled lone
# views) and at the checkout, then `abr bench` beside them. Writes docs/sessions/speed/: before_time.txt,
# after_time.txt (/usr/bin/time -v), bench.json and speed.md (generated from those files and the runs' tables).
#   BEFORE: the commit to compare with; USERS, DAYS: the run's size (default 3,000 x 7); WORKERS (default 2).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
source scripts/env.sh
BEFORE="${BEFORE:-f6fd9fc}" USERS="${USERS:-3000}" DAYS="${DAYS:-7}" WORKERS="${WORKERS:-2}"
out=docs/sessions/speed
mkdir -p "$out"
old="$(mktemp -d)"
trap 'git worktree remove --force "$old" >/dev/null 2>&1 || true' EXIT
git worktree add --detach "$old" "$BEFORE" >/dev/null
args=(sessions simulate --users "$USERS" --days "$DAYS" --agent robustmpc --viewers drawn --seed 0
      --workers "$WORKERS" --no-plots --overwrite)
(cd "$old" && /usr/bin/time -o "$root/$out/before_time.txt" -v "$root/.venv/bin/python" -m abr "${args[@]}" \
   --out "$root/results/speed-before" > /dev/null)
/usr/bin/time -o "$out/after_time.txt" -v .venv/bin/python -m abr "${args[@]}" --out results/speed-after > /dev/null
.venv/bin/abr bench --json > "$out/bench.json"
.venv/bin/python - "$out" "$BEFORE" "$(git rev-parse --short HEAD)" "$USERS" "$DAYS" "$WORKERS" <<'PY'
import csv, json, sys
from pathlib import Path

sys.path.insert(0, "scripts")
from gnu_time import cpu_s, wall_s

out, before, after, users, days, workers = sys.argv[1:]
out = Path(out)


rows = []
for label, commit, run in (("before", before, "results/speed-before"), ("after", after, "results/speed-after")):
    views = sum(1 for _ in csv.DictReader(open(Path(run) / "sessions.csv")))
    text = (out / f"{label}_time.txt").read_text()
    wall, cpu = wall_s(text), cpu_s(text)
    rows.append((label, commit, views, wall, cpu))
bench = json.loads((out / "bench.json").read_text())
same = (Path("results/speed-before/sessions.csv").read_bytes() == Path("results/speed-after/sessions.csv").read_bytes())
lines = [f"# Population-run speed before and after ({users} viewers x {days} days, RobustMPC, {workers} workers)", "",
         "Written by `bash scripts/sessions_speed.sh` (the same `abr sessions simulate` command at both commits, "
         "one after the other on this machine).", "",
         "| run | commit | views | wall s | views/s | CPU s (all processes) | views per CPU s |", "|---|---|---:|---:|---:|---:|---:|"]
for label, commit, views, wall, cpu in rows:
    lines.append(f"| {label} | {commit} | {views:,} | {wall:.1f} | {views / wall:.1f} | {cpu:.1f} | {views / cpu:.1f} |")
lines += ["", f"Speed-up (wall): {rows[0][3] / rows[1][3]:.2f}x. The two runs' `sessions.csv` are "
          + ("byte-identical." if same else "not byte-identical (views on a shared link are computed another way; "
             "equal to the cores' tolerance, see `abr/sessions/playback.py`)."), "",
          f"`abr bench` on the same machine right after ([bench.json](bench.json)): batched@4096 "
          f"{bench['batched']['4096']:,.0f} chunk-steps/s; views per core second: "
          + ", ".join(f"{k} {v:.1f}" for k, v in bench["views_per_core_s"].items()) + "."]
(out / "speed.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
PY
