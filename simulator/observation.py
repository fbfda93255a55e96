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

Two encoders exist (``ENCODERS``); a model records which one it was trained with:

* ``pensieve-6row-v1`` (the table above): Pensieve's fixed scales. On a link much faster than the ladder
  the throughput row grows without bound (500 Mbit/s gives 62), far outside anything a policy trained on
  FCC/Norway saw.
* ``abr-6row-v2``: the same rows, made relative to the ladder and bounded, so that no network, however
  fast or slow, leaves the range seen in training:

  ====  ===================================================================  =============================
  row   quantity (v2)                                                        constants
  ====  ===================================================================  =============================
  0     bitrate / top bitrate of the ladder                                  (ladder)
  1     buffer / 10 s                                                        BUFFER_NORM_S
  2     (log2(throughput / top bitrate) - LOG2_LOW) / (LOG2_HIGH - LOG2_LOW),  LOG2_THROUGHPUT_LOW, _HIGH
        clipped to [0, 1]: 1/64 of the top bitrate or less reads 0, 16x or more reads 1
  3     min(download time / 10 s, DOWNLOAD_TIME_CLIP)                        DOWNLOAD_TIME_CLIP
  4     next chunk's size / (top bitrate x chunk duration)                   (ladder, video)
  5     chunks remaining / chunks in the video                               (video)
  ====  ===================================================================  =============================
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from simulator.context import PlayerContext
from simulator.records import ChunkOutcome
from traces.types import Video

N_ROWS = 6
BUFFER_NORM_S = 10.0
THROUGHPUT_NORM_BPS = 8e6
DOWNLOAD_TIME_NORM_S = 10.0
CHUNK_SIZE_NORM_BITS = 8e6
DEFAULT_HISTORY_LEN = 8
#: Observation encoders: Pensieve's fixed scales (v1) and the ladder-relative, bounded rows (v2).
ENCODER_V1 = "pensieve-6row-v1"
ENCODER_V2 = "abr-6row-v2"
ENCODERS: tuple[str, ...] = (ENCODER_V1, ENCODER_V2)
DEFAULT_ENCODER = ENCODER_V1
LOG2_THROUGHPUT_LOW = -6.0  # v2 row 2 reads 0 at throughput <= top bitrate / 64
LOG2_THROUGHPUT_HIGH = 4.0  # v2 row 2 reads 1 at throughput >= 16 x top bitrate
DOWNLOAD_TIME_CLIP = 4.0  # v2 row 3: download times above 40 s read as 40 s


def check_encoder(encoder: str) -> str:
    """``encoder`` if it is one of :data:`ENCODERS`, else a ``ConfigError`` naming them.

    >>> check_encoder("abr-6row-v2")
    'abr-6row-v2'
    """
    if encoder not in ENCODERS:
        from simulator.errors import ConfigError

        raise ConfigError(f"observation encoder {encoder!r} is not one of {', '.join(ENCODERS)}")
    return encoder


def history_rows(encoder: str, top_bps: float, bitrate_bps: npt.ArrayLike, buffer_s: npt.ArrayLike,
                 throughput_bps: npt.ArrayLike, download_time_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Rows 0-3 of the observation for past chunks (the last axis), in float64, before float32 rounding.

    Every encoder path (one context, one session incrementally, a batch) goes through this function, so
    they agree bit for bit.

    >>> history_rows("abr-6row-v2", 4e6, [4e6], [5.0], [4e6], [2.0]).ravel().tolist()
    [1.0, 0.5, 0.6, 0.2]
    """
    bitrate = np.asarray(bitrate_bps, dtype=np.float64)
    rows = np.empty((4, *bitrate.shape))
    rows[0] = bitrate / top_bps
    rows[1] = np.asarray(buffer_s, dtype=np.float64) / BUFFER_NORM_S
    throughput = np.asarray(throughput_bps, dtype=np.float64)
    download = np.asarray(download_time_s, dtype=np.float64) / DOWNLOAD_TIME_NORM_S
    if encoder == ENCODER_V1:
        rows[2] = throughput / THROUGHPUT_NORM_BPS
        rows[3] = download
    else:
        with np.errstate(divide="ignore"):
            log_ratio = np.log2(throughput / top_bps)
        span = LOG2_THROUGHPUT_HIGH - LOG2_THROUGHPUT_LOW
        rows[2] = np.clip((log_ratio - LOG2_THROUGHPUT_LOW) / span, 0.0, 1.0)
        rows[3] = np.minimum(download, DOWNLOAD_TIME_CLIP)
    return rows


def observation_shape(n_levels: int, history_len: int = DEFAULT_HISTORY_LEN) -> tuple[int, int]:
    """Shape of the observation for a ladder of ``n_levels``.

    >>> observation_shape(6)
    (6, 8)
    """
    return (N_ROWS, max(history_len, n_levels))


def encode_observation(context: PlayerContext, history_len: int = DEFAULT_HISTORY_LEN,
                       encoder: str = DEFAULT_ENCODER) -> npt.NDArray[np.float32]:
    """Encode a player context as the ``[6, max(history_len, n_levels)]`` observation.

    Args:
        context: what the player knows.
        history_len: past chunks in the observation.
        encoder: one of :data:`ENCODERS`.

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
        top_bps = float(video.bitrates_bps[-1])
        n_total = video.n_chunks
        obs[0:4, cols] = history_rows(encoder, top_bps, [o.bitrate_bps for o in past], [o.buffer_s for o in past],
                                      [o.throughput_bps for o in past], [o.download_time_s for o in past])
        obs[5, cols] = [(n_total - o.chunk_idx - 1) / n_total for o in past]
    obs[4, : video.n_levels] = context.next_chunk_sizes_bits() / chunk_size_norm_bits(video, encoder)
    return obs


def chunk_size_norm_bits(video: Video, encoder: str = DEFAULT_ENCODER) -> float:
    """The scale of row 4: 1 MB (v1), or one chunk at the top bitrate (v2), in bits.

    >>> chunk_size_norm_bits(Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=1), "abr-6row-v2")
    8000000.0
    """
    if check_encoder(encoder) == ENCODER_V1:
        return CHUNK_SIZE_NORM_BITS
    return float(video.bitrates_bps[-1]) * float(video.chunk_duration_s)


class ObservationHistory:
    """:func:`encode_observation` kept up to date chunk by chunk, for one session (same values, bit for bit).

    Args:
        video: the video of the session.
        history_len: number of past chunks in the observation.

    >>> from traces.types import Video
    >>> from simulator.records import ChunkOutcome
    >>> video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=4)
    >>> history = ObservationHistory(video)
    >>> history.push(ChunkOutcome(0, 1, 2e6, 8e6, 0.0, 1.0, 1.0, 8e6, 1.0, 0.0, 4.0, 0.0))
    >>> round(float(history.observation(1)[1, -1]), 6)  # buffer 4 s / 10 s
    0.4
    """

    def __init__(self, video: Video, history_len: int = DEFAULT_HISTORY_LEN,
                 encoder: str = DEFAULT_ENCODER) -> None:
        self.history_len = history_len
        self.n_levels = video.n_levels
        self.encoder = check_encoder(encoder)
        self._obs = np.zeros(observation_shape(video.n_levels, history_len), dtype=np.float32)
        self._top_bps = float(video.bitrates_bps[-1])
        self._n_total = video.n_chunks
        self._next_sizes = next_sizes_table(video, encoder)

    def reset(self) -> None:
        """Forget every past chunk."""
        self._obs[:] = 0.0

    def push(self, o: ChunkOutcome) -> None:
        """Add the outcome of the chunk just downloaded (the newest column)."""
        obs, h = self._obs, self.history_len
        obs[0:4, : h - 1] = obs[0:4, 1:h]
        obs[5, : h - 1] = obs[5, 1:h]
        last = h - 1
        if self.encoder == ENCODER_V1:  # plain divisions on the env.step hot path (IEEE: the same as history_rows)
            obs[0, last] = o.bitrate_bps / self._top_bps
            obs[1, last] = o.buffer_s / BUFFER_NORM_S
            obs[2, last] = o.throughput_bps / THROUGHPUT_NORM_BPS
            obs[3, last] = o.download_time_s / DOWNLOAD_TIME_NORM_S
        else:
            obs[0:4, last] = history_rows(self.encoder, self._top_bps, o.bitrate_bps, o.buffer_s, o.throughput_bps,
                                          o.download_time_s)
        obs[5, last] = (self._n_total - o.chunk_idx - 1) / self._n_total

    def observation(self, next_chunk_idx: int) -> npt.NDArray[np.float32]:
        """The observation before requesting chunk ``next_chunk_idx`` (a new array)."""
        self._obs[4, : self.n_levels] = self._next_sizes[min(next_chunk_idx, self._n_total)]
        return self._obs.copy()


class BatchedObservations:
    """:func:`encode_observation` for N sessions at once: a ``(num_envs, 6, max(history_len, n_levels))`` array.

    Args:
        video: the video every session plays.
        num_envs: number of sessions.
        history_len: number of past chunks in the observation.

    >>> from traces.types import Video
    >>> video = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=4)
    >>> BatchedObservations(video, 3).observation(np.zeros(3, dtype=np.int64)).shape
    (3, 6, 8)
    """

    def __init__(self, video: Video, num_envs: int, history_len: int = DEFAULT_HISTORY_LEN,
                 encoder: str = DEFAULT_ENCODER) -> None:
        self.history_len = history_len
        self.n_levels = video.n_levels
        self.encoder = check_encoder(encoder)
        self._obs = np.zeros((num_envs, *observation_shape(video.n_levels, history_len)), dtype=np.float32)
        self._top_bps = float(video.bitrates_bps[-1])
        self._n_total = video.n_chunks
        self._next_sizes = next_sizes_table(video, encoder)

    def reset(self, sessions: npt.NDArray[np.int64] | None = None) -> None:
        """Forget the past chunks of ``sessions`` (default all)."""
        if sessions is None:
            self._obs[:] = 0.0
        else:
            self._obs[sessions] = 0.0

    def push(self, sessions: npt.NDArray[np.int64] | None, bitrate_bps: npt.NDArray[np.float64],
             buffer_s: npt.NDArray[np.float64], throughput_bps: npt.NDArray[np.float64],
             download_time_s: npt.NDArray[np.float64], chunk_idx: npt.NDArray[np.int64]) -> None:
        """Add the chunk each of ``sessions`` (default all) just downloaded (arrays of outcome fields)."""
        h, last = self.history_len, self.history_len - 1
        obs = self._obs if sessions is None else self._obs[sessions]
        obs[:, 0:4, : h - 1] = obs[:, 0:4, 1:h]
        obs[:, 5, : h - 1] = obs[:, 5, 1:h]
        obs[:, 0:4, last] = history_rows(self.encoder, self._top_bps, bitrate_bps, buffer_s, throughput_bps,
                                         download_time_s).T
        obs[:, 5, last] = (self._n_total - chunk_idx - 1) / self._n_total
        if sessions is not None:
            self._obs[sessions] = obs

    def observation(self, next_chunk_idx: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
        """The observations before each session's next chunk (a new array)."""
        self._obs[:, 4, : self.n_levels] = self._next_sizes[np.minimum(next_chunk_idx, self._n_total)]
        return self._obs.copy()

    def single(self, i: int) -> npt.NDArray[np.float32]:
        """The current observation of session ``i`` (a new array; row 4 as of the last :meth:`observation`)."""
        return self._obs[i].copy()


def next_sizes_table(video: Video, encoder: str = DEFAULT_ENCODER) -> npt.NDArray[np.float64]:
    """Row 4 of the observation before each chunk: ``[n_chunks + 1, n_levels]``, zeros after the last chunk.

    >>> from traces.types import Video
    >>> next_sizes_table(Video.cbr([1e6], chunk_duration_s=8.0, n_chunks=2)).tolist()
    [[1.0], [1.0], [0.0]]
    """
    return np.vstack([video.chunk_sizes_bits / chunk_size_norm_bits(video, encoder), np.zeros((1, video.n_levels))])
