"""``abr export`` into an occupied folder: another model's export (or foreign files) is refused unless
``--overwrite``; an export of the same model is replaced; a failed export leaves the folder as it was."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from .._paths import same_path
from .._requirements import require_module

require_module("stable_baselines3", extra="rl")
require_module("onnxruntime", extra="export")

from typer.testing import CliRunner, Result  # noqa: E402

import abr.training.export  # noqa: E402
from abr.cli import app  # noqa: E402
from abr.errors import ConfigError, PolicyExportError  # noqa: E402
from abr.training.config import TrainConfig  # noqa: E402
from abr.training.export import FILES, export_policy  # noqa: E402

from .abr_test_helpers import train_tiny_model  # noqa: E402

TINY = TrainConfig(total_timesteps=128, n_envs=2, n_steps=64, batch_size=64, synthetic_traces=2,
                   val_synthetic_traces=1, eval_freq_steps=0, n_filters=4, hidden_sizes=(8,), tensorboard=False,
                   policy="mlp")
runner = CliRunner()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("export-folder-models")
    first = train_tiny_model(TINY, root / "a", "pensieve-6row-v1")
    second = train_tiny_model(dataclasses.replace(TINY, seed=1), root / "b", "pensieve-6row-v1")
    return first, second


def _export(model: Path, out: Path, *extra: str) -> Result:
    return runner.invoke(app, ["export", str(model), "--out", str(out), "--n-session", "4", "--n-random", "2",
                               *extra])


def _contents(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir()}


def test_another_models_export_is_refused_without_overwrite(models, tmp_path):
    first, second = models
    out = tmp_path / "web"
    assert _export(first, out).exit_code == 0
    before = _contents(out)
    refused = _export(second, out)
    assert refused.exit_code == 2, refused.output
    line = refused.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert f"{out} already holds an export of another model ({first})" in line and "--overwrite" in line
    assert _contents(out) == before
    replaced = _export(second, out, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    assert same_path(json.loads((out / FILES["manifest"]).read_text())["model"], second)


def test_the_same_models_export_is_replaced(models, tmp_path):
    first, _ = models
    out = tmp_path / "web"
    assert _export(first, out).exit_code == 0
    created = json.loads((out / FILES["manifest"]).read_text())["created_utc"]
    copy = tmp_path / "copy.zip"  # the same content at another path is the same model too
    shutil.copyfile(first, copy)
    again = _export(copy, out, "--seed", "5")
    assert again.exit_code == 0, again.output
    manifest = json.loads((out / FILES["manifest"]).read_text())
    assert same_path(manifest["model"], copy) and manifest["created_utc"] >= created
    assert sorted(p.name for p in out.iterdir()) == sorted(FILES.values())  # no temporary folder left


def test_files_no_export_wrote_are_refused_and_kept(models, tmp_path):
    first, _ = models
    out = tmp_path / "site"
    out.mkdir()
    (out / "weights.json").write_text('{"mine": true}\n')
    (out / "index.html").write_text("<html></html>\n")
    refused = _export(first, out)
    assert refused.exit_code == 2, refused.output
    assert "weights.json would be replaced" in refused.stderr and "--overwrite" in refused.stderr
    assert (out / "weights.json").read_text() == '{"mine": true}\n'
    assert _export(first, out, "--overwrite").exit_code == 0
    assert (out / "index.html").read_text() == "<html></html>\n"  # not an export file: never touched


def test_a_failed_export_leaves_the_folder_as_it_was(models, tmp_path, monkeypatch):
    first, second = models
    out = tmp_path / "web"
    export_policy(first, out, n_session=4, n_random=2)
    before = _contents(out)

    def disagreeing(folder):
        raise PolicyExportError(f"the export in {folder} disagrees with the SB3 policy")

    monkeypatch.setattr(abr.training.export, "verify_export", disagreeing)
    with pytest.raises(PolicyExportError):
        export_policy(second, out, n_session=4, n_random=2, overwrite=True)
    assert _contents(out) == before
    fresh = tmp_path / "new" / "web"
    with pytest.raises(PolicyExportError):
        export_policy(second, fresh, n_session=4, n_random=2)
    assert not (tmp_path / "new").exists()


def test_the_library_refuses_too(models, tmp_path):
    first, second = models
    out = export_policy(first, tmp_path / "web", n_session=4, n_random=2).out_dir
    with pytest.raises(ConfigError, match="another model"):
        export_policy(second, out, n_session=4, n_random=2)
