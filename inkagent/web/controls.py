"""What a web session puts around its agent: a view of the tools that can be switched and cancelled,
and a gate that lets one session at a time generate with a model shared by the whole process.

Both are wrappers that the agent sees through its usual interfaces (`plugin_executor` /
`interpreter_executor`, `llm`), so the agent loop itself is unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from ..schema import ActionResult, ToolCall, ToolSpec

logger = logging.getLogger(__name__)

#: How often a waiting session checks whether it was stopped (seconds).
POLL_S = 0.05


class TurnCancelled(BaseException):  # noqa: N818  (like KeyboardInterrupt: not an error, not an Exception)
    """Raised inside the agent's stream when the user pressed Stop; it ends the turn as Ctrl-C would.

    A `BaseException`, so that no `except Exception` in the agent or a tool swallows it: it leaves
    `agent.stream()`, whose clean-up drops the partial turn from the conversation.
    """


class ToolView:
    """An `ActionExecutor` as one session sees it: some tools switched off, calls cancellable.

    Args:
        executor: the session's own `ActionExecutor` (never shared between sessions).
        cancel: set by Stop; a turn waiting for its calls then raises `TurnCancelled` at once, and
            the running calls are asked to stop (`interrupt()`), as Ctrl-C does in the REPL.

    Attributes it does not define (`actions`, `close`, `resolve`...) are the executor's.
    """

    def __init__(self, executor: Any, cancel: threading.Event) -> None:
        self.executor = executor
        self.cancel = cancel
        self.enabled: set[str] | None = None  # action names; None: all of them

    def __getattr__(self, name: str) -> Any:
        return getattr(self.executor, name)

    # -- which tools the model sees ----------------------------------------------------------------
    def tool_names(self) -> list[str]:
        """The names of every action of the executor (switched on or not), in config order."""
        return list(self.executor.actions)

    def _action_of(self, api_name: str) -> str | None:
        for action in self.executor.actions:
            if api_name == action or api_name.startswith(action + "."):
                return action
        return None

    def allows(self, api_name: str) -> bool:
        if self.enabled is None:
            return True
        action = self._action_of(api_name)
        return action is None or action in self.enabled

    def specs(self) -> list[ToolSpec]:
        return [spec for spec in self.executor.specs() if self.allows(spec.name)]

    def api_names(self) -> list[str]:
        return [name for name in self.executor.api_names() if self.allows(name)]

    def get_actions_info(self) -> list[dict]:
        return [info for info in self.executor.get_actions_info() if self.allows(str(info.get("name", "")))]

    # -- running calls -----------------------------------------------------------------------------
    def run(self, call: ToolCall) -> ActionResult:
        return self.run_all([call])[0]

    def run_all(self, calls: Sequence[ToolCall]) -> list[ActionResult]:
        """Run the calls on a helper thread and wait for them, raising `TurnCancelled` on Stop.

        A call to a switched-off tool fails as an unknown tool would, naming the tools that are on.
        """
        results: list[ActionResult | None] = [None] * len(calls)
        runnable = []
        for i, call in enumerate(calls):
            if self._allowed_call(call):
                runnable.append(i)
            else:
                available = ", ".join(self.api_names()) or "(none)"
                results[i] = ActionResult(
                    name=call.name,
                    arguments=call.arguments,
                    error=f"Unknown tool '{call.name}'. Available tools: {available}.",
                    error_type="unknown_tool",
                    call_id=call.id,
                )
        if runnable:
            done = [*self._run_cancellable([calls[i] for i in runnable])]
            for i, result in zip(runnable, done, strict=True):
                results[i] = result
        return [r for r in results if r is not None]

    def _allowed_call(self, call: ToolCall) -> bool:
        if call.kind == "interpreter" or self.enabled is None:
            return True
        resolved = self.executor.resolve(call) if hasattr(self.executor, "resolve") else None
        name = resolved.spec.name if resolved is not None else call.name
        return self.allows(name)

    def _run_cancellable(self, calls: list[ToolCall]) -> list[ActionResult]:
        if self.cancel.is_set():
            raise TurnCancelled()
        box: dict[str, Any] = {}
        finished = threading.Event()

        def target() -> None:
            try:
                box["results"] = self.executor.run_all(calls)
            except BaseException as exc:  # handed to the waiting turn, which re-raises it
                box["error"] = exc
            finally:
                finished.set()

        threading.Thread(target=target, name="inkagent-web-calls", daemon=True).start()
        while not finished.wait(POLL_S):
            if self.cancel.is_set():
                self.interrupt()
                raise TurnCancelled()
        if "error" in box:
            raise box["error"]
        return box["results"]

    def interrupt(self) -> None:
        """Ask every action that can (the interpreter: its kernel) to stop the call it is running."""
        for action in self.executor.actions.values():
            interrupt = getattr(action, "interrupt", None)
            if callable(interrupt):
                try:
                    interrupt()
                except Exception:  # the turn is cancelled anyway
                    logger.warning("interrupting %s failed", type(action).__name__, exc_info=True)

    def restart(self) -> None:
        """Give the actions that keep state (the interpreter's kernel) a fresh start."""
        for action in self.executor.actions.values():
            restart = getattr(action, "restart", None)
            if callable(restart):
                restart()


class SharedModel:
    """A model loaded once per process and used by every session, one generation at a time."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.lock = threading.Lock()


class GatedLLM:
    """One session's handle on a `SharedModel`: generation waits for the model's lock.

    While it waits, `waiting` is set (the page shows it); Stop (`cancel`) ends the wait with
    `TurnCancelled`. Everything else (`render`, `gen_params`...) is the model's own.
    """

    def __init__(self, shared: SharedModel, cancel: threading.Event) -> None:
        self.shared = shared
        self.cancel = cancel
        self.waiting = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.shared.model, name)
        if name == "choose_letter":  # the writer's step 5 generates too
            return self._gated(attribute)
        return attribute

    def _acquire(self) -> None:
        if self.shared.lock.acquire(blocking=False):
            return
        self.waiting.set()
        try:
            while not self.shared.lock.acquire(timeout=POLL_S):
                if self.cancel.is_set():
                    raise TurnCancelled()
        finally:
            self.waiting.clear()

    def stream_text(self, inputs: Any, **gen_params: Any) -> Iterator[str]:
        """The model's deltas, generated while this session holds the model."""
        from ..agents.llm_stream import stream_llm

        self._acquire()
        try:
            yield from stream_llm(self.shared.model, inputs, **gen_params)
        finally:
            self.shared.lock.release()

    def _gated(self, function: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self._acquire()
            try:
                return function(*args, **kwargs)
            finally:
                self.shared.lock.release()

        return call
