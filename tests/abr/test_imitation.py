"""The imitation stage of a training run: the offline optimum's demonstrations and their cloning."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from stable_baselines3 import PPO  # noqa: E402

from abr.training.config import TrainConfig  # noqa: E402
from abr.training.envs import make_training_vec_env  # noqa: E402
from abr.training.imitation import HOLDOUT_EVERY, pretrain_policy, teacher_demonstrations  # noqa: E402
from abr.training.run import IMITATION_FILE, build_model, env_spec, resolve_inputs, train  # noqa: E402
from agents.optimal import solve_offline_optimum  # noqa: E402
from simulator import ConfigError, QoEWeights  # noqa: E402
from simulator.config import preset  # noqa: E402
from simulator.env import AbrEnv, EnvConfig  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402
from traces.types import Video  # noqa: E402

VIDEO = Video.cbr([0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6], chunk_duration_s=4.0, n_chunks=12)
TRACES = tuple(generate_trace_set(5, 4))
CONFIG = preset("pensieve")
ENV = EnvConfig(training=False, observation="abr-6row-v2")


def test_demonstrations_are_the_optimums_plans_at_the_drawn_scale_and_start() -> None:
    demos = teacher_demonstrations(TRACES, VIDEO, CONFIG, QoEWeights(), ENV, seed=3, per_trace=2, scale_low=0.5,
                                   scale_high=2.0, gamma=0.9, reward_scale=0.1)
    assert demos.skipped == 0 and len(demos.teacher_qoe) == 8
    assert demos.observations.shape == (8 * 11, 6, 8)  # 12 chunks, the first forced by the preset
    # Re-draw the first demonstration's scale and start as the module documents, and solve it independently.
    from abr.training.imitation import IMITATION_SPAWN_KEY

    rng = np.random.default_rng(np.random.SeedSequence(3, spawn_key=(IMITATION_SPAWN_KEY,)))
    scale = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    start = int(rng.integers(1, TRACES[0].times_s.size))
    plan = solve_offline_optimum(TRACES[0].scaled(scale), VIDEO, CONFIG, QoEWeights(), start, max_beam_width=4096)
    first = demos.episode == 0
    assert demos.actions[first].tolist() == list(plan.qualities[1:])
    assert demos.teacher_qoe[0] == pytest.approx(plan.qoe_excl_first, abs=1e-9)
    # The observation before the second decision is the environment's after the plan's first decision.
    env = AbrEnv([TRACES[0].scaled(scale)], VIDEO, CONFIG, QoEWeights(), ENV)
    env.reset(seed=0, options={"trace_idx": 0, "start_idx": start})
    obs, *_ = env.step(int(plan.qualities[1]))
    np.testing.assert_array_equal(demos.observations[first][1], obs)
    # Returns: discounted (0.9) and scaled (0.1) sums of the rewards to the end of the episode.
    returns = demos.returns[first]
    rewards = (returns[:-1] - 0.9 * returns[1:]) * 10
    assert float(rewards.sum() + returns[-1] * 10) == pytest.approx(plan.qoe_excl_first, abs=1e-4)
    # Same seed, same demonstrations; another seed, other draws.
    again = teacher_demonstrations(TRACES, VIDEO, CONFIG, QoEWeights(), ENV, seed=3, per_trace=2, scale_low=0.5,
                                   scale_high=2.0, gamma=0.9, reward_scale=0.1)
    np.testing.assert_array_equal(again.observations, demos.observations)
    other = teacher_demonstrations(TRACES, VIDEO, CONFIG, QoEWeights(), ENV, seed=4, per_trace=2, scale_low=0.5,
                                   scale_high=2.0)
    assert other.teacher_qoe != demos.teacher_qoe


def test_a_trace_too_slow_at_every_level_is_skipped_not_fatal() -> None:
    from traces.types import Trace

    dead = Trace(np.array([0.0, 1.0]), np.array([10.0, 10.0]), "dead")  # 10 bit/s
    demos = teacher_demonstrations((TRACES[0], dead), VIDEO, CONFIG, QoEWeights(), ENV, seed=0)
    assert demos.skipped == 1 and len(demos.teacher_qoe) == 1 and set(demos.episode.tolist()) == {0}


def test_cloning_makes_the_policy_choose_the_teachers_actions() -> None:
    config = TrainConfig(synthetic_traces=2, val_synthetic_traces=1, n_envs=2, n_filters=8, hidden_sizes=(32,),
                         observation="abr-6row-v2", batch_size=64, tensorboard=False)
    inputs = resolve_inputs(config)
    inputs = dataclasses.replace(inputs, video=VIDEO)
    vec_env = make_training_vec_env(env_spec(config, inputs), config.n_envs, config.seed)
    try:
        model = build_model(config, vec_env, VIDEO.n_levels, None)
        demos = teacher_demonstrations(TRACES * 3, VIDEO, CONFIG, QoEWeights(), ENV, seed=0, per_trace=4)
        report = pretrain_policy(model, demos, epochs=60, batch_size=64, learning_rate=3e-3, vf_coef=0.5, seed=0)
    finally:
        vec_env.close()
    assert report.demonstrations == 48 and report.decisions == 48 * 11
    assert report.holdout_decisions == int((demos.episode % HOLDOUT_EVERY == HOLDOUT_EVERY - 1).sum()) > 0
    # A random 6-way policy agrees about 1 time in 6; the clone must have learnt the teacher's choices.
    assert report.train_agreement > 0.8
    assert report.final_actor_loss < 0.6 and np.isfinite(report.final_critic_loss)


def test_a_run_with_a_teacher_starts_from_the_clone_and_records_the_stage(tmp_path: Path) -> None:
    config = TrainConfig(total_timesteps=256, n_envs=2, n_steps=64, batch_size=64, synthetic_traces=3,
                         val_synthetic_traces=2, eval_freq_steps=0, n_filters=4, hidden_sizes=(8,),
                         observation="abr-6row-v2", tensorboard=False, imitation_teacher="optimal",
                         imitation_epochs=2, imitation_dagger_rounds=1, imitation_dagger_states=2)
    result = train(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / IMITATION_FILE).read_text())
    assert record["teacher"] == "optimal" and record["demonstrations"] == 3 and record["epochs"] == 2
    # The last fit saw the demonstrations and one DAgger round's labels (2 per session); its critic loss is
    # that of the demonstrations alone (the labels have no return), so it stays a number.
    assert record["decisions"] == 3 * 47 + 3 * 2 and 0.0 <= record["train_agreement"] <= 1.0
    assert [r["labelled"] for r in record["dagger_rounds"]] == [6] and np.isfinite(record["final_critic_loss"])
    again = train(config, tmp_path / "again")  # the same seed, the same model (the imitation stage included)
    repeated = json.loads((tmp_path / "again" / IMITATION_FILE).read_text())
    assert repeated["final_actor_loss"] == record["final_actor_loss"]
    first, second = (PPO.load(str(r.model_path), device="cpu").policy.state_dict() for r in (result, again))
    assert all(np.array_equal(first[k].numpy(), second[k].numpy()) for k in first)
    plain = train(dataclasses.replace(config, imitation_teacher="none"), tmp_path / "plain")
    assert not (tmp_path / "plain" / IMITATION_FILE).exists()
    # The validation before the first step is the cloned policy's, not the fresh network's.
    assert result.evaluations[0].mean_qoe != plain.evaluations[0].mean_qoe
    with pytest.raises(ConfigError, match="imitation_teacher='mpc' is not one of none, optimal"):
        TrainConfig(imitation_teacher="mpc")


def test_a_dagger_round_labels_the_students_states_with_the_teachers_rest_of_session() -> None:
    from abr.training.imitation import merge, student_demonstrations
    from agents.optimal import SessionState, solve_from_state

    class Always:  # a student that always asks for the lowest level (the greedy action of these logits)
        def get_distribution(self, obs):  # noqa: ANN001, ANN201 - the one call student_demonstrations makes
            import torch

            probs = torch.zeros((obs.shape[0], VIDEO.n_levels))
            probs[:, 0] = 1.0
            return type("D", (), {"distribution": torch.distributions.Categorical(probs=probs)})()

    draws = ((0, 1.5, 3), (2, 0.7, 1))
    labelled = student_demonstrations(Always(), TRACES, draws, VIDEO, CONFIG, QoEWeights(), ENV, seed=5, round_idx=0,
                                      per_episode=3)
    assert len(labelled) == 6 and np.isnan(labelled.returns).all()
    assert labelled.episode.tolist() == [0, 0, 0, 1, 1, 1]
    # The student's QoE is that of always the lowest level, as the environment measures it.
    env = AbrEnv([TRACES[0].scaled(1.5)], VIDEO, CONFIG, QoEWeights(), ENV, core="fast")
    obs, _ = env.reset(seed=0, options={"trace_idx": 0, "start_idx": 3})
    total, done, seen = 0.0, False, []
    while not done:
        seen.append(obs)
        obs, reward, done, _, _ = env.step(0)
        total += reward
    assert labelled.teacher_qoe[0] == pytest.approx(total)
    # Each label is the teacher's first quality from the state the student reached at that observation.
    for row in np.flatnonzero(labelled.episode == 0):
        decision = next(i for i, o in enumerate(seen) if np.array_equal(o, labelled.observations[row]))
        env.reset(seed=0, options={"trace_idx": 0, "start_idx": 3})
        for _ in range(decision):
            env.step(0)
        s = env.session
        state = SessionState(s.next_chunk_idx, float(s.clock_s), s.buffer_s, s.is_playing, s.outcomes[-1].quality_idx)
        plan = solve_from_state(TRACES[0].scaled(1.5), VIDEO, CONFIG, QoEWeights(), state, max_beam_width=1024)
        assert labelled.actions[row] == plan.qualities[0]
    both = merge(teacher_demonstrations(TRACES[:1], VIDEO, CONFIG, QoEWeights(), ENV, seed=0), labelled)
    assert len(both) == 11 + 6 and both.episode.tolist()[11:] == [1, 1, 1, 2, 2, 2]
    assert np.isfinite(both.returns[:11]).all()
