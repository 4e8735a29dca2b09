"""A pool of daemon threads that run tool calls under a time limit, with the cheapest hand-off CPython has.

`WORKERS.submit(task, done)` runs `task()` on a worker thread and then releases `done`, a lock the
caller holds and waits on with its time limit. A call never queues behind another: an idle worker is
taken, or a new one started, so a hung tool blocks only its own (abandoned) worker, never later calls,
and never the interpreter's exit (daemon threads).

Why the wake-up is a file descriptor (an `eventfd` on Linux, a pipe elsewhere) and not a queue or a
lock: `os.eventfd_write` lets go of the GIL *before* it wakes the worker, so the worker, once woken,
finds the GIL free and runs the call at once, and the caller later finds `done` already released. A
`SimpleQueue.put` or `lock.release` wakes the worker while the caller still holds the GIL: the worker
wakes only to wait for the GIL, and the round trip costs two more thread switches (on a 2-core Linux
VM, ~6 us against ~13-20 us; `benchmarks/tool_dispatch.py` measures it).

The caller then yields the CPU once (`wait`) before it sleeps on `done`: the worker it woke is most
often queued on the same CPU and runs the whole call meanwhile.

Idle workers wait on their own descriptor in a stack (a list: `append` and `pop` are atomic, so a
hand-off takes no lock); the latest idle is reused first. A worker idle for `IDLE_S` seconds is told
to leave by the next `submit` (a read with a time-out would cost each hand-off a second system call
and the GIL round trip again); with no later call, idle workers stay, blocked, until the program
ends. A forked child starts with no workers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

if hasattr(os, "eventfd"):  # Linux

    def _channel() -> tuple[int, int]:
        fd = os.eventfd(0)  # close-on-exec by default
        return fd, fd

    def _wake(fd: int) -> None:
        os.eventfd_write(fd, 1)

    def _sleep(fd: int) -> None:
        os.eventfd_read(fd)

else:  # macOS, Windows: a pipe (not inherited by child processes) does the same, a little slower

    def _channel() -> tuple[int, int]:
        return os.pipe()

    def _wake(fd: int) -> None:
        os.write(fd, b"\0")

    def _sleep(fd: int) -> None:
        os.read(fd, 1)


#: give the CPU to another runnable thread (the GIL is let go meanwhile)
_yield_cpu: Callable[[], None] = getattr(os, "sched_yield", None) or (lambda: time.sleep(0))


def wait(done: Any, timeout: float) -> bool:
    """Wait until a worker releases `done` (`timeout` in seconds, -1 for none); True if it did.

    Yields the CPU once before sleeping on the lock: the worker just woken is most often queued on
    this very CPU, and runs the call to its end while this thread yields, which then finds `done`
    released. Sleeping on the lock at once instead costs two more thread switches a call, because the
    worker's `done.release()` wakes this thread while the worker still holds the GIL.
    """
    if done.acquire(False):
        return True
    _yield_cpu()
    return done.acquire(True, timeout)


class _Worker:
    """One thread, and the slot its next call is put in before it is woken."""

    __slots__ = ("task", "done", "idle_since", "_read_fd", "write_fd")

    def __init__(self) -> None:
        self.task: Callable[[], Any] | None = None
        self.done: Any = None
        self.idle_since = 0.0
        self._read_fd, self.write_fd = _channel()


class Workers:
    """Daemon threads that run calls, reused between calls (a thread start costs more than a hand-off)."""

    IDLE_S = 60.0

    def __init__(self) -> None:
        self._idle: list[_Worker] = []  # idle workers, the latest idle last

    def submit(self, task: Callable[[], Any], done: Any) -> None:
        """Run `task()` on a worker, then release `done` (a lock the caller holds)."""
        try:
            worker = self._idle.pop()
        except IndexError:  # none idle: a new worker, started with its call in its slot
            worker = _Worker()
            worker.task, worker.done = task, done
            threading.Thread(target=self._work, args=(worker,), name="inkagent-call", daemon=True).start()
        else:
            worker.task, worker.done = task, done
            _wake(worker.write_fd)
        if self._idle and self._idle[0].idle_since < time.monotonic() - self.IDLE_S:
            self._dismiss_oldest()

    def _dismiss_oldest(self) -> None:
        """Tell the longest-idle worker to leave if it has been idle for `IDLE_S` (a race with another
        `submit` taking it just now is lost quietly: it is then busy, or back at the bottom)."""
        try:
            worker = self._idle.pop(0)
        except IndexError:
            return
        if worker.idle_since < time.monotonic() - self.IDLE_S:
            worker.task = None
            _wake(worker.write_fd)
        else:
            self._idle.insert(0, worker)

    def _work(self, worker: _Worker) -> None:
        try:
            while True:
                task, done = worker.task, worker.done
                if task is None:
                    return
                worker.task = worker.done = None
                try:
                    task()
                except BaseException:  # `task` catches its own; a worker must outlive a bug in it
                    logger.exception("a call on a worker thread raised")
                finally:
                    # idle again before the caller wakes: it may hand this worker its next call at once
                    worker.idle_since = time.monotonic()
                    self._idle.append(worker)
                    done.release()
                _sleep(worker._read_fd)
        finally:
            os.close(worker._read_fd)
            if worker.write_fd != worker._read_fd:
                os.close(worker.write_fd)

    def _forget_after_fork(self) -> None:
        """In a forked child: the workers' threads do not exist there, so none may be handed a call."""
        idle, self._idle = self._idle, []
        for worker in idle:
            for fd in {worker._read_fd, worker.write_fd}:
                try:
                    os.close(fd)
                except OSError:
                    pass


WORKERS = Workers()

if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=WORKERS._forget_after_fork)
