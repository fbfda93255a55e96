"""MPCBatch: the searches of many RobustMPC / FastMPC sessions done together choose what each policy's own
``select`` chooses, decision for decision, over whole sessions with varied ladders, buffers and ties."""

from __future__ import annotations

import numpy as np
import pytest

from agents.mpc import MPC, MPCBatch, fast_mpc, robust_mpc
from simulator.config import preset
from simulator.fast_session import FastSession
from traces.types import Trace, Video


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
    alone = [make() for _ in sessions]  # each plays its own session with select
    batched = [make() for _ in sessions]  # the same sessions' decisions taken by MPCBatch
    mirror = [FastSession(s.trace, s.video, s.config, start_idx=s.ptr) for s in sessions]  # twins, same steps
    planner = MPCBatch()
    n_decisions, levels_seen = 0, set()
    while any(not s.is_done for s in sessions):
        live = [i for i, s in enumerate(sessions) if not s.is_done]
        own = [alone[i].select(sessions[i].context()) for i in live]
        together = planner.select_many([batched[i] for i in live], [mirror[i].context() for i in live])
        assert together == own
        for i, q in zip(live, own):
            sessions[i].step(q)
            mirror[i].step(q)
        n_decisions += len(live)
        levels_seen |= set(own)
    assert n_decisions > 1000 and len(levels_seen) >= 3  # whole sessions, and the choices vary


def test_exact_ties_go_to_the_last_enumerated_sequence_as_in_select() -> None:
    # One chunk left after a 2 Mbit/s chunk on a fast link: level 1 (2 - 0) and level 2 (3 - |3 - 2|) tie at
    # exactly 2.0; select takes the last enumerated, level 2, and so must the batch.
    video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=2)
    trace = Trace(np.array([0.0, 1e5]), np.array([500e6, 500e6]))
    session = FastSession(trace, video, preset("realistic"))
    policy, twin = robust_mpc(), robust_mpc()
    policy.reset()
    session.step(1)
    assert MPCBatch().select_many([twin], [session.context()]) == [policy.select(session.context())] == [2]
