"""Training: config and TOML, the training environments, a smoke run whose learning curve rises, seeded
determinism, resume, the ``train`` command and the trained model as an ``abr evaluate`` agent."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from .._paths import same_path
from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

import typer  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from abr.cli.training import train_command  # noqa: E402
from abr.common.inputs import envivio_cbr_video  # noqa: E402
from abr.evaluation.harness import evaluate  # noqa: E402
from abr.training.config import TrainConfig, load_train_config, save_train_config, train_config_from_dict  # noqa: E402
from abr.training.envs import TrainEnvSpec, make_training_vec_env  # noqa: E402
from abr.training.run import EVALUATION_COLUMNS, EvaluationPoint, TrainResult, resolve_inputs, train  # noqa: E402
from simulator import ConfigError, QoEWeights  # noqa: E402
from simulator.config import SimConfig, preset  # noqa: E402
from simulator.env import AbrEnv, EnvConfig  # noqa: E402
from simulator.sb3_vec_env import AbrSb3VecEnv  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402

#: A small Pensieve network that learns visibly within a few thousand steps.
SMOKE = TrainConfig(total_timesteps=6144, n_envs=4, n_steps=128, batch_size=128, synthetic_traces=8,
                    val_synthetic_traces=4, eval_freq_steps=2048, learning_rate=1e-3, reward_scale=0.1,
                    ent_coef_start=0.05, n_filters=16, hidden_sizes=(32,), tensorboard=False)
TINY = dataclasses.replace(SMOKE, total_timesteps=1024, eval_freq_steps=512, n_filters=4, hidden_sizes=(8,),
                           n_steps=64, batch_size=64, tensorboard=True)


def _params(path: Path) -> dict[str, np.ndarray]:
    from stable_baselines3 import PPO

    return {k: v.numpy().copy() for k, v in PPO.load(str(path), device="cpu").policy.state_dict().items()}


def _curve(points: tuple[EvaluationPoint, ...]) -> list[tuple[float, ...]]:
    """The learning curve without wall times, NaN as -inf (so curves compare with ==)."""
    return [tuple(-np.inf if np.isnan(v) else v for v in dataclasses.astuple(dataclasses.replace(p, wall_s=0.0)))
            for p in points]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> TrainResult:
    return train(SMOKE, tmp_path_factory.mktemp("smoke") / "run")


def test_config_toml_round_trip_and_errors(tmp_path: Path) -> None:
    config = dataclasses.replace(SMOKE, traces=("fcc/train", "norway/train"), video="envivio_dash3")
    path = save_train_config(config, tmp_path / "c.toml")
    assert load_train_config(path) == config
    (tmp_path / "bad.toml").write_text("n_envs = 2\nlearning_rat = 0.1\n")
    with pytest.raises(ConfigError, match=r"bad\.toml: unknown key 'learning_rat'; allowed keys: algorithm"):
        load_train_config(tmp_path / "bad.toml")
    (tmp_path / "range.toml").write_text("gamma = 1.5\n")
    with pytest.raises(ConfigError, match=r"range\.toml: gamma=1\.5 must be a number >= 0 and <= 1"):
        load_train_config(tmp_path / "range.toml")
    assert train_config_from_dict({"learning_rate": 1}).learning_rate == 1.0
    with pytest.raises(ConfigError, match="throughput_scale_high=0.5 must be a number >= 1"):
        TrainConfig(throughput_scale_low=1.0, throughput_scale_high=0.5)
    with pytest.raises(ConfigError, match=r"init_from=3 must be the path of a model zip"):
        train_config_from_dict({"init_from": 3})
    with pytest.raises(ConfigError, match="algorithm='dqn' is not one of ppo, a2c"):
        TrainConfig(algorithm="dqn")


def test_entropy_schedule_decays_linearly_then_stays() -> None:
    config = TrainConfig(total_timesteps=1000, ent_coef_start=0.5, ent_coef_end=0.1, ent_decay_fraction=0.5)
    assert [round(config.entropy_coef(t), 6) for t in (0, 250, 500, 900)] == [0.5, 0.3, 0.1, 0.1]


def test_training_envs_are_seeded_and_randomised() -> None:
    spec = TrainEnvSpec(tuple(generate_trace_set(0, 4)), envivio_cbr_video(), SimConfig(), QoEWeights(),
                        EnvConfig(), throughput_scale_low=0.5, throughput_scale_high=2.0)
    first, second = make_training_vec_env(spec, 3, seed=7), make_training_vec_env(spec, 3, seed=7)
    assert first.observation_space.shape == (6, 8) and first.num_envs == 3
    np.testing.assert_array_equal(first.reset(), second.reset())
    actions = np.array([0, 2, 5])
    for _ in range(60):  # past the end of the first episodes (47 decisions each)
        a, b = first.step(actions), second.step(actions)
        for x, y in zip(a[:3], b[:3]):
            np.testing.assert_array_equal(x, y)
    env = AbrEnv(generate_trace_set(0, 4), config=spec.episode_config)
    scales = [env.reset(seed=s)[1]["throughput_scale"] for s in range(20)]
    assert all(0.5 <= s <= 2.0 for s in scales) and len(set(scales)) == 20
    assert env.reset(seed=3)[1]["throughput_scale"] == scales[3]
    assert env.trace is not None and env.reset(seed=3, options={"trace_idx": 1})[1]["trace_idx"] == 1
    np.testing.assert_allclose(env.trace.throughput_bps, spec.traces[1].throughput_bps * scales[3])
    with pytest.raises(ConfigError, match="env_config.training=False"):
        TrainEnvSpec(spec.traces, spec.video, spec.sim_config, spec.qoe, EnvConfig(training=False))


def test_smoke_training_learning_curve_rises(smoke_run: TrainResult) -> None:
    curve = smoke_run.evaluations
    assert [p.timesteps for p in curve] == [0, 2048, 4096, 6144]
    assert np.isnan(curve[0].train_episode_qoe)
    # The training episodes (sampled actions) improve steadily; the greedy validation QoE improves too.
    assert curve[-1].train_episode_qoe > curve[1].train_episode_qoe + 50
    assert max(p.mean_qoe for p in curve[1:]) > curve[0].mean_qoe
    out = smoke_run.out_dir
    for name in ("model.zip", "best_model.zip", "checkpoint.zip", "config.toml", "config.json", "evaluations.csv"):
        assert (out / name).is_file(), name
    with (out / "evaluations.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert tuple(rows[0]) == EVALUATION_COLUMNS and len(rows) == len(curve)
    resolved = json.loads((out / "config.json").read_text())
    assert resolved["train_config"]["n_filters"] == 16 and resolved["train_traces"]["count"] == 8
    assert resolved["observation_layout"]["shape"] == [6, 8] and resolved["versions"]["torch"]
    assert load_train_config(out / "config.toml") == SMOKE


def test_same_seed_gives_the_same_model(smoke_run: TrainResult, tmp_path: Path) -> None:
    again = train(SMOKE, tmp_path / "again")
    assert _curve(again.evaluations) == _curve(smoke_run.evaluations)
    first, second = _params(smoke_run.model_path), _params(again.model_path)
    assert first.keys() == second.keys()
    for key in first:
        np.testing.assert_array_equal(first[key], second[key], err_msg=key)
    other = _params(train(dataclasses.replace(TINY, seed=1, tensorboard=False), tmp_path / "seed1").model_path)
    assert any(not np.array_equal(other[k], v) for k, v in _params(
        train(dataclasses.replace(TINY, tensorboard=False), tmp_path / "seed0").model_path).items())


def test_resume_continues_the_run(tmp_path: Path) -> None:
    out = tmp_path / "run"
    first = train(TINY, out)
    assert first.timesteps == 1024 and (out / "tb" / "run_1").is_dir()
    with pytest.raises(ConfigError, match="already holds a training run; resume it"):
        train(TINY, out)
    with pytest.raises(ConfigError, match=r"changed config \(learning_rate\)"):
        train(dataclasses.replace(TINY, total_timesteps=2048, learning_rate=0.1), out, resume=True)
    resumed = train(dataclasses.replace(TINY, total_timesteps=2048), out, resume=True)
    assert resumed.timesteps == 2048
    assert [p.timesteps for p in resumed.evaluations] == [0, 512, 1024, 1536, 2048]
    assert _curve(resumed.evaluations[:3]) == _curve(first.evaluations)
    assert sorted(p.name for p in (out / "tb").iterdir()) == ["run_1"]
    with pytest.raises(ConfigError, match="cannot resume"):
        train(TINY, tmp_path / "empty", resume=True)


def test_init_from_starts_a_fine_tuning_run_from_the_models_weights(smoke_run: TrainResult, tmp_path: Path) -> None:
    from agents.errors import PolicyLoadError

    tune = dataclasses.replace(SMOKE, total_timesteps=1024, eval_freq_steps=512, learning_rate=1e-4,
                               init_from=str(smoke_run.best_model_path))
    tuned = train(tune, tmp_path / "tune")
    # It starts exactly where the source model is: the same greedy validation as the source's best point.
    best = max(smoke_run.evaluations, key=lambda p: p.mean_qoe)
    assert tuned.evaluations[0].timesteps == 0 and tuned.evaluations[0].mean_qoe == best.mean_qoe
    start, end = _params(smoke_run.best_model_path), _params(tuned.model_path)
    assert start.keys() == end.keys() and any(not np.array_equal(start[k], end[k]) for k in start)
    assert same_path(load_train_config(tmp_path / "tune" / "config.toml").init_from, smoke_run.best_model_path)
    again = _params(train(tune, tmp_path / "again").model_path)  # a fine-tuning stage is seeded too
    assert all(np.array_equal(again[k], end[k]) for k in end)
    # From an inference copy (a zeroed critic, as shipped) the actor is copied and the critic starts afresh.
    from abr.training.inference import write_inference_model

    copy = write_inference_model(smoke_run.best_model_path, tmp_path / "inference.zip")
    from_copy = train(dataclasses.replace(tune, init_from=str(copy), total_timesteps=512), tmp_path / "from_copy")
    assert from_copy.evaluations[0].mean_qoe == best.mean_qoe
    critic = _params(from_copy.model_path)
    assert all(np.abs(critic[k]).sum() > 0 for k in critic if k.startswith(("vf_features_extractor.", "value_net.")))
    with pytest.raises(PolicyLoadError, match=r"has another network than this run .*hidden_sizes"):
        train(dataclasses.replace(tune, hidden_sizes=(64,)), tmp_path / "wider")
    with pytest.raises(PolicyLoadError, match="no/such.zip does not exist"):
        train(dataclasses.replace(tune, init_from=str(tmp_path / "no/such.zip")), tmp_path / "missing")
    assert not (tmp_path / "missing").exists()  # the bad file is reported before the run folder is made


def test_patience_stops_the_run_where_validation_stops_improving(tmp_path: Path) -> None:
    config = dataclasses.replace(TINY, total_timesteps=4096, eval_freq_steps=256, tensorboard=False)
    full = train(config, tmp_path / "full").evaluations
    best_before = [max(p.mean_qoe for p in full[:k]) for k in range(1, len(full))]
    stale = [k for k in range(2, len(full)) if full[k].mean_qoe <= best_before[k - 1]
             and full[k - 1].mean_qoe <= best_before[k - 2]]
    assert stale and full[stale[0]].timesteps < 4096  # two validations in a row without improvement
    stopped = train(dataclasses.replace(config, patience=2), tmp_path / "stopped")
    # It stops at that validation, and every validation up to it is the full run's (the schedules are unchanged).
    assert _curve(stopped.evaluations) == _curve(full[:stale[0] + 1])
    assert stopped.timesteps < 4096
    assert train_config_from_dict({"patience": 3}).patience == 3
    with pytest.raises(ConfigError, match="patience=-1 must be an integer >= 0"):
        TrainConfig(patience=-1)


def test_train_command_and_the_model_as_an_evaluation_agent(tmp_path: Path) -> None:
    app = typer.Typer()
    app.command("train")(train_command)
    app.command("noop")(lambda: None)
    config = tmp_path / "base.toml"
    save_train_config(dataclasses.replace(TINY, total_timesteps=512, tensorboard=False), config)
    out = tmp_path / "cli"
    result = CliRunner().invoke(app, ["train", "--out", str(out), "--config", str(config), "--policy", "mlp",
                                      "--throughput-scale", "0.8", "1.25", "--timesteps", "600",
                                      "--patience", "4"])
    assert result.exit_code == 0, result.output
    assert "best model (validation QoE" in result.output
    stored = load_train_config(out / "config.toml")
    assert (stored.policy, stored.total_timesteps, stored.throughput_scale_high, stored.n_filters, stored.patience) == (
        "mlp", 600, 1.25, 4, 4)
    result = CliRunner().invoke(app, ["train", "--out", str(out), "--resume", "--timesteps", "1000"])
    assert result.exit_code == 0, result.output
    assert load_train_config(out / "config.toml").total_timesteps == 1000
    bad = CliRunner().invoke(app, ["train", "--out", str(tmp_path / "x"), "--config", str(tmp_path / "no.toml")])
    assert bad.exit_code == 2 and "error: training config" in bad.output
    agent = f"ppo:{out / 'best_model.zip'}"
    evaluation = evaluate([agent, "bba"], {"synthetic": generate_trace_set(9, 2)}, envivio_cbr_video(),
                          preset("pensieve"), QoEWeights(), tmp_path / "eval", engine="local", workers=1)
    assert {s.agent for s in evaluation.sessions} == {agent.lower(), "bba"}


def test_the_fast_core_trains_too(tmp_path: Path) -> None:
    spec = TrainEnvSpec(tuple(generate_trace_set(0, 2)), envivio_cbr_video(), SimConfig(), QoEWeights(),
                        EnvConfig(), env_core="fast")
    assert isinstance(make_training_vec_env(spec, 2, seed=0).unwrapped, AbrSb3VecEnv)  # the batched core
    fast = dataclasses.replace(TINY, env_core="fast", tensorboard=False)
    result = train(fast, tmp_path / "fast")
    assert result.timesteps == 1024 and not np.isnan(result.evaluations[-1].train_episode_qoe)
    assert _curve(train(fast, tmp_path / "again").evaluations) == _curve(result.evaluations)
    scaled = train(dataclasses.replace(fast, throughput_scale_low=0.5, throughput_scale_high=2.0), tmp_path / "s")
    assert _curve(scaled.evaluations) != _curve(result.evaluations)


def test_a_run_trains_and_validates_under_the_perceptual_qoe(tmp_path: Path) -> None:
    from abr.training.validation import validate_policy
    from agents.rl import RLPolicy

    rng = np.random.default_rng(0)
    ladder = [300, 750, 1200, 1850, 2850, 4300]
    folder = tmp_path / "video"
    folder.mkdir()
    (folder / "ladder.json").write_text(json.dumps({"bitrates_kbps": ladder}))
    for level, kbps in enumerate(ladder):  # 20 chunks of 4 s, SSIM dB rising with the level
        sizes = (kbps * 500 * rng.uniform(0.8, 1.2, 20)).astype(int)
        (folder / f"video_size_{level}").write_text("\n".join(map(str, sizes)) + "\n")
        ssim = 8.0 + 2.5 * level + rng.normal(0.0, 0.5, 20)
        (folder / f"video_ssim_db_{level}").write_text("\n".join(f"{x:.3f}" for x in ssim) + "\n")
    config = dataclasses.replace(TINY, qoe="ssim", video=str(folder), env_core="fast", tensorboard=False)
    result = train(config, tmp_path / "run")
    inputs = resolve_inputs(config)
    assert inputs.qoe.kind == "ssim" and inputs.video.ssim_db is not None
    # The run's validation is the SSIM QoE of its best model, not the bitrate QoE.
    best = max(result.evaluations, key=lambda p: p.mean_qoe)
    policy = RLPolicy.from_file(result.best_model_path)
    ssim = [m.qoe for m in validate_policy(policy, inputs.val_traces, inputs.video, inputs.sim_config, inputs.qoe,
                                           seed=config.seed)]
    linear = [m.qoe for m in validate_policy(policy, inputs.val_traces, inputs.video, inputs.sim_config,
                                             QoEWeights(), seed=config.seed)]
    assert np.mean(ssim) == pytest.approx(best.mean_qoe) and np.mean(linear) != pytest.approx(best.mean_qoe)
    with pytest.raises(ConfigError, match="ssim"):  # a size table without quality: refused by name
        train(dataclasses.replace(config, video=None), tmp_path / "bare")


def test_broad_pool_fields_weight_sets_and_pick_generator_and_encoder(tmp_path: Path) -> None:
    from abr.training.run import env_spec, resolve_inputs
    from traces.readers import write_cooked_trace

    folders = []
    for name, n in (("a", 2), ("b", 3)):
        folder = tmp_path / name
        folder.mkdir()
        for i, trace in enumerate(generate_trace_set(len(folders), n)):
            write_cooked_trace(trace, folder / f"{name}{i}.txt")
        folders.append(str(folder))
    config = dataclasses.replace(TINY, traces=tuple(folders), trace_repeats=(3, 1), synthetic_traces=2,
                                 synthetic_kind="broad", observation="abr-6row-v2")
    inputs = resolve_inputs(config)
    names = [t.name for t in inputs.train_traces]
    assert len(names) == 3 * 2 + 3 + 2 and names.count(names[0]) == 3  # set a three times, then b, then 2 broad
    assert [t.family for t in inputs.train_traces[-2:]] == ["synthetic-broad"] * 2
    assert [t.family for t in inputs.val_traces] == ["synthetic-broad"] * 4  # validation follows the kind
    assert env_spec(config, inputs).env_config.observation == "abr-6row-v2"
    with pytest.raises(ConfigError, match=r"trace_repeats=\[3\] must list one integer >= 1 for each of the 2"):
        dataclasses.replace(config, trace_repeats=(3,))
    with pytest.raises(ConfigError, match="synthetic_kind='wide' is not one of markov, broad"):
        dataclasses.replace(config, synthetic_kind="wide")
    with pytest.raises(ConfigError, match="observation='v3' is not one of pensieve-6row-v1, abr-6row-v2"):
        dataclasses.replace(config, observation="v3")
    result = train(dataclasses.replace(config, env_core="fast", tensorboard=False), tmp_path / "run")
    from agents.rl import RLPolicy

    policy = RLPolicy.from_file(result.best_model_path)
    assert policy.encoder == "abr-6row-v2" and policy.layout["normalisation"]["log2_throughput_low"] == -6.0


def test_a_held_out_family_cannot_be_trained_or_validated_on(tmp_path: Path) -> None:
    from abr.training.run import resolve_inputs

    config = dataclasses.replace(TINY, traces=("fcc/train",), val_traces=("lumos5g/test",), held_out=("lumos5g",))
    with pytest.raises(ConfigError, match=r"trace set 'lumos5g/test' belongs to the held-out family 'lumos5g' "
                                          r"\(held_out = \['lumos5g'\]\); remove it"):
        resolve_inputs(config)
    assert train_config_from_dict({"held_out": ["ucc5g"]}).held_out == ("ucc5g",)


def test_rescaled_copies_join_the_pool_at_their_own_means_and_keep_the_provenance() -> None:
    base = TrainConfig(synthetic_traces=5, val_synthetic_traces=1, seed=4)
    config = dataclasses.replace(base, rescaled_traces=("synthetic",), rescaled_mean_low_mbps=0.5,
                                 rescaled_mean_high_mbps=0.8)
    plain, inputs = resolve_inputs(base), resolve_inputs(config)
    assert len(inputs.train_traces) == 10
    assert [t.name for t in inputs.train_traces[:5]] == [t.name for t in plain.train_traces]
    copies = inputs.train_traces[5:]
    means = [c.mean_throughput_bps for c in copies]
    assert all(0.5e6 <= m <= 0.8e6 for m in means) and len(set(means)) == 5  # one draw per copy
    for original, copy in zip(plain.train_traces, copies):
        ratio = copy.throughput_bps / original.throughput_bps
        np.testing.assert_allclose(ratio, ratio[0], rtol=1e-12)  # one factor per trace: its shape is kept
        assert copy.name == f"{original.name}@rescaled"
    assert inputs.provenance == plain.provenance  # copies of training traces: nothing new was seen
    again = resolve_inputs(config)
    assert [c.mean_throughput_bps for c in again.train_traces[5:]] == means  # seeded
    with pytest.raises(ConfigError, match=r"rescaled_traces=\['norway/train'\]: 'norway/train' is not one of traces"):
        TrainConfig(rescaled_traces=("norway/train",))
    with pytest.raises(ConfigError, match="rescaled_mean_high_mbps=0.1 must be a number >= 0.6"):
        TrainConfig(rescaled_mean_high_mbps=0.1)
