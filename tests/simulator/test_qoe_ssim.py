"""The perceptual QoE (``kind="ssim"``): hand-computed terms, the refusal of size tables without quality, and the
per-chunk utilities in the SimPy env's reward and the fast core."""

from __future__ import annotations

import numpy as np
import pytest

from simulator.config import preset
from simulator.des import Session
from simulator.env import AbrEnv
from simulator.errors import ConfigError
from simulator.fast import BatchedSessions
from simulator.metrics import session_metrics
from simulator.qoe import SSIM_REBUFFER_PENALTY_PER_S, QoEWeights, chunk_qoe, qoe_terms
from simulator.records import ChunkOutcome
from traces.types import Trace, Video

SSIM = QoEWeights(kind="ssim")
#: Per-chunk SSIM dB of a 3-chunk, 2-level video: level 1 is worse than level 0 on chunk 2 (complex scene).
QUALITY = np.array([[10.0, 14.0], [11.0, 17.0], [12.0, 9.0]])


def _video(quality: np.ndarray | None = QUALITY) -> Video:
    base = Video.cbr([1e6, 2e6], chunk_duration_s=4.0, n_chunks=3, name="tiny")
    return Video(base.bitrates_bps, 4.0, base.chunk_sizes_bits, name="tiny", ssim_db=quality)


def _outcome(chunk_idx: int, quality_idx: int, rebuffer_s: float) -> ChunkOutcome:
    return ChunkOutcome(chunk_idx, quality_idx, (1e6, 2e6)[quality_idx], 4e6, 0.0, 1.0, 1.0, 4e6, rebuffer_s, 0.0,
                        4.0, 0.0)


def test_weights_are_fugus() -> None:
    assert SSIM.rebuffer_penalty == SSIM_REBUFFER_PENALTY_PER_S == 100.0 and SSIM.smoothness_weight == 1.0
    assert SSIM.is_per_chunk and not QoEWeights().is_per_chunk


def test_ssim_qoe_by_hand() -> None:
    # Levels 1, 1, 0; 0.5 s stall on chunk 1. By hand (lambda = 1, mu = 100):
    # chunk 0: 14 - 0 - 0 = 14; chunk 1: 17 - 100*0.5 - |17-14| = -36; chunk 2: 12 - 0 - |12-17| = 7.
    outcomes = [_outcome(0, 1, 0.0), _outcome(1, 1, 0.5), _outcome(2, 0, 0.0)]
    terms = qoe_terms(outcomes, _video(), SSIM)
    assert terms.utility.tolist() == [14.0, 17.0, 12.0]
    assert terms.rebuffer_penalty.tolist() == [0.0, 50.0, 0.0]
    assert terms.smoothness_penalty.tolist() == [0.0, 3.0, 5.0]
    assert terms.qoe.tolist() == [14.0, -36.0, 7.0]
    metrics = session_metrics(outcomes, _video(), SSIM, chunk_duration_s=4.0)
    assert metrics.qoe == -15.0 and metrics.qoe_excl_first == -29.0
    # The step-wise form gives the same chunk 2 terms from the rows of the table.
    assert chunk_qoe(0, 1, 0.0, QUALITY[2], SSIM, previous_utilities=QUALITY[1]) == (12.0, 0.0, 5.0)


def test_a_size_table_without_quality_is_refused_by_ssim_only() -> None:
    bare = _video(None)
    with pytest.raises(ConfigError, match=r"needs the per-chunk quality .* of video 'tiny'.*abr player content"):
        SSIM.chunk_utilities(bare)
    with pytest.raises(ConfigError, match="abr player content"):
        AbrEnv(video=bare, qoe=SSIM)
    with pytest.raises(ConfigError, match="has no per-level utility"):
        qoe_terms([_outcome(0, 0, 0.0)], bare.bitrates_bps, SSIM)  # a ladder alone cannot give SSIM
    for kind in ("linear", "log"):
        weights = QoEWeights(kind=kind)
        assert weights.chunk_utilities(bare).tolist() == [weights.utilities(bare.bitrates_bps).tolist()] * 3
        AbrEnv(video=bare, qoe=weights)
    # The bitrate kinds ignore a quality table: same terms with the Video or its ladder.
    outcomes = [_outcome(0, 1, 0.0), _outcome(1, 0, 0.25)]
    assert (qoe_terms(outcomes, _video(), QoEWeights()).qoe.tolist()
            == qoe_terms(outcomes, _video().bitrates_bps, QoEWeights()).qoe.tolist() == [2.0, -1.075])


def _trace() -> Trace:
    times = np.arange(0.0, 60.0, 1.0)
    rates = np.where((times % 10) < 5, 3e6, 0.8e6)
    return Trace(times, rates, name="steps")


def test_env_reward_and_fast_core_use_per_chunk_utilities() -> None:
    quality = np.random.default_rng(7).uniform(5.0, 25.0, size=(8, 3))
    base = Video.cbr([0.5e6, 1e6, 2e6], chunk_duration_s=4.0, n_chunks=8, name="q8")
    video = Video(base.bitrates_bps, 4.0, base.chunk_sizes_bits, name="q8", ssim_db=quality)
    actions = [2, 0, 1, 2, 2, 0, 1]
    env = AbrEnv(traces=[_trace()], video=video, qoe=SSIM)
    _, info = env.reset(seed=0)
    total = info["first_chunk_qoe"]
    for a in actions:
        _, reward, terminated, _, step_info = env.step(a)
        total += reward
        assert step_info["rewards"]["utility"] == quality[step_info["chunk_idx"], a]
    assert terminated
    session = env._session
    assert session is not None
    want = session_metrics(session.outcomes, video, SSIM, chunk_duration_s=4.0).qoe
    assert total == pytest.approx(want, abs=1e-9)
    # The fast core against the SimPy core on the noise-free preset, same actions: the same per-chunk terms.
    config = preset("pensieve")
    reference = Session(_trace(), video, config)
    core = BatchedSessions([_trace()], video, config, 1, qoe=SSIM)
    core.reset(np.array([0]))
    fast_qoe = []
    for a in [1, *actions]:
        reference.step(a)
        batch = core.step(np.array([a]))
        assert batch.utility[0] == quality[int(batch.chunk_idx[0]), a]
        fast_qoe.append(float(batch.qoe[0]))
    want_terms = qoe_terms(reference.outcomes, video, SSIM).qoe
    assert np.allclose(fast_qoe, want_terms, rtol=1e-9, atol=1e-9)
    assert abs(float(np.sum(want_terms)) - float(np.sum(quality[np.arange(8), [1, *actions]]))) > 1e-6  # penalties
