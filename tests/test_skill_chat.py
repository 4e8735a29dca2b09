"""ChatAgent: the 猪八戒 persona's prompts match the notes' transcript exactly; streaming, history, tools.

The notes write the transcript with `<s>` in front and `<|im_start|>assistant` indented by four
spaces. The indentation is the notes' formatting (the real template has none). `<s>` is real: it is
the BOS token, which the tokenizer adds, not the template; `test_tokenized_prompt_starts_with_one_bos`
shows the tokenised prompt decoding to the notes' text, `<s>` included.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import FIXTURES, ROOT
from markdown_it import MarkdownIt
from tiny_model import tiny_model_dir  # noqa: F401  (session fixture)

from inkagent.actions import ActionExecutor
from inkagent.agents import ChatAgent, Internlm2Agent
from inkagent.errors import ConfigError
from inkagent.llms import ScriptedLLM
from inkagent.runners.config import build_agent, load_config
from inkagent.schema import AgentState, FinalAnswer, Message, TextDelta


def _fences() -> list[str]:
    tokens = MarkdownIt("commonmark").parse((FIXTURES / "zhubajie_persona.md").read_text(encoding="utf-8"))
    return [t.content for t in tokens if t.type == "fence"]


PERSONA = _fences()[0].strip()


def _rounds() -> list[str]:
    """The two prompts of the notes' transcript, as written there (`<s>` and indentation included)."""
    chunks = re.split(r"^第[一二]轮：\n", _fences()[1], flags=re.MULTILINE)
    return [chunk.strip("\n") + "\n" for chunk in chunks if chunk.strip()]


def _real_template(notes_text: str) -> str:
    """The notes' prompt as the template writes it: no BOS (the tokenizer adds it), no indentation."""
    text = notes_text.removeprefix("<s>")
    return text.replace("\n    <|im_start|>assistant", "\n<|im_start|>assistant")


def _first_answer() -> str:
    """The persona's answer in round 1, as the notes' round-2 prompt records it."""
    round2 = _rounds()[1]
    start = round2.index("<|im_start|>assistant\n") + len("<|im_start|>assistant\n")
    return round2[start : round2.index("<|im_end|>", start)]


def test_fixture_has_two_rounds_with_the_persona():
    rounds = _rounds()
    assert len(rounds) == 2 and all(PERSONA in r for r in rounds)
    assert rounds[0].startswith("<s><|im_start|>system\n") and rounds[0].endswith(
        "    <|im_start|>assistant\n"
    )


def test_prompts_of_two_rounds_match_the_transcript():
    llm = ScriptedLLM([_first_answer() + "<|im_end|>", "大师兄去化斋了。<|im_end|>"])
    agent = ChatAgent(llm, system_prompt=PERSONA)
    first = agent.chat("你好")
    second = agent.chat("悟空在吗")
    expected = [_real_template(r) for r in _rounds()]
    assert llm.prompts == expected
    assert first.response == _first_answer() and second.response == "大师兄去化斋了。"
    assert [m.role for m in agent.memory] == ["user", "assistant", "user", "assistant"]


def test_tokenized_prompt_starts_with_one_bos(tiny_model_dir):  # noqa: F811
    from inkagent.llms import HFTransformer

    llm = HFTransformer(str(tiny_model_dir), tokenizer_only=True)
    agent = ChatAgent(ScriptedLLM(["嘿嘿<|im_end|>"]), system_prompt=PERSONA)
    agent.chat("你好")
    ids = llm.tokenize(agent.llm.prompts[0])
    assert ids[0] == llm.tokenizer.bos_token_id and ids.count(llm.tokenizer.bos_token_id) == 1
    notes = _rounds()[0].replace("\n    <|im_start|>assistant", "\n<|im_start|>assistant")
    assert llm.decode(ids) == notes


def test_answer_streams_in_pieces_without_the_end_token():
    answer = "俺老孙……不对，俺老猪在此！"
    agent = ChatAgent(ScriptedLLM([answer + "<|im_end|>"], chunk_size=3), system_prompt=PERSONA)
    events = list(agent.stream("你是谁"))
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert len(deltas) > 3 and "".join(deltas) == answer
    assert [e.type for e in events[:2]] == ["user", "prompt"] and events[-1].type == "final_answer"
    assert events[-1].text == answer and events[-1].state == AgentState.ANSWERED


def test_xcomposer_spelling_of_the_end_token_is_cut():
    agent = ChatAgent(ScriptedLLM(["好的[UNUSED_TOKEN_145]garbage"]), system_prompt=PERSONA)
    assert agent.chat("hi").response == "好的"


def test_failed_model_call_leaves_history_unchanged():
    llm = ScriptedLLM(["第一句。<|im_end|>"])
    agent = ChatAgent(llm, system_prompt=PERSONA)
    agent.chat("一")
    events = list(agent.stream("二"))  # the script has run out: the backend raises
    assert events[-1].state == AgentState.LLM_ERROR and any(e.type == "error" for e in events)
    assert [m.content for m in agent.memory] == ["一", "第一句。"]
    llm.responses.append("第二句。<|im_end|>")
    agent.chat("三")
    assert llm.prompts[-1].count("<|im_start|>user\n") == 2  # "二" was dropped, not sent again


def test_stopping_the_stream_early_drops_the_turn():
    agent = ChatAgent(ScriptedLLM(["一二三四五六<|im_end|>"], chunk_size=1), system_prompt=PERSONA)
    stream = agent.stream("数数")
    for event in stream:
        if isinstance(event, TextDelta):
            break
    stream.close()
    assert agent.memory == []


def test_max_rounds_keeps_the_last_rounds():
    llm = ScriptedLLM([f"答{i}<|im_end|>" for i in range(3)])
    agent = ChatAgent(llm, system_prompt=PERSONA, max_rounds=1)
    for i in range(3):
        agent.chat(f"问{i}")
    assert "问1" in llm.prompts[2] and "问0" not in llm.prompts[2] and PERSONA in llm.prompts[2]


def test_persona_from_config_and_from_file(tmp_path):
    config = load_config(ROOT / "configs" / "persona-zhubajie.yaml")
    agent = build_agent(config, llm=ScriptedLLM(["嗯<|im_end|>"]))
    assert isinstance(agent, ChatAgent) and agent.system_prompt == PERSONA and agent.name == "ZhuBajie"
    persona = tmp_path / "persona.txt"
    persona.write_text(PERSONA + "\n", encoding="utf-8")
    assert ChatAgent(ScriptedLLM([]), persona_file=persona).system_prompt == PERSONA
    with pytest.raises(ConfigError, match="not both"):
        ChatAgent(ScriptedLLM([]), system_prompt="x", persona_file=persona)
    with pytest.raises(ConfigError, match="cannot read"):
        ChatAgent(ScriptedLLM([]), persona_file=tmp_path / "missing.txt")


def test_reset_and_memory_type():
    agent = ChatAgent(ScriptedLLM(["a<|im_end|>"]), system_prompt=PERSONA)
    agent.chat("q")
    assert all(isinstance(m, Message) for m in agent.memory)
    agent.reset()
    assert agent.memory == []


def test_persona_as_a_tool_of_an_internlm2_agent():
    persona_llm = ScriptedLLM(["师父莫急，俺去看看。<|im_end|>"])
    zhu = ChatAgent(persona_llm, system_prompt=PERSONA, name="ZhuBajie")
    call = json.dumps({"name": "ZhuBajie", "parameters": {"message": "师父被妖怪抓走了"}}, ensure_ascii=False)
    agent_llm = ScriptedLLM(
        [f"<|action_start|><|plugin|>\n{call}<|action_end|>\n<|im_end|>", "八戒说他去看看。<|im_end|>"]
    )
    agent = Internlm2Agent(agent_llm, plugin_executor=ActionExecutor([zhu]), max_turn=3)
    events = list(agent.stream("问问八戒"))
    result = next(e for e in events if e.type == "tool_result").result
    assert result.ok and result.output == "师父莫急，俺去看看。"
    assert "师父被妖怪抓走了" in persona_llm.prompts[0] and PERSONA in persona_llm.prompts[0]
    assert "师父莫急，俺去看看。" in agent_llm.prompts[1]  # the environment's answer
    assert isinstance(events[-1], FinalAnswer) and events[-1].text == "八戒说他去看看。"
    spec = ActionExecutor([zhu]).specs()[0]
    assert spec.name == "ZhuBajie" and spec.parameters["required"] == ["message"]
