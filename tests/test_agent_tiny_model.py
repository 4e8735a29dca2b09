"""The agent on a real transformers model that babbles (random weights): it must end cleanly."""

from __future__ import annotations

from inkagent.actions import ActionExecutor, tool
from inkagent.agents import Internlm2Agent
from inkagent.llms import HFTransformer
from inkagent.schema import AgentState, FinalAnswer


@tool
def lookup(query: str) -> str:
    """Look something up.

    Args:
        query: what to look up
    """
    return f"nothing found for {query}"


def test_agent_on_random_model_text_never_crashes_and_ends(tiny_model_dir, tmp_path):
    llm = HFTransformer(path=str(tiny_model_dir), device="cpu", max_new_tokens=24, do_sample=False)
    agent = Internlm2Agent(llm, plugin_executor=ActionExecutor([lookup]), max_turn=3, trace=tmp_path / "t.jsonl")
    for task in ["What is 17 * 23?", "上海今天天气怎么样？", "<|action_start|><|plugin|>"]:
        events = list(agent.stream(task))
        final = events[-1]
        assert isinstance(final, FinalAnswer)
        assert final.state in (AgentState.ANSWERED, AgentState.MAX_TURN, AgentState.REPEATED_FAILURE)
        assert sum(e.type == "prompt" for e in events) <= 3
        agent.reset()
    agent.close()
    assert (tmp_path / "t.jsonl").read_text().count('"final_answer"') == 3


def test_meta_template_can_be_named_in_a_config(tiny_model_dir):
    llm = HFTransformer(path=str(tiny_model_dir), device="cpu", meta_template="INTERNLM2", max_new_tokens=2)
    assert llm.render([{"role": "user", "content": "hi"}]) == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
