"""Model files that load without ``abr``: SB3 schedules in new runs, old checkpoints with ``abr.training.run``'s
schedule, inference loading that never unpickles schedules, inference copies, and the ``ppo-v1`` agent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from typer.testing import CliRunner  # noqa: E402

from abr.cli import app  # noqa: E402
from abr.errors import PolicyExportError  # noqa: E402
from abr.training.config import TrainConfig  # noqa: E402
from abr.training.inference import write_inference_model  # noqa: E402
from abr.training.run import LinearSchedule, learning_rate_schedule  # noqa: E402
from agents.registry import (  # noqa: E402
    SHIPPED_COMYCO_MODEL,
    SHIPPED_MODELS,
    SHIPPED_PPO_MODEL,
    SHIPPED_PPO_V1_MODEL,
    make_agent,
    shipped_model_agents,
)
from agents.rl import LAYOUT_ATTR, RLPolicy, load_model, observation_layout, pickled_modules  # noqa: E402
from simulator.env import AbrEnv  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
LR_START, LR_END = 1e-3, 1e-4


def _abr_modules(path: Path) -> dict[str, list[str]]:
    return {key: sorted(m for m in modules if m == "abr" or m.startswith("abr."))
            for key, modules in pickled_modules(path).items()
            if any(m == "abr" or m.startswith("abr.") for m in modules)}


def _save_tiny_model(path: Path, learning_rate: Any, **attributes: Any) -> Path:
    """An untrained PPO model on AbrEnv (tiny network) with ``learning_rate``, saved to ``path``."""
    from stable_baselines3 import PPO

    from agents.features import PensieveExtractor

    kwargs = {"net_arch": [8], "features_extractor_class": PensieveExtractor,
              "features_extractor_kwargs": {"history_len": 8, "n_levels": 6, "n_filters": 4}}
    model = PPO("MlpPolicy", AbrEnv(generate_trace_set(3, 2)), n_steps=32, batch_size=32, learning_rate=learning_rate,
                policy_kwargs=kwargs, seed=0, device="cpu")
    setattr(model, LAYOUT_ATTR, observation_layout(6))
    for name, value in attributes.items():
        setattr(model, name, value)
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def old_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A checkpoint as runs saved it before: its learning rate pickles ``abr.train.LinearSchedule`` (the module's
    path then; today an alias of :mod:`abr.training.run`, see ``abr.MOVED_MODULES``)."""
    import abr.train  # noqa: F401 - the old path, so the class pickles by reference under it

    module = LinearSchedule.__module__
    LinearSchedule.__module__ = "abr.train"
    try:
        return _save_tiny_model(tmp_path_factory.mktemp("old") / "old.zip", LinearSchedule(LR_START, LR_END))
    finally:
        LinearSchedule.__module__ = module


def test_new_runs_schedule_the_learning_rate_with_sb3_objects_only(tmp_path: Path) -> None:
    schedule = learning_rate_schedule(TrainConfig(learning_rate=LR_START, learning_rate_end=LR_END))
    assert type(schedule).__module__.startswith("stable_baselines3.")
    legacy = LinearSchedule(LR_START, LR_END)
    for progress_remaining in (1.0, 0.75, 0.5, 0.1, 0.0):  # SB3 passes 1 -> 0
        assert schedule(progress_remaining) == pytest.approx(legacy(progress_remaining), rel=1e-12)
    assert learning_rate_schedule(TrainConfig(learning_rate=LR_START)) == LR_START
    path = _save_tiny_model(tmp_path / "new.zip", schedule)
    assert _abr_modules(path) == {}
    assert "stable_baselines3.common.utils" in pickled_modules(path)["learning_rate"]


def test_an_old_checkpoint_still_loads_for_play_and_for_training(old_checkpoint: Path) -> None:
    from stable_baselines3 import PPO

    assert set(_abr_modules(old_checkpoint)) == {"learning_rate", "lr_schedule"}  # the scanner sees the old class
    assert "abr.train" in pickled_modules(old_checkpoint)["learning_rate"]  # under its old module path
    played, _ = load_model(old_checkpoint)  # for play: constants in place of the schedules, never unpickled
    assert played.learning_rate == 0.0 and played.lr_schedule(0.5) == 0.0
    trained, _ = load_model(old_checkpoint, inference=False)  # e.g. init_from, or a resume: the real schedule
    assert isinstance(trained.learning_rate, LinearSchedule)
    assert trained.lr_schedule(0.0) == pytest.approx(LR_END) and trained.lr_schedule(1.0) == pytest.approx(LR_START)
    resumed = PPO.load(str(old_checkpoint), device="cpu")  # what abr.training.run's resume path calls
    assert resumed.lr_schedule(0.5) == pytest.approx((LR_START + LR_END) / 2)


def test_the_inference_copy_pickles_no_abr_object(old_checkpoint: Path, tmp_path: Path) -> None:
    import numpy as np

    path = write_inference_model(old_checkpoint, tmp_path / "inference.zip")
    assert _abr_modules(path) == {}
    obs = np.random.default_rng(3).uniform(0.0, 2.0, size=(50, 6, 8)).astype(np.float32)
    original, slim = RLPolicy.from_file(old_checkpoint), RLPolicy.from_file(path)
    assert np.array_equal(slim.action_probabilities(obs), original.action_probabilities(obs))


def test_an_inference_copy_that_would_import_abr_is_refused(tmp_path: Path) -> None:
    source = _save_tiny_model(tmp_path / "odd.zip", LR_START, abr_extra=LinearSchedule(1.0, 2.0))
    with pytest.raises(PolicyExportError, match=r"would import abr when loaded: abr_extra \(abr.training.run\)"):
        write_inference_model(source, tmp_path / "inference.zip")
    assert not (tmp_path / "inference.zip").exists()


#: Plays one session of the model file argv[1] with ``abr`` unimportable, then checks ``sys.modules``.
_PLAY_WITHOUT_ABR = textwrap.dedent('''
    import importlib.abc, sys

    class NoAbr(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "abr" or name.startswith("abr."):
                raise ImportError(f"test: importing {name} is forbidden")
            return None

    sys.meta_path.insert(0, NoAbr())
    import numpy as np
    import agents.rl
    from simulator.config import preset
    from simulator.des import Session
    from traces.synthetic import generate_trace_set
    from traces.types import Video

    policy = agents.rl.RLPolicy.from_file(sys.argv[1])
    video = Video.cbr([3e5, 7.5e5, 1.2e6, 1.85e6, 2.85e6, 4.3e6], chunk_duration_s=4.0, n_chunks=12)
    session = Session(generate_trace_set(1, 1)[0], video, preset("pensieve"), rng=np.random.default_rng(0))
    policy.reset(np.random.default_rng(0))
    while not session.is_done:
        forced = session.forced_quality_idx
        session.step(forced if forced is not None else policy.select(session.context()))
    leaked = sorted(m for m in sys.modules if m == "abr" or m.startswith("abr."))
    assert not leaked, leaked
    print(len(session.outcomes), sorted({o.quality_idx for o in session.outcomes}))
''')


def _play_without_abr(model: Path) -> str:
    done = subprocess.run([sys.executable, "-c", _PLAY_WITHOUT_ABR, str(model)], capture_output=True, text=True,
                          cwd=REPO, timeout=180)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_blocker_does_forbid_abr() -> None:
    done = subprocess.run([sys.executable, "-c", _PLAY_WITHOUT_ABR.split("import numpy")[0] + "import abr\n"],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode != 0 and "importing abr is forbidden" in done.stderr


def test_shipped_models_and_inference_copies_play_without_abr(old_checkpoint: Path, tmp_path: Path) -> None:
    copy = write_inference_model(old_checkpoint, tmp_path / "inference.zip")
    assert _abr_modules(SHIPPED_PPO_MODEL) == {}  # the shipped ppo pickles no abr object at all
    # old files: schedules not unpickled
    for model in (SHIPPED_PPO_MODEL, SHIPPED_PPO_V1_MODEL, SHIPPED_COMYCO_MODEL, copy, old_checkpoint):
        assert _play_without_abr(model).startswith("12 ")


def test_ppo_v1_is_a_registered_agent_listed_by_abr_agents() -> None:
    assert SHIPPED_MODELS["ppo-v1"] == ("ppo", SHIPPED_PPO_V1_MODEL)
    assert shipped_model_agents()["ppo-v1"] == SHIPPED_PPO_V1_MODEL
    assert _abr_modules(SHIPPED_PPO_V1_MODEL) == {}
    policy = make_agent("PPO-v1")
    assert isinstance(policy, RLPolicy) and policy.name == "ppo-v1" and policy.layout["n_levels"] == 6
    for suffix in ("config.json", "evaluations.csv", "toml", "tune.config.json", "tune.evaluations.csv", "tune.toml"):
        assert (SHIPPED_PPO_V1_MODEL.parent / f"ppo_pensieve_v1.{suffix}").is_file()
    listing = CliRunner().invoke(app, ["agents"], env={"COLUMNS": "200"})
    assert listing.exit_code == 0 and "ppo-v1" in listing.output and "ppo_pensieve_v1.zip" in listing.output


def test_comyco_is_a_registered_agent_with_its_recipe_and_provenance() -> None:
    import json

    from abr.training.config import load_train_config

    assert SHIPPED_MODELS["comyco"] == ("ppo", SHIPPED_COMYCO_MODEL)
    assert _abr_modules(SHIPPED_COMYCO_MODEL) == {}
    policy = make_agent("comyco")
    assert isinstance(policy, RLPolicy) and policy.name == "comyco" and policy.layout["n_levels"] == 6
    record = json.loads((SHIPPED_COMYCO_MODEL.parent / "comyco.imitation.json").read_text())
    recipe = load_train_config(SHIPPED_COMYCO_MODEL.parent / "comyco.toml")
    assert recipe.total_timesteps == 0 and recipe.imitation_teacher == "horizon-mpc"  # imitation only
    assert record["teacher_discount"] == recipe.imitation_teacher_discount == 0.9
    assert record["fit_student_mean_qoe"][record["kept_fit"]] == max(record["fit_student_mean_qoe"])
    # Its provenance names the training families and not the held-out ones (the protocol refuses seen content).
    from agents.provenance import is_complete, model_provenance, seen_families

    provenance = model_provenance(load_model(SHIPPED_COMYCO_MODEL, "ppo")[0])
    assert is_complete(provenance) and {"fcc", "norway"} <= seen_families(provenance)
    assert not seen_families(provenance) & set(recipe.held_out)
