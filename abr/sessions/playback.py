"""Playing one household's views of one day on its shared link (runs in worker processes too).

A :class:`HouseholdDay` lists the views of one household on one day for one policy; :func:`play_household_day`
plays them all in one SimPy run on the household's :class:`~simulator.shared_link.SharedLink` (views that
overlap in time share the link) and returns one :class:`ViewResult` per view. Each view plays the first
``window_s`` of its title (see :mod:`abr.sessions.simulate` for why a window).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from abr.sessions.catalog import Catalog, title_video
from agents.registry import make_agent
from simulator.config import SimConfig
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.shared_session import PlayerSpec, jain_index, run_shared
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


def play_household_day(ctx: PlaybackContext, task: HouseholdDay) -> list[ViewResult]:
    """Play the views of ``task`` on the household's link (see the module docstring)."""
    trace = ctx.traces[task.family][task.trace_idx]
    agent = ctx.agents[task.arm]
    specs = [PlayerSpec(make_agent(agent), title_video(ctx.catalog, v.title_idx, ctx.base_video,
                                                        max_duration_s=v.window_s),
                        start_time_s=v.start_time_s, startup_patience_s=v.patience_s, name=str(v.view_idx))
             for v in task.views]
    run = run_shared(trace, specs, ctx.config, start_idx=task.start_idx,
                     rngs=[np.random.default_rng(np.random.SeedSequence(
                         task.seed, spawn_key=(POLICY_KEY, task.day, task.household, v.view_idx)))
                           for v in task.views])
    weights = QoEWeights()
    spans = [(p.start_time_s, max(p.end_time_s, p.start_time_s)) for p in run.players]
    groups = _overlap_groups(spans)
    results = []
    for i, (view, player) in enumerate(zip(task.views, run.players)):
        video = specs[i].video
        metrics = session_metrics(player.outcomes, video.bitrates_bps, weights, chunk_duration_s=video.chunk_duration_s)
        overlapping = sum(1 for j, (s, e) in enumerate(spans) if j != i and s < spans[i][1] and spans[i][0] < e)
        members = [j for j, g in enumerate(groups) if g == groups[i]]
        fairness = jain_index([run.players[j].avg_bitrate_bps for j in members])
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
