"""Where an evaluation's sessions run: in this process, on local worker processes, or on a Ray cluster.

Every engine plays the same :class:`SessionTask` list of one :class:`EvaluationJob` and hands each finished
:class:`SessionResult` to a callback in this process, in completion order. A session's result depends only
on the job and its task (its generator is ``default_rng(SeedSequence(seed, spawn_key=task.key))``), never on
the engine, the number of workers or the order of completion, so every engine gives identical results.

* ``serial``: one process, one policy instance per agent (reset at every session).
* ``local`` (the default with more than one worker): a pool of ``workers`` processes started with
  ``spawn`` (no state is inherited by fork); each receives the job once and keeps one policy per agent.
* ``ray``: the same batches as Ray tasks, on the cluster at ``address`` or on a new local instance
  (``pip install "abr-lab[ray]"``). The job is put in the object store once.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from abr.errors import ConfigError, EvaluationError, MissingExtraError
from abr.evaluation.pool import WorkerDied, WorkerPool
from abr.evaluation.tasks import EvaluationJob, SessionFailure, SessionResult, SessionTask
from agents.base import Policy
from agents.registry import make_agent
from simulator.metrics import session_metrics
from simulator.rollout import run_session

logger = logging.getLogger(__name__)

ENGINES: tuple[str, ...] = ("local", "serial", "ray")
#: Sessions per task sent to a worker: large enough to amortise the transfer, small enough to balance.
BATCH_SESSIONS = 8
ResultCallback = Callable[["SessionResult | SessionFailure"], None]


class _Player:
    """Plays tasks of one job, keeping one policy instance per agent."""

    def __init__(self, job: EvaluationJob, policies: dict[str, Policy] | None = None) -> None:
        self.job = job
        self.policies = dict(policies or {})

    def play(self, task: SessionTask) -> SessionResult | SessionFailure:
        """Play one session; an exception inside it becomes a :class:`SessionFailure` naming the session."""
        job = self.job
        agent_idx, set_idx, trace_idx = task.key
        agent = job.agents[agent_idx]
        set_name, traces = job.trace_sets[set_idx]
        trace = traces[trace_idx]
        video = job.video_of(set_idx)
        rng = np.random.default_rng(np.random.SeedSequence(job.seed, spawn_key=task.key))
        try:
            policy = self.policies.get(agent)
            if policy is None:
                policy = self.policies[agent] = make_agent(agent)
            outcomes = run_session(policy, trace, video, job.sim_config, rng=rng, qoe=job.qoe, core=job.core)
            metrics = session_metrics(outcomes, video, job.qoe, chunk_duration_s=video.chunk_duration_s)
        except Exception as exc:
            where = f" ({trace.source})" if trace.source else ""
            logger.info("agent %r failed on trace %r%s of trace set %r: %s: %s", agent, trace.name, where,
                           set_name, type(exc).__name__, exc)
            return SessionFailure(agent, set_name, trace.name, f"{type(exc).__name__}: {exc}", task.key, video.name)
        return SessionResult(agent, set_name, trace.name, metrics, tuple(outcomes), task.key, video.name)


def run_tasks(job: EvaluationJob, tasks: Sequence[SessionTask], on_result: ResultCallback, *,
              engine: str = "serial", workers: int = 1, policies: dict[str, Policy] | None = None,
              ray_address: str | None = None) -> None:
    """Play ``tasks`` of ``job`` on ``engine``, calling ``on_result`` in this process for each session.

    Args:
        job: the evaluation.
        tasks: the sessions to play (a resumed run passes only those still missing).
        on_result: called once per finished session, in completion order.
        engine: ``"serial"``, ``"local"`` (processes) or ``"ray"``.
        workers: worker processes of the local engine (``1`` plays serially).
        policies: policy instances to use in this process (serial engine), by agent name.
        ray_address: address of a running Ray cluster (``None``: start a local instance).

    Raises:
        ConfigError: unknown engine or a bad number of workers.
        EvaluationError: a worker process or a Ray task died (a session that raises is not an error here: it
            reaches ``on_result`` as a :class:`SessionFailure`).
        MissingExtraError: ``ray`` is asked for but not installed.
    """
    if engine not in ENGINES:
        raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers={workers!r} must be a positive integer")
    if not tasks:
        return
    if engine == "ray":
        _run_ray(job, tasks, on_result, ray_address, workers)
    elif engine == "local" and workers > 1 and len(tasks) > 1:
        _run_pool(job, tasks, on_result, workers)
    else:
        player = _Player(job, policies)
        for task in tasks:
            on_result(player.play(task))


def default_workers() -> int:
    """Worker processes of the local engine by default: the CPUs this process may use."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except AttributeError:  # not on Linux
        return max(os.cpu_count() or 1, 1)


def _batches(tasks: Sequence[SessionTask], size: int = BATCH_SESSIONS) -> list[list[SessionTask]]:
    return [list(tasks[i:i + size]) for i in range(0, len(tasks), size)]


# -- local processes --------------------------------------------------------------------------------------

_WORKER_PLAYER: _Player | None = None


def _init_worker(job: EvaluationJob) -> None:
    global _WORKER_PLAYER  # one player per worker process, set once by the pool initializer
    limit_threads()
    _WORKER_PLAYER = _Player(job)


def _play_batch_in_worker(batch: list[SessionTask]) -> list[SessionResult | SessionFailure]:
    assert _WORKER_PLAYER is not None, "worker not initialised"
    return [_WORKER_PLAYER.play(task) for task in batch]


def limit_threads() -> None:
    """One maths thread per worker process: on a small machine oversubscription makes everything slower."""
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def _run_pool(job: EvaluationJob, tasks: Sequence[SessionTask], on_result: ResultCallback, workers: int) -> None:
    batches = _batches(tasks, max(1, min(BATCH_SESSIONS, len(tasks) // (4 * workers) or 1)))
    # Leaving the pool by Ctrl-C or a failure ends the workers at once rather than waiting for the batches in
    # flight (their sessions are not journaled yet and play again on a resume).
    with WorkerPool(min(workers, len(batches)), _init_worker, (job,)) as pool:
        try:
            for _, results in pool.imap_unordered(_play_batch_in_worker, batches):
                for result in results:
                    on_result(result)
        except WorkerDied as exc:
            raise EvaluationError(f"{exc}; the finished sessions are kept: rerun the same command to resume") \
                from None


# -- Ray --------------------------------------------------------------------------------------------------


def _ray_play_batch(job: EvaluationJob, batch: list[SessionTask]) -> list[SessionResult | SessionFailure]:
    return [_Player(job).play(task) for task in batch]


def import_ray(address: str | None) -> Any:
    """The ``ray`` module, imported with the settings that keep a local or loopback cluster on loopback.

    Raises:
        MissingExtraError: ray is not installed.
    """
    if address is None or _is_loopback(address):
        # Ray rewrites a loopback address to the machine's external one (and then cannot reach a cluster
        # started on 127.0.0.1) unless this is off; it is read when ray is first imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if address is not None and os.environ.get("RAY_AUTH_MODE") is None and _ray_token_available():
        # `ray start` turns token authentication on whenever a token exists (~/.ray/auth_token, made by the
        # first local instance), but a driver with RAY_AUTH_MODE unset does not send it and is refused
        # ("Failed to connect to Ray cluster"). A driver in token mode also joins clusters without authentication.
        # Ray reads the mode when it is first imported.
        os.environ["RAY_AUTH_MODE"] = "token"
    try:
        import ray
    except ImportError as exc:
        raise MissingExtraError("ray (for --engine ray)", "ray") from exc
    return ray


def start_ray(address: str | None, workers: int) -> tuple[Any, bool]:
    """``(ray, started_here)``: connect to the cluster at ``address``, or start a local instance of ``workers``
    CPUs on loopback (``None``); a Ray already initialised in this process is used as it is. Whoever gets
    ``started_here`` true calls ``ray.shutdown()`` when done."""
    ray = import_ray(address)
    started_here = not ray.is_initialized()
    if started_here:
        init_args: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                                     "configure_logging": False}
        if address is None:
            init_args.update(num_cpus=workers, _node_ip_address="127.0.0.1")
            ray.init(**init_args)
        else:
            check_reachable(address)
            _join(ray, address, init_args)
    return ray, started_here


#: Tries at joining a cluster whose address answers: a head node just started (or busy) may not have its raylet
#: registered yet, and ``ray.init`` then fails at once with a ConnectionError.
RAY_JOIN_ATTEMPTS = 4


def _join(ray: Any, address: str, init_args: dict[str, Any]) -> None:
    for attempt in range(1, RAY_JOIN_ATTEMPTS + 1):
        try:
            ray.init(address=address, **init_args)
            return
        except ConnectionError as exc:
            if attempt == RAY_JOIN_ATTEMPTS:
                raise ConfigError(
                    f"the Ray cluster at ray_address={address!r} answers but could not be joined after "
                    f"{RAY_JOIN_ATTEMPTS} tries ({exc}); check it with `ray status --address {address}` "
                    "(a cluster with token authentication needs its token in ~/.ray/auth_token or RAY_AUTH_TOKEN)"
                ) from None
            time.sleep(2.0 * attempt)


def _run_ray(job: EvaluationJob, tasks: Sequence[SessionTask], on_result: ResultCallback,
             address: str | None, workers: int) -> None:
    ray, started_here = start_ray(address, workers)
    try:
        remote = ray.remote(num_cpus=1)(_ray_play_batch)
        job_ref = ray.put(job)
        pending = [remote.remote(job_ref, batch) for batch in _batches(tasks)]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                results = ray.get(done[0])
            except ray.exceptions.RayTaskError as exc:
                cause = exc.cause if isinstance(exc.cause, EvaluationError) else None
                for ref in pending:
                    ray.cancel(ref)
                raise (cause or EvaluationError(f"a Ray task failed: {exc}")) from exc
            for result in results:
                on_result(result)
    finally:
        if started_here:
            ray.shutdown()


def _ray_token_available() -> bool:
    """Whether a Ray authentication token is at hand where Ray looks for one."""
    path = os.environ.get("RAY_AUTH_TOKEN_PATH")
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or Path(path or Path.home() / ".ray" / "auth_token").is_file()


#: Seconds to wait for a TCP connection to a Ray cluster's address before giving up with a clear error.
RAY_CONNECT_TIMEOUT_S = 5.0


def check_reachable(address: str) -> None:
    """Fail fast on a Ray address nobody listens on (``ray.init`` would wait for minutes)."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        raise ConfigError(f"ray_address={address!r} must be HOST:PORT (the GCS address `ray start --head` prints)")
    try:
        socket.create_connection((host, int(port)), timeout=RAY_CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"no Ray cluster answers at ray_address={address!r} ({exc}); start one with `ray start --head` or "
            "leave out --ray-address to start a local instance"
        ) from None


def _is_loopback(address: str) -> bool:
    host = address.removeprefix("ray://").rpartition(":")[0].strip("[]")
    return host in ("localhost", "::1") or host.startswith("127.")
