"""The read-only view of a session that a bitrate policy sees: what a real player knows."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from simulator.records import ChunkOutcome
from traces.types import Video


@dataclass(frozen=True, slots=True)
class PlayerContext:
    """What a player knows before requesting the next chunk.

    Attributes:
        video: the manifest: ladder, chunk duration and chunk sizes (as with sizes announced in the
            manifest, or learned from the server before the request).
        outcomes: the outcomes of the chunks downloaded so far, oldest first.
        buffer_s: current buffer level in seconds.
    """

    video: Video
    outcomes: tuple[ChunkOutcome, ...]
    buffer_s: float

    @property
    def next_chunk_idx(self) -> int:
        return len(self.outcomes)

    @property
    def chunks_remaining(self) -> int:
        """Chunks still to request, the next one included."""
        return self.video.n_chunks - len(self.outcomes)

    @property
    def last_quality_idx(self) -> int | None:
        return self.outcomes[-1].quality_idx if self.outcomes else None

    def next_chunk_sizes_bits(self) -> npt.NDArray[np.float64]:
        """Size of the next chunk at every level, in bits (zeros after the last chunk)."""
        if self.chunks_remaining <= 0:
            return np.zeros(self.video.n_levels)
        return self.video.chunk_sizes_bits[self.next_chunk_idx]

    def upcoming_chunk_sizes_bits(self, horizon: int) -> npt.NDArray[np.float64]:
        """Sizes ``[k, level]`` of the next ``min(horizon, chunks_remaining)`` chunks, in bits."""
        start = self.next_chunk_idx
        return self.video.chunk_sizes_bits[start:start + max(horizon, 0)]

    def throughput_history_bps(self, n: int) -> list[float]:
        """Measured throughputs of the last ``n`` chunks, oldest first."""
        return [o.throughput_bps for o in self.outcomes[-n:]] if n > 0 else []
