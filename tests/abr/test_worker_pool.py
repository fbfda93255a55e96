"""The worker pool behind ``--engine local``: results, errors, dead workers and interruption."""

from __future__ import annotations

import os
import threading

import pytest

from abr.evaluation.pool import WorkerDied, WorkerPool

_OFFSET: int | None = None


def _set_offset(offset: int) -> None:
    global _OFFSET
    _OFFSET = offset


def _add_offset(x: int) -> tuple[int, int]:
    assert _OFFSET is not None
    return x + _OFFSET, os.getpid()


def _fail_on_three(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad task {x}")
    return x


def _die_on_two(x: int) -> int:
    if x == 2:
        os._exit(7)
    return x


def test_map_returns_every_result_in_task_order_from_initialised_workers():
    with WorkerPool(2, _set_offset, (100,)) as pool:
        processes = list(pool._processes)
        results = pool.map(_add_offset, list(range(12)))
    assert [value for value, _ in results] == [100 + x for x in range(12)]
    assert {pid for _, pid in results} <= {p.pid for p in processes} and os.getpid() not in {p for _, p in results}
    assert all(p.exitcode == 0 for p in processes)  # asked to leave, they left by themselves


def test_a_task_error_is_raised_with_the_worker_traceback_and_ends_the_workers():
    with pytest.raises(ValueError, match="bad task 3") as caught:
        with WorkerPool(2) as pool:
            processes = list(pool._processes)
            pool.map(_fail_on_three, list(range(8)))
    assert any("_fail_on_three" in note for note in caught.value.__notes__)
    assert not any(p.is_alive() for p in processes)


def test_a_worker_that_dies_is_reported_with_its_exit_code_not_waited_for():
    with pytest.raises(WorkerDied, match=r"exit code 7"):
        with WorkerPool(2) as pool:
            processes = list(pool._processes)
            pool.map(_die_on_two, list(range(8)))
    assert not any(p.is_alive() for p in processes)


def test_an_interrupt_while_collecting_ends_the_workers_and_leaves_no_thread_behind():
    """Ctrl-C lands in the parent between results: the workers end at once, and the pool has started no thread
    that the interpreter would have to join at exit (ProcessPoolExecutor's manager thread could block there for
    ever on a future's lock held by the interrupted main thread)."""
    threads_before = set(threading.enumerate())
    with pytest.raises(KeyboardInterrupt):
        with WorkerPool(2, _set_offset, (0,)) as pool:
            processes = list(pool._processes)
            for _ in pool.imap_unordered(_add_offset, list(range(50))):
                raise KeyboardInterrupt
    assert not any(p.is_alive() for p in processes)
    assert set(threading.enumerate()) == threads_before


def test_a_pool_needs_a_worker():
    with pytest.raises(ValueError, match="workers=0"):
        WorkerPool(0)
