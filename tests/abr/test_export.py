"""Export for embedding: ONNX, JSON weights (numpy), SB3 agree on the test vectors; the encoder spec; errors."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
onnxruntime = pytest.importorskip("onnxruntime")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from abr._policy_weights import numpy_logits, softmax  # noqa: E402
from abr.cli_rl import export_command  # noqa: E402
from abr.errors import PolicyExportError, PolicyLoadError  # noqa: E402
from abr.export import FILES, TOLERANCE, encoder_spec, export_policy, verify_export  # noqa: E402
from abr.train import train  # noqa: E402
from abr.train_config import TrainConfig  # noqa: E402
from agents.rl import RLPolicy  # noqa: E402
from simulator import observation as obs_encoding  # noqa: E402
from traces.types import Video  # noqa: E402

BASE = TrainConfig(total_timesteps=512, n_envs=2, n_steps=128, batch_size=128, synthetic_traces=4,
                   val_synthetic_traces=2, eval_freq_steps=0, n_filters=8, hidden_sizes=(16, 16), tensorboard=False)
VARIANTS = {
    "pensieve": BASE,
    "pensieve-shared": dataclasses.replace(BASE, share_features=True),
    "mlp": dataclasses.replace(BASE, policy="mlp"),
}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("export-models")
    return {name: train(config, root / name).model_path for name, config in VARIANTS.items()}


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
    assert encoder_spec(10, 8)["shape"] == [6, 10]


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
    from abr.export import write_inference_model

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
