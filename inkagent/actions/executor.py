"""`ActionExecutor`: validates and runs tool calls, and never lets a tool take the agent down.

Every failure becomes an `ActionResult` whose `error` is written for the model to read: an unknown tool
lists the real ones, bad arguments name the parameter, a raising tool gives the exception type and
message, a tool past its time limit says so, and output over the size limit is cut with a note.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from _thread import allocate_lock as _allocate_lock
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from ..errors import ActionError
from ..schema import ActionResult, ToolCall, ToolSpec
from .base import BoundApi, bind_apis
from .capture import capture_output
from .output import CutOutput
from .tool import call_maybe_async, describe_validation_error
from .workers import WORKERS, wait

logger = logging.getLogger(__name__)


class ActionExecutor:
    """Runs calls against a set of actions.

    Args:
        actions: inkagent `Action`s, `@tool` functions and lagent `BaseAction`s (toolkits included).
        timeout_s: wall-clock limit of one call; `None` for none. A call past it is reported as failed
            and left to finish in the background (Python cannot kill a thread; the interpreter kills its
            own kernel instead). An action with a `call_timeout_s` attribute gets that limit instead
            (`math.inf` for none).
        max_output_chars: longer outputs are cut, with a note saying how much was dropped.
        parallel: run the calls of one turn concurrently.
        invalid_action, no_action, finish_action, finish_in_action: lagent 0.2.4's keywords, same
            meaning where lagent code calls the executor (`executor(name, command)`): an unknown name
            goes to `no_action` / `finish_action` when it is theirs, else to `invalid_action` (when
            given; otherwise inkagent's error listing the real tools). `finish_in_action=True` lists
            `finish_action` (lagent's `FinishAction` by default) as a tool. The agent loop itself reports
            unknown tools to the model, and ends a run when the model answers without a call.
    """

    def __init__(
        self,
        actions: Any = (),
        invalid_action: Any = None,
        no_action: Any = None,
        finish_action: Any = None,
        finish_in_action: bool = False,
        *,
        timeout_s: float | None = 60.0,
        max_output_chars: int = 8000,
        parallel: bool = True,
    ) -> None:
        actions = list(actions) if isinstance(actions, list | tuple) else [actions]
        if finish_in_action:
            if finish_action is None:
                from lagent.actions import FinishAction

                finish_action = FinishAction()
            actions.append(finish_action)
        self.invalid_action = invalid_action
        self.no_action = no_action
        self.finish_action = finish_action
        self.timeout_s = timeout_s
        self.max_output_chars = max_output_chars
        self.parallel = parallel
        self.actions: dict[str, Any] = {}
        self._apis: dict[str, BoundApi] = {}
        self._specs: list[ToolSpec] | None = None
        self._changeable: list[Any] = []  # actions whose tool list can change (MCP toolsets)
        for action in actions:
            self.add_action(action)

    # -- the set of actions --------------------------------------------------------------------
    def add_action(self, action: Any) -> None:
        apis = bind_apis(action)
        name = getattr(action, "name", None) or (apis[0].spec.name if apis else repr(action))
        clashes = [a.spec.name for a in apis if a.spec.name in self._apis]
        if name in self.actions or clashes:
            raise ValueError(f"two actions are named {name!r}: give one of them another name")
        self.actions[name] = action
        if hasattr(action, "tools_changed"):
            self._changeable.append(action)
        self._specs = None
        for bound in apis:
            self._apis[bound.spec.name] = bound

    def del_action(self, name: str) -> None:
        action = self.actions.pop(name, None)
        self._changeable = [a for a in self._changeable if a is not action]
        self._specs = None
        for api_name in [n for n in self._apis if n == name or n.startswith(name + ".")]:
            del self._apis[api_name]

    def specs(self) -> list[ToolSpec]:
        """What the model is told about each API (read at the start of each turn)."""
        self._rebind_changed()
        if self._specs is None:
            self._specs = [bound.spec for bound in self._apis.values()]
        return list(self._specs)

    def _rebind_changed(self) -> None:
        """Bind again the actions whose tools changed since they were bound (an MCP server's
        `notifications/tools/list_changed` sets `tools_changed`). Runs as the tool list is read, so a
        new list takes effect between turns, never under the calls of one."""
        if not self._changeable:
            return
        for name, action in list(self.actions.items()):
            if getattr(action, "tools_changed", False) is not True:
                continue
            try:
                apis = bind_apis(action)
            except Exception:
                logger.warning("listing the tools of %s again failed; keeping the old list", name, exc_info=True)
                continue
            for api_name in [n for n, bound in self._apis.items() if bound.owner is action]:
                del self._apis[api_name]
            for bound in apis:
                if bound.spec.name in self._apis:
                    logger.warning("%s: a tool named %r exists already; the new one is left out", name, bound.spec.name)
                    continue
                self._apis[bound.spec.name] = bound
            self._specs = None

    def action_names(self, only_enable: bool = True) -> list[str]:
        """The actions' names (lagent's method: only enabled ones unless `only_enable=False`)."""
        return [n for n, a in self.actions.items() if not only_enable or getattr(a, "enable", True)]

    def is_valid(self, name: str) -> bool:
        """Whether `name` is an enabled action (lagent's method)."""
        return name in self.action_names()

    def api_names(self) -> list[str]:
        return list(self._apis)

    def get_actions_info(self) -> list[dict]:
        """The APIs in lagent's description format (for lagent's protocol and tools)."""
        from ..protocols.prompts import describe_tool

        infos = []
        for spec in self.specs():
            info = describe_tool(spec)
            info["description"] = spec.description
            infos.append(info)
        return infos

    def close(self) -> None:
        """Release every action's resources (interpreter kernels...)."""
        for action in self.actions.values():
            closer = getattr(action, "close", None)
            if callable(closer):
                try:
                    closer()
                except Exception:
                    logger.exception("closing action %s failed", action)

    # -- running calls -------------------------------------------------------------------------
    def resolve(self, call: ToolCall) -> BoundApi | None:
        bound = self._apis.get(call.name)
        if bound is None and call.kind == "interpreter" and len(self._apis) == 1:
            bound = next(iter(self._apis.values()))  # the interpreter, whatever the model called it
        if bound is None and call.name in self.actions:
            own = [b for n, b in self._apis.items() if n.startswith(call.name + ".")]
            bound = own[0] if len(own) == 1 else None
        return bound

    def run(self, call: ToolCall) -> ActionResult:
        """Validate and run one call. Never raises."""
        return self.run_all([call])[0]

    def run_all(self, calls: Sequence[ToolCall]) -> list[ActionResult]:
        """Run the calls of one turn (concurrently when `parallel`), results in call order."""
        jobs = [_Job(self, call) for call in calls]
        runnable = [job for job in jobs if job.ready]
        if len(runnable) > 1 and self.parallel:
            for job in runnable:
                job.submit()
            for job in runnable:
                job.wait()
        else:
            for job in runnable:
                if job.limit_s is None:
                    job.run_here()  # no time limit to enforce: skip the hand-off to a worker thread
                else:
                    job.submit()
                    job.wait()
        return [job.result for job in jobs]

    def __call__(self, name: str, command: Any) -> Any:
        """lagent's calling convention: `executor(name, arguments)` -> lagent's `ActionReturn`.

        `name` is `Action` or `Action.api`; `command` the arguments (a dict or JSON text; for the
        interpreter, code text). The action is called as lagent calls it (`action(command, api)`).
        """
        action_name, _, api = name.partition(".")
        action = self.actions.get(action_name)
        if action is None or not self.is_valid(action_name):
            specials = (self.no_action, self.finish_action)
            special = next((a for a in specials if a is not None and name == a.name), self.invalid_action)
            if special is not None:
                return special(command)
        elif hasattr(action, "enable") and callable(action):  # inkagent and lagent actions: lagent's own call
            return action(command, api or "run")
        if isinstance(command, str):
            try:
                arguments = json.loads(command)
            except json.JSONDecodeError:
                arguments = {"command": command}
        else:
            arguments = dict(command or {})
        result = self.run(ToolCall(name=name, arguments=arguments))
        return result.to_lagent()

    # -- internals -----------------------------------------------------------------------------
    def _prepare(self, call: ToolCall) -> tuple[BoundApi, dict[str, Any]] | ActionResult:
        bound = self.resolve(call)
        if bound is None:
            available = ", ".join(self._apis) or "(none)"
            return _failure(call, "unknown_tool", f"Unknown tool '{call.name}'. Available tools: {available}.")
        try:
            validated: BaseModel = bound.arguments_model.model_validate(call.arguments)
        except ValidationError as exc:
            expected = ", ".join(_describe_param(n, p, bound.spec) for n, p in _props(bound.spec).items())
            message = f"Invalid arguments for {bound.spec.name}: {describe_validation_error(exc)}. Parameters: {expected}."
            return _failure(call, "invalid_arguments", message)
        # keep nested models as models: the function's hints asked for them
        arguments = {name: getattr(validated, name) for name in type(validated).__pydantic_fields__}
        return bound, arguments

    def _finish(self, call: ToolCall, output: Any, started: float) -> ActionResult:
        result = _to_result(call, output)
        if len(result.output) > self.max_output_chars:
            result.output = self._cut(result.output)
        result.duration_s = time.perf_counter() - started
        return result

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_output_chars:
            return text
        return (
            text[: self.max_output_chars]
            + f"\n... [output cut: {len(text)} characters in all, only the first {self.max_output_chars} shown]"
        )

    def _with_printed(self, result: ActionResult, printed: str) -> ActionResult:
        """`result` with what the tool printed before it: printed text first, as in a notebook."""
        printed = printed.rstrip("\n")
        if not printed:
            return result
        after = result.error if result.error is not None else result.output
        room = self.max_output_chars - len(after) - 1
        if len(printed) > room:  # keep the result whole: the printed text gives way (its middle goes)
            cut = CutOutput(max(room, self.max_output_chars // 4))
            cut.add(printed)
            printed = cut.text().rstrip("\n")
        if result.error is not None:
            result.error = f"{printed}\n{result.error}"
        else:
            result.output = self._cut(f"{printed}\n{result.output}" if result.output else printed)
        return result


class _Job:
    """One validated call, run here or on a pool thread (so that a hung tool cannot block the agent)."""

    def __init__(self, executor: ActionExecutor, call: ToolCall):
        self.executor, self.call = executor, call
        self._done: Any = None  # a lock held while the call runs on a worker (see `submit`)
        self._start_time = time.perf_counter()
        prepared = executor._prepare(call)
        self.ready = not isinstance(prepared, ActionResult)
        if self.ready:
            self._bound, self._arguments = prepared
            own_limit = getattr(self._bound.owner, "call_timeout_s", None)  # e.g. a skill that takes minutes
            self.limit_s = executor.timeout_s if own_limit is None else own_limit
            if self.limit_s == float("inf"):
                self.limit_s = None
            self.result = _failure(call, "tool_error", "the call did not run")
        else:
            self.limit_s = None
            self.result = prepared

    def run_here(self) -> None:
        self._start_time = time.perf_counter()
        self._target()

    def submit(self) -> None:
        self._start_time = time.perf_counter()
        self._done = _allocate_lock()  # released by the worker when the call ends: cheaper than an Event
        self._done.acquire()
        WORKERS.submit(self._target, self._done)

    def _target(self) -> None:
        call, name = self.call, self._bound.spec.name
        try:
            with capture_output(self.executor.max_output_chars) as printed:
                try:
                    output = call_maybe_async(self._bound.fn, **self._arguments)
                    self.result = self.executor._finish(call, output, self._start_time)
                except ActionError as exc:
                    self.result = _failure(call, "tool_error", f"{name} failed: {exc}")
                except Exception as exc:  # a tool bug must not end the run: the model hears about it
                    logger.debug("tool %s raised", call.name, exc_info=True)
                    self.result = _failure(call, "tool_error", f"{name} raised {type(exc).__name__}: {exc}")
                except BaseException as exc:
                    if isinstance(exc, KeyboardInterrupt) and threading.current_thread() is threading.main_thread():
                        raise  # Ctrl-C while the call runs on the agent's thread: cancel the turn
                    # SystemExit, GeneratorExit, a custom BaseException...: it would end the thread
                    # silently and leave the caller waiting for the whole time limit
                    logger.debug("tool %s raised a BaseException", call.name, exc_info=True)
                    self.result = _failure(
                        call,
                        "tool_error",
                        f"{name} raised {type(exc).__name__}{_detail(exc)}, which is not an Exception: "
                        "the tool tried to end its thread or the program; the call was stopped.",
                    )
            self.result = self.executor._with_printed(self.result, printed.text())
        finally:
            self.result.duration_s = time.perf_counter() - self._start_time

    def wait(self) -> None:
        limit = self.limit_s
        remaining = -1 if limit is None else max(0.0, limit - (time.perf_counter() - self._start_time))
        if not wait(self._done, remaining):
            self.result = _failure(
                self.call,
                "timeout",
                f"{self.call.name} did not finish within its time limit of {limit:g} s; the call was abandoned.",
            )
            self.result.duration_s = time.perf_counter() - self._start_time


def _failure(call: ToolCall, error_type: str, message: str) -> ActionResult:
    return ActionResult(name=call.name, arguments=call.arguments, error=message, error_type=error_type, call_id=call.id)


def _to_result(call: ToolCall, output: Any) -> ActionResult:
    if type(output) is str:  # the common case first
        return ActionResult(name=call.name, arguments=call.arguments, output=output, call_id=call.id)
    if isinstance(output, ActionResult):
        return output.model_copy(update={"name": call.name, "arguments": call.arguments, "call_id": call.id})
    if type(output).__name__ == "ActionReturn" and hasattr(output, "state"):  # a lagent ActionReturn
        result = ActionResult.from_lagent(output, name=call.name)
        return result.model_copy(update={"arguments": call.arguments, "call_id": call.id})
    if output is None:
        text = ""
    elif isinstance(output, str):
        text = output
    elif isinstance(output, bytes | bytearray | memoryview):
        text = _decode(output)
    elif isinstance(output, BaseModel):
        text = output.model_dump_json()
    else:
        try:
            text = json.dumps(output, ensure_ascii=False, default=_jsonable)
        except (TypeError, ValueError, RecursionError):
            text = str(output)
    return ActionResult(name=call.name, arguments=call.arguments, output=text, call_id=call.id)


def _decode(data: bytes | bytearray | memoryview) -> str:
    """Bytes as the text they hold (UTF-8), else a short note of their size."""
    data = bytes(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(data)} bytes>"


def _jsonable(value: Any) -> Any:
    """A JSON form for values json does not know (bytes, models, dataclasses, sets...), else their str."""
    import dataclasses

    if isinstance(value, bytes | bytearray | memoryview):
        return _decode(value)
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _detail(exc: BaseException) -> str:
    text = str(exc)
    return f" ({text})" if text else ""


def _props(spec: ToolSpec) -> dict[str, Any]:
    return spec.parameters.get("properties", {})


def _describe_param(name: str, prop: dict[str, Any], spec: ToolSpec) -> str:
    kind = prop.get("type") or "/".join(o.get("type", "?") for o in prop.get("anyOf", [])) or "any"
    required = name in spec.parameters.get("required", [])
    return f"{name} ({kind}{', required' if required else ''})"



def agent_tools(agent: Any) -> list[dict[str, Any]]:
    """Every tool an agent offers its model now, for tool lists in UIs (REPL, web page).

    Returns dicts `{"name", "description", "parameters" (JSON Schema), "source", "kind"}`: `source` is
    the action the tool belongs to (for an MCP server's tool, the server's name) and `kind` is `plugin`,
    `mcp` or `interpreter`. Plugins come first, then the interpreter; an MCP server's latest tool list
    (after `tools/list_changed`) is what is shown.
    """
    from .mcp_client import MCPToolset

    tools = []
    for attribute, kind in (("plugin_executor", "plugin"), ("interpreter_executor", "interpreter")):
        executor = getattr(agent, attribute, None)
        if not isinstance(executor, ActionExecutor):
            continue
        owners = {id(action): name for name, action in executor.actions.items()}
        for spec in executor.specs():
            owner = executor._apis[spec.name].owner
            tools.append({
                **spec.model_dump(),
                "source": owners.get(id(owner), spec.name),
                "kind": "mcp" if isinstance(owner, MCPToolset) else kind,
            })
    return tools
