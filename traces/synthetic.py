"""Seeded synthetic throughput traces from a Markov-modulated model, for a no-download default.

The model follows the synthetic generators of the ABR literature (Pensieve, Genet): a hidden Markov chain
moves over a set of bandwidth states; at every step it leaves its state with ``switch_probability`` and
jumps to another state at most ``max_state_jump`` levels away (uniformly among those). In a state with
mean ``m`` the throughput of a step is ``m * (1 + noise_std_fraction * N(0, 1))``, clipped to
``[floor_bps, ceiling_bps]``. All randomness comes from the ``np.random.Generator`` passed in.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from traces.errors import ConfigError
from traces.types import Trace

logger = logging.getLogger(__name__)

# Default states span the Envivio ladder (300-4300 kbit/s) with head-room on both sides.
_DEFAULT_STATE_MEANS_BPS = (0.3e6, 0.5e6, 0.8e6, 1.2e6, 1.8e6, 2.7e6, 4.0e6, 5.5e6)


@dataclass(frozen=True, slots=True)
class MarkovTraceConfig:
    """Parameters of the Markov-modulated throughput model.

    Args:
        duration_s: trace length in seconds.
        step_s: sample spacing in seconds (one state step per sample).
        state_means_bps: mean throughput of each hidden state in bits per second, ascending.
        switch_probability: probability of leaving the current state at each step, in ``[0, 1]``.
        max_state_jump: largest jump, in state indices, when the state changes (>= 1).
        noise_std_fraction: standard deviation of the Gaussian noise as a fraction of the state mean.
        floor_bps: lowest throughput in bits per second (> 0, so a trace always delivers data).
        ceiling_bps: highest throughput in bits per second (> ``floor_bps``).

    Raises:
        ConfigError: a field is out of range (the message names the field, its value and the range).

    >>> MarkovTraceConfig(duration_s=60.0).step_s
    1.0
    """

    duration_s: float = 320.0
    step_s: float = 1.0
    state_means_bps: tuple[float, ...] = _DEFAULT_STATE_MEANS_BPS
    switch_probability: float = 0.05
    max_state_jump: int = 2
    noise_std_fraction: float = 0.15
    floor_bps: float = 0.2e6
    ceiling_bps: float = 6.0e6

    def __post_init__(self) -> None:
        object.__setattr__(self, "state_means_bps", tuple(float(m) for m in self.state_means_bps))
        _positive("duration_s", self.duration_s)
        _positive("step_s", self.step_s)
        if self.step_s > self.duration_s:
            raise ConfigError(f"step_s={self.step_s} must be <= duration_s={self.duration_s}",
                              field="step_s", value=self.step_s)
        if not self.state_means_bps:
            raise ConfigError("state_means_bps must list at least one state mean (bits/s)",
                              field="state_means_bps", value=self.state_means_bps)
        for mean in self.state_means_bps:
            _positive("state_means_bps", mean)
        if not 0.0 <= self.switch_probability <= 1.0:
            raise ConfigError(f"switch_probability={self.switch_probability} must be in [0, 1]",
                              field="switch_probability", value=self.switch_probability)
        if isinstance(self.max_state_jump, bool) or not isinstance(self.max_state_jump, int) \
                or self.max_state_jump < 1:
            raise ConfigError(f"max_state_jump={self.max_state_jump!r} must be an integer >= 1",
                              field="max_state_jump", value=self.max_state_jump)
        if not (math.isfinite(self.noise_std_fraction) and self.noise_std_fraction >= 0):
            raise ConfigError(f"noise_std_fraction={self.noise_std_fraction} must be a finite number >= 0",
                              field="noise_std_fraction", value=self.noise_std_fraction)
        _positive("floor_bps", self.floor_bps)
        _positive("ceiling_bps", self.ceiling_bps)
        if self.ceiling_bps <= self.floor_bps:
            raise ConfigError(f"ceiling_bps={self.ceiling_bps} must be > floor_bps={self.floor_bps}",
                              field="ceiling_bps", value=self.ceiling_bps)

    @property
    def n_steps(self) -> int:
        """Number of steps (intervals) in a trace: ``round(duration_s / step_s)``."""
        return max(1, round(self.duration_s / self.step_s))


def _positive(field: str, value: float) -> None:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if not (is_number and math.isfinite(value) and value > 0):
        raise ConfigError(f"{field}={value!r} must be a finite number > 0", field=field, value=value)


def generate_markov_trace(
    rng: np.random.Generator,
    config: MarkovTraceConfig | None = None,
    *,
    name: str = "markov",
    family: str = "synthetic",
) -> Trace:
    """Draw one trace from the Markov-modulated model.

    Args:
        rng: the only source of randomness.
        config: model parameters (default :class:`MarkovTraceConfig`).
        name: the trace name.
        family: the trace family.

    Returns:
        A trace with ``n_steps + 1`` samples at ``0, step_s, ...``; the first sample repeats the first
        step's throughput.

    >>> t = generate_markov_trace(np.random.default_rng(0))
    >>> t.duration_s, bool(t.throughput_bps.min() >= 0.2e6), bool(t.throughput_bps.max() <= 6e6)
    (320.0, True, True)
    """
    cfg = config or MarkovTraceConfig()
    n = cfg.n_steps
    n_states = len(cfg.state_means_bps)
    switch = rng.random(n) < cfg.switch_probability
    picks = rng.random(n)
    noise = rng.standard_normal(n)
    states = np.empty(n, dtype=np.int64)
    state = int(rng.integers(n_states))
    for i in range(n):
        if i > 0 and switch[i] and n_states > 1:
            low, high = max(0, state - cfg.max_state_jump), min(n_states - 1, state + cfg.max_state_jump)
            choices = [s for s in range(low, high + 1) if s != state]
            state = choices[int(picks[i] * len(choices))]
        states[i] = state
    means = np.asarray(cfg.state_means_bps)[states]
    rates = np.clip(means * (1.0 + cfg.noise_std_fraction * noise), cfg.floor_bps, cfg.ceiling_bps)
    times = np.arange(n + 1, dtype=np.float64) * cfg.step_s
    return Trace(times, np.concatenate(([rates[0]], rates)), name=name, family=family)


def check_seed_and_count(seed: object, n_traces: object) -> None:
    """Refuse a seed that is not a non-negative integer, or a trace count below 1 (``ConfigError``).

    >>> check_seed_and_count(-1, 2)
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: seed=-1 must be a non-negative integer
    """
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(f"seed={seed!r} must be a non-negative integer", field="seed", value=seed)
    if isinstance(n_traces, bool) or not isinstance(n_traces, int | np.integer) or n_traces < 1:
        raise ConfigError(f"n_traces={n_traces!r} must be an integer >= 1", field="n_traces", value=n_traces)


def generate_trace_set(seed: int, n_traces: int, config: MarkovTraceConfig | None = None) -> list[Trace]:
    """Draw ``n_traces`` independent traces; trace ``i`` uses child ``i`` of ``SeedSequence(seed)``.

    Adding traces never changes the earlier ones (each has its own child seed).

    Args:
        seed: a non-negative integer seed.
        n_traces: how many traces (>= 1).
        config: model parameters (default :class:`MarkovTraceConfig`).

    Returns:
        Traces named ``markov_<seed>_<i>``, family ``"synthetic"``.

    Raises:
        ConfigError: a negative or non-integer seed, or ``n_traces < 1``.

    >>> a, b = generate_trace_set(7, 2)
    >>> a.name, bool((a.throughput_bps != b.throughput_bps).any())
    ('markov_7_0000', True)
    """
    check_seed_and_count(seed, n_traces)
    cfg = config or MarkovTraceConfig()
    children = np.random.SeedSequence(int(seed)).spawn(int(n_traces))
    traces = [
        generate_markov_trace(np.random.default_rng(child), cfg, name=f"markov_{seed}_{i:04d}")
        for i, child in enumerate(children)
    ]
    logger.info("generated %d synthetic traces (seed %d, %.0f s each)", len(traces), seed, cfg.duration_s)
    return traces
