"""A guard around a policy: where the network turns unpredictable, a heuristic decides instead.

A learned policy is trusted where its inputs look like what it was trained on. The guard watches one causal
signal, RobustMPC's throughput prediction error (Yin et al., SIGCOMM 2015): after each download it compares
the harmonic mean of the previous ``window`` chunk throughputs with the throughput just measured,

    error_k = |H_(k-1) - C_k| / C_k,

and while the largest of the last ``window`` errors exceeds ``max_error`` it plays the fallback's choice (BOLA-E
by default, a buffer-based rule whose caution does not depend on a throughput forecast) instead of the
primary's. A relative error above 1 means a chunk came in at less than half the predicted throughput (or
far above it): bursts and outages of the kind the primary policy never saw in training. Both policies see
every decision, so the fallback's own state (BOLA-E's placeholder buffer) follows the session even while the
primary decides.

``make_agent("guarded:ppo")`` wraps the shipped policy, ``guarded:ppo:PATH`` a model file, ``guarded:NAME`` any
agent; the threshold's default :data:`DEFAULT_MAX_ERROR` was chosen on training families only
(``docs/experiments/guard.md``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from agents.base import Policy
from agents.bola import BolaE
from agents.rate_based import harmonic_mean
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights

#: The threshold on the largest recent relative prediction error above which the fallback decides.
DEFAULT_MAX_ERROR = 1.0
#: Chunks over which the harmonic mean is taken and the errors are remembered (as RobustMPC's).
DEFAULT_WINDOW = 5


@dataclass(slots=True)
class GuardedPolicy:
    """``primary`` decides unless the recent throughput prediction error exceeds ``max_error``; then ``fallback``.

    Args:
        primary: the guarded policy (a learned one, usually).
        fallback: the policy that decides while the guard is up (default BOLA-E).
        max_error: the guard threshold on ``max(error_k)`` over the last ``window`` chunks (> 0).
        window: chunks in the harmonic mean and in the error memory (>= 1).
        name: the agent's name (default ``guarded:<primary's name>``).

    >>> from agents.simple import FixedQuality
    >>> from simulator.records import ChunkOutcome
    >>> from traces.types import Video
    >>> video = Video.cbr([300e3, 750e3, 1200e3], chunk_duration_s=4.0, n_chunks=5)
    >>> def chunk(i, bps): return ChunkOutcome(i, 2, 1200e3, 4.8e6, 0.0, 1.0, 1.0, bps, 0.0, 0.0, 8.0, 0.0)
    >>> guard = GuardedPolicy(FixedQuality(2), FixedQuality(0))
    >>> guard.reset()
    >>> guard.select(PlayerContext(video, (chunk(0, 4e6),), 8.0))  # no prediction yet: error 0
    2
    >>> guard.select(PlayerContext(video, (chunk(0, 4e6), chunk(1, 1.5e6)), 8.0))  # |4 - 1.5| / 1.5 = 1.67
    0
    >>> round(guard.last_error, 3), guard.guarded_decisions
    (1.667, 1)
    """

    primary: Policy
    fallback: Policy = field(default_factory=BolaE)
    max_error: float = DEFAULT_MAX_ERROR
    window: int = DEFAULT_WINDOW
    name: str = ""
    guarded_decisions: int = field(default=0, init=False)
    decisions: int = field(default=0, init=False)
    _errors: list[float] = field(default_factory=list, init=False, repr=False)
    _last_mean_bps: float | None = field(default=None, init=False, repr=False)
    _n_seen: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if not (np.isfinite(self.max_error) and self.max_error > 0):
            raise ConfigError(f"guard max_error={self.max_error!r} must be a finite number > 0 (default "
                              f"{DEFAULT_MAX_ERROR})", field="max_error", value=self.max_error)
        if int(self.window) != self.window or self.window < 1:
            raise ConfigError(f"guard window={self.window!r} must be an integer >= 1 (default {DEFAULT_WINDOW})",
                              field="window", value=self.window)
        if not self.name:
            self.name = f"guarded:{self.primary.name}"

    @property
    def n_levels(self) -> int | None:
        """The ladder size the primary is fixed to (a trained policy's), ``None`` if it plays any ladder."""
        levels = getattr(self.primary, "n_levels", None)
        return None if levels is None else int(levels)

    @property
    def last_error(self) -> float:
        """The largest relative prediction error in the window (0 before the second chunk)."""
        return max(self._errors[-self.window:], default=0.0)

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self.primary.reset(rng)
        self.fallback.reset(rng)
        self._errors = []
        self._last_mean_bps = None
        self._n_seen = 0
        self.guarded_decisions = 0
        self.decisions = 0

    def use_qoe(self, qoe: QoEWeights) -> None:
        """Hand the evaluation's QoE model to whichever of the two policies plans with one."""
        for policy in (self.primary, self.fallback):
            hook = getattr(policy, "use_qoe", None)
            if callable(hook):
                hook(qoe)

    def select(self, context: PlayerContext) -> int:
        self._absorb(context)
        primary_idx = self.primary.select(context)
        fallback_idx = self.fallback.select(context)
        self.decisions += 1
        if self.last_error > self.max_error:
            self.guarded_decisions += 1
            return int(fallback_idx)
        return int(primary_idx)

    def _absorb(self, context: PlayerContext) -> None:
        """Fold every chunk downloaded since the last call into the error memory."""
        outcomes = context.outcomes
        if len(outcomes) < self._n_seen:  # a new session without reset: start over
            self._errors, self._last_mean_bps, self._n_seen = [], None, 0
        for k in range(self._n_seen, len(outcomes)):
            measured_bps = outcomes[k].throughput_bps
            if self._last_mean_bps is not None and measured_bps > 0:
                self._errors.append(abs(self._last_mean_bps - measured_bps) / measured_bps)
            elif self._last_mean_bps is not None:
                self._errors.append(float("inf"))
            else:
                self._errors.append(0.0)
            recent = [o.throughput_bps for o in outcomes[max(0, k + 1 - self.window):k + 1]]
            self._last_mean_bps = harmonic_mean(recent) if all(r > 0 for r in recent) else 0.0
        self._n_seen = len(outcomes)
