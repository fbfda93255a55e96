"""One session on the fast core's arithmetic, without numpy overhead: the session core of ``AbrEnv(core="fast")``.

:class:`FastSession` has the interface of :class:`simulator.des.Session` and the arithmetic of
:class:`simulator.fast.BatchedSessions`: the same closed-form transfers on cumulative-delivery arrays
(here Python lists with :mod:`bisect`), operation for operation, so its outcomes equal a batched session's
bit for bit, and the SimPy core's to the tolerance stated in :mod:`simulator.fast`. A batch of one costs
tens of microseconds per step in numpy calls; this costs a few. What a chunk costs (RTT, noise, idle, the
link walk) is the link contract's, :mod:`simulator.link_contract`.
"""

from __future__ import annotations

import math
from bisect import bisect_right

import numpy as np

from simulator import fast_link
from simulator.config import SimConfig, fit_video
from simulator.errors import ConfigError
from simulator.link import MAX_TRACE_PASSES
from simulator.records import ChunkOutcome
from simulator.session_state import SessionState
from traces.types import Trace, Video

_EPS = float(np.finfo(np.float64).eps)


class TraceLists:
    """One trace packed as :class:`~simulator.fast_link.PackedTraces` packs it, as Python lists.

    Args:
        trace: the trace.
        payload_efficiency: share of the throughput that carries payload.

    >>> lists = TraceLists(Trace(np.array([0.0, 1.0, 3.0]), np.array([0.0, 2e6, 1e6])), payload_efficiency=1.0)
    >>> lists.cum_bits, lists.pass_bits
    ([0.0, 2000000.0, 4000000.0], 4000000.0)
    """

    __slots__ = ("packed", "times_s", "rates_bps", "interval_bits", "cum_bits", "last", "pass_bits",
                 "max_chunk_bits", "name")

    def __init__(self, trace: Trace, *, payload_efficiency: float) -> None:
        self.packed = fast_link.PackedTraces.pack([trace], payload_efficiency=payload_efficiency)
        self.times_s: list[float] = self.packed.times_s.tolist()
        self.rates_bps: list[float] = self.packed.rates_bps.tolist()
        self.interval_bits: list[float] = self.packed.interval_bits.tolist()
        self.cum_bits: list[float] = self.packed.cum_bits.tolist()
        self.last = len(self.times_s) - 1
        self.pass_bits = self.cum_bits[-1]
        self.max_chunk_bits = MAX_TRACE_PASSES * float(self.packed.bits_per_pass[0])
        self.name = trace.name


def transfer(tr: TraceLists, eff: float, ptr: int, clock: float, size: float) -> tuple[int, float, float]:
    """Scalar :func:`simulator.fast_link.transfer`: (interval, trace clock in s, transfer time in s).

    >>> lists = TraceLists(Trace(np.array([0.0, 10.0]), np.array([0.0, 1e6])), payload_efficiency=1.0)
    >>> transfer(lists, 1.0, 1, 0.0, 12e6)
    (1, 2.0, 12.0)
    """
    T, R, C, hi = tr.times_s, tr.rates_bps, tr.cum_bits, tr.last
    rate = R[ptr]
    d_first = T[ptr] - clock
    p_first = rate * d_first * eff
    if p_first > size:
        frac = size / rate / eff
        return ptr, clock + frac, frac
    target = (size - p_first) + C[ptr]
    P = tr.pass_bits
    passes = 0.0
    if target >= P:
        rest = target - P
        q = math.floor(rest / P) * 1.0
        r = rest - q * P
        if r >= P:
            q, r = q + 1, r - P
        if r < 0:
            q, r = q - 1, r + P
        r = min(max(r, 0.0), math.nextafter(P, -math.inf))
        k = bisect_right(C, r, 1, hi + 1)
        sent = ((p_first + (P - C[ptr])) + q * P) + C[k - 1]
        before = ((d_first + (T[hi] - T[ptr])) + q * (T[hi] - T[0])) + (T[k - 1] - T[0])
        passes = q + 1
    else:
        k = bisect_right(C, target, ptr + 1, hi + 1)
        sent = p_first + (C[k - 1] - C[ptr])
        before = d_first + (T[k - 1] - T[ptr])
    margin = (8 * _EPS) * ((hi + 2) * (passes + 1)) * (size + P * (passes + 1))
    if size - sent <= margin or sent + tr.interval_bits[k] - size <= margin:
        return fast_link.walk_transfer(tr.packed, 0, hi, ptr, clock, size)
    frac = (size - sent) / R[k] / eff
    return k, T[k - 1] + frac, before + frac


def idle(tr: TraceLists, ptr: int, clock: float, duration: float) -> tuple[int, float]:
    """Scalar :func:`simulator.fast_link.idle`: (interval, trace clock in s).

    >>> lists = TraceLists(Trace(np.array([0.0, 1.0, 4.0]), np.array([0.0, 1e6, 1e6])), payload_efficiency=1.0)
    >>> idle(lists, 1, 0.0, 5.5)
    (2, 1.5)
    """
    T, hi = tr.times_s, tr.last
    d_first = T[ptr] - clock
    if d_first > duration:
        return ptr, clock + duration
    rest = duration - d_first
    target = T[ptr] + rest
    if target >= T[hi]:
        pass_s = T[hi] - T[0]
        after = rest - (T[hi] - T[ptr])
        q = math.floor(after / pass_s) * 1.0
        r = after - q * pass_s
        r = r - pass_s if r >= pass_s else (r + pass_s if r < 0 else r)
        k = bisect_right(T, min(T[0] + r, math.nextafter(T[hi], -math.inf)), 1, hi + 1)
        left = r - (T[k - 1] - T[0])
    else:
        k = bisect_right(T, target, ptr + 1, hi + 1)
        left = rest - (T[k - 1] - T[ptr])
    left = min(max(left, 0.0), T[k] - T[k - 1])
    return k, T[k - 1] + left


class FastSession(SessionState):
    """A streaming session on the fast core's arithmetic (interface of :class:`simulator.des.Session`).

    Args:
        trace: the throughput trace of the link.
        video: the video to play (truncated to ``config.max_chunks``).
        config: the link and player model.
        start_idx: first trace interval (1 = the trace's start).
        rng: generator for the download-time noise; required when the config is noisy.
        lists: the trace as :class:`TraceLists` (built from ``trace`` if not given; pass it to reuse it).
        throughput_scale: factor on the trace's throughput (> 0): the session plays ``trace.scaled(factor)``
            with the batched core's arithmetic (chunks cross the link as if ``factor`` times smaller), bit for
            bit as a batched session reset with the same factor.

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 100.0]), np.array([1e6, 1e6]))
    >>> video = Video.cbr([0.5e6, 1e6], chunk_duration_s=4.0, n_chunks=3)
    >>> round(FastSession(trace, video, preset("pensieve")).step(1).download_time_s, 6)
    4.290526
    """

    def __init__(self, trace: Trace, video: Video, config: SimConfig, *, start_idx: int = 1,
                 rng: np.random.Generator | None = None, lists: TraceLists | None = None,
                 throughput_scale: float = 1.0) -> None:
        video = fit_video(video, config)
        if config.is_noisy and rng is None:
            raise ConfigError("this config adds download-time noise: pass rng=np.random.default_rng(seed)")
        if not 1 <= start_idx < trace.times_s.size:
            raise ValueError(f"start_idx={start_idx} must be in [1, {trace.times_s.size - 1}]")
        if not (math.isfinite(throughput_scale) and throughput_scale > 0):
            raise ConfigError(f"throughput_scale={throughput_scale} must be finite and > 0")
        self.throughput_scale = float(throughput_scale)
        self.trace = trace
        self.video = video
        self.config = config
        self.rng = rng
        self.lists = lists if lists is not None else TraceLists(trace, payload_efficiency=config.payload_efficiency)
        self.outcomes: list[ChunkOutcome] = []
        self.buffer_s = 0.0
        self.is_playing = config.startup_delay_as_rebuffer
        self.ptr = start_idx
        self.clock_s = self.lists.times_s[start_idx - 1]
        self.now_s = 0.0
        self._sizes: list[list[float]] = video.chunk_sizes_bits.tolist()
        self._bitrates: list[float] = video.bitrates_bps.tolist()

    def step(self, quality_idx: int) -> ChunkOutcome:
        """Download the next chunk at ``quality_idx`` and return its outcome."""
        self._check_step(quality_idx)
        cfg, lists = self.config, self.lists
        q = int(quality_idx)
        chunk_idx = len(self.outcomes)
        size = self._sizes[chunk_idx][q]
        link_bits = size / self.throughput_scale  # the batched core's arithmetic for a scaled trace
        if link_bits > lists.max_chunk_bits:
            lists.packed.check_chunk_sizes(np.zeros(1, dtype=np.int64), np.array([link_bits]))
        noise = None
        if cfg.is_noisy:
            assert self.rng is not None  # checked in __init__
            noise = float(self.rng.uniform(cfg.noise_low, cfg.noise_high))
        request = self.now_s
        rtt = cfg.link_rtt_s if noise is None else cfg.link_rtt_s * noise
        if cfg.rtt_advances_trace:
            self.ptr, self.clock_s = idle(lists, self.ptr, self.clock_s, rtt)
        now = request + rtt
        self.ptr, self.clock_s, elapsed = transfer(lists, cfg.payload_efficiency, self.ptr, self.clock_s,
                                                   link_bits)
        now = now + (elapsed if noise is None else elapsed * noise)
        finish = now
        download = elapsed + cfg.link_rtt_s if noise is None else (elapsed + cfg.link_rtt_s) * noise
        buffer = self.buffer_s
        if self.is_playing:
            rebuffer, startup = max(download - buffer, 0.0), 0.0
            buffer = max(buffer - download, 0.0)
        else:
            rebuffer, startup = 0.0, download
        buffer = buffer + self.video.chunk_duration_s
        self.is_playing = self.is_playing or buffer >= cfg.startup_threshold_s
        idle_s = 0.0
        if buffer > cfg.max_buffer_s:
            idle_s = math.ceil((buffer - cfg.max_buffer_s) / cfg.idle_quantum_s) * cfg.idle_quantum_s
            buffer -= idle_s
            self.ptr, self.clock_s = idle(lists, self.ptr, self.clock_s, idle_s)
            now = now + idle_s
        self.now_s = now
        self.buffer_s = buffer
        outcome = ChunkOutcome(chunk_idx, q, self._bitrates[q], size, request, finish, download, size / download,
                               rebuffer, startup, buffer, float(idle_s))
        self.outcomes.append(outcome)
        return outcome
