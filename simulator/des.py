"""The SimPy session core: one player downloading one video over one trace-driven link.

This is the reference semantics of the project. A session is stepped one chunk at a time: the caller
chooses a quality, the core runs the SimPy processes for that chunk (request and RTT, a transfer that
crosses trace changes, idle time while the buffer is full) and returns a :class:`ChunkOutcome`. Playback
drains the buffer continuously in wall time; the buffer is settled at each download completion.
"""

from __future__ import annotations

import math
from collections.abc import Generator
from typing import Protocol

import numpy as np
import simpy

from simulator.config import SimConfig, fit_video
from simulator.errors import ConfigError
from simulator.link import TraceLink
from simulator.records import ChunkOutcome
from simulator.session_state import SessionState
from traces.types import Trace, Video


class Link(Protocol):
    """What a session needs from its link: :class:`TraceLink` (one player) or
    :class:`simulator.shared_link.SharedLinkPort` (one player's port on a shared bottleneck)."""

    def transfer(self, size_bits: float, dilation: float = 1.0) -> Generator[simpy.Event, object, float]: ...

    def idle(self, duration_s: float) -> Generator[simpy.Event, object, None]: ...


class Session(SessionState):
    """A streaming session on the SimPy core.

    Args:
        trace: the throughput trace of the link.
        video: the video to play (truncated to ``config.max_chunks``).
        config: the link and player model.
        start_idx: first trace interval (1 = the trace's start).
        rng: generator for the download-time noise; required when the config is noisy.
        env: an existing SimPy environment to run in (default: a new one). With ``link``, this is how several
            players share one simulation (:mod:`simulator.shared_session`); chunk times stay relative to the
            session's start (the environment's clock when the session is created).
        link: the link to download over (default: a :class:`TraceLink` on ``trace`` from ``start_idx``).

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 100.0]), np.array([1e6, 1e6]))
    >>> video = Video.cbr([0.5e6, 1e6], chunk_duration_s=4.0, n_chunks=3)
    >>> session = Session(trace, video, preset("pensieve"))
    >>> round(session.step(1).download_time_s, 6)  # 4 Mbit at 0.95 Mbit/s + 80 ms RTT
    4.290526
    """

    def __init__(self, trace: Trace, video: Video, config: SimConfig, *, start_idx: int = 1,
                 rng: np.random.Generator | None = None, env: simpy.Environment | None = None,
                 link: Link | None = None) -> None:
        video = fit_video(video, config)
        if config.is_noisy and rng is None:
            raise ConfigError("this config adds download-time noise: pass rng=np.random.default_rng(seed)")
        self.trace = trace
        self.video = video
        self.config = config
        self.rng = rng
        if link is not None and env is None:
            raise ConfigError("a session given a link must also be given the SimPy environment the link runs in")
        self.env = env if env is not None else simpy.Environment()
        self.link: Link = link if link is not None else TraceLink(
            self.env, trace, payload_efficiency=config.payload_efficiency, start_idx=start_idx)
        self.time_origin_s = float(self.env.now)
        self.outcomes: list[ChunkOutcome] = []
        self.buffer_s = 0.0
        self.is_playing = config.startup_delay_as_rebuffer
        self._sizes = video.chunk_sizes_bits.tolist()
        self._bitrates = video.bitrates_bps.tolist()

    def __getstate__(self) -> dict[str, object]:
        # Between steps no SimPy event is pending, so the environment is fully described by its clock.
        state = {name: getattr(self, name) for name in self.__dict__ if name != "env"}
        state["_now_s"] = float(self.env.now)
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        now_s = float(state.pop("_now_s"))  # type: ignore[arg-type]
        self.__dict__.update(state)
        self.env = simpy.Environment(initial_time=now_s)
        if isinstance(self.link, TraceLink):  # a session on a shared link is not picklable on its own
            self.link.env = self.env

    def step(self, quality_idx: int) -> ChunkOutcome:
        """Download the next chunk at ``quality_idx`` and return its outcome."""
        process = self.env.process(self.download(quality_idx))
        self.env.run(until=process)
        outcome = process.value
        assert isinstance(outcome, ChunkOutcome)
        return outcome

    def download(self, quality_idx: int) -> Generator[simpy.Event, object, ChunkOutcome]:
        """The SimPy process body of one chunk download (for a caller running its own environment).

        ``yield from session.download(q)`` inside a process downloads the next chunk at ``q``, records its
        outcome and returns it; :meth:`step` runs it to completion in a private environment.
        """
        self._check_step(quality_idx)
        outcome = yield from self._download(int(quality_idx))
        self.outcomes.append(outcome)
        return outcome

    def _download(self, quality_idx: int) -> Generator[simpy.Event, object, ChunkOutcome]:
        cfg = self.config
        env = self.env
        chunk_idx = len(self.outcomes)
        size_bits = self._sizes[chunk_idx][quality_idx]
        noise = 1.0
        if cfg.is_noisy:
            assert self.rng is not None  # checked in __init__
            noise = float(self.rng.uniform(cfg.noise_low, cfg.noise_high))
        request_time_s = float(env.now) - self.time_origin_s
        # Request: the first byte arrives one RTT later.
        if cfg.rtt_advances_trace:
            yield from self.link.idle(cfg.link_rtt_s * noise)
        else:
            yield env.timeout(cfg.link_rtt_s * noise)
        transfer_s = yield from self.link.transfer(size_bits, dilation=noise)
        # The research simulator's arithmetic: (transfer + RTT) x noise.
        download_time_s = (transfer_s + cfg.link_rtt_s) * noise
        finish_time_s = float(env.now) - self.time_origin_s
        rebuffer_s, startup_s = self._drain(download_time_s)
        self.buffer_s += self.video.chunk_duration_s
        if not self.is_playing and self.buffer_s >= cfg.startup_threshold_s:
            self.is_playing = True
        idle_s = 0.0
        if self.buffer_s > cfg.max_buffer_s:
            idle_s = math.ceil((self.buffer_s - cfg.max_buffer_s) / cfg.idle_quantum_s) * cfg.idle_quantum_s
            self.buffer_s -= idle_s
            yield from self.link.idle(idle_s)
        return ChunkOutcome(
            chunk_idx=chunk_idx,
            quality_idx=quality_idx,
            bitrate_bps=self._bitrates[quality_idx],
            size_bits=size_bits,
            request_time_s=request_time_s,
            finish_time_s=finish_time_s,
            download_time_s=download_time_s,
            throughput_bps=size_bits / download_time_s,
            rebuffer_s=rebuffer_s,
            startup_delay_s=startup_s,
            buffer_s=self.buffer_s,
            idle_s=idle_s,
        )

    def _drain(self, elapsed_s: float) -> tuple[float, float]:
        """Play ``elapsed_s`` of wall time from the buffer; returns (rebuffer, startup delay) in seconds."""
        if not self.is_playing:
            return 0.0, elapsed_s
        rebuffer_s = max(elapsed_s - self.buffer_s, 0.0)
        self.buffer_s = max(self.buffer_s - elapsed_s, 0.0)
        return rebuffer_s, 0.0
