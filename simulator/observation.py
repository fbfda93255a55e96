"""The Pensieve-style observation: a ``[6, history_len]`` matrix built from what a player knows.

Rows (columns are chunks, oldest first and newest last; columns before the first chunk are zero):

====  ==========================================  =========================  =====================
row   quantity                                    normalisation              name of the constant
====  ==========================================  =========================  =====================
0     bitrate of each past chunk                  / top bitrate of ladder    (ladder)
1     buffer after each past chunk                / 10 s                     BUFFER_NORM_S
2     measured throughput of each past chunk      / 8e6 bit/s (1 MB/s)       THROUGHPUT_NORM_BPS
3     download time of each past chunk            / 10 s                     DOWNLOAD_TIME_NORM_S
4     next chunk's size at level k (column k)     / 8e6 bit (1 MB)           CHUNK_SIZE_NORM_BITS
5     chunks remaining after each past chunk      / chunks in the video      (video)
====  ==========================================  =========================  =====================

Row 4 is not a history: column ``k`` holds the next chunk's size at level ``k`` (zero past the ladder and
after the last chunk), so the matrix has ``max(history_len, n_levels)`` columns. The scales are those of
the research simulator (Pensieve); unlike it, row 4 does not carry wrapped-around values from a roll.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.context import PlayerContext

N_ROWS = 6
BUFFER_NORM_S = 10.0
THROUGHPUT_NORM_BPS = 8e6
DOWNLOAD_TIME_NORM_S = 10.0
CHUNK_SIZE_NORM_BITS = 8e6
DEFAULT_HISTORY_LEN = 8


def observation_shape(n_levels: int, history_len: int = DEFAULT_HISTORY_LEN) -> tuple[int, int]:
    """Shape of the observation for a ladder of ``n_levels``.

    >>> observation_shape(6)
    (6, 8)
    """
    return (N_ROWS, max(history_len, n_levels))


def encode_observation(context: PlayerContext, history_len: int = DEFAULT_HISTORY_LEN) -> npt.NDArray[np.float32]:
    """Encode a player context as the ``[6, max(history_len, n_levels)]`` observation.

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=4)
    >>> obs = encode_observation(PlayerContext(video, (), buffer_s=0.0))
    >>> obs.shape, float(obs[4, 1])  # next chunk at level 1: 8 Mbit = 1 MB
    ((6, 8), 1.0)
    """
    video = context.video
    obs = np.zeros(observation_shape(video.n_levels, history_len), dtype=np.float32)
    past = context.outcomes[-history_len:]
    if past:
        cols = slice(history_len - len(past), history_len)
        top_bps = video.bitrates_bps[-1]
        n_total = video.n_chunks
        obs[0, cols] = [o.bitrate_bps / top_bps for o in past]
        obs[1, cols] = [o.buffer_s / BUFFER_NORM_S for o in past]
        obs[2, cols] = [o.throughput_bps / THROUGHPUT_NORM_BPS for o in past]
        obs[3, cols] = [o.download_time_s / DOWNLOAD_TIME_NORM_S for o in past]
        obs[5, cols] = [(n_total - o.chunk_idx - 1) / n_total for o in past]
    obs[4, : video.n_levels] = context.next_chunk_sizes_bits() / CHUNK_SIZE_NORM_BITS
    return obs
