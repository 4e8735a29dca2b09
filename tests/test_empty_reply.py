"""An empty or whitespace-only reply is not an answer (issue 17 item 6): the model is told once and tries
again; a second empty reply ends the run in `empty_answer` (exit 1 for `inkagent run`). Every agent."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli

from inkagent.agents import ChatAgent, IllustratedWriter, ImageUnderstanding, Internlm2Agent
from inkagent.errors import InkAgentError
from inkagent.llms import ScriptedLLM
from inkagent.protocols import HermesProtocol, Internlm2Protocol, ReActProtocol
from inkagent.schema import EMPTY_REPLY_NOTE, AgentError, AgentState, FinalAnswer

EMPTY = ["", "  \n", "<|im_end|>"]


def final(events) -> FinalAnswer:
    events = list(events)
    assert isinstance(events[-1], FinalAnswer)
    return events[-1]


@pytest.mark.parametrize("empty", EMPTY)
@pytest.mark.parametrize("protocol", [Internlm2Protocol(language="en"), HermesProtocol(), ReActProtocol()],
                         ids=["internlm2", "hermes", "react"])
def test_tool_agent_tells_the_model_once_then_takes_the_answer(empty, protocol):
    answer = "Final Answer: 4" if protocol.name == "react" else "4<|im_end|>"
    llm = ScriptedLLM([empty, answer])
    agent = Internlm2Agent(llm, protocol=protocol, max_turn=3)

    events = list(agent.stream("What is 2 + 2?"))

    assert (events[-1].text, events[-1].state) == ("4", AgentState.ANSWERED)
    assert [e.kind for e in events if isinstance(e, AgentError)] == ["empty_reply"]
    assert EMPTY_REPLY_NOTE in llm.prompts[1] and EMPTY_REPLY_NOTE not in llm.prompts[0]


@pytest.mark.parametrize("empty", EMPTY)
def test_a_second_empty_reply_ends_the_run_in_empty_answer(empty):
    agent = Internlm2Agent(ScriptedLLM([empty, " "]), max_turn=5)

    events = list(agent.stream("hi"))

    assert (events[-1].text, events[-1].state) == ("", AgentState.EMPTY_ANSWER)
    assert [e.kind for e in events if isinstance(e, AgentError)] == ["empty_reply", "empty_answer"]


def test_lagent_view_reports_empty_answer_as_a_failure():
    from lagent.schema import AgentStatusCode

    result = Internlm2Agent(ScriptedLLM(["", "<|im_end|>"])).chat("hi")
    assert result.state == AgentStatusCode.SERVER_ERR and result.response == ""


def test_inkagent_run_exits_1_on_an_empty_answer(tmp_path):
    config = tmp_path / "empty.yaml"
    config.write_text('llm: {type: ScriptedLLM, responses: ["", "  \\n"]}\ntask: hi\n')

    proc = run_cli("run", str(config), "--json")

    assert proc.returncode == 1
    result = json.loads(proc.stdout)
    assert result["state"] == "empty_answer" and result["answer"] == ""
    assert "nothing" in result["error"]


def test_chat_agent_retries_once_and_keeps_no_empty_turn():
    llm = ScriptedLLM(["  \n", "Hello!"])
    agent = ChatAgent(llm, system_prompt="You are kind.")

    assert final(agent.stream("hi")).text == "Hello!"
    assert EMPTY_REPLY_NOTE in llm.prompts[1]
    assert [(m.role, m.content) for m in agent.memory] == [("user", "hi"), ("assistant", "Hello!")]

    agent2 = ChatAgent(ScriptedLLM(["", "<|im_end|>"]))
    assert final(agent2.stream("hi")).state == AgentState.EMPTY_ANSWER
    assert agent2.memory == []  # the unanswered message left the history


def test_image_understanding_retries_once_then_ends_in_empty_answer():
    llm = ScriptedLLM(["<|im_end|>", "A cat."])
    agent = ImageUnderstanding(llm)
    assert final(agent.stream("What is it?")).text == "A cat."
    note = llm.messages[1][-1]
    assert note == {"role": "user", "content": [{"type": "text", "text": EMPTY_REPLY_NOTE}]}

    agent2 = ImageUnderstanding(ScriptedLLM(["", ""]))
    assert final(agent2.stream("What is it?")).state == AgentState.EMPTY_ANSWER
    assert agent2.memory == []


def test_writer_with_an_empty_article_twice_ends_in_empty_answer(tmp_path):
    writer = IllustratedWriter(ScriptedLLM(["", " \n"]), num_images=0, out_dir=tmp_path)
    assert final(writer.stream("A title")).state == AgentState.EMPTY_ANSWER
    with pytest.raises(InkAgentError, match="nothing"):
        IllustratedWriter(ScriptedLLM(["", ""]), num_images=0, out_dir=tmp_path).write("A title")
    assert list(tmp_path.iterdir()) == []
