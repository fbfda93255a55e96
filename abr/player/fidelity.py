"""Simulation against the real player: the same (agent, trace) pairs in both, and the gap of each QoE component.

:func:`fidelity` plays every agent on every trace in chromium (:func:`abr.player.browser.play_session`) and in
the SimPy core with the same content (its chunk-size table), link parameters and buffer target, and
writes to ``out_dir``:

* ``fidelity.csv``: one row per (agent, trace): each component for the real and the simulated session and
  their gap (real - simulated; for the bitrate also relative);
* ``fidelity_summary.csv``: per agent, the mean of each gap and of its absolute value;
* ``real/`` and ``sim/``: both sides in the schema of ``abr evaluate`` (``sessions.csv``, ``chunks.csv``);
* ``fidelity.md``: the table, readable.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from abr.common.atomic import write_csv_atomic, write_text_atomic
from abr.common.tables import markdown_table
from abr.evaluation.tables import session_row, write_session_tables
from abr.evaluation.tasks import SessionResult
from abr.player.browser import PLAYER_SET, PlayResult, play_session, write_session
from abr.player.content import Content
from agents.registry import make_agent
from simulator.config import SimConfig
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.rollout import run_session
from traces.types import Trace

#: The compared components: ``sessions.csv`` columns.
COMPONENTS: tuple[str, ...] = ("qoe", "utility", "rebuffer_penalty", "smoothness_penalty", "avg_bitrate_kbps",
                               "rebuffer_s", "startup_delay_s", "switch_count")
FIDELITY_COLUMNS: tuple[str, ...] = (
    "agent", "trace", *(f"{c}_{side}" for c in COMPONENTS for side in ("real", "sim", "gap")),
    "bitrate_rel_gap", "mean_download_s_real", "mean_download_s_sim", "decide_ms_p50", "decide_ms_max",
)


@dataclass(frozen=True, slots=True)
class FidelityRow:
    agent: str
    trace: str
    real: dict[str, float]
    sim: dict[str, float]
    decide_ms_p50: float
    decide_ms_max: float
    download_real: float
    download_sim: float

    @property
    def bitrate_rel_gap(self) -> float:
        return (self.real["avg_bitrate_kbps"] - self.sim["avg_bitrate_kbps"]) / self.sim["avg_bitrate_kbps"]

    def as_tuple(self) -> tuple[object, ...]:
        values: list[object] = [self.agent, self.trace]
        for c in COMPONENTS:
            values += [self.real[c], self.sim[c], self.real[c] - self.sim[c]]
        return (*values, self.bitrate_rel_gap, self.download_real, self.download_sim, self.decide_ms_p50,
                self.decide_ms_max)


#: Every file :func:`fidelity` writes into its folder (``real/`` and ``sim/`` hold the sessions' tables).
OUTPUT_FILES: tuple[str, ...] = (
    "fidelity.csv", "fidelity_summary.csv", "fidelity.md", "real/sessions.csv", "real/chunks.csv",
    "real/decisions.csv", "real/transfers.csv", "real/player_log.json", "sim/sessions.csv", "sim/chunks.csv",
)


def simulated_session(agent: str, trace: Trace, content: Content, sim_config: SimConfig,
                      qoe: QoEWeights) -> SessionResult:
    """The simulator's session of ``agent`` on ``trace`` with the content's sizes."""
    video = content.video()
    outcomes = run_session(make_agent(agent), trace, video, sim_config, qoe=qoe)
    metrics = session_metrics(outcomes, video, qoe, chunk_duration_s=video.chunk_duration_s)
    return SessionResult(agent, PLAYER_SET, trace.name, metrics, tuple(outcomes), video=video.name)


def fidelity(agents: Sequence[str], traces: Sequence[Trace], content: Content, sim_config: SimConfig,
             qoe: QoEWeights, out_dir: str | Path, *, speed: float = 4.0,
             progress: Callable[[int, int, str], None] | None = None) -> list[FidelityRow]:
    """Play every (agent, trace) pair in the real player and the simulator; write the comparison."""
    out = Path(out_dir)
    real: list[PlayResult] = []
    sim: list[SessionResult] = []
    rows: list[FidelityRow] = []
    total = len(agents) * len(traces)
    for agent in agents:
        for trace in traces:
            if progress is not None:
                progress(len(rows), total, f"{agent} on {trace.name}")
            r = play_session(agent, trace, content, sim_config, qoe, speed=speed)
            s = simulated_session(agent, trace, content, sim_config, qoe)
            real.append(r)
            sim.append(s)
            rows.append(FidelityRow(
                agent, trace.name, _components(r.result), _components(s), r.decision_ms_p50, r.decision_ms_max,
                statistics.fmean(o.download_time_s for o in r.result.outcomes),
                statistics.fmean(o.download_time_s for o in s.outcomes)))
    if progress is not None:
        progress(total, total, "done")
    write_session(real, out / "real")
    (out / "sim").mkdir(parents=True, exist_ok=True)
    write_session_tables(out / "sim", sim)
    write_csv_atomic(out / "fidelity.csv", FIDELITY_COLUMNS, (row.as_tuple() for row in rows))
    summary = summarize(rows)
    write_csv_atomic(out / "fidelity_summary.csv", ("agent", "metric", "n", "mean_gap", "mean_abs_gap"),
                     summary)
    write_text_atomic(out / "fidelity.md", _markdown(rows, summary, speed))
    return rows


def _components(result: SessionResult) -> dict[str, float]:
    row = session_row(result)
    return {c: float(row[c]) for c in COMPONENTS}


def summarize(rows: Sequence[FidelityRow]) -> list[tuple[str, str, int, float, float]]:
    """Per agent and component: sessions, mean gap and mean absolute gap (bitrate also relative)."""
    out: list[tuple[str, str, int, float, float]] = []
    for agent in dict.fromkeys(r.agent for r in rows):
        mine = [r for r in rows if r.agent == agent]
        for c in COMPONENTS:
            gaps = [r.real[c] - r.sim[c] for r in mine]
            out.append((agent, c, len(gaps), statistics.fmean(gaps), statistics.fmean(abs(g) for g in gaps)))
        rel = [r.bitrate_rel_gap for r in mine]
        out.append((agent, "bitrate_rel_gap", len(rel), statistics.fmean(rel), statistics.fmean(abs(g) for g in rel)))
        rel_mean = (statistics.fmean(r.real["avg_bitrate_kbps"] for r in mine)
                    / statistics.fmean(r.sim["avg_bitrate_kbps"] for r in mine) - 1.0)
        out.append((agent, "mean_bitrate_rel_gap", len(mine), rel_mean, abs(rel_mean)))
    return out


def _markdown(rows: Sequence[FidelityRow], summary: Sequence[tuple[str, str, int, float, float]],
              speed: float) -> str:
    lines = [f"# Simulator vs real player ({len(rows)} sessions, {speed:g}x)", "",
             *markdown_table(
                 ("agent", "trace", "bitrate real", "bitrate sim", "gap %", "rebuffer real s", "rebuffer sim s",
                  "startup real s", "startup sim s", "QoE real", "QoE sim", "decision ms p50 / max"),
                 [(r.agent, r.trace, f"{r.real['avg_bitrate_kbps']:.0f}", f"{r.sim['avg_bitrate_kbps']:.0f}",
                   f"{100 * r.bitrate_rel_gap:+.1f}", f"{r.real['rebuffer_s']:.2f}", f"{r.sim['rebuffer_s']:.2f}",
                   f"{r.real['startup_delay_s']:.2f}", f"{r.sim['startup_delay_s']:.2f}", f"{r.real['qoe']:.1f}",
                   f"{r.sim['qoe']:.1f}", f"{r.decide_ms_p50:.3f} / {r.decide_ms_max:.3f}") for r in rows]),
             "",
             *markdown_table(("agent", "metric", "n", "mean gap (real - sim)", "mean abs gap"),
                             [(a, m, n, f"{g:+.4g}", f"{ag:.4g}") for a, m, n, g, ag in summary])]
    return "\n".join(lines) + "\n"
