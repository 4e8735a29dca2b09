"""The worker threads that run tool calls under a time limit: reuse, abandonment, sharing, idling, fork."""

from __future__ import annotations

import _thread
import os
import threading

import pytest

from inkagent.actions import ActionExecutor, tool
from inkagent.actions.workers import Workers, wait
from inkagent.schema import ToolCall


@tool
def where() -> str:
    """The name of the thread the call runs on."""
    return threading.current_thread().name


def run_on(workers: Workers, task) -> None:
    done = _thread.allocate_lock()
    done.acquire()
    workers.submit(task, done)
    assert wait(done, 10), "the worker did not finish"


def test_a_worker_is_reused_and_a_hung_one_is_skipped_until_it_returns():
    release = threading.Event()
    executor = ActionExecutor([where, tool(name="hang")(lambda: release.wait(30) and "late")], timeout_s=0.3)
    first = executor.run(ToolCall(name="where")).output
    assert first.startswith("inkagent-call") and first != threading.current_thread().name
    assert executor.run(ToolCall(name="where")).output == first  # the idle worker again, not a new thread

    hung = executor.run(ToolCall(name="hang"))
    assert hung.error_type == "timeout"
    # the hung worker is busy: the next call gets another thread and does not wait behind it
    assert executor.run(ToolCall(name="where")).error is None

    release.set()  # the abandoned call ends; its late result goes nowhere, its worker serves again
    for _ in range(3):
        assert executor.run(ToolCall(name="where")).error is None


def test_agents_sharing_an_executor_get_their_own_results():
    @tool
    def echo(agent: int, turn: int) -> str:
        """Give back the arguments."""
        return f"{agent}:{turn}:{threading.current_thread().name}"

    executor = ActionExecutor([echo], timeout_s=30)
    errors: list[str] = []

    def agent(n: int) -> None:
        for turn in range(200):
            result = executor.run(ToolCall(name="echo", arguments={"agent": n, "turn": turn}))
            if result.error is not None or not result.output.startswith(f"{n}:{turn}:inkagent-call"):
                errors.append(f"agent {n} turn {turn}: {result}")

    threads = [threading.Thread(target=agent, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []


def test_a_task_that_raises_does_not_kill_its_worker(caplog):
    workers = Workers()
    names: list[str] = []

    def broken() -> None:
        names.append(threading.current_thread().name)
        raise RuntimeError("a bug in the task")

    run_on(workers, broken)
    run_on(workers, lambda: names.append(threading.current_thread().name))
    assert len(names) == 2 and names[0] == names[1]
    assert "a bug in the task" in caplog.text


def test_a_long_idle_worker_is_dismissed():
    workers = Workers()
    both_started, release = threading.Barrier(3, timeout=10), threading.Event()
    threads: list[threading.Thread] = []

    def busy() -> None:
        threads.append(threading.current_thread())
        both_started.wait()
        release.wait(10)

    locks = [_thread.allocate_lock() for _ in range(2)]
    for done in locks:
        done.acquire()
        workers.submit(busy, done)
    both_started.wait()  # two workers, both busy
    release.set()
    assert all(wait(done, 10) for done in locks)
    assert all(thread.is_alive() for thread in threads)

    workers.IDLE_S = 0.0  # both have now been idle too long: the next hand-off dismisses the oldest
    ran_on: list[threading.Thread] = []
    run_on(workers, lambda: ran_on.append(threading.current_thread()))
    oldest = next(thread for thread in threads if thread is not ran_on[0])
    oldest.join(10)
    assert not oldest.is_alive()
    assert ran_on[0].is_alive()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_runs_calls_on_its_own_workers():
    executor = ActionExecutor([where], timeout_s=5)
    assert executor.run(ToolCall(name="where")).error is None  # an idle worker exists in the parent
    pid = os.fork()
    if pid == 0:  # the child: the parent's worker thread does not exist here
        try:
            result = executor.run(ToolCall(name="where"))
            os._exit(0 if result.error is None else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0, "the child's call failed (it was handed to a dead worker)"
    assert executor.run(ToolCall(name="where")).error is None


def test_wait_gives_up_after_its_timeout():
    done = _thread.allocate_lock()
    done.acquire()
    assert wait(done, 0.05) is False
    done.release()
    assert wait(done, 0.05) is True
