"""Learned policies as agents: loading SB3 model files, layout checks, greedy and sampled play, the registry."""

from __future__ import annotations

import pickle
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

from .._paths import same_path
from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from agents import make_agent  # noqa: E402
from agents.errors import PolicyLoadError  # noqa: E402
from agents.rl import LAYOUT_ATTR, RLPolicy, load_model, observation_layout  # noqa: E402
from simulator import ConfigError  # noqa: E402
from simulator.config import preset  # noqa: E402
from simulator.env import AbrEnv, EnvConfig  # noqa: E402
from simulator.rollout import run_session  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402
from traces.types import Video  # noqa: E402

TRACES = generate_trace_set(5, 3)
VIDEO = AbrEnv().video


def save_model(path: Path, *, history_len: int = 8, policy: str = "pensieve", layout: Any = "default",
               env: gym.Env[Any, Any] | None = None) -> Path:
    """An untrained (seeded) PPO model on ``AbrEnv`` saved to ``path``; ``layout=None`` stores none."""
    from stable_baselines3 import PPO

    from agents.features import PensieveExtractor

    env = env if env is not None else AbrEnv(TRACES, config=EnvConfig(history_len=history_len))
    kwargs: dict[str, Any] = {"net_arch": [16]}
    if policy == "pensieve":
        kwargs.update(features_extractor_class=PensieveExtractor,
                      features_extractor_kwargs={"history_len": history_len, "n_levels": 6, "n_filters": 4})
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=64, policy_kwargs=kwargs, seed=0, device="cpu")
    if layout == "default":
        layout = observation_layout(6, history_len)
    if layout is not None:
        setattr(model, LAYOUT_ATTR, layout)
    model.save(str(path))
    return path


@pytest.fixture(scope="module")
def model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(tmp_path_factory.mktemp("models") / "ppo.zip")


def test_ppo_agent_plays_a_session_greedily(model_path: Path) -> None:
    policy = make_agent(f"ppo:{model_path}")
    assert isinstance(policy, RLPolicy) and policy.name == f"ppo:{model_path}" and not policy.sample
    first = run_session(policy, TRACES[0], VIDEO, preset("pensieve"))
    again = run_session(make_agent(f"PPO:{model_path}"), TRACES[0], VIDEO, preset("pensieve"))
    assert len(first) == VIDEO.n_chunks and first == again
    # Greedy = argmax of the SB3 policy's probabilities, on the environment's own observations.
    env = AbrEnv(TRACES, config=EnvConfig(training=False))
    obs, _ = env.reset(seed=0)
    probs = policy.action_probabilities(obs)
    assert probs.shape == (1, 6) and probs.sum() == pytest.approx(1.0)
    model, _ = load_model(model_path)
    action, _ = model.predict(obs, deterministic=True)
    assert int(action) == int(np.argmax(probs))


def test_sampled_play_uses_the_reset_generator(model_path: Path) -> None:
    policy = RLPolicy.from_file(model_path, sample=True)
    runs = [run_session(policy, TRACES[1], VIDEO, preset("pensieve"), rng=np.random.default_rng(s))
            for s in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert [o.quality_idx for o in runs[0]] != [o.quality_idx for o in runs[2]]


def test_history_len_comes_from_the_model(tmp_path: Path) -> None:
    path = save_model(tmp_path / "h10.zip", history_len=10)
    policy = RLPolicy.from_file(path)
    assert policy.history_len == 10 and policy.layout["shape"] == [6, 10]
    assert len(run_session(policy, TRACES[0], VIDEO, preset("pensieve"))) == VIDEO.n_chunks


def test_policy_pickles_by_file(model_path: Path) -> None:
    policy = RLPolicy.from_file(model_path)
    clone = pickle.loads(pickle.dumps(policy))
    assert clone.name == policy.name and same_path(clone.source, model_path)
    assert run_session(clone, TRACES[2], VIDEO, preset("pensieve")) == run_session(
        policy, TRACES[2], VIDEO, preset("pensieve"))


def test_missing_and_corrupt_files_fail_clearly(tmp_path: Path, model_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match=r"does not exist; give the model zip written by `abr train`"):
        make_agent(f"ppo:{tmp_path / 'nope.zip'}")
    text = tmp_path / "notes.zip"
    text.write_text("not a model")
    with pytest.raises(PolicyLoadError, match=r"notes\.zip is not a stable-baselines3 model zip"):
        RLPolicy.from_file(text)
    truncated = tmp_path / "truncated.zip"
    truncated.write_bytes(model_path.read_bytes()[: model_path.stat().st_size // 2])
    with pytest.raises(PolicyLoadError, match="truncated.zip"):
        RLPolicy.from_file(truncated)
    other = tmp_path / "other.zip"
    with zipfile.ZipFile(other, "w") as archive:
        archive.writestr("hello.txt", "hi")
    with pytest.raises(PolicyLoadError, match=r"other\.zip cannot be loaded as a PPO model"):
        RLPolicy.from_file(other)


def test_models_of_another_layout_fail_clearly(tmp_path: Path) -> None:
    layout = observation_layout(6)
    layout["normalisation"] = {**layout["normalisation"], "throughput_norm_bps": 1e6}
    path = save_model(tmp_path / "old.zip", layout=layout)
    with pytest.raises(PolicyLoadError, match=r"old\.zip was trained for another observation layout: "
                                              r"normalisation=.*retrain it"):
        RLPolicy.from_file(path)
    flat = gym.wrappers.FlattenObservation(AbrEnv(TRACES))
    path = save_model(tmp_path / "flat.zip", policy="mlp", layout=None, env=flat)
    with pytest.raises(PolicyLoadError, match=r"flat\.zip: observation shape \(48,\) is not the Pensieve layout"):
        RLPolicy.from_file(path)


def test_a_model_without_layout_of_the_default_shape_loads(tmp_path: Path) -> None:
    path = save_model(tmp_path / "plain.zip", policy="mlp", layout=None)
    assert RLPolicy.from_file(path).layout == observation_layout(6)


def test_another_ladder_is_refused_when_playing(model_path: Path) -> None:
    video = Video.cbr([1e6, 2e6, 3e6], chunk_duration_s=4.0, n_chunks=5, name="three")
    with pytest.raises(ConfigError, match=r"trained for a 6-level ladder but the video 'three' has 3 levels"):
        run_session(RLPolicy.from_file(model_path), TRACES[0], video, preset("pensieve"))


def test_registry_forms_of_model_agents(model_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import agents.registry

    monkeypatch.setattr(agents.registry, "SHIPPED_PPO_MODEL", tmp_path / "none.zip")
    with pytest.raises(ConfigError, match=r"agent 'ppo': no shipped PPO policy exists yet; train one with `abr"):
        make_agent("ppo")
    with pytest.raises(ConfigError, match=r"agent 'a2c': give a model file, as a2c:<path/to/model.zip>"):
        make_agent("a2c:")
    # A PPO file is not played (and labelled) as A2C: the algorithm is read from the zip.
    with pytest.raises(PolicyLoadError, match=r"was saved by PPO, not A2C; load it as ppo:"):
        make_agent(f"a2c:{model_path}")
    assert make_agent(f"ppo:{model_path}").name == f"ppo:{model_path}"


def test_importing_the_packages_does_not_import_torch() -> None:
    code = ("import sys, abr, agents, agents.registry, agents.rl, abr.training.run, abr.training.export, "
            "abr.cli.training; "
            "print(sorted(m for m in ('torch', 'stable_baselines3', 'onnx') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_fresh_spawned_process_builds_the_agent_from_its_name(model_path: Path, tmp_path: Path) -> None:
    script = tmp_path / "spawn_agent.py"
    script.write_text("import multiprocessing as mp, sys\n"
                      "from agents import make_agent\n"
                      "def name(n):\n"
                      "    import torch\n"
                      "    return make_agent(n).name, torch.get_num_threads()\n"
                      "if __name__ == '__main__':\n"
                      "    with mp.get_context('spawn').Pool(1) as pool:\n"
                      "        print(pool.map(name, [sys.argv[1]]))\n")
    done = subprocess.run([sys.executable, str(script), f"ppo:{model_path}"], capture_output=True, text=True,
                          check=True, timeout=120)
    assert done.stdout.strip() == str([(f"ppo:{model_path}", 1)])


def test_the_shipped_policy_plays_the_greedy_actions_of_its_sb3_model(data_dir: Path) -> None:
    from stable_baselines3 import PPO

    from agents.registry import SHIPPED_PPO_MODEL
    from simulator.context import PlayerContext
    from simulator.observation import encode_observation
    from traces.readers import read_trace_dir
    from traces.videos import read_video

    policy = make_agent("ppo")
    assert policy.layout == observation_layout(6, 8, "abr-6row-v2")
    model = PPO.load(SHIPPED_PPO_MODEL, device="cpu")
    video = read_video(data_dir / "videos" / "envivio_dash3")
    trace = read_trace_dir(data_dir / "traces" / "fcc" / "test")[0]
    outcomes = run_session(policy, trace, video, preset("pensieve"))
    assert len(outcomes) == 48
    for k in range(1, 48):  # each decision is the SB3 model's argmax on the observation before that chunk
        context = PlayerContext(video.truncated(48), tuple(outcomes[:k]), outcomes[k - 1].buffer_s)
        action, _ = model.predict(encode_observation(context, encoder=policy.encoder), deterministic=True)
        assert outcomes[k].quality_idx == int(action)


def test_the_shipped_policy_is_its_recipes_model_and_never_saw_its_held_out_families(data_dir: Path) -> None:
    """The shipped file has the recipe's network and encoder, and records the recipe's training families and
    trace contents (by fingerprint); the held-out families named in the recipe are in neither."""
    from stable_baselines3 import PPO

    from abr.common.inputs import load_trace_set
    from abr.training.config import load_train_config
    from agents.provenance import model_provenance, seen_families, seen_fingerprints
    from agents.registry import SHIPPED_PPO_MODEL
    from traces.fingerprint import trace_fingerprint

    recipe_path = SHIPPED_PPO_MODEL.with_suffix(".toml")
    recipe = load_train_config(recipe_path)
    held_out_families = list(recipe.held_out)
    assert held_out_families == ["lumos5g", "nyu_lte", "ucc5g"]
    model = PPO.load(SHIPPED_PPO_MODEL, device="cpu")
    assert model.policy_kwargs["features_extractor_kwargs"]["n_filters"] == recipe.n_filters
    assert model.policy_kwargs["net_arch"]["pi"] == list(recipe.hidden_sizes)
    assert model.abr_observation_layout["encoder"] == recipe.observation == "abr-6row-v2"
    provenance = model_provenance(model)
    families = seen_families(provenance)
    assert {spec.split("/")[0] for spec in (*recipe.traces, *recipe.val_traces)} <= families
    assert not families & set(held_out_families)
    seen = seen_fingerprints(provenance)
    assert trace_fingerprint(load_trace_set("fcc/train", data_dir).traces[0]) in seen
    for family in held_out_families:
        for split in ("train", "test"):
            assert not {trace_fingerprint(t) for t in load_trace_set(f"{family}/{split}", data_dir).traces} & seen
