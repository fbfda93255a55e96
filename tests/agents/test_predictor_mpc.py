"""predictor-mpc: hand-derived stochastic-MPC decisions, the weights file's checks, the shipped predictor."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from agents.errors import PolicyLoadError
from agents.predictor_mpc import SHIPPED_PREDICTOR, PredictorMPC, expected_qoe
from agents.provenance import seen_families, seen_fingerprints
from agents.registry import agent_model_file, agent_names, make_agent
from agents.ttp import NUM_FEATURES, TransmissionTimePredictor, feature_rows, history_features, metadata_path
from simulator.config import preset
from simulator.context import PlayerContext
from simulator.errors import ConfigError
from simulator.qoe import QoEWeights
from simulator.records import ChunkOutcome
from simulator.rollout import run_session
from traces.fingerprint import trace_fingerprint
from traces.readers import read_trace_dir
from traces.types import Trace, Video

LADDER_BPS = [1e6, 3e6]  # linear QoE utilities 1 and 3
TIMES_S = np.array([1.0, 5.0])  # the stub's two bins
PENALTY = 4.3


class _Stub:
    """A predictor with a fixed distribution ``[step, level, bin]`` over the two bins ``TIMES_S``."""

    def __init__(self, probs: np.ndarray) -> None:
        self.probs = probs
        self.bin_values_s = TIMES_S

    def distribution(self, context: PlayerContext, horizon: int) -> np.ndarray:
        return self.probs[:horizon]


def _context(buffer_s: float, last_idx: int, n_chunks: int) -> PlayerContext:
    video = Video.cbr(LADDER_BPS, chunk_duration_s=4.0, n_chunks=n_chunks)
    first = ChunkOutcome(0, last_idx, LADDER_BPS[last_idx], 4 * LADDER_BPS[last_idx], 0.0, 1.0, 1.0,
                         4 * LADDER_BPS[last_idx], 0.0, 0.0, buffer_s, 0.0)
    return PlayerContext(video, (first,), buffer_s)


def test_one_step_decisions_by_hand() -> None:
    # Buffer 4 s, previous level 1 (utility 3). Level 0: gain 1 - |1 - 3| = -1, surely 1 s, no stall: -1.
    # Level 1: gain 3; a 9-s download (probability p) stalls 5 s: 3 - 4.3 x 5 p.
    times = np.array([1.0, 9.0])
    risky = np.array([[[1.0, 0.0], [0.5, 0.5]]])  # level 1: 9 s half the time: stall 5 s -> 3 - 4.3 x 2.5 = -7.75
    values = expected_qoe(risky, times, buffer_s=4.0, chunk_duration_s=4.0, utilities=np.array([1.0, 3.0]),
                          last_idx=1, rebuffer_penalty=PENALTY, smoothness_weight=1.0)
    assert values == pytest.approx([-1.0, -7.75])
    safe = np.array([[[1.0, 0.0], [0.9, 0.1]]])  # 3 - 4.3 x 0.5 = 0.85 > -1
    values = expected_qoe(safe, times, buffer_s=4.0, chunk_duration_s=4.0, utilities=np.array([1.0, 3.0]),
                          last_idx=1, rebuffer_penalty=PENALTY, smoothness_weight=1.0)
    assert values == pytest.approx([-1.0, 0.85])


def _two_step(p_slow: float) -> np.ndarray:
    # Step 0: level 0 surely 1 s; level 1 1 s or 5 s (probability p_slow). Step 1: level 0 1 s, level 1 5 s.
    return np.array([[[1.0, 0.0], [1.0 - p_slow, p_slow]], [[1.0, 0.0], [0.0, 1.0]]])


def test_two_step_dynamic_programme_by_hand() -> None:
    # Buffer 2 s, previous level 0, chunks of 4 s, penalty 4.3, smoothness 1.
    # First level 0: +1, buffer 2 - 1 + 4 = 5; then level 0 (+1) or level 1 (3 - 2, 5 s from 5 s: no stall) = 1.
    #   Total 2.
    # First level 1: 3 - 2 = +1; then
    #   fast (1 s): buffer 5, previous 1: level 1 gives 3 (no stall), level 0 gives 1 - 2 = -1 -> 3;
    #   slow (5 s): stall 3 s (-12.9), buffer 4, previous 1: level 0 gives -1, level 1 3 - 4.3 x 1 = -1.3 -> -1.
    #   p_slow 0.5: 1 + 0.5 x 3 + 0.5 x (-13.9) = -4.45;  p_slow 0.1: 1 + 0.9 x 3 + 0.1 x (-13.9) = 2.31.
    for p_slow, expected, choice in ((0.5, [2.0, -4.45], 0), (0.1, [2.0, 2.31], 1)):
        policy = PredictorMPC(_Stub(_two_step(p_slow)), horizon=5)
        context = _context(buffer_s=2.0, last_idx=0, n_chunks=3)  # two chunks left: a horizon of 2
        assert policy.expected_values(context) == pytest.approx(expected)
        assert policy.select(context) == choice


def test_the_buffer_cap_bounds_the_next_buffer() -> None:
    # The p_slow = 0.5 case with a 3.5 s cap. First level 0: buffer min(5, 3.5); then level 0 (+1) beats level 1
    # (1 - 4.3 x 1.5): total 2, as without the cap. First level 1 (+1): fast -> buffer 3.5, previous 1: level 0
    # gives -1, level 1 3 - 4.3 x 1.5 = -3.45 -> -1; slow -> stall 3 s (-12.9), buffer 3.5: again -1.
    # 1 + 0.5 x (-1) + 0.5 x (-13.9) = -6.45 (-4.45 without the cap).
    values = expected_qoe(_two_step(0.5), TIMES_S, buffer_s=2.0, chunk_duration_s=4.0, utilities=np.array([1.0, 3.0]),
                          last_idx=0, rebuffer_penalty=PENALTY, smoothness_weight=1.0, max_buffer_s=3.5)
    assert values == pytest.approx([2.0, -6.45])


def test_no_history_plays_the_lowest_level() -> None:
    policy = PredictorMPC(_Stub(_two_step(0.0)))
    video = Video.cbr(LADDER_BPS, chunk_duration_s=4.0, n_chunks=3)
    assert policy.select(PlayerContext(video, (), 0.0)) == 0
    assert policy.select(_context(buffer_s=20.0, last_idx=1, n_chunks=3)) == 1


# ------------------------------------------------------------------------------------------ the weights file


def _copy_shipped(tmp_path: Path) -> Path:
    target = tmp_path / "model.npz"
    shutil.copy(SHIPPED_PREDICTOR, target)
    shutil.copy(metadata_path(SHIPPED_PREDICTOR), metadata_path(target))
    return target


def test_corrupt_or_incomplete_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    target = _copy_shipped(tmp_path)
    TransmissionTimePredictor.from_file(target)  # the copy loads
    target.write_bytes(b"not a zip file at all")
    with pytest.raises(PolicyLoadError, match=r"model\.npz.*not a readable \.npz"):
        TransmissionTimePredictor.from_file(target)
    good = _copy_shipped(tmp_path)
    arrays = dict(np.load(good))
    np.savez(good, **{**arrays, "w1": arrays["w1"][:3]})
    with pytest.raises(PolicyLoadError, match=r"model\.npz: layer 1 has the wrong shape"):
        TransmissionTimePredictor.from_file(good)
    np.savez(good, **{**arrays, "b0": np.full_like(arrays["b0"], np.nan)})
    with pytest.raises(PolicyLoadError, match=r"model\.npz: array b0 holds NaN"):
        TransmissionTimePredictor.from_file(good)
    np.savez(good, **{k: v for k, v in arrays.items() if k != "bin_values_s"})
    with pytest.raises(PolicyLoadError, match=r"missing arrays bin_values_s"):
        TransmissionTimePredictor.from_file(good)
    np.savez(good, **arrays)
    metadata_path(good).write_text("{", encoding="utf-8")
    with pytest.raises(PolicyLoadError, match=r"model\.json: not readable JSON"):
        TransmissionTimePredictor.from_file(good)
    metadata_path(good).unlink()
    with pytest.raises(PolicyLoadError, match=r"model\.json: no such file"):
        make_agent(f"predictor-mpc:{good}")


def test_shipped_predictor_plays_sessions_and_follows_the_link(data_dir: Path) -> None:
    assert "predictor-mpc" in agent_names()
    # The evaluation journal hashes this file: a retrained predictor is not resumed as the old one.
    assert agent_model_file("predictor-mpc") == SHIPPED_PREDICTOR
    assert agent_model_file("predictor-mpc:runs/p/predictor.npz") == Path("runs/p/predictor.npz")
    assert SHIPPED_PREDICTOR.stat().st_size < 1_000_000
    video = Video.cbr([300e3, 750e3, 1200e3, 1850e3, 2850e3, 4300e3], chunk_duration_s=4.0, n_chunks=48)
    config = preset("pensieve")
    fast = run_session(make_agent("predictor-mpc"), Trace(np.array([0.0, 2000.0]), np.array([50e6, 50e6])),
                       video, config)
    slow = run_session(make_agent("predictor-mpc"), Trace(np.array([0.0, 2000.0]), np.array([0.3e6, 0.3e6])),
                       video, config)
    assert {o.quality_idx for o in fast[-20:]} == {5}
    assert {o.quality_idx for o in slow[1:]} == {0}
    trace = read_trace_dir(data_dir / "traces" / "norway" / "test")[0]
    levels = [o.quality_idx for o in run_session(make_agent("predictor-mpc"), trace, video, config)]
    assert len(levels) == 48 and len(set(levels)) > 1  # it adapts on a real trace


def test_shipped_predictor_never_saw_held_out_families_or_test_splits(data_dir: Path) -> None:
    model = TransmissionTimePredictor.from_file(SHIPPED_PREDICTOR)
    provenance = model.metadata["provenance"]
    assert seen_families(provenance) <= {"fcc", "norway", "oboe", "belgium4g", "mahimahi_cellular"}
    assert all("test" not in spec for part in ("train", "validation") for spec in provenance[part]["trace_sets"])
    seen = seen_fingerprints(provenance)
    assert len(seen) > 400  # every training and validation trace is recorded by content
    # genet_benchmark is left out: it is a comparison set that shares a trace with fcc/train by content.
    folders = [f"{family}/{split}" for family in ("lumos5g", "nyu_lte", "ucc5g") for split in ("train", "test")]
    folders += [f"{family}/test" for family in ("fcc", "norway", "oboe", "belgium4g")]
    forbidden = {trace_fingerprint(t) for folder in folders for t in read_trace_dir(data_dir / "traces" / folder)}
    assert len(forbidden) > 400
    assert not seen & forbidden


def test_numpy_forward_pass_by_hand() -> None:
    # One hidden layer of 2 ReLU units; standardisation by mean 0 and std 1.
    w0 = np.zeros((NUM_FEATURES, 2))
    w0[16, 0], w0[16, 1] = 1.0, -1.0  # the candidate's log2 size in Mbit
    w1 = np.array([[1.0, 0.0], [0.0, 1.0]])
    model = TransmissionTimePredictor(((w0, np.zeros(2)), (w1, np.zeros(2))), np.zeros(NUM_FEATURES),
                                      np.ones(NUM_FEATURES), np.array([2.0]), np.array([1.0, 4.0]))
    rows = feature_rows(history_features([1e6], [1.0]), np.array([[4e6, 0.25e6]]))  # log2 sizes 2 and -2
    probs = model.probabilities(rows)
    # Row 1: hidden (2, 0) -> logits (2, 0); row 2: hidden (0, 2) -> logits (0, 2).
    e = np.exp(2.0)
    assert probs == pytest.approx(np.array([[e / (e + 1), 1 / (e + 1)], [1 / (e + 1), e / (e + 1)]]))
    assert json.loads(metadata_path(SHIPPED_PREDICTOR).read_text())["format"] == "abr-ttp-v1"


def test_per_chunk_utilities_equal_to_the_ladders_give_the_same_values() -> None:
    rng = np.random.default_rng(3)
    probs = rng.dirichlet(np.ones(2), size=(3, 2))  # [step, level, bin]
    per_level = np.array([1.0, 3.0])
    kwargs = {"buffer_s": 6.0, "chunk_duration_s": 4.0, "last_idx": 1, "rebuffer_penalty": PENALTY,
              "smoothness_weight": 1.0}
    flat = expected_qoe(probs, TIMES_S, utilities=per_level, **kwargs)
    rows = expected_qoe(probs, TIMES_S, utilities=np.tile(per_level, (4, 1)), **kwargs)
    assert np.allclose(flat, rows)
    with pytest.raises(ValueError, match=r"give \[levels\] or \[horizon \+ 1, levels\] = \[4, 2\]"):
        expected_qoe(probs, TIMES_S, utilities=np.ones((3, 2)), **kwargs)


def test_per_chunk_utilities_by_hand() -> None:
    # One step, both levels surely 1 s from a 4-s buffer (no stall). The chunk just played was at level 1 with
    # quality 10; the next chunk's qualities are 12 (level 0) and 8 (level 1):
    # level 0: 12 - |12 - 10| = 10; level 1: 8 - |8 - 10| = 6. Per level (utilities 1, 3) level 1 would win.
    probs = np.array([[[1.0, 0.0], [1.0, 0.0]]])
    rows = np.array([[5.0, 10.0], [12.0, 8.0]])
    values = expected_qoe(probs, TIMES_S, buffer_s=4.0, chunk_duration_s=4.0, utilities=rows, last_idx=1,
                          rebuffer_penalty=100.0, smoothness_weight=1.0)
    assert values.tolist() == [10.0, 6.0]


def test_under_the_ssim_qoe_the_policy_plans_with_each_chunks_quality() -> None:
    # Level 1 downloads surely in 1 s, so by bitrate it is always chosen; its SSIM is lower on chunks 1 and 2.
    probs = np.array([[[1.0, 0.0], [1.0, 0.0]]] * 5)
    quality = np.array([[10.0, 10.0], [14.0, 9.0], [14.0, 9.0], [10.0, 11.0]])
    video = Video(np.array(LADDER_BPS), 4.0, np.outer(np.ones(4), 4 * np.array(LADDER_BPS)), name="q",
                  ssim_db=quality)
    first = ChunkOutcome(0, 0, 1e6, 4e6, 0.0, 1.0, 1.0, 4e6, 0.0, 0.0, 8.0, 0.0)
    context = PlayerContext(video, (first,), 8.0)
    policy = PredictorMPC(_Stub(probs), horizon=2)
    assert policy.select(context) == 1  # linear QoE: utility 3 > 1, no stall
    policy.use_qoe(QoEWeights(kind="ssim"))
    # ssim: plan chunks 1-2 from level 0 (quality 10): (0, 0) = 14 - 4 + 14 - 0 = 24 beats (1, 1) = 9 - 1 + 9 = 17
    assert policy.select(context) == 0
    assert policy.expected_values(context).tolist() == [24.0, 17.0]
    policy.use_qoe(QoEWeights(kind="ssim"))
    no_quality = PlayerContext(Video.cbr(LADDER_BPS, chunk_duration_s=4.0, n_chunks=4), (first,), 8.0)
    with pytest.raises(ConfigError, match="needs the per-chunk quality"):
        policy.select(no_quality)
