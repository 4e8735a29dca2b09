"""`inkagent.subreaper`: a program's whole process tree is reaped, detached and orphaned parts too."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from inkagent.subreaper import program_pid, spawn_reaped, terminate_reaped

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_CHILD_SUBREAPER is Linux's")

# starts a detached child and a double-forked grandchild whose parent exits, prints their pids, waits
PROGRAM = textwrap.dedent(
    """
    import os, subprocess, sys
    detached = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    read, write = os.pipe()
    middle = os.fork()
    if middle == 0:
        grandchild = os.fork()
        if grandchild == 0:
            os.setsid()
            os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"])
        os.write(write, str(grandchild).encode())
        os._exit(0)
    os.waitpid(middle, 0)
    print(detached.pid, int(os.read(read, 32)), flush=True)
    if sys.argv[1] == "wait":
        sys.stdin.read()
    sys.exit(int(sys.argv[2]))
    """
)


def start(mode: str, code: int = 0) -> tuple[subprocess.Popen, list[psutil.Process]]:
    process = spawn_reaped([sys.executable, "-c", PROGRAM, mode, str(code)], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, text=True, start_new_session=True)
    pids = [int(p) for p in process.stdout.readline().split()]
    return process, [psutil.Process(pid) for pid in pids]


def gone(processes: list[psutil.Process]) -> bool:
    _, alive = psutil.wait_procs(processes, timeout=10)
    return all(p.status() == psutil.STATUS_ZOMBIE for p in alive)


def test_terminating_the_launcher_reaps_detached_and_double_forked_processes():
    process, descendants = start("wait")
    assert program_pid(process) is not None
    terminate_reaped(process)
    assert gone(descendants)
    assert process.returncode is not None


def test_the_tree_goes_when_the_program_exits_and_its_status_is_kept():
    process, descendants = start("exit", 3)
    assert process.wait(timeout=30) == 3
    assert gone(descendants)


def test_a_program_killed_by_a_signal_shows_as_killed_by_it():
    process, descendants = start("wait")
    psutil.Process(program_pid(process)).send_signal(signal.SIGKILL)
    assert process.wait(timeout=30) == -signal.SIGKILL
    assert gone(descendants)


ECHO = "import sys\nfor line in sys.stdin:\n    print(line.strip(), flush=True)"


def test_a_program_started_from_a_thread_outlives_that_thread():
    # the web page and a background kernel start run spawn_reaped on threads that end long before the
    # kernel should (PR_SET_PDEATHSIG on the launcher would have killed it with the thread)
    import threading

    started: list[subprocess.Popen] = []

    def start_and_end() -> None:
        process = spawn_reaped([sys.executable, "-c", ECHO], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        started.append(process)
        process.stdin.write("up\n")
        process.stdin.flush()
        assert process.stdout.readline() == "up\n"  # the launcher is set up and the program runs

    thread = threading.Thread(target=start_and_end)
    thread.start()
    thread.join()
    (process,) = started
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=1)  # the launcher must not be told to stop
        process.stdin.write("still here\n")
        process.stdin.flush()
        assert process.stdout.readline() == "still here\n"
    finally:
        terminate_reaped(process)


def test_the_tree_goes_when_the_parent_process_is_killed():
    parent = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(
            """
            import sys
            from inkagent.subreaper import program_pid, spawn_reaped
            launcher = spawn_reaped([sys.executable, "-c", "import time; time.sleep(600)"])
            while program_pid(launcher) is None:
                pass
            print(launcher.pid, program_pid(launcher), flush=True)
            sys.stdin.read()
            """
        )],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    pids = [int(p) for p in parent.stdout.readline().split()]
    processes = [psutil.Process(pid) for pid in pids]
    parent.kill()
    parent.wait(timeout=30)
    assert gone(processes)
