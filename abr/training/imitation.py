"""Imitation learning from a solver (Comyco-style): a first stage before reinforcement learning, or the whole run.

Comyco (Huang et al., ACM MM 2019) trains a bitrate policy by imitating a solver that knows the network's
future, and reports far fewer samples than reinforcement learning from scratch. This module gives a run
(``TrainConfig.imitation_teacher``) such a stage, with one of two teachers:

* ``"optimal"``: the full-session offline optimum (:func:`agents.optimal.solve_offline_optimum`), which
  knows the whole trace;
* ``"horizon-mpc"``: Comyco's own "instant solver" (:class:`agents.instant_solver.InstantSolver`), which
  knows the true download times of the next ``imitation_horizon`` chunks only.

1. **Demonstrations** (:func:`teacher_demonstrations`): the sessions are drawn by :func:`draw_sessions`: for
   each entry of the training pool (its repeats included, so the pool's weighting carries over)
   ``imitation_demos_per_trace`` draws, or ``imitation_sessions`` entries drawn uniformly from the pool; each
   with a throughput scale factor log-uniform in the run's ``[throughput_scale_low, throughput_scale_high]``
   and a start offset uniform over the trace, from ``SeedSequence(seed, spawn_key=(IMITATION_SPAWN_KEY,))``.
   The teacher works with the preset's deterministic dynamics (the run's download-time noise is a training
   randomisation the solvers are not defined for). The optimum's plan is replayed in the SimPy environment
   (evaluation mode, the run's observation encoder), which gives the observation the student sees before
   every decision; the replay's QoE must equal the plan's (it is checked, so a label never belongs to another
   state). The instant solver plays each session itself on the fast core, deciding at every chunk. A trace the
   core cannot finish at any level at its drawn scale has no plan and is counted as skipped.
2. **Cloning** (:func:`pretrain_policy`): the actor is fitted to the teacher's actions (cross-entropy) and
   the critic to the teacher's discounted, ``reward_scale``-scaled returns (mean squared error), with Adam,
   ``imitation_epochs`` passes over shuffled minibatches of ``batch_size``. One demonstration in ten (by
   index, so whole episodes) is held out to report how often the student agrees with the teacher on
   decisions it was not fitted to.
3. **DAgger** (:func:`student_demonstrations`, ``imitation_dagger_rounds``): the student plays the
   demonstrations' sessions greedily, the teacher labels ``imitation_dagger_states`` of the states it reaches
   per session (all of them when the session has no more), the labels join the data set and the fit goes on
   over everything so far (Comyco's aggregated experience of the student's own trajectories).

The reinforcement-learning stage then starts from these weights (``train``'s ``model.learn``): the validation
"before the first step" of ``evaluations.csv`` is the imitated policy's. With ``total_timesteps = 0`` there is
no reinforcement learning: that validation is the run's only one and ``best_model.zip`` is the imitated policy
(the Comyco-style recipe ``docs/experiments/comyco/comyco.toml``; measured, not shipped:
``docs/baselines/comyco.md``).
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from agents.instant_solver import DEFAULT_HORIZON, InstantSolver
from agents.optimal import SessionState, solve_from_state, solve_offline_optimum
from simulator.config import SimConfig
from simulator.env import AbrEnv, EnvConfig
from simulator.errors import ConfigError, SimulationInvariantError
from simulator.fast_session import FastSession
from simulator.observation import observation_shape
from simulator.qoe import QoEWeights
from traces.types import Trace, Video

logger = logging.getLogger(__name__)

#: The teachers a run may imitate (``TrainConfig.imitation_teacher``); ``"none"``: no imitation stage.
#: ``"optimal"``: the full-session offline optimum; ``"horizon-mpc"``: Comyco's instant solver
#: (:class:`agents.instant_solver.InstantSolver`, the true throughput of the next few chunks only).
TEACHERS: tuple[str, ...] = ("none", "optimal", "horizon-mpc")
#: Stream of the demonstrations' draws (scale, start offset), apart from the environments' own.
IMITATION_SPAWN_KEY = 11
#: Every tenth demonstration is held out of the fit to measure agreement with the teacher.
HOLDOUT_EVERY = 10
_REPLAY_TOLERANCE = 1e-6  # QoE units: replaying the plan must reproduce the plan's QoE


@dataclass(frozen=True, slots=True)
class Demonstrations:
    """The teacher's decisions and the observations the student sees before them.

    Attributes:
        observations: ``(n, *observation_shape)`` float32.
        actions: ``(n,)`` the teacher's quality index for each observation.
        returns: ``(n,)`` discounted sum of the scaled rewards from that decision to the end of the episode.
        episode: ``(n,)`` the demonstration each row belongs to.
        teacher_qoe: the teacher's QoE (first chunk excluded) of every demonstration.
        skipped: draws without a plan (the core cannot finish a chunk of the scaled trace at any level).
        solve_s: wall time of the teacher's solves.
        draws: (trace index, scale, start offset) of every demonstration, in order.
    """

    observations: npt.NDArray[np.float32]
    actions: npt.NDArray[np.int64]
    returns: npt.NDArray[np.float32]
    episode: npt.NDArray[np.int64]
    teacher_qoe: tuple[float, ...]
    skipped: int
    solve_s: float
    draws: tuple[tuple[int, float, int], ...] = ()

    def __len__(self) -> int:
        return int(self.actions.size)


@dataclass(frozen=True, slots=True)
class ImitationReport:
    """What the cloning stage did (``imitation.json`` of a run).

    ``horizon``: the ``"horizon-mpc"`` teacher's (``None`` for the optimum); ``stage_s``: the wall time of the
    whole stage (demonstrations, DAgger rounds and fits); ``solve_s``/``fit_s``: the teacher's solves (all
    rounds) and the last fit. ``teacher_discount``: the factor on the throughput the teacher plans with;
    ``kept_fit``/``kept_student_mean_qoe``: with ``imitation_keep_best``, the fit whose weights the stage kept
    (0: the first, ``r``: after DAgger round ``r``) and the student's mean QoE on the sessions with them
    (``fit_student_mean_qoe``: that QoE after every fit); the agreement and loss figures are the kept fit's.
    """

    teacher: str
    demonstrations: int
    decisions: int
    skipped: int
    teacher_mean_qoe: float
    epochs: int
    train_agreement: float
    holdout_agreement: float
    holdout_decisions: int
    final_actor_loss: float
    final_critic_loss: float
    solve_s: float
    fit_s: float
    dagger_rounds: tuple[dict[str, Any], ...] = ()
    horizon: int | None = None
    stage_s: float = 0.0
    teacher_discount: float = 1.0
    kept_fit: int | None = None
    kept_student_mean_qoe: float | None = None
    fit_student_mean_qoe: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def draw_sessions(traces: Sequence[Trace], *, seed: int, per_trace: int = 1, scale_low: float = 1.0,
                  scale_high: float = 1.0, sessions: int = 0) -> tuple[tuple[int, float, int], ...]:
    """The demonstrations' sessions: (trace index, throughput scale, start offset) of each, in order.

    ``sessions = 0``: ``per_trace`` sessions of every entry of ``traces`` in turn; else ``sessions`` entries
    drawn uniformly (with replacement, so the pool's repeats keep their weight). Scales are log-uniform in
    ``[scale_low, scale_high]``, start offsets uniform over the trace; all from ``SeedSequence(seed,
    spawn_key=(IMITATION_SPAWN_KEY,))``.

    >>> trace = Trace(np.array([0.0, 1.0, 2.0]), np.array([3e6, 0.5e6, 2e6]))
    >>> [d[0] for d in draw_sessions([trace, trace], seed=0, per_trace=2)]
    [0, 0, 1, 1]
    >>> len(draw_sessions([trace, trace], seed=0, sessions=5))
    5
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(IMITATION_SPAWN_KEY,)))
    if sessions:
        entries = [int(i) for i in rng.integers(0, len(traces), size=sessions)]
    else:
        entries = [i for i in range(len(traces)) for _ in range(per_trace)]
    draws = []
    for trace_idx in entries:
        trace = traces[trace_idx]
        scale = math.exp(float(rng.uniform(math.log(scale_low), math.log(scale_high))))
        start_idx = int(rng.integers(1, trace.times_s.size)) if trace.times_s.size > 1 else 1
        draws.append((trace_idx, scale, start_idx))
    return tuple(draws)


def teacher_demonstrations(traces: Sequence[Trace], video: Video, sim_config: SimConfig, qoe: QoEWeights,
                           env_config: EnvConfig, *, seed: int, per_trace: int = 1, scale_low: float = 1.0,
                           scale_high: float = 1.0, gamma: float = 0.99, reward_scale: float = 1.0,
                           max_beam_width: int = 4096, teacher: str = "optimal", horizon: int = DEFAULT_HORIZON,
                           sessions: int = 0, discount: float = 1.0) -> Demonstrations:
    """The teacher's decisions on the drawn sessions (:func:`draw_sessions`; see the module docstring).

    ``teacher = "optimal"``: the offline optimum's plan of each session, replayed in the SimPy environment.
    ``teacher = "horizon-mpc"``: the instant solver (``horizon`` chunks ahead) plays each session itself on the
    fast core, labelling every decision it makes (:func:`student_demonstrations` with the teacher as player);
    ``discount`` < 1 makes it plan on the trace's throughput times ``discount`` (it still plays the true trace).

    >>> from simulator.config import preset
    >>> trace = Trace(np.array([0.0, 1.0, 2.0]), np.array([3e6, 0.5e6, 2e6]))
    >>> video = Video.cbr([0.3e6, 1e6, 2e6], chunk_duration_s=4.0, n_chunks=6)
    >>> demos = teacher_demonstrations([trace], video, preset("pensieve"), QoEWeights(),
    ...                                EnvConfig(training=False), seed=0, per_trace=2)
    >>> len(demos), demos.observations.shape[1:], sorted(set(demos.episode.tolist()))
    (10, (6, 8), [0, 1])
    """
    draws = draw_sessions(traces, seed=seed, per_trace=per_trace, scale_low=scale_low, scale_high=scale_high,
                          sessions=sessions)
    if teacher == "horizon-mpc":
        return _play_sessions(None, traces, draws, video, sim_config, qoe, env_config, rng=None, per_episode=0,
                              teacher=teacher, horizon=horizon, max_beam_width=max_beam_width, gamma=gamma,
                              reward_scale=reward_scale, discount=discount)
    if discount != 1.0:
        raise ConfigError(f"discount={discount!r}: only the horizon-mpc teacher plans on a discounted throughput")
    if teacher != "optimal":
        raise ConfigError(f"teacher={teacher!r} is not one of {', '.join(TEACHERS[1:])}")
    replay_config = dataclasses.replace(env_config, training=False, throughput_scale_low=1.0,
                                        throughput_scale_high=1.0)
    observations: list[npt.NDArray[np.float32]] = []
    actions: list[int] = []
    returns: list[float] = []
    episode: list[int] = []
    teacher_qoe: list[float] = []
    skipped = 0
    solve_s = 0.0
    solved: list[tuple[int, float, int]] = []
    for trace_idx, scale, start_idx in draws:
        trace = traces[trace_idx]
        scaled = trace.scaled(scale) if scale != 1.0 else trace
        started = time.perf_counter()
        try:
            plan = solve_offline_optimum(scaled, video, sim_config, qoe, start_idx, max_beam_width=max_beam_width)
        except SimulationInvariantError:
            skipped += 1
            continue
        finally:
            solve_s += time.perf_counter() - started
        obs, rewards = _replay(scaled, video, sim_config, qoe, replay_config, start_idx, plan.qualities)
        if not math.isclose(sum(rewards), plan.qoe_excl_first, rel_tol=0.0, abs_tol=_REPLAY_TOLERANCE):
            raise SimulationInvariantError(
                f"replaying the offline optimum of {trace.name!r} (scale {scale:.4g}, start {start_idx}) gave "
                f"QoE {sum(rewards):.6f}, not the plan's {plan.qoe_excl_first:.6f}: the environment and the "
                "optimum disagree on the session")
        observations.extend(obs)
        actions.extend(plan.qualities[len(plan.qualities) - len(obs):])
        returns.extend(_discounted(rewards, gamma, reward_scale))
        episode.extend([len(teacher_qoe)] * len(obs))
        teacher_qoe.append(plan.qoe_excl_first)
        solved.append((trace_idx, scale, start_idx))
        if len(teacher_qoe) % 200 == 0:
            logger.info("imitation: %d demonstrations solved (%.1f s)", len(teacher_qoe), solve_s)
    return Demonstrations(
        observations=np.asarray(observations, dtype=np.float32).reshape(-1, *_shape(video, env_config)),
        actions=np.asarray(actions, dtype=np.int64),
        returns=np.asarray(returns, dtype=np.float32),
        episode=np.asarray(episode, dtype=np.int64),
        teacher_qoe=tuple(teacher_qoe), skipped=skipped, solve_s=solve_s, draws=tuple(solved))


def student_demonstrations(policy: Any, traces: Sequence[Trace], draws: Sequence[tuple[int, float, int]],
                           video: Video, sim_config: SimConfig, qoe: QoEWeights, env_config: EnvConfig, *, seed: int,
                           round_idx: int, per_episode: int, max_beam_width: int = 1024, teacher: str = "optimal",
                           horizon: int = DEFAULT_HORIZON, discount: float = 1.0) -> Demonstrations:
    """One DAgger round: the teacher's decisions in the states the student reaches.

    The student (``policy``, greedy) plays each drawn session (trace, scale, start offset of ``draws``) on the
    fast core; at ``per_episode`` of its decisions (all of them if the session has no more), drawn at random
    (``SeedSequence(seed, spawn_key=(IMITATION_SPAWN_KEY, 1 + round_idx))``), the teacher labels the observation
    from the state reached: ``"optimal"``, :func:`agents.optimal.solve_from_state` (the rest of the session,
    knowing the whole trace), or ``"horizon-mpc"``, :class:`agents.instant_solver.InstantSolver` (the next
    ``horizon`` chunks, on the throughput times ``discount``). ``returns`` are NaN (the teacher's return from a
    state the student reached is not the student's): these rows fit the actor only. ``teacher_qoe`` holds the
    student's QoE (first chunk excluded) of every session it played; a session whose trace the teacher cannot
    solve is skipped.
    """
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(IMITATION_SPAWN_KEY, 1 + round_idx)))
    return _play_sessions(policy, traces, draws, video, sim_config, qoe, env_config, rng=rng, per_episode=per_episode,
                          teacher=teacher, horizon=horizon, max_beam_width=max_beam_width, discount=discount)


def _labeller(teacher: str, trace: Trace, video: Video, sim_config: SimConfig, qoe: QoEWeights, horizon: int,
              max_beam_width: int, discount: float = 1.0) -> Callable[[SessionState], int]:
    """The teacher's decision from a mid-session state of ``trace`` (may raise SimulationInvariantError).

    The ``"horizon-mpc"`` teacher plans on ``trace`` scaled by ``discount`` (same times, so a state's clock
    means the same moment of the trace)."""
    if teacher == "horizon-mpc":
        planned = trace.scaled(discount) if discount != 1.0 else trace
        return InstantSolver(planned, video, sim_config, qoe, horizon=horizon).first_quality
    if teacher != "optimal":
        raise ConfigError(f"teacher={teacher!r} is not one of {', '.join(TEACHERS[1:])}")
    return lambda state: solve_from_state(trace, video, sim_config, qoe, state,
                                          max_beam_width=max_beam_width).qualities[0]


def _play_sessions(policy: Any, traces: Sequence[Trace], draws: Sequence[tuple[int, float, int]], video: Video,
                   sim_config: SimConfig, qoe: QoEWeights, env_config: EnvConfig, *, rng: np.random.Generator | None,
                   per_episode: int, teacher: str, horizon: int, max_beam_width: int, gamma: float = 0.99,
                   reward_scale: float = 1.0, discount: float = 1.0) -> Demonstrations:
    """Play the drawn sessions on the fast core and label decisions with the teacher's.

    ``policy = None``: the teacher plays and labels every decision it makes (``returns``: its discounted,
    scaled returns); else the greedy student plays and ``per_episode`` decisions drawn with ``rng`` are
    labelled (``returns`` NaN).
    """
    replay_config = dataclasses.replace(env_config, training=False, throughput_scale_low=1.0,
                                        throughput_scale_high=1.0)
    observations: list[npt.NDArray[np.float32]] = []
    actions: list[int] = []
    returns: list[float] = []
    episode: list[int] = []
    played_qoe: list[float] = []
    played: list[tuple[int, float, int]] = []
    skipped = 0
    solve_s = 0.0
    for trace_idx, scale, start_idx in draws:
        trace = traces[trace_idx].scaled(scale) if scale != 1.0 else traces[trace_idx]
        started = time.perf_counter()
        try:
            label = _labeller(teacher, trace, video, sim_config, qoe, horizon, max_beam_width, discount)
        except SimulationInvariantError:
            skipped += 1
            continue
        finally:
            solve_s += time.perf_counter() - started
        env = AbrEnv([trace], video, sim_config, qoe, replay_config, core="fast")
        obs, info = env.reset(seed=0, options={"trace_idx": 0, "start_idx": start_idx})
        first = 1 if "first_chunk" in info else 0
        n_decisions = env.video.n_chunks - first
        if rng is None:
            labelled: set[int] = set(range(n_decisions))
        else:
            labelled = set(rng.choice(n_decisions, size=min(per_episode, n_decisions), replace=False).tolist())
        rows: list[int] = []
        rewards: list[float] = []
        terminated, decision = False, 0
        while not terminated:
            session = env.session
            chosen = None
            if (decision in labelled or policy is None) and isinstance(session, FastSession) and session.outcomes:
                state = SessionState(session.next_chunk_idx, float(session.clock_s), float(session.buffer_s),
                                     bool(session.is_playing), int(session.outcomes[-1].quality_idx))
                started = time.perf_counter()
                chosen = label(state)
                solve_s += time.perf_counter() - started
                if decision in labelled:
                    observations.append(obs)
                    actions.append(chosen)
                    rows.append(decision)
            if policy is not None:
                action = _greedy(policy, obs)
            else:
                action = chosen if chosen is not None else 0  # no state yet (no forced first chunk): the lowest
            obs, reward, terminated, _, _ = env.step(action)
            rewards.append(float(reward))
            decision += 1
        if policy is None:
            discounted = _discounted(rewards, gamma, reward_scale)
            returns.extend(discounted[i] for i in rows)
        else:
            returns.extend([math.nan] * len(rows))
        episode.extend([len(played_qoe)] * len(rows))
        played_qoe.append(sum(rewards))
        played.append((trace_idx, scale, start_idx))
    return Demonstrations(
        observations=np.asarray(observations, dtype=np.float32).reshape(-1, *_shape(video, env_config)),
        actions=np.asarray(actions, dtype=np.int64), returns=np.asarray(returns, dtype=np.float32),
        episode=np.asarray(episode, dtype=np.int64), teacher_qoe=tuple(played_qoe), skipped=skipped,
        solve_s=solve_s, draws=tuple(played))


def _shape(video: Video, env_config: EnvConfig) -> tuple[int, int]:
    return observation_shape(video.n_levels, env_config.history_len)


def _greedy(policy: Any, obs: npt.NDArray[np.float32]) -> int:
    import torch

    with torch.no_grad():
        return int(policy.get_distribution(torch.as_tensor(obs[None])).distribution.probs.argmax())


def merge(a: Demonstrations, b: Demonstrations) -> Demonstrations:
    """The rows of both (``b``'s episodes renumbered after ``a``'s); ``teacher_qoe`` and ``draws`` are ``a``'s."""
    offset = int(a.episode.max()) + 1 if len(a) else 0
    return Demonstrations(np.concatenate([a.observations, b.observations]), np.concatenate([a.actions, b.actions]),
                          np.concatenate([a.returns, b.returns]), np.concatenate([a.episode, b.episode + offset]),
                          a.teacher_qoe, a.skipped, a.solve_s + b.solve_s, a.draws)


def _replay(trace: Trace, video: Video, sim_config: SimConfig, qoe: QoEWeights, env_config: EnvConfig,
            start_idx: int, qualities: Sequence[int]) -> tuple[list[npt.NDArray[np.float32]], list[float]]:
    """Play ``qualities`` in the SimPy environment: the observation before each decision and its reward."""
    env = AbrEnv([trace], video, sim_config, qoe, env_config)
    obs, info = env.reset(seed=0, options={"trace_idx": 0, "start_idx": start_idx})
    first = 1 if "first_chunk" in info else 0
    observations, rewards = [], []
    for quality in qualities[first:]:
        observations.append(obs)
        obs, reward, terminated, _, _ = env.step(int(quality))
        rewards.append(reward)
        if terminated:
            break
    return observations, rewards


def _discounted(rewards: Sequence[float], gamma: float, scale: float) -> list[float]:
    """The discounted return from every step to the end of the episode, of the scaled rewards.

    >>> _discounted([1.0, 1.0, 1.0], 0.5, 2.0)
    [3.5, 3.0, 2.0]
    """
    out, total = [], 0.0
    for reward in reversed(rewards):
        total = reward * scale + gamma * total
        out.append(total)
    return out[::-1]


def pretrain_policy(model: Any, demos: Demonstrations, *, epochs: int, batch_size: int, learning_rate: float,
                    vf_coef: float, seed: int, teacher: str = "optimal") -> ImitationReport:
    """Fit ``model``'s actor to the teacher's actions and its critic to the teacher's returns (in place).

    Deterministic for a seed: the minibatches come from ``numpy.random.default_rng(seed)``; torch's own state
    is the model's (seeded by SB3) and one thread.
    """
    import torch

    policy = model.policy
    holdout = demos.episode % HOLDOUT_EVERY == HOLDOUT_EVERY - 1
    fit_idx = np.flatnonzero(~holdout) if (~holdout).any() else np.arange(len(demos))
    obs = torch.as_tensor(demos.observations)
    actions = torch.as_tensor(demos.actions)
    returns = torch.as_tensor(demos.returns)
    optimizer = torch.optim.Adam(policy.parameters(), lr=learning_rate)
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    actor_loss = critic_loss = float("nan")
    policy.set_training_mode(True)
    for epoch in range(epochs):
        order = fit_idx[rng.permutation(fit_idx.size)]
        actor_sum = critic_sum = 0.0
        for begin in range(0, order.size, batch_size):
            batch = torch.as_tensor(order[begin:begin + batch_size])
            values, log_prob, _ = policy.evaluate_actions(obs[batch], actions[batch])
            actor = -log_prob.mean()
            target = returns[batch]
            known = torch.isfinite(target)  # DAgger rows have no return: they fit the actor only
            critic = (torch.nn.functional.mse_loss(values.flatten()[known], target[known]) if bool(known.any())
                      else torch.zeros(()))
            loss = actor + vf_coef * critic
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            actor_sum += float(actor.detach()) * batch.numel()
            critic_sum += float(critic.detach()) * batch.numel()
        actor_loss, critic_loss = actor_sum / order.size, critic_sum / order.size
        logger.info("imitation epoch %d/%d: actor loss %.4f, critic loss %.4f", epoch + 1, epochs, actor_loss,
                    critic_loss)
    policy.set_training_mode(False)
    fit_s = time.perf_counter() - started
    agree = _agreement(policy, obs, actions)
    held = np.flatnonzero(holdout)
    return ImitationReport(
        teacher=teacher, demonstrations=len(demos.teacher_qoe), decisions=len(demos), skipped=demos.skipped,
        teacher_mean_qoe=float(np.mean(demos.teacher_qoe)) if demos.teacher_qoe else float("nan"), epochs=epochs,
        train_agreement=float(agree[fit_idx].mean()), holdout_agreement=float(agree[held].mean()) if held.size
        else float("nan"), holdout_decisions=int(held.size), final_actor_loss=actor_loss,
        final_critic_loss=critic_loss, solve_s=demos.solve_s, fit_s=fit_s)


def _agreement(policy: Any, obs: Any, actions: Any) -> npt.NDArray[np.bool_]:
    """Whether the policy's greedy action equals the teacher's, per decision."""
    import torch

    with torch.no_grad():
        chosen = [policy.get_distribution(obs[i:i + 4096]).distribution.probs.argmax(dim=1)
                  for i in range(0, obs.shape[0], 4096)]
    return (torch.cat(chosen) == actions).numpy()
