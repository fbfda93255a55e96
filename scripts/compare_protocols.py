"""Compare two `abr generalization` runs of models on the same sets: the model rows of each, side by side.

    python scripts/compare_protocols.py A/generalization.csv B/generalization.csv > comparison.md

Prints a markdown table (set, scaling; mean, p10 and worst-5% mean of each model; B - A; the best of RobustMPC and
BOLA-E) and each run's acceptance checks (from the generalization.json beside each csv).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path


def _model_rows(path: Path) -> tuple[str, dict[tuple[str, str], dict[str, str]]]:
    rows = [r for r in csv.DictReader(path.open()) if r["role"] == "model"]
    if not rows:
        sys.exit(f"error: {path} has no model rows; give the generalization.csv of an `abr generalization` run")
    return rows[0]["agent"], {(r["trace_set"], r["scaling"]): r for r in rows}


def _checks(path: Path) -> dict[str, bool | None]:
    document = json.loads((path.parent / "generalization.json").read_text())
    return {c["name"]: c["passed"] for c in document["checks"]}


def main(a_path: str, b_path: str) -> None:
    a_file, b_file = Path(a_path), Path(b_path)
    a_agent, a = _model_rows(a_file)
    b_agent, b = _model_rows(b_file)
    print(f"A: `{a_agent}` ({a_file}); B: `{b_agent}` ({b_file}). QoE excluding the first chunk.\n")
    print("| set | scaling | n | A mean | B mean | B - A | A p10 | B p10 | A worst 5% | B worst 5% "
          "| best of robustmpc, bola-e |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for key, ra in a.items():
        rb = b.get(key)
        if rb is None:
            continue
        best = float(ra["mean"]) - float(ra["vs_best_mean_diff"])
        cells = [key[0], key[1], ra["n"], f"{float(ra['mean']):.2f}", f"{float(rb['mean']):.2f}",
                 f"{float(rb['mean']) - float(ra['mean']):+.2f}", f"{float(ra['p10']):.2f}", f"{float(rb['p10']):.2f}",
                 f"{float(ra['worst5_mean']):.2f}", f"{float(rb['worst5_mean']):.2f}", f"{best:.2f}"]
        print("| " + " | ".join(cells) + " |")
    verdict = {True: "pass", False: "FAIL", None: "n/a"}
    checks_a, checks_b = _checks(a_file), _checks(b_file)
    print("\n| acceptance check | A | B |\n|---|---|---|")
    for name in checks_a:
        print(f"| {name} | {verdict[checks_a[name]]} | {verdict[checks_b.get(name)]} |")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
