"""The vectors an export ships for re-implementations of the policy: observations from real sessions of the
policy and random ones (:func:`vector_observations`) with the SB3 policy's outputs (:func:`test_vectors`), and
whole sessions with the observation before every chunk, for re-implemented encoders (:func:`encoder_vectors`).
Written by :func:`abr.training.export.export_policy`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from abr.common.inputs import envivio_cbr_video
from abr.errors import ConfigError
from agents.rl import RLPolicy, policy_logits
from simulator import observation as obs_encoding
from simulator.config import SimConfig, preset
from simulator.context import PlayerContext
from simulator.rollout import run_session
from traces.synthetic import generate_trace_set
from traces.types import Trace, Video

#: Largest allowed difference of an action probability between the SB3 policy and a re-implementation.
TOLERANCE = 1e-5
_RANDOM_OBS_HIGH = 2.0  # random test observations are uniform in [0, 2): past typical normalised values


def session_observations(policy: RLPolicy, traces: Sequence[Trace], video: Video,
                         sim_config: SimConfig) -> npt.NDArray[np.float32]:
    """The observations ``policy`` sees while playing every trace (one per decision), stacked."""
    seen: list[npt.NDArray[np.float32]] = []

    class _Recorder:
        name = policy.name

        def reset(self, rng: np.random.Generator | None = None) -> None:
            policy.reset(rng)

        def select(self, context: PlayerContext) -> int:
            seen.append(obs_encoding.encode_observation(context, policy.history_len, policy.encoder))
            return policy.select(context)

    for trace in traces:
        run_session(_Recorder(), trace, video, sim_config)
    return np.stack(seen)


def vector_observations(policy: RLPolicy, *, traces: Sequence[Trace] | None = None, video: Video | None = None,
                      n_session: int = 64, n_random: int = 32, seed: int = 0) -> npt.NDArray[np.float32]:
    """Test observations: ``n_session`` taken evenly from real sessions, one all-zero, ``n_random`` random.

    Sessions play ``traces`` (default: 4 seeded synthetic traces) with ``video`` (default: the CBR Envivio
    ladder) on the ``pensieve`` preset. Random observations are uniform in [0, 2) in every cell, except rows
    the policy's encoder bounds, which cover their whole range (``abr-6row-v2``: row 2 in [0, 1], row 3 in
    [0, DOWNLOAD_TIME_CLIP]).
    """
    video = video if video is not None else envivio_cbr_video()
    if video.n_levels != policy.n_levels:
        raise ConfigError(f"video {video.name!r} has {video.n_levels} levels but the policy was trained for "
                          f"{policy.n_levels}; give a video with the model's ladder")
    traces = list(traces) if traces is not None else generate_trace_set(seed, 4)
    shape = tuple(policy.layout["shape"])
    parts = [np.zeros((1, *shape), dtype=np.float32)]
    if n_session > 0:
        played = session_observations(policy, traces, video, preset("pensieve"))
        picks = np.unique(np.linspace(0, len(played) - 1, num=min(n_session, len(played))).round().astype(int))
        parts.insert(0, played[picks])
    if n_random > 0:
        rng = np.random.default_rng(seed)
        high = _random_obs_high(policy.encoder, shape)
        parts.append((rng.uniform(0.0, 1.0, size=(n_random, *shape)) * high).astype(np.float32))
    return np.concatenate(parts)


def _random_obs_high(encoder: str, shape: tuple[int, ...]) -> npt.NDArray[np.float64]:
    """Upper bound of each cell of the random test observations (``[N_ROWS, 1]``, broadcast over columns)."""
    high = np.full((shape[0], 1), _RANDOM_OBS_HIGH)
    if encoder == obs_encoding.ENCODER_V2:
        high[2] = 1.0  # the clipped log2 ratio
        high[3] = obs_encoding.DOWNLOAD_TIME_CLIP
    return high


def video_json(video: Video) -> dict[str, Any]:
    """A video as the player plug-in reads it: ladder (bit/s), chunk duration (s), chunk count, sizes (bits)."""
    return {"name": video.name, "bitrates_bps": video.bitrates_bps.tolist(), "chunk_duration_s": video.chunk_duration_s,
            "n_chunks": video.n_chunks, "sizes_bits": video.chunk_sizes_bits.tolist()}


def encoder_vectors(policy: RLPolicy, *, traces: Sequence[Trace] | None = None, video: Video | None = None,
                    seed: int = 0, n_traces: int = 2) -> dict[str, Any]:
    """Whole sessions of ``policy`` (``realistic`` preset) with the observation before every chunk.

    Each session lists its chunk outcomes (every :class:`~simulator.records.ChunkOutcome` field) and
    ``observations[k]``, the encoding of the first ``k`` outcomes (the buffer of a past chunk is its
    ``buffer_s``: the level after its download and idle time).
    """
    video = video if video is not None else envivio_cbr_video()
    traces = list(traces)[:n_traces] if traces is not None else generate_trace_set(seed, n_traces)
    config = preset("realistic")
    sessions = []
    for trace in traces:
        outcomes = run_session(policy, trace, video, config)
        observations = [obs_encoding.encode_observation(PlayerContext(video, tuple(outcomes[:k]), 0.0),
                                                        policy.history_len, policy.encoder).astype(np.float64).tolist()
                        for k in range(len(outcomes) + 1)]
        sessions.append({"trace": trace.name, "outcomes": [o._asdict() for o in outcomes],
                         "observations": observations})
    return {"encoder": policy.encoder, "history_len": policy.history_len, "video": video_json(video),
            "sessions": sessions}


def test_vectors(policy: RLPolicy, observations: npt.NDArray[np.float32]) -> dict[str, Any]:
    import torch

    with torch.no_grad():
        logits = policy_logits(policy.model.policy, torch.as_tensor(observations)).numpy().astype(np.float64)
    probs = policy.action_probabilities(observations)
    return {
        "tolerance": TOLERANCE,
        "shape": list(observations.shape[1:]),
        "observations": observations.astype(np.float64).tolist(),
        "logits": logits.tolist(),
        "probs": probs.tolist(),
        "greedy_actions": np.argmax(probs, axis=1).tolist(),
    }
