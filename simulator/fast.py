"""The batched core: N streaming sessions advanced in lock-step with numpy.

Same link, player and QoE model as the SimPy core (:class:`simulator.des.Session`) and the same
presets; the state of all sessions is a struct of numpy arrays shaped ``(num_envs, ...)``
(:class:`SessionArrays`) and one :meth:`BatchedSessions.step` downloads one chunk in every session (or in a
chosen subset), returning a :class:`ChunkBatch` of arrays. Sessions may play different traces of different
lengths (packed by :class:`simulator.fast_link.PackedTraces`) and start at different trace intervals; they
share one video and one :class:`~simulator.config.SimConfig`.

Equivalence with the SimPy core: the same decisions (chunk boundaries, idle periods, the refusal of
too-slow traces) and the same values up to floating-point rounding. The tests hold every chunk outcome
and every QoE term to ``EQUIVALENCE_RTOL * max(|a|, |b|) + EQUIVALENCE_ATOL`` (1e-9 relative; 1e-9 absolute
for near-zero differences such as a rebuffer of ``download - buffer``). Observed on the 600
``genet_benchmark`` traces x 48 chunks, three presets: at most 7e-13 relative on every field but the
rebuffer, whose near-zero values differ by at most 7e-12 s; on the hypothesis examples, 1.4e-13 relative.
See :mod:`simulator.fast_link` for where rounding can differ.

Noise: a noisy config (e.g. ``pensieve-train``) takes one ``numpy.random.Generator`` per session at
:meth:`~BatchedSessions.reset` and draws the session's download-time noise from it, one
``uniform(noise_low, noise_high)`` per chunk in chunk order, exactly the draws a SimPy ``Session`` given
the same generator makes. The whole episode's draws are taken at reset (one vectorised call per
session); :meth:`~BatchedSessions.sync_rngs` puts a generator back where per-chunk draws would have left it
when a session is abandoned part-way (a reset before the video ends).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from simulator import fast_link
from simulator.config import SimConfig, fit_video
from simulator.errors import ConfigError, SimulationInvariantError
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from traces.types import Trace, Video

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Relative tolerance to which the batched core reproduces the SimPy core (held by the tests).
EQUIVALENCE_RTOL = 1e-9
#: Absolute tolerance, in the quantity's unit, for values that are differences of nearly equal numbers
#: (a rebuffer of ``download - buffer`` that is almost zero, say).
EQUIVALENCE_ATOL = 1e-9


@dataclass(frozen=True, slots=True)
class SessionArrays:
    """The state of every session, one entry per session (arrays are updated in place).

    Attributes:
        trace_idx: the trace each session plays (index into the packed traces).
        interval_idx: the trace interval in progress, as a global index into the packed arrays.
        clock_s: the trace clock, in seconds.
        now_s: session wall time, in seconds (0 at the session start).
        buffer_s: buffer level, in seconds.
        is_playing: whether playback has started.
        chunk_idx: chunks downloaded so far (= index of the next chunk).
        last_quality_idx: quality of the last chunk (-1 before the first).
        noise: ``(num_envs, n_chunks)`` download-time noise of each chunk (ones without noise).
        throughput_scale: factor on each session's trace throughput (1 = the trace as recorded); a session
            at scale ``s`` plays ``Trace.scaled(s)``: its chunks cross the link as if ``s`` times smaller.
    """

    trace_idx: IntArray
    interval_idx: IntArray
    clock_s: FloatArray
    now_s: FloatArray
    buffer_s: FloatArray
    is_playing: BoolArray
    chunk_idx: IntArray
    last_quality_idx: IntArray
    noise: FloatArray
    throughput_scale: FloatArray

    @classmethod
    def empty(cls, num_envs: int, n_chunks: int) -> SessionArrays:
        ints = [np.zeros(num_envs, dtype=np.int64) for _ in range(3)]
        floats = [np.zeros(num_envs) for _ in range(3)]
        return cls(ints[0], ints[1], floats[0], floats[1], floats[2], np.zeros(num_envs, dtype=bool),
                   np.full(num_envs, n_chunks, dtype=np.int64), np.full(num_envs, -1, dtype=np.int64),
                   np.ones((num_envs, n_chunks)), np.ones(num_envs))


class ChunkBatch(NamedTuple):
    """The outcomes of one chunk in each stepped session (fields as in :class:`ChunkOutcome`) and its QoE.

    Attributes:
        sessions: which sessions stepped (indices into the batch).
        utility: utility of the chunk's quality.
        rebuffer_penalty: rebuffer penalty of the chunk.
        smoothness_penalty: smoothness penalty against the previous chunk (0 for the first).
        is_last: whether the chunk was the last of the video.
    """

    sessions: IntArray
    chunk_idx: IntArray
    quality_idx: IntArray
    bitrate_bps: FloatArray
    size_bits: FloatArray
    request_time_s: FloatArray
    finish_time_s: FloatArray
    download_time_s: FloatArray
    throughput_bps: FloatArray
    rebuffer_s: FloatArray
    startup_delay_s: FloatArray
    buffer_s: FloatArray
    idle_s: FloatArray
    utility: FloatArray
    rebuffer_penalty: FloatArray
    smoothness_penalty: FloatArray
    is_last: BoolArray

    @property
    def qoe(self) -> FloatArray:
        """Per-chunk QoE: utility - rebuffer penalty - smoothness penalty."""
        return self.utility - self.rebuffer_penalty - self.smoothness_penalty

    def outcome(self, i: int) -> ChunkOutcome:
        """The :class:`ChunkOutcome` of the ``i``-th stepped session (position in this batch)."""
        return ChunkOutcome(*(getattr(self, name)[i].item() for name in ChunkOutcome._fields))


class BatchedSessions:
    """N sessions of one video over packed traces, stepped together.

    Args:
        traces: the traces sessions may play (``reset`` picks one per session by index).
        video: the video (truncated to ``config.max_chunks``).
        config: the link and player model (a preset or any :class:`SimConfig`).
        num_envs: number of sessions.
        qoe: the QoE model of the per-chunk terms (default linear).

    Sessions start finished; :meth:`reset` starts them.

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 100.0]), np.array([1e6, 1e6]))
    >>> video = Video.cbr([0.5e6, 1e6], chunk_duration_s=4.0, n_chunks=3)
    >>> core = BatchedSessions([trace], video, preset("pensieve"), num_envs=2)
    >>> core.reset(trace_idx=[0, 0])
    >>> batch = core.step(np.array([1, 0]))
    >>> np.round(batch.download_time_s, 6).tolist()  # 4 and 2 Mbit at 0.95 Mbit/s + 80 ms RTT
    [4.290526, 2.185263]
    """

    def __init__(self, traces: Sequence[Trace], video: Video, config: SimConfig, num_envs: int, *,
                 qoe: QoEWeights | None = None) -> None:
        if not isinstance(num_envs, (int, np.integer)) or num_envs < 1:
            raise ConfigError(f"num_envs={num_envs!r} must be an integer >= 1")
        video = fit_video(video, config)
        self.traces = list(traces)
        self.video = video
        self.config = config
        self.num_envs = int(num_envs)
        self.qoe = qoe if qoe is not None else QoEWeights()
        self.packed = fast_link.PackedTraces.pack(self.traces, payload_efficiency=config.payload_efficiency)
        self.state = SessionArrays.empty(self.num_envs, video.n_chunks)
        #: Utility of every chunk at every level (``[n_chunks, n_levels]``; rows equal except for the ssim kind).
        self.utilities = self.qoe.chunk_utilities(video)
        self._sizes_flat = np.ascontiguousarray(video.chunk_sizes_bits).ravel()
        self._n_steps = fast_link.bisect_steps(self.packed)
        self._rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self._rng_states: list[Mapping[str, Any] | None] = [None] * self.num_envs

    @property
    def n_chunks(self) -> int:
        return self.video.n_chunks

    @property
    def forced_quality_idx(self) -> int | None:
        """The quality the player imposes on every session's first chunk (``None``: the policy chooses)."""
        return self.config.first_chunk_quality_idx

    @property
    def is_done(self) -> BoolArray:
        """Whether each session has downloaded the whole video."""
        return self.state.chunk_idx >= self.video.n_chunks

    def reset(self, trace_idx: npt.ArrayLike, start_idx: npt.ArrayLike | None = None, *,
              sessions: npt.ArrayLike | None = None, rngs: Sequence[np.random.Generator] | None = None,
              throughput_scale: npt.ArrayLike | None = None) -> None:
        """Start new sessions: empty buffer, the trace clock at interval ``start_idx`` of trace ``trace_idx``.

        Args:
            trace_idx: trace of each session to reset (an int applies to all of them).
            start_idx: first trace interval of each (1 = the trace's start; default 1).
            sessions: which sessions to reset (default all).
            rngs: one generator per reset session, for the download-time noise; required when the config
                is noisy, ignored otherwise.
            throughput_scale: factor on the trace throughput of each reset session (> 0; default 1): the
                session plays ``Trace.scaled(factor)`` of its trace, as the SimPy core would.
        """
        idx = self._session_idx(sessions)
        n = idx.size
        m = np.broadcast_to(np.asarray(trace_idx, dtype=np.int64), (n,))
        bad = (m < 0) | (m >= self.packed.n_traces)
        if np.any(bad):
            raise ConfigError(f"trace_idx={int(m[np.argmax(bad)])} must be in [0, {self.packed.n_traces - 1}]")
        j = np.broadcast_to(np.asarray(1 if start_idx is None else start_idx, dtype=np.int64), (n,))
        link = self.packed.start(m, j)
        scale = np.broadcast_to(np.asarray(1.0 if throughput_scale is None else throughput_scale, dtype=np.float64),
                                (n,))
        if not np.all(np.isfinite(scale) & (scale > 0)):
            raise ConfigError(f"throughput_scale must be finite and > 0, got {scale.tolist()}")
        if self.config.is_noisy and (rngs is None or len(rngs) != n):
            raise ConfigError(f"this config adds download-time noise: pass rngs, one Generator for each of the "
                              f"{n} sessions reset (got {'none' if rngs is None else len(rngs)})")
        self.sync_rngs(idx)
        if self.config.is_noisy:
            assert rngs is not None
            self._draw_noise(idx, rngs)
        s = self.state
        s.trace_idx[idx] = m
        s.interval_idx[idx] = link.interval_idx
        s.clock_s[idx] = link.clock_s
        s.now_s[idx] = 0.0
        s.buffer_s[idx] = 0.0
        s.is_playing[idx] = self.config.startup_delay_as_rebuffer
        s.chunk_idx[idx] = 0
        s.last_quality_idx[idx] = -1
        s.throughput_scale[idx] = scale

    def _draw_noise(self, idx: IntArray, rngs: Sequence[np.random.Generator]) -> None:
        low, high, n_chunks = self.config.noise_low, self.config.noise_high, self.video.n_chunks
        for i, rng in zip(idx.tolist(), rngs):
            self._rng_states[i] = rng.bit_generator.state
            self._rngs[i] = rng
            self.state.noise[i] = rng.uniform(low, high, size=n_chunks)

    def sync_rngs(self, sessions: npt.ArrayLike | None = None) -> None:
        """Leave each session's generator where drawing one noise value per downloaded chunk would have.

        The noise of a whole episode is drawn at reset; a session abandoned before its last chunk has
        drawn too much. This rewinds its generator and redraws only the chunks downloaded. Call it before
        using the generator for anything else (``reset`` calls it for the sessions it resets).
        """
        for i in self._session_idx(sessions).tolist():
            rng, saved = self._rngs[i], self._rng_states[i]
            if rng is None or saved is None:
                continue
            used = int(self.state.chunk_idx[i])
            if used < self.video.n_chunks:
                rng.bit_generator.state = saved
                rng.uniform(self.config.noise_low, self.config.noise_high, size=used)
            self._rngs[i] = None
            self._rng_states[i] = None

    def _session_idx(self, sessions: npt.ArrayLike | None) -> IntArray:
        if sessions is None:
            return np.arange(self.num_envs)
        idx = np.asarray(sessions, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.num_envs):
            raise ValueError(f"session indices must be in [0, {self.num_envs - 1}], got {idx.tolist()}")
        if np.unique(idx).size != idx.size:
            raise ValueError(f"session indices must be distinct, got {idx.tolist()}")
        return idx

    def _actions(self, quality_idx: npt.ArrayLike, n: int) -> IntArray:
        q = np.asarray(quality_idx)
        if q.shape != (n,):
            raise ValueError(f"expected {n} actions (one quality index per stepped session), got shape {q.shape}")
        if q.dtype.kind not in "iu":
            if q.dtype.kind != "f" or not np.all(q == np.round(q)):
                raise ValueError(f"actions must be integer quality indices, got dtype {q.dtype}")
        q = q.astype(np.int64)  # a copy: the outcomes must not change if the caller reuses its array
        bad = (q < 0) | (q >= self.video.n_levels)
        if np.any(bad):
            i = int(np.argmax(bad))
            raise ValueError(f"action {int(q[i])} of stepped session {i} is not a quality index in "
                             f"[0, {self.video.n_levels - 1}]")
        return q

    def step(self, quality_idx: npt.ArrayLike, *, sessions: npt.ArrayLike | None = None) -> ChunkBatch:
        """Download the next chunk of every session (or of ``sessions``) at ``quality_idx``.

        Args:
            quality_idx: one quality index per stepped session.
            sessions: indices of the sessions to step (default all, the fastest path).

        Raises:
            ValueError: wrong number of actions, or an action that is not a level of the ladder.
            SimulationInvariantError: a stepped session has finished its video, or a chunk would need more
                than ``MAX_TRACE_PASSES`` passes over its trace. The state is then left unchanged.
        """
        idx = None if sessions is None else self._session_idx(sessions)
        n = self.num_envs if idx is None else idx.size
        q = self._actions(quality_idx, n)
        s = self.state

        def get(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if idx is None else a[idx]

        ci = s.chunk_idx.copy() if idx is None else s.chunk_idx[idx]
        done = ci >= self.video.n_chunks
        if np.any(done):
            which = (np.flatnonzero(done) if idx is None else idx[done]).tolist()
            raise SimulationInvariantError(f"sessions {which} have downloaded the whole video; reset them first")
        m = get(s.trace_idx)
        size = self._sizes_flat[ci * self.video.n_levels + q]
        self.packed.check_chunk_sizes(m, size / get(s.throughput_scale))
        rows = np.arange(n) if idx is None else idx
        noise = s.noise[rows, ci] if self.config.is_noisy else None
        out = self._advance(m, q, ci, size, noise, idx)
        return out._replace(sessions=rows)

    def _advance(self, m: IntArray, q: IntArray, ci: IntArray, size: FloatArray, noise: FloatArray | None,
                 idx: IntArray | None) -> ChunkBatch:
        cfg, s, packed = self.config, self.state, self.packed

        def get(a: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return a if idx is None else a[idx]

        link = fast_link.LinkState(get(s.interval_idx), get(s.clock_s))
        now = get(s.now_s)
        request = now.copy()
        rtt = cfg.link_rtt_s if noise is None else cfg.link_rtt_s * noise
        if cfg.rtt_advances_trace:
            link = fast_link.idle(packed, m, link, np.broadcast_to(rtt, now.shape), self._n_steps)
        now = now + rtt
        # A trace scaled by s delivers s times the payload per interval: the same as a chunk s times smaller.
        moved = fast_link.transfer(packed, m, link, size / get(s.throughput_scale), self._n_steps)
        elapsed = moved.elapsed_s
        now = now + (elapsed if noise is None else elapsed * noise)
        finish = now
        download = elapsed + cfg.link_rtt_s if noise is None else (elapsed + cfg.link_rtt_s) * noise
        buffer = get(s.buffer_s)
        playing = get(s.is_playing)
        rebuffer = np.where(playing, np.maximum(download - buffer, 0.0), 0.0)
        startup = np.where(playing, 0.0, download)
        buffer = np.where(playing, np.maximum(buffer - download, 0.0), buffer) + self.video.chunk_duration_s
        playing = playing | (buffer >= cfg.startup_threshold_s)
        idle_s = np.zeros(buffer.shape)
        g, clock = moved.interval_idx, moved.clock_s
        full = np.flatnonzero(buffer > cfg.max_buffer_s)
        if full.size:
            quantum = cfg.idle_quantum_s
            idle_s[full] = np.ceil((buffer[full] - cfg.max_buffer_s) / quantum) * quantum
            buffer[full] -= idle_s[full]
            after = fast_link.idle(packed, m[full], fast_link.LinkState(g[full], clock[full]), idle_s[full],
                                   self._n_steps)
            g[full], clock[full] = after.interval_idx, after.clock_s
            now = now + idle_s
        last_q = get(s.last_quality_idx)
        previous = np.where(last_q < 0, q, last_q)
        util = self.utilities[ci, q]
        before = np.where(last_q < 0, util, self.utilities[np.maximum(ci - 1, 0), previous])
        smooth = self.qoe.smoothness_weight * np.abs(util - before)
        new_ci = ci + 1
        self._store(idx, g, clock, now, buffer, playing, new_ci, q)
        return ChunkBatch(
            sessions=np.empty(0, dtype=np.int64), chunk_idx=ci, quality_idx=q,
            bitrate_bps=self.video.bitrates_bps[q], size_bits=size, request_time_s=request,
            finish_time_s=finish, download_time_s=download, throughput_bps=size / download,
            rebuffer_s=rebuffer, startup_delay_s=startup, buffer_s=buffer.copy(), idle_s=idle_s,
            utility=util, rebuffer_penalty=self.qoe.rebuffer_penalty * rebuffer, smoothness_penalty=smooth,
            is_last=new_ci >= self.video.n_chunks,
        )

    def _store(self, idx: IntArray | None, g: IntArray, clock: FloatArray, now: FloatArray, buffer: FloatArray,
               playing: BoolArray, chunk_idx: IntArray, quality: IntArray) -> None:
        s = self.state
        where: Any = slice(None) if idx is None else idx
        s.interval_idx[where] = g
        s.clock_s[where] = clock
        s.now_s[where] = now
        s.buffer_s[where] = buffer
        s.is_playing[where] = playing
        s.chunk_idx[where] = chunk_idx
        s.last_quality_idx[where] = quality

    def trace_pointer(self) -> IntArray:
        """Each session's interval in progress as TraceLink numbers it (1 = the trace's first interval)."""
        return self.state.interval_idx - self.packed.first_idx[self.state.trace_idx]

