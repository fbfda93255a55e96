"""Where a population run's work is done: in this process, on local worker processes, or on Ray.

The engines are those of ``abr evaluate`` (:mod:`abr.evaluation.engines`): ``serial`` (this process),
``local`` (a pool of ``spawn``-ed processes; with one worker it is ``serial``) and ``ray`` (Ray tasks on the
cluster at ``ray_address``, or on a local instance started for the run and stopped after it). Each plays
batches of household-days with :func:`~abr.sessions.playback.play_household_days`, whose results depend only
on the household-day, never on the batch it came in, so every engine returns the same results, in task order.

The local pool also takes the rest of a day's heavy work, which would otherwise keep every worker idle while
this process alone does it: planning the day's views a block of users at a time
(:func:`~abr.sessions.simulate.plan_block`) and the recommender's row solves (:meth:`Runner.solve_rows`, ranges
of rows of the feedback matrix, which the workers read from files this process writes once per matrix rather
than receive through their pipes). Both give what this process would compute, bit for bit: a block's plan and a
row's solution depend on that block or row alone (``tests/abr/test_sessions_engines.py`` holds every engine's
tables equal).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from types import TracebackType
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from abr.errors import ConfigError, EvaluationError
from abr.evaluation.engines import ENGINES, limit_threads, start_ray
from abr.evaluation.pool import WorkerPool
from abr.sessions.playback import HouseholdDay, PlaybackContext, ViewResult, play_household_days
from abr.sessions.recommender import Interactions, RowSolver, padded_lengths, solve_rows

Job = TypeVar("Job")
Result = TypeVar("Result")

#: Household-days played in one batch: large enough for MPC decisions to be batched across views (a day of
#: 64 households holds ~100 views), small enough to balance workers and bound a batch's memory.
BATCH_TASKS = 64
#: Row-solve tasks per worker in one :meth:`Runner.solve_rows` (ranges of about equal work).
SOLVE_TASKS_PER_WORKER = 2
#: Feedback matrices kept in files at once (an A/B run's two arms, each with its transpose).
SHARED_MATRICES = 4

_WORKER_CTX: PlaybackContext | None = None


def _init_worker(ctx: PlaybackContext) -> None:
    global _WORKER_CTX  # one context per worker process, set once by the pool initializer
    limit_threads()
    _WORKER_CTX = ctx


def _play_batch(tasks: list[HouseholdDay]) -> list[list[ViewResult]]:
    assert _WORKER_CTX is not None, "worker not initialised"
    return play_household_days(_WORKER_CTX, tasks)


#: The matrices a worker has open (folder -> its arrays, memory-mapped), the latest last.
_WORKER_MATRICES: OrderedDict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = OrderedDict()


def _solve_range(task: tuple[str, int, int, npt.NDArray[np.float64], npt.NDArray[np.float64], float]
                 ) -> npt.NDArray[np.float64]:
    """:func:`~abr.sessions.recommender.solve_rows` of rows ``start .. stop - 1`` of the matrix in ``folder``."""
    folder, start, stop, fixed, gram, alpha = task
    if folder not in _WORKER_MATRICES:
        _WORKER_MATRICES[folder] = tuple(np.load(os.path.join(folder, f"{name}.npy"), mmap_mode="r")
                                         for name in ("indptr", "indices", "weights"))  # type: ignore[assignment]
        while len(_WORKER_MATRICES) > SHARED_MATRICES:
            _WORKER_MATRICES.popitem(last=False)
    indptr, indices, weights = _WORKER_MATRICES[folder]
    lo, hi = int(indptr[start]), int(indptr[stop])
    return solve_rows(np.asarray(indptr[start:stop + 1]) - lo, np.asarray(indices[lo:hi]),
                      np.asarray(weights[lo:hi]), fixed, gram, alpha)


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
        self._folder: str | None = None
        self._shared: OrderedDict[int, tuple[Interactions, str]] = OrderedDict()
        self._written = 0

    def __enter__(self) -> Runner:
        if self.engine == "ray":
            self._ray, self._ray_started_here = start_ray(self.ray_address, self.workers)
            self._remote = self._ray.remote(num_cpus=1)(_ray_play_batch)
            self._ctx_ref = self._ray.put(self.ctx)
        elif self.engine == "local" and self.workers > 1:
            self._pool = WorkerPool(self.workers, _init_worker, (self.ctx,))
            self._folder = tempfile.mkdtemp(prefix="abr-sessions-")
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
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._shared.clear()

    @property
    def row_solver(self) -> RowSolver | None:
        """:meth:`solve_rows` where a local pool can share the solves, else ``None`` (solve in this process)."""
        return self.solve_rows if self._pool is not None else None

    def solve_rows(self, matrix: Interactions, fixed: npt.NDArray[np.float64], gram: npt.NDArray[np.float64],
                   alpha: float) -> npt.NDArray[np.float64]:
        """:func:`~abr.sessions.recommender.solve_rows` of every row of ``matrix``, in ranges on the workers."""
        if self._pool is None:
            return solve_rows(matrix.indptr, matrix.indices, matrix.weights, fixed, gram, alpha)
        folder = self._share(matrix)
        cuts = _balanced_cuts(matrix.indptr, fixed.shape[1], SOLVE_TASKS_PER_WORKER * self.workers)
        tasks = [(folder, a, b, fixed, gram, alpha) for a, b in zip(cuts, cuts[1:]) if b > a]
        parts = self._pool.map(_solve_range, tasks)
        return np.concatenate(parts) if parts else np.zeros((0, fixed.shape[1]))

    def call_all(self, function: Callable[[Job], Result], jobs: list[Job]) -> list[Result]:
        """``[function(job) for job in jobs]``, on the local pool's workers when there is one (``function`` is a
        module-level function, as :func:`~abr.sessions.simulate.plan_block`), else here."""
        if self._pool is None:
            return [function(job) for job in jobs]
        results: list[Result] = self._pool.map(function, jobs)
        return results

    def _share(self, matrix: Interactions) -> str:
        """The folder holding ``matrix``'s arrays (written once per matrix; the oldest folders are removed)."""
        hit = self._shared.get(id(matrix))
        if hit is not None and hit[0] is matrix:
            self._shared.move_to_end(id(matrix))
            return hit[1]
        assert self._folder is not None
        folder = os.path.join(self._folder, f"matrix-{self._written}")
        self._written += 1
        os.mkdir(folder)
        for name in ("indptr", "indices", "weights"):
            np.save(os.path.join(folder, f"{name}.npy"), getattr(matrix, name))
        self._shared[id(matrix)] = (matrix, folder)
        while len(self._shared) > SHARED_MATRICES:
            shutil.rmtree(self._shared.popitem(last=False)[1][1], ignore_errors=True)
        return folder

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


def _balanced_cuts(indptr: npt.NDArray[np.int64], factors: int, parts: int) -> list[int]:
    """Row boundaries ``[0, ..., rows]`` of ``parts`` contiguous ranges of about equal solve work (a row costs
    its padded length times ``factors`` plus a ``factors``-sized solve).

    >>> _balanced_cuts(np.array([0, 10, 10, 20, 30, 40]), 4, 2)
    [0, 3, 5]
    """
    counts = np.diff(indptr)
    work = np.where(counts > 0, padded_lengths(counts) + factors, 0).astype(np.float64)
    total = np.cumsum(work)
    if total.size == 0 or total[-1] == 0:
        return [0, int(counts.size)]
    marks = np.searchsorted(total, total[-1] * np.arange(1, parts) / parts, side="left") + 1
    return sorted({0, *(int(m) for m in marks), int(counts.size)})
