"""The bundled demo model (inkagent/demo_model) through the real stack: HFTransformer on the CPU, the
demo config's agent, and a real Jupyter kernel. No network: Weather and ArxivSearch are not reached."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from inkagent.runners.config import build_agent, load_config
from inkagent.schema import AgentState, FinalAnswer, ToolCallStarted, ToolResult

MODEL_DIR = ROOT / "inkagent" / "demo_model"
DEMO_CONFIG = ROOT / "configs" / "demo.yaml"
SPECIAL = [
    "<|im_start|>",
    "<|im_end|>",
    "<|action_start|>",
    "<|action_end|>",
    "<|plugin|>",
    "<|interpreter|>",
]


@pytest.fixture(scope="module")
def llm():
    from inkagent.llms import HFTransformer

    return HFTransformer(path=str(MODEL_DIR), device="cpu", do_sample=False, max_new_tokens=256)


@pytest.fixture(scope="module")
def agent(llm):
    agent = build_agent(load_config(DEMO_CONFIG), llm=llm)
    yield agent
    agent.close()


def run(agent, task: str) -> tuple[list, FinalAnswer]:
    agent.reset()
    events = list(agent.stream(task))
    finals = [e for e in events if isinstance(e, FinalAnswer)]
    assert len(finals) == 1, "a run ends with exactly one final answer event"
    return events, finals[0]


def test_bundle_is_small_and_complete():
    files = {p.name: p.stat().st_size for p in MODEL_DIR.iterdir() if p.is_file()}
    for name in (
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "generation_config.json",
        "MODEL_CARD.md",
    ):
        assert name in files, f"{name} is missing from the bundled model"
    assert sum(files.values()) < 20 * 2**20


def test_protocol_tokens_and_digits_are_single_tokens(llm):
    tokenizer = llm.tokenizer
    for token in SPECIAL:
        assert len(tokenizer.encode(token, add_special_tokens=False)) == 1, token
    # digits one by one, so the model copies numbers digit for digit
    pieces = [tokenizer.decode([i]) for i in tokenizer.encode("17 * 23", add_special_tokens=False)]
    assert [p for p in pieces if p.strip().isdigit()] == ["1", "7", "2", "3"]


def test_arithmetic_runs_the_interpreter_and_answers_with_its_result(agent):
    events, final = run(agent, "What is 17 * 23?")
    calls = [e.call for e in events if isinstance(e, ToolCallStarted)]
    results = [e.result for e in events if isinstance(e, ToolResult)]
    assert [c.kind for c in calls] == ["interpreter"]
    assert "17 * 23" in calls[0].arguments["command"]
    assert results[0].ok and results[0].output.strip() == "391"  # computed by the real kernel
    assert final.state == AgentState.ANSWERED
    assert "391" in final.text


def test_chinese_arithmetic(agent):
    _, final = run(agent, "帮我算一下 125 * 8")
    assert final.state == AgentState.ANSWERED
    assert "1000" in final.text


def test_weather_offline_error_is_relayed(agent):
    events, final = run(agent, "What's the weather in Paris?")
    calls = [e.call for e in events if isinstance(e, ToolCallStarted)]
    results = [e.result for e in events if isinstance(e, ToolResult)]
    assert calls and calls[0].name == "Weather.current" and calls[0].arguments["city"] == "Paris"
    assert not results[0].ok  # tests may not reach the network: the action reports it
    assert final.state == AgentState.ANSWERED
    assert "Paris" in final.text and "network" in final.text


@pytest.mark.parametrize(
    "task", ["Write a poem about autumn leaves.", "Who was the first emperor of the Ming dynasty?"]
)
def test_tasks_outside_training_end_cleanly(agent, task):
    events, final = run(agent, task)
    assert final.state in (AgentState.ANSWERED, AgentState.MAX_TURN, AgentState.REPEATED_FAILURE)
    if final.state == AgentState.ANSWERED:
        assert final.text.strip()
    turns = [e for e in events if getattr(e, "type", "") == "model_output"]
    assert len(turns) <= 4  # the config's max_turn


def test_readme_first_command(tmp_path: Path):
    trace = tmp_path / "trace.jsonl"
    done = run_cli("run", str(DEMO_CONFIG), "--task", "What is 17 * 23?", "--json", "--trace", str(trace))
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert outcome["state"] == "answered" and "391" in outcome["answer"]
    assert (
        outcome["tool_calls"][0]["name"] == "IPythonInterpreter"
        and outcome["tool_calls"][0]["output"] == "391"
    )


def test_chat_holds_a_conversation_of_three_kinds(tmp_path: Path):
    """`inkagent chat configs/demo.yaml` with three questions piped in, as a new user asks them: arithmetic,
    a follow-up on its result, then the weather (a new topic after a tool turn; offline, so the failure is
    relayed). Each turn must be answered from its own question, not taken over by the turn before."""
    trace = tmp_path / "chat.jsonl"
    questions = ["What is 45 * 12?", "And times 3?", "What is the weather in Tokyo?"]
    # as in test_weather_offline_error_is_relayed: this machine (and CI's) has no route to the weather service
    done = run_cli(
        "chat", str(DEMO_CONFIG), "--trace", str(trace), input="\n".join(questions) + "\n", timeout=300
    )
    assert done.returncode == 0, done.stderr
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    users = [e["text"] for e in events if e["type"] == "user"]
    assert users == questions
    turns: list[dict] = []
    for event in events:
        if event["type"] == "user":
            turns.append({"calls": [], "answer": None})
        elif event["type"] == "tool_call":
            turns[-1]["calls"].append((event["call"]["name"], event["call"]["arguments"]))
        elif event["type"] == "final_answer":
            turns[-1]["answer"] = event["text"]
    assert turns[0]["calls"] == [("IPythonInterpreter", {"command": "print(45 * 12)"})]
    assert "540" in turns[0]["answer"]
    assert turns[1]["calls"] == [("IPythonInterpreter", {"command": "print(540 * 3)"})]
    assert "1620" in turns[1]["answer"]
    assert turns[2]["calls"] == [("Weather.current", {"city": "Tokyo"})]
    assert "Tokyo" in turns[2]["answer"] and "network" in turns[2]["answer"]
    for turn in turns:  # and the screen shows each answer
        assert turn["answer"] in done.stdout
