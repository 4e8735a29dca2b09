"""`IPythonInterpreter`: runs the model's Python code in a Jupyter kernel of its own.

Each interpreter (one per agent session) owns one IPython kernel process, started on the first call
(or ahead of it, in the background, by `start()`: `build_agent` does so while the model loads),
with its own working directory, a wall-clock time limit per call and a memory limit. Variables persist
from call to call. The agent talks to the kernel over ZeroMQ (jupyter_client), so calls work from any
thread: no signal handler is installed in the agent's process.

The kernel gets a minimal environment (`kernel_environment`): the agent's API keys and tokens are not
passed on; HOME is the working directory. It runs under a subreaper (`inkagent.subreaper`), so `close()`
kills every process the code started, including ones that detached or double-forked.

This is isolation from the agent, not a security sandbox: the code runs with the agent user's rights
and can read files and reach the network. Run the whole agent in a container to contain it.
"""

from __future__ import annotations

import base64
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
import weakref
from pathlib import Path
from typing import Any

from ..errors import ActionError, MissingDependency, require
from ..schema import ActionResult
from ..subreaper import program_pid, spawn_reaped, terminate_reaped
from .base import Action
from .kernel_env import KERNEL_ENV_ALLOWLIST, extra_env, kernel_environment  # noqa: F401
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
_FENCED = re.compile(r"\A\s*```[\w+-]*[^\S\n]*\n(?P<code>.*?)\n?```\s*\Z", re.DOTALL)
_IMAGE_TYPES = {"image/png": ".png", "image/jpeg": ".jpg"}
_POLL_S = 0.25  # how often a waiting call checks that the kernel process is still alive
_RESIGNAL_S = 1.0  # how often an interrupt is repeated while the cell has not stopped


def strip_ansi(text: str) -> str:
    """`text` without terminal colour and cursor codes (IPython colours its tracebacks)."""
    return _ANSI.sub("", text)


def _unfence(code: str) -> str:
    """The code inside a ```python fence, when the whole command is one (lagent callers send that)."""
    match = _FENCED.match(code)
    return match.group("code") if match else code


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


class _Resources:
    """What an interpreter must release: its kernel and, if it made it, its working directory.

    Kept apart from the interpreter so that `weakref.finalize` can release them when the interpreter
    is garbage-collected or the process exits, without keeping the interpreter alive.
    """

    def __init__(self) -> None:
        self.kernel: _Kernel | None = None
        self.owned_dir: Path | None = None

    def stop_kernel(self) -> None:
        kernel, self.kernel = self.kernel, None
        if kernel is not None:
            kernel.stop()

    def release(self) -> None:
        self.stop_kernel()
        if self.owned_dir is not None:
            shutil.rmtree(self.owned_dir, ignore_errors=True)


class IPythonInterpreter(Action):
    """Run Python code in a stateful Jupyter notebook (IPython kernel). Variables, imports and files persist
    between calls. Print what you want to see; the value of the last line is shown too; matplotlib figures
    are returned as images. There is no internet access and no user to answer input()."""

    def __init__(
        self,
        timeout_s: float | None = 20.0,
        memory_limit_mb: int | None = 4096,
        work_dir: str | os.PathLike[str] | None = None,
        max_output_chars: int = 8000,
        startup_timeout_s: float = 60.0,
        interrupt_grace_s: float = 3.0,
        env: list[str] | dict[str, str] | None = None,
        *,
        timeout: float | None = None,
        user_data_dir: str | None = None,
        description: dict | str | None = None,
        parser: Any = None,
        enable: bool = True,
    ) -> None:
        """
        Args:
            timeout_s: wall-clock limit of one call. Past it the code is interrupted; if it does not stop
                within `interrupt_grace_s`, the kernel is restarted. `timeout` is lagent's name for it.
            memory_limit_mb: memory the kernel may use (Linux: data segment, elsewhere: address space);
                `None` for no limit. Hitting it is reported and the kernel restarted.
            work_dir: the kernel's working directory (created if missing). By default a fresh temporary
                directory, deleted by `close()`.
            max_output_chars: longer output is cut in the middle, with a note.
            startup_timeout_s: how long a kernel may take to start.
            interrupt_grace_s: how long an interrupted call may take to stop.
            env: more environment variables for the kernel: names (copied from the agent's
                environment) or a mapping. The kernel gets only these and the harmless variables of
                `KERNEL_ENV_ALLOWLIST`, so secrets in the agent's environment stay out of its reach.
            user_data_dir: lagent's keyword: the code runs in `os.path.dirname(user_data_dir)` (lagent's
                rule) instead of `work_dir`; "ENV" reads the `USER_DATA_DIR` environment variable
                (lagent's default; inkagent's is None, the working directory).
            description, parser, enable: lagent's `BaseAction` keywords (see `Action.lagent_options`).
        """
        if timeout is not None:
            timeout_s = timeout
        if user_data_dir == "ENV":
            user_data_dir = os.environ.get("USER_DATA_DIR", "")
        self.user_data_dir = user_data_dir or None
        self._code_dir = Path(os.path.dirname(user_data_dir)).expanduser().resolve() if user_data_dir else None
        self.lagent_options(description, parser, enable)
        if timeout_s is not None and timeout_s <= 0:
            raise ValueError("timeout_s must be positive")
        self.timeout_s = timeout_s
        self.memory_limit_mb = memory_limit_mb
        self.max_output_chars = max_output_chars
        self.startup_timeout_s = startup_timeout_s
        self.interrupt_grace_s = interrupt_grace_s
        self.env = extra_env(env)
        self._work_dir_arg = Path(work_dir).expanduser().resolve() if work_dir is not None else None
        # the interpreter enforces its own limit (interrupt, then restart): an executor must not abandon
        # a call while the kernel still runs it
        self.call_timeout_s = math.inf
        self._lock = threading.RLock()  # one call at a time per kernel
        self._resources = _Resources()
        self._finalizer = weakref.finalize(self, self._resources.release)
        self._figures = 0
        self._work_dir: Path | None = None
        self._busy = False  # a call is running (set under the lock)
        self._running_msg: str | None = None  # the execute request of the running call
        self._interrupt = threading.Event()  # the user asked to stop the running call
        self._starter: threading.Thread | None = None  # starts the kernel in the background (`start`)
        self._start_error: BaseException | None = None  # why it failed: raised by the next call
        self._start_lock = threading.Lock()
        self._closing = threading.Event()  # set by close(): a kernel still starting gives up
        self._kernel_started_at = 0.0

    # -- the working directory and the kernel -------------------------------------------------
    @property
    def work_dir(self) -> Path:
        """The kernel's working directory (created on first use)."""
        if self._work_dir is None or not self._work_dir.is_dir():
            if self._work_dir_arg is not None:
                self._work_dir_arg.mkdir(parents=True, exist_ok=True)
                self._work_dir = self._work_dir_arg
            else:
                self._work_dir = Path(tempfile.mkdtemp(prefix="inkagent-ipython-"))
                self._resources.owned_dir = self._work_dir
        return self._work_dir

    @property
    def kernel_pid(self) -> int | None:
        """The kernel's process id, or None while no kernel runs."""
        kernel = self._resources.kernel
        return program_pid(kernel.process) if kernel is not None and kernel.alive() else None

    def start(self) -> None:
        """Start the kernel now, so that the first call finds it ready; returns at once.

        The kernel process is launched here, on the calling thread (it is watched by that thread:
        the launcher ends with it, see `inkagent.subreaper`), and waited for in a background thread.
        The first call waits for the start to finish; if it failed, that call reports why (and the
        next one tries again). `close()` stops a kernel still starting. Does nothing when a kernel
        runs or is starting. `build_agent` calls this before it loads the model, so that the kernel
        starts while the model loads.
        """
        with self._start_lock, self._lock:
            if self._starter is not None or self._resources.kernel is not None:
                return
            self._closing.clear()
            try:
                kernel = self._spawn()
            except BaseException as exc:  # jupyter missing...: reported by the first call, as before
                self._start_error = exc
                kernel = None
            else:
                self._resources.kernel = kernel
            self._starter = threading.Thread(
                target=self._finish_start, args=(kernel,), name="inkagent-kernel-start", daemon=True
            )
            self._starter.start()

    def _finish_start(self, kernel: _Kernel | None) -> None:
        if kernel is None:
            return
        try:
            with self._lock:
                self._set_up(kernel)
        except BaseException as exc:  # kept for the first call, which reports it to the model
            logger.debug("starting the Python kernel in the background failed", exc_info=True)
            self._start_error = exc

    def _join_start(self) -> None:
        """Wait for a background start (`start`) to end; raise what made it fail."""
        starter = self._starter
        if starter is None:
            return
        starter.join()
        with self._start_lock:
            if self._starter is starter:
                self._starter = None
                error, self._start_error = self._start_error, None
            else:
                error = None
        if error is not None:
            raise error

    def _spawn(self) -> _Kernel:
        """Launch a kernel process (not yet ready: see `_set_up`)."""
        self._kernel_started_at = time.perf_counter()
        return _Kernel(
            self._code_dir or self.work_dir, self.memory_limit_mb, self.startup_timeout_s, self.env, self._closing
        )

    def _set_up(self, kernel: _Kernel) -> None:
        """Wait for a launched kernel and run the setup cell in it; on failure, stop it and raise."""
        try:
            kernel.wait_ready()
            setup = self._execute(kernel, _SETUP_CELL, self.startup_timeout_s, silent=True)
        except BaseException:
            self._resources.stop_kernel()
            raise
        if setup.get("status") != "ok":
            self._resources.stop_kernel()
            raise ActionError(f"the Python kernel could not be set up: {setup.get('text', '')}")
        logger.info(
            "started a Python kernel (pid %s) in %.2f s",
            kernel.process.pid,
            time.perf_counter() - self._kernel_started_at,
        )

    def _kernel(self) -> _Kernel:
        kernel = self._resources.kernel
        if kernel is not None and kernel.alive():
            return kernel
        if kernel is not None:
            self._resources.stop_kernel()
        kernel = self._spawn()
        self._resources.kernel = kernel
        self._set_up(kernel)
        return kernel

    def restart(self) -> None:
        """Start over with a fresh kernel (on the next call): variables and imports are lost, files stay."""
        with self._lock:
            self._resources.stop_kernel()

    reset = restart  # lagent's name

    def interrupt(self) -> None:
        """Stop the code running now (KeyboardInterrupt in the kernel); variables are kept.

        The call ends with an error saying it was interrupted, wherever the interrupt lands (even just
        before the cell starts: the interrupt is repeated until the cell stops). Does nothing while no
        call runs. The REPL calls this when the user cancels a turn with Ctrl-C.
        """
        if self._busy:
            self._interrupt.set()

    def _stop_abandoned_cell(self) -> None:
        """Interrupt the cell a call stopped waiting for, and wait until the kernel is idle again (else
        the kernel would abort the next call, queued behind a cell that ends in an error)."""
        kernel, msg_id = self._resources.kernel, self._running_msg
        if kernel is None or msg_id is None or not kernel.alive():
            return
        deadline = time.monotonic() + self.interrupt_grace_s
        signalled_at = -math.inf
        while time.monotonic() < deadline:
            if time.monotonic() - signalled_at >= _RESIGNAL_S:
                signalled_at = time.monotonic()
                try:
                    kernel.interrupt()
                except OSError:
                    break
            try:
                msg = kernel.client.iopub_channel.get_msg(timeout=_POLL_S)
            except queue.Empty:
                continue
            if (
                msg["parent_header"].get("msg_id") == msg_id
                and msg["msg_type"] == "status"
                and msg["content"].get("execution_state") == "idle"
            ):
                kernel.reply(msg_id, 1.0)
                return
        self._resources.stop_kernel()  # it would not stop: start clean on the next call

    @property
    def busy(self) -> bool:
        """Whether a call is running now."""
        return self._busy

    def close(self) -> None:
        """Shut the kernel down (one still starting too) and delete the working directory if this
        interpreter made it."""
        starter = self._starter
        self._closing.set()  # a kernel still starting stops waiting to start
        kernel = self._resources.kernel
        if kernel is not None:
            kernel._terminate()  # a call still waiting on the kernel sees it die and returns at once
        if starter is not None:
            starter.join(self.startup_timeout_s + 10)
            with self._start_lock:
                if self._starter is starter:
                    self._starter, self._start_error = None, None
        self._closing.clear()  # a later call may start a kernel again
        if self._lock.acquire(timeout=10):
            try:
                self._resources.release()
                self._resources.owned_dir = None
                self._work_dir = None
            finally:
                self._lock.release()
        else:  # a call is stuck; the finalizer releases the rest when the interpreter goes
            logger.warning("the interpreter is busy; its kernel was killed but not cleaned up")

    def __enter__(self) -> IPythonInterpreter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running code --------------------------------------------------------------------------
    def run(self, command: str) -> ActionResult:
        """Run Python code in the notebook and return what it printed, its last value and its figures.

        Args:
            command: the Python code to run
        """
        code = _unfence(command)
        self._join_start()  # a kernel started in the background: wait for it (or its error)
        with self._lock:
            self._interrupt.clear()
            self._busy = True
            try:
                kernel = self._kernel()
                outcome = self._execute(kernel, code, self.timeout_s)
            except BaseException:  # e.g. Ctrl-C on this thread: the cell must not run on unwatched
                self._stop_abandoned_cell()
                raise
            finally:
                self._busy = False
                self._interrupt.clear()
        return self._result(command, outcome)

    def lagent_args(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """lagent's interpreter shows the code as `{"text": code}`."""
        return {"text": arguments.get("command", "")}

    def _execute(
        self, kernel: _Kernel, code: str, timeout_s: float | None, *, silent: bool = False
    ) -> dict[str, Any]:
        """Run `code`; collect its messages in order until the kernel is idle, the limit passes, or it dies."""
        client = kernel.client
        msg_id = client.execute(
            code, silent=silent, store_history=not silent, allow_stdin=False, stop_on_error=True
        )
        self._running_msg = msg_id
        output = OutputBuffer(self.max_output_chars)
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
                if self._interrupt.is_set():
                    interrupted_at, outcome["status"] = now, "interrupted"
                elif deadline is not None and now >= deadline:
                    interrupted_at, outcome["status"] = now, "timeout"
            if interrupted_at is not None:
                if now - interrupted_at > self.interrupt_grace_s:
                    self._resources.stop_kernel()  # it ignored the interrupt
                    outcome["restarted"] = True
                    break
                if not stopped and now - signalled_at >= _RESIGNAL_S:
                    # repeated until the cell stops: one that lands before the cell starts is lost
                    signalled_at = now
                    try:
                        kernel.interrupt()
                    except OSError:
                        self._resources.stop_kernel()
                        outcome["restarted"] = True
                        break
            if interrupted_at is None and deadline is not None:
                wait = min(_POLL_S, deadline - now)
            else:
                wait = _POLL_S
            try:
                msg = client.iopub_channel.get_msg(timeout=max(0.0, wait))
            except queue.Empty:
                if not kernel.alive():
                    outcome.update(status="died", exit_code=kernel.process.returncode)
                    self._resources.stop_kernel()
                    break
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue  # left over from an earlier, interrupted call
            kind, content = msg["msg_type"], msg["content"]
            if kind == "status" and content.get("execution_state") == "idle":
                reply = kernel.reply(msg_id, 5.0)  # take the shell reply off the socket
                if reply is not None and reply["content"].get("status") == "aborted" and outcome["status"] == "ok":
                    outcome["status"] = "aborted"  # queued behind a cell that failed: it never ran
                break
            if kind == "stream":
                output.add(strip_ansi(content.get("text", "")))
            elif kind in ("execute_result", "display_data"):
                self._add_display(content.get("data", {}), output, files)
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
        self._running_msg = None
        outcome["text"] = output.text()
        outcome["duration_s"] = time.monotonic() - started
        return outcome

    def _add_display(self, data: dict[str, Any], output: OutputBuffer, files: list[str]) -> None:
        for mime, suffix in _IMAGE_TYPES.items():
            if mime in data:
                files.append(str(self._save_image(data[mime], suffix)))
                return  # the text/plain of a figure is only "<Figure size ...>"
        text = data.get("text/plain")
        if text:
            output.add(strip_ansi(text) + "\n", block=True)

    def _save_image(self, b64: str, suffix: str) -> Path:
        while True:
            self._figures += 1
            path = self.work_dir / f"figure-{self._figures:03d}{suffix}"
            if not path.exists():
                break
        path.write_bytes(base64.b64decode(b64))
        return path

    def _result(self, command: str, outcome: dict[str, Any]) -> ActionResult:
        text = outcome["text"].rstrip("\n")
        status = outcome["status"]
        result = ActionResult(
            name=self.name,
            arguments={"command": command},
            output=text,
            files=outcome["files"],
            duration_s=outcome["duration_s"],
        )
        if status == "ok":
            return result
        if status == "error" and "MemoryError" in outcome.get("ename", "") and self.memory_limit_mb:
            self.restart()  # the kernel may be holding its whole budget: start clean
            message = (
                f"MemoryError: the code needed more memory than the interpreter's limit of {self.memory_limit_mb} MB. "
                "The kernel was restarted: variables and imports are lost (files in the working directory are kept). "
                "Work on smaller pieces of data."
            )
            error_type = "tool_error"
        elif status == "error":
            message, error_type = "", "tool_error"
        elif status == "interrupted":
            if outcome.get("restarted"):
                tail = "it did not stop, so the kernel was restarted: variables and imports are lost."
            else:
                tail = "variables defined before are kept."
            message = f"Interrupted: the code was stopped by the user (KeyboardInterrupt); {tail}"
            error_type = "interrupted"
        elif status == "aborted":
            message = "The kernel did not run the code (it aborted it after an earlier error); run it again."
            error_type = "tool_error"
        elif status == "timeout":
            if outcome.get("restarted"):
                tail = "it did not stop when interrupted, so the kernel was restarted: variables and imports are lost."
            else:
                tail = "it was interrupted; variables defined before are kept."
            message = f"Time limit: the code did not finish within {self.timeout_s:g} s; {tail}"
            error_type = "timeout"
        else:  # died
            code = outcome.get("exit_code")
            how = f"killed by signal {-code}" if isinstance(code, int) and code < 0 else f"exit code {code}"
            limit = f" the memory limit of {self.memory_limit_mb} MB or" if self.memory_limit_mb else ""
            message = (
                f"The Python kernel died while running the code ({how}): it ran out of{limit} the machine's memory, "
                "or crashed. A fresh kernel starts on the next call: variables and imports are lost."
            )
            error_type = "tool_error"
        result.output = text
        result.error = "\n".join(part for part in (text, message) if part) or "the code failed"
        result.error_type = error_type
        return result
