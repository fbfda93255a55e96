"""Playing one household's views of one day on its shared link (runs in worker processes too).

A :class:`HouseholdDay` lists the views of one household on one day for one policy; :func:`play_household_day`
plays them all in one SimPy run on the household's :class:`~simulator.shared_link.SharedLink` (views that
overlap in time share the link) and returns one :class:`ViewResult` per view. Each view plays the first
``window_s`` of its title (see :mod:`abr.sessions.simulate` for why a window).

:func:`play_household_days` plays many household-days with the same results, cheaper: most views are alone
on their household's link while they play, and a view alone on the link is a single session on a trace that
has run on since the day began. It plays every view that way first, on the fast core
(:class:`~simulator.fast_session.FastSession`, equal to the SimPy core to 1e-9 relative). Views of BBA,
RobustMPC and FastMPC play whole in compiled code (:mod:`abr.sessions._lone_views`, the same outcomes bit for
bit); the others play in lock-step, every view of the batch one chunk per round, so that policies that can
decide for many sessions at once do. Where views' spans (first request to last download) overlap, each group
of overlapping views is played again on the SimPy shared link (:func:`_replay_overlaps`; the link's trace runs
on the wall clock, so a group that overlaps no other view plays as in the whole day's run, to the 1e-9 of the
cores); the other views keep their fast results. Which path a view takes depends only on its household-day,
never on the batch or the engine, so every engine gives the same tables.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from abr.sessions._lone_views import LoneView, compiled_kind, play_lone_views, plays_compiled
from abr.sessions.catalog import Catalog, title_video
from agents.bba import BBA
from agents.mpc import MPC, MPCBatch
from agents.registry import make_agent
from simulator.config import SimConfig, fit_video
from simulator.context import PlayerContext
from simulator.fast_session import FastSession, TraceLists, idle
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.rollout import QualityChooser, choose_quality, start_policy
from simulator.shared_session import PlayerResult, PlayerSpec, jain_index, run_shared
from traces.types import Trace, Video

#: First spawn-key entry of the policies' generators (other streams use other keys).
POLICY_KEY = 3


@dataclass(frozen=True, slots=True)
class ViewPlan:
    """One view to play: who, what, when, and the viewer's startup patience."""

    view_idx: int
    title_idx: int
    start_time_s: float
    window_s: float
    patience_s: float


@dataclass(frozen=True, slots=True)
class HouseholdDay:
    """Every view of one household on one day, for one policy (``arm``)."""

    arm: int
    seed: int
    household: int
    day: int
    family: str
    trace_idx: int
    start_idx: int
    views: tuple[ViewPlan, ...]


@dataclass(frozen=True, slots=True)
class ViewResult:
    """What happened to one view on the link.

    Attributes:
        view_idx: the view.
        is_abandoned: the viewer left before playback started.
        startup_delay_s: startup delay, in seconds.
        rebuffer_s: stall time after startup, in seconds.
        played_s: video downloaded (and so played), in seconds.
        avg_bitrate_bps: mean nominal bitrate of its chunks.
        qoe_per_chunk: mean linear QoE per chunk.
        switch_count: quality switches.
        end_time_s: when its last download finished, seconds of the day.
        concurrent: the most other views of the household it overlapped with.
        group_fairness: Jain's index of the mean bitrates of the overlapping views it belongs to (1 alone).
    """

    view_idx: int
    is_abandoned: bool
    startup_delay_s: float
    rebuffer_s: float
    played_s: float
    avg_bitrate_bps: float
    qoe_per_chunk: float
    switch_count: int
    end_time_s: float
    concurrent: int
    group_fairness: float


@dataclass(frozen=True, slots=True)
class PlaybackContext:
    """What every worker needs once: traces by family, the catalog, the base chunk table, the model."""

    traces: dict[str, tuple[Trace, ...]]
    catalog: Catalog
    base_video: Video
    config: SimConfig
    agents: tuple[str, ...]


def play_household_day(ctx: PlaybackContext, task: HouseholdDay, planner: MPCBatch | None = None
                       ) -> list[ViewResult]:
    """Play the views of ``task`` together on the household's SimPy shared link (see the module docstring).

    MPC policies search with ``planner`` (:class:`~agents.mpc.MPCBatch`, one session at a time here: the choices
    of their own ``select``, sooner)."""
    videos, players = _play_shared(ctx, task, task.views, planner if planner is not None else MPCBatch())
    return _view_results(task, videos, players)


def _play_shared(ctx: PlaybackContext, task: HouseholdDay, views: tuple[ViewPlan, ...] | list[ViewPlan],
                 planner: MPCBatch) -> tuple[list[Video], tuple[PlayerResult, ...]]:
    """``views`` of ``task`` together on the household's SimPy shared link: their videos and results."""
    specs = [PlayerSpec(_searched(make_agent(ctx.agents[task.arm]), planner), _view_video(ctx, v),
                        start_time_s=v.start_time_s, startup_patience_s=v.patience_s, name=str(v.view_idx))
             for v in views]
    run = run_shared(ctx.traces[task.family][task.trace_idx], specs, ctx.config, start_idx=task.start_idx,
                     rngs=[_policy_rng(task, v) for v in views])
    return [s.video for s in specs], run.players


def _replay_overlaps(ctx: PlaybackContext, task: HouseholdDay, players: list[PlayerResult], videos: list[Video],
                     stopped: list[bool], planner: MPCBatch) -> list[ViewResult]:
    """The household-day's results when some views overlap: every group of views whose spans overlap is played
    again on the SimPy shared link, the others keep their lone results.

    The link's trace runs on the wall clock whatever is downloaded, so a view alone in time plays as it would in
    the whole day's run, and a group that overlaps no other view plays as in the whole day. Slower shared
    downloads lengthen a group's spans, which can reach the next view: groups are formed again on the new spans
    and replayed until no view outside a replayed group overlaps one (the whole day is replayed if that has not
    settled after as many rounds as there are views). A lone view that ``stopped`` because it played past the
    next view's start (its last download may end before, while it idles) goes with that view."""
    players, videos, stopped = list(players), list(videos), list(stopped)
    played: set[tuple[int, ...]] = set()
    for _ in range(len(players)):
        spans = [(p.start_time_s, max(p.end_time_s, p.start_time_s)) for p in players]
        for i in range(len(players) - 1):
            if stopped[i]:
                spans[i] = (spans[i][0], max(spans[i][1], math.nextafter(spans[i + 1][0], math.inf)))
        groups = _overlap_groups(spans)
        members: dict[int, list[int]] = {}
        for i, g in enumerate(groups):
            members.setdefault(g, []).append(i)
        todo = [tuple(m) for m in members.values() if len(m) > 1 and tuple(m) not in played]
        if not todo:
            return _view_results(task, videos, players)
        for group in todo:
            group_videos, group_players = _play_shared(ctx, task, [task.views[i] for i in group], planner)
            for i, video, player in zip(group, group_videos, group_players):
                videos[i], players[i], stopped[i] = video, player, False
            played.add(group)
    return play_household_day(ctx, task, planner)


def play_household_days(ctx: PlaybackContext, tasks: list[HouseholdDay]) -> list[list[ViewResult]]:
    """:func:`play_household_day` of every task, lone views on the fast core (see the module docstring)."""
    lists: dict[tuple[str, int], TraceLists] = {}
    probes: dict[int, QualityChooser | None] = {}  # per arm: the policy when the compiled kernel plays it
    compiled: dict[tuple[int, bytes, float], list[tuple[int, int, LoneView]]] = {}
    in_python: list[tuple[int, int, _LoneView]] = []
    for t, task in enumerate(tasks):
        key = (task.family, task.trace_idx)
        if key not in lists:
            lists[key] = TraceLists(ctx.traces[task.family][task.trace_idx],
                                    payload_efficiency=ctx.config.payload_efficiency)
        if task.arm not in probes:
            probe = make_agent(ctx.agents[task.arm])
            start_policy(probe, None)
            probes[task.arm] = probe if compiled_kind(probe) else None
        starts = [v.start_time_s for v in task.views] + [math.inf]  # the views are sorted by start
        for j, plan in enumerate(task.views):
            if probes[task.arm] is not None:
                video = fit_video(_view_video(ctx, plan), ctx.config)
                lone = LoneView(lists[key], task.start_idx, plan.start_time_s, video, plan.patience_s,
                                starts[j + 1], str(plan.view_idx))
                if plays_compiled(lone, ctx.config):
                    group = (task.arm, video.bitrates_bps.tobytes(), float(video.chunk_duration_s))
                    compiled.setdefault(group, []).append((t, j, lone))
                    continue
            in_python.append((t, j, _LoneView(ctx, task, plan, lists[key], starts[j + 1])))
    planner = MPCBatch()
    players: list[list[PlayerResult | None]] = [[None] * len(task.views) for task in tasks]
    videos: list[list[Video | None]] = [[None] * len(task.views) for task in tasks]
    stopped: list[list[bool]] = [[False] * len(task.views) for task in tasks]
    for (arm, _, _), members in compiled.items():
        policy = probes[arm]
        assert isinstance(policy, BBA | MPC)
        for (t, j, lone), played in zip(members, play_lone_views(policy, [m[2] for m in members], ctx.config,
                                                                  planner)):
            players[t][j], videos[t][j], stopped[t][j] = played.player, lone.video, played.overlaps
    _play_lock_step([view for _, _, view in in_python], planner)
    for t, j, view in in_python:
        players[t][j], videos[t][j], stopped[t][j] = view.result(), view.session.video, view.overlaps
    results = []
    for t, task in enumerate(tasks):
        done = [p for p in players[t] if p is not None]
        if any(stopped[t]) or _any_overlap([(p.start_time_s, max(p.end_time_s, p.start_time_s)) for p in done]):
            results.append(_replay_overlaps(ctx, task, done, [v for v in videos[t] if v is not None], stopped[t],
                                            planner))
        else:
            results.append(_view_results(task, [v for v in videos[t] if v is not None], done))
    return results


def _view_video(ctx: PlaybackContext, view: ViewPlan) -> Video:
    return title_video(ctx.catalog, view.title_idx, ctx.base_video, max_duration_s=view.window_s)


def _policy_rng(task: HouseholdDay, view: ViewPlan) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(
        task.seed, spawn_key=(POLICY_KEY, task.day, task.household, view.view_idx)))


class _LoneView:
    """One view played alone on its household's link: a fast-core session whose trace ran from the day's start
    until the view's first request (``SharedLink``'s clock is the wall clock), abandoned as ``run_shared``
    abandons a player. ``next_start_s``: when the household's next view starts; a view still playing past it
    overlaps it (its last download ends later still) and stops there (``overlaps``)."""

    __slots__ = ("plan", "policy", "session", "startup_s", "is_abandoned", "overlaps", "next_start_s")

    def __init__(self, ctx: PlaybackContext, task: HouseholdDay, plan: ViewPlan, lists: TraceLists,
                 next_start_s: float) -> None:
        self.plan = plan
        self.overlaps = False
        self.next_start_s = next_start_s
        self.policy: QualityChooser = make_agent(ctx.agents[task.arm])
        session = FastSession(ctx.traces[task.family][task.trace_idx], _view_video(ctx, plan), ctx.config,
                              start_idx=task.start_idx, lists=lists)
        session.ptr, session.clock_s = idle(lists, session.ptr, session.clock_s, plan.start_time_s)
        self.session = session
        start_policy(self.policy, _policy_rng(task, plan))
        self.startup_s = 0.0
        self.is_abandoned = False

    @property
    def is_done(self) -> bool:
        return self.is_abandoned or self.session.is_done

    def step(self, quality_idx: int) -> None:
        outcome = self.session.step(quality_idx)
        self.startup_s += outcome.startup_delay_s
        if outcome.startup_delay_s > 0 and self.startup_s > self.plan.patience_s:
            self.is_abandoned = True
        elif not self.session.is_done and self.plan.start_time_s + self.session.now_s > self.next_start_s:
            self.overlaps = True

    def result(self) -> PlayerResult:
        return PlayerResult(str(self.plan.view_idx), float(self.plan.start_time_s), tuple(self.session.outcomes),
                            self.is_abandoned, self.startup_s)


def _play_lock_step(views: list[_LoneView], planner: MPCBatch) -> None:
    """Step every view to its end (or until it overlaps the next view of its household), one chunk each per
    round; MPC policies decide together."""
    active = [v for v in views if not v.is_done]
    while active:
        searched = [v for v in active if isinstance(v.policy, MPC) and v.session.forced_quality_idx is None]
        if searched:
            choices = planner.select_many([v.policy for v in searched],  # type: ignore[misc]
                                          [v.session.context() for v in searched])
            for view, quality_idx in zip(searched, choices):
                view.step(quality_idx)
        chosen = set(map(id, searched))
        for view in active:
            if id(view) not in chosen:
                view.step(choose_quality(view.policy, view.session, view.session.video.n_levels))
        active = [v for v in active if not (v.is_done or v.overlaps)]


class _TreeSearch:
    """An MPC policy whose search runs on :class:`~agents.mpc.MPCBatch` (the same choices as its ``select``)."""

    def __init__(self, policy: MPC, planner: MPCBatch) -> None:
        self.policy = policy
        self.planner = planner
        self.name = policy.name

    def reset(self, rng: np.random.Generator | None = None) -> None:
        self.policy.reset(rng)

    def use_qoe(self, qoe: QoEWeights) -> None:
        self.policy.use_qoe(qoe)

    def select(self, context: PlayerContext) -> int:
        return self.planner.select_many([self.policy], [context])[0]


def _searched(policy: QualityChooser, planner: MPCBatch) -> QualityChooser:
    return _TreeSearch(policy, planner) if isinstance(policy, MPC) else policy


def _any_overlap(spans: list[tuple[float, float]]) -> bool:
    return any(s < spans[i][1] and spans[i][0] < e for i in range(len(spans)) for j, (s, e) in enumerate(spans)
               if j != i)


def _view_results(task: HouseholdDay, videos: list[Video], players: list[PlayerResult] | tuple[PlayerResult, ...]
                  ) -> list[ViewResult]:
    weights = QoEWeights()
    spans = [(p.start_time_s, max(p.end_time_s, p.start_time_s)) for p in players]
    groups = _overlap_groups(spans)
    results = []
    for i, (view, player) in enumerate(zip(task.views, players)):
        video = videos[i]
        metrics = session_metrics(player.outcomes, video, weights, chunk_duration_s=video.chunk_duration_s)
        overlapping = sum(1 for j, (s, e) in enumerate(spans) if j != i and s < spans[i][1] and spans[i][0] < e)
        members = [j for j, g in enumerate(groups) if g == groups[i]]
        fairness = jain_index([players[j].avg_bitrate_bps for j in members])
        results.append(ViewResult(
            view.view_idx, player.is_abandoned, player.startup_delay_s, player.rebuffer_s,
            len(player.outcomes) * video.chunk_duration_s, player.avg_bitrate_bps,
            metrics.qoe_mean_per_chunk, metrics.switch_count, player.end_time_s, overlapping, fairness))
    return results


def _overlap_groups(spans: list[tuple[float, float]]) -> list[int]:
    """Connected components of overlapping time spans (a label per span)."""
    order = sorted(range(len(spans)), key=lambda i: spans[i])
    labels = [0] * len(spans)
    group, group_end = -1, -np.inf
    for i in order:
        start, end = spans[i]
        if start >= group_end:
            group += 1
            group_end = end
        else:
            group_end = max(group_end, end)
        labels[i] = group
    return labels
