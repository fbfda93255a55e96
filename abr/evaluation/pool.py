"""A pool of ``spawn``-ed worker processes that Ctrl-C can always end.

:class:`concurrent.futures.ProcessPoolExecutor` hands results to its futures from a manager thread. A Ctrl-C that
lands while the main thread holds a future's lock (inside :func:`concurrent.futures.wait`) leaves that lock held,
the manager thread blocks on it, and the interpreter waits for that thread at exit for ever. This pool has no
threads: each worker has a pipe of its own, the parent alone sends tasks and reads results, one task per worker at
a time (so neither side can block writing while the other writes), and a worker that dies closes its end of the
pipe, which the parent reads as the worker's death instead of waiting.
"""

from __future__ import annotations

import multiprocessing
import signal
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from multiprocessing.connection import Connection, wait
from types import TracebackType
from typing import Any

from abr.errors import EvaluationError

#: Seconds a worker gets to leave after the last task before it is terminated.
STOP_TIMEOUT_S = 10.0


class WorkerDied(EvaluationError):
    """A worker process ended without returning its task's result."""


def _worker_main(conn: Connection, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and ends the workers
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # blocked by the parent while it started us
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            message = conn.recv()
        except EOFError:  # the parent is gone
            return
        if message is None:
            return
        function, argument = message
        try:
            reply: tuple[str, Any] = ("ok", function(argument))
        except Exception as exc:  # the parent re-raises it; a worker does not die of one task
            reply = ("error", (exc, traceback.format_exc()))
        try:
            conn.send(reply)
        except Exception as exc:  # an unpicklable result or exception: send its description instead
            conn.send(("error", (RuntimeError(f"a worker could not send its result back: {exc!r}"),
                                 traceback.format_exc())))


class WorkerPool:
    """``workers`` processes started with ``spawn``, each set up once by ``initializer(*initargs)``.

    Use it as a context manager: leaving it normally lets the workers finish and exit; leaving it by an exception
    (Ctrl-C included) terminates them at once. Tasks are module-level functions and picklable arguments.

    Raises:
        WorkerDied: from :meth:`imap_unordered`, when a worker process ends without a result.
    """

    def __init__(self, workers: int, initializer: Callable[..., None] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
        if workers < 1:
            raise ValueError(f"workers={workers} must be at least 1")
        context = multiprocessing.get_context("spawn")
        self._processes: list[multiprocessing.process.BaseProcess] = []
        self._conns: list[Connection] = []
        # A Ctrl-C while a worker boots would kill it with a traceback before it can ignore SIGINT: the workers
        # inherit a blocked SIGINT and unblock it once they ignore it. A Ctrl-C meanwhile reaches this process
        # when the mask is restored.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
        try:
            for _ in range(workers):
                parent_end, child_end = context.Pipe()
                process = context.Process(target=_worker_main, args=(child_end, initializer, initargs), daemon=True)
                process.start()
                child_end.close()  # the worker holds the only writing end: its death reads as EOF here
                self._processes.append(process)
                self._conns.append(parent_end)
        except BaseException:
            self.terminate()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if exc_type is None:
            self.close()
        else:
            self.terminate()

    def imap_unordered(self, function: Callable[[Any], Any], arguments: Iterable[Any]) -> Iterator[tuple[int, Any]]:
        """``(index, function(arguments[index]))`` for every argument, in the order they finish.

        A task's exception is raised here, with the worker's traceback in its notes."""
        todo = iter(enumerate(arguments))
        running: dict[Connection, int] = {}
        idle = list(self._conns)
        try:
            yield from self._play(function, todo, running, idle)
        finally:
            if running:  # left early (an error, or the caller stopped): the pipes in flight are not reusable
                self.terminate()

    def _play(self, function: Callable[[Any], Any], todo: Iterator[tuple[int, Any]], running: dict[Connection, int],
              idle: list[Connection]) -> Iterator[tuple[int, Any]]:
        while True:
            while idle:
                item = next(todo, None)
                if item is None:
                    break
                conn = idle.pop()
                running[conn] = item[0]
                try:
                    conn.send((function, item[1]))
                except OSError:  # that worker died while idle: read its EOF below
                    pass
            if not running:
                return
            for ready in wait(list(running)):
                assert isinstance(ready, Connection)
                conn = ready
                index = running.pop(conn)
                try:
                    status, value = conn.recv()
                except EOFError:
                    process = self._processes[self._conns.index(conn)]
                    process.join(timeout=STOP_TIMEOUT_S)
                    self.terminate()
                    raise WorkerDied(f"a worker process died (exit code {process.exitcode}) while playing a "
                                     "batch") from None
                if status == "error":
                    error, text = value
                    error.add_note(f"in the worker process:\n{text}")
                    raise error
                idle.append(conn)
                yield index, value

    def map(self, function: Callable[[Any], Any], arguments: Sequence[Any]) -> list[Any]:
        """``[function(a) for a in arguments]``, played on the workers."""
        results: list[Any] = [None] * len(arguments)
        for index, value in self.imap_unordered(function, arguments):
            results[index] = value
        return results

    def close(self) -> None:
        """Ask every worker to exit and wait for it (terminating one that does not leave in time)."""
        for conn in self._conns:
            try:
                conn.send(None)
            except OSError:  # that worker is gone already
                pass
        for process in self._processes:
            process.join(timeout=STOP_TIMEOUT_S)
        self.terminate()

    def terminate(self) -> None:
        """End every worker now (SIGTERM, then SIGKILL for one that outlives it) and close the pipes."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
        for process in self._processes:
            process.join(timeout=STOP_TIMEOUT_S)
            if process.is_alive():
                process.kill()
                process.join()
        for conn in self._conns:
            conn.close()
        self._processes, self._conns = [], []
