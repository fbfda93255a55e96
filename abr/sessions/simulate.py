"""The population simulation: days of views chosen from recommendations, played on shared household links.

Each day, for each arm (ABR policy) of the run:

1. the arm's recommender (implicit ALS, :mod:`abr.sessions.recommender`) ranks the catalog for every user
   from their feedback so far, excluding what they have seen: a list of ``list_size`` titles;
2. every user starts a Poisson number of views at evening-weighted times, at their activity rate times what
   their recent experience leaves of it (:mod:`abr.sessions.retention`; none once they have churned); for each,
   the viewer browses the catalog (``browse_share``, a popularity-weighted pick) or chooses from the list by
   a multinomial logit on their true interest with a position penalty (``choice_beta``, ``position_cost``);
3. each household's views of the day are played together on its shared link with the arm's policy
   (:mod:`abr.sessions.playback`); the engagement model (:mod:`abr.sessions.engagement`) turns startup
   delay, rebuffering ratio and interest into abandonment and watch time;
4. every watched view becomes implicit feedback (strength = watched fraction), and the recommender is
   retrained every ``retrain_days`` days (warm-started ALS sweeps): the closed loop.

Playback window: a view plays the first ``min(intended watch, horizon_s)`` of its title on the link, and the
QoE of that window stands for the whole view (startup and early stalls are what drive abandonment; a full
feature film per view would make a 7,000-view day minutes long). Views later in the title are assumed to
keep the window's rebuffering ratio.

Common random numbers: every draw comes from ``SeedSequence(seed, spawn_key=(stream, ...))`` with per user,
day and view keys, identical in every arm; the population, the traces, the start offsets, the view times,
the choice noise and the viewers' patience are the same in both arms of an A/B run, so differences come
from the policy (and from what the policy's outcomes teach each arm's recommender). A viewer's day draws one
uniform for its number of views (a Poisson count by inversion, so a lower rate drops the last views and keeps
the others), and view ``j`` draws its time, choice, patience and intended watching from its own stream: the
views both arms have are drawn alike.

Confounders (:class:`~abr.sessions.engagement.Confounding`): a viewer's patience and intended watching depend
on their household's connection class (thirds of the households by their trace's mean throughput) and the
title's encoding complexity.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError
from abr.sessions.catalog import Catalog
from abr.sessions.engagement import Confounding, EngagementModel, connection_class, rebuffer_ratio
from abr.sessions.playback import HouseholdDay, PlaybackContext, ViewPlan, ViewResult
from abr.sessions.population import Population, RatingData, TrueInterest
from abr.sessions.recommender import ALSConfig, ImplicitALS, Interactions, top_k
from abr.sessions.retention import DayExperience, ReturnModel, ReturnState, poisson_count
from abr.sessions.runner import Runner

logger = logging.getLogger(__name__)

# Spawn-key streams (first entry of every spawn key).
POPULATION_KEY, VIEWS_KEY, NETWORK_KEY = 0, 1, 2
DAY_S = 86400.0
EVENING_SHARE = 0.75
EVENING_S = (18 * 3600.0, 23 * 3600.0)
DAYTIME_S = (8 * 3600.0, 18 * 3600.0)
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True, slots=True)
class SessionsConfig:
    """Settings of a population run.

    Args:
        users: population size.
        days: days simulated.
        agents: the ABR policy of each arm (two for an A/B run).
        seed: the run's seed.
        sessions_per_day: mean views per user per day.
        horizon_s: longest part of a title played on the link per view, in seconds.
        list_size: recommendations shown per user.
        retrain_days: retrain the recommender every this many days.
        retrain_sweeps: warm-started ALS sweeps per retraining.
        browse_share: share of views chosen outside the list.
        choice_beta: weight of interest in the choice logit.
        position_cost: logit cost per log2(rank + 1) of a list position.
        feedback_weight: strength of a fully watched view as implicit feedback (a 5-star rating is 1).
        workers: processes playing household-days (1: this process).
        engagement: the per-view viewer model.
        als: the recommender's factor model.
        returns: how experience changes return, and the churn rule (:mod:`abr.sessions.retention`).
        confounding: who differs besides their network (:class:`~abr.sessions.engagement.Confounding`).
    """

    users: int = 1000
    days: int = 7
    agents: tuple[str, ...] = ("bba",)
    seed: int = 0
    sessions_per_day: float = 0.8
    horizon_s: float = 600.0
    list_size: int = 10
    retrain_days: int = 1
    retrain_sweeps: int = 3
    browse_share: float = 0.15
    choice_beta: float = 4.0
    position_cost: float = 0.5
    feedback_weight: float = 1.0
    workers: int = 1
    engagement: EngagementModel = field(default_factory=EngagementModel)
    als: ALSConfig = field(default_factory=ALSConfig)
    returns: ReturnModel = field(default_factory=ReturnModel)
    confounding: Confounding = field(default_factory=Confounding)

    def __post_init__(self) -> None:
        for name in ("users", "days", "list_size", "retrain_days", "retrain_sweeps", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name}={value!r} must be an integer >= 1")
        if not self.agents:
            raise ConfigError("agents: give at least one ABR policy")
        if len(set(self.agents)) != len(self.agents):
            raise ConfigError(f"agents={list(self.agents)}: each arm needs a different policy")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed={self.seed!r} must be an integer >= 0")
        for name in ("sessions_per_day", "horizon_s", "choice_beta", "feedback_weight"):
            value = getattr(self, name)
            if not (np.isfinite(value) and value > 0):
                raise ConfigError(f"{name}={value!r} must be > 0")
        if not 0 <= self.browse_share <= 1:
            raise ConfigError(f"browse_share={self.browse_share} must be in [0, 1]")
        if not self.position_cost >= 0:
            raise ConfigError(f"position_cost={self.position_cost} must be >= 0")


@dataclass(slots=True)
class ViewRecord:
    """One view, its outcome and its engagement (a row of ``sessions.csv``)."""

    arm: int
    day: int
    user: int
    household: int
    view: int
    start_time_s: float
    title_idx: int
    rank: int  # position in the list (0 = top), -1 when browsed
    interest: float
    intended_fraction: float
    patience_s: float
    window_s: float
    result: ViewResult
    title_duration_s: float
    rebuffer_ratio: float = 0.0
    watch_fraction: float = 0.0
    connection: int = 0  # the household's connection class (0 slow, 1 medium, 2 fast)

    @property
    def watch_s(self) -> float:
        return self.watch_fraction * self.title_duration_s


@dataclass(slots=True)
class DayMetrics:
    """Online recommender metrics of one arm on one day (``recommender.csv``)."""

    arm: int
    day: int
    mean_list_interest: float  # true interest of the shown lists
    precision_at_k_true: float  # share of the list among each user's true top-k unseen titles
    list_share: float  # views chosen from the list
    mean_watch_fraction: float


@dataclass(slots=True)
class SimulationResult:
    """Everything a run produced."""

    config: SessionsConfig
    views: list[ViewRecord]
    days: list[DayMetrics]
    churn_day: npt.NDArray[np.int64]  # [arm, user] the first day counted as churned (-1: active at the end)
    elapsed_s: float = 0.0


@dataclass(slots=True)
class _Arm:
    model: ImplicitALS
    feedback: list[tuple[int, int, float]] = field(default_factory=list)
    matrix: Interactions | None = None
    returns: ReturnState | None = None


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=tuple(int(k) for k in key)))


def simulate(config: SessionsConfig, data: RatingData, population: Population, ctx: PlaybackContext, *,
             progress: ProgressCallback | None = None, engine: str = "local",
             ray_address: str | None = None) -> SimulationResult:
    """Run every arm over the same population, days and random numbers (see the module docstring).

    ``engine`` (``local``, ``serial`` or ``ray``), ``config.workers`` and ``ray_address`` say where household-days
    are played (:class:`~abr.sessions.runner.Runner`); they change nothing in the results."""
    started = time.perf_counter()
    with Runner(ctx, engine=engine, workers=config.workers, ray_address=ray_address) as runner:
        return _simulate(config, data, population, ctx, runner, progress, started)


def _simulate(config: SessionsConfig, data: RatingData, population: Population, ctx: PlaybackContext,
              runner: Runner, progress: ProgressCallback | None, started: float) -> SimulationResult:
    first = ImplicitALS(config.als)
    first.solver = runner.row_solver
    first.fit(population.initial, _rng(config.seed, POPULATION_KEY, 1))
    arms = []
    for _ in config.agents:  # every arm starts from the same fitted model
        model = ImplicitALS(config.als)
        model.solver = runner.row_solver
        model.user_factors, model.item_factors = first.user_factors.copy(), first.item_factors.copy()
        arms.append(_Arm(model, matrix=population.initial, returns=ReturnState(config.returns, population.n_users)))
    lengths = {(family, i): int(trace.times_s.size) for family, traces in ctx.traces.items()
               for i, trace in enumerate(traces)}
    household_class = connection_class([ctx.traces[f][int(i)].mean_throughput_bps for f, i in
                                        zip(population.household_family, population.household_trace)])
    views: list[ViewRecord] = []
    days: list[DayMetrics] = []
    for day in range(config.days):
        tasks, plans = [], []
        for a, arm in enumerate(arms):
            assert arm.returns is not None
            rates = arm.returns.rates(day, population.activity)
            day_views, day_tasks, metrics = _plan_day(config, data, population, arm, a, day, lengths,
                                                      rates, household_class, runner)
            plans += day_views
            tasks += day_tasks
            days.append(metrics)
        by_view = {(r.arm, r.view, r.day): r for r in plans}
        for task, results in zip(tasks, runner.map(tasks)):
            for result in results:
                _engage(by_view[(task.arm, result.view_idx, task.day)], result, config.engagement)
        views += plans
        for a, arm in enumerate(arms):
            arm_views = [v for v in plans if v.arm == a]
            days[-len(arms) + a].mean_watch_fraction = float(np.mean(
                [v.watch_fraction for v in arm_views])) if arm_views else 0.0
            arm.feedback += [(v.user, v.title_idx, config.feedback_weight * v.watch_fraction)
                             for v in arm_views if v.watch_fraction > 0]
            assert arm.returns is not None
            arm.returns.record(day, DayExperience.collect(
                population.n_users, [v.user for v in arm_views], [v.result.is_abandoned for v in arm_views],
                [v.rebuffer_ratio for v in arm_views], [v.intended_fraction for v in arm_views],
                [v.watch_fraction for v in arm_views]))
            if (day + 1) % config.retrain_days == 0 and day + 1 < config.days:
                _retrain(config, population, arm, day, a)
        if progress is not None:
            progress(day + 1, config.days, f"day {day + 1}/{config.days}")
    churn_day = np.stack([arm.returns.churn_day.astype(np.int64) for arm in arms if arm.returns is not None])
    return SimulationResult(config, views, days, churn_day, time.perf_counter() - started)


def _retrain(config: SessionsConfig, population: Population, arm: _Arm, day: int, a: int) -> None:
    initial = population.initial
    users = np.repeat(np.arange(initial.n_users), np.diff(initial.indptr))
    fb = np.array(arm.feedback, dtype=np.float64).reshape(-1, 3)
    arm.matrix = Interactions.from_triples(
        np.concatenate([users, fb[:, 0].astype(np.int64)]),
        np.concatenate([initial.indices, fb[:, 1].astype(np.int64)]),
        np.concatenate([initial.weights, fb[:, 2]]), n_users=initial.n_users, n_items=initial.n_items)
    arm.model.fit(arm.matrix, _rng(config.seed, POPULATION_KEY, 2, day, a), iterations=config.retrain_sweeps,
                  warm_start=True)


@dataclass(frozen=True, slots=True)
class PlanBlock:
    """What planning a block of users' views of one day and arm needs (:func:`plan_block`): small enough to
    send to a worker process (the block's own rows of every per-user array, never the whole population).

    Attributes:
        config: the run's settings.
        catalog: the titles.
        arm: the arm (policy index).
        day: the day.
        first_user: the block's first user (row 0 of every array below).
        user_factors: the arm's recommender factors of the block's users ``[users, factors]``.
        item_factors: the recommender's title factors ``[titles, factors]``.
        seen: each user's seen titles (their rows of the arm's feedback matrix; weights unused).
        interest: the block's true interest (:meth:`~abr.sessions.population.TrueInterest.users_between`).
        rates: each user's view rate today.
        household: each user's household.
        connection: each user's household connection class.
        popularity_cdf: cumulative popularity of the catalog (what a browsing viewer picks by).
        position_cost: the choice logit's cost of each list position.
    """

    config: SessionsConfig
    catalog: Catalog
    arm: int
    day: int
    first_user: int
    user_factors: npt.NDArray[np.float64]
    item_factors: npt.NDArray[np.float64]
    seen: Interactions
    interest: TrueInterest
    rates: npt.NDArray[np.float64]
    household: npt.NDArray[np.int64]
    connection: npt.NDArray[np.int64]
    popularity_cdf: npt.NDArray[np.float64]
    position_cost: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class BlockPlan:
    """A block's planned views (in user order), each household's view plans, and the day's list metrics."""

    records: list[ViewRecord]
    by_household: dict[int, list[ViewPlan]]
    list_interest: npt.NDArray[np.float32]  # [users, k] the true interest of each shown list
    precision: npt.NDArray[np.float64]  # [users] share of the list among the user's true top-k unseen titles


def _plan_day(config: SessionsConfig, data: RatingData, population: Population, arm: _Arm, a: int,
              day: int, trace_lengths: dict[tuple[str, int], int], rates: npt.NDArray[np.float64],
              household_class: npt.NDArray[np.int64], runner: Runner | None = None
              ) -> tuple[list[ViewRecord], list[HouseholdDay], DayMetrics]:
    """Recommend, choose and plan every user's views of ``day`` for arm ``a``, a block of users at a time
    (the true interest and the scores exist for one block only; see :class:`~abr.sessions.population.TrueInterest`).
    The blocks are planned by ``runner`` (on its workers; ``None``: here) and merged in user order, so where they
    were planned changes nothing."""
    catalog = data.catalog
    assert arm.matrix is not None
    k = min(config.list_size, len(catalog))
    popularity_cdf = np.cumsum(catalog.popularity) / catalog.popularity.sum()
    position_cost = config.position_cost * np.log2(np.arange(k) + 2.0)
    connection = household_class[population.household]
    jobs = [PlanBlock(config, catalog, a, day, start, arm.model.user_factors[start:stop], arm.model.item_factors,
                      arm.matrix.rows_between(start, stop), population.interest.users_between(start, stop),
                      rates[start:stop], population.household[start:stop], connection[start:stop],
                      popularity_cdf, position_cost)
            for start, stop in population.interest.blocks()]
    plans = runner.call_all(plan_block, jobs) if runner is not None else [plan_block(job) for job in jobs]
    records = [r for plan in plans for r in plan.records]
    by_household: dict[int, list[ViewPlan]] = {}
    for plan in plans:
        for h, planned in plan.by_household.items():
            by_household.setdefault(h, []).extend(planned)
    tasks = []
    for h in sorted(by_household):
        family = population.household_family[h]
        n_intervals = trace_lengths[(family, int(population.household_trace[h]))] - 1
        start_idx = int(_rng(config.seed, NETWORK_KEY, h, day).integers(1, n_intervals + 1))
        views = tuple(sorted(by_household[h], key=lambda p: (p.start_time_s, p.view_idx)))
        tasks.append(HouseholdDay(a, config.seed, h, day, family, int(population.household_trace[h]), start_idx, views))
    share = float(np.mean([r.rank >= 0 for r in records])) if records else 0.0
    list_interest = np.concatenate([plan.list_interest for plan in plans])
    precision = np.concatenate([plan.precision for plan in plans])
    metrics = DayMetrics(a, day, float(list_interest.mean()), float(np.mean(precision)), share, 0.0)
    return records, tasks, metrics


def plan_block(job: PlanBlock) -> BlockPlan:
    """Recommend, choose and plan the views of one block of users (see :func:`_plan_day`)."""
    config = job.config
    n = job.rates.size
    k = min(config.list_size, len(job.catalog))
    rows = np.arange(n)
    lists = top_k(job.user_factors @ job.item_factors.T, job.seen, rows, config.list_size)
    interest = job.interest.rows(0, n)
    list_interest = np.take_along_axis(interest, lists, axis=1)
    true_masked = np.array(interest, dtype=np.float64)
    for row in range(n):
        true_masked[row, job.seen.row(row)[0]] = -np.inf
    true_top = np.argpartition(-true_masked, k - 1, axis=1)[:, :k]
    del true_masked
    precision = np.empty(n)
    records: list[ViewRecord] = []
    by_household: dict[int, list[ViewPlan]] = {}
    for row in range(n):
        precision[row] = np.intersect1d(lists[row], true_top[row]).size / k
        _plan_user(job, row, lists[row], list_interest[row], interest[row], records, by_household)
    return BlockPlan(records, by_household, list_interest, precision)


def _plan_user(job: PlanBlock, row: int, shown: npt.NDArray[np.int64], shown_interest: npt.NDArray[np.float32],
               interest: npt.NDArray[np.float32], records: list[ViewRecord],
               by_household: dict[int, list[ViewPlan]]) -> None:
    """Draw the views of the day of the block's user ``row``: how many, times, choices (list or browse), intended
    watch and patience.

    The count comes from the (user, day) stream; everything about view ``j`` from the (user, day, j) stream, in
    a fixed order, so the views both arms have are drawn alike whatever their counts.
    """
    config, catalog = job.config, job.catalog
    u = job.first_user + row
    k = shown.size
    n_views = poisson_count(float(_rng(config.seed, VIEWS_KEY, u, job.day).random()), float(job.rates[row]))
    view_rngs = [_rng(config.seed, VIEWS_KEY, u, job.day, j) for j in range(n_views)]
    own = [(rng.random(5), rng.gumbel(size=k), rng) for rng in view_rngs]
    starts = [float(rng.uniform(*EVENING_S) if u5[0] < EVENING_SHARE else rng.uniform(*DAYTIME_S))
              for u5, _, rng in own]
    household = int(job.household[row])
    connection = int(job.connection[row])
    grace_shift_s = config.confounding.grace_shift_s(connection)
    available = np.ones(k, dtype=bool)
    free_at_s = 0.0
    for j in sorted(range(n_views), key=lambda i: (starts[i], i)):
        (_, _, browse_u, pick_u, patience_u), gumbel, view_rng = own[j]
        if browse_u < config.browse_share or not available.any():
            title = int(min(np.searchsorted(job.popularity_cdf, pick_u, side="right"), len(catalog) - 1))
            rank = -1
        else:
            utility = config.choice_beta * shown_interest - job.position_cost + gumbel
            utility[~available] = -np.inf
            rank = int(np.argmax(utility))
            available[rank] = False
            title = int(shown[rank])
        shift = config.confounding.intent_shift(connection, float(catalog.complexity[title]))
        intended = config.engagement.intended_fraction(float(interest[title]), view_rng, shift)
        duration_s = float(catalog.duration_s[title])
        start_s = max(starts[j], free_at_s)
        window_s = max(min(intended * duration_s, config.horizon_s), 1.0)
        free_at_s = start_s + intended * duration_s
        view_idx = u * 1000 + j
        plan = ViewPlan(view_idx, title, start_s, window_s, config.engagement.patience_s(float(patience_u),
                                                                                         grace_shift_s))
        by_household.setdefault(household, []).append(plan)
        records.append(ViewRecord(job.arm, job.day, u, household, view_idx, start_s, title, rank,
                                  float(interest[title]), intended, plan.patience_s, window_s,
                                  _EMPTY_RESULT, duration_s, connection=connection))


_EMPTY_RESULT = ViewResult(-1, False, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0.0, 0, 1.0)


def _engage(record: ViewRecord, result: ViewResult, model: EngagementModel) -> None:
    record.result = result
    if result.is_abandoned:
        record.rebuffer_ratio, record.watch_fraction = 0.0, 0.0
        return
    record.rebuffer_ratio = rebuffer_ratio(result.rebuffer_s, result.played_s)
    record.watch_fraction = model.watch_fraction(record.intended_fraction, record.rebuffer_ratio)
