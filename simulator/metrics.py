"""Per-session metrics, all computed from the chunk outcomes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from simulator.qoe import QoEWeights, qoe_terms
from simulator.records import ChunkOutcome
from traces.types import Video


@dataclass(frozen=True, slots=True)
class SessionMetrics:
    """Summary of one session. QoE terms are sums over chunks under the chosen :class:`QoEWeights`.

    ``*_excl_first`` leave out the first chunk, the convention of the Pensieve paper's plots (the first
    chunk is the same for every policy in the research simulator).
    """

    qoe: float
    qoe_excl_first: float
    qoe_mean_per_chunk: float
    utility: float
    rebuffer_penalty: float
    smoothness_penalty: float
    avg_bitrate_bps: float
    rebuffer_s: float
    rebuffer_excl_first_s: float
    rebuffer_ratio: float
    smoothness_bps: float
    switch_count: int
    startup_delay_s: float
    downloaded_bits: float
    session_time_s: float
    n_chunks: int

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def session_metrics(outcomes: Sequence[ChunkOutcome], bitrates_bps: npt.ArrayLike | Video,
                    weights: QoEWeights, *, chunk_duration_s: float) -> SessionMetrics:
    """Metrics of a finished session.

    Args:
        outcomes: the chunk outcomes, in order.
        bitrates_bps: the video's ladder, in bits per second, or the video itself (needed by the ``ssim`` QoE,
            whose utility is each chunk's quality).
        weights: the QoE model.
        chunk_duration_s: playback duration of one chunk, in seconds (for the rebuffer ratio).

    >>> from simulator.records import ChunkOutcome
    >>> o = [ChunkOutcome(0, 1, 750e3, 3e6, 0, 1, 1, 3e6, 1.0, 0, 4, 0),
    ...      ChunkOutcome(1, 0, 300e3, 1e6, 1, 2, 1, 1e6, 0.0, 0, 7, 0)]
    >>> m = session_metrics(o, [300e3, 750e3], QoEWeights(), chunk_duration_s=4.0)
    >>> round(m.qoe, 6), round(m.qoe_excl_first, 6), m.switch_count
    (-3.7, -0.15, 1)
    """
    if not outcomes:
        raise ValueError("a session needs at least one chunk outcome")
    terms = qoe_terms(outcomes, bitrates_bps, weights)
    qoe = terms.qoe
    bitrates = np.fromiter((o.bitrate_bps for o in outcomes), dtype=np.float64, count=len(outcomes))
    levels = np.fromiter((o.quality_idx for o in outcomes), dtype=np.int64, count=len(outcomes))
    rebuffer = np.fromiter((o.rebuffer_s for o in outcomes), dtype=np.float64, count=len(outcomes))
    played_s = len(outcomes) * chunk_duration_s
    total_rebuffer_s = float(rebuffer.sum())
    return SessionMetrics(
        qoe=float(qoe.sum()),
        qoe_excl_first=float(qoe[1:].sum()),
        qoe_mean_per_chunk=float(qoe.mean()),
        utility=float(terms.utility.sum()),
        rebuffer_penalty=float(terms.rebuffer_penalty.sum()),
        smoothness_penalty=float(terms.smoothness_penalty.sum()),
        avg_bitrate_bps=float(bitrates.mean()),
        rebuffer_s=total_rebuffer_s,
        rebuffer_excl_first_s=float(rebuffer[1:].sum()),
        rebuffer_ratio=total_rebuffer_s / (total_rebuffer_s + played_s),
        smoothness_bps=float(np.abs(np.diff(bitrates)).sum()),
        switch_count=int(np.count_nonzero(np.diff(levels))),
        startup_delay_s=float(sum(o.startup_delay_s for o in outcomes)),
        downloaded_bits=float(sum(o.size_bits for o in outcomes)),
        session_time_s=float(outcomes[-1].finish_time_s + outcomes[-1].idle_s),
        n_chunks=len(outcomes),
    )
