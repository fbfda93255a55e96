"""The scripts under examples/ run as documented (shortened where they take a length option)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def test_train_ppo_example_trains_evaluates_and_exports(tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / "train_ppo.py"), "--out", str(tmp_path), "--timesteps",
                             "4096"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "robustmpc: mean QoE" in result.stderr and "exported to" in result.stderr
    evaluations = (tmp_path / "train" / "evaluations.csv").read_text().splitlines()
    assert evaluations[0].startswith("timesteps,") and len(evaluations) >= 3  # before, during/after training
    vectors = json.loads((tmp_path / "export" / "test_vectors.json").read_text())
    assert vectors and (tmp_path / "export" / "policy.onnx").stat().st_size > 0
