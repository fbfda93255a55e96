"""Loading a population run's inputs, running it and writing its outputs; the offline recommender check."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from abr import inputs
from abr.errors import ConfigError
from abr.sessions.outputs import write_outputs
from abr.sessions.playback import PlaybackContext
from abr.sessions.population import (
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
from traces.movielens import load_movielens

logger = logging.getLogger(__name__)

#: Network profiles by default: fixed broadband (FCC), 3G (Norway) and 4G (Belgium) households.
DEFAULT_NETWORKS: tuple[str, ...] = ("fcc/test", "norway/test", "belgium4g/test")
CATALOGS: tuple[str, ...] = ("auto", "movielens", "synthetic")
SYNTHETIC_NETWORK_TRACES = 40


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
                   command: str = "", plots: bool = True) -> PopulationRun:
    """Load the inputs, simulate the population and (with ``out``) write every output file.

    Args:
        config: the run's settings (users, days, policies, seed, ...).
        out: output folder, or ``None`` to write nothing.
        catalog: ``auto``, ``movielens`` or ``synthetic``.
        networks: trace sets of the network profiles (default: :data:`DEFAULT_NETWORKS` with a data directory,
            else a seeded synthetic set).
        video: the base chunk-size table (default: envivio_dash3, or its CBR stand-in without data).
        ladder_kbps: the video's bitrate ladder in kbit/s (overrides its folder's; see :func:`abr.inputs.load_video`).
        data_dir: the data directory override.
        progress: called after each day with ``(done, total, description)``.
        command: the command line, recorded in ``config.json``.
        plots: draw the PNG plots.

    Raises:
        ConfigError: an unknown or unusable agent, or a bad setting.
        DataDirError: a named input cannot be found.
    """
    _check_agents(config.agents)
    data = load_rating_data(catalog, config.seed, data_dir)
    if networks is None:
        networks = DEFAULT_NETWORKS if inputs.has_data_dir(data_dir) else ()
    sets = [inputs.load_trace_set(spec, data_dir) for spec in networks]
    if not sets:
        sets = [inputs.synthetic_trace_set(SYNTHETIC_NETWORK_TRACES, config.seed)]
    families = {s.name: s.traces for s in sets}
    base = inputs.load_video(video, data_dir, ladder_kbps=ladder_kbps)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed, spawn_key=(POPULATION_KEY, 3)))
    population = build_population(data, config.users, {k: len(v) for k, v in families.items()}, rng,
                                  sessions_per_day=config.sessions_per_day, als=config.als)
    ctx = PlaybackContext(families, data.catalog, base, preset("realistic"), config.agents)
    result = simulate(config, data, population, ctx, progress=progress)
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
        }
        summary = write_outputs(out, result, data, population, settings, plots=plots)
    return PopulationRun(result, data, population, summary)


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
