"""BOLA (buffer-occupancy Lyapunov adaptation): BOLA-BASIC and BOLA-E, as in dash.js.

Sources: K. Spiteri, R. Urgaonkar, R. K. Sitaraman, "BOLA: Near-Optimal Bitrate Adaptation for Online Videos",
INFOCOM 2016 / IEEE/ACM ToN 2020 (BOLA-BASIC); K. Spiteri, R. Sitaraman, D. Sparacio, "From Theory to Practice:
Improving Bitrate Adaptation in the DASH Reference Player", MMSys 2018 (BOLA-E); dash.js 5
``rules/abr/BolaRule.js`` for the constants and the state machine. Facts and formulas only.

**Decision (both variants).** With utilities ``v_m = ln(r_m / r_0)`` (0 at the lowest level; ``r`` the ladder
bitrates) the level is ``argmax_m (Vp * (v_m + gp) - B) / r_m`` for an (effective) buffer level ``B`` in
seconds, ties to the higher level as in dash.js. With ``Q = B / p`` chunks, ``V = Vp / p`` and chunk sizes
``S_m = r_m * p`` this is the paper's ``(V * (v_m + gamma*p) - Q) / S_m``. ``use_chunk_sizes=True`` divides by the
next chunk's real sizes instead of ``r_m * p`` (the paper's ``S_m`` for VBR content).

**Parameters** (:meth:`BolaParameters.from_buffer_target`, the default). dash.js derives them from a buffer
target ``T = max(buffer_target_s, 10 + 2 * n_levels)`` (``MINIMUM_BUFFER_S = 10``,
``MINIMUM_BUFFER_PER_BITRATE_LEVEL_S = 2``, ``bufferTimeDefault`` = 18 s in dash.js 5, 12 s
``stableBufferTime`` in dash.js 3/4) so that the lowest level is preferred up to 10 s and the top level from
about ``T``: ``gp = 1 + v_M / (T / 10 - 1)`` and ``Vp = 10 / (gp - 1)``. For the 6-level Envivio ladder
(300 ... 4300 kbit/s) ``T = 22``, ``gp = 3.2188``, ``Vp = 4.5069`` s, and the level rises at 11.75, 15.11, 17.15,
19.10 and 21.01 s of buffer. :meth:`BolaParameters.from_gamma_p` gives the paper's (and Sabre's) form instead:
``Vp = (buffer_size_s - p) / (v_M + gamma_p)`` with ``gamma_p = 5`` by default.

**BOLA-BASIC** (:class:`Bola`, ``"bola"``) applies the decision to the real buffer level, nothing else.

**BOLA-E** (:class:`BolaE`, ``"bola-e"``) follows dash.js's BolaRule:

* *Startup* (after ``reset``): the level is the throughput rule's (dash.js EWMA estimate x 0.9, see
  :mod:`agents.throughput`), and the placeholder buffer is set to ``max(0, min_buffer(level) - B)``, the
  smallest effective buffer at which BOLA would choose that level. Once the buffer holds at least one chunk
  the rule turns *steady*.
* *Per downloaded chunk*: the placeholder decays by 0.99 (``PLACEHOLDER_BUFFER_DECAY``) and is capped at
  ``max(0, max_buffer(q) - B_request)`` with ``q`` the level downloaded, ``max_buffer(q) = Vp * (v_q + gp)``
  and ``B_request`` the buffer when it was requested (buffer after the download + download time). A rebuffer
  while steady empties it (dash.js ``BUFFER_EMPTY``).
* *Steady*: the player's idle time since the last download is added to the placeholder (dash.js adds any
  delay that was not spent downloading), BOLA decides on ``B + placeholder``, then BOLA-O: if that is above
  the last level and above the throughput rule's level, it is lowered to ``max(throughput level, last
  level)``. The placeholder then gives up ``max(0, B + placeholder - max_buffer(level))``.
* The insufficient-buffer rule (dash.js ``InsufficientBufferRule``, on by default) caps the result.

Not modelled: dash.js asks the scheduler to pause when even the placeholder cannot absorb the excess
(``setTimeToLoadDelay``); the simulator's player only pauses when its buffer is full, so BOLA-E keeps
downloading there. Seeks, abandonment and fast switching do not occur in the simulator. Before the first
measurement BOLA-E picks the lowest level (dash.js leaves it to the initial bitrate). A one-level ladder
always gets level 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from agents._checks import check_fraction, check_positive
from agents.throughput import BANDWIDTH_SAFETY_FACTOR, ThroughputEstimator, insufficient_buffer_cap, quality_for_rate
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.records import ChunkOutcome
from traces.types import Video

MINIMUM_BUFFER_S = 10.0  # dash.js BolaRule MINIMUM_BUFFER_S
MINIMUM_BUFFER_PER_LEVEL_S = 2.0  # dash.js BolaRule MINIMUM_BUFFER_PER_BITRATE_LEVEL_S
BUFFER_TIME_DEFAULT_S = 18.0  # dash.js 5 streaming.buffer.bufferTimeDefault (12 s stableBufferTime in 3/4)
PLACEHOLDER_DECAY = 0.99  # dash.js BolaRule PLACEHOLDER_BUFFER_DECAY, per downloaded chunk
PAPER_GAMMA_P = 5.0  # Sabre's default gamma*p for BOLA-BASIC


@dataclass(frozen=True, slots=True)
class BolaParameters:
    """BOLA's utilities and control parameters for one ladder, in seconds.

    The score of level ``m`` at buffer ``B`` seconds is ``(vp_s * (utilities[m] + gp) - B) / rate_m``.

    Attributes:
        bitrates_bps: the ladder, in bit/s.
        utilities: ``ln(r_m / r_0)`` per level.
        vp_s: ``V * p``, in seconds.
        gp: ``gamma * p`` in the utility scale.

    >>> from traces.videos import ENVIVIO_LADDER_BPS
    >>> p = BolaParameters.from_buffer_target(ENVIVIO_LADDER_BPS)
    >>> round(p.vp_s, 4), round(p.gp, 4), p.quality(11.7), p.quality(11.8), p.quality(21.1)
    (4.5069, 3.2188, 0, 1, 5)
    """

    bitrates_bps: tuple[float, ...]
    utilities: tuple[float, ...]
    vp_s: float
    gp: float

    @staticmethod
    def _utilities(bitrates_bps: Sequence[float]) -> tuple[float, ...]:
        rates = [float(r) for r in bitrates_bps]
        if len(rates) < 2 or any(b <= a for a, b in zip(rates, rates[1:])) or rates[0] <= 0:
            raise ConfigError(f"bitrates_bps={rates} must hold at least 2 increasing positive bitrates for BOLA")
        return tuple(math.log(r / rates[0]) for r in rates)

    @classmethod
    def from_buffer_target(cls, bitrates_bps: Sequence[float],
                           buffer_target_s: float = BUFFER_TIME_DEFAULT_S) -> BolaParameters:
        """dash.js's parameters: the lowest level up to 10 s, the top level from ``max(target, 10 + 2n)`` s."""
        check_positive("buffer_target_s", buffer_target_s)
        utilities = cls._utilities(bitrates_bps)
        buffer_time_s = max(buffer_target_s, MINIMUM_BUFFER_S + MINIMUM_BUFFER_PER_LEVEL_S * len(utilities))
        gp_above_one = utilities[-1] / (buffer_time_s / MINIMUM_BUFFER_S - 1.0)
        return cls(tuple(float(r) for r in bitrates_bps), utilities, MINIMUM_BUFFER_S / gp_above_one,
                   1.0 + gp_above_one)

    @classmethod
    def from_gamma_p(cls, bitrates_bps: Sequence[float], buffer_size_s: float, chunk_duration_s: float,
                     gamma_p: float = PAPER_GAMMA_P) -> BolaParameters:
        """The paper's BOLA-BASIC parameters: ``V = (Q_max - 1) / (v_M + gamma_p)`` for a buffer of ``Q_max``."""
        check_positive("gamma_p", gamma_p)
        if not buffer_size_s > chunk_duration_s:
            raise ConfigError(f"buffer_size_s={buffer_size_s} must be > the chunk duration ({chunk_duration_s} s)")
        utilities = cls._utilities(bitrates_bps)
        vp_s = (buffer_size_s - chunk_duration_s) / (utilities[-1] + gamma_p)
        return cls(tuple(float(r) for r in bitrates_bps), utilities, vp_s, gamma_p)

    def quality(self, buffer_s: float, rates_bps: npt.NDArray[np.float64] | None = None) -> int:
        """The level BOLA chooses at ``buffer_s`` seconds (ties to the higher level).

        ``rates_bps`` replaces the ladder in the denominator (e.g. next chunk sizes / chunk duration).
        """
        rates = np.asarray(self.bitrates_bps if rates_bps is None else rates_bps, dtype=np.float64)
        scores = (self.vp_s * (np.asarray(self.utilities) + self.gp) - buffer_s) / rates
        return int(scores.size - 1 - int(np.argmax(scores[::-1])))

    def max_buffer_s(self, quality_idx: int) -> float:
        """The largest buffer (s) at which downloading ``quality_idx`` beats waiting: ``Vp * (v_q + gp)``."""
        return self.vp_s * (self.utilities[quality_idx] + self.gp)

    def min_buffer_s(self, quality_idx: int) -> float:
        """The smallest buffer (s) at which BOLA prefers ``quality_idx`` to every lower level."""
        r_q, v_q = self.bitrates_bps[quality_idx], self.utilities[quality_idx]
        level_s = 0.0
        for i in range(quality_idx):
            r_i, v_i = self.bitrates_bps[i], self.utilities[i]
            level_s = max(level_s, self.vp_s * (self.gp + (r_q * v_i - r_i * v_q) / (r_q - r_i)))
        return level_s


def _denominators(context: PlayerContext, use_chunk_sizes: bool) -> npt.NDArray[np.float64] | None:
    if not use_chunk_sizes or context.chunks_remaining <= 0:
        return None
    return context.next_chunk_sizes_bits() / context.video.chunk_duration_s


@dataclass(slots=True)
class Bola:
    """BOLA-BASIC: the BOLA decision on the real buffer level.

    Args:
        buffer_target_s: dash.js's buffer target ``bufferTimeDefault`` (18 s); with ``gamma_p`` set, the
            paper's buffer size ``Q_max * p`` instead.
        gamma_p: ``None`` for dash.js's parameters; a number for the paper's (5 in Sabre).
        use_chunk_sizes: divide by the next chunk's real sizes rather than the ladder bitrates.

    >>> from traces.types import Video
    >>> from traces.videos import ENVIVIO_LADDER_BPS
    >>> video = Video.cbr(list(ENVIVIO_LADDER_BPS), chunk_duration_s=4.0, n_chunks=5)
    >>> [Bola().select(PlayerContext(video, (), buffer_s=b)) for b in (5.0, 16.0, 25.0)]
    [0, 2, 5]
    """

    buffer_target_s: float = BUFFER_TIME_DEFAULT_S
    gamma_p: float | None = None
    use_chunk_sizes: bool = False
    name: str = "bola"
    _params: dict[tuple[tuple[float, ...], float], BolaParameters] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        check_positive("buffer_target_s", self.buffer_target_s)
        if self.gamma_p is not None:
            check_positive("gamma_p", self.gamma_p)

    def parameters(self, video: Video) -> BolaParameters:
        """The parameters for ``video``'s ladder (cached per ladder)."""
        key = (tuple(video.bitrates_bps.tolist()), video.chunk_duration_s)
        if key not in self._params:
            if self.gamma_p is None:
                params = BolaParameters.from_buffer_target(key[0], self.buffer_target_s)
            else:
                params = BolaParameters.from_gamma_p(key[0], self.buffer_target_s, key[1], self.gamma_p)
            self._params[key] = params
        return self._params[key]

    def reset(self, rng: np.random.Generator | None = None) -> None:
        """BOLA-BASIC keeps no state between chunks."""

    def select(self, context: PlayerContext) -> int:
        if context.video.n_levels == 1:
            return 0
        params = self.parameters(context.video)
        return params.quality(context.buffer_s, _denominators(context, self.use_chunk_sizes))


@dataclass(slots=True)
class BolaE:
    """BOLA-E, as dash.js's BolaRule: placeholder buffer, throughput startup, BOLA-O, insufficient-buffer cap.

    Args:
        buffer_target_s: dash.js's ``bufferTimeDefault`` (18 s), which sets ``Vp`` and ``gp``.
        safety_factor: ``bandwidthSafetyFactor`` for the throughput level (0.9).
        method: the throughput estimate, ``"ewma"`` (dash.js 5 default) or ``"sliding"``.
        use_insufficient_buffer_rule: cap by dash.js's InsufficientBufferRule (as the dash.js player does).
        use_chunk_sizes: divide by the next chunk's real sizes rather than the ladder bitrates.

    >>> from simulator.records import ChunkOutcome
    >>> from traces.types import Video
    >>> from traces.videos import ENVIVIO_LADDER_BPS
    >>> video = Video.cbr(list(ENVIVIO_LADDER_BPS), chunk_duration_s=4.0, n_chunks=5)
    >>> first = ChunkOutcome(0, 1, 750e3, 3e6, 0.0, 1.5, 1.5, 2e6, 1.5, 0.0, 4.0, 0.0)
    >>> policy = BolaE()
    >>> policy.select(PlayerContext(video, (first,), buffer_s=4.0))  # startup: 2e6 * 0.9 -> 1200 kbit/s
    2
    >>> round(policy.placeholder_s, 3)  # min_buffer(2) - 4 s
    11.106
    """

    buffer_target_s: float = BUFFER_TIME_DEFAULT_S
    safety_factor: float = BANDWIDTH_SAFETY_FACTOR
    method: str = "ewma"
    use_insufficient_buffer_rule: bool = True
    use_chunk_sizes: bool = False
    name: str = "bola-e"
    _bola: Bola = field(init=False, repr=False)
    _estimator: ThroughputEstimator = field(init=False, repr=False)
    _is_steady: bool = field(default=False, repr=False)
    _placeholder_s: float = field(default=0.0, repr=False)
    _n_seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        check_fraction("safety_factor", self.safety_factor)
        self._bola = Bola(buffer_target_s=self.buffer_target_s, use_chunk_sizes=self.use_chunk_sizes)
        self._estimator = ThroughputEstimator(method=self.method)

    @property
    def placeholder_s(self) -> float:
        """The placeholder buffer, in seconds."""
        return self._placeholder_s

    @property
    def is_steady(self) -> bool:
        """Whether the startup phase is over."""
        return self._is_steady

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._is_steady = False
        self._placeholder_s = 0.0
        self._n_seen = 0
        self._estimator.reset()

    def select(self, context: PlayerContext) -> int:
        if context.video.n_levels == 1:
            return 0
        params = self._bola.parameters(context.video)
        outcomes = context.outcomes
        if len(outcomes) < self._n_seen:
            self.reset()
        is_new_download = len(outcomes) > self._n_seen
        self._absorb(outcomes[self._n_seen:], params)
        self._n_seen = len(outcomes)
        estimate_bps = self._estimator.estimate_bps(outcomes)
        if estimate_bps is None:
            return 0
        throughput_idx = quality_for_rate(context.video.bitrates_bps, estimate_bps * self.safety_factor)
        if self._is_steady:
            quality_idx = self._steady(context, params, throughput_idx, is_new_download)
        else:
            quality_idx = self._startup(context, params, throughput_idx)
        if self.use_insufficient_buffer_rule:
            cap = insufficient_buffer_cap(context, estimate_bps)
            if cap is not None:
                quality_idx = min(quality_idx, cap)
        return quality_idx

    def _absorb(self, new_outcomes: Sequence[ChunkOutcome], params: BolaParameters) -> None:
        """Per downloaded chunk: empty on rebuffer, decay, and cap the placeholder by that chunk's level."""
        for o in new_outcomes:
            if self._is_steady and o.rebuffer_s > 0:
                self._placeholder_s = 0.0
            self._placeholder_s *= PLACEHOLDER_DECAY
            buffer_at_request_s = o.buffer_s + o.idle_s + o.download_time_s
            cap_s = max(0.0, params.max_buffer_s(o.quality_idx) - buffer_at_request_s)
            self._placeholder_s = min(self._placeholder_s, cap_s)

    def _startup(self, context: PlayerContext, params: BolaParameters, throughput_idx: int) -> int:
        self._placeholder_s = max(0.0, params.min_buffer_s(throughput_idx) - context.buffer_s)
        if context.buffer_s >= context.video.chunk_duration_s:
            self._is_steady = True
        return throughput_idx

    def _steady(self, context: PlayerContext, params: BolaParameters, throughput_idx: int,
                is_new_download: bool) -> int:
        last = context.outcomes[-1]
        if is_new_download:
            self._placeholder_s += last.idle_s
        effective_s = context.buffer_s + self._placeholder_s
        quality_idx = params.quality(effective_s, _denominators(context, self.use_chunk_sizes))
        if quality_idx > last.quality_idx and quality_idx > throughput_idx:  # BOLA-O
            quality_idx = max(throughput_idx, last.quality_idx)
        excess_s = max(0.0, effective_s - params.max_buffer_s(quality_idx))
        self._placeholder_s = self._placeholder_s - excess_s if excess_s <= self._placeholder_s else 0.0
        return quality_idx
