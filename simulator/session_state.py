"""What every single-session core shares: the player's view of a session and the checks before a step."""

from __future__ import annotations

from simulator.config import SimConfig
from simulator.context import PlayerContext
from simulator.errors import SimulationInvariantError
from simulator.records import ChunkOutcome
from traces.types import Video


class SessionState:
    """The state both session cores (:class:`simulator.des.Session`, :class:`simulator.fast_session.FastSession`)
    keep the same way, and what they derive from it.

    Subclasses set ``video``, ``config``, ``outcomes`` and ``buffer_s`` in ``__init__``.
    """

    video: Video
    config: SimConfig
    outcomes: list[ChunkOutcome]
    buffer_s: float

    @property
    def next_chunk_idx(self) -> int:
        return len(self.outcomes)

    @property
    def is_done(self) -> bool:
        return len(self.outcomes) >= self.video.n_chunks

    @property
    def forced_quality_idx(self) -> int | None:
        """The quality the player imposes on the next chunk (the first chunk in some presets), if any."""
        return self.config.first_chunk_quality_idx if not self.outcomes else None

    def context(self) -> PlayerContext:
        """What a real player knows before requesting the next chunk."""
        return PlayerContext(video=self.video, outcomes=tuple(self.outcomes), buffer_s=self.buffer_s)

    def _check_step(self, quality_idx: int) -> None:
        if self.is_done:
            raise SimulationInvariantError("the video has been fully downloaded; start a new session")
        if not 0 <= quality_idx < self.video.n_levels:
            raise ValueError(f"quality_idx={quality_idx} is not a level of the {self.video.n_levels}-level ladder")
