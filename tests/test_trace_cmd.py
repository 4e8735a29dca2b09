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
    records = [json.loads(line) for line in trace.read_text().splitlines()]
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
    assert proc.stderr.splitlines() == [*shown, f"trace: {trace}"]
