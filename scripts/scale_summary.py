"""Summarise the scale run of scripts/sessions_scale.sh into DIR/scale.md (never by hand).

Usage: python scripts/scale_summary.py [DIR]   (default docs/sessions/scale)
Reads DIR/run_time.txt (``/usr/bin/time -v``), DIR/bench.json (``abr bench --json``), DIR/config.json and
DIR/policies.csv (written by ``abr sessions simulate``).
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import gnu_time

TARGET_VIEWS_PER_S = 2.2e6 / 3600  # issue 15: about 2.2 million views in 60 minutes


def summary(folder: Path) -> str:
    text = (folder / "run_time.txt").read_text()
    wall_s = gnu_time.wall_s(text)
    cpu_pct = gnu_time.cpu_percent(text)
    rss_gib = int(gnu_time.field(text, "Maximum resident set size (kbytes)")) / 1024**2
    bench = json.loads((folder / "bench.json").read_text())
    config = json.loads((folder / "config.json").read_text())
    policies = list(csv.DictReader((folder / "policies.csv").open()))
    views = sum(int(p["views"]) for p in policies)
    c = config["config"]
    rate = views / wall_s
    lines = [f"# Scale run: {c['users']:,} viewers x {c['days']} days, {', '.join(c['agents'])}", "",
             f"Command: `{config['command']}` (via `bash scripts/sessions_scale.sh`; summary by "
             "`scripts/scale_summary.py`).", "",
             "| views | wall | views/s | CPU used (of 100% per core) | largest resident memory |",
             "|---:|---:|---:|---:|---:|",
             f"| {views:,} | {wall_s / 60:.1f} min | {rate:.0f} | {cpu_pct}% of {bench['machine']['cpu_count']} "
             f"cores | {rss_gib:.2f} GiB (largest process) |", "",
             f"Issue 15 asks for about {TARGET_VIEWS_PER_S:.0f} views/s (2.2 million views in 60 min on 2 cores): this "
             f"run reached {rate / TARGET_VIEWS_PER_S:.0%} of that rate on this machine, whose `abr bench` "
             f"([bench.json](bench.json), run just before) gives batched@4096 {bench['batched']['4096']:,.0f} "
             "chunk-steps/s and views per core second "
             + ", ".join(f"{k} {v:.1f}" for k, v in bench["views_per_core_s"].items())
             + " (these machines differ up to 4x in speed).", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    folder = Path(argv[1]) if len(argv) > 1 else Path("docs/sessions/scale")
    text = summary(folder)
    (folder / "scale.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv)
