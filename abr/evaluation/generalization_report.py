"""The files of the generalisation protocol: ``generalization.csv``, ``.json``, ``.md`` and ``.png``.

* ``generalization.csv``: one row per (trace set or pooled group, scaling, agent), columns
  :data:`abr.evaluation.generalization_stats.ROW_COLUMNS`; blank where a figure does not apply (the share of the
  optimum where the optimum's mean is not positive, a paired difference of an agent with itself).
* ``generalization.json``: the settings, the model and its provenance summary, the sets and their
  classification, the acceptance checks with their figures, every row, versions and git commit.
* ``generalization.md``: the same as tables, with the command (one results table per scaling evaluated).
* ``generalization.png``: per set, the model's mean QoE minus the better of RobustMPC and BOLA-E with its 95%
  CI, unscaled and scaled side by side, and the model's p10 minus RobustMPC's p10 as open markers.

Every file is written atomically, after the evaluations, so a failed run leaves none of them half-written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from abr.common.atomic import write_csv_atomic, write_json_atomic, write_text_atomic
from abr.common.plotting import save_figure
from abr.common.provenance import git_state, package_versions, utc_timestamp
from abr.common.tables import markdown_table
from abr.evaluation.compare import PairedRow
from abr.evaluation.generalization_stats import ROW_COLUMNS, GeneralizationRow, clean_record
from abr.evaluation.stats import BOOTSTRAP_RESAMPLES, CI_LEVEL
from agents.provenance import provenance_summary

if TYPE_CHECKING:
    from abr.evaluation.generalization import ModelInfo, ProtocolSet

CSV_FILE, JSON_FILE, MARKDOWN_FILE, PLOT_FILE = ("generalization.csv", "generalization.json", "generalization.md",
                                                 "generalization.png")
#: The files :func:`write_generalization_files` writes, by role.
OUTPUT_FILES: dict[str, str] = {"csv": CSV_FILE, "plot": PLOT_FILE, "json": JSON_FILE, "markdown": MARKDOWN_FILE}
JSON_FORMAT = "abr-generalization-v1"
_EXTRA_DISTRIBUTIONS = ("torch", "stable-baselines3")
_PLOT_SIZE_IN = (9.0, 4.8)
_SCALING_STYLE = {"unscaled": ("tab:blue", "o", -0.16), "scaled": ("tab:orange", "s", 0.16)}
#: Beyond this |model - heuristic| the y axis turns symmetric-log, linear within +-_SYMLOG_LINEAR_WITHIN.
_SYMLOG_ABOVE, _SYMLOG_LINEAR_WITHIN = 100.0, 10.0
_SHORT_LABEL = {"in-distribution": "ID", "out-of-distribution": "OOD", "unknown": "?", "mixed": "mixed"}


def versions() -> dict[str, str | None]:
    """The recorded package versions, with torch's and stable-baselines3's."""
    found: dict[str, str | None] = dict(package_versions())
    for dist in _EXTRA_DISTRIBUTIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def write_generalization_files(out: Path, *, model: ModelInfo, sets: Sequence[ProtocolSet],
                               rows: Sequence[GeneralizationRow], checks: Sequence[Mapping[str, Any]],
                               skipped: Sequence[str], scale_factors: Mapping[str, Mapping[str, float]],
                               settings: Mapping[str, Any], command: str | None) -> dict[str, Path]:
    """Write the four files into ``out`` (the plot and tables first, the report last); returns them by role."""
    out.mkdir(parents=True, exist_ok=True)
    records = [clean_record(r.as_record()) for r in rows]
    document = {
        "format": JSON_FORMAT, "created_utc": utc_timestamp(), "command": command,
        "model": {"path": str(model.path), "sha256": hashlib.sha256(Path(model.path).read_bytes()).hexdigest(),
                  "agent": model.agent, "provenance": provenance_summary(model.provenance)},
        "settings": dict(settings),
        "sets": [{**s.summary(), "scale_factors": {k: v.get(s.name) for k, v in scale_factors.items()}}
                 for s in sets],
        "skipped_sets": list(skipped),
        "checks": list(checks),
        "rows": records,
        "evaluations": {scaling: scaling for scaling in scale_factors},
        "bootstrap": {"method": "percentile", "resamples": BOOTSTRAP_RESAMPLES, "level": CI_LEVEL},
        "versions": versions(),
        "git": git_state(),
    }
    files = {
        "csv": write_csv_atomic(out / CSV_FILE, ROW_COLUMNS, ([rec[c] for c in ROW_COLUMNS] for rec in records)),
        "plot": save_figure(out / PLOT_FILE, lambda fig: draw_summary(fig, rows, model.agent),
                            figsize_in=_PLOT_SIZE_IN),
        "json": write_json_atomic(out / JSON_FILE, document),
    }
    files["markdown"] = write_text_atomic(out / MARKDOWN_FILE, render_markdown(document, rows, model.agent))
    return files


def _num(value: float | None, digits: int = 2, signed: bool = False) -> str:
    if value is None:
        return ""
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def _diff_cell(diff: PairedRow | None) -> str:
    if diff is None:
        return ""
    mark = " *" if diff.is_significant else ""
    return f"{diff.mean_diff:+.2f} [{diff.ci_low:+.2f}, {diff.ci_high:+.2f}]{mark}"


def _optimum_cell(row: GeneralizationRow) -> str:
    if row.pct_of_optimum is not None:
        return f"{row.pct_of_optimum:.1f}%"
    return "" if row.diff_vs_optimum is None else f"Δ {row.diff_vs_optimum:+.2f}"


def results_table(rows: Sequence[GeneralizationRow], scaling: str, model_agent: str) -> list[str]:
    """Markdown table lines of one scaling: one row per (set, agent)."""
    cells = []
    for r in rows:
        if r.scaling != scaling:
            continue
        best = r.vs.get("best")
        cells.append((r.trace_set, r.label, "**model**" if r.agent == model_agent else r.agent, r.n,
                      f"{r.mean:.2f} [{r.ci_low:.2f}, {r.ci_high:.2f}]", f"{r.median:.2f}", f"{r.p10:.2f}",
                      f"{r.worst5_mean:.2f}", f"{100 * r.rebuffer_ratio:.2f}%", _optimum_cell(r),
                      _diff_cell(r.vs.get("robustmpc")), _diff_cell(r.vs.get("bola_e")),
                      f"{_diff_cell(best)}{f' ({best.baseline})' if best else ''}",
                      "" if best is None else f"{best.win_rate:.0%}"))
    return markdown_table(("set", "label", "agent", "n", "mean [95% CI]", "median", "p10", "worst 5%", "rebuffer",
                           "of optimum", "− robustmpc [95% CI]", "− bola-e [95% CI]", "− best of the two [95% CI]",
                           "win vs best"), cells, align="lllrrrrrrrrrrr")


def _figures_text(figures: Mapping[str, Any]) -> str:
    parts = []
    for key, value in figures.items():
        if isinstance(value, Mapping):
            parts.append(f"{key}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in value.items()))
        else:
            parts.append(f"{key} {_fmt(value)}")
    return "; ".join(parts)


def _fmt(value: Any) -> str:
    return f"{value:.2f}" if isinstance(value, float) else "–" if value is None else str(value)


_RESULT_TEXT = {True: "**pass**", False: "**FAIL**", None: "n/a"}


def checks_table(checks: Sequence[Mapping[str, Any]]) -> list[str]:
    """Markdown table lines of the acceptance checks."""
    return markdown_table(
        ("check", "criterion", "set", "result", "figures"),
        [(c["name"], c["criterion"], c["trace_set"] or "", _RESULT_TEXT[c["passed"]],
          _figures_text(c["figures"]) + (f" ({c['note']})" if c.get("note") else "")) for c in checks])


def _provenance_lines(summary: Mapping[str, Any]) -> list[str]:
    if not summary.get("recorded"):
        return ["**No provenance recorded**: the model file carries no record of its training traces (saved before "
                "`abr train` recorded provenance, or trained elsewhere). Nothing is labelled out-of-distribution; "
                "every set is labelled `unknown`.", ""]
    lines = []
    for part in ("train", "validation"):
        p = summary[part]
        lines.append(f"- {part}: families {', '.join(f'`{f}`' for f in p['families']) or '–'}; sets "
                     f"{', '.join(f'`{s}`' for s in p['trace_sets']) or '–'}; {p['n_traces']} traces "
                     f"({p['n_fingerprints']} distinct by content)")
    if summary.get("synthetic"):
        lines.append(f"- synthetic traces: {summary['synthetic']}")
    if summary.get("init_from"):
        parent = summary["init_from"]
        known = "recorded" if parent["provenance"].get("recorded") else "not recorded"
        lines.append(f"- fine-tuned from `{parent['path']}` (its provenance: {known})")
    if not summary.get("complete"):
        lines.append("- the provenance is incomplete (a parent model records none): every set is labelled `unknown`")
    return [*lines, ""]


def render_markdown(document: Mapping[str, Any], rows: Sequence[GeneralizationRow], model_agent: str) -> str:
    """The text of ``generalization.md`` from the JSON document and the rows."""
    settings = document["settings"]
    evaluated = list(document["evaluations"])
    lines = ["# Generalisation report", ""]
    if document.get("command"):
        lines += ["Command:", "", "```", document["command"], "```", ""]
    digest = document["model"].get("sha256")  # reports written before it was recorded have none
    lines += ["## Model", "", f"`{document['model']['path']}` (agent `{model_agent}`"
              + (f", sha256 `{digest}`)" if digest else ")"), "", "Provenance:", "",
              *_provenance_lines(document["model"]["provenance"])]
    lines += ["## Trace sets", "",
              "Seen: traces whose content (fingerprint) the model was trained or validated on, under any name. An "
              "out-of-distribution set is played without its seen traces.", "",
              *markdown_table(
                  ("set", "family", "label", "traces", "seen", "played", "scale factor (scaled)"),
                  [(s["name"], s["family"], s["label"], s["n_traces"], s["n_seen"], s["n_evaluated"],
                    _num(s["scale_factors"].get("scaled"), 3) if "scaled" in evaluated else "not run")
                   for s in document["sets"]],
                  align="lllrrrr")]
    if document["skipped_sets"]:
        lines.append(f"\nDefault sets not in the data directory (skipped): {', '.join(document['skipped_sets'])}")
    lines += ["", "## Acceptance checks", "", *checks_table(document["checks"]), ""]
    lines += ["## Summary plot", "", f"![model minus the best heuristic]({PLOT_FILE})", ""]
    for scaling in evaluated:
        title = "as recorded" if scaling == "unscaled" else (f"each set scaled to a time-weighted mean of "
                                                             f"{settings['scale_mean_mbps']} Mbit/s")
        lines += [f"## Results, {scaling} ({title})", "",
                  "QoE excluding the first chunk; differences are paired on the same traces (95% bootstrap CI, "
                  "`*`: excludes zero); the share of the optimum only where the optimum's mean is positive, "
                  "else Δ optimum.", "", *results_table(rows, scaling, model_agent), ""]
    not_run = [s for s in ("unscaled", "scaled") if s not in evaluated]
    if not_run:
        lines += [f"Not evaluated (`--scalings {','.join(evaluated)}`): {', '.join(not_run)}; the checks that need "
                  "it are n/a.", ""]
    git = document["git"]
    ladder = settings.get("video_ladder_kbps")
    ladder_text = "" if not ladder else (f" (ladder {', '.join(f'{k:g}' for k in ladder)} kbit/s"
                                         f"{', from --ladder-kbps' if settings.get('ladder_kbps') else ''})")
    lines += ["## Setup", "",
              f"- preset `{settings['preset']}`, video `{settings['video']}`{ladder_text}, seed {settings['seed']}, "
              "agents " + ", ".join(f"`{a}`" for a in settings["agents"]),
              "- evaluations (sessions, chunks, summaries, their own reports): "
              + ", ".join(f"`{name}/`" for name in document["evaluations"]),
              "- versions: " + ", ".join(f"{k} {v}" for k, v in document["versions"].items()),
              f"- git commit {git.get('commit')}{' (dirty)' if git.get('dirty') else ''}", ""]
    return "\n".join(lines)


def draw_summary(fig: Any, rows: Sequence[GeneralizationRow], model_agent: str) -> None:
    """Per set: the model's mean minus the best of RobustMPC/BOLA-E (CI bars), unscaled and scaled; p10 gaps."""
    ax = fig.add_subplot()
    models = [r for r in rows if r.agent == model_agent]
    names = list(dict.fromkeys(r.trace_set for r in models))
    labels = {r.trace_set: r.label for r in models}
    for idx, name in enumerate(names):
        if labels[name] == "out-of-distribution":
            ax.axvspan(idx - 0.5, idx + 0.5, color="0.93", zorder=0)
    for scaling, (colour, marker, offset) in _SCALING_STYLE.items():
        mine = {r.trace_set: r for r in models if r.scaling == scaling}
        xs = [i + offset for i, n in enumerate(names) if n in mine and "best" in mine[n].vs]
        diffs = [mine[n].vs["best"] for n in names if n in mine and "best" in mine[n].vs]
        if diffs:
            ax.errorbar(xs, [d.mean_diff for d in diffs],
                        yerr=[[d.mean_diff - d.ci_low for d in diffs], [d.ci_high - d.mean_diff for d in diffs]],
                        fmt=marker, color=colour, capsize=3, label=f"mean − best heuristic, {scaling}")
        p10 = [(i + offset, _p10_gap(rows, n, scaling, mine.get(n))) for i, n in enumerate(names)]
        p10 = [(x, y) for x, y in p10 if y is not None]
        if p10:
            ax.scatter([x for x, _ in p10], [y for _, y in p10], marker="D", facecolors="none", edgecolors=colour,
                       label=f"p10 − robustmpc p10, {scaling}")
    ax.axhline(0.0, color="0.3", linewidth=0.8)
    extent = max((abs(v) for line in ax.get_lines() for v in line.get_ydata()), default=0.0)
    if extent > _SYMLOG_ABOVE:  # a far-off set would flatten all others: symmetric log scale
        ax.set_yscale("symlog", linthresh=_SYMLOG_LINEAR_WITHIN)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels([f"{n}\n({_SHORT_LABEL.get(labels[n], labels[n])})" for n in names], fontsize=7,
                       rotation=30, ha="right", rotation_mode="anchor")
    ax.set_ylabel("model − heuristic, QoE excl. first chunk")
    ax.set_title("Model vs max(RobustMPC, BOLA-E) per set (95% CI); shaded: out-of-distribution", fontsize=9)
    ax.legend(fontsize=7, loc="best")


def _p10_gap(rows: Sequence[GeneralizationRow], trace_set: str, scaling: str,
             mine: GeneralizationRow | None) -> float | None:
    theirs = next((r for r in rows if (r.trace_set, r.scaling, r.agent) == (trace_set, scaling, "robustmpc")), None)
    return None if mine is None or theirs is None else mine.p10 - theirs.p10
