"""Export for embedding: ONNX, JSON weights (numpy), SB3 agree on the test vectors; the encoder spec; errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")
onnxruntime = require_module("onnxruntime", extra="export")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from abr.cli.training import export_command  # noqa: E402
from abr.errors import PolicyExportError, PolicyLoadError  # noqa: E402
from abr.training.config import TrainConfig  # noqa: E402
from abr.training.export import FILES, TOLERANCE, encoder_spec, export_policy, verify_export  # noqa: E402
from abr.training.weights import numpy_logits, softmax  # noqa: E402
from agents.rl import RLPolicy  # noqa: E402
from simulator import observation as obs_encoding  # noqa: E402
from simulator.config import preset  # noqa: E402
from simulator.context import PlayerContext  # noqa: E402
from simulator.records import ChunkOutcome  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402
from traces.types import Video  # noqa: E402

from .abr_test_helpers import extreme_trace, train_tiny_model  # noqa: E402

BASE = TrainConfig(total_timesteps=512, n_envs=2, n_steps=128, batch_size=128, synthetic_traces=4,
                   val_synthetic_traces=2, eval_freq_steps=0, n_filters=8, hidden_sizes=(16, 16), tensorboard=False)
VARIANTS = {
    "pensieve": BASE,
    "pensieve-shared": dataclasses.replace(BASE, share_features=True),
    "mlp": dataclasses.replace(BASE, policy="mlp"),
    "pensieve-v2": BASE,
}
#: The observation encoder of each variant (default v1).
ENCODER_OF = {"pensieve-v2": obs_encoding.ENCODER_V2}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-models")
    return {name: train_tiny_model(config, root / name, ENCODER_OF.get(name, obs_encoding.ENCODER_V1))
            for name, config in VARIANTS.items()}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_onnx_numpy_and_sb3_agree_on_the_test_vectors(models: dict[str, Path], tmp_path: Path,
                                                      variant: str) -> None:
    result = export_policy(models[variant], tmp_path / "export", n_session=40, n_random=20)
    assert set(result.files) == set(FILES) and all(p.is_file() for p in result.files.values())
    check = result.check
    assert check.is_ok and check.n_vectors == 61
    assert check.max_abs_diff_numpy <= TOLERANCE and check.max_abs_diff_onnx is not None
    assert check.max_abs_diff_onnx <= TOLERANCE
    # Independently of verify_export: the three forms on the stored observations.
    vectors = json.loads(result.files["vectors"].read_text())
    obs = np.asarray(vectors["observations"], dtype=np.float32)
    assert obs.shape == (61, 6, 8) and not np.any(obs[40])  # 40 from sessions, one all-zero, 20 random
    sb3 = RLPolicy.from_file(models[variant]).action_probabilities(obs)
    weights = json.loads(result.files["weights"].read_text())
    numpy_probs = softmax(numpy_logits(weights, obs))
    session = onnxruntime.InferenceSession(str(result.files["onnx"]), providers=["CPUExecutionProvider"])
    logits, onnx_probs = session.run(["logits", "probs"], {"obs": obs})
    assert np.max(np.abs(numpy_probs - sb3)) <= TOLERANCE
    assert np.max(np.abs(onnx_probs - sb3)) <= TOLERANCE
    np.testing.assert_allclose(logits, vectors["logits"], atol=1e-4)
    assert vectors["greedy_actions"] == np.argmax(sb3, axis=1).tolist()
    assert weights["extractor"]["type"] == ("flatten" if variant == "mlp" else "pensieve")


def test_encoder_spec_describes_every_row() -> None:
    spec = encoder_spec(6, 8)
    assert spec["shape"] == [6, 8] and [r["row"] for r in spec["rows"]] == list(range(obs_encoding.N_ROWS))
    scales = {r["name"]: r["scale"] for r in spec["rows"]}
    assert scales == {"bitrate": "top_bitrate_bps", "buffer": obs_encoding.BUFFER_NORM_S,
                      "throughput": obs_encoding.THROUGHPUT_NORM_BPS,
                      "download_time": obs_encoding.DOWNLOAD_TIME_NORM_S,
                      "next_chunk_sizes": obs_encoding.CHUNK_SIZE_NORM_BITS, "chunks_remaining": "n_chunks"}
    assert encoder_spec(10, 8)["shape"] == [6, 10] and spec["encoder"] == "pensieve-6row-v1"


def test_encoder_spec_of_v2_carries_each_rows_transform_and_constants() -> None:
    spec = encoder_spec(6, 8, obs_encoding.ENCODER_V2)
    assert spec["encoder"] == "abr-6row-v2" and spec["shape"] == [6, 8]
    rows = {r["name"]: r for r in spec["rows"]}
    assert rows["throughput"]["transform"] == "log2_ratio_clip" and rows["throughput"]["scale"] == "top_bitrate_bps"
    assert (rows["throughput"]["low"], rows["throughput"]["high"]) == (-6.0, 4.0)
    assert rows["download_time"]["transform"] == "ratio_clip"
    assert (rows["download_time"]["scale"], rows["download_time"]["clip"]) == (10.0, 4.0)
    assert rows["next_chunk_sizes"]["scale"] == "top_chunk_bits"
    assert all(r["transform"] == "ratio" for r in spec["rows"] if r["row"] in (0, 1, 4, 5))
    assert all(r["transform"] == "ratio" for r in encoder_spec(6, 8)["rows"])
    with pytest.raises(ValueError, match="abr-6row-v3"):
        encoder_spec(6, 8, "abr-6row-v3")


def _encode_from_spec(spec: dict, video: Video, outcomes: list[ChunkOutcome]) -> np.ndarray:
    """A re-implementation of the encoder from ``spec`` alone, in plain Python floats (as encoder.js does)."""
    import math

    top = float(video.bitrates_bps[-1])
    scales = {"top_bitrate_bps": top, "top_chunk_bits": top * video.chunk_duration_s, "n_chunks": video.n_chunks}
    obs = np.zeros(spec["shape"], dtype=np.float32)
    h = spec["history_len"]
    past = outcomes[-h:] if outcomes else []
    for row in spec["rows"]:
        scale = scales.get(row["scale"], row["scale"])

        def f(q: float, row: dict = row, scale: float = scale) -> float:
            if row["transform"] == "ratio":
                return q / scale
            if row["transform"] == "ratio_clip":
                return min(q / scale, row["clip"])
            assert row["transform"] == "log2_ratio_clip"
            log = math.log2(q / scale) if q > 0 else -math.inf
            return min(max((log - row["low"]) / (row["high"] - row["low"]), 0.0), 1.0)

        if row["name"] == "next_chunk_sizes":
            if len(outcomes) < video.n_chunks:
                sizes = video.chunk_sizes_bits[len(outcomes)]
                obs[row["row"], : len(sizes)] = [f(float(s)) for s in sizes]
            continue
        get = {"bitrate": lambda o: o.bitrate_bps, "buffer": lambda o: o.buffer_s,
               "throughput": lambda o: o.throughput_bps, "download_time": lambda o: o.download_time_s,
               "chunks_remaining": lambda o: video.n_chunks - o.chunk_idx - 1}[row["name"]]
        for j, o in enumerate(past):
            obs[row["row"], h - len(past) + j] = f(float(get(o)))
    return obs


@pytest.mark.parametrize("encoder", obs_encoding.ENCODERS)
def test_a_reimplementation_from_the_spec_reproduces_the_encoder(encoder: str, data_dir: Path) -> None:
    from abr.common.inputs import load_video
    from agents.registry import make_agent
    from simulator.rollout import run_session

    video = load_video("envivio_dash3", data_dir)  # VBR: row 4 changes chunk by chunk
    spec = encoder_spec(video.n_levels, 8, encoder)
    cells = clipped_low = clipped_high = long_downloads = 0
    for trace in [extreme_trace(), *generate_trace_set(1, 2)]:
        outcomes = run_session(make_agent("bba"), trace, video, preset("realistic"))
        for k in range(len(outcomes) + 1):
            context = PlayerContext(video, tuple(outcomes[:k]), 0.0)
            want = obs_encoding.encode_observation(context, 8, encoder)
            np.testing.assert_array_equal(_encode_from_spec(spec, video, outcomes[:k]), want, err_msg=f"chunk {k}")
            cells += want.size
        clipped_low += sum(o.throughput_bps <= video.bitrates_bps[-1] / 64 for o in outcomes)
        clipped_high += sum(o.throughput_bps >= video.bitrates_bps[-1] * 16 for o in outcomes)
        long_downloads += sum(o.download_time_s > 40.0 for o in outcomes)
    assert cells > 1000 and clipped_low and clipped_high and long_downloads  # every clip was exercised


def test_a_v2_export_encodes_with_the_models_encoder(models: dict[str, Path], tmp_path: Path) -> None:
    result = export_policy(models["pensieve-v2"], tmp_path / "export", n_session=16, n_random=200)
    spec = json.loads(result.files["encoder"].read_text())
    encoder_vectors = json.loads(result.files["encoder_vectors"].read_text())
    assert spec["encoder"] == encoder_vectors["encoder"] == "abr-6row-v2"
    assert json.loads(result.files["manifest"].read_text())["observation_layout"]["encoder"] == "abr-6row-v2"
    video = Video(np.array(encoder_vectors["video"]["bitrates_bps"]), encoder_vectors["video"]["chunk_duration_s"],
                  np.array(encoder_vectors["video"]["sizes_bits"]))
    for session in encoder_vectors["sessions"]:
        outcomes = [ChunkOutcome(**o) for o in session["outcomes"]]
        for k, want in enumerate(session["observations"]):
            np.testing.assert_array_equal(_encode_from_spec(spec, video, outcomes[:k]), np.float32(want))
    obs = np.asarray(json.loads(result.files["vectors"].read_text())["observations"])
    played, random = obs[:16], obs[17:]
    assert played[:, 2].max() <= 1.0 and played[:, 4].max() < 1.5  # bounded rows, not v1's scales
    assert random[:, 2].max() <= 1.0 and 3.5 < random[:, 3].max() <= obs_encoding.DOWNLOAD_TIME_CLIP


def test_a_tampered_export_fails_verification(models: dict[str, Path], tmp_path: Path) -> None:
    out = export_policy(models["pensieve"], tmp_path / "export", n_session=8, n_random=4).out_dir
    weights_file = out / FILES["weights"]
    weights = json.loads(weights_file.read_text())
    weights["action_head"]["bias"]["data"][0] += 0.5
    weights_file.write_text(json.dumps(weights))
    with pytest.raises(PolicyExportError, match=r"disagrees with the SB3 policy: max \|dprob\| numpy"):
        verify_export(out)


def test_export_errors(models: dict[str, Path], tmp_path: Path) -> None:
    three = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5, name="three")
    with pytest.raises(ValueError, match="video 'three' has 3 levels but the policy was trained for 6"):
        export_policy(models["mlp"], tmp_path / "x", video=three)
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 definitely not a model")
    with pytest.raises(PolicyLoadError, match=r"bad\.zip"):
        export_policy(tmp_path / "bad.zip", tmp_path / "y")


def test_export_command(models: dict[str, Path], tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("export")(export_command)
    app.command("noop")(lambda: None)
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["export", str(models["mlp"]), "--out", str(out), "--n-random", "3"])
    assert result.exit_code == 0, result.output
    assert "max |dprob| numpy" in result.output and (out / "policy.onnx").is_file()
    bad = CliRunner().invoke(app, ["export", str(tmp_path / "none.zip"), "--out", str(out)])
    assert bad.exit_code == 2 and "error: policy file" in bad.output and "does not exist" in bad.output


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_the_inference_model_plays_like_the_model_and_keeps_no_critic_or_optimiser_state(
        models: dict[str, Path], tmp_path: Path, variant: str) -> None:
    from abr.training.inference import write_inference_model

    path = write_inference_model(models[variant], tmp_path / "inference.zip")
    original, slim = RLPolicy.from_file(models[variant]), RLPolicy.from_file(path)
    obs = np.random.default_rng(7).uniform(0.0, 2.0, size=(200, 6, 8)).astype(np.float32)
    assert np.array_equal(slim.action_probabilities(obs), original.action_probabilities(obs))
    policy = slim.model.policy
    assert not policy.optimizer.state_dict()["state"]
    critic = [t for n, t in policy.state_dict().items()
              if not policy.share_features_extractor and n.startswith(("vf_features_extractor.", "value_net."))]
    assert all(not t.any() for t in critic)
    assert path.stat().st_size < models[variant].stat().st_size
