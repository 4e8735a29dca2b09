"""Start a program whose whole process tree can be reaped, detached and double-forked processes included.

`spawn_reaped(argv, ...)` starts `argv` under a small launcher (this file, run as a script with only the
standard library) that makes itself a *child subreaper* (Linux `prctl(PR_SET_CHILD_SUBREAPER)`): every
process the program starts stays below the launcher even when its parent exits or it moves to a session
of its own (`start_new_session=True`, a double fork), where a walk from the program's pid would lose it.
`terminate_reaped(process)` (SIGTERM to the launcher) kills the whole tree and waits for it; the launcher
also does that when the program exits on its own, and when its own parent process dies (it watches its
parent pid: `PR_SET_PDEATHSIG` would fire when the thread that started it ends).

The launcher exits with the program's exit status (a program killed by a signal makes the launcher die
of the same signal). It ignores SIGINT, so that `os.killpg(pid, SIGINT)` interrupts only the program.

On systems without `prctl` the launcher still runs the program and kills its process group and the
descendants it can see; processes that detached and lost their parent can escape there.

Used by the IPython interpreter for its kernel; MCP server processes can use it the same way
(`reaped_argv` where another library starts the process, e.g. `command, *args = reaped_argv([...])`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import Any

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def reaped_argv(argv: Sequence[str]) -> list[str]:
    """The command line that runs `argv` under the reaping launcher, for code that spawns processes
    itself (e.g. an MCP client given `command` and `args`): terminating the launcher (SIGTERM) reaps
    the whole tree, and the launcher stops the tree when this process dies. Call it in the process
    that will be the launcher's parent."""
    return [sys.executable, "-I", "-S", os.path.abspath(__file__), str(os.getpid()), "--", *argv]


def spawn_reaped(argv: Sequence[str], **popen_kwargs: Any) -> subprocess.Popen:
    """`subprocess.Popen(argv, **popen_kwargs)`, run under the reaping launcher.

    The returned process is the launcher: its pid stands for the program (signals to the launcher's
    process group reach the program; with `start_new_session=True` the group is the launcher's own).
    Stop it with `terminate_reaped`.
    """
    return subprocess.Popen(reaped_argv(argv), **popen_kwargs)


def terminate_reaped(process: subprocess.Popen, grace_s: float = 5.0) -> None:
    """Kill the program of `process` (from `spawn_reaped`) and every process below it; wait for them.

    Safe to call twice and on a launcher that already exited. If the launcher does not finish within
    `grace_s`, its process group is killed outright.
    """
    if process.poll() is None:
        try:
            process.send_signal(signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            _kill_group(process.pid)
            process.wait(timeout=grace_s)
    _kill_group(process.pid)  # whatever is left of the group (systems without a subreaper)


def program_pid(process: subprocess.Popen) -> int | None:
    """The pid of the program that `process` (from `spawn_reaped`) launched, or None once it is gone."""
    children = _children_map().get(process.pid, [])
    return min(children) if children else None


def _kill_group(pgid: int) -> None:
    if os.name != "posix":
        return
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# -- the launcher (runs as a script: standard library only) -------------------------------------------


def _prctl(option: int, value: int) -> bool:
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _children_map() -> dict[int, list[int]]:
    """Parent pid -> child pids, from /proc (empty where there is no /proc)."""
    children: dict[int, list[int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return children
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as file:
                stat = file.read()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold anything: read after the last ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 1:
            children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def _descendants(pid: int) -> list[int]:
    tree = _children_map()
    found, todo = [], list(tree.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(child)
        todo.extend(tree.get(child, []))
    return found


def _reap_all(own_pid: int) -> None:
    """Kill every descendant until none is left (new forks are found on the next round)."""
    for _ in range(1000):
        for pid in _descendants(own_pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            while True:
                pid, _status = os.waitpid(-1, os.WNOHANG)
                if pid == 0:
                    break
        except ChildProcessError:
            return  # no children left
        time.sleep(0.01)


def _watch_parent(parent: int, interval_s: float = 0.2) -> None:
    """Send this launcher SIGTERM (so it reaps its tree) once `parent` is no longer its parent."""
    while os.getppid() == parent:
        time.sleep(interval_s)
    os.kill(os.getpid(), signal.SIGTERM)


class _Stop(Exception):
    """Raised by the launcher's SIGTERM/SIGHUP handler to leave the wait."""


def _stop(signum: int, frame: Any) -> None:
    raise _Stop


def _launch(argv: list[str]) -> int:
    parent = int(argv[0])
    command = argv[2:]
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    status = None
    try:
        signal.signal(signal.SIGTERM, _stop)
        signal.signal(signal.SIGHUP, _stop)
        signal.signal(signal.SIGINT, lambda signum, frame: None)  # meant for the program (same group)
        # Not PR_SET_PDEATHSIG here: it fires when the *thread* that started the launcher ends (a worker
        # thread of the web page, a kernel started in the background), not the process. Watch the
        # parent process instead: once it is gone, this launcher has been handed to another parent.
        if os.getppid() != parent:  # the parent died already: behave as if told
            raise _Stop
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
        # handlers reset to the default on exec (the program gets SIGINT); the program dies with us
        child = subprocess.Popen(command, preexec_fn=lambda: _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL))
        while status is None:
            try:
                pid, raw = os.waitpid(-1, 0)  # also reaps orphans that were handed to us
            except ChildProcessError:
                break
            if pid == child.pid:
                status = raw
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    own_pid = os.getpid()
    _reap_all(own_pid)
    if status is None:
        return 128 + signal.SIGTERM
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):  # SIGKILL and SIGSTOP keep their default anyway
            pass
        os.kill(own_pid, sig)  # die of the same signal, so the caller sees how the program ended
    return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(_launch(sys.argv[1:]))
