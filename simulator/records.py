"""One record per downloaded chunk: the single source of truth for every metric and QoE."""

from __future__ import annotations

from typing import NamedTuple


class ChunkOutcome(NamedTuple):
    """What happened when one chunk was downloaded.

    Times are session wall-clock seconds (the session starts at 0).

    Attributes:
        chunk_idx: position of the chunk in the video (0-based).
        quality_idx: ladder level requested (0 = lowest).
        bitrate_bps: nominal bitrate of that level, in bits per second.
        size_bits: size of the chunk, in bits.
        request_time_s: when the request was sent.
        finish_time_s: when the last byte arrived.
        download_time_s: ``finish - request``: RTT plus transfer (plus noise), in seconds.
        throughput_bps: measured throughput, ``size_bits / download_time_s``.
        rebuffer_s: time playback stalled while this chunk downloaded.
        startup_delay_s: time spent waiting to start playback during this chunk (not counted as rebuffer).
        buffer_s: buffer level after the download and any idle time, in seconds.
        idle_s: time the player idled after this download because the buffer was full.
    """

    chunk_idx: int
    quality_idx: int
    bitrate_bps: float
    size_bits: float
    request_time_s: float
    finish_time_s: float
    download_time_s: float
    throughput_bps: float
    rebuffer_s: float
    startup_delay_s: float
    buffer_s: float
    idle_s: float
