"""Where a population run's household-days are played: in this process, on local worker processes, or on Ray.

The engines are those of ``abr evaluate`` (:mod:`abr.evaluation.engines`): ``serial`` (this process),
``local`` (a pool of ``spawn``-ed processes; with one worker it is ``serial``) and ``ray`` (Ray tasks on the
cluster at ``ray_address``, or on a local instance started for the run and stopped after it). Each plays
batches of household-days with :func:`~abr.sessions.playback.play_household_days`, whose results depend only
on the household-day, never on the batch it came in, so every engine returns the same results, in task order.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from abr.errors import ConfigError, EvaluationError
from abr.evaluation.engines import ENGINES, limit_threads, start_ray
from abr.evaluation.pool import WorkerPool
from abr.sessions.playback import HouseholdDay, PlaybackContext, ViewResult, play_household_days

#: Household-days played in one batch: large enough for MPC decisions to be batched across views (a day of
#: 64 households holds ~100 views), small enough to balance workers and bound a batch's memory.
BATCH_TASKS = 64

_WORKER_CTX: PlaybackContext | None = None


def _init_worker(ctx: PlaybackContext) -> None:
    global _WORKER_CTX  # one context per worker process, set once by the pool initializer
    limit_threads()
    _WORKER_CTX = ctx


def _play_batch(tasks: list[HouseholdDay]) -> list[list[ViewResult]]:
    assert _WORKER_CTX is not None, "worker not initialised"
    return play_household_days(_WORKER_CTX, tasks)


def _ray_play_batch(ctx: PlaybackContext, tasks: list[HouseholdDay]) -> list[list[ViewResult]]:
    limit_threads()
    return play_household_days(ctx, tasks)


class Runner:
    """Plays household-days on an engine, holding its workers (or Ray) from ``__enter__`` to ``__exit__``.

    Args:
        ctx: what every worker needs once (traces, catalog, video, model, policies).
        engine: ``"local"``, ``"serial"`` or ``"ray"``.
        workers: processes of the local engine; CPUs of a Ray instance started here.
        ray_address: a running Ray cluster (``None``: start a local instance).

    Raises:
        ConfigError: an unknown engine or a bad number of workers.
    """

    def __init__(self, ctx: PlaybackContext, *, engine: str = "local", workers: int = 1,
                 ray_address: str | None = None) -> None:
        if engine not in ENGINES:
            raise ConfigError(f"engine={engine!r} is not one of {', '.join(ENGINES)}")
        if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
            raise ConfigError(f"workers={workers!r} must be a positive integer")
        self.ctx = ctx
        self.engine = engine
        self.workers = workers
        self.ray_address = ray_address
        self._pool: WorkerPool | None = None
        self._ray: Any = None
        self._ray_started_here = False
        self._remote: Any = None
        self._ctx_ref: Any = None

    def __enter__(self) -> Runner:
        if self.engine == "ray":
            self._ray, self._ray_started_here = start_ray(self.ray_address, self.workers)
            self._remote = self._ray.remote(num_cpus=1)(_ray_play_batch)
            self._ctx_ref = self._ray.put(self.ctx)
        elif self.engine == "local" and self.workers > 1:
            self._pool = WorkerPool(self.workers, _init_worker, (self.ctx,))
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._pool is not None:
            # Ctrl-C or a failure ends the workers at once rather than waiting for their batches.
            self._pool.__exit__(exc_type, exc, tb)
            self._pool = None
        if self._ray is not None and self._ray_started_here:
            self._ray.shutdown()
        self._ray = None

    def map(self, tasks: list[HouseholdDay]) -> list[list[ViewResult]]:
        """Every task's view results, in task order."""
        parallel = self._pool is not None or self._ray is not None
        size = max(1, min(BATCH_TASKS, -(-len(tasks) // (4 * self.workers)))) if parallel else BATCH_TASKS
        batches = [tasks[i:i + size] for i in range(0, len(tasks), size)]
        if self._ray is not None:
            return self._map_ray(batches)
        if self._pool is not None:
            return [r for batch in self._pool.map(_play_batch, batches) for r in batch]
        return [r for b in batches for r in play_household_days(self.ctx, b)]

    def _map_ray(self, batches: list[list[HouseholdDay]]) -> list[list[ViewResult]]:
        ray = self._ray
        refs = [self._remote.remote(self._ctx_ref, b) for b in batches]
        try:
            done = ray.get(refs)
        except ray.exceptions.RayTaskError as exc:
            for ref in refs:
                ray.cancel(ref)
            raise EvaluationError(f"a Ray task failed: {exc}") from exc
        return [r for batch in done for r in batch]
