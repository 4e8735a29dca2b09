"""The interpreter's Jupyter kernel: one IPython kernel process, the client connected to it, and one cell
run in it under a time limit.

`_Kernel` launches the kernel under its limits (a minimal environment from `kernel_env`, a memory limit
set by `_LAUNCHER` before ipykernel starts, a subreaper from `inkagent.subreaper` so that `stop()` kills
every process the code started), waits until it can run code, and stops it. `_Kernel.execute` runs one
cell and collects what it printed, displayed and raised, in order; past the time limit, or when the
owner asks, it interrupts the cell (SIGINT to the kernel's process group, repeated until the cell stops)
and gives the kernel up when it will not stop. `_SETUP_CELL` is run once in each new kernel to disable
shell escapes and `input()`.

Kept apart from `ipython.py`, the action the model calls (its arguments, one kernel's life per agent
session, the result the model reads): this module is the kernel and the Jupyter messaging protocol.
jupyter_client is imported when a kernel is started, not when this module is imported.
"""

from __future__ import annotations

import importlib.util
import logging
import math
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..errors import ActionError, MissingDependency, require
from ..subreaper import spawn_reaped, terminate_reaped
from .kernel_env import kernel_environment
from .output import OutputBuffer

logger = logging.getLogger(__name__)

# Run in the kernel's process before ipykernel starts: the memory limit must hold for everything the
# kernel does. RLIMIT_DATA (Linux >= 4.7) counts heap and private writable mappings but not reserved
# address space, so thread stacks' and malloc arenas' reservations do not eat the budget the way they
# do under RLIMIT_AS; other POSIX systems get RLIMIT_AS.
_LAUNCHER = """\
import os, sys
limit = int(os.environ.pop("INKAGENT_KERNEL_MEMORY_BYTES", "0") or 0)
if limit > 0:
    import resource
    kind = resource.RLIMIT_DATA if sys.platform.startswith("linux") else resource.RLIMIT_AS
    resource.setrlimit(kind, (limit, limit))
from ipykernel.kernelapp import launch_new_instance
launch_new_instance()
"""

# Run once in each new kernel (silently). Shell escapes and input() would hang or escape the kernel's
# limits; the model gets an error that tells it what to do instead.
_SETUP = """\
def _inkagent_setup():
    import sys

    ip = get_ipython()

    def shell_disabled(*args, **kwargs):
        raise PermissionError(
            "shell commands (!cmd, %system, %%bash, %pip ...) are disabled in this interpreter; "
            "do the step in Python instead"
        )

    def line_magic(line=""):
        shell_disabled()

    def cell_magic(line="", cell=None):
        shell_disabled()

    ip.system = ip.system_raw = ip.system_piped = ip.getoutput = shell_disabled
    for name in ("system", "sx", "sc", "pip", "conda", "mamba", "micromamba", "uv"):
        ip.register_magic_function(line_magic, "line", name)
    for name in ("bash", "sh", "script", "system", "perl", "ruby", "python", "python2", "python3", "pypy"):
        ip.register_magic_function(cell_magic, "cell", name)

    def input(*args, **kwargs):
        raise RuntimeError("input() is disabled: nobody can type an answer here; put the values in the code")

    ip.user_ns["input"] = input
    ip.user_ns_hidden["input"] = input

    # stdout and stderr are buffered apart and flushed on timers of their own; flush one when the
    # other is written to, so that the agent receives them in the order the code wrote them. (Hooked
    # on ipykernel's flush scheduling: IPython swaps the streams' `write` around every cell.)
    stream_class = type(sys.stdout)
    schedule_flush = getattr(stream_class, "_schedule_flush", None)
    last = [None]

    def ordered_schedule_flush(self):
        previous, last[0] = last[0], self
        if previous is not None and previous is not self:
            previous.flush()
        schedule_flush(self)

    if schedule_flush is not None and stream_class.__module__.startswith("ipykernel"):
        stream_class._schedule_flush = ordered_schedule_flush


_inkagent_setup()
"""
# compiled under a file name of its own, so that tracebacks through these helpers stay short
_SETUP_CELL = f"exec(compile({_SETUP!r}, '<inkagent-setup>', 'exec'), {{'get_ipython': get_ipython}})"

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]")
_IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg"}
_POLL_S = 0.25  # how often a waiting call checks that the kernel process is still alive
_RESIGNAL_S = 1.0  # how often an interrupt is repeated while the cell has not stopped


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and cursor codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


class _Kernel:
    """One kernel process and the client connected to it. Holds no reference to the interpreter."""

    def __init__(
        self,
        work_dir: Path,
        memory_limit_mb: int | None,
        startup_timeout_s: float,
        extra_env: dict[str, str] | None = None,
        cancel: threading.Event | None = None,
    ):
        require("jupyter_client", "jupyter_client ipykernel")
        if importlib.util.find_spec("ipykernel") is None:  # the kernel process imports it, not this one
            raise MissingDependency("ipykernel is not installed: pip install ipykernel")
        from jupyter_client.blocking import BlockingKernelClient
        from jupyter_client.connect import write_connection_file

        self.owner_pid = os.getpid()
        self.runtime_dir = Path(tempfile.mkdtemp(prefix="inkagent-kernel-"))
        self._stopped = False
        self._stop_lock = threading.Lock()
        self._cancel = cancel  # set: stop waiting for the kernel to start (the interpreter is closing)
        self.running_msg: str | None = None  # the execute request of the cell running now (`execute`)
        connection_file, _ = write_connection_file(
            str(self.runtime_dir / "kernel.json"), ip="127.0.0.1", key=secrets.token_hex(16).encode()
        )
        env = kernel_environment(work_dir, extra_env)
        env["JPY_PARENT_PID"] = str(os.getpid())  # ipykernel exits when this process dies, even by SIGKILL
        if memory_limit_mb:
            env["INKAGENT_KERNEL_MEMORY_BYTES"] = str(int(memory_limit_mb * 1024 * 1024))
        self.log_path = self.runtime_dir / "kernel.log"
        argv = [sys.executable, "-c", _LAUNCHER, "-f", connection_file, "--HistoryManager.enabled=False"]
        with open(self.log_path, "wb") as log:
            # under a subreaper: close() reaps every process the code started, detached ones too
            self.process = spawn_reaped(
                argv,
                cwd=work_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=os.name == "posix",  # its own process group: Ctrl-C in a terminal spares it
            )
        self.startup_timeout_s = startup_timeout_s
        try:
            self.client = BlockingKernelClient(connection_file=connection_file)
            self.client.load_connection_file()
            self.client.start_channels(shell=True, iopub=True, stdin=False, hb=False, control=False)
        except BaseException:
            self.stop()
            raise

    def wait_ready(self) -> None:
        """Wait until the kernel can run code; on failure (or `cancel` set) stop it and raise ActionError."""
        try:
            self._wait_ready(self.startup_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> None:
        """Wait until the kernel answers on the shell channel *and* its IOPub messages reach us."""
        deadline = time.monotonic() + timeout_s
        while True:
            if self._cancel is not None and self._cancel.is_set():
                raise ActionError("the interpreter was closed while its kernel was starting")
            if not self.alive():
                raise ActionError(f"the Python kernel failed to start: {self.log_tail()}")
            if time.monotonic() > deadline:
                raise ActionError(
                    f"the Python kernel did not start within {timeout_s:g} s: {self.log_tail()}"
                )
            msg_id = self.client.kernel_info()
            if self.reply(msg_id, min(1.0, deadline - time.monotonic())) is None:
                continue
            # IOPub is a PUB/SUB socket that drops messages until the subscription is through
            try:
                while True:
                    msg = self.client.iopub_channel.get_msg(timeout=0.5)
                    if msg["parent_header"].get("msg_id") == msg_id:
                        return
            except queue.Empty:
                continue

    def reply(self, msg_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The shell reply to `msg_id` (older replies are dropped), or None after `timeout_s`."""
        deadline = time.monotonic() + max(0.0, timeout_s)
        while True:
            try:
                msg = self.client.shell_channel.get_msg(
                    timeout=max(0.0, min(_POLL_S, deadline - time.monotonic()))
                )
            except queue.Empty:
                if time.monotonic() >= deadline or not self.alive():
                    return None
                continue
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def alive(self) -> bool:
        return self.process.poll() is None

    def interrupt(self) -> None:
        """Raise KeyboardInterrupt in the running code (and stop the subprocesses it waits for)."""
        if os.name != "posix":
            raise OSError("interrupting a kernel is only supported on POSIX systems")
        try:
            os.killpg(self.process.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    def log_tail(self, chars: int = 1500) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:
            text = ""
        return strip_ansi(text[-chars:]) or "(the kernel wrote nothing)"

    def stop(self) -> None:
        """Kill the kernel and everything it started; idempotent, safe from any thread and at exit."""
        with self._stop_lock:
            if self._stopped or os.getpid() != self.owner_pid:  # a forked child must not kill our kernel
                return
            self._stopped = True
        self._terminate()
        client = getattr(self, "client", None)
        if client is not None:
            try:
                client.stop_channels()
            except Exception:
                logger.debug("closing the kernel's channels failed", exc_info=True)
        shutil.rmtree(self.runtime_dir, ignore_errors=True)

    def _terminate(self) -> None:
        """Kill the kernel and every process below it (detached and double-forked ones too)."""
        terminate_reaped(self.process, grace_s=5.0)

    # -- running a cell ----------------------------------------------------------------------------
    def execute(
        self,
        code: str,
        timeout_s: float | None,
        *,
        max_output_chars: int,
        grace_s: float,
        interrupt_requested: threading.Event,
        save_image: Callable[[str, str], Path],
        on_lost: Callable[[], None],
        silent: bool = False,
    ) -> dict[str, Any]:
        """Run `code`; collect its messages in order until the kernel is idle, the limit passes, or it dies.

        The cell is interrupted past `timeout_s` or once `interrupt_requested` is set (neither when
        `silent`); if it has not stopped `grace_s` later, or the kernel died, `on_lost()` is called (the
        owner stops this kernel and lets it go). Images are handed to `save_image(base64, suffix)`, which
        returns the file's path. Returns the outcome: `status` ("ok", "error", "interrupted", "timeout",
        "aborted", "died"), `text` (the output, cut to `max_output_chars`), `files`, `duration_s`, and
        `restarted`, `ename`, `evalue`, `exit_code` where they apply.
        """
        client = self.client
        msg_id = client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=True
        )
        self.running_msg = msg_id
        output = OutputBuffer(max_output_chars)
        files: list[str] = []
        outcome: dict[str, Any] = {"status": "ok", "files": files}
        started = time.monotonic()
        deadline = None if timeout_s is None else started + timeout_s
        interrupted_at: float | None = None
        signalled_at = -math.inf
        stopped = False  # the cell reported its end (an error or its reply): no more interrupts
        while True:
            now = time.monotonic()
            if interrupted_at is None and not silent:
                if interrupt_requested.is_set():
                    interrupted_at, outcome["status"] = now, "interrupted"
                elif deadline is not None and now >= deadline:
                    interrupted_at, outcome["status"] = now, "timeout"
            if interrupted_at is not None:
                if now - interrupted_at > grace_s:
                    on_lost()  # it ignored the interrupt
                    outcome["restarted"] = True
                    break
                if not stopped and now - signalled_at >= _RESIGNAL_S:
                    # repeated until the cell stops: one that lands before the cell starts is lost
                    signalled_at = now
                    try:
                        self.interrupt()
                    except OSError:
                        on_lost()
                        outcome["restarted"] = True
                        break
            if interrupted_at is None and deadline is not None:
                wait = min(_POLL_S, deadline - now)
            else:
                wait = _POLL_S
            try:
                msg = client.iopub_channel.get_msg(timeout=max(0.0, wait))
            except queue.Empty:
                if not self.alive():
                    outcome.update(status="died", exit_code=self.process.returncode)
                    on_lost()
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # left over from an earlier, interrupted call
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                reply = self.reply(msg_id, 5.0)  # take the shell reply off the socket
                if (
                    reply is not None
                    and reply["content"].get("status") == "aborted"
                    and outcome["status"] == "ok"
                ):
                    outcome["status"] = "aborted"  # queued behind a cell that failed: it never ran
                break
            if kind == "stream":
                output.add(strip_ansi(content.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                _add_display(content.get("data", {}), output, files, save_image)
            elif kind == "error":
                stopped = True
                if outcome["status"] == "ok":
                    outcome.update(
                        status="error", ename=content.get("ename", ""), evalue=content.get("evalue", "")
                    )
                if outcome["status"] == "error":  # not the KeyboardInterrupt of our own interrupt
                    traceback = "\n".join(
                        content.get("traceback") or [f"{content.get('ename')}: {content.get('evalue')}"]
                    )
                    output.add(strip_ansi(traceback), block=True)
        self.running_msg = None
        outcome["text"] = output.text()
        outcome["duration_s"] = time.monotonic() - started
        return outcome

    def stop_running_cell(self, grace_s: float) -> bool:
        """Interrupt the cell a caller stopped waiting for (`running_msg`) and wait until the kernel is
        idle again (else the kernel would abort the next cell, queued behind one that ends in an error).

        False if it did not stop within `grace_s` (the owner should then stop the kernel); True once it
        stopped, or when there is nothing to stop.
        """
        msg_id = self.running_msg
        if msg_id is None or not self.alive():
            return True
        deadline = time.monotonic() + grace_s
        signalled_at = -math.inf
        while time.monotonic() < deadline:
            if time.monotonic() - signalled_at >= _RESIGNAL_S:
                signalled_at = time.monotonic()
                try:
                    self.interrupt()
                except OSError:
                    break
            try:
                msg = self.client.iopub_channel.get_msg(timeout=_POLL_S)
            except queue.Empty:
                continue
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
            ):
                self.reply(msg_id, 1.0)
                return True
        return False


def _add_display(
    data: dict[str, Any], output: OutputBuffer, files: list[str], save_image: Callable[[str, str], Path]
) -> None:
    """A result or a display: an image is saved (its path goes to `files`), else its text is output."""
    for mime, suffix in _IMAGE_TYPES.items():
        if mime in data:
            files.append(str(save_image(data[mime], suffix)))
            return  # the text/plain of a figure is only "<Figure size ...>"
    text = data.get("text/plain")
    if text:
        output.add(strip_ansi(text) + "\n", block=True)
