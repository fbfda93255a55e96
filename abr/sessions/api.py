"""Loading a population run's inputs, running it and writing its outputs; the offline recommender check."""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr.common import inputs
from abr.common.memory import available_memory_bytes, check_fits
from abr.errors import ConfigError
from abr.sessions.outputs import write_outputs
from abr.sessions.playback import PlaybackContext
from abr.sessions.population import (
    INTEREST_BLOCK_BYTES,
    Population,
    RatingData,
    build_population,
    movielens_rating_data,
    synthetic_rating_data,
)
from abr.sessions.recommender import (
    ALSConfig,
    ImplicitALS,
    Interactions,
    Popularity,
    RankingMetrics,
    dense_index,
    evaluate_in_batches,
    time_holdout,
)
from abr.sessions.simulate import POPULATION_KEY, ProgressCallback, SessionsConfig, SimulationResult, simulate
from agents.base import ClairvoyantPolicy
from agents.registry import make_agent
from simulator.config import preset
from simulator.link import check_trace_feasible
from traces.movielens import load_movielens
from traces.types import Video

logger = logging.getLogger(__name__)

#: Network profiles by default: fixed broadband (FCC), 3G (Norway) and 4G (Belgium) households.
DEFAULT_NETWORKS: tuple[str, ...] = ("fcc/test", "norway/test", "belgium4g/test")
CATALOGS: tuple[str, ...] = ("auto", "movielens", "synthetic")
SYNTHETIC_NETWORK_TRACES = 40

# Memory of a run, by what it grows with (bytes; measured peak RSS rounded up, e.g. 1,000 users x 7 days:
# 220 MB; 16,000 users x 1 day on MovieLens: 340 MB). See estimate_run_bytes.
RUN_BASE_BYTES = 256 * 1024**2  # interpreter, numpy, simulator, catalog, traces and the video
WORKER_BYTES = 256 * 1024**2  # each extra process of --workers
USER_BYTES = 4 * 1024  # factors, population arrays, interest stream marks, churn and per-user tables
RATING_BYTES = 96  # an initial interaction: CSR entry plus the sort and transpose temporaries of ALS
VIEW_BYTES = 5 * 1024  # a view of one policy: record, result, feedback and its share of the outputs
INTEREST_BLOCK_ARRAYS = 8  # [block users, titles] float64 arrays alive at once while planning a day


@dataclass(frozen=True, slots=True)
class PopulationRun:
    """A finished run: its result, inputs and the summary written to disk."""

    result: SimulationResult
    data: RatingData
    population: Population
    summary: dict[str, Any]


def load_rating_data(catalog: str, seed: int, data_dir: str | Path | None = None, *,
                     min_ratings: int = 5) -> RatingData:
    """The catalog and its rating history: ``movielens``, ``synthetic``, or ``auto`` (MovieLens when present)."""
    if catalog not in CATALOGS:
        raise ConfigError(f"catalog={catalog!r} is not one of {', '.join(CATALOGS)}")
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(POPULATION_KEY, 0)))
    if catalog == "synthetic" or (catalog == "auto" and not inputs.has_data_dir(data_dir)):
        return synthetic_rating_data(rng)
    return movielens_rating_data(rng, None if data_dir is None else str(data_dir), min_ratings=min_ratings)


def _check_agents(agents: tuple[str, ...]) -> None:
    for name in agents:
        if isinstance(make_agent(name), ClairvoyantPolicy):
            raise ConfigError(f"agent {name!r} needs the whole trace in advance (an offline bound): it cannot play "
                              "viewing sessions on a shared link; choose a player policy")


def run_population(config: SessionsConfig, out: Path | None, *, catalog: str = "auto",
                   networks: tuple[str, ...] | None = None, video: str | None = None,
                   ladder_kbps: str | Sequence[float] | None = None,
                   data_dir: str | Path | None = None, progress: ProgressCallback | None = None,
                   command: str = "", plots: bool = True, engine: str = "local",
                   ray_address: str | None = None, viewers: str = "clones") -> PopulationRun:
    """Load the inputs, simulate the population and (with ``out``) write every output file.

    Args:
        config: the run's settings (users, days, policies, seed, ...).
        out: output folder, or ``None`` to write nothing.
        catalog: ``auto``, ``movielens`` or ``synthetic``.
        networks: trace sets of the network profiles (default: :data:`DEFAULT_NETWORKS` with a data directory,
            else a seeded synthetic set).
        video: the base chunk-size table (default: envivio_dash3, or its CBR stand-in without data).
        ladder_kbps: the video's bitrate ladder in kbit/s (overrides its folder's; see
            :func:`abr.common.inputs.load_video`).
        data_dir: the data directory override.
        progress: called after each day with ``(done, total, description)``.
        command: the command line, recorded in ``config.json``.
        plots: draw the PNG plots.
        engine: where household-days are played: ``local`` (``config.workers`` processes), ``serial`` or
            ``ray`` (:mod:`abr.sessions.runner`); every engine writes the same tables.
        ray_address: a running Ray cluster for ``engine="ray"`` (``None``: start a local instance).
        viewers: ``clones`` of the rating data's users, or ``drawn`` from the fitted taste model beyond them
            (:mod:`abr.sessions.population`).

    Raises:
        ConfigError: an unknown or unusable agent, a bad setting, or a run whose estimated memory
            (:func:`estimate_run_bytes`) exceeds what the machine has available.
        DataDirError: a named input cannot be found.
    """
    _check_agents(config.agents)
    check_run_fits(config)  # before loading anything: a size far too large is refused at once
    data = load_rating_data(catalog, config.seed, data_dir)
    check_run_fits(config, n_titles=len(data.catalog),
                   ratings_per_user=data.history.indices.size / max(1, data.history.n_users))
    if networks is None:
        networks = DEFAULT_NETWORKS if inputs.has_data_dir(data_dir) else ()
    sets = [inputs.load_trace_set(spec, data_dir) for spec in networks]
    if not sets:
        sets = [inputs.synthetic_trace_set(SYNTHETIC_NETWORK_TRACES, config.seed)]
    families = {s.name: s.traces for s in sets}
    base = inputs.load_video(video, data_dir, ladder_kbps=ladder_kbps)
    sim_config = preset("realistic")
    # The busiest title's chunks are the base table's times its complexity: every trace must carry them.
    busiest = Video(base.bitrates_bps, base.chunk_duration_s,
                    base.chunk_sizes_bits * float(np.max(data.catalog.complexity)), name=f"{base.name} (busiest title)")
    for s in sets:
        for trace in s.traces:
            check_trace_feasible(trace, busiest, sim_config.payload_efficiency, trace_set=s.name)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(POPULATION_KEY, 3)))
    population = build_population(data, config.users, {k: len(v) for k, v in families.items()}, rng,
                                  sessions_per_day=config.sessions_per_day, als=config.als, viewers=viewers)
    ctx = PlaybackContext(families, data.catalog, base, sim_config, config.agents)
    result = simulate(config, data, population, ctx, progress=progress, engine=engine, ray_address=ray_address)
    summary: dict[str, Any] = {}
    if out is not None:
        settings = {
            "command": command,
            "config": _jsonable(dataclasses.asdict(config)),
            "catalog": data.catalog.source,
            "titles": len(data.catalog),
            "networks": {s.name: len(s.traces) for s in sets},
            "video": base.name,
            "video_ladder_bps": base.bitrates_bps.tolist(),
            "sim_preset": "realistic",
            "households": population.n_households,
            "viewers": viewers,
        }
        summary = write_outputs(out, result, data, population, settings, plots=plots)
    return PopulationRun(result, data, population, summary)


def estimate_run_bytes(config: SessionsConfig, *, n_titles: int = 1, ratings_per_user: float = 0.0) -> int:
    """Estimated peak memory of :func:`run_population` with ``config``, in bytes.

    It grows with the users (their factors and initial ratings), the views (``users x sessions_per_day x
    days x policies``: each keeps its record), and the catalog only through one block of users' interest rows
    (:data:`~abr.sessions.population.INTEREST_BLOCK_BYTES`), never through ``users x titles``.

    Args:
        config: the run's settings.
        n_titles: titles in the catalog (1: a lower bound before the catalog is loaded).
        ratings_per_user: mean initial interactions a user is cloned with (0: a lower bound).

    >>> estimate_run_bytes(SessionsConfig(users=100_000, days=1), n_titles=3650, ratings_per_user=148) < 4 * 1024**3
    True
    """
    fixed, per_user = _run_bytes(config, n_titles, ratings_per_user)
    return fixed + config.users * per_user


def _run_bytes(config: SessionsConfig, n_titles: int, ratings_per_user: float) -> tuple[int, int]:
    """``(fixed bytes, bytes per user)`` of a run (see :func:`estimate_run_bytes`)."""
    block_users = min(config.users, max(1, INTEREST_BLOCK_BYTES // (8 * n_titles)))
    fixed = RUN_BASE_BYTES + (config.workers - 1) * WORKER_BYTES + INTEREST_BLOCK_ARRAYS * block_users * n_titles * 8
    views_per_user = config.sessions_per_day * config.days * len(config.agents)
    per_user = USER_BYTES + ratings_per_user * RATING_BYTES + views_per_user * VIEW_BYTES
    return fixed, int(math.ceil(per_user))


def check_run_fits(config: SessionsConfig, *, n_titles: int = 1, ratings_per_user: float = 0.0) -> None:
    """Refuse a run whose :func:`estimate_run_bytes` exceeds the memory available (``ConfigError``).

    The message gives the estimate, the memory available and how many users would fit.
    """
    fixed, per_user = _run_bytes(config, n_titles, ratings_per_user)
    estimate = fixed + config.users * per_user
    available = available_memory_bytes()
    if estimate <= available:
        return
    fit = max(0, (available - fixed) // per_user)
    catalog = f", {n_titles:,} titles" if n_titles > 1 else ""
    policies = f"{len(config.agents)} {'policy' if len(config.agents) == 1 else 'policies'}"
    check_fits(f"a population of {config.users:,} users x {config.days} days x {policies}{catalog}", estimate,
               f"use fewer --users (at most about {fit:,} fit with these days and policies) or fewer --days")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def offline_evaluation(data_dir: str | Path | None = None, *, seed: int = 0, k: int = 10,
                       als: ALSConfig | None = None, test_fraction: float = 0.2) -> dict[str, RankingMetrics]:
    """ALS against popularity on a time-based hold-out of MovieLens (each user's last ``test_fraction``).

    Every rating is an implicit interaction of strength ``stars / 5``; test items are relevant whatever
    their rating; items a user has in training are excluded from their list.
    """
    ratings, _ = load_movielens(data_dir)
    _, users = dense_index(ratings.user_ids)
    _, items = dense_index(ratings.movie_ids)
    n_users, n_items = int(users.max()) + 1, int(items.max()) + 1
    test = time_holdout(users, items, ratings.timestamps_s, test_fraction=test_fraction)
    train = Interactions.from_triples(users[~test], items[~test], ratings.stars[~test] / 5.0,
                                      n_users=n_users, n_items=n_items)
    held = Interactions.from_triples(users[test], items[test], np.ones(int(test.sum())),
                                     n_users=n_users, n_items=n_items)
    model = ImplicitALS(als).fit(train, np.random.default_rng(seed))
    return {"als": evaluate_in_batches(model, train, held, k),
            "popularity": evaluate_in_batches(Popularity().fit(train), train, held, k)}
