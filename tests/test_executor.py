"""ActionExecutor and @tool: validation, coercion, errors the model can act on, limits, lagent toolkits."""

from __future__ import annotations

import threading
import time
from enum import Enum
from typing import Literal

import pytest
from lagent.actions import BaseAction, tool_api
from pydantic import BaseModel

from inkagent.actions import Action, ActionExecutor, api, tool
from inkagent.schema import ToolCall


@tool
def order(item: str, quantity: int, express: bool = False) -> str:
    """Order goods.

    Args:
        item: what to order
        quantity: how many pieces
        express: ship by express
    """
    return f"{quantity * 2} halves of {item} ({type(quantity).__name__})"


class Color(Enum):
    RED = "red"
    BLUE = "blue"


class Address(BaseModel):
    city: str
    zip_code: str | None = None


@tool
def ship(to: Address, colors: list[Color], speed: Literal["slow", "fast"] = "slow", note: str | None = None) -> dict:
    """Ship parcels.

    Parameters
    ----------
    to
        where the parcels go
    colors
        one colour per parcel
    """
    return {"city": to.city, "colors": [c.value for c in colors], "speed": speed}


class Calculator(BaseAction):
    """A calculator written for lagent 0.2.4 (unchanged)."""

    @tool_api
    def add(self, a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a (int): augend
            b (int): addend
        """
        return a + b

    @tool_api
    def power(self, base, exponent=2):
        """Raise to a power.

        Args:
            base (float): the base
            exponent (int): the exponent
        """
        return base**exponent


def test_schema_from_hints_and_google_docstring():
    spec = order.spec
    assert spec.name == "order" and spec.description == "Order goods."
    props = spec.parameters["properties"]
    assert props["quantity"] == {"type": "integer", "description": "how many pieces"}
    assert props["express"]["default"] is False
    assert spec.parameters["required"] == ["item", "quantity"]


def test_schema_of_nested_models_enums_literals_and_numpy_docstring():
    props = ship.spec.parameters["properties"]
    assert props["to"]["properties"]["city"]["type"] == "string" and props["to"]["description"] == "where the parcels go"
    assert props["colors"]["items"]["enum"] == ["red", "blue"]
    assert props["speed"]["enum"] == ["slow", "fast"]
    assert "$defs" not in ship.spec.parameters and "title" not in props["to"]
    result = ActionExecutor([ship]).run(ToolCall(name="ship", arguments={"to": {"city": "Hangzhou"}, "colors": ["red"]}))
    assert result.ok, result.error
    assert '"city": "Hangzhou"' in result.output


def test_decorated_function_is_still_callable():
    assert order("tea", 2) == "4 halves of tea (int)"


def test_lossless_coercion_reaches_the_tool_typed():
    result = ActionExecutor([order]).run(ToolCall(name="order", arguments={"item": "tea", "quantity": "3"}))
    assert result.ok and result.output == "6 halves of tea (int)"


def test_lossy_coercion_is_refused_naming_the_parameter():
    result = ActionExecutor([order]).run(ToolCall(name="order", arguments={"item": "tea", "quantity": "3.5"}))
    assert result.error_type == "invalid_arguments"
    assert "'quantity'" in result.error and "integer" in result.error


def test_missing_and_unknown_parameters_are_named():
    result = ActionExecutor([order]).run(ToolCall(name="order", arguments={"item": "tea", "colour": "red"}))
    assert "missing required parameter 'quantity'" in result.error
    assert "unknown parameter 'colour'" in result.error


def test_unknown_tool_lists_the_real_ones():
    result = ActionExecutor([order, ship]).run(ToolCall(name="buy", arguments={}))
    assert result.error_type == "unknown_tool"
    assert "order" in result.error and "ship" in result.error


def test_a_raising_tool_gives_type_and_message():
    @tool
    def broken(x: int) -> str:
        """Always fails."""
        raise KeyError("no such record")

    result = ActionExecutor([broken]).run(ToolCall(name="broken", arguments={"x": 1}))
    assert result.error_type == "tool_error"
    assert "KeyError" in result.error and "no such record" in result.error


def test_time_limit_abandons_a_hung_tool():
    release = threading.Event()

    @tool
    def hang() -> str:
        """Never returns on its own."""
        release.wait(30)
        return "late"

    started = time.perf_counter()
    result = ActionExecutor([hang], timeout_s=0.2).run(ToolCall(name="hang"))
    release.set()
    assert result.error_type == "timeout" and "time limit" in result.error
    assert time.perf_counter() - started < 10


def test_huge_output_is_cut_with_a_note():
    @tool
    def spam() -> str:
        """Prints a lot."""
        return "x" * 1_000_000

    result = ActionExecutor([spam], max_output_chars=1000).run(ToolCall(name="spam"))
    assert len(result.output) < 1200
    assert "output cut: 1000000 characters" in result.output


def test_calls_of_one_turn_run_concurrently():
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def meet(who: str) -> str:
        """Waits for the other call: only passes if both run at the same time."""
        barrier.wait()
        return who

    results = ActionExecutor([meet]).run_all([ToolCall(name="meet", arguments={"who": w}) for w in ("a", "b")])
    assert [r.output for r in results] == ["a", "b"]


def test_async_tools_are_awaited():
    @tool
    async def fetch(n: int) -> int:
        """An async tool."""
        return n + 1

    assert ActionExecutor([fetch]).run(ToolCall(name="fetch", arguments={"n": 1})).output == "2"


def test_lagent_toolkit_works_unchanged():
    executor = ActionExecutor([Calculator()])
    assert executor.api_names() == ["Calculator.add", "Calculator.power"]
    assert executor.run(ToolCall(name="Calculator.add", arguments={"a": "2", "b": 3})).output == "5"
    # an untyped lagent parameter documented as float, and an optional one
    assert executor.run(ToolCall(name="Calculator.power", arguments={"base": 1.5})).output == "2.25"
    specs = {s.name: s for s in executor.specs()}
    assert specs["Calculator.power"].parameters["required"] == ["base"]
    # lagent's calling convention
    action_return = executor("Calculator.add", {"a": 1, "b": 2})
    assert action_return.result == [{"type": "text", "content": "3"}]


def test_inkagent_action_subclass_with_toolkit_apis():
    class Notes(Action):
        """Keeps notes."""

        def __init__(self):
            self.notes: list[str] = []

        @api
        def add(self, text: str) -> str:
            """Add a note."""
            self.notes.append(text)
            return f"{len(self.notes)} notes"

        @api
        def count(self) -> int:
            """How many notes."""
            return len(self.notes)

    executor = ActionExecutor([Notes()])
    assert executor.run(ToolCall(name="Notes.add", arguments={"text": "hi"})).output == "1 notes"
    assert executor.run(ToolCall(name="Notes.count")).output == "1"


def test_two_actions_with_one_name_are_a_clear_error():
    with pytest.raises(ValueError, match="two actions are named 'order'"):
        ActionExecutor([order, tool(name="order")(lambda: "x")])


def test_an_action_can_ask_for_its_own_time_limit():
    release = threading.Event()

    class Slow(Action):
        """Takes longer than the executor's limit, but within its own."""

        call_timeout_s = 5.0

        def run(self) -> str:
            release.wait(0.5)
            return "done"

    assert ActionExecutor([Slow()], timeout_s=0.1).run(ToolCall(name="Slow")).output == "done"


# -- outputs that are not text, prints, and tools that end their thread (issue 17) -------------------


@tool
def raw(kind: str):
    """Return raw data.

    Args:
        kind: which data
    """
    if kind == "utf8":
        return "héllo\n".encode()
    if kind == "binary":
        return b"\x89PNG\r\n\x1a\n\x00\xff"
    return {"data": b"abc", "items": {1, 2}}


def test_bytes_are_decoded_or_summarised_and_other_values_sent_as_json():
    executor = ActionExecutor([raw])
    assert executor.run(ToolCall(name="raw", arguments={"kind": "utf8"})).output == "héllo\n"
    assert executor.run(ToolCall(name="raw", arguments={"kind": "binary"})).output == "<10 bytes>"
    assert executor.run(ToolCall(name="raw", arguments={"kind": "mixed"})).output == '{"data": "abc", "items": [1, 2]}'


@tool
def chatty(n: int) -> str:
    """Print a lot, then answer.

    Args:
        n: how many lines
    """
    import sys

    for i in range(n):
        print(f"line {i}")
    print("\rwarning", file=sys.stderr)
    return "answer"


def test_what_a_tool_prints_comes_back_with_its_result_and_not_on_the_agents_stdout(capfd):
    executor = ActionExecutor([chatty], max_output_chars=500)
    result = executor.run(ToolCall(name="chatty", arguments={"n": 2}))
    assert result.output == "line 0\nline 1\nwarning\nanswer"
    big = executor.run(ToolCall(name="chatty", arguments={"n": 200_000}))
    assert big.ok and len(big.output) < 700 and "output cut" in big.output and big.output.endswith("answer")
    out, err = capfd.readouterr()
    assert "line" not in out and "warning" not in err


def test_parallel_calls_capture_only_their_own_prints():
    executor = ActionExecutor([chatty], parallel=True)
    results = executor.run_all([ToolCall(name="chatty", arguments={"n": n}) for n in (1, 3, 5, 7)])
    for n, result in zip((1, 3, 5, 7), results, strict=True):
        assert result.output.count("line ") == n, result.output


class Fatal(BaseException):
    pass


@tool
def quits(how: str) -> str:
    """End the thread abnormally.

    Args:
        how: which BaseException to raise
    """
    if how == "exit":
        raise SystemExit(3)
    if how == "generator":
        raise GeneratorExit
    if how == "keyboard":
        raise KeyboardInterrupt
    raise Fatal("custom")


@pytest.mark.parametrize(("how", "name"), [("exit", "SystemExit"), ("generator", "GeneratorExit"),
                                           ("keyboard", "KeyboardInterrupt"), ("custom", "Fatal")])
def test_a_tool_raising_a_base_exception_gets_an_immediate_error_naming_it(how, name):
    executor = ActionExecutor([quits], timeout_s=600)
    started = time.perf_counter()
    result = executor.run(ToolCall(name="quits", arguments={"how": how}))
    assert result.error_type == "tool_error" and name in result.error
    assert "time limit" not in result.error
    assert time.perf_counter() - started < 60  # not the 600 s limit
