"""`inkagent trace show`: a saved trace rendered as the REPL showed it; and `inkagent run`'s display,
which goes through the same renderer."""

from __future__ import annotations

import io
import json
import os
import sys
from pathlib import Path

import pexpect
import pyte
import yaml
from conftest import ROOT, run_cli

CALCULATOR = f"{ROOT / 'configs' / 'tools' / 'calculator.py'}:calculate"
# A turn of each kind: a malformed call, a failing call, two calls at once, an answer.
RESPONSES = [
    'Oops.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": <|action_end|>\n',
    'Again.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": "1 / 0"}}<|action_end|>\n',
    'Both at once.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": "2 + 2"}}'
    '<|action_end|><|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": "3 * 3"}}'
    "<|action_end|>\n",
    "They are 4 and 9.<|im_end|>",
    "Hello again.<|im_end|>",
]


def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "llm": {"type": "ScriptedLLM", "responses": RESPONSES},
                "agent": {"max_turn": 5},
                "actions": [CALCULATOR],
            }
        )
    )
    return config


def test_trace_show_prints_what_the_repl_printed(tmp_path):
    trace = tmp_path / "t.jsonl"
    session = run_cli("chat", str(write_config(tmp_path)), "--trace", str(trace), input="Compute\nHi\n")
    assert session.returncode == 0, session.stderr
    shown = run_cli("trace", "show", str(trace))
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert [line for line in lines if line.startswith("> ")] == ["> Compute", "> Hi"]
    assert [line for line in lines if not line.startswith("> ")] == session.stdout.splitlines()
    assert "✗ malformed tool call (sent back to the model)" in shown.stdout
    assert "✗ calculate failed (tool_error)" in shown.stdout and "← calculate" in shown.stdout


def test_trace_show_json_and_a_trace_cut_by_a_kill(tmp_path):
    trace = tmp_path / "t.jsonl"
    assert (
        run_cli("chat", str(write_config(tmp_path)), "--trace", str(trace), input="Compute\n").returncode == 0
    )
    from inkagent.trace import read_records

    records = read_records(trace)  # prompts made whole: --json prints them so
    assert any(r.get("kept") for r in map(json.loads, trace.read_text().splitlines()))  # stored as deltas
    with trace.open("a") as file:
        file.write('{"time": 1, "type": "user", "te')  # the line being written when the run was killed
    shown = run_cli("trace", "show", str(trace), "--json")
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line) for line in shown.stdout.splitlines()] == records
    shown = run_cli("trace", "show", str(trace))
    assert shown.returncode == 0 and shown.stdout.splitlines()[-1] == "They are 4 and 9."


def test_a_cancelled_run_shows_as_cancelled(tmp_path):
    from inkagent.runners.config import build_agent, load_config
    from inkagent.schema import ToolCallStarted

    trace = tmp_path / "t.jsonl"
    agent = build_agent(load_config(write_config(tmp_path)), trace=trace)
    stream = agent.stream("Compute")
    for event in stream:
        if isinstance(event, ToolCallStarted) and event.call.arguments.get("expression") == "1 / 0":
            stream.close()  # what Ctrl-C does in the REPL
            break
    agent.close()
    shown = run_cli("trace", "show", str(trace))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[-3:] == [
        '→ calculate {"expression": "1 / 0"}',
        "✗ calculate: cancelled",
        "[cancelled]",
    ]


def test_trace_show_errors(tmp_path):
    missing = run_cli("trace", "show", str(tmp_path / "nope.jsonl"))
    assert missing.returncode == 2 and "nope.jsonl" in missing.stderr and "Traceback" not in missing.stderr
    junk = tmp_path / "junk.jsonl"
    junk.write_text('{"a": 1}\nnot json\n')
    empty = run_cli("trace", "show", str(junk))
    assert empty.returncode == 1 and "no inkagent events" in empty.stderr


def test_trace_show_on_a_terminal_draws_the_calls_as_the_repl_does(tmp_path):
    trace = tmp_path / "t.jsonl"
    assert (
        run_cli("chat", str(write_config(tmp_path)), "--trace", str(trace), input="Compute\n").returncode == 0
    )
    child = pexpect.spawn(
        sys.executable,
        ["-m", "inkagent", "trace", "show", str(trace)],
        encoding="utf-8",
        dimensions=(50, 100),
        env={**os.environ, "TERM": "xterm-256color"},
    )
    screen = pyte.Screen(100, 50)
    stream = pyte.Stream(screen)
    stream.feed(child.read())  # everything until the end of the output
    child.close()
    assert child.exitstatus == 0
    text = "\n".join(line.rstrip() for line in screen.display)
    assert "✗ calculate · failed (tool_error)" in text and "↩ sent back to the model" in text
    assert text.count("✓ calculate") == 2 and "result 4" in text.replace("  ", " ")
    assert "answered · 4 model calls · 3 tool calls (1 failed)" in text


def test_renderer_rich_and_plain_show_the_same_run():
    from inkagent.runners.render import EventRenderer
    from inkagent.schema import (
        ActionResult,
        FinalAnswer,
        PromptSent,
        TextDelta,
        ToolCall,
        ToolCallStarted,
        ToolResult,
    )

    call = ToolCall(name="plot", arguments={"title": "sales"})
    result = ActionResult(name="plot", output="a chart", files=["/tmp/chart.png"], duration_s=0.25)
    events = [
        PromptSent(turn=0, messages=[]),
        TextDelta(text="Drawing.\n\n"),
        ToolCallStarted(call=call),
        TextDelta(text="\n"),
        ToolResult(call=call, result=result),
        PromptSent(turn=1, messages=[]),
        TextDelta(text="Here it is."),
        FinalAnswer(text="Here it is."),
    ]
    plain, rich = io.StringIO(), io.StringIO()
    for file, is_plain in ((plain, True), (rich, False)):
        renderer = EventRenderer(file, plain=is_plain, live=False)
        for event in events:
            renderer.render(event)
        renderer.close()
    assert plain.getvalue().splitlines() == [
        "Drawing.",
        '→ plot {"title": "sales"}',
        "← plot (0.25 s): a chart",
        "  image: /tmp/chart.png",
        "Here it is.",
    ]
    screen = pyte.Screen(100, 20)
    pyte.Stream(screen).feed(rich.getvalue().replace("\n", "\r\n"))
    text = "\n".join(line.rstrip() for line in screen.display)
    assert "✓ plot · 0.25 s" in text and "image  /tmp/chart.png" in text and "Here it is." in text


def test_run_shows_the_run_on_stderr_and_prints_the_answer_alone(tmp_path):
    trace = tmp_path / "t.jsonl"
    proc = run_cli("run", str(write_config(tmp_path)), "--task", "Compute", "--trace", str(trace))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "They are 4 and 9.\n"
    shown = run_cli("trace", "show", str(trace)).stdout.splitlines()[1:]  # without "> Compute"
    assert shown[-1] == "They are 4 and 9."  # the answer: on stdout only, so a log has it once
    assert proc.stderr.splitlines() == [*shown[:-1], f"trace: {trace}"]
    assert (proc.stdout + proc.stderr).count("They are 4 and 9.") == 1


# -- a trace writer that never raises, torn traces, linear prompt storage (issue 17) -----------------


def _show(path: Path, *extra: str) -> tuple[int, str]:
    """`inkagent trace show` run in this process (a subprocess per cut would take minutes)."""
    import argparse
    import contextlib

    from inkagent.runners import trace_cmd

    out = io.TextIOWrapper(io.BytesIO(), encoding="utf-8")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = trace_cmd.run(argparse.Namespace(file=str(path), json="--json" in extra, plain=True,
                                                full="--full" in extra))
    out.flush()
    return code, out.buffer.getvalue().decode("utf-8")


def test_the_trace_writer_takes_any_text_and_a_cut_anywhere_stays_readable(tmp_path):
    from inkagent.schema import ActionResult, FinalAnswer, ModelOutput, ToolCall, ToolResult, UserMessage
    from inkagent.trace import TraceWriter, read_trace

    path = tmp_path / "t.jsonl"
    nasty = "lone \ud800 surrogate, NUL \x00, 汉字, emoji 🐍"
    call = ToolCall(name="calc", arguments={"x": nasty})
    with TraceWriter(path) as writer:
        writer.write(UserMessage(text=nasty))
        writer.write(ModelOutput(turn=0, text=nasty * 3, duration_s=0.1))
        writer.write(ToolResult(call=call, result=ActionResult(name="calc", output="x" * 100_000 + nasty)))
        writer.write({"type": "custom", "value": {1, 2}, "blob": b"\xff"})
        writer.write(FinalAnswer(text="done " + nasty))
    events = read_trace(path)
    assert [getattr(e, "type", None) or e["type"] for e in events] == [
        "user", "model_output", "tool_result", "custom", "final_answer"]
    assert events[0].text == nasty and events[-1].text == "done " + nasty
    code, shown = _show(path)
    assert code == 0 and "done lone" in shown

    data = path.read_bytes()
    line_ends = [i + 1 for i, byte in enumerate(data) if byte == ord("\n")]
    cuts = sorted({*range(0, 400, 7), *range(len(data) - 300, len(data)), *(e - 1 for e in line_ends),
                   *line_ends, *(e + 1 for e in line_ends if e < len(data))})
    for cut in cuts:
        torn = tmp_path / "torn.jsonl"
        torn.write_bytes(data[:cut])
        whole_lines = sum(1 for end in line_ends if end <= cut)
        read = read_trace(torn)  # every whole line; the torn one only if the cut left it whole JSON
        assert len(read) in (whole_lines, whole_lines + 1), cut
        assert [repr(e) for e in read[:whole_lines]] == [repr(e) for e in events[:whole_lines]], cut
        if whole_lines:
            code, _ = _show(torn)
            assert code == 0, cut


def test_appending_after_a_torn_line_keeps_the_new_events(tmp_path):
    from inkagent.schema import UserMessage
    from inkagent.trace import TraceWriter, read_trace

    path = tmp_path / "t.jsonl"
    path.write_text('{"type": "user", "text": "first"}\n{"type": "user", "te')
    with TraceWriter(path) as writer:
        writer.write(UserMessage(text="second"))
    assert [e.text for e in read_trace(path)] == ["first", "second"]


def test_two_hundred_turns_store_each_prompt_as_what_it_adds(tmp_path):
    from inkagent.agents import Internlm2Agent
    from inkagent.llms import ScriptedLLM
    from inkagent.schema import PromptSent
    from inkagent.trace import read_trace

    call = '<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": "1 + 1"}}<|action_end|>\n'
    agent = Internlm2Agent(llm=ScriptedLLM([call], cycle=True), plugin_executor=[_calculator()],
                           max_turn=200, max_repeats=1000, trace=tmp_path / "t.jsonl")
    events = list(agent.stream("Add forever. " + "Context. " * 200))
    agent.close()
    sent = [e.messages for e in events if isinstance(e, PromptSent)]
    assert len(sent) == 200
    size = (tmp_path / "t.jsonl").stat().st_size
    full = sum(len(json.dumps(m, ensure_ascii=False)) for m in sent)
    assert size < 2_000_000 and size * 20 < full  # linear, not quadratic
    assert [e.messages for e in read_trace(tmp_path / "t.jsonl") if isinstance(e, PromptSent)] == sent
    code, shown = _show(tmp_path / "t.jsonl", "--full")
    assert code == 0 and shown.count("--- prompt of turn") == 200
    last = shown.rsplit("--- prompt of turn 200", 1)[1]
    assert last.count("[environment (plugin)]") == 199 and "Context. Context." in last


def _calculator():
    from inkagent.registry import load_object

    return load_object(CALCULATOR)


def _echo():
    from inkagent.actions import tool

    @tool
    def echo(text: str) -> str:
        """Say it back.

        Args:
            text: what to say
        """
        print(text)
        return text.encode("utf-8", "surrogatepass")  # bytes that may not be UTF-8

    return echo


_PIECES = ["<|action_start|><|plugin|>\n", '{"name": "echo", "parameters": {"text": "', '"}}', "<|action_end|>\n",
           "<|im_end|>", "\x00", "\ud800", "\udfff", "\\ud800", "汉字", "\r", "\n"]


def test_any_model_text_goes_through_the_agent_and_its_trace_without_an_exception(tmp_path):
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    from inkagent.agents import Internlm2Agent
    from inkagent.llms import ScriptedLLM
    from inkagent.schema import TextDelta, ToolCallDelta
    from inkagent.trace import read_trace

    trace = tmp_path / "fuzz.jsonl"
    pieces = st.lists(st.one_of(st.sampled_from(_PIECES), st.text(max_size=20)), max_size=12)

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.lists(pieces.map("".join), min_size=1, max_size=3))
    def run(outputs):
        trace.unlink(missing_ok=True)
        agent = Internlm2Agent(llm=ScriptedLLM(outputs, cycle=True), plugin_executor=[_echo()], max_turn=3,
                               trace=trace)
        events = [e for e in agent.stream("go \ud800\x00") if not isinstance(e, TextDelta | ToolCallDelta)]
        agent.close()
        assert events[-1].type == "final_answer"
        assert [e.type for e in read_trace(trace)] == [e.type for e in events]

    run()


# pieces a model's output is cut from, hostile ones included: very deep JSON nesting (RecursionError in a
# naive parser), an integer literal longer than Python converts (ValueError), NUL bytes, lone surrogates
_HOSTILE = [*_PIECES, "[" * 3000, '{"a": ' * 1500, "9" * 5000, '{"name": "echo", "parameters": {"text": ',
            "<|action_start|><|interpreter|>\n```python\n", "```", "\x00" * 3, "}", "]",
            '<|action_start|><|plugin|>\n{"name": "echo", "parameters": {"text": "hi\\u0000"}}<|action_end|>\n']


def test_ten_thousand_outputs_through_the_agent_with_a_trace_end_cleanly(tmp_path):
    import random

    from inkagent.agents import Internlm2Agent
    from inkagent.llms import ScriptedLLM
    from inkagent.schema import AgentState
    from inkagent.trace import read_trace

    rng = random.Random(17)
    outputs = ["".join(rng.choice(_HOSTILE) for _ in range(rng.randint(0, 6))) for _ in range(10_000)]
    trace = tmp_path / "fuzz.jsonl"
    agent = Internlm2Agent(llm=ScriptedLLM([""]), plugin_executor=[_echo()], max_turn=2, trace=trace)
    states = []
    for output in outputs:
        agent.reset()
        agent.llm = ScriptedLLM([output], cycle=True)
        events = list(agent.stream("go"))  # an exception here fails the test
        assert events[-1].type == "final_answer"
        states.append(events[-1].state)
    agent.close()
    assert AgentState.LLM_ERROR not in states
    # answers, calls refused, and calls run (a good call every turn runs out of turns)
    assert {AgentState.ANSWERED, AgentState.REPEATED_FAILURE, AgentState.MAX_TURN} <= set(states)
    finals = [e for e in read_trace(trace) if getattr(e, "type", None) == "final_answer"]
    assert [e.state for e in finals] == states
