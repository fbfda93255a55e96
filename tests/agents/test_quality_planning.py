"""Planners under the perceptual QoE: RobustMPC, predictor-mpc and the offline optimum choose by each chunk's SSIM,
not bitrate.

The hand-built video has two levels whose quality order flips halfway: level 1 (2 Mbit/s) is the better picture
on chunks 0-4 (25 dB against 20 dB) and the worse on chunks 5-9 (8 dB against 20 dB: a scene its bitrate cannot
carry). On a fast link every bitrate planner stays on level 1; under ``QoEWeights(kind="ssim")`` they must drop to
level 0 for the second half.
"""

from __future__ import annotations

import numpy as np
import pytest

from agents.base import QoEAwarePolicy
from agents.mpc import MPC, MPCBatch
from agents.optimal import OfflineOptimal, solve_offline_optimum
from agents.soda import SodaPolicy
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.metrics import session_metrics
from simulator.qoe import QoEWeights
from simulator.rollout import run_session
from traces.types import Trace, Video

SSIM = QoEWeights(kind="ssim")
N_CHUNKS = 10
#: The forced first chunk's download (8 Mbit at 95% of 10 Mbit/s, plus the 80 ms RTT), counted as a stall by the
#: pensieve preset: 100 x 0.9221 s = 92.2 off every plan's QoE under ssim.
STARTUP_S = 8e6 / (10e6 * 0.95) + 0.08
QUALITY = np.column_stack([np.full(N_CHUNKS, 20.0), np.where(np.arange(N_CHUNKS) < 5, 25.0, 8.0)])


def _video() -> Video:
    base = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=N_CHUNKS, name="flip")
    return Video(base.bitrates_bps, 4.0, base.chunk_sizes_bits, name="flip", ssim_db=QUALITY)


def _fast_trace() -> Trace:
    return Trace(np.arange(0.0, 200.0, 1.0), np.full(200, 10e6), name="fast")


def test_mpc_plans_with_quality_under_the_ssim_qoe() -> None:
    video, trace, config = _video(), _fast_trace(), preset("pensieve")
    assert isinstance(MPC(), QoEAwarePolicy)
    by_bitrate = [o.quality_idx for o in run_session(MPC(), trace, video, config, qoe=QoEWeights())]
    assert by_bitrate == [1] * N_CHUNKS  # the forced first chunk is level 1; then the top bitrate throughout
    policy = MPC()
    by_quality = [o.quality_idx for o in run_session(policy, trace, video, config, qoe=SSIM)]
    assert policy.plans_quality
    assert by_quality == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
    metrics = {name: session_metrics(run_session(MPC(), trace, video, config, qoe=w), video, SSIM,
                                     chunk_duration_s=4.0).qoe for name, w in (("bitrate", QoEWeights()),
                                                                               ("ssim", SSIM))}
    # 5 x 25 + 5 x 20 - |20 - 25| = 220 against 5 x 25 + 5 x 8 - |8 - 25| = 148, less the startup stall.
    assert metrics == {"bitrate": pytest.approx(148.0 - 100 * STARTUP_S, abs=1e-9),
                       "ssim": pytest.approx(220.0 - 100 * STARTUP_S, abs=1e-9)}


def test_mpc_batch_searches_quality_planners_alone_with_the_same_choice() -> None:
    video = _video()
    history = run_session(MPC(), _fast_trace(), video, preset("pensieve"), qoe=SSIM)[:5]  # next: chunk 5
    context = PlayerContext(video, tuple(history), buffer_s=history[-1].buffer_s)
    alone, batched = MPC(), MPC()
    for p in (alone, batched):
        p.use_qoe(SSIM)
        for k in range(1, 5):  # feed the error history as a session would
            p.predict_bps(PlayerContext(video, tuple(history[:k]), buffer_s=history[k - 1].buffer_s))
    assert MPCBatch().select_many([batched], [context]) == [alone.select(context)] == [0]


def test_offline_optimum_plans_with_quality_and_replays_its_claim() -> None:
    video, trace, config = _video(), _fast_trace(), preset("pensieve")
    linear = solve_offline_optimum(trace, video, config, QoEWeights())
    assert linear.qualities == (1,) * N_CHUNKS
    plan = solve_offline_optimum(trace, video, config, SSIM)
    assert plan.qualities == (1, 1, 1, 1, 1, 0, 0, 0, 0, 0)
    assert plan.rebuffer_s == pytest.approx(STARTUP_S, abs=1e-12)
    assert plan.qoe_sum == pytest.approx(220.0 - 100 * STARTUP_S, abs=1e-9) and plan.gap == pytest.approx(0, abs=1e-9)
    policy = OfflineOptimal()
    outcomes = run_session(policy, trace, video, config, qoe=SSIM)
    measured = session_metrics(outcomes, video, SSIM, chunk_duration_s=4.0)
    assert tuple(o.quality_idx for o in outcomes) == plan.qualities
    assert abs(measured.qoe - plan.qoe_sum) <= 1e-9


def test_optimum_under_ssim_weighs_stalls_at_100_per_second() -> None:
    # A slow link (1.2 Mbit/s): level 1 (8 Mbit chunks) stalls. Under ssim a second of stall costs 100 dB-units,
    # so the optimum keeps to level 0 after the forced first chunk even where level 1 looks better (chunks 1-4).
    video, config = _video(), preset("pensieve")
    slow = Trace(np.arange(0.0, 400.0, 1.0), np.full(400, 1.2e6), name="slow")
    plan = solve_offline_optimum(slow, video, config, SSIM)
    assert plan.qualities[0] == 1 and set(plan.qualities[1:]) == {0}
    assert plan.rebuffer_s > 0  # the forced first chunk stalls (startup counts as rebuffering in this preset)


def test_soda_takes_quality_from_the_qoe_hook() -> None:
    video, trace, config = _video(), _fast_trace(), preset("pensieve")
    history = tuple(run_session(MPC(), trace, video, config)[:5])  # next: chunk 5, where level 1 is the worse
    context = PlayerContext(video, history, buffer_s=history[-1].buffer_s)
    policy = SodaPolicy()
    assert isinstance(policy, QoEAwarePolicy)
    policy.use_qoe(QoEWeights())
    by_bitrate = policy.level_utilities(context, 2)
    assert by_bitrate[0, 1] > by_bitrate[0, 0]  # the ladder: level 1 is worth more
    run_session(policy, trace, video, config, qoe=SSIM)  # the rollout loop calls use_qoe
    by_quality = policy.level_utilities(context, 2)
    assert by_quality[0, 0] > by_quality[0, 1]  # chunk 5: 20 dB at level 0 against 8 dB at level 1


def test_predictor_mpc_plans_with_quality_under_the_ssim_qoe() -> None:
    from agents.predictor_mpc import predictor_mpc  # the shipped predictor

    video, trace, config = _video(), _fast_trace(), preset("pensieve")
    by_bitrate = [o.quality_idx for o in run_session(predictor_mpc(), trace, video, config, qoe=QoEWeights())]
    assert by_bitrate == [1] * N_CHUNKS
    by_quality = [o.quality_idx for o in run_session(predictor_mpc(), trace, video, config, qoe=SSIM)]
    assert by_quality == [1, 1, 1, 1, 1, 0, 0, 0, 0, 0]
