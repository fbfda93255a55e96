"""The compiled MPC search (``MPC.select`` alone and ``MPCBatch`` for many sessions at once) chooses what the
exhaustive numpy search (``MPC.plan``) chooses, decision for decision, over whole sessions with varied ladders,
buffers and ties, and on random states."""

from __future__ import annotations

import numpy as np
import pytest

from agents.mpc import MPC, MPCBatch, fast_mpc, robust_mpc, search_shape
from simulator.config import preset
from simulator.fast_session import FastSession
from traces.types import Trace, Video


def _exhaustive(policy: MPC, context) -> int:
    """``MPC.select`` with the choice taken from the exhaustive numpy search (``plan``), the reference."""
    prediction_bps = policy.predict_bps(context)
    if prediction_bps is None:
        return 0
    horizon = min(policy.horizon, context.chunks_remaining)
    last = context.last_quality_idx if context.last_quality_idx is not None else 0
    return int(policy.plan(context, horizon, prediction_bps, last)[0]) if horizon > 0 else 0


def _session(rng: np.random.Generator, video: Video) -> FastSession:
    times = np.cumsum(rng.uniform(0.5, 3.0, 80))
    trace = Trace(np.concatenate([[0.0], times]), rng.uniform(0.2e6, 6e6, 81))
    return FastSession(trace, video, preset("realistic"), start_idx=int(rng.integers(1, 60)))


@pytest.mark.parametrize("make", [robust_mpc, fast_mpc, lambda: MPC(horizon=3, smoothness_weight=2.5)])
def test_batched_choices_equal_each_policys_own_select(make) -> None:
    rng = np.random.default_rng(7)
    ladders = [[0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6], [0.5e6, 1e6, 2e6]]
    videos = [Video(np.array(ladders[i % 2]), 4.0, rng.uniform(0.5, 1.5, (30 + 7 * i, len(ladders[i % 2])))
                    * np.array(ladders[i % 2]) * 4.0) for i in range(40)]
    sessions = [_session(rng, v) for v in videos]
    alone = [make() for _ in sessions]  # each plays its own session, choices from the exhaustive search
    batched = [make() for _ in sessions]  # the same sessions' decisions taken by MPCBatch
    single = [make() for _ in sessions]  # and by each policy's own select
    mirror = [FastSession(s.trace, s.video, s.config, start_idx=s.ptr) for s in sessions]  # twins, same steps
    planner = MPCBatch()
    n_decisions, levels_seen = 0, set()
    while any(not s.is_done for s in sessions):
        live = [i for i, s in enumerate(sessions) if not s.is_done]
        own = [_exhaustive(alone[i], sessions[i].context()) for i in live]
        together = planner.select_many([batched[i] for i in live], [mirror[i].context() for i in live])
        assert together == own
        assert [single[i].select(mirror[i].context()) for i in live] == own
        for i, q in zip(live, own):
            sessions[i].step(q)
            mirror[i].step(q)
        n_decisions += len(live)
        levels_seen |= set(own)
    assert n_decisions > 1000 and len(levels_seen) >= 3  # whole sessions, and the choices vary


def test_exact_ties_go_to_the_last_enumerated_sequence_as_in_the_exhaustive_search() -> None:
    # One chunk left after a 2 Mbit/s chunk on a fast link: level 1 (2 - 0) and level 2 (3 - |3 - 2|) tie at
    # exactly 2.0; the exhaustive search takes the last enumerated, level 2, and so must
    # the compiled search, alone and batched.
    video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=2)
    trace = Trace(np.array([0.0, 1e5]), np.array([500e6, 500e6]))
    session = FastSession(trace, video, preset("realistic"))
    policy, twin, reference = robust_mpc(), robust_mpc(), robust_mpc()
    session.step(1)
    context = session.context()
    assert MPCBatch().select_many([twin], [context]) == [policy.select(context)] == [_exhaustive(reference, context)]
    assert _exhaustive(robust_mpc(), context) == 2


@pytest.mark.parametrize("horizon", [1, 3, 5])
def test_the_pruned_search_finds_the_exhaustive_searchs_choice_on_random_states(horizon: int) -> None:
    # States from trickling to abundant throughput, empty to deep buffers, VBR and CBR ladders (CBR makes many
    # sequences tie exactly on bitrate and smoothness): the compiled search, which skips subtrees, must choose
    # exactly what MPC.plan's exhaustive numpy search chooses, tie-breaking included.
    from simulator.context import PlayerContext

    rng = np.random.default_rng(horizon)
    ladder = np.array([0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6])
    videos = [Video.cbr(ladder.tolist(), chunk_duration_s=4.0, n_chunks=8),
              Video.cbr([1e6, 2e6, 3e6, 4e6], chunk_duration_s=2.0, n_chunks=8)]
    videos += [Video(ladder, 4.0, rng.uniform(0.3, 1.7, (8, 6)) * ladder * 4.0) for _ in range(4)]
    policy, planner = MPC(horizon=horizon), MPCBatch()
    chosen = set()
    for trial in range(1200):
        video = videos[trial % len(videos)]
        context = PlayerContext(video, (), buffer_s=float(rng.choice([0.0, rng.uniform(0, 8), rng.uniform(0, 60)])))
        prediction = float(np.exp(rng.uniform(np.log(0.05e6), np.log(60e6))))
        last = int(rng.integers(video.n_levels))
        key = search_shape(policy, video, horizon)
        batched = planner._first_levels(key, [context], np.array([prediction]), np.array([last]))
        exhaustive = int(policy.plan(context, horizon, prediction, last)[0])
        assert int(batched[0]) == exhaustive, (trial, context.buffer_s, prediction, last)
        chosen.add(exhaustive)
    assert len(chosen) >= 3  # the states span choices

