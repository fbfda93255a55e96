"""The dash.js throughput rule, its throughput estimate and its insufficient-buffer cap.

Source: dash.js (Dash-Industry-Forum), version 5 defaults (``Settings.js``, ``ThroughputController.js``,
``ThroughputModel.js``, ``rules/abr/ThroughputRule.js``, ``rules/abr/InsufficientBufferRule.js``). Only facts
and formulas are taken; the code is this project's.

**Estimate.** dash.js 5 averages throughput with an EWMA by default (``averageCalculationMode: EWMA``):

* each downloaded chunk is a sample ``x`` (bit/s) with weight ``w = 0.0015 * download time in ms``, i.e.
  ``1.5 * download_time_s`` (``weightDownloadTimeMultiplicationFactor``; dash.js 4 and Sabre use 1 per second);
* two averages with half-lives of 3 ("fast") and 8 ("slow") weight units
  (``throughputFastHalfLifeSeconds``, ``throughputSlowHalfLifeSeconds``):
  ``alpha = 0.5 ** (w / half_life)``, ``estimate = (1 - alpha) * x + alpha * estimate`` from 0;
* both are corrected for their zero start by dividing by ``1 - 0.5 ** (total_weight / half_life)``, and the
  estimate is the smaller of the two (the conservative one).

``method="sliding"`` gives dash.js's arithmetic-mean mode instead: the mean of the last 4 samples (``vod: 4``),
with one more sample for every consecutive ratio among them that is >= 1.3 or <= 0.7 (``increaseScale``,
``decreaseScale``), out of at most 20 kept (``maxMeasurementsToKeep``).

**Rule.** The choice is the highest level whose bitrate is <= ``estimate * 0.9`` (``bandwidthSafetyFactor``),
else the lowest (dash.js ``getOptimalRepresentationForBitrate``).

Differences from dash.js, all forced by the simulator's records: a sample is the chunk's measured
``throughput_bps`` (size / download time *including* the RTT; dash.js leaves the time to first byte out), and
its weight uses that download time; before the first measurement the rule picks the lowest level (dash.js
starts from its configured initial bitrate); dash.js also skips the rule while its buffer state is not
"loaded" or a download is being abandoned, states with no counterpart here.

**Insufficient-buffer rule** (:func:`insufficient_buffer_cap`, used by BOLA-E and DYNAMIC): once 2 chunks have
been downloaded (``segmentIgnoreCount``), cap the level at the highest bitrate <= ``estimate * 0.7 *
buffer_s / chunk_duration_s`` (``throughputSafetyFactor``, the unsafe estimate), and at the lowest level when
the buffer is empty. dash.js keeps the lowest of its rules' choices, so the cap is applied as a minimum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from agents._checks import check_fraction, check_positive
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.records import ChunkOutcome

BANDWIDTH_SAFETY_FACTOR = 0.9  # dash.js abr.throughput.bandwidthSafetyFactor
EWMA_FAST_HALF_LIFE = 3.0  # dash.js ewma.throughputFastHalfLifeSeconds (weight units)
EWMA_SLOW_HALF_LIFE = 8.0  # dash.js ewma.throughputSlowHalfLifeSeconds (weight units)
EWMA_WEIGHT_PER_DOWNLOAD_SECOND = 1.5  # dash.js 5 weightDownloadTimeMultiplicationFactor = 0.0015 per ms
SLIDING_SAMPLE_COUNT = 4  # dash.js sampleSettings.vod
SLIDING_INCREASE_SCALE = 1.3  # dash.js sampleSettings.increaseScale
SLIDING_DECREASE_SCALE = 0.7  # dash.js sampleSettings.decreaseScale
SLIDING_MAX_SAMPLES = 20  # dash.js sampleSettings.maxMeasurementsToKeep
IBR_SAFETY_FACTOR = 0.7  # dash.js insufficientBufferRule.parameters.throughputSafetyFactor
IBR_IGNORE_COUNT = 2  # dash.js insufficientBufferRule.parameters.segmentIgnoreCount
ESTIMATE_METHODS = ("ewma", "sliding")


def quality_for_rate(bitrates_bps: npt.NDArray[np.float64], rate_bps: float) -> int:
    """The highest level whose bitrate is <= ``rate_bps`` (bit/s), else level 0.

    >>> quality_for_rate(np.array([1e6, 2e6, 3e6]), 2.5e6)
    1
    """
    below = np.flatnonzero(bitrates_bps <= rate_bps)
    return int(below[-1]) if below.size else 0


def sliding_window_mean_bps(throughputs_bps: Sequence[float], *, sample_count: int = SLIDING_SAMPLE_COUNT,
                            increase_scale: float = SLIDING_INCREASE_SCALE,
                            decrease_scale: float = SLIDING_DECREASE_SCALE,
                            max_samples: int = SLIDING_MAX_SAMPLES) -> float | None:
    """dash.js's arithmetic mean of recent throughputs (bit/s, oldest first), widened when they vary.

    Returns ``None`` when there is no sample.

    >>> sliding_window_mean_bps([1e6, 1e6, 4e6, 4e6, 4e6])  # one jump (ratio 4) widens the window to 5
    2800000.0
    """
    samples = list(throughputs_bps)[-max_samples:]
    if not samples:
        return None
    n = sample_count
    if n >= len(samples):
        n = len(samples)
    else:
        i = 1
        while i < n:
            ratio = samples[-i] / samples[-i - 1]
            if ratio >= increase_scale or ratio <= decrease_scale:
                n += 1
                if n == len(samples):
                    break
            i += 1
    window = samples[-n:]
    return sum(window) / len(window)


@dataclass(slots=True)
class ThroughputEstimator:
    """dash.js's throughput estimate over a session's downloads (EWMA by default; see the module docstring).

    The EWMA state is updated incrementally from the outcomes not seen yet; a shorter history than last time
    (a new session) starts it again.

    Args:
        method: ``"ewma"`` (dash.js 5 default) or ``"sliding"`` (dash.js's arithmetic-mean mode).
        fast_half_life: fast EWMA half-life, in weight units (3).
        slow_half_life: slow EWMA half-life, in weight units (8).
        weight_per_download_second: EWMA weight of a sample per second of its download time (1.5).
        sample_count: samples in the sliding mean before widening (4).

    >>> from simulator.records import ChunkOutcome
    >>> one = ChunkOutcome(0, 0, 1e6, 4e6, 0.0, 2.0, 2.0, 2e6, 0.0, 0.0, 4.0, 0.0)
    >>> ThroughputEstimator().estimate_bps((one,))  # a single sample is the estimate
    2000000.0
    """

    method: str = "ewma"
    fast_half_life: float = EWMA_FAST_HALF_LIFE
    slow_half_life: float = EWMA_SLOW_HALF_LIFE
    weight_per_download_second: float = EWMA_WEIGHT_PER_DOWNLOAD_SECOND
    sample_count: int = SLIDING_SAMPLE_COUNT
    _fast_bps: float = field(default=0.0, repr=False)
    _slow_bps: float = field(default=0.0, repr=False)
    _total_weight: float = field(default=0.0, repr=False)
    _n_seen: int = field(default=0, repr=False)

    def __post_init__(self) -> None:
        if self.method not in ESTIMATE_METHODS:
            raise ConfigError(f"method={self.method!r} is not an estimate method; use one of "
                              f"{', '.join(repr(m) for m in ESTIMATE_METHODS)}")
        for name in ("fast_half_life", "slow_half_life", "weight_per_download_second"):
            check_positive(name, getattr(self, name))
        if self.sample_count < 1:
            raise ConfigError(f"sample_count={self.sample_count} must be >= 1")

    def reset(self) -> None:
        """Forget the EWMA state (start of a session)."""
        self._fast_bps = self._slow_bps = self._total_weight = 0.0
        self._n_seen = 0

    def estimate_bps(self, outcomes: Sequence[ChunkOutcome]) -> float | None:
        """The estimate after ``outcomes`` (oldest first), in bit/s; ``None`` before any download."""
        if self.method == "sliding":
            return sliding_window_mean_bps([o.throughput_bps for o in outcomes], sample_count=self.sample_count)
        if len(outcomes) < self._n_seen:
            self.reset()
        for o in outcomes[self._n_seen:]:
            weight = self.weight_per_download_second * o.download_time_s
            fast_alpha = 0.5 ** (weight / self.fast_half_life)
            slow_alpha = 0.5 ** (weight / self.slow_half_life)
            self._fast_bps = (1.0 - fast_alpha) * o.throughput_bps + fast_alpha * self._fast_bps
            self._slow_bps = (1.0 - slow_alpha) * o.throughput_bps + slow_alpha * self._slow_bps
            self._total_weight += weight
        self._n_seen = len(outcomes)
        if self._total_weight <= 0:
            return None
        fast = self._fast_bps / (1.0 - 0.5 ** (self._total_weight / self.fast_half_life))
        slow = self._slow_bps / (1.0 - 0.5 ** (self._total_weight / self.slow_half_life))
        return min(fast, slow)


def insufficient_buffer_cap(context: PlayerContext, estimate_bps: float | None, *,
                            safety_factor: float = IBR_SAFETY_FACTOR,
                            ignore_count: int = IBR_IGNORE_COUNT) -> int | None:
    """dash.js's InsufficientBufferRule: the highest level it allows now, or ``None`` for no cap.

    Args:
        context: the player's view.
        estimate_bps: the (unsafe) throughput estimate, in bit/s.
        safety_factor: the rule's throughput safety factor (0.7).
        ignore_count: the rule is silent until this many chunks were downloaded (2).

    >>> from traces.types import Video
    >>> from simulator.records import ChunkOutcome
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> past = (ChunkOutcome(0, 0, 1e6, 4e6, 0.0, 1.0, 1.0, 4e6, 0.0, 0.0, 4.0, 0.0),) * 2
    >>> insufficient_buffer_cap(PlayerContext(video, past, buffer_s=4.0), 4e6)  # 4e6 * 0.7 * 4 / 4 = 2.8e6
    1
    """
    if len(context.outcomes) < ignore_count:
        return None
    if context.buffer_s <= 0:
        return 0
    if estimate_bps is None:
        return None
    rate_bps = estimate_bps * safety_factor * context.buffer_s / context.video.chunk_duration_s
    if rate_bps <= 0:
        return None
    return quality_for_rate(context.video.bitrates_bps, rate_bps)


@dataclass(slots=True)
class ThroughputRule:
    """dash.js's ThroughputRule: the highest bitrate <= the throughput estimate x the safety factor.

    Args:
        safety_factor: ``bandwidthSafetyFactor`` (0.9), in (0, 1].
        method: the estimate, ``"ewma"`` (dash.js 5 default) or ``"sliding"``.

    >>> from traces.types import Video
    >>> from simulator.records import ChunkOutcome
    >>> video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5)
    >>> past = (ChunkOutcome(0, 0, 1e6, 4e6, 0.0, 1.0, 1.0, 3e6, 0.0, 0.0, 4.0, 0.0),)
    >>> ThroughputRule().select(PlayerContext(video, past, buffer_s=4.0))  # 3e6 * 0.9 = 2.7e6
    1
    """

    safety_factor: float = BANDWIDTH_SAFETY_FACTOR
    method: str = "ewma"
    name: str = "throughput"
    _estimator: ThroughputEstimator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        check_fraction("safety_factor", self.safety_factor)
        self._estimator = ThroughputEstimator(method=self.method)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self._estimator.reset()

    def estimate_bps(self, context: PlayerContext) -> float | None:
        """The (unsafe) throughput estimate for this context, in bit/s."""
        return self._estimator.estimate_bps(context.outcomes)

    def select(self, context: PlayerContext) -> int:
        estimate = self.estimate_bps(context)
        if estimate is None:
            return 0
        return quality_for_rate(context.video.bitrates_bps, estimate * self.safety_factor)
