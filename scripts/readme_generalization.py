"""Write the generalisation figures into README.md from the protocol's output (never by hand).

Usage: python scripts/readme_generalization.py [DOCS_DIR] [README]
(defaults docs/generalization and README.md). Reads DOCS_DIR/generalization.json (the default video) and
DOCS_DIR/<title>/generalization.json (other titles), and replaces the block between
``<!-- generalization:begin -->`` and ``<!-- generalization:end -->`` in README.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

BEGIN, END = "<!-- generalization:begin -->", "<!-- generalization:end -->"


def _num(value: Any, digits: int = 2, sign: bool = False) -> str:
    if value is None or value == "":
        return "–"
    text = f"{float(value):+.{digits}f}" if sign else f"{float(value):.{digits}f}"
    return text.replace("-", "−")


def _rows(report: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["trace_set"], r["scaling"], r["role"] if r["role"] == "model" else r["agent"]): r
            for r in report["rows"]}


def main_table(report: dict[str, Any]) -> list[str]:
    rows = _rows(report)
    lines = ["| trace set | label | scaling | n | ppo | robustmpc | bola-e | ppo − best of the two [95% CI] | "
             "p10 ppo / robustmpc | worst 5% ppo / robustmpc | rebuffer ratio ppo / robustmpc | ppo % of optimum |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (trace_set, scaling, role), model in rows.items():
        if role != "model":
            continue
        mpc, bola = rows.get((trace_set, scaling, "robustmpc")), rows.get((trace_set, scaling, "bola-e"))
        if mpc is None or bola is None:
            continue
        diff = model.get("vs_best_mean_diff")
        low, high = model.get("vs_best_ci_low"), model.get("vs_best_ci_high")
        star = " \\*" if low is not None and high is not None and (low > 0 or high < 0) else ""
        best = f"{_num(diff, sign=True)} [{_num(low, sign=True)}, {_num(high, sign=True)}]{star}"
        name = f"**{trace_set}**" if "+" in trace_set else trace_set
        lines.append(
            f"| {name} | {model['label']} | {scaling} | {model['n']} | {_num(model['mean'])} | {_num(mpc['mean'])} | "
            f"{_num(bola['mean'])} | {best} | {_num(model['p10'])} / {_num(mpc['p10'])} | "
            f"{_num(model['worst5_mean'])} / {_num(mpc['worst5_mean'])} | "
            f"{_num(model['rebuffer_ratio'], 3)} / {_num(mpc['rebuffer_ratio'], 3)} | "
            f"{_num(model.get('pct_of_optimum'), 1)} |")
    return lines


def checks_table(report: dict[str, Any]) -> list[str]:
    lines = ["| check | criterion | result |", "|---|---|---|"]
    for check in report["checks"]:
        verdict = {True: "pass", False: "**fail**", None: "n/a"}[check["passed"]]
        lines.append(f"| {check['name']} | {check['criterion']} | {verdict} |")
    return lines


def titles_table(reports: list[dict[str, Any]]) -> list[str]:
    lines = ["| title (fcc/test + norway/test, unscaled) | n | ppo | robustmpc | ppo − robustmpc [95% CI] | "
             "ppo % of optimum |", "|---|---:|---:|---:|---:|---:|"]
    for report in reports:
        rows = _rows(report)
        model = rows.get(("fcc/test+norway/test", "unscaled", "model"))
        mpc = rows.get(("fcc/test+norway/test", "unscaled", "robustmpc"))
        if model is None or mpc is None:
            continue
        low, high = model["vs_robustmpc_ci_low"], model["vs_robustmpc_ci_high"]
        star = " \\*" if low > 0 or high < 0 else ""
        lines.append(f"| {report['settings']['video']} | {model['n']} | {_num(model['mean'])} | {_num(mpc['mean'])} | "
                     f"{_num(model['vs_robustmpc_mean_diff'], sign=True)} [{_num(low, sign=True)}, "
                     f"{_num(high, sign=True)}]{star} | {_num(model.get('pct_of_optimum'), 1)} |")
    return lines


def recipe_lines(recipe: Path) -> list[str]:
    """The training figures of the shipped recipe, from the files ``scripts/train_robust.sh`` wrote."""
    if not recipe.is_file():
        return []
    info = json.loads(recipe.read_text(encoding="utf-8"))
    bench = info["bench"]["batched"]["4096"]
    imitation = (f"the imitation stage {info['imitation_s'] / 60:.1f} min (the offline optimum's solves and the "
                 "fit), " if "imitation_s" in info else "")
    return [f"Recipe run ([`{recipe}`]({recipe}), written by `scripts/train_robust.sh`): {imitation}"
            f"{info['timesteps']:,} PPO environment steps in {info['train_wall_s'] / 60:.1f} min "
            f"({info['timesteps'] / info['train_wall_s']:,.0f} steps/s, validations included), the whole recipe "
            f"(bench, imitation, training, export) {info['recipe_wall_s'] / 60:.1f} min, on a machine whose "
            f"`abr bench` batched@4096 was {bench:.2e} chunk-steps/s (measured at the start of the run).", ""]


def identity_line(report: dict[str, Any], shipped: Path) -> list[str]:
    """Whether the evaluated model file is the shipped one, by content (the report records its sha256)."""
    digest = report["model"].get("sha256")
    if digest is None or not shipped.is_file():
        return []
    same = hashlib.sha256(shipped.read_bytes()).hexdigest() == digest
    verdict = "the same file as" if same else "**not** the same file as"
    return [f"The evaluated model file (sha256 `{digest[:16]}...`) is {verdict} the shipped `{shipped}` "
            "(compared by content when this block was generated).", ""]


def block(docs: Path, recipe: Path = Path("agents/models/ppo_robust.recipe.json"),
          shipped: Path = Path("agents/models/ppo_robust.zip")) -> str:
    main = json.loads((docs / "generalization.json").read_text(encoding="utf-8"))
    titles = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(docs.glob("*/generalization.json"))]
    out = [BEGIN, "",
           f"Generated by `scripts/readme_generalization.py` from [`{docs}/generalization.json`]"
           f"({docs}/generalization.json) ({main['created_utc']}, command `{main['command']}`); "
           f"the full report with every heuristic is [`{docs}/generalization.md`]({docs}/generalization.md).",
           "QoE is the mean without the first chunk; `*` marks a 95% bootstrap CI that excludes zero.", "",
           *identity_line(main, shipped),
           f"![generalisation]({docs}/generalization.png)", "", *main_table(main), "", *checks_table(main), "",
           *recipe_lines(recipe)]
    if titles:
        out += ["Other titles (the first 48 chunks of each, `--ladder-kbps 300,750,1200,1850,2850,4300`):", "",
                *titles_table(titles), ""]
    out.append(END)
    return "\n".join(out)


def main(argv: list[str]) -> None:
    docs = Path(argv[1]) if len(argv) > 1 else Path("docs/generalization")
    readme = Path(argv[2]) if len(argv) > 2 else Path("README.md")
    text = readme.read_text(encoding="utf-8")
    if BEGIN not in text or END not in text:
        raise SystemExit(f"error: {readme} has no {BEGIN} ... {END} block; add the two markers where the figures go")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    tmp = readme.with_suffix(".md.tmp")
    tmp.write_text(head + block(docs) + tail, encoding="utf-8")
    tmp.replace(readme)
    print(f"{readme}: generalisation block rewritten from {docs}")


if __name__ == "__main__":
    main(sys.argv)
