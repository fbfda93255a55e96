"""The plug-in's JS (encoder, network, heuristic rules) against vectors written by Python, under Node."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from ..._requirements import require_executable, require_module

require_module("stable_baselines3", extra="rl")
from abr.common.inputs import load_video  # noqa: E402
from abr.training.config import TrainConfig  # noqa: E402
from agents.registry import make_agent  # noqa: E402
from simulator import observation as obs_encoding  # noqa: E402
from simulator.context import PlayerContext  # noqa: E402
from simulator.records import ChunkOutcome  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402

from ..abr_test_helpers import extreme_trace, train_tiny_model  # noqa: E402
from .rule_vectors import RULE_VECTORS, rule_vectors, write_vectors  # noqa: E402

ROOT = Path(__file__).resolve().parents[3]
#: A tiny model for the encoders the shipped policy does not use.
TINY = TrainConfig(total_timesteps=256, n_envs=2, n_steps=128, batch_size=128, synthetic_traces=4,
                   val_synthetic_traces=2, eval_freq_steps=0, n_filters=8, hidden_sizes=(16, 16), tensorboard=False)


@pytest.fixture(scope="module", params=obs_encoding.ENCODERS)
def vectors(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Path:
    # The real (VBR) Envivio video: sizes differ per chunk, so MPC's search and tie-breaking are exercised.
    video = load_video("envivio_dash3", data_dir)
    encoder = request.param
    # The encoder's sessions include, for v2, a trace past both of its clips (the first one).
    traces = [extreme_trace(), *generate_trace_set(3, 3)] if encoder == obs_encoding.ENCODER_V2 \
        else generate_trace_set(3, 4)
    if encoder == _shipped_encoder():  # the shipped policy
        return write_vectors(tmp_path_factory.mktemp("vectors"), video=video, traces=traces)
    model = train_tiny_model(TINY, tmp_path_factory.mktemp(f"model-{encoder}"), encoder)
    return write_vectors(tmp_path_factory.mktemp(f"vectors-{encoder}"), model=model, video=video, traces=traces)


def _shipped_encoder() -> str:
    from agents.registry import SHIPPED_PPO_MODEL
    from agents.rl import RLPolicy

    return RLPolicy.from_file(SHIPPED_PPO_MODEL).encoder


def test_rule_vectors_replay_in_python_as_the_session_played() -> None:
    # The replay contract the JS test relies on: the context before chunk k is outcomes[:k] with the buffer
    # outcomes[k-1].buffer_s. Replaying it with a fresh Python agent must give the session's own decisions.
    data = rule_vectors(("robustmpc",), n_traces=2)
    import numpy as np

    from traces.types import Video

    v = data["video"]
    video = Video(np.array(v["bitrates_bps"]), v["chunk_duration_s"], np.array(v["sizes_bits"]))
    for session in data["sessions"]:
        outcomes = [ChunkOutcome(**o) for o in session["outcomes"]]
        agent = make_agent("robustmpc")
        agent.reset(None)
        for k, o in enumerate(outcomes):
            buffer = outcomes[k - 1].buffer_s if k else 0.0
            assert agent.select(PlayerContext(video, tuple(outcomes[:k]), buffer)) == o.quality_idx


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js, checked before the (slow) vectors are written."""
    return require_executable("node", hint="install Node.js 18 or later (apt-get install nodejs)")


def test_js_plugin_matches_python_on_the_vectors(node: str, vectors: Path, tmp_path: Path) -> None:
    report_file = tmp_path / "report.json"
    proc = subprocess.run([node, "--test", "--test-reporter=spec", str(ROOT / "tests" / "js" / "plugin.test.mjs")],
                          cwd=ROOT, env={"ABR_VECTORS": str(vectors), "ABR_REPORT": str(report_file),
                                         "PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    report = json.loads(report_file.read_text())
    encoder = json.loads((vectors / "encoder_spec.json").read_text())["encoder"]
    assert report["encoder"]["encoder"] == encoder
    assert report.get("clipped_rows", []) == ([2, 3] if encoder == obs_encoding.ENCODER_V2 else [])
    if encoder == obs_encoding.ENCODER_V2:  # the JS met v2's clips in the sessions, not only in the unit test
        sessions = json.loads((vectors / "encoder_vectors.json").read_text())["sessions"]
        cells = np.concatenate([np.asarray(s["observations"])[:, :, :8] for s in sessions])  # [obs, row, history]
        played = cells[:, 0] > 0  # columns holding a downloaded chunk
        assert np.any(cells[:, 2][played] == 0.0) and np.any(cells[:, 3][played] == obs_encoding.DOWNLOAD_TIME_CLIP)
    assert report["encoder"]["max_abs_diff"] == 0.0 and report["encoder"]["cells"] > 500
    assert report["network"]["max_abs_diff_prob"] <= 1e-5
    assert report["network"]["same_actions"] == report["network"]["vectors"] > 90
    assert report["rl_replay"]["decisions"] > 50
    n_chunks = json.loads((vectors / RULE_VECTORS).read_text())["video"]["n_chunks"]
    assert report["rules"] == {"bba": 4 * n_chunks, "robustmpc": 4 * n_chunks, "fastmpc": 4 * n_chunks}
