"""The per-session and per-chunk tables of an evaluation (``sessions.csv``, ``chunks.csv``): their columns, the
row of a session, and the writer. The real player's sessions (:mod:`abr.player`) are written in the same schema,
so a browser session and a simulated one compare column by column."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from abr.common.atomic import write_csv_atomic
from abr.evaluation.tasks import SessionResult
from simulator.records import ChunkOutcome
from traces.units import bps_to_kbps, bps_to_mbps

SESSION_COLUMNS: tuple[str, ...] = (
    "agent", "trace_set", "trace", "video", "qoe", "qoe_excl_first", "qoe_mean_per_chunk", "utility",
    "rebuffer_penalty", "smoothness_penalty", "avg_bitrate_kbps", "rebuffer_s", "rebuffer_excl_first_s",
    "rebuffer_ratio", "smoothness_mbps", "switch_count", "startup_delay_s", "downloaded_bits", "n_chunks",
    "session_time_s",
)
CHUNK_COLUMNS: tuple[str, ...] = ("agent", "trace_set", "trace", "video", *ChunkOutcome._fields)


def session_row(result: SessionResult) -> dict[str, str | int | float]:
    """The ``sessions.csv`` row (bitrates in kbit/s, smoothness in Mbit/s, as the column names say)."""
    m = result.metrics
    return {
        "agent": result.agent, "trace_set": result.trace_set, "trace": result.trace, "video": result.video,
        "qoe": m.qoe, "qoe_excl_first": m.qoe_excl_first, "qoe_mean_per_chunk": m.qoe_mean_per_chunk,
        "utility": m.utility, "rebuffer_penalty": m.rebuffer_penalty,
        "smoothness_penalty": m.smoothness_penalty, "avg_bitrate_kbps": bps_to_kbps(m.avg_bitrate_bps),
        "rebuffer_s": m.rebuffer_s, "rebuffer_excl_first_s": m.rebuffer_excl_first_s,
        "rebuffer_ratio": m.rebuffer_ratio, "smoothness_mbps": bps_to_mbps(m.smoothness_bps),
        "switch_count": m.switch_count, "startup_delay_s": m.startup_delay_s,
        "downloaded_bits": m.downloaded_bits, "n_chunks": m.n_chunks, "session_time_s": m.session_time_s,
    }


def write_session_tables(out: Path, sessions: Sequence[SessionResult],
                         rows: Sequence[Mapping[str, object]] | None = None) -> dict[str, Path]:
    """Write ``sessions.csv`` and ``chunks.csv`` of ``sessions`` into ``out`` (atomically); ``rows`` are their
    :func:`session_row` rows when already computed."""
    rows = rows if rows is not None else [session_row(s) for s in sessions]
    chunk_rows = ((s.agent, s.trace_set, s.trace, s.video, *o) for s in sessions for o in s.outcomes)
    return {
        "sessions": write_csv_atomic(out / "sessions.csv", SESSION_COLUMNS,
                                     ([r[c] for c in SESSION_COLUMNS] for r in rows)),
        "chunks": write_csv_atomic(out / "chunks.csv", CHUNK_COLUMNS, chunk_rows),
    }
