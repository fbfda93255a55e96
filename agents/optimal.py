"""The offline optimum: the best quality sequence for a session whose whole trace is known in advance.

:class:`OfflineOptimal` (``name = "optimal"``) is a :class:`~agents.base.ClairvoyantPolicy`: in ``prepare``
it solves the session with :func:`solve_offline_optimum`, then ``select`` follows the plan. It is a QoE
ceiling for real players, not a player. Noisy configs (``config.is_noisy``) are refused with a
``ConfigError``: the optimum is defined for the deterministic dynamics.

## Method

A forward dynamic programme over chunks. A state holds what determines the rest of the session in the SimPy
core (:class:`simulator.des.Session`): the trace clock (which fixes TraceLink's pointer), the buffer,
whether playback has started and the last quality, plus the QoE so far. Every state is expanded by every
quality with the core's own arithmetic, vectorised over states (:mod:`agents._offline_model`): the request
RTT (advancing the trace or not, ``rtt_advances_trace``), the transfer over the looping trace with
``payload_efficiency``, rebuffering or startup delay as ``Session`` counts them (``startup_delay_as_rebuffer``,
``startup_threshold_s``), idling above ``max_buffer_s`` in ``idle_quantum_s`` steps with the trace clock
running, the forced first chunk (``first_chunk_quality_idx``), ``max_chunks``, chunks the core would refuse
as too slow, and the per-chunk QoE of :mod:`simulator.qoe` for any :class:`~simulator.qoe.QoEWeights`.
Kept states are simulated exactly, so replaying the plan in the core gives the claimed QoE to float
rounding (~1e-12); the reductions below can only cost optimality, never the claim.

## Reductions (the discretisation)

1. **Merge grid** ``DELTA_S = 0.005`` s: after each chunk, states with the same last quality and playback
   flag whose trace clock and buffer round to the same multiple of ``DELTA_S`` are merged, keeping the one
   with the highest QoE so far (the grid of the reference's ``exact_dp_fixed_env_delta0.005``). This is
   the only approximation that the results rely on.
2. **Bound pruning** (safe): a state is dropped when its QoE so far plus an upper bound on the QoE still to
   come (:class:`~agents._offline_model.FutureBound`, a Lagrangian relaxation exact in the utilities and
   the smoothness term) is below the QoE of a complete plan already found. That plan comes from a first
   pass with a narrow beam (``PILOT_BEAM_WIDTH``).
3. **Beam cap**: at most ``FIRST_BEAM_WIDTH`` states per chunk, ranked by that optimistic total. If a state
   the cap dropped could still have beaten the result, the pass is repeated with a beam ``BEAM_GROWTH``
   times wider, up to ``max_beam_width`` (``MAX_BEAM_WIDTH`` by default); ``is_beam_exact`` says whether
   the cap ended up irrelevant.

Every complete plan either survives to the end or has an ancestor dropped by 1-3 whose optimistic total
bounds it. ``OptimumResult.upper_bound`` (the best such total, or the result) therefore bounds the exact
optimum of the core's dynamics, and ``gap`` is the most the reductions may have cost (0 = certified).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from agents._offline_model import BoolArray, FloatArray, FutureBound, IntArray, VectorLink
from simulator.config import SimConfig
from simulator.context import PlayerContext
from simulator.errors import ConfigError, SimulationInvariantError
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

DELTA_S = 0.005  # merge grid of trace clock and buffer, seconds
PILOT_BEAM_WIDTH = 64  # states per chunk in the first pass that finds a lower bound
FIRST_BEAM_WIDTH = 4096  # states per chunk in the main pass; widened while the cap may matter:
BEAM_GROWTH = 4  # by this factor,
MAX_BEAM_WIDTH = 65536  # up to this (default)
_PRUNE_TOLERANCE = 1e-9  # QoE units: bound pruning keeps states this close to the lower bound

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class OptimumResult:
    """The optimal plan of one session and what the search knows about it.

    Attributes:
        qualities: the quality of every chunk (forced first chunk included).
        qoe_sum: the plan's QoE summed over all chunks, as the core will measure it.
        qoe_excl_first: the same without the first chunk.
        rebuffer_s: the plan's total rebuffering, in seconds.
        upper_bound: an upper bound on the exact optimum (see the module docstring).
        is_beam_exact: whether the beam cap dropped nothing that could have beaten the plan.
        beam_width: the beam width of the last pass (states per chunk).
        states_explored: state expansions evaluated, over all passes.
        max_states: the most states kept after any chunk in the last pass.
        method: a label of the method and its settings.
    """

    qualities: tuple[int, ...]
    qoe_sum: float
    qoe_excl_first: float
    rebuffer_s: float
    upper_bound: float
    is_beam_exact: bool
    beam_width: int
    states_explored: int
    max_states: int
    method: str

    @property
    def gap(self) -> float:
        """``upper_bound - qoe_sum``: the most the reductions may have cost (0 = certified optimal)."""
        return max(self.upper_bound - self.qoe_sum, 0.0)


@dataclass(slots=True)
class _Layer:
    """States after one chunk (arrays of equal length), with back-pointers into the previous layer."""

    clock_s: FloatArray
    at_bits: FloatArray
    buffer_s: FloatArray
    is_playing: BoolArray
    last_idx: IntArray
    value: FloatArray
    rebuffer_s: FloatArray
    parent: IntArray

    def take(self, idx: IntArray) -> _Layer:
        return _Layer(self.clock_s[idx], self.at_bits[idx], self.buffer_s[idx], self.is_playing[idx],
                      self.last_idx[idx], self.value[idx], self.rebuffer_s[idx], self.parent[idx])


@dataclass(frozen=True, slots=True)
class SessionState:
    """Where a session stands before chunk ``next_chunk_idx``: what the search needs to plan the rest of it.

    Attributes:
        next_chunk_idx: the next chunk to download (>= 1: the session has started).
        clock_s: the trace clock (``simulator.fast_session.FastSession.clock_s``: the position in the trace's
            pass, which fixes the link's pointer).
        buffer_s: the buffer, in seconds.
        is_playing: whether playback has started.
        last_quality_idx: the quality of the last chunk downloaded.
    """

    next_chunk_idx: int
    clock_s: float
    buffer_s: float
    is_playing: bool
    last_quality_idx: int


class _Model:
    """Everything the search needs about one session (from its start, or from ``state``)."""

    def __init__(self, trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights, start_idx: int,
                 state: SessionState | None = None) -> None:
        if config.is_noisy:
            raise ConfigError(
                f"the offline optimum is defined for deterministic dynamics, but this config adds download-time "
                f"noise U({config.noise_low}, {config.noise_high}); use noise_low=noise_high=1.0 (e.g. preset "
                "'pensieve' rather than 'pensieve-train')"
            )
        if config.max_chunks is not None and video.n_chunks > config.max_chunks:
            video = video.truncated(config.max_chunks)
        first = config.first_chunk_quality_idx
        if first is not None and first >= video.n_levels:
            raise ConfigError(f"first_chunk_quality_idx={first} is not a level of the video's "
                              f"{video.n_levels}-level ladder")
        if not 1 <= start_idx < trace.times_s.size:
            raise ConfigError(f"start_idx={start_idx} must be in [1, {trace.times_s.size - 1}]")
        self.video, self.config, self.qoe = video, config, qoe
        self.trace_name = trace.name
        self.link = VectorLink(trace, payload_efficiency=config.payload_efficiency)
        self.start_clock_s = float(trace.times_s[start_idx - 1]) if state is None else float(state.clock_s)
        self.state = state
        self.start_chunk = 0 if state is None else state.next_chunk_idx
        if state is not None and not 1 <= state.next_chunk_idx < video.n_chunks:
            raise ConfigError(f"state.next_chunk_idx={state.next_chunk_idx} must be in [1, {video.n_chunks - 1}]")
        self.util = qoe.chunk_utilities(video)  # [n_chunks, n_levels]; per chunk for the ssim kind
        allowed = video.chunk_sizes_bits <= self.link.max_chunk_bits
        if first is not None:
            allowed[0] = np.arange(video.n_levels) == first
        if not allowed.any(axis=1).all():
            raise SimulationInvariantError(
                f"trace {trace.name!r} is too slow for this video: some chunk needs more than the core's limit "
                "of passes over the trace at every level; scale the trace up (Trace.scaled)")
        self.allowed = allowed
        self.bound = FutureBound(video, config, qoe, self.link, allowed)

    def initial(self) -> _Layer:
        zero = np.zeros(1)
        clock_s = zero + self.start_clock_s
        state = self.state
        if state is None:
            return _Layer(clock_s, self.link.delivered_bits(clock_s), zero,
                          np.array([self.config.startup_delay_as_rebuffer]), np.array([-1]), zero, zero, np.array([-1]))
        return _Layer(clock_s, self.link.delivered_bits(clock_s), zero + state.buffer_s, np.array([state.is_playing]),
                      np.array([state.last_quality_idx]), zero, zero, np.array([-1]))

    def expand(self, layer: _Layer, chunk_idx: int) -> tuple[_Layer, IntArray]:
        """Every allowed quality from every state: the states after chunk ``chunk_idx`` and their actions."""
        cfg, link = self.config, self.link
        actions = np.flatnonzero(self.allowed[chunk_idx])
        parent = np.repeat(np.arange(layer.value.size), actions.size)
        quality = np.tile(actions, layer.value.size)
        clock_s, at_bits = layer.clock_s[parent], layer.at_bits[parent]
        if cfg.rtt_advances_trace:
            clock_s = link.advance(clock_s, cfg.link_rtt_s)
            at_bits = link.delivered_bits(clock_s)
        clock_s, at_bits, transfer_s = link.transfer(clock_s, self.video.chunk_sizes_bits[chunk_idx, quality], at_bits)
        download_s = transfer_s + cfg.link_rtt_s
        buffer_s, playing = layer.buffer_s[parent], layer.is_playing[parent]
        rebuffer_s = np.where(playing, np.maximum(download_s - buffer_s, 0.0), 0.0)
        buffer_s = np.where(playing, np.maximum(buffer_s - download_s, 0.0), buffer_s) + self.video.chunk_duration_s
        playing = playing | (buffer_s >= cfg.startup_threshold_s)
        over = buffer_s > cfg.max_buffer_s
        if over.any():
            idle_s = np.where(over, np.ceil((buffer_s - cfg.max_buffer_s) / cfg.idle_quantum_s), 0.0)
            idle_s *= cfg.idle_quantum_s
            buffer_s = buffer_s - idle_s
            clock_s = np.where(over, link.advance(clock_s, idle_s), clock_s)
            at_bits = np.where(over, link.delivered_bits(clock_s), at_bits)
        last = layer.last_idx[parent]
        util = self.util[chunk_idx, quality]
        previous = np.where(last < 0, util, self.util[max(chunk_idx - 1, 0), np.maximum(last, 0)])
        qoe = self.qoe
        value = (layer.value[parent] + util - qoe.rebuffer_penalty * rebuffer_s
                 - qoe.smoothness_weight * np.abs(util - previous))
        after = _Layer(clock_s, at_bits, buffer_s, playing, quality, value, layer.rebuffer_s[parent] + rebuffer_s,
                       parent)
        return after, quality


def _max_dropped(optimistic: FloatArray, before: IntArray, after: IntArray) -> float:
    """The best optimistic total among ``before`` (sorted indices) not in ``after`` (a sorted subset)."""
    if after.size == before.size:
        return -np.inf
    lost = np.ones(before.size, dtype=bool)
    lost[np.searchsorted(before, after)] = False
    return float(optimistic[before[lost]].max())


def _merge(layer: _Layer, t0_s: float) -> IntArray:
    """Indices (sorted) of the best state, highest value first, of every merge-grid cell."""
    cells = np.stack([layer.last_idx * 2 + layer.is_playing,
                      np.rint((layer.clock_s - t0_s) / DELTA_S).astype(np.int64),
                      np.rint(layer.buffer_s / DELTA_S).astype(np.int64)])
    cells -= cells.min(axis=1, keepdims=True)
    sizes = [int(m) + 1 for m in cells.max(axis=1)]
    order = np.argsort(-layer.value, kind="stable")
    if sizes[0] * sizes[1] * sizes[2] < 2**62:  # one packed integer key per cell
        key = (cells[0] * sizes[1] + cells[1]) * sizes[2] + cells[2]
        _, first = np.unique(key[order], return_index=True)
    else:
        _, first = np.unique(cells[:, order], axis=1, return_index=True)
    return np.sort(order[first])


@dataclass(slots=True)
class _Pass:
    """The outcome of one search pass; ``*_bound``: the best optimistic total dropped by merging / the cap."""

    qualities: tuple[int, ...]
    qoe_sum: float
    qoe_excl_first: float
    rebuffer_s: float
    merged_bound: float
    capped_bound: float
    explored: int
    max_states: int


def _search(model: _Model, *, beam_width: int, lower_bound: float) -> _Pass:
    """One forward pass: expand, prune by bound, merge, cap; then follow the back-pointers."""
    layer = model.initial()
    history: list[tuple[IntArray, IntArray]] = []
    first_values = np.zeros(1)
    dropped = capped = -np.inf
    lam_idx = np.zeros(1, dtype=np.int64)
    explored = max_states = 0
    n_chunks = model.video.n_chunks
    for k in range(model.start_chunk, n_chunks):
        cand, actions = model.expand(layer, k)
        explored += actions.size
        near = None if k == model.start_chunk else lam_idx[cand.parent]
        bound, cand_lam = model.bound.future(k + 1, cand.clock_s, cand.at_bits, cand.buffer_s, cand.last_idx,
                                             cand.is_playing, near)
        optimistic = cand.value + bound
        alive = np.flatnonzero(optimistic >= lower_bound - _PRUNE_TOLERANCE)
        if alive.size == 0:  # everything was pruned: the lower bound is already optimal
            return _Pass((), -np.inf, -np.inf, 0.0, dropped, capped, explored, max_states)
        merged = alive[_merge(cand.take(alive), model.link.t0_s)]
        dropped = max(dropped, _max_dropped(optimistic, alive, merged))
        kept = merged
        if kept.size > beam_width:
            top = np.argpartition(-optimistic[kept], beam_width - 1)[:beam_width]
            kept = np.sort(kept[top])
            capped = max(capped, _max_dropped(optimistic, merged, kept))
        if kept.size == 0:  # everything was pruned: the lower bound is already optimal
            return _Pass((), -np.inf, -np.inf, 0.0, dropped, capped, explored, max_states)
        layer = cand.take(kept)
        lam_idx = cand_lam[kept]
        history.append((layer.parent, actions[kept]))
        if k == 0:
            first_values = layer.value
        max_states = max(max_states, kept.size)
    best = int(np.argmax(layer.value))
    qualities, root = _backtrack(history, best)
    total = float(layer.value[best])
    excl_first = total - float(first_values[root]) if model.start_chunk == 0 else total
    return _Pass(qualities, total, excl_first, float(layer.rebuffer_s[best]), dropped, capped, explored, max_states)


def _backtrack(history: list[tuple[IntArray, IntArray]], best: int) -> tuple[tuple[int, ...], int]:
    """The qualities leading to state ``best`` of the last layer, and its ancestor in the first layer."""
    qualities = []
    idx = root = best
    for parent, action in reversed(history):
        qualities.append(int(action[idx]))
        root = idx
        idx = int(parent[idx])
    return tuple(reversed(qualities)), root


def solve_offline_optimum(trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights | None = None,
                          start_idx: int = 1, *, max_beam_width: int = MAX_BEAM_WIDTH) -> OptimumResult:
    """The QoE-maximising quality sequence of one session, knowing the whole trace.

    Args:
        trace: the throughput trace of the session.
        video: the video (truncated to ``config.max_chunks`` as the core does).
        config: the simulator config; must be deterministic (no download-time noise).
        qoe: the QoE model (default linear).
        start_idx: first trace interval (1 = the trace's start), as in :class:`simulator.des.Session`.
        max_beam_width: the widest beam tried (states per chunk); lower it to trade optimality for time.

    Returns:
        The plan, its QoE as the core measures it, and an upper bound on the exact optimum.

    Raises:
        ConfigError: the config is noisy, its first-chunk level is not on the ladder, or
            ``max_beam_width`` is below ``PILOT_BEAM_WIDTH``.
        SimulationInvariantError: the trace is too slow for the core to finish a chunk at any level.

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 60.0]), np.array([2e6, 2e6]))
    >>> video = Video.cbr([0.5e6, 1e6, 1.5e6], chunk_duration_s=4.0, n_chunks=4)
    >>> result = solve_offline_optimum(trace, video, preset("pensieve"))
    >>> result.qualities, round(result.qoe_sum, 4), result.gap  # certified: nothing dropped could do better
    ((1, 2, 2, 2), -4.3966, 0.0)
    """
    return _solve(_Model(trace, video, config, qoe if qoe is not None else QoEWeights(), start_idx), max_beam_width)


def solve_from_state(trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights | None, state: SessionState, *,
                     max_beam_width: int = MAX_BEAM_WIDTH) -> OptimumResult:
    """The best qualities for the rest of a session that stands at ``state``, knowing the whole trace.

    The same search as :func:`solve_offline_optimum`, from a mid-session state: ``qualities`` are those of
    chunks ``state.next_chunk_idx`` onwards, and ``qoe_sum`` (= ``qoe_excl_first``) their QoE, the first
    of them measured against ``state.last_quality_idx``. A teacher for states a learner reaches
    (:mod:`abr.training.imitation`).

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 60.0]), np.array([2e6, 2e6]))
    >>> video = Video.cbr([0.5e6, 1e6, 1.5e6], chunk_duration_s=4.0, n_chunks=4)
    >>> rest = solve_from_state(trace, video, preset("pensieve"), None, SessionState(2, 10.0, 6.0, True, 0))
    >>> rest.qualities
    (2, 2)
    """
    return _solve(_Model(trace, video, config, qoe if qoe is not None else QoEWeights(), 1, state), max_beam_width)


def _solve(model: _Model, max_beam_width: int) -> OptimumResult:
    if max_beam_width < PILOT_BEAM_WIDTH:
        raise ConfigError(f"max_beam_width={max_beam_width} must be >= {PILOT_BEAM_WIDTH}")
    best = _search(model, beam_width=PILOT_BEAM_WIDTH, lower_bound=-np.inf)
    explored = best.explored
    width = min(FIRST_BEAM_WIDTH, max_beam_width)
    while True:
        main = _search(model, beam_width=width, lower_bound=best.qoe_sum)
        explored += main.explored
        if main.qoe_sum > best.qoe_sum:
            best = main
        is_beam_exact = main.capped_bound <= best.qoe_sum + _PRUNE_TOLERANCE
        if is_beam_exact or width >= max_beam_width:
            break  # the cap dropped nothing that could beat the result, or no wider beam is allowed
        width = min(width * BEAM_GROWTH, max_beam_width)
    logger.debug("offline optimum of %r: qoe %.6f, upper bound %.6f, beam %d (exact: %s), %d states explored",
                 model.trace_name, best.qoe_sum, max(best.qoe_sum, main.merged_bound, main.capped_bound), width,
                 is_beam_exact, explored)
    return OptimumResult(
        qualities=best.qualities,
        qoe_sum=best.qoe_sum,
        qoe_excl_first=best.qoe_excl_first,
        rebuffer_s=best.rebuffer_s,
        upper_bound=max(best.qoe_sum, main.merged_bound, main.capped_bound),
        is_beam_exact=is_beam_exact,
        beam_width=width,
        states_explored=explored,
        max_states=main.max_states,
        method=f"dp_delta{DELTA_S:g}_lagrangian_bound_beam{width}",
    )


@dataclass(slots=True)
class OfflineOptimal:
    """The offline optimum as a policy: plans the whole session in ``prepare``, then follows the plan.

    Args:
        max_beam_width: the widest beam :func:`solve_offline_optimum` may try (states per chunk).

    >>> from simulator.config import preset
    >>> from traces.types import Video
    >>> trace = Trace(np.array([0.0, 60.0]), np.array([2e6, 2e6]))
    >>> video = Video.cbr([0.5e6, 1e6, 1.5e6], chunk_duration_s=4.0, n_chunks=4)
    >>> policy = OfflineOptimal()
    >>> policy.prepare(trace, video, preset("pensieve"), QoEWeights(), 1)
    >>> policy.select(PlayerContext(video, (), buffer_s=0.0)), policy.plan.qualities
    (1, (1, 2, 2, 2))
    """

    max_beam_width: int = MAX_BEAM_WIDTH
    name: str = "optimal"
    plan: OptimumResult | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.max_beam_width < PILOT_BEAM_WIDTH:
            raise ConfigError(f"max_beam_width={self.max_beam_width} must be >= {PILOT_BEAM_WIDTH}")

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """Forget the previous session's plan (``prepare`` makes the next one)."""
        self.plan = None

    def prepare(self, trace: Trace, video: Video, config: SimConfig, qoe: QoEWeights, start_idx: int) -> None:
        """Solve the session that is about to be played."""
        self.plan = solve_offline_optimum(trace, video, config, qoe, start_idx, max_beam_width=self.max_beam_width)

    def select(self, context: PlayerContext) -> int:
        if self.plan is None:
            raise SimulationInvariantError(
                "OfflineOptimal.select() before prepare(): the offline optimum must see the session first "
                "(play it with simulator.rollout.run_session, which calls prepare)")
        idx = context.next_chunk_idx
        if idx >= len(self.plan.qualities):
            raise SimulationInvariantError(
                f"chunk {idx} is past the planned {len(self.plan.qualities)} chunks; was prepare() given "
                "this session's video and config?")
        return self.plan.qualities[idx]
