"""The Comyco-style imitation: the instant-solver teacher, its demonstrations and imitation-only training runs."""

from __future__ import annotations

import dataclasses
import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from .._requirements import require_module

require_module("stable_baselines3", extra="rl")

from stable_baselines3 import PPO  # noqa: E402

from abr.training.config import TrainConfig  # noqa: E402
from abr.training.imitation import draw_sessions, teacher_demonstrations  # noqa: E402
from abr.training.run import IMITATION_FILE, train  # noqa: E402
from agents.instant_solver import InstantSolver  # noqa: E402
from agents.optimal import SessionState  # noqa: E402
from simulator import ConfigError, QoEWeights  # noqa: E402
from simulator.config import preset  # noqa: E402
from simulator.env import AbrEnv, EnvConfig  # noqa: E402
from traces.synthetic import generate_trace_set  # noqa: E402
from traces.types import Trace, Video  # noqa: E402

CONFIG = preset("pensieve")  # RTT 0.08 s, payload 95% of the trace, first chunk forced to level 1
ENV = EnvConfig(training=False, observation="abr-6row-v2")


def test_the_instant_solver_by_hand_on_a_constant_link() -> None:
    # 2 Mbit/s, 4 s chunks of 0.5/1/1.5 Mbit/s, 6 s buffered, last chunk at the lowest level. Two chunks ahead:
    # the top level takes 6e6 / (0.95 * 2e6) + 0.08 = 3.24 s per chunk, less than the buffer (6 s, then
    # 6.76 s), so no stall; QoE = 1.5 + 1.5 - |1.5 - 0.5| = 2.0, against 1.5 for (1, 2) and 1.0 for (0, 0).
    trace = Trace(np.array([0.0, 60.0]), np.array([2e6, 2e6]))
    video = Video.cbr([0.5e6, 1e6, 1.5e6], chunk_duration_s=4.0, n_chunks=6)
    plan = InstantSolver(trace, video, CONFIG, horizon=2).plan(SessionState(2, 10.0, 6.0, True, 0))
    assert plan.qualities == (2, 2) and plan.qoe == pytest.approx(2.0, abs=1e-12) and plan.sequences == 9
    # Near the end the plan is shorter than the horizon: chunk 5 is the last one. After the top level it stays
    # there (1.5); after the lowest, 0.5 and 1.5 - |1.5 - 0.5| tie, and ties go to the lowest level.
    solver = InstantSolver(trace, video, CONFIG, horizon=4)
    assert solver.plan(SessionState(5, 10.0, 6.0, True, 2)).qualities == (2,)
    assert solver.plan(SessionState(5, 10.0, 6.0, True, 0)).qualities == (0,)
    with pytest.raises(ConfigError, match="horizon=0 must be an integer >= 1"):
        InstantSolver(trace, video, CONFIG, horizon=0)


def _brute_force(trace: Trace, video: Video, prefix: list[int], horizon: int) -> tuple[tuple[int, ...], float]:
    """Every sequence of the next ``horizon`` chunks after ``prefix``, each played in the SimPy environment."""
    results = []
    left = video.n_chunks - 1 - len(prefix)
    for seq in itertools.product(range(video.n_levels), repeat=min(horizon, left)):
        env = AbrEnv([trace], video, CONFIG, QoEWeights(), ENV)
        env.reset(seed=0, options={"trace_idx": 0, "start_idx": 2})
        for action in prefix:
            env.step(action)
        results.append((sum(float(env.step(a)[1]) for a in seq), seq))
    best = max(r[0] for r in results)
    return next(seq for qoe, seq in results if qoe == best), best  # ties: the first in lexicographic order


def test_the_instant_solvers_plan_is_the_best_sequence_played_in_the_simpy_core() -> None:
    # A link that collapses after a few seconds and recovers: what the solver foresees changes its choice.
    trace = Trace(np.arange(0.0, 40.0, 2.0), np.array([3e6, 3e6, 3e6, 3e6, 0.3e6, 0.3e6, 0.3e6, 4e6, 4e6, 4e6] * 2))
    video = Video.cbr([0.3e6, 1.2e6, 2.85e6], chunk_duration_s=4.0, n_chunks=7)
    choices = set()
    for prefix in ([], [2], [2, 0], [1, 1, 2], [0, 0, 0, 0, 2]):
        env = AbrEnv([trace], video, CONFIG, QoEWeights(), ENV, core="fast")
        env.reset(seed=0, options={"trace_idx": 0, "start_idx": 2})
        for action in prefix:
            env.step(action)
        s = env.session
        state = SessionState(s.next_chunk_idx, float(s.clock_s), s.buffer_s, s.is_playing, s.outcomes[-1].quality_idx)
        plan = InstantSolver(trace, video, CONFIG, horizon=3).plan(state)
        expected, best = _brute_force(trace, video, prefix, 3)
        assert plan.qualities == expected and plan.qoe == pytest.approx(best, abs=1e-9)
        choices.add(plan.qualities[0])
    assert len(choices) > 1  # the cases differ: a solver that always asked for one level would fail


@pytest.mark.parametrize("discount", [1.0, 0.9])
def test_the_instant_solver_plays_and_labels_every_decision_of_its_demonstrations(discount: float) -> None:
    traces = tuple(generate_trace_set(5, 3))
    video = Video.cbr([0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6], chunk_duration_s=4.0, n_chunks=10)
    demos = teacher_demonstrations(traces, video, CONFIG, QoEWeights(), ENV, seed=2, scale_low=0.5, scale_high=2.0,
                                   gamma=0.5, reward_scale=0.1, teacher="horizon-mpc", horizon=2, sessions=4,
                                   discount=discount)
    draws = draw_sessions(traces, seed=2, scale_low=0.5, scale_high=2.0, sessions=4)
    assert demos.draws == draws and len(demos) == 4 * 9 and demos.skipped == 0
    for number, (trace_idx, scale, start_idx) in enumerate(draws):
        trace = traces[trace_idx].scaled(scale)  # played as is; a discounting teacher plans on less throughput
        solver = InstantSolver(trace.scaled(discount), video, CONFIG, horizon=2)
        env = AbrEnv([trace], video, CONFIG, QoEWeights(), ENV, core="fast")
        obs, _ = env.reset(seed=0, options={"trace_idx": 0, "start_idx": start_idx})
        rows = np.flatnonzero(demos.episode == number)
        total, rewards = 0.0, []
        for row in rows:  # the observation before each decision, labelled with the solver's choice there
            s = env.session
            state = SessionState(s.next_chunk_idx, float(s.clock_s), s.buffer_s, s.is_playing,
                                 s.outcomes[-1].quality_idx)
            np.testing.assert_array_equal(demos.observations[row], obs)
            assert demos.actions[row] == solver.first_quality(state)
            obs, reward, _, _, _ = env.step(int(demos.actions[row]))
            total += reward
            rewards.append(reward)
        assert demos.teacher_qoe[number] == pytest.approx(total)
        assert demos.returns[rows[-1]] == pytest.approx(0.1 * rewards[-1], rel=1e-6)  # float32
        assert demos.returns[rows[-2]] == pytest.approx(0.1 * rewards[-2] + 0.5 * 0.1 * rewards[-1], rel=1e-5)


def test_a_discounting_teacher_asks_for_less() -> None:
    traces = tuple(generate_trace_set(5, 3))
    video = Video.cbr([0.3e6, 0.75e6, 1.2e6, 1.85e6, 2.85e6, 4.3e6], chunk_duration_s=4.0, n_chunks=10)
    labels = {discount: teacher_demonstrations(traces, video, CONFIG, QoEWeights(), ENV, seed=2, scale_low=0.5,
                                               scale_high=2.0, teacher="horizon-mpc", horizon=2, sessions=4,
                                               discount=discount)
              for discount in (1.0, 0.5)}
    bitrates = {d: float(video.bitrates_bps[demos.actions].mean()) for d, demos in labels.items()}
    assert bitrates[0.5] < bitrates[1.0]  # it plans on half the throughput: lower bitrates, fewer stalls
    with pytest.raises(ConfigError, match="only the horizon-mpc teacher"):
        teacher_demonstrations(traces, video, CONFIG, QoEWeights(), ENV, seed=2, sessions=1, discount=0.9)
    with pytest.raises(ConfigError, match="imitation_teacher_discount=1.5 must be a number > 0 and <= 1"):
        TrainConfig(imitation_teacher="horizon-mpc", total_timesteps=0, imitation_teacher_discount=1.5)
    with pytest.raises(ConfigError, match="imitation_keep_best='yes' must be true or false"):
        TrainConfig(imitation_keep_best="yes")  # type: ignore[arg-type]


def _tiny(**changes: object) -> TrainConfig:
    base = TrainConfig(total_timesteps=0, n_envs=2, n_steps=64, batch_size=64, synthetic_traces=3,
                       val_synthetic_traces=2, eval_freq_steps=0, n_filters=4, hidden_sizes=(8,),
                       observation="abr-6row-v2", tensorboard=False, imitation_teacher="horizon-mpc",
                       imitation_horizon=2, imitation_sessions=4, imitation_epochs=2, imitation_dagger_rounds=1,
                       imitation_dagger_states=100)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_an_imitation_only_run_is_deterministic_and_validates_the_imitated_policy(tmp_path: Path) -> None:
    from abr.training.validation import validate_policy
    from agents.rl import RLPolicy

    first, second = train(_tiny(), tmp_path / "a"), train(_tiny(), tmp_path / "b")
    assert first.timesteps == 0 and [p.timesteps for p in first.evaluations] == [0]  # no PPO step
    record = json.loads((tmp_path / "a" / IMITATION_FILE).read_text())
    assert record["teacher"] == "horizon-mpc" and record["horizon"] == 2 and record["demonstrations"] == 4
    # The teacher labelled every decision of its 4 sessions (47 each), then every state the student reached.
    assert [r["labelled"] for r in record["dagger_rounds"]] == [4 * 47] and record["decisions"] == 2 * 4 * 47
    weights = [PPO.load(str(r.best_model_path), device="cpu").policy.state_dict() for r in (first, second)]
    assert all(np.array_equal(weights[0][k].numpy(), weights[1][k].numpy()) for k in weights[0])
    assert first.evaluations[0].mean_qoe == second.evaluations[0].mean_qoe
    # The run's one validation is the imitated policy's, the model saved as best_model.zip.
    config = _tiny()
    from abr.training.run import resolve_inputs

    inputs = resolve_inputs(config)
    metrics = validate_policy(RLPolicy.from_file(first.best_model_path), inputs.val_traces, inputs.video,
                              inputs.sim_config, inputs.qoe, seed=config.seed)
    assert np.mean([m.qoe for m in metrics]) == pytest.approx(first.evaluations[0].mean_qoe)
    other = train(_tiny(imitation_horizon=1), tmp_path / "c")  # another teacher, another policy
    assert json.loads((tmp_path / "c" / IMITATION_FILE).read_text())["final_actor_loss"] != record["final_actor_loss"]
    assert other.evaluations[0].mean_qoe != first.evaluations[0].mean_qoe
    with pytest.raises(ConfigError, match="total_timesteps=0 must be an integer >= 1"):
        TrainConfig(total_timesteps=0)  # no PPO and no teacher: nothing to train


def test_keep_best_ends_with_the_fit_whose_student_played_best(tmp_path: Path) -> None:
    from abr.training.imitation import student_demonstrations
    from abr.training.run import env_spec, resolve_inputs

    config = _tiny(imitation_keep_best=True, imitation_dagger_rounds=2)
    result = train(config, tmp_path / "run")
    record = json.loads((tmp_path / "run" / IMITATION_FILE).read_text())
    per_fit = record["fit_student_mean_qoe"]  # after the first fit, after round 1, after round 2
    assert len(per_fit) == 3 and per_fit[:2] == [r["student_mean_qoe"] for r in record["dagger_rounds"]]
    assert record["kept_fit"] == int(np.argmax(per_fit)) and record["kept_student_mean_qoe"] == max(per_fit)
    assert record["kept_fit"] < 2  # this case restores earlier weights (the last fit is not the best)
    # The saved model is the kept fit: played greedily on the same sessions it scores exactly that QoE.
    inputs = resolve_inputs(config)
    demos = teacher_demonstrations(inputs.train_traces, inputs.video, inputs.sim_config, inputs.qoe,
                                   env_spec(config, inputs).env_config, seed=config.seed, sessions=4,
                                   scale_low=config.throughput_scale_low, scale_high=config.throughput_scale_high,
                                   teacher="horizon-mpc", horizon=2)
    policy = PPO.load(str(result.best_model_path), device="cpu").policy
    played = student_demonstrations(policy, inputs.train_traces, demos.draws, inputs.video, inputs.sim_config,
                                    inputs.qoe, env_spec(config, inputs).env_config, seed=config.seed, round_idx=9,
                                    per_episode=0, teacher="horizon-mpc", horizon=2)
    assert len(played) == 0 and float(np.mean(played.teacher_qoe)) == pytest.approx(record["kept_student_mean_qoe"])

