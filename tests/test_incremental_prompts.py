"""Incremental prompts (issue 19 item 2): a history formatted turn after turn, and a prompt rendered turn
after turn, are exactly what formatting and rendering them afresh gives, whatever is done to the history
between turns (messages added, a reset, a cut, a message replaced, a message list from lagent)."""

from __future__ import annotations

import random

import pytest

from inkagent.llms.meta_template import INTERNLM2_META, MetaTemplateParser
from inkagent.protocols import get_protocol
from inkagent.schema import Message, ToolCall, ToolSpec

TOOLS = [ToolSpec(name="Weather.current", description="weather",
                  parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})]


def random_message(rng: random.Random, i: int) -> Message:
    kind = rng.choice(["user", "assistant", "call", "result", "result", "system"])
    if kind == "call":
        calls = [ToolCall(name="Weather.current", arguments={"city": f"c{i}-{j}"}, id=f"id{i}-{j}")
                 for j in range(rng.randint(1, 2))]
        return Message(role="assistant", content=rng.choice(["", f"thinking {i}"]), tool_calls=calls)
    if kind == "result":
        return Message(role="environment", content=f"result {i}", name="plugin", tool_call_id=f"id{i - 1}-0")
    return Message(role=kind, content=f"{kind} {i}")


@pytest.mark.parametrize("name", ["internlm2", "hermes", "react", "openai"])
def test_cached_formatting_and_rendering_equal_fresh_ones(name):
    rng = random.Random(name)
    protocol, parser = get_protocol(name), MetaTemplateParser(INTERNLM2_META)
    history: list = []
    for step in range(300):
        op = rng.random()
        if op < 0.6:
            history.append(random_message(rng, step))
        elif op < 0.7 and history:
            del history[rng.randrange(len(history)):]  # a cut
        elif op < 0.8 and history:
            history[rng.randrange(len(history))] = random_message(rng, step)  # an edit
        elif op < 0.85:
            history = []  # a reset
        elif op < 0.9 and history:  # lagent's form: dicts, converted each time
            history = [{"role": m.role, "content": m.content} if isinstance(m, Message) and m.role in ("user", "system")
                       else m for m in history]
        messages = protocol.request(history, TOOLS).messages
        assert messages == get_protocol(name).request(history, TOOLS).messages, step
        if name != "openai":
            assert parser(messages) == MetaTemplateParser(INTERNLM2_META)(messages), step


def test_a_dict_whose_content_changed_is_rendered_again():
    parser = MetaTemplateParser(INTERNLM2_META)
    first = {"role": "user", "content": "a"}
    parser([first, {"role": "user", "content": "b"}])
    first["content"] = "changed"
    assert "changed" in parser([first, {"role": "user", "content": "c"}])


def test_tool_descriptions_are_made_once_for_agents_with_the_same_tools():
    """The fresh agents of a batch each build their own tool objects; the rendering is shared by content."""
    from inkagent.actions import ActionExecutor, Weather

    def tools(units: str) -> ActionExecutor:
        return ActionExecutor([Weather(units=units)])

    history = [Message(role="user", content="weather?")]
    first = get_protocol("openai").request(history, tools("metric")).tools
    again = get_protocol("openai").request(history, tools("metric")).tools
    assert again is first  # made once
    hermes = [get_protocol("hermes").request(history, tools("metric")).messages[0]["content"] for _ in range(2)]
    assert hermes[0] is hermes[1] and "Weather.current" in hermes[0]
    changed = [ToolSpec(name="Weather.current", description="other", parameters={"type": "object", "properties": {}})]
    assert get_protocol("openai").request(history, changed).tools != first  # other content: made anew
