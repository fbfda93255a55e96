"""Lone views played start to end in compiled code (numba), for the policies whose decisions are simple enough.

:func:`abr.sessions.playback.play_household_days` first plays every view as if alone on its household's link.
In Python that costs about a hundred microseconds a chunk (a :class:`~simulator.fast_session.FastSession` step,
the player's context, the policy); here a whole view is one loop of scalar arithmetic. The kernel is
:class:`~simulator.fast_session.FastSession`'s step (its transfer, idle and walk fallback, operation for
operation) with the view's abandonment and overlap rules of ``playback._LoneView``, and the decisions of

* BBA (:class:`agents.bba.BBA`): its rule on the buffer;
* RobustMPC and FastMPC (:class:`agents.mpc.MPC` planning bitrates): the harmonic-mean prediction and its error
  history as :meth:`~agents.mpc.MPC.predict_bps` keeps them, and the compiled search of
  :class:`~agents.mpc.MPCBatch` (:mod:`agents._mpc_search`) on the same tables.

Every float operation is the Python one in the same order, so the outcomes are equal bit for bit (a test plays
the same views both ways). Other policies, noisy link models and chunks too large for a trace keep the Python path.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numba import njit

from agents._mpc_search import _best_constant, _search
from agents.bba import BBA
from agents.mpc import MPC, MPCBatch
from simulator.config import SimConfig
from simulator.fast_session import TraceLists
from simulator.records import ChunkOutcome
from simulator.shared_session import PlayerResult
from traces.types import Video

_EPS = float(np.finfo(np.float64).eps)
_BBA, _MPC = 0, 1


@dataclass(frozen=True, slots=True)
class LoneView:
    """One view to play alone: its trace, where it starts, its video and the player's rules.

    ``next_start_s``: when the household's next view starts (``inf`` for the last); a view still playing past it
    stops there, flagged as overlapping."""

    lists: TraceLists
    start_idx: int
    start_time_s: float
    video: Video
    patience_s: float
    next_start_s: float
    name: str


@dataclass(frozen=True, slots=True)
class LoneResult:
    """A view's result, and whether it stopped because it overlapped the household's next view."""

    player: PlayerResult
    overlaps: bool


def compiled_kind(policy: object) -> bool:
    """Whether the kernel plays ``policy`` (after ``start_policy``): BBA, or MPC planning bitrates."""
    return type(policy) is BBA or (type(policy) is MPC and not policy.plans_quality)  # type: ignore[attr-defined]


def plays_compiled(view: LoneView, config: SimConfig) -> bool:
    """Whether the kernel plays ``view`` on ``config`` (no download-time noise, every chunk fits the trace)."""
    return not config.is_noisy and float(view.video.chunk_sizes_bits.max()) <= view.lists.max_chunk_bits


def play_lone_views(policy: BBA | MPC, views: Sequence[LoneView], config: SimConfig,
                    planner: MPCBatch) -> list[LoneResult]:
    """Play ``views`` (all with ``policy``'s kind and parameters, one ladder and chunk duration) to their ends."""
    if not views:
        return []
    ladder = views[0].video.bitrates_bps
    duration = float(views[0].video.chunk_duration_s)
    if any(v.video.bitrates_bps.shape != ladder.shape or not np.array_equal(v.video.bitrates_bps, ladder)
           or float(v.video.chunk_duration_s) != duration for v in views):
        raise ValueError("play_lone_views plays views of one ladder and chunk duration; group them first")
    traces: dict[int, int] = {}
    packed: list[TraceLists] = []
    for v in views:
        if id(v.lists) not in traces:
            traces[id(v.lists)] = len(packed)
            packed.append(v.lists)
    lengths = [len(t.times_s) for t in packed]
    tr_lo = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    tr_len = np.array(lengths, dtype=np.int64)
    T = np.concatenate([t.packed.times_s for t in packed]).astype(np.float64)
    R = np.concatenate([t.packed.rates_bps for t in packed]).astype(np.float64)
    C = np.concatenate([t.packed.cum_bits for t in packed]).astype(np.float64)
    IB = np.concatenate([t.packed.interval_bits for t in packed]).astype(np.float64)
    n_chunks = np.array([v.video.n_chunks for v in views], dtype=np.int64)
    row0 = np.concatenate([[0], np.cumsum(n_chunks)[:-1]]).astype(np.int64)
    sizes = np.ascontiguousarray(np.concatenate([v.video.chunk_sizes_bits for v in views]), dtype=np.float64)
    view_f = np.array([[v.start_time_s, v.next_start_s, v.patience_s] for v in views], dtype=np.float64)
    view_i = np.array([[traces[id(v.lists)], v.start_idx] for v in views], dtype=np.int64)
    link = np.array([config.link_rtt_s, config.payload_efficiency, config.max_buffer_s, config.idle_quantum_s,
                     config.startup_threshold_s, duration], dtype=np.float64)
    forced = -1 if config.first_chunk_quality_idx is None else int(config.first_chunk_quality_idx)
    flags = np.array([int(config.rtt_advances_trace), int(config.startup_delay_as_rebuffer), forced],
                     dtype=np.int64)
    if isinstance(policy, BBA):
        kind, params = _BBA, np.array([policy.reservoir_s, policy.cushion_s, 0.0, 0.0], dtype=np.float64)
        tables = _empty_tables()
    else:
        kind = _MPC
        params = np.array([policy.horizon, policy.window, float(policy.is_robust), policy.rebuffer_penalty_per_s],
                          dtype=np.float64)
        tables = _search_tables(policy, views[0].video, planner)
    rows = int(n_chunks.sum())
    out_q = np.zeros(rows, dtype=np.int64)
    out_f = np.zeros((rows, 7), dtype=np.float64)
    played = np.zeros(len(views), dtype=np.int64)
    state = np.zeros((len(views), 3), dtype=np.float64)  # startup delay, abandoned, overlaps
    _play(T, R, C, IB, tr_lo, tr_len, sizes, row0, n_chunks, view_f, view_i, link, flags, kind, params, *tables,
          out_q, out_f, played, state)
    # Every played chunk's outcome at once (the same floats as FastSession's: size / download is one division).
    position = np.arange(rows) - np.repeat(row0, n_chunks)
    chosen = np.flatnonzero(position < np.repeat(played, n_chunks))
    q = out_q[chosen]
    f = out_f[chosen]
    size = sizes[chosen, q]
    columns = (position[chosen].tolist(), q.tolist(), ladder[q].astype(np.float64).tolist(), size.tolist(),
               *f[:, :3].T.tolist(), (size / f[:, 2]).tolist(), *f[:, 3:].T.tolist())
    outcomes = list(itertools.starmap(ChunkOutcome, zip(*columns)))
    ends = np.cumsum(played).tolist()
    results = []
    for i, v in enumerate(views):
        player = PlayerResult(v.name, float(v.start_time_s), tuple(outcomes[ends[i] - int(played[i]):ends[i]]),
                              bool(state[i, 1]), float(state[i, 0]))
        results.append(LoneResult(player, bool(state[i, 2])))
    return results


def _empty_tables() -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
                             npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    return np.zeros(1), np.zeros(1), np.zeros(1), np.zeros(1, dtype=np.int64), np.zeros((1, 5), dtype=np.int64)


def _search_tables(policy: MPC, video: Video, planner: MPCBatch
                   ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64],
                              npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The search tables of every horizon 1..H, flat, and where each horizon's start (``index[h]``: bitrate
    sums, smoothness, bounds, offsets, and the bounds' node count)."""
    parts: tuple[list[npt.NDArray[np.float64]], ...] = ([], [], [])
    offset_parts: list[npt.NDArray[np.int64]] = []
    index = np.zeros((policy.horizon + 1, 5), dtype=np.int64)
    at = np.zeros(4, dtype=np.int64)
    for h in range(1, policy.horizon + 1):
        bitrate_mbps, smooth, bound, offsets = planner.search_tables(policy, video, h)
        index[h, :4] = at
        index[h, 4] = bound.shape[1]
        for j, part in enumerate((bitrate_mbps, smooth, bound)):
            parts[j].append(part.ravel())
            at[j] += part.size
        offset_parts.append(offsets)
        at[3] += offsets.size
    return (np.concatenate(parts[0]).astype(np.float64), np.concatenate(parts[1]).astype(np.float64),
            np.concatenate(parts[2]).astype(np.float64), np.concatenate(offset_parts).astype(np.int64), index)


@njit(cache=True, nogil=True)
def _bisect_right(a: npt.NDArray[np.float64], x: float, lo: int, hi: int) -> int:  # pragma: no cover - compiled
    while lo < hi:
        mid = (lo + hi) // 2
        if x < a[mid]:
            hi = mid
        else:
            lo = mid + 1
    return lo


@njit(cache=True, nogil=True)
def _walk(T: npt.NDArray[np.float64], R: npt.NDArray[np.float64], eff: float, hi: int, g: int, clock: float,
          size: float) -> tuple[int, float, float]:  # pragma: no cover - compiled
    """``simulator.fast_link.walk_transfer`` on one trace (``lo`` = 0)."""
    sent = 0.0
    elapsed = 0.0
    while True:
        rate = R[g]
        duration = T[g] - clock
        payload = rate * duration * eff
        if sent + payload > size:
            frac = (size - sent) / rate / eff
            return g, clock + frac, elapsed + frac
        sent += payload
        elapsed += duration
        clock = T[g]
        g += 1
        if g > hi:
            g = 1
            clock = T[0]


@njit(cache=True, nogil=True)
def _transfer(T: npt.NDArray[np.float64], R: npt.NDArray[np.float64], C: npt.NDArray[np.float64],
              IB: npt.NDArray[np.float64], hi: int, eff: float, ptr: int, clock: float,
              size: float) -> tuple[int, float, float]:  # pragma: no cover - compiled
    """``simulator.fast_session.transfer``."""
    rate = R[ptr]
    d_first = T[ptr] - clock
    p_first = rate * d_first * eff
    if p_first > size:
        frac = size / rate / eff
        return ptr, clock + frac, frac
    target = (size - p_first) + C[ptr]
    P = C[hi]
    passes = 0.0
    if target >= P:
        rest = target - P
        q = np.floor(rest / P) * 1.0
        r = rest - q * P
        if r >= P:
            q, r = q + 1, r - P
        if r < 0:
            q, r = q - 1, r + P
        r = min(max(r, 0.0), np.nextafter(P, -np.inf))
        k = _bisect_right(C, r, 1, hi + 1)
        sent = ((p_first + (P - C[ptr])) + q * P) + C[k - 1]
        before = ((d_first + (T[hi] - T[ptr])) + q * (T[hi] - T[0])) + (T[k - 1] - T[0])
        passes = q + 1
    else:
        k = _bisect_right(C, target, ptr + 1, hi + 1)
        sent = p_first + (C[k - 1] - C[ptr])
        before = d_first + (T[k - 1] - T[ptr])
    margin = (8 * _EPS) * ((hi + 2) * (passes + 1)) * (size + P * (passes + 1))
    if size - sent <= margin or sent + IB[k] - size <= margin:
        return _walk(T, R, eff, hi, ptr, clock, size)
    frac = (size - sent) / R[k] / eff
    return k, T[k - 1] + frac, before + frac


@njit(cache=True, nogil=True)
def _idle(T: npt.NDArray[np.float64], hi: int, ptr: int, clock: float,
          duration: float) -> tuple[int, float]:  # pragma: no cover - compiled
    """``simulator.fast_session.idle``."""
    d_first = T[ptr] - clock
    if d_first > duration:
        return ptr, clock + duration
    rest = duration - d_first
    target = T[ptr] + rest
    if target >= T[hi]:
        pass_s = T[hi] - T[0]
        after = rest - (T[hi] - T[ptr])
        q = np.floor(after / pass_s) * 1.0
        r = after - q * pass_s
        if r >= pass_s:
            r = r - pass_s
        elif r < 0:
            r = r + pass_s
        k = _bisect_right(T, min(T[0] + r, np.nextafter(T[hi], -np.inf)), 1, hi + 1)
        left = r - (T[k - 1] - T[0])
    else:
        k = _bisect_right(T, target, ptr + 1, hi + 1)
        left = rest - (T[k - 1] - T[ptr])
    left = min(max(left, 0.0), T[k] - T[k - 1])
    return k, T[k - 1] + left


@njit(cache=True, nogil=True)
def _play(T_all: npt.NDArray[np.float64], R_all: npt.NDArray[np.float64], C_all: npt.NDArray[np.float64],
          IB_all: npt.NDArray[np.float64], tr_lo: npt.NDArray[np.int64], tr_len: npt.NDArray[np.int64],
          sizes: npt.NDArray[np.float64], row0: npt.NDArray[np.int64], n_chunks: npt.NDArray[np.int64],
          view_f: npt.NDArray[np.float64], view_i: npt.NDArray[np.int64], link: npt.NDArray[np.float64],
          flags: npt.NDArray[np.int64], kind: int, params: npt.NDArray[np.float64],
          t_bitrate: npt.NDArray[np.float64], t_smooth: npt.NDArray[np.float64], t_bound: npt.NDArray[np.float64],
          t_offsets: npt.NDArray[np.int64], t_index: npt.NDArray[np.int64], out_q: npt.NDArray[np.int64],
          out_f: npt.NDArray[np.float64], played: npt.NDArray[np.int64],
          state: npt.NDArray[np.float64]) -> None:  # pragma: no cover - compiled
    rtt, eff, max_buffer, quantum, threshold, duration = link[0], link[1], link[2], link[3], link[4], link[5]
    rtt_advances, playing0, forced = flags[0] == 1, flags[1] == 1, flags[2]
    n_levels = sizes.shape[1]
    top = n_levels - 1
    for i in range(n_chunks.size):
        a, n = tr_lo[view_i[i, 0]], tr_len[view_i[i, 0]]
        T, R, C, IB = T_all[a:a + n], R_all[a:a + n], C_all[a:a + n], IB_all[a:a + n]
        hi = n - 1
        start_s, next_start_s, patience = view_f[i, 0], view_f[i, 1], view_f[i, 2]
        ptr = view_i[i, 1]
        ptr, clock = _idle(T, hi, ptr, T[ptr - 1], start_s)
        r0, total = row0[i], n_chunks[i]
        buffer, now, playing, startup_total = 0.0, 0.0, playing0, 0.0
        errors = np.zeros(total)  # MPC's prediction errors, one per decision from the second chunk
        last_mean = 0.0
        k = 0
        while k < total:
            # -- the decision
            if k == 0 and forced >= 0:
                q = forced
            elif kind == _BBA:
                q = _bba(buffer, params[0], params[1], top)
            elif k == 0:  # MPC without a measurement
                q = 0
            else:
                q, last_mean = _mpc(sizes, r0, k, total, out_q, out_f, errors, last_mean, buffer, duration, params,
                                    t_bitrate, t_smooth, t_bound, t_offsets, t_index)
            # -- the download (FastSession.step without noise)
            size = sizes[r0 + k, q]
            request = now
            if rtt_advances:
                ptr, clock = _idle(T, hi, ptr, clock, rtt)
            t = request + rtt
            ptr, clock, elapsed = _transfer(T, R, C, IB, hi, eff, ptr, clock, size)
            t = t + elapsed
            finish = t
            download = elapsed + rtt
            if playing:
                rebuffer, startup = max(download - buffer, 0.0), 0.0
                buffer = max(buffer - download, 0.0)
            else:
                rebuffer, startup = 0.0, download
            buffer = buffer + duration
            playing = playing or buffer >= threshold
            idle_s = 0.0
            if buffer > max_buffer:
                idle_s = math.ceil((buffer - max_buffer) / quantum) * quantum
                buffer -= idle_s
                ptr, clock = _idle(T, hi, ptr, clock, idle_s)
                t = t + idle_s
            now = t
            out_q[r0 + k] = q
            row = out_f[r0 + k]
            row[0], row[1], row[2], row[3], row[4], row[5], row[6] = request, finish, download, rebuffer, startup, \
                buffer, idle_s
            k += 1
            # -- the view's rules (playback._LoneView.step)
            startup_total += startup
            if startup > 0 and startup_total > patience:
                state[i, 1] = 1.0
                break
            if k < total and start_s + now > next_start_s:
                state[i, 2] = 1.0
                break
        played[i] = k
        state[i, 0] = startup_total


@njit(cache=True, nogil=True)
def _bba(buffer: float, reservoir: float, cushion: float, top: int) -> int:  # pragma: no cover - compiled
    """:meth:`agents.bba.BBA.select`."""
    if buffer < reservoir:
        return 0
    if buffer >= reservoir + cushion:
        return top
    return int(top * (buffer - reservoir) / cushion)


@njit(cache=True, nogil=True)
def _mpc(sizes: npt.NDArray[np.float64], r0: int, k: int, total: int, out_q: npt.NDArray[np.int64],
         out_f: npt.NDArray[np.float64], errors: npt.NDArray[np.float64], last_mean: float, buffer: float,
         duration: float, params: npt.NDArray[np.float64], t_bitrate: npt.NDArray[np.float64],
         t_smooth: npt.NDArray[np.float64], t_bound: npt.NDArray[np.float64], t_offsets: npt.NDArray[np.int64],
         t_index: npt.NDArray[np.int64]) -> tuple[int, float]:  # pragma: no cover - compiled
    """:meth:`agents.mpc.MPC.select` for chunk ``k`` >= 1 (the ``k - 1``-th error is written here): the level and
    the new harmonic mean."""
    horizon_max, window = int(params[0]), int(params[1])
    n_levels = sizes.shape[1]
    measured = sizes[r0 + k - 1, out_q[r0 + k - 1]] / out_f[r0 + k - 1, 2]
    errors[k - 1] = 0.0 if k == 1 else abs(last_mean - measured) / measured
    first = max(0, k - window)
    inverse = 0.0
    for j in range(first, k):
        inverse = inverse + 1.0 / (sizes[r0 + j, out_q[r0 + j]] / out_f[r0 + j, 2])
    mean = (k - first) / inverse
    prediction = mean
    if params[2] == 1.0:  # robust: the mean over 1 + the largest recent error
        worst = errors[first]
        for j in range(first + 1, k):
            worst = max(worst, errors[j])
        prediction = mean / (1.0 + worst)
    horizon = min(horizon_max, total - k)
    last = out_q[r0 + k - 1]
    b0, s0, d0, o0, nodes = t_index[horizon, 0], t_index[horizon, 1], t_index[horizon, 2], t_index[horizon, 3], \
        t_index[horizon, 4]
    n_seq = n_levels ** horizon
    bitrate_mbps = t_bitrate[b0:b0 + n_seq]
    smooth = t_smooth[s0:s0 + n_levels * n_seq].reshape((n_levels, n_seq))
    bound = t_bound[d0:d0 + n_levels * nodes].reshape((n_levels, nodes))
    offsets = t_offsets[o0:o0 + horizon + 2]
    upcoming = sizes[r0 + k:r0 + k + horizon]
    best = _best_constant(upcoming, buffer, prediction, bitrate_mbps, smooth[last], params[3], duration)
    seq = _search(upcoming, buffer, prediction, bitrate_mbps, smooth[last], bound[last], offsets, params[3], duration,
                  best)
    return seq // n_levels ** (horizon - 1), mean
