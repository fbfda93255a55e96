"""Several players on one shared, trace-driven bottleneck (a household or a cell) on the SimPy core.

Each player is a :class:`simulator.des.Session` (the same player model, RTT and buffer rules as a single
session) running as a SimPy process in one environment, downloading through its own port of a
:class:`simulator.shared_link.SharedLink` (processor sharing: see that module for the sharing model). Each
player has its own bitrate policy and its own start time; a player can give up before playback starts
(``startup_patience_s``), which is how a viewer's startup abandonment frees the link for the others.

Players need a config whose RTT runs the trace clock (``rtt_advances_trace=True``) and has no download-time
noise, such as the ``realistic`` preset: on a shared link the trace clock is the wall clock.
"""

from __future__ import annotations

import math
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import simpy

from simulator.config import SimConfig
from simulator.des import Session
from simulator.errors import ConfigError
from simulator.records import ChunkOutcome
from simulator.rollout import QualityChooser, choose_quality, start_policy
from simulator.shared_link import RateInterval, SharedLink
from traces.types import Trace, Video


@dataclass(frozen=True, slots=True)
class PlayerSpec:
    """One player on the shared link.

    Args:
        policy: its bitrate policy (reset when the player starts).
        video: what it plays (truncated to the config's ``max_chunks``).
        start_time_s: when it sends its first request, in seconds of the shared clock.
        startup_patience_s: the player stops after a chunk download if playback has still not started and
            the startup delay so far exceeds this (the viewer left); ``inf``: never.
        name: a label for results.
    """

    policy: QualityChooser
    video: Video
    start_time_s: float = 0.0
    startup_patience_s: float = math.inf
    name: str = ""


@dataclass(frozen=True, slots=True)
class PlayerResult:
    """What one player did. Chunk times in ``outcomes`` are relative to ``start_time_s``.

    Attributes:
        name: the player's label.
        start_time_s: its start on the shared clock, in seconds.
        outcomes: its chunk outcomes, in order.
        is_abandoned: whether it stopped because the startup delay exceeded its patience.
        startup_delay_s: total startup delay, in seconds.
    """

    name: str
    start_time_s: float
    outcomes: tuple[ChunkOutcome, ...]
    is_abandoned: bool
    startup_delay_s: float

    @property
    def downloaded_bits(self) -> float:
        return float(sum(o.size_bits for o in self.outcomes))

    @property
    def end_time_s(self) -> float:
        """When the player's last download finished, on the shared clock, in seconds."""
        return self.start_time_s + (self.outcomes[-1].finish_time_s if self.outcomes else 0.0)

    @property
    def avg_bitrate_bps(self) -> float:
        """Mean nominal bitrate of its chunks, in bits per second (0 without chunks)."""
        return float(np.mean([o.bitrate_bps for o in self.outcomes])) if self.outcomes else 0.0

    @property
    def rebuffer_s(self) -> float:
        return float(sum(o.rebuffer_s for o in self.outcomes))


@dataclass(frozen=True, slots=True)
class SharedRun:
    """The result of :func:`run_shared`.

    Attributes:
        players: one result per player spec, in the order given.
        delivered_bits: payload the link delivered, in bits.
        rate_log: constant-rate intervals of the link (empty unless ``record_rates``).
    """

    players: tuple[PlayerResult, ...]
    delivered_bits: float
    rate_log: tuple[RateInterval, ...]


def check_shared_config(config: SimConfig) -> None:
    """Refuse configs whose conventions only make sense for a single client.

    >>> from simulator.config import preset
    >>> check_shared_config(preset("realistic"))
    >>> check_shared_config(preset("pensieve"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    traces.errors.ConfigError: a shared link needs rtt_advances_trace=True ...
    """
    if not config.rtt_advances_trace:
        raise ConfigError("a shared link needs rtt_advances_trace=True (the trace clock is the wall clock): use "
                          "preset('realistic') or config.replace(rtt_advances_trace=True)")
    if config.is_noisy:
        raise ConfigError("a shared link does not model download-time noise: use a config with "
                          "noise_low=noise_high=1.0 (e.g. preset('realistic'))")


def run_shared(trace: Trace, players: Sequence[PlayerSpec], config: SimConfig, *, start_idx: int = 1,
               rngs: Sequence[np.random.Generator | None] | None = None, record_rates: bool = False) -> SharedRun:
    """Play every player to the end of its video (or until it gives up) on one shared link.

    Args:
        trace: the bottleneck's throughput trace (its clock starts at interval ``start_idx`` at time 0).
        players: the players.
        config: the player and link model (see :func:`check_shared_config`).
        start_idx: first trace interval (1 = the trace's start).
        rngs: one generator per player for its policy's ``reset`` (``None`` entries for deterministic policies).
        record_rates: keep the link's rate log in the result.

    Returns:
        The players' results and the link's totals.

    >>> from simulator.config import preset
    >>> class Top:  # any object with name, reset and select
    ...     name = "top"
    ...     def reset(self, rng=None): pass
    ...     def select(self, context): return 1
    >>> trace = Trace(np.array([0.0, 1000.0]), np.array([2e6, 2e6]))
    >>> video = Video.cbr([0.5e6, 1e6], chunk_duration_s=4.0, n_chunks=5)
    >>> run = run_shared(trace, [PlayerSpec(Top(), video), PlayerSpec(Top(), video)],
    ...                  preset("realistic"))
    >>> [round(p.outcomes[0].download_time_s, 4) for p in run.players]  # 4 Mbit at 1.9/2 Mbit/s + 80 ms
    [4.2905, 4.2905]
    """
    check_shared_config(config)
    if rngs is not None and len(rngs) != len(players):
        raise ConfigError(f"rngs has {len(rngs)} generators for {len(players)} players: give one per player")
    env = simpy.Environment()
    link = SharedLink(env, trace, payload_efficiency=config.payload_efficiency, start_idx=start_idx,
                      record_rates=record_rates)
    results: list[PlayerResult | None] = [None] * len(players)
    for i, spec in enumerate(players):
        if not (math.isfinite(spec.start_time_s) and spec.start_time_s >= 0):
            raise ConfigError(f"player {i}: start_time_s={spec.start_time_s} must be a finite number >= 0")
        rng = rngs[i] if rngs is not None else None
        env.process(_play(env, link, trace, spec, config, rng, results, i))
    env.run()
    done = tuple(r for r in results if r is not None)
    assert len(done) == len(players), "every player process runs to its end"
    return SharedRun(done, link.delivered_bits, tuple(link.rate_log))


def _play(env: simpy.Environment, link: SharedLink, trace: Trace, spec: PlayerSpec, config: SimConfig,
          rng: np.random.Generator | None, results: list[PlayerResult | None],
          i: int) -> Generator[simpy.Event, object, None]:
    if spec.start_time_s > 0:
        yield env.timeout(spec.start_time_s)
    session = Session(trace, spec.video, config, env=env, link=link.port())
    start_policy(spec.policy, rng)
    n_levels = session.video.n_levels
    startup_s = 0.0
    is_abandoned = False
    while not session.is_done:
        outcome = yield from session.download(choose_quality(spec.policy, session, n_levels))
        startup_s += outcome.startup_delay_s
        if outcome.startup_delay_s > 0 and startup_s > spec.startup_patience_s:
            is_abandoned = True
            break
    results[i] = PlayerResult(spec.name or f"player{i}", float(spec.start_time_s), tuple(session.outcomes),
                              is_abandoned, startup_s)


def jain_index(values: npt.ArrayLike) -> float:
    """Jain's fairness index ``(sum x)^2 / (n sum x^2)``: 1 when all are equal, ``1/n`` when one takes all.

    >>> jain_index([1.0, 1.0, 1.0]), round(jain_index([1.0, 0.0]), 3)
    (1.0, 0.5)
    """
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0 or not np.any(x > 0):
        return 1.0
    return float(x.sum() ** 2 / (x.size * np.sum(x * x)))
