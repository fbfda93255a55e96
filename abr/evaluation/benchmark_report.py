"""The files of the benchmark: ``leaderboard.csv``, ``.json``, ``.md`` and ``.png``.

* ``leaderboard.csv``: one row per (suite member, agent): mean QoE (``qoe_excl_first``) with its 95% bootstrap
  CI, median, p10, the mean of the worst 5% of traces, rebuffer ratio, share of the optimum, the paired
  differences to RobustMPC and BOLA-E with their CIs, the rank (blank where not ranked) and a note.
* ``leaderboard.json``: the settings, the suite, the agents (and the titles each sat out), every row, the
  published reference means of the unranked comparison, the run's own runtime, versions and git commit.
* ``leaderboard.md``: the overall standing (mean rank over the ranked members, first places), one table per
  member, the comparison with the published numbers, and the runtime.
* ``leaderboard.png``: the rank of every agent on every ranked member at a glance (ranks: paired differences,
  :func:`abr.evaluation.benchmark.paired_ranks`).

Every file is written atomically after the evaluations, so a failed run leaves none of them half-written.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abr.common.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from abr.common.plotting import save_figure
from abr.common.provenance import git_state, utc_timestamp
from abr.common.tables import markdown_table
from abr.evaluation.generalization_report import versions
from abr.evaluation.generalization_stats import BASELINES
from abr.evaluation.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL
from traces.datadir import data_dir as resolve_data_dir

if TYPE_CHECKING:
    from abr.evaluation.benchmark import LeaderboardRow, SuiteMember

CSV_FILE, JSON_FILE, MARKDOWN_FILE, PLOT_FILE = ("leaderboard.csv", "leaderboard.json", "leaderboard.md",
                                                 "leaderboard.png")
#: The files :func:`write_leaderboard` writes, by role.
OUTPUT_FILES: dict[str, str] = {"csv": CSV_FILE, "plot": PLOT_FILE, "json": JSON_FILE, "markdown": MARKDOWN_FILE}
JSON_FORMAT = "abr-leaderboard-v1"
#: The published reference results (the Pensieve simulator run unchanged), and our agent for each of their policies.
REFERENCE_FILE = "pensieve_fixed_env_results.csv"
REFERENCE_POLICIES: dict[str, str] = {"bb": "bba", "rb": "rb", "mpc_fixed": "robustmpc",
                                      "pensieve_rl_greedy": "", "pensieve_rl": ""}
COLUMNS: tuple[str, ...] = (
    "video", "trace_set", "scaling", "member", "ranked_member", "agent", "n", "mean", "ci_low", "ci_high", "median",
    "p10", "worst_5pct", "rebuffer_ratio", "pct_of_optimum", "minus_robustmpc", "minus_robustmpc_ci_low",
    "minus_robustmpc_ci_high", "minus_bola-e", "minus_bola-e_ci_low", "minus_bola-e_ci_high", "rank", "note")


def read_reference(reference_dir: str | Path | None, data_dir: str | Path | None,
                   file_name: str) -> dict[str, dict[str, float]]:
    """Mean ``qoe_excl_first`` per (set, policy) of the published reference results, ``{set: {policy: mean}}``.

    ``reference_dir`` (default: ``<data dir>/../reference`` when it exists) holds ``file_name``; without it the
    comparison is left out (an empty dict).
    """
    if reference_dir is None:
        try:
            folder = resolve_data_dir(data_dir).parent / "reference"
        except Exception:  # no data directory at all: no reference either
            return {}
    else:
        folder = Path(reference_dir)
    path = folder / file_name
    if not path.is_file():
        return {}
    sums: dict[tuple[str, str], list[float]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            sums.setdefault((row["trace_set"], row["policy"]), []).append(float(row["qoe_sum_excl_first"]))
    reference: dict[str, dict[str, float]] = {}
    for (trace_set, policy), values in sorted(sums.items()):
        reference.setdefault(trace_set, {})[policy] = sum(values) / len(values)
    return reference


def _num(value: Any, digits: int = 2, signed: bool = False) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _clean(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def overall(rows: Sequence[LeaderboardRow], agents: Sequence[str]) -> list[dict[str, Any]]:
    """Per agent: the ranked members it played, its mean rank over them, its first places, sorted by mean rank."""
    table = []
    for agent in agents:
        ranks = [r.rank for r in rows if r.stats.agent == agent and r.rank is not None]
        table.append({"agent": agent, "members": len(ranks),
                      "mean_rank": sum(ranks) / len(ranks) if ranks else None,
                      "first_places": sum(1 for k in ranks if k == 1)})
    return sorted(table, key=lambda t: (t["mean_rank"] is None, t["mean_rank"] or 0.0, t["agent"]))


def write_leaderboard(out: Path, *, rows: Sequence[LeaderboardRow], members: Sequence[SuiteMember],
                      agents: Sequence[str], sat_out: Mapping[str, Sequence[str]], skipped: Sequence[str],
                      settings: Mapping[str, Any], reference: Mapping[str, Mapping[str, float]],
                      command: str | None, runtime_s: float, read_back: Sequence[str]) -> dict[str, Path]:
    """Write the four files into ``out`` (the markdown last); returns them by role."""
    out.mkdir(parents=True, exist_ok=True)
    records = [{k: _clean(v) for k, v in r.record().items()} for r in rows]
    standing = overall(rows, agents)
    document = {
        "format": JSON_FORMAT, "created_utc": utc_timestamp(), "command": command, "settings": dict(settings),
        "agents": list(agents),
        "suite": [{"member": m.name, "video": m.video, "trace_set": m.trace_set, "scaling": m.scaling,
                   "ranked": m.ranked, "reference": m.reference, "evaluation": m.group,
                   "sat_out": list(sat_out.get(m.group, []))} for m in members],
        "skipped": list(skipped), "overall": standing, "rows": records,
        "reference": {"file": "pensieve_fixed_env_results.csv", "means": {k: dict(v) for k, v in reference.items()},
                      "policies": REFERENCE_POLICIES},
        "runtime_s": runtime_s, "evaluations_read_back": list(read_back),
        "bootstrap": {"method": "percentile", "resamples": BOOTSTRAP_RESAMPLES, "level": CI_LEVEL},
        "versions": versions(), "git": git_state(),
    }
    files = {
        "csv": write_csv_atomic(out / CSV_FILE, COLUMNS, ([rec.get(c) for c in COLUMNS] for rec in records)),
        "plot": save_figure(out / PLOT_FILE, lambda fig: draw_ranks(fig, rows, members, standing),
                            figsize_in=(max(8.0, 0.55 * len(members) + 3.0), 0.38 * len(agents) + 2.2)),
        "json": write_json_atomic(out / JSON_FILE, document),
    }
    files["markdown"] = write_text_atomic(out / MARKDOWN_FILE, render_markdown(document, rows, members))
    return files


def render_markdown(document: Mapping[str, Any], rows: Sequence[LeaderboardRow],
                    members: Sequence[SuiteMember]) -> str:
    """The leaderboard as Markdown."""
    settings = document["settings"]
    lines = ["# Leaderboard", "", "Command:", "", "```", str(document.get("command") or ""), "```", "",
             f"QoE is `{settings['metric']}` (the mean per trace without the first chunk), preset "
             f"`{settings['preset']}`, seed {settings['seed']}, session core `{settings['core']}`; scaled sets are "
             f"scaled to a time-weighted mean of {settings['scale_mean_mbps']} Mbit/s. Per member, an agent's rank is "
             "1 + the agents better than it on the same traces (the 95% paired-bootstrap CI of the mean per-trace "
             "difference above zero), so agents not told apart share a rank; the CI shown beside each mean is that "
             "of the agent's own mean, much wider, since most of it is how traces differ. The offline optimum "
             "(`optimal`) is an upper bound and never ranked; a learned policy is not ranked on traces it was "
             "trained on (`trained on`).", "",
             f"Runtime of the run that wrote this file: {document['runtime_s']:.0f} s"
             + (f" (evaluations read back from an earlier run: {', '.join(document['evaluations_read_back'])})"
                if document["evaluations_read_back"] else "") + ".", "", "![ranks](leaderboard.png)", "",
             "## Overall", "", "Mean rank over the ranked members each agent played, and its first places.", ""]
    lines += markdown_table(["agent", "ranked members", "mean rank", "first places"],
                            [[t["agent"], t["members"], _num(t["mean_rank"]), t["first_places"]]
                             for t in document["overall"]], "lrrr")
    if document["skipped"]:
        lines += ["", "Not in the data directory (left out of the suite): " + "; ".join(document["skipped"]) + "."]
    sat_out = {s["member"]: s["sat_out"] for s in document["suite"]}
    for m in members:
        lines += ["", f"## {m.name}" + ("" if m.ranked else " (unranked)"), ""]
        if sat_out.get(m.name):
            lines += [f"Sat out (another ladder): {', '.join(sat_out[m.name])}.", ""]
        member_rows = sorted((r for r in rows if r.member == m),
                             key=lambda r: (r.rank is None, r.rank or 0, -r.stats.mean))
        lines += markdown_table(
            ["rank", "agent", "n", "mean [95% CI]", "median", "p10", "worst 5%", "rebuffer", "of optimum",
             "− robustmpc [95% CI]", "− bola-e [95% CI]", "note"],
            [[r.rank if r.rank is not None else "", f"**{r.stats.agent}**" if r.rank == 1 else r.stats.agent,
              r.stats.n, f"{r.stats.mean:.2f} [{r.stats.ci_low:.2f}, {r.stats.ci_high:.2f}]", _num(r.stats.median),
              _num(r.stats.p10), _num(r.stats.worst5_mean), f"{100 * r.stats.rebuffer_ratio:.2f}%",
              "" if r.stats.pct_of_optimum is None else f"{r.stats.pct_of_optimum:.1f}%",
              _diff(r, "robustmpc"), _diff(r, "bola-e"), r.note] for r in member_rows],
            "rlrrrrrrrrrl")
        if m.reference and m.reference in document["reference"]["means"]:
            lines += ["", "Published reference (the Pensieve simulator run unchanged on these traces, "
                      "`pensieve_fixed_env_results.csv`; mean `qoe_sum_excl_first`) beside ours:", ""]
            means = {r.stats.agent: r.stats.mean for r in member_rows}
            published = document["reference"]["means"][m.reference]
            policies = document["reference"]["policies"]
            lines += markdown_table(["reference policy", "published", "our agent", "ours"],
                                    [[p, f"{v:.2f}", policies.get(p) or "(none here)",
                                      _num(means.get(policies.get(p) or ""))] for p, v in published.items()], "lrlr")
    return "\n".join(lines) + "\n"


def _diff(row: LeaderboardRow, baseline: str) -> str:
    diff = next((d for key, d in row.stats.vs.items() if BASELINES.get(key) == baseline), None)
    if diff is None or row.stats.agent == baseline:
        return ""
    star = " *" if diff.ci_low > 0 or diff.ci_high < 0 else ""
    return f"{diff.mean_diff:+.2f} [{diff.ci_low:+.2f}, {diff.ci_high:+.2f}]{star}"


def draw_ranks(fig: Any, rows: Sequence[LeaderboardRow], members: Sequence[SuiteMember],
               standing: Sequence[Mapping[str, Any]]) -> None:
    """A grid of ranks: agents (best mean rank on top) by ranked members; blank where not ranked."""
    import numpy as np

    ranked = [m for m in members if m.ranked]
    agents = [t["agent"] for t in standing]
    grid = np.full((len(agents), max(1, len(ranked))), np.nan)
    for r in rows:
        if r.rank is not None and r.member in ranked and r.stats.agent in agents:
            grid[agents.index(r.stats.agent), ranked.index(r.member)] = r.rank
    ax = fig.add_subplot(1, 1, 1)
    image = ax.imshow(grid, cmap="viridis_r", aspect="auto", vmin=1, vmax=max(2, len(agents)))
    for i in range(grid.shape[0]):
        for j in range(grid.shape[1]):
            if not np.isnan(grid[i, j]):
                ax.text(j, i, f"{int(grid[i, j])}", ha="center", va="center", fontsize=7, color="white")
    ax.set_yticks(range(len(agents)), agents, fontsize=8)
    labels = [f"{Path(m.video).name.replace('merina_', '')[:14]}\n{m.trace_set}\n{m.scaling}" for m in ranked]
    ax.set_xticks(range(len(ranked)), labels, fontsize=6, rotation=90)
    ax.set_title("Rank per suite member (1 = best; shared where the paired CI spans zero)", fontsize=9)
    fig.colorbar(image, ax=ax, label="rank", shrink=0.8)
