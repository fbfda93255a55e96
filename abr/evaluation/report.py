"""The Markdown report and plots of an evaluation.

``report.md`` holds the command (if given), the setup, and one table row per (agent, trace set) plus one
per agent over all sets (``all``): sessions, mean QoE with its 95% bootstrap CI, mean QoE without the
first chunk, mean bitrate (kbit/s), mean rebuffering (s) and mean smoothness (sum of |bitrate changes|,
Mbit/s); then the % of the offline optimum (when ``optimal`` played) and the paired comparison with the
baseline. It links plots drawn with matplotlib's Agg canvas (matplotlib is imported lazily, only here):

* ``qoe_cdf.png``: CDF of session QoE, one line per agent, all sets pooled;
* ``tradeoff.png``: each agent's mean bitrate against its mean rebuffering, with 95% CIs (log x when they
  span more than 20x);
* ``components.png``: mean QoE components per agent (utility up, rebuffer and smoothness penalties down);
* ``vs_optimum.png`` (with ``optimal``): per-trace QoE of each agent against the optimum's on that trace.

Every number in ``report.md`` comes from the same rows as ``sessions.csv`` and ``summary.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abr.common.atomic import write_text_atomic
from abr.common.plotting import save_figure
from abr.common.tables import markdown_table
from abr.evaluation.compare import OPTIMUM_AGENT, OptimumRow, PairedRow
from abr.evaluation.stats import SummaryRow

REPORT_FILE = "report.md"
QOE_CDF_FILE = "qoe_cdf.png"
TRADEOFF_FILE = "tradeoff.png"
COMPONENTS_FILE = "components.png"
VS_OPTIMUM_FILE = "vs_optimum.png"
#: Every file :func:`write_report` may write.
REPORT_FILES: tuple[str, ...] = (REPORT_FILE, QOE_CDF_FILE, TRADEOFF_FILE, COMPONENTS_FILE, VS_OPTIMUM_FILE)
#: A failed session as the report lists it: (agent, trace set, trace, reason).
Failure = tuple[str, str, str, str]
# Beyond ten agents the colour cycle repeats: the markers / line styles tell the repeats apart.
_MARKERS = ("o", "s", "D", "^")
_LINESTYLES = ("-", "--", ":", "-.")


def write_report(out: Path, rows: Sequence[Mapping[str, Any]], summary: Sequence[SummaryRow], *,
                 command: str | None, config: Mapping[str, Any], paired: Sequence[PairedRow] = (),
                 optimum: Sequence[OptimumRow] = (), failures: Sequence[Failure] = ()) -> dict[str, Path]:
    """Write the plots, then ``report.md`` (last, so it only links plots that exist).

    Args:
        out: the output folder.
        rows: the ``sessions.csv`` rows as mappings.
        summary: the summary rows.
        command: the command line, if known.
        config: the resolved configuration (as in ``config.json``).
        paired: the paired comparisons with the baseline.
        optimum: the % of the offline optimum per agent.
        failures: the sessions that failed, listed at the top of the report.

    Returns:
        The paths written, by role: ``"qoe_cdf"``, ``"tradeoff"``, ``"components"``, ``"vs_optimum"`` (with the
        optimum) and ``"report"``.
    """
    files = {
        "qoe_cdf": save_figure(out / QOE_CDF_FILE, lambda fig: _draw_qoe_cdf(fig, rows)),
        "tradeoff": save_figure(out / TRADEOFF_FILE, lambda fig: _draw_tradeoff(fig, summary)),
        "components": save_figure(out / COMPONENTS_FILE, lambda fig: _draw_components(fig, summary)),
    }
    if optimum:
        files["vs_optimum"] = save_figure(out / VS_OPTIMUM_FILE, lambda fig: _draw_vs_optimum(fig, rows))
    text = render_markdown(summary, command=command, config=config, paired=paired, optimum=optimum,
                           failures=failures)
    files["report"] = write_text_atomic(out / REPORT_FILE, text)
    return files


def report_file_names(*, optimum: bool) -> dict[str, str]:
    """The files :func:`write_report` writes, by role (``vs_optimum`` only with the optimum)."""
    names = {"qoe_cdf": QOE_CDF_FILE, "tradeoff": TRADEOFF_FILE, "components": COMPONENTS_FILE}
    if optimum:
        names["vs_optimum"] = VS_OPTIMUM_FILE
    return {**names, "report": REPORT_FILE}


def render_markdown(summary: Sequence[SummaryRow], *, command: str | None, config: Mapping[str, Any],
                    paired: Sequence[PairedRow] = (), optimum: Sequence[OptimumRow] = (),
                    failures: Sequence[Failure] = ()) -> str:
    """The text of ``report.md``."""
    lines = ["# ABR evaluation report", ""]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    if failures:
        lines += [f"## {len(failures)} sessions failed", "",
                  "They are left out of every table below; comparisons pair only the traces both agents finished "
                  "(their n says how many). Reasons (`failures.csv`):", "",
                  *markdown_table(("agent", "trace set", "trace", "reason"), failures), ""]
    lines += _setup_lines(config)
    lines += ["## Results", "", *results_table(summary), ""]
    lines += [
        "QoE is the sum over a session's chunks; the CI is a 95% percentile bootstrap of the mean "
        "(1000 resamples, seeded). Bitrate, rebuffering and smoothness are means over sessions; "
        "smoothness is the sum of |bitrate changes| in Mbit/s. Per-session values: "
        "`sessions.csv`; all statistics: `summary.csv`.",
        "",
    ]
    if optimum:
        lines += ["## Share of the offline optimum", "", *optimum_table(optimum), "",
                  "100 x mean QoE (chunks 2..N) / the offline optimum's mean QoE on the same traces, with a "
                  "95% bootstrap CI over traces (`optimum.csv`).", ""]
    if paired:
        lines += [f"## Paired comparison with `{paired[0].baseline}`", "", *paired_table(paired), "",
                  "Mean over traces of (agent - baseline) QoE excluding the first chunk, 95% bootstrap CI; "
                  "win/tie/loss: share of traces where the agent is better/equal/worse (`paired.csv`).", ""]
    lines += ["## Plots", "", f"![QoE CDF]({QOE_CDF_FILE})", "", f"![Bitrate vs rebuffering]({TRADEOFF_FILE})", "",
              f"![QoE components]({COMPONENTS_FILE})", ""]
    if optimum:
        lines += [f"![Per-trace QoE vs the offline optimum]({VS_OPTIMUM_FILE})", ""]
    return "\n".join(lines)


def optimum_table(optimum: Sequence[OptimumRow]) -> list[str]:
    """Markdown table lines of the % of the offline optimum, per (agent, trace set)."""
    return markdown_table(
        ("agent", "trace set", "n", "QoE excl. first", "optimum", "% of optimum [95% CI]"),
        [(r.agent, r.trace_set, r.n, f"{r.mean:.2f}", f"{r.optimum_mean:.2f}",
          f"{r.pct_of_optimum:.1f} [{r.ci_low:.1f}, {r.ci_high:.1f}]") for r in optimum if r.agent != OPTIMUM_AGENT],
        align="llrrrr")


def paired_table(paired: Sequence[PairedRow], metric: str = "qoe_excl_first") -> list[str]:
    """Markdown table lines of the paired comparison on ``metric``."""
    return markdown_table(
        ("agent", "trace set", "n", "mean difference [95% CI]", "win", "tie", "loss"),
        [(r.agent, r.trace_set, r.n,
          f"{r.mean_diff:+.2f} [{r.ci_low:+.2f}, {r.ci_high:+.2f}]{' *' if r.is_significant else ''}",
          f"{r.win_rate:.0%}", f"{r.tie_rate:.0%}", f"{r.loss_rate:.0%}") for r in paired if r.metric == metric],
        align="llrrrrr")


def results_table(summary: Sequence[SummaryRow]) -> list[str]:
    """Markdown table lines: one row per (agent, trace set), ``all`` rows included."""
    stats = {(r.agent, r.trace_set, r.metric): r for r in summary}
    groups = list(dict.fromkeys((r.agent, r.trace_set) for r in summary))
    rows = []
    for agent, set_name in groups:
        qoe = stats[(agent, set_name, "qoe")]
        rows.append((agent, set_name, qoe.n, f"{qoe.mean:.2f} [{qoe.ci_low:.2f}, {qoe.ci_high:.2f}]",
                     *(f"{stats[(agent, set_name, m)].mean:.2f}"
                       for m in ("qoe_excl_first", "avg_bitrate_kbps", "rebuffer_s", "smoothness_mbps"))))
    return markdown_table(("agent", "trace set", "n", "mean QoE [95% CI]", "QoE excl. first", "bitrate kbps",
                           "rebuffer s", "smoothness Mbit/s"), rows, align="llrrrrrr")


def _setup_lines(config: Mapping[str, Any]) -> list[str]:
    videos = config.get("videos", [])
    sets = config.get("trace_sets", {})
    set_text = ", ".join(f"`{name}` ({info.get('count')} traces)" for name, info in sets.items())
    sim = config.get("sim_config", {})
    meta = config.get("metadata", {})
    preset = f"preset `{meta['preset']}`, " if "preset" in meta else ""
    return [
        "## Setup",
        "",
        f"- Agents: {', '.join(f'`{a}`' for a in config.get('agents', []))}",
        f"- Trace sets: {set_text}",
        "- Video: " + "; ".join(f"`{v.get('name')}` ({v.get('n_chunks')} chunks, {v.get('n_levels')} levels)"
                                 for v in videos) + f"; at most {sim.get('max_chunks') or 'all'} chunks played",
        f"- Simulator: {preset}max buffer {sim.get('max_buffer_s')} s, RTT {sim.get('link_rtt_s')} s",
        f"- QoE: `{config.get('qoe', {}).get('kind')}`; seed {config.get('seed')}",
        "",
    ]


def _by_agent(rows: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        groups.setdefault(str(row["agent"]), []).append(row)
    return groups


def _outlier_floor(lows: Sequence[float]) -> float | None:
    """An axis floor that keeps one far-off agent (the random floor, say) from squashing all the others.

    Returns the second-lowest of the agents' low values when the lowest is more than twice as far below
    it as the spread of the rest; else ``None`` (no cut).
    """
    ordered = sorted(lows)
    if len(ordered) < 3:
        return None
    spread = max(ordered[-1] - ordered[1], 1e-9)
    return ordered[1] if ordered[1] - ordered[0] > 2.0 * spread else None


def _draw_qoe_cdf(fig: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    ax = fig.add_subplot()
    groups = _by_agent(rows)
    lows = [float(np.percentile([float(r["qoe"]) for r in mine], 2)) for mine in groups.values()]
    for idx, (agent, mine) in enumerate(groups.items()):
        values = np.sort([float(r["qoe"]) for r in mine])
        share = np.arange(values.size + 1) / values.size
        ax.step(np.concatenate((values[:1], values)), share, where="post", label=agent, color=f"C{idx % 10}",
                linestyle=_LINESTYLES[idx // 10 % 4])
    floor = _outlier_floor(lows)
    label = "session QoE"
    if floor is not None:
        high = max(float(r["qoe"]) for r in rows)
        ax.set_xlim(floor - 0.05 * (high - floor), high + 0.05 * (high - floor))
        label += f" (axis cut at {floor:.0f}: {', '.join(a for a, lo in zip(groups, lows) if lo < floor)} runs off)"
    ax.set_xlabel(label)
    ax.set_ylabel("CDF (share of sessions)")
    ax.set_ylim(0.0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small")


def _draw_tradeoff(fig: Any, summary: Sequence[SummaryRow]) -> None:
    ax = fig.add_subplot()
    stats = {(r.agent, r.metric): r for r in summary if r.trace_set == "all"}
    agents = list(dict.fromkeys(r.agent for r in summary))
    for idx, agent in enumerate(agents):
        reb, rate = stats[(agent, "rebuffer_s")], stats[(agent, "avg_bitrate_kbps")]
        ax.errorbar([reb.mean], [rate.mean], xerr=[[reb.mean - reb.ci_low], [reb.ci_high - reb.mean]],
                    yerr=[[rate.mean - rate.ci_low], [rate.ci_high - rate.mean]], fmt=_MARKERS[idx // 10 % 4],
                    color=f"C{idx % 10}",
                    capsize=3, label=agent)
    means = [stats[(a, "rebuffer_s")].mean for a in agents]
    if min(means) > 0 and max(means) / min(means) > 20:
        ax.set_xscale("log")
    ax.set_xlabel("mean rebuffering per session (s), 95% CI")
    ax.set_ylabel("mean bitrate (kbit/s), 95% CI")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize="small", ncols=2)


def _draw_components(fig: Any, summary: Sequence[SummaryRow]) -> None:
    ax = fig.add_subplot()
    means = {(r.agent, r.metric): r.mean for r in summary if r.trace_set == "all"}
    agents = list(dict.fromkeys(r.agent for r in summary))
    x = np.arange(len(agents))
    utility = np.array([means[(a, "utility")] for a in agents])
    rebuffer = np.array([means[(a, "rebuffer_penalty")] for a in agents])
    smooth = np.array([means[(a, "smoothness_penalty")] for a in agents])
    ax.bar(x, utility, color="C2", label="utility")
    ax.bar(x, -rebuffer, color="C3", label="rebuffer penalty")
    ax.bar(x, -smooth, bottom=-rebuffer, color="C1", label="smoothness penalty")
    ax.scatter(x, utility - rebuffer - smooth, color="black", marker="D", zorder=3, label="QoE (sum)")
    ax.axhline(0.0, color="black", linewidth=0.8)
    floor = _outlier_floor(list(-(rebuffer + smooth)))
    if floor is not None:
        ax.set_ylim(1.15 * floor, 1.15 * max(float(utility.max()), 1e-9))
        for idx, total in enumerate(rebuffer + smooth):
            if -total < 1.15 * floor:
                ax.annotate(f"{-total:.0f}", (x[idx], 1.1 * floor), ha="center", va="bottom", fontsize="small")
    ax.set_xticks(x, agents, rotation=30, ha="right")
    ax.set_ylabel("mean per session (all trace sets)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="best", fontsize="small")


def _draw_vs_optimum(fig: Any, rows: Sequence[Mapping[str, Any]]) -> None:
    ax = fig.add_subplot()
    best = {(r["trace_set"], r["trace"]): float(r["qoe_excl_first"]) for r in rows if r["agent"] == OPTIMUM_AGENT}
    for idx, (agent, mine) in enumerate(_by_agent(rows).items()):
        if agent == OPTIMUM_AGENT:
            continue
        x = [best[(r["trace_set"], r["trace"])] for r in mine]
        y = [float(r["qoe_excl_first"]) for r in mine]
        ax.scatter(x, y, s=8, alpha=0.4, color=f"C{idx % 10}", marker=_MARKERS[idx // 10 % 4], label=agent)
    if best:
        low, high = min(best.values()), max(best.values())
        ax.plot([low, high], [low, high], color="black", linewidth=1.0, label="= optimum")
        groups = {a: m for a, m in _by_agent(rows).items() if a != OPTIMUM_AGENT}
        lows = [float(np.percentile([float(r["qoe_excl_first"]) for r in m], 2)) for m in groups.values()]
        floor = _outlier_floor(lows)
        if floor is not None:
            ax.set_ylim(floor - 0.05 * (high - floor), high + 0.05 * (high - floor))
            ax.set_title(f"y axis cut at {floor:.0f}: " + ", ".join(a for a, lo in zip(groups, lows) if lo < floor)
                         + " runs off", fontsize="small")
    ax.set_xlabel("offline optimum QoE on the trace (chunks 2..N)")
    ax.set_ylabel("agent QoE on the trace (chunks 2..N)")
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", fontsize="small", markerscale=2)
