"""Internlm2Agent on scripted model outputs: recovery from bad calls, limits, traces, lagent's API."""

from __future__ import annotations

import json

import pytest
from lagent.actions import BaseAction, tool_api
from lagent.schema import AgentStatusCode

from inkagent.actions import ActionExecutor, tool
from inkagent.agents import Internlm2Agent
from inkagent.llms import ScriptedLLM
from inkagent.schema import AgentState, FinalAnswer, ToolCallStarted, ToolResult
from inkagent.trace import read_trace


def plugin(name: str, args: dict, thought: str = "") -> str:
    body = json.dumps({"name": name, "parameters": args}, ensure_ascii=False)
    return f"{thought}<|action_start|><|plugin|>\n{body}<|action_end|>\n<|im_end|>"


received: list = []


@tool
def order(item: str, quantity: int) -> str:
    """Order goods.

    Args:
        item: what to order
        quantity: how many
    """
    received.append(quantity)
    return f"ordered {quantity} {item}"


@tool
def explode() -> str:
    """A tool with a bug."""
    raise RuntimeError("database is locked")


def agent_with(responses: list[str], **kwargs) -> tuple[Internlm2Agent, ScriptedLLM]:
    llm = ScriptedLLM(responses)
    kwargs.setdefault("max_turn", 5)
    return Internlm2Agent(llm, plugin_executor=ActionExecutor([order, explode]), **kwargs), llm


def test_bad_json_then_corrected_call_then_answer(tmp_path):
    trace = tmp_path / "run.jsonl"
    agent, llm = agent_with(
        [
            'Ordering.<|action_start|><|plugin|>\n{"name": "order", "parameters": {"item": "tea"<|action_end|>',
            plugin("order", {"item": "tea", "quantity": 2}, "Fixed."),
            "Two teas are ordered.<|im_end|>",
        ],
        trace=trace,
    )
    result = agent.chat("order two teas")
    agent.close()
    assert result.response == "Two teas are ordered." and result.state == AgentStatusCode.END
    second_prompt = llm.prompts[1]
    assert "not valid JSON" in second_prompt
    assert second_prompt.index("not valid JSON") > second_prompt.index('{"item": "tea"<|action_end|>')
    assert "<|im_start|>environment name=<|plugin|>\nThe plugin call is not valid JSON" in second_prompt
    kinds = [e.type if hasattr(e, "type") else e["type"] for e in read_trace(trace)]
    assert kinds == ["user", "prompt", "error", "model_output", "prompt", "tool_call", "model_output",
                     "tool_result", "prompt", "model_output", "final_answer"]


def test_string_argument_reaches_int_tool_as_int():
    received.clear()
    agent, _ = agent_with([plugin("order", {"item": "tea", "quantity": "3"}), "Done.<|im_end|>"])
    assert agent.chat("three teas").response == "Done."
    assert received == [3]


def test_unknown_tool_error_lists_real_tools():
    agent, llm = agent_with([plugin("buy", {"item": "tea"}), "Sorry.<|im_end|>"])
    agent.chat("buy tea")
    assert "Unknown tool 'buy'. Available tools: order, explode." in llm.prompts[1]


def test_raising_tool_error_reaches_model_and_run_finishes():
    agent, llm = agent_with([plugin("explode", {}), "The tool failed.<|im_end|>"])
    result = agent.chat("go")
    assert "explode raised RuntimeError: database is locked" in llm.prompts[1]
    assert result.response == "The tool failed."
    assert result.actions[0].errmsg.endswith("database is locked")


def test_two_calls_in_one_turn_both_run():
    received.clear()
    two = (
        '<|action_start|><|plugin|>\n{"name": "order", "parameters": {"item": "tea", "quantity": 1}}<|action_end|>\n'
        '<|action_start|><|plugin|>\n{"name": "order", "parameters": {"item": "cake", "quantity": 2}}<|action_end|>\n'
    )
    agent, llm = agent_with([two, "Both ordered.<|im_end|>"])
    result = agent.chat("tea and cake")
    assert sorted(received) == [1, 2] and len(result.actions) == 2
    assert "ordered 1 tea" in llm.prompts[1] and "ordered 2 cake" in llm.prompts[1]


def test_max_turn_exhaustion_is_reported_as_such():
    agent, _ = agent_with([plugin("order", {"item": "tea", "quantity": i}) for i in range(1, 4)], max_turn=3)
    events = list(agent.stream("loop"))
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.state == AgentState.MAX_TURN and final.text == ""
    agent, _ = agent_with([plugin("order", {"item": "tea", "quantity": i}) for i in range(1, 4)], max_turn=3)
    result = agent.chat("loop")
    assert result.state == AgentStatusCode.SESSION_OUT_OF_LIMIT and "max_turn=3" in result.errmsg


def test_the_same_failing_call_repeated_is_stopped():
    agent, llm = agent_with([plugin("explode", {})] * 5, max_turn=5, max_repeats=2)
    events = list(agent.stream("go"))
    assert events[-1].state == AgentState.REPEATED_FAILURE
    assert llm.calls == 2


def test_history_is_kept_across_calls_until_reset():
    agent, llm = agent_with(["Hello!<|im_end|>", "You said hi.<|im_end|>", "Fresh start.<|im_end|>"])
    agent.chat("hi")
    agent.chat("what did I say?")
    assert "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>" in llm.prompts[1]
    agent.reset()
    agent.chat("new")
    assert "hi<|im_end|>" not in llm.prompts[2]


def test_stream_yields_typed_events_in_order():
    agent, _ = agent_with([plugin("order", {"item": "tea", "quantity": 1}, "Let me order."), "Done.<|im_end|>"])
    events = list(agent.stream("tea"))
    types = [e.type for e in events]
    assert types.index("tool_call") < types.index("tool_result") < types.index("final_answer")
    text = "".join(e.text for e in events if e.type == "text")
    assert text.startswith("Let me order.") and text.endswith("Done.")
    call = next(e for e in events if isinstance(e, ToolCallStarted)).call
    result = next(e for e in events if isinstance(e, ToolResult)).result
    assert call.name == "order" and result.output == "ordered 1 tea"


def test_a_cancelled_run_leaves_the_history_as_before(tmp_path):
    agent, llm = agent_with(["Hello!<|im_end|>", "a long answer that is cut " * 20, "Next.<|im_end|>"],
                            trace=tmp_path / "t.jsonl")
    agent.chat("hi")
    stream = agent.stream("tell me a story")
    for event in stream:
        if event.type == "text":
            break
    stream.close()  # what Ctrl-C in the REPL does
    assert [m.role for m in agent.memory] == ["user", "assistant"]
    assert agent.chat("next").response == "Next."
    assert any(getattr(e, "kind", None) == "cancelled" for e in read_trace(tmp_path / "t.jsonl"))


def test_interpreter_call_without_interpreter_is_told_to_model():
    code = "<|action_start|><|interpreter|>\n```python\nprint(1)\n```<|action_end|>\n"
    agent, llm = agent_with([code, "OK.<|im_end|>"])
    agent.chat("run code")
    assert "No code interpreter is available. Use the tools instead: order, explode." in llm.prompts[1]


def test_backend_failure_ends_the_run_cleanly():
    agent, _ = agent_with([])  # the scripted model has nothing to say: it raises LLMError
    events = list(agent.stream("hi"))
    assert events[-1].state == AgentState.LLM_ERROR
    assert "no response left" in events[-2].message


class Shop(BaseAction):
    """A lagent 0.2.4 toolkit."""

    @tool_api
    def price(self, item: str) -> str:
        """Price of an item.

        Args:
            item (str): the item
        """
        return f"{item}: 3 yuan"

    @tool_api
    def stock(self, item: str) -> dict:
        """Stock of an item.

        Args:
            item (str): the item
        """
        return {"item": item, "stock": 12}


def test_lagent_toolkit_and_lagent_executor_work_unchanged():
    from lagent.actions import ActionExecutor as LagentExecutor

    llm = ScriptedLLM([plugin("Shop.price", {"item": "tea"}), plugin("Shop.stock", {"item": "tea"}), "Tea: 3 yuan, 12 left.<|im_end|>"])
    agent = Internlm2Agent(llm=llm, plugin_executor=LagentExecutor(actions=[Shop()]), max_turn=4)
    result = agent.chat("tea?")
    assert result.response == "Tea: 3 yuan, 12 left."
    assert [a.result[0]["content"] for a in result.actions] == ["tea: 3 yuan", '{"item": "tea", "stock": 12}']
    assert "Shop.price" in llm.prompts[0] and "Shop.stock" in llm.prompts[0]


def test_stream_chat_follows_lagents_status_codes():
    llm = ScriptedLLM([plugin("order", {"item": "tea", "quantity": 1}, "Ordering."), "Done.<|im_end|>"])
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([order]), max_turn=3)
    states = []
    for ret in agent.stream_chat("tea"):
        if not states or states[-1] != ret.state:
            states.append(ret.state)
    assert states == [AgentStatusCode.STREAM_ING, AgentStatusCode.PLUGIN_START, AgentStatusCode.PLUGIN_END,
                      AgentStatusCode.PLUGIN_RETURN, AgentStatusCode.STREAM_ING, AgentStatusCode.END]
    assert ret.response == "Done." and ret.actions[0].result[0]["content"] == "ordered 1 tea"


@pytest.mark.parametrize("bad", ["<|action_start|><|plugin|>\n[1, 2]<|action_end|>",
                                 '<|action_start|><|plugin|>\n{"parameters": {}}<|action_end|>',
                                 "<|action_start|><|weird|>\nxx<|action_end|>"])
def test_every_malformed_call_goes_back_to_the_model(bad):
    agent, llm = agent_with([bad, "Answer.<|im_end|>"])
    assert agent.chat("x").response == "Answer."
    assert "<|im_start|>environment name=<|plugin|>\n" in llm.prompts[1]
