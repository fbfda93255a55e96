"""The MPC search compiled (numba), depth first with a bound: :class:`agents.mpc.MPCBatch`'s inner loop.

:meth:`agents.mpc.MPC.plan` scores every one of the ``n_levels ** horizon`` quality sequences. This kernel walks
the same sequences as a prefix tree, depth first in lexicographic order, and skips a subtree when no sequence
in it can reach the best reward known so far: a sequence's reward is its constant part (bitrate sum minus the
weighted smoothness, which do not depend on the session) minus the rebuffer penalty, and rebuffering only grows
along a sequence, so ``max constant part in the subtree - penalty x rebuffer of the prefix`` bounds the
subtree. The threshold starts at the best of the constant-level sequences and rises with every sequence
scored. A subtree is skipped only when its bound is below the threshold by a margin far above rounding
(``_MARGIN`` relative), so every sequence that could reach or tie the best is scored.

Scored sequences use the same float operations in the same order as :meth:`MPC.plan` (download time = size /
prediction; stall = max(download - buffer, 0); rebuffer summed from the first chunk; buffer = max(buffer -
download, 0) + chunk duration; reward = (bitrate sum - rebuffer x penalty) - smoothness), and ties go to the
sequence enumerated last, so the choice is the same (a test holds them equal, ties included).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from numba import njit

#: A subtree is skipped when its bound is below the threshold by more than this share of the magnitudes
#: involved: many orders of magnitude above the rounding of a few float operations, far below any real gap.
_MARGIN = 1e-9


@njit(cache=True, nogil=True)
def first_levels(sizes: npt.NDArray[np.float64], buffer_s: npt.NDArray[np.float64],
                 prediction_bps: npt.NDArray[np.float64], last_idx: npt.NDArray[np.int64],
                 bitrate_mbps: npt.NDArray[np.float64], smooth: npt.NDArray[np.float64],
                 bound: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64], penalty: float,
                 chunk_duration_s: float) -> npt.NDArray[np.int64]:  # pragma: no cover - compiled
    """The first level of each row's best sequence.

    Args:
        sizes: ``[rows, horizon, levels]`` chunk sizes in bits of the next ``horizon`` chunks.
        buffer_s, prediction_bps, last_idx: ``[rows]`` each row's buffer, throughput prediction, last level.
        bitrate_mbps: ``[sequences]`` bitrate sum of each sequence in Mbit/s.
        smooth: ``[levels, sequences]`` weighted smoothness of each sequence after each last level.
        bound: ``[levels, nodes]`` per last level, the max of ``bitrate_mbps - smooth`` over the sequences
            under each prefix; the prefixes of length ``d`` from ``offsets[d]``, in lexicographic order.
        offsets: ``[horizon + 2]`` where the prefixes of each length ``0 .. horizon`` start in ``bound`` (and
            where the last ends).
        penalty: rebuffer penalty per second; chunk_duration_s: seconds of video per chunk.
    """
    rows, horizon, n_levels = sizes.shape
    out = np.zeros(rows, dtype=np.int64)
    for r in range(rows):
        last = last_idx[r]
        threshold = _best_constant(sizes[r], buffer_s[r], prediction_bps[r], bitrate_mbps, smooth[last], penalty,
                                   chunk_duration_s)
        best = _search(sizes[r], buffer_s[r], prediction_bps[r], bitrate_mbps, smooth[last], bound[last], offsets,
                       penalty, chunk_duration_s, threshold)
        out[r] = best // n_levels ** (horizon - 1)
    return out


@njit(cache=True, nogil=True)
def _best_constant(sizes: npt.NDArray[np.float64], buffer_s: float, prediction: float,
                   bitrate_mbps: npt.NDArray[np.float64], smooth: npt.NDArray[np.float64], penalty: float,
                   chunk_duration_s: float) -> float:  # pragma: no cover - compiled
    """The best reward of the constant-level sequences (real sequences: the best is no lower)."""
    horizon, n_levels = sizes.shape
    step = 0  # index step between constant-level sequences: 1 + L + ... + L^(h-1)
    for _ in range(horizon):
        step = step * n_levels + 1
    best = -np.inf
    for q in range(n_levels):
        buffer, rebuffer = buffer_s, 0.0
        for k in range(horizon):
            download = sizes[k, q] / prediction
            rebuffer = rebuffer + max(download - buffer, 0.0)
            buffer = max(buffer - download, 0.0) + chunk_duration_s
        best = max(best, (bitrate_mbps[q * step] - rebuffer * penalty) - smooth[q * step])
    return best


@njit(cache=True, nogil=True)
def _search(sizes: npt.NDArray[np.float64], buffer_s: float, prediction: float, bitrate_mbps: npt.NDArray[np.float64],
            smooth: npt.NDArray[np.float64], bound: npt.NDArray[np.float64], offsets: npt.NDArray[np.int64],
            penalty: float, chunk_duration_s: float, threshold: float) -> int:  # pragma: no cover - compiled
    """The index of the best sequence (the last enumerated of equals), depth first from the empty prefix."""
    horizon, n_levels = sizes.shape
    level = np.full(horizon, -1, dtype=np.int64)
    buffer = np.zeros(horizon + 1)
    rebuffer = np.zeros(horizon + 1)
    prefix = np.zeros(horizon + 1, dtype=np.int64)
    buffer[0] = buffer_s
    best_value, best_seq, depth = -np.inf, 0, 0
    while depth >= 0:
        level[depth] += 1
        q = level[depth]
        if q == n_levels:
            depth -= 1
            continue
        download = sizes[depth, q] / prediction
        reb = rebuffer[depth] + max(download - buffer[depth], 0.0)
        node = prefix[depth] * n_levels + q
        if depth == horizon - 1:
            value = (bitrate_mbps[node] - reb * penalty) - smooth[node]
            if value >= best_value:  # ties: the sequence enumerated last
                best_value, best_seq = value, node
            threshold = max(threshold, value)
            continue
        top, cost = bound[offsets[depth + 1] + node], reb * penalty
        if top - cost < threshold - _MARGIN * (1.0 + abs(threshold) + abs(top) + cost):
            continue  # nothing under this prefix reaches the best known sequence
        buffer[depth + 1] = max(buffer[depth] - download, 0.0) + chunk_duration_s
        rebuffer[depth + 1] = reb
        prefix[depth + 1] = node
        depth += 1
        level[depth] = -1
    return best_seq


def subtree_bounds(constant: npt.NDArray[np.float64], n_levels: int, horizon: int
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """``bound`` and ``offsets`` of :func:`first_levels` from ``constant`` ``[levels, sequences]``
    (``bitrate_mbps - smooth`` per last level).

    >>> bound, offsets = subtree_bounds(np.array([[1.0, 4.0, 2.0, 3.0]]), 2, 2)
    >>> bound.tolist(), offsets.tolist()
    ([[4.0, 4.0, 3.0, 1.0, 4.0, 2.0, 3.0]], [0, 1, 3, 7])
    """
    parts = [constant.reshape(constant.shape[0], n_levels ** d, n_levels ** (horizon - d)).max(axis=2)
             for d in range(horizon + 1)]
    offsets = np.cumsum([0] + [p.shape[1] for p in parts])
    return np.ascontiguousarray(np.concatenate(parts, axis=1)), offsets.astype(np.int64)
