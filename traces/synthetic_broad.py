"""Broad synthetic traces for training policies that must hold up on networks they never saw.

Each trace draws its own regime, so one set spans what real networks do: slow and fast, steady and bursty,
with and without outages. Per trace (all draws from the ``np.random.Generator`` passed in):

* **level**: a median throughput, log-uniform in ``[slow_low_bps, slow_high_bps]`` with probability
  ``1 - fast_share`` (the range of a bitrate ladder), else in ``[slow_high_bps, fast_high_bps]``;
* **variability**: a Markov chain over ``n_states`` levels spread log-normally around the median (spread
  ``sigma`` uniform in ``[0.05, sigma_high]``), switching with a per-step probability uniform in
  ``[0.02, 0.3]``, with multiplicative noise whose standard deviation is uniform in ``[0.02, 0.5]``;
* **outages**: with probability ``outage_share`` the trace has outages: each step starts one with a
  probability uniform in ``[0.002, 0.03]``; an outage lasts a geometric number of steps (mean uniform in
  ``[2, 12]`` s) at a throughput between 0 and 5% of the median.

The parameters are this project's choice (no published generator is reproduced); the ranges are set to
cover the shared families' means (Norway 3G ~1 Mbit/s to Lumos 5G ~500 Mbit/s) and their outages
(UCC 5G, NYU LTE). A trace always delivers at least ``floor_bps`` on average, so no video is refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from traces.errors import ConfigError
from traces.synthetic import check_seed_and_count
from traces.types import Trace


@dataclass(frozen=True, slots=True)
class BroadTraceConfig:
    """Ranges of the broad generator (see the module docstring).

    Args:
        duration_s: trace length in seconds.
        step_s: sample spacing in seconds.
        slow_low_bps: lowest median throughput, in bits per second.
        slow_high_bps: highest median of the "ladder-range" regime (and lowest of the fast one), bits/s.
        fast_high_bps: highest median of the fast regime, in bits per second.
        fast_share: probability of the fast regime.
        n_states: levels of the Markov chain.
        sigma_high: largest log-normal spread of the levels.
        outage_share: probability that a trace has outages.
        floor_bps: lowest mean throughput of a trace, in bits per second (outages excluded from nothing).

    >>> BroadTraceConfig().fast_share
    0.25
    """

    duration_s: float = 400.0
    step_s: float = 1.0
    slow_low_bps: float = 0.2e6
    slow_high_bps: float = 8e6
    fast_high_bps: float = 400e6
    fast_share: float = 0.25
    n_states: int = 6
    sigma_high: float = 1.0
    outage_share: float = 0.35
    floor_bps: float = 0.15e6

    def __post_init__(self) -> None:
        for name in ("duration_s", "step_s", "slow_low_bps", "slow_high_bps", "fast_high_bps", "sigma_high",
                     "floor_bps"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}={value!r} must be a finite number > 0", field=name, value=value)
        if not self.slow_low_bps < self.slow_high_bps < self.fast_high_bps:
            raise ConfigError("need slow_low_bps < slow_high_bps < fast_high_bps", field="slow_high_bps",
                              value=self.slow_high_bps)
        for name in ("fast_share", "outage_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name}={value!r} must be in [0, 1]", field=name, value=value)
        if isinstance(self.n_states, bool) or not isinstance(self.n_states, int) or self.n_states < 1:
            raise ConfigError(f"n_states={self.n_states!r} must be an integer >= 1", field="n_states",
                              value=self.n_states)


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return math.exp(float(rng.uniform(math.log(low), math.log(high))))


def generate_broad_trace(rng: np.random.Generator, config: BroadTraceConfig | None = None, *,
                         name: str = "broad") -> Trace:
    """Draw one trace: its regime, then its samples (family ``"synthetic-broad"``).

    >>> t = generate_broad_trace(np.random.default_rng(0))
    >>> t.duration_s, bool(t.throughput_bps.min() >= 0), t.family
    (400.0, True, 'synthetic-broad')
    """
    cfg = config or BroadTraceConfig()
    n = max(1, round(cfg.duration_s / cfg.step_s))
    if rng.random() < cfg.fast_share:
        median = _log_uniform(rng, cfg.slow_high_bps, cfg.fast_high_bps)
    else:
        median = _log_uniform(rng, cfg.slow_low_bps, cfg.slow_high_bps)
    sigma = float(rng.uniform(0.05, cfg.sigma_high))
    levels = median * np.exp(sigma * rng.standard_normal(cfg.n_states))
    switch_p = float(rng.uniform(0.02, 0.3))
    noise_sd = float(rng.uniform(0.02, 0.5))
    state = np.empty(n, dtype=np.int64)
    switches = rng.random(n) < switch_p
    picks = rng.integers(cfg.n_states, size=n)
    current = int(picks[0])
    for i in range(n):
        if switches[i]:
            current = int(picks[i])
        state[i] = current
    rates = levels[state] * np.maximum(1.0 + noise_sd * rng.standard_normal(n), 0.05)
    if rng.random() < cfg.outage_share:
        start_p = float(rng.uniform(0.002, 0.03))
        mean_len_steps = float(rng.uniform(2.0, 12.0)) / cfg.step_s
        starts = rng.random(n) < start_p
        lengths = rng.geometric(1.0 / max(mean_len_steps, 1.0), size=n)
        depth = rng.uniform(0.0, 0.05, size=n) * median
        i = 0
        while i < n:
            if starts[i]:
                end = min(n, i + int(lengths[i]))
                rates[i:end] = depth[i]
                i = end
            else:
                i += 1
    mean = float(rates.mean())
    if mean < cfg.floor_bps:
        rates = rates * (cfg.floor_bps / mean)
    times = np.arange(n + 1, dtype=np.float64) * cfg.step_s
    return Trace(times, np.concatenate(([rates[0]], rates)), name=name, family="synthetic-broad")


def generate_broad_trace_set(seed: int, n_traces: int, config: BroadTraceConfig | None = None) -> list[Trace]:
    """``n_traces`` broad traces; trace ``i`` uses child ``i`` of ``SeedSequence(seed)`` (named ``broad_<seed>_<i>``).

    >>> a, b = generate_broad_trace_set(3, 2)
    >>> a.name, bool((a.throughput_bps != b.throughput_bps).any())
    ('broad_3_0000', True)
    """
    check_seed_and_count(seed, n_traces)
    children = np.random.SeedSequence(int(seed)).spawn(int(n_traces))
    return [generate_broad_trace(np.random.default_rng(c), config, name=f"broad_{seed}_{i:04d}")
            for i, c in enumerate(children)]
