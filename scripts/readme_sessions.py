"""Write the viewing-session figures into README.md from the runs' files (never by hand).

Usage: python scripts/readme_sessions.py [DOCS_DIR] [README]
(defaults docs/sessions and README.md). Reads DOCS_DIR/ab/{config.json, policies.csv, outcomes.json, power.csv,
validation.json} (written by ``abr sessions simulate``) and DOCS_DIR/sensitivity/sensitivity.csv (written by
``abr sessions sensitivity``; scripts/sessions.sh runs both), and replaces the block between
``<!-- sessions:begin -->`` and ``<!-- sessions:end -->`` in README.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import gnu_time

BEGIN, END = "<!-- sessions:begin -->", "<!-- sessions:end -->"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    return ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers),
            *("| " + " | ".join(r) + " |" for r in rows)]


def _ci(c: list[float] | tuple[float, float], fmt: str) -> str:
    return f"{format(c[0], fmt)} to {format(c[1], fmt)}"


def _count(x: str) -> str:
    return "n/a" if x in ("nan", "inf", "") else f"{int(float(x)):,}"


def block(docs: Path) -> str:
    ab_dir = docs / "ab"
    config = json.loads((ab_dir / "config.json").read_text())
    outcomes = json.loads((ab_dir / "outcomes.json").read_text())
    checked = json.loads((ab_dir / "validation.json").read_text())
    policies = list(csv.DictReader((ab_dir / "policies.csv").open()))
    power = list(csv.DictReader((ab_dir / "power.csv").open()))
    c = config["config"]
    views = sum(int(p["views"]) for p in policies)
    ab = outcomes["ab"]
    a, b = ab["a"], ab["b"]
    lines = [f"A/B run (`{config['command']}`, files in [docs/sessions/ab](docs/sessions/ab)): {c['users']:,} "
             f"viewers x {c['days']} days, {views:,} views, {config['catalog']} catalog, networks "
             f"{', '.join(config['networks'])}.", ""]
    lines += _run_time(ab_dir, views)
    lines += _table(["policy", "watch h/viewer", "churned share", "active days/viewer", "survival at end (95% CI)"],
                    [[x["agent"], f"{x['watch_hours_per_viewer']:.3f}", f"{x['churned_share']:.4f}",
                      f"{x['active_days_per_viewer']:.3f}",
                      f"{x['survival_at_end']:.4f} ({_ci(x['survival_ci95_at_end'], '.4f')})"]
                     for x in outcomes["arms"]])
    lines += ["", f"Paired differences ({b} − {a}, by viewer, bootstrap 95% CI):", ""]
    lines += _table(["outcome", "difference", "95% CI", "relative"],
                    [[name, f"{ab[name]['difference']:+.4f}", _ci(ab[name]["ci95"], "+.4f"),
                      f"{ab[name]['relative']:+.2%}"] for name in ("watch_hours", "churned", "active_days")])
    soda = ab["soda_check"]
    lines += ["", f"Order of magnitude: {soda['simulated_watch_time_change']:+.1%} watch time against SODA's "
              f"+5.9% at Prime Video, {abs(soda['ratio']):.1f}x its size.", ""]
    lines += ["Viewers an A/B test needs (α = 0.05, 80% power; `power.csv`):", ""]
    rows = [r for r in power if r["outcome"] in ("watch_hours", "churned") and float(r["relative_effect"]) in
            (0.01, 0.05)]
    lines += _table(["outcome", "days", "effect (of A's mean)", "viewers per arm, randomised test",
                     "viewers, paired simulation"],
                    [[r["outcome"], r["days"], f"{float(r['relative_effect']):.0%}",
                      _count(r["viewers_per_arm_randomised"]), _count(r["viewers_paired_simulation"])] for r in rows])
    lines += ["", "Estimator validation on these views (`validation.json`, confounders "
              f"{'on' if checked['confounding']['is_enabled'] else 'off'}):", ""]
    vrows = []
    for key in ("abandonment", "rebuffering"):
        e = checked[key]
        for method in ("naive", "qed"):
            m = e[method]
            vrows.append([f"{key} ({e['unit']})", method, f"{m['n']:,}", f"{m['value']:.4f}",
                          _ci(m["ci95"], ".4f"), f"{e['true_effect']:.4f}"])
    lines += _table(["effect", "estimator", "views or pairs", "estimate", "95% CI", "true"], vrows)
    risk = outcomes["churn_risk"]
    lines += ["", f"Churn-risk score scored at day {risk['scored_at_day']} for {risk['viewers']:,} active viewers "
              f"({risk['churned_later']} churned later): ROC AUC {risk['roc_auc']:.3f}; {risk['verdict']}.", ""]
    sens_path = docs / "sensitivity" / "sensitivity.csv"
    if sens_path.exists():
        sens = list(csv.DictReader(sens_path.open()))
        md = (docs / "sensitivity" / "sensitivity.md").read_text().splitlines()
        command = next((line.strip("`") for line in md if line.startswith("`abr")), "")
        lines += [f"Sensitivity (`{command}`, [docs/sessions/sensitivity](docs/sessions/sensitivity)): the paired "
                  f"{b} − {a} differences with each unpublished parameter at the ends of its range.", ""]
        lines += _table(["parameter", "value", "watch h/viewer (95% CI)", "relative", "churned share (95% CI)"],
                        [[r["parameter"],
                          f"{float(r['value']):g}" + (" (default)" if r["is_default"] == "True" else ""),
                          f"{float(r['watch_hours_difference']):+.3f} ({float(r['watch_hours_ci_low']):+.3f} to "
                          f"{float(r['watch_hours_ci_high']):+.3f})", f"{float(r['watch_hours_relative']):+.2%}",
                          f"{float(r['churned_difference']):+.4f} ({float(r['churned_ci_low']):+.4f} to "
                          f"{float(r['churned_ci_high']):+.4f})"] for r in sens])
        rel = [float(r["watch_hours_relative"]) for r in sens]
        churn = [float(r["churned_difference"]) for r in sens]
        lines += ["", f"Across the ranges the watch-time difference runs from {min(rel):+.2%} to {max(rel):+.2%} and "
                  f"the churned-share difference from {min(churn):+.4f} to {max(churn):+.4f}.", ""]
    return "\n".join(lines)


def _run_time(ab_dir: Path, views: int) -> list[str]:
    """The run's wall time (``run_time.txt``, ``/usr/bin/time -v``) and the machine's ``abr bench`` figures
    (``bench.json``), when scripts/sessions.sh wrote them."""
    time_path, bench_path = ab_dir / "run_time.txt", ab_dir / "bench.json"
    if not (time_path.exists() and bench_path.exists()):
        return []
    text = time_path.read_text()
    wall_s, cpu = gnu_time.wall_s(text), gnu_time.cpu_percent(text)
    bench = json.loads(bench_path.read_text())
    rates = ", ".join(f"{name} {rate:.1f}" for name, rate in bench["views_per_core_s"].items())
    return [f"Wall time {wall_s / 60:.1f} min for both arms ({views / wall_s:.0f} views/s; the processes used "
            f"{cpu}% of one core on average, of {bench['machine']['cpu_count']} cores: the workers wait "
            f"while the parent plans each day and retrains the recommender), on a machine whose `abr bench` "
            f"([bench.json](docs/sessions/ab/bench.json)) gives batched@4096 {bench['batched']['4096']:,.0f} "
            f"chunk-steps/s and views per core second {rates}.", ""]


def main(argv: list[str]) -> None:
    docs = Path(argv[1]) if len(argv) > 1 else Path("docs/sessions")
    readme = Path(argv[2]) if len(argv) > 2 else Path("README.md")
    text = readme.read_text()
    start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
    readme.write_text(text[:start] + "\n" + block(docs) + "\n" + text[end:])


if __name__ == "__main__":
    main(sys.argv)
