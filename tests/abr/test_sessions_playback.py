"""The lone-view fast path of household playback: a view alone on its household's link played on the fast core
(compiled for BBA and MPC, bit for bit as the Python fast core; the others in lock-step) equals the same view
played by the SimPy shared link, to the fast core's 1e-9 relative tolerance; groups of overlapping views are
played again on SimPy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abr.common.inputs import load_trace_set
from abr.sessions._lone_views import LoneView, compiled_kind, play_lone_views
from abr.sessions.catalog import synthetic_catalog
from abr.sessions.playback import (
    HouseholdDay,
    PlaybackContext,
    ViewPlan,
    ViewResult,
    _LoneView,
    _play_lock_step,
    _policy_rng,
    _view_results,
    _view_video,
    play_household_day,
    play_household_days,
)
from agents.mpc import MPCBatch
from agents.registry import make_agent
from simulator.config import fit_video, preset
from simulator.fast_session import TraceLists
from simulator.rollout import start_policy
from simulator.shared_session import PlayerSpec, run_shared
from traces.types import Trace, Video

ENVIVIO_BPS = [300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3]


def _context(data_dir: Path, agent: str) -> PlaybackContext:
    traces = load_trace_set("norway/test", data_dir).traces[:6]  # 3G: rebuffering and abandonment happen
    rng = np.random.default_rng(4)
    base = Video(np.array(ENVIVIO_BPS), 4.0, rng.uniform(0.6, 1.4, (60, 6)) * np.array(ENVIVIO_BPS) * 4.0)
    return PlaybackContext({"norway": tuple(traces)}, synthetic_catalog(np.random.default_rng(1), 40), base,
                           preset("realistic"), (agent,))


def _tasks(n: int, seed: int, *, max_views: int = 3, day_s: float = 20_000.0) -> list[HouseholdDay]:
    rng = np.random.default_rng(seed)
    tasks = []
    for h in range(n):
        n_views = int(rng.integers(1, max_views + 1))
        starts = np.sort(rng.uniform(0.0, day_s, n_views))
        if h % 5 == 0 and n_views > 1:
            starts[1] = starts[0] + 30.0  # certainly overlapping: the SimPy path
        views = tuple(ViewPlan(h * 10 + j, int(rng.integers(0, 40)), float(starts[j]),
                               float(rng.choice([60.0, 240.0, 600.0])), float(rng.choice([3.0, 8.0, 1e9])))
                      for j in range(n_views))
        tasks.append(HouseholdDay(0, seed, h, 2, "norway", int(rng.integers(0, 6)), int(rng.integers(1, 50)), views))
    return tasks


def _reference(ctx: PlaybackContext, task: HouseholdDay) -> list[ViewResult]:
    """The household-day on the SimPy shared link with each policy's own ``select`` (no batched search)."""
    specs = [PlayerSpec(make_agent(ctx.agents[task.arm]), _view_video(ctx, v), start_time_s=v.start_time_s,
                        startup_patience_s=v.patience_s, name=str(v.view_idx)) for v in task.views]
    run = run_shared(ctx.traces[task.family][task.trace_idx], specs, ctx.config, start_idx=task.start_idx,
                     rngs=[_policy_rng(task, v) for v in task.views])
    return _view_results(task, [s.video for s in specs], run.players)


def _close(fast: ViewResult, simpy: ViewResult) -> None:
    assert fast.view_idx == simpy.view_idx
    assert fast.is_abandoned == simpy.is_abandoned
    assert fast.switch_count == simpy.switch_count and fast.concurrent == simpy.concurrent
    assert fast.played_s == simpy.played_s
    for name in ("startup_delay_s", "rebuffer_s", "avg_bitrate_bps", "qoe_per_chunk", "end_time_s",
                 "group_fairness"):
        assert getattr(fast, name) == pytest.approx(getattr(simpy, name), rel=1e-9, abs=1e-9), name


@pytest.mark.parametrize("agent", ["robustmpc", "bba"])
def test_lone_views_on_the_fast_core_equal_the_simpy_shared_link(data_dir: Path, agent: str) -> None:
    ctx = _context(data_dir, agent)
    tasks = _tasks(40, seed=3)
    fast = play_household_days(ctx, tasks)
    simpy = [_reference(ctx, t) for t in tasks]
    assert [play_household_day(ctx, t) for t in tasks[:8]] == simpy[:8]  # the batched search in SimPy: the same
    for f_views, s_views in zip(fast, simpy):
        for f, s in zip(f_views, s_views, strict=True):
            _close(f, s)
    views = [v for vs in simpy for v in vs]
    assert sum(v.concurrent > 0 for v in views) >= 8  # overlapping households were played on SimPy
    assert sum(v.concurrent == 0 for v in views) >= 40  # and most views alone, on the fast core
    assert any(v.is_abandoned for v in views) and any(v.rebuffer_s > 0 for v in views)
    assert len({v.avg_bitrate_bps for v in views}) > 20  # the policy's choices vary


def test_crowded_households_replay_only_their_overlapping_views(data_dir: Path, monkeypatch) -> None:
    """Households of up to six views in an hour: groups of overlapping views (also those whose spans grow when
    replayed, and views that idle past the next view's start) are replayed on SimPy, the rest keep their lone
    results, and every view equals the whole day played on SimPy."""
    from abr.sessions import playback

    ctx = _context(data_dir, "robustmpc")
    tasks = _tasks(30, seed=21, max_views=6, day_s=3600.0)
    shared_sizes: list[int] = []
    real_run_shared = playback.run_shared

    def counting(trace, specs, *args, **kwargs):  # type: ignore[no-untyped-def]
        shared_sizes.append(len(specs))
        return real_run_shared(trace, specs, *args, **kwargs)

    monkeypatch.setattr(playback, "run_shared", counting)
    fast = play_household_days(ctx, tasks)
    monkeypatch.setattr(playback, "run_shared", real_run_shared)
    simpy = [_reference(ctx, t) for t in tasks]
    for f_views, s_views in zip(fast, simpy):
        for f, s in zip(f_views, s_views, strict=True):
            _close(f, s)
    views = [v for vs in simpy for v in vs]
    replayed_households = sum(any(v.concurrent for v in vs) for vs in simpy)
    assert sum(v.concurrent > 0 for v in views) >= 20 and replayed_households >= 10
    assert sum(shared_sizes) < sum(len(t.views) for t in tasks if any(v.concurrent for v in simpy[tasks.index(t)]))


@pytest.mark.parametrize("agent", ["robustmpc", "bba", "rb"])
def test_a_view_idling_past_the_next_start_is_replayed_with_it(data_dir: Path, agent: str) -> None:
    """The next view starts while the first idles on a full buffer (no download in flight, spans apart so far):
    the first is still playing, so both play on the shared link, as in the whole day."""
    ctx = _context(data_dir, agent)
    ctx = PlaybackContext({"fast": (Trace(np.array([0.0, 5000.0]), np.array([12e6, 12e6])),)}, ctx.catalog,
                          ctx.base_video, ctx.config, ctx.agents)
    first = ViewPlan(0, 3, 100.0, 600.0, 1e9)
    alone = play_household_days(ctx, [HouseholdDay(0, 1, 0, 0, "fast", 0, 1, (first,))])[0][0]
    lone = _LoneView(ctx, HouseholdDay(0, 1, 0, 0, "fast", 0, 1, (first,)), first,
                     TraceLists(ctx.traces["fast"][0], payload_efficiency=ctx.config.payload_efficiency), np.inf)
    _play_lock_step([lone], MPCBatch())
    outcomes = lone.result().outcomes
    idle = next(o for o in outcomes if o.idle_s >= 1.0)  # once the buffer is full
    second = ViewPlan(1, 7, 100.0 + idle.finish_time_s + idle.idle_s / 2, 120.0, 1e9)
    task = HouseholdDay(0, 1, 0, 0, "fast", 0, 1, (first, second))
    fast, simpy = play_household_days(ctx, [task])[0], _reference(ctx, task)
    for f, s_ in zip(fast, simpy, strict=True):
        _close(f, s_)
    assert simpy[0].concurrent == 1 and simpy[0].played_s == alone.played_s == 600.0


def test_batches_do_not_change_results(data_dir: Path) -> None:
    ctx = _context(data_dir, "robustmpc")
    tasks = _tasks(24, seed=8)
    together = play_household_days(ctx, tasks)
    apart = [r for i in range(0, len(tasks), 5) for r in play_household_days(ctx, tasks[i:i + 5])]
    assert together == apart


@pytest.mark.parametrize("agent", ["robustmpc", "fastmpc", "bba"])
def test_compiled_lone_views_equal_the_python_fast_core_bit_for_bit(data_dir: Path, agent: str) -> None:
    """The compiled kernel against FastSession steps with the policy's own decisions (MPC's batched search):
    every chunk outcome identical, the abandonment and overlap stops at the same chunk."""
    ctx = _context(data_dir, agent)
    policy = make_agent(agent)
    start_policy(policy, None)
    assert compiled_kind(policy)
    rng = np.random.default_rng(11)
    compiled_views, python_views = [], []
    for task in _tasks(40, seed=5):
        lists = TraceLists(ctx.traces[task.family][task.trace_idx], payload_efficiency=ctx.config.payload_efficiency)
        for plan in task.views:
            next_start = plan.start_time_s + float(rng.choice([40.0, 200.0, np.inf]))
            compiled_views.append(LoneView(lists, task.start_idx, plan.start_time_s,
                                           fit_video(_view_video(ctx, plan), ctx.config), plan.patience_s, next_start,
                                           str(plan.view_idx)))
            python_views.append(_LoneView(ctx, task, plan, lists, next_start))
    compiled = play_lone_views(policy, compiled_views, ctx.config, MPCBatch())  # type: ignore[arg-type]
    _play_lock_step(python_views, MPCBatch())
    for fast, reference in zip(compiled, python_views, strict=True):
        assert fast.player == reference.result()
        assert fast.overlaps == reference.overlaps
    players = [r.player for r in compiled]
    assert any(r.overlaps for r in compiled) and any(p.is_abandoned for p in players)
    assert any(p.rebuffer_s > 0 for p in players)
    assert any(len(p.outcomes) == v.video.n_chunks for p, v in zip(players, compiled_views))  # played to the end
    assert len({o.quality_idx for p in players for o in p.outcomes}) == 6  # every level chosen somewhere


def test_compiled_lone_views_refuse_mixed_ladders(data_dir: Path) -> None:
    ctx = _context(data_dir, "bba")
    lists = TraceLists(ctx.traces["norway"][0], payload_efficiency=ctx.config.payload_efficiency)
    other = Video(np.array(ENVIVIO_BPS[:3]), 4.0, np.ones((5, 3)) * 1e6)
    views = [LoneView(lists, 1, 0.0, video, 10.0, np.inf, str(i)) for i, video in enumerate([ctx.base_video, other])]
    with pytest.raises(ValueError, match="one ladder and chunk duration"):
        play_lone_views(make_agent("bba"), views, ctx.config, MPCBatch())  # type: ignore[arg-type]
