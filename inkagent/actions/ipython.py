"""`IPythonInterpreter`: runs the model's Python code in a Jupyter kernel of its own.

Each interpreter (one per agent session) owns one IPython kernel process, started on the first call
(or ahead of it, in the background, by `start()`: `build_agent` does so while the model loads),
with its own working directory, a wall-clock time limit per call and a memory limit. Variables persist
from call to call. The agent talks to the kernel over ZeroMQ (jupyter_client), so calls work from any
thread: no signal handler is installed in the agent's process.

The kernel gets a minimal environment (`kernel_environment`): the agent's API keys and tokens are not
passed on; HOME is the working directory. It runs under a subreaper (`inkagent.subreaper`), so `close()`
kills every process the code started, including ones that detached or double-forked.

This module is the action: its arguments, the life of its one kernel (background start, restart,
interrupt, close), the figures' files and the result the model reads. The kernel process and the
running of one cell in it (time limit, interrupts, collecting the output) are `jupyter_kernel._Kernel`.

This is isolation from the agent, not a security sandbox: the code runs with the agent user's rights
and can read files and reach the network. Run the whole agent in a container to contain it.
"""

from __future__ import annotations

import base64
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import weakref
from pathlib import Path
from typing import Any

from ..errors import ActionError, MissingDependency, require  # noqa: F401
from ..schema import ActionResult
from ..subreaper import program_pid, spawn_reaped, terminate_reaped  # noqa: F401
from .base import Action
from .jupyter_kernel import (  # noqa: F401
    _ANSI,
    _IMAGE_TYPES,
    _LAUNCHER,
    _POLL_S,
    _RESIGNAL_S,
    _SETUP,
    _SETUP_CELL,
    _Kernel,
    strip_ansi,
)
from .kernel_env import KERNEL_ENV_ALLOWLIST, extra_env, kernel_environment  # noqa: F401
from .output import OutputBuffer  # noqa: F401

# The `noqa: F401` names are re-exported: the kernel and its helpers moved to `jupyter_kernel`, and what
# was importable from this module stays so. A patch of one must target `inkagent.actions.jupyter_kernel`,
# where the kernel looks it up.

logger = logging.getLogger(__name__)

_FENCED = re.compile(r"\A\s*```[\w+-]*[^\S\n]*\n(?P<code>.*?)\n?```\s*\Z", re.DOTALL)


def _unfence(code: str) -> str:
    """The code inside a ```python fence, when the whole command is one (lagent callers send that)."""
    match = _FENCED.match(code)
    return match.group("code") if match else code


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
        self._code_dir = (
            Path(os.path.dirname(user_data_dir)).expanduser().resolve() if user_data_dir else None
        )
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
            self._code_dir or self.work_dir,
            self.memory_limit_mb,
            self.startup_timeout_s,
            self.env,
            self._closing,
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
        kernel = self._resources.kernel
        if kernel is not None and not kernel.stop_running_cell(self.interrupt_grace_s):
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
        """Run `code` in `kernel` under this interpreter's limits (see `_Kernel.execute`)."""
        return kernel.execute(
            code,
            timeout_s,
            max_output_chars=self.max_output_chars,
            grace_s=self.interrupt_grace_s,
            interrupt_requested=self._interrupt,
            save_image=self._save_image,
            on_lost=self._resources.stop_kernel,  # the kernel ignored the interrupt, or died
            silent=silent,
        )

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
