"""`inkagent chat`: the real command in a pseudo-terminal (pexpect), its screen read by a terminal
emulator (pyte), and piped sessions. Scripted models stand in for InternLM2; tools are real."""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from pathlib import Path

import pexpect
import pyte
import pytest
import yaml
from conftest import ROOT, run_cli

CALCULATOR = f"{ROOT / 'configs' / 'tools' / 'calculator.py'}:calculate"
CALL_CALCULATOR = (
    "I will compute it.<|action_start|><|plugin|>\n"
    '{"name": "calculate", "parameters": {"expression": "17 * 23"}}<|action_end|>\n'
)
CALL_GATE = (
    "Let me open the gate.<|action_start|><|plugin|>\n"
    '{"name": "wait_for_gate", "parameters": {"name": "front"}}<|action_end|>\n'
)
# Escape sequences and control characters, removed to follow the output as text.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[()][0-9A-Za-z]|\x1b[=>78]|[\r\x07\x08]"
)
KEY_UP = "\x1b[A"
ALT_ENTER = "\x1b\r"


class Terminal:
    """The real `inkagent chat` in a pseudo-terminal: `expect` follows its output, `display` is its screen."""

    def __init__(self, args: list[str], *, home: Path, cwd: Path, rows: int = 60, cols: int = 120):
        env = {
            **os.environ,
            "INKAGENT_HOME": str(home),
            "PROMPT_TOOLKIT_NO_CPR": "1",
            "TERM": "xterm-256color",
            "HF_HUB_OFFLINE": "1",
        }
        env.pop("NO_COLOR", None)
        self.child = pexpect.spawn(
            sys.executable,
            ["-m", "inkagent", *args],
            env=env,
            cwd=str(cwd),
            dimensions=(rows, cols),
            encoding="utf-8",
        )
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.Stream(self.screen)
        self.raw = ""
        self.pos = 0  # in the text without escape codes: where the last `expect` matched

    @property
    def text(self) -> str:
        return _ANSI.sub("", self.raw)

    def display(self) -> str:
        return "\n".join(line.rstrip() for line in self.screen.display)

    def _read(self, timeout: float) -> None:
        try:
            data = self.child.read_nonblocking(65536, timeout=timeout)
        except pexpect.TIMEOUT:
            return
        self.raw += data
        self.stream.feed(data)

    def expect(self, needle: str, timeout: float = 20) -> None:
        """Wait until `needle` is printed after the previous match (the output, not the current screen)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.text.find(needle, self.pos)
            if found >= 0:
                self.pos = found + len(needle)
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} never appeared; the screen:\n{self.display()}")
            try:
                self._read(min(0.5, max(0.01, deadline - time.monotonic())))
            except pexpect.EOF as exc:
                raise AssertionError(
                    f"the REPL ended before {needle!r}; the screen:\n{self.display()}"
                ) from exc

    def expect_on_screen(self, needle: str, timeout: float = 20) -> None:
        """Wait until `needle` is on the screen now (for what is redrawn in place, like the input line)."""
        deadline = time.monotonic() + timeout
        while needle not in self.display():
            if time.monotonic() > deadline:
                raise AssertionError(f"{needle!r} is not on the screen:\n{self.display()}")
            self._read(0.2)

    def prompt_ready(self) -> None:
        self.expect("›")

    def send(self, keys: str) -> None:
        self.child.send(keys)

    def ask(self, message: str) -> None:
        self.child.send(message + "\r")

    def exit_status(self, timeout: float = 20) -> int:
        """Wait for the end of the process (reading what it still prints) and return its exit status."""
        deadline = time.monotonic() + timeout
        while self.child.isalive() and time.monotonic() < deadline:
            try:
                self._read(0.5)
            except pexpect.EOF:
                break
        self.child.close()
        return self.child.exitstatus

    def kill(self) -> None:
        if self.child.isalive():
            self.child.terminate(force=True)


def write_config(path: Path, responses: list[str], actions: list[str], **llm: object) -> Path:
    data = {
        "llm": {"type": "ScriptedLLM", "responses": responses, **llm},
        "agent": {"max_turn": 4},
        "actions": actions,
    }
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def trace_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def gate(tmp_path):
    """A tool that blocks until the test opens its gate (a FIFO): a running call the test controls."""
    fifo = tmp_path / "gate.fifo"
    os.mkfifo(fifo)
    (tmp_path / "gate_tool.py").write_text(f'''\
from inkagent.actions import tool


@tool
def wait_for_gate(name: str) -> str:
    """Wait until the gate opens.

    Args:
        name: which gate
    """
    with open({str(fifo)!r}) as gate:
        return f"gate {{name}} says {{gate.read().strip()}}"
''')

    def open_gate(word: str) -> None:
        def write() -> None:
            with open(fifo, "w") as end:
                end.write(word)

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(20)
        assert not writer.is_alive(), "the tool never opened the gate"

    open_gate.action = f"{tmp_path / 'gate_tool.py'}:wait_for_gate"
    return open_gate


@pytest.fixture
def chat(tmp_path):
    """Start `inkagent chat CONFIG` in a pseudo-terminal; every terminal is killed at the end."""
    terminals: list[Terminal] = []

    def start(config: Path, trace: Path) -> Terminal:
        terminal = Terminal(
            ["chat", str(config), "--trace", str(trace)], home=tmp_path / "home", cwd=tmp_path
        )
        terminals.append(terminal)
        terminal.prompt_ready()
        return terminal

    yield start
    for terminal in terminals:
        terminal.kill()


def test_a_tool_call_is_shown_running_then_completed_in_place_then_the_answer(tmp_path, chat, gate):
    config = write_config(tmp_path / "c.yaml", [CALL_GATE, "The gate is open.<|im_end|>"], [gate.action])
    term = chat(config, tmp_path / "t.jsonl")
    term.ask("Open the front gate")
    term.expect("running")
    screen = term.display()
    assert "Let me open the gate." in screen
    assert "wait_for_gate · running" in screen and '{"name": "front"}' in screen  # name and arguments
    gate("open")
    term.expect("answered ·")
    term.prompt_ready()
    screen = term.display()
    lines = screen.splitlines()
    done = next(i for i, line in enumerate(lines) if "✓ wait_for_gate" in line)
    answer = next(i for i, line in enumerate(lines) if "The gate is open." in line)
    assert lines.index(next(line for line in lines if "Let me open the gate." in line)) < done < answer
    assert "gate front says open" in screen and '{"name": "front"}' in screen
    assert "running" not in screen  # the running call was completed in place, not printed twice


def test_tools_command_is_completed_and_lists_the_actions_and_ctrl_d_exits(tmp_path, chat, gate):
    config = write_config(tmp_path / "c.yaml", ["Hi.<|im_end|>"], [CALCULATOR, gate.action])
    term = chat(config, tmp_path / "t.jsonl")
    term.send("/to")
    term.expect_on_screen("the agent's tools")  # the completion menu
    term.send("\t")
    term.expect_on_screen("› /tools")
    term.send("\r")
    term.expect("description")  # the table's header
    term.prompt_ready()
    screen = term.display()
    assert "calculate" in screen and "expression: string" in screen and "Evaluate an arithmetic" in screen
    assert "wait_for_gate" in screen and "name: string" in screen
    term.send("\x04")  # Ctrl-D
    assert term.exit_status() == 0


def test_ctrl_c_cancels_a_slow_generation_and_the_next_question_works(tmp_path, chat):
    story = "Once upon a time " * 400 + "<|im_end|>"
    config = write_config(tmp_path / "c.yaml", [story, "Short answer.<|im_end|>"], [], delay_s=0.05)
    trace = tmp_path / "t.jsonl"
    term = chat(config, trace)
    term.ask("Tell me a long story")
    term.expect("Once upon a time Once upon")
    term.child.sendintr()
    term.expect("cancelled")
    term.prompt_ready()
    term.ask("Second question")
    term.expect("Short answer.")
    term.expect("answered ·")
    term.prompt_ready()
    term.ask("/history")
    term.expect("agent: Short answer.")
    term.prompt_ready()
    screen = term.display()
    assert "you: Second question" in screen and "you: Tell me a long story" not in screen  # rolled back
    records = trace_records(trace)
    assert any(r["type"] == "error" and r["kind"] == "cancelled" for r in records)
    assert [r["text"] for r in records if r["type"] == "final_answer"] == ["Short answer."]


def test_ctrl_c_cancels_a_running_tool_and_the_session_goes_on(tmp_path, chat, gate):
    config = write_config(tmp_path / "c.yaml", [CALL_GATE, "Short answer.<|im_end|>"], [gate.action])
    term = chat(config, tmp_path / "t.jsonl")
    term.ask("Open the front gate")
    term.expect("running")
    term.child.sendintr()
    term.expect("cancelled")
    term.prompt_ready()
    assert "■ wait_for_gate · cancelled" in term.display()
    term.ask("Something else")
    term.expect("Short answer.")
    term.expect("answered ·")
    term.prompt_ready()


def test_save_then_load_restores_the_conversation(tmp_path, chat):
    first = write_config(tmp_path / "first.yaml", ["The secret word is banana.<|im_end|>"], [])
    term = chat(first, tmp_path / "first.jsonl")
    term.ask("Remember a word")
    term.expect("answered ·")
    term.prompt_ready()
    term.ask("/save conv.json")
    term.expect("saved 2 messages")
    term.prompt_ready()
    term.ask("/exit")
    assert term.exit_status() == 0

    second = write_config(tmp_path / "second.yaml", ["It was banana.<|im_end|>"], [])
    trace = tmp_path / "second.jsonl"
    term = chat(second, trace)
    term.ask("/load conv.json")
    term.expect("loaded 2 messages")
    term.prompt_ready()
    term.ask("/history")
    term.expect("agent: The secret word is banana.")
    term.prompt_ready()
    term.ask("What was the word?")
    term.expect("answered ·")
    term.prompt_ready()
    prompt = next(r for r in trace_records(trace) if r["type"] == "prompt")["messages"]
    conversation = [(m["role"], m["content"]) for m in prompt if m["role"] != "system"]
    assert conversation == [
        ("user", "Remember a word"),
        ("assistant", "The secret word is banana."),
        ("user", "What was the word?"),
    ]


def test_ctrl_c_clears_the_line_multi_line_input_and_history_across_sessions(tmp_path, chat):
    config = write_config(tmp_path / "c.yaml", ["Noted.<|im_end|>"], [], cycle=True)
    trace = tmp_path / "t.jsonl"
    term = chat(config, trace)
    term.send("junk that must not be sent")
    term.expect_on_screen("› junk that must not be sent")
    term.send("\x03")  # Ctrl-C at the prompt
    term.prompt_ready()
    term.send("first line\\\r")  # a trailing backslash continues the message
    term.send("second line" + ALT_ENTER)  # so does Alt+Enter
    term.ask("third line")
    term.expect("answered ·")
    term.prompt_ready()
    term.send("\x04")
    assert term.exit_status() == 0
    assert [r["text"] for r in trace_records(trace) if r["type"] == "user"] == [
        "first line\nsecond line\nthird line"
    ]
    assert "third line" in (tmp_path / "home" / "history").read_text()

    trace2 = tmp_path / "t2.jsonl"
    term = chat(config, trace2)
    term.send(KEY_UP)  # the previous session's message comes back
    term.expect_on_screen("third line")
    term.send("\r")
    term.expect("answered ·")
    term.prompt_ready()
    assert [r["text"] for r in trace_records(trace2) if r["type"] == "user"] == [
        "first line\nsecond line\nthird line"
    ]


# -- piped sessions -----------------------------------------------------------------------------------


def test_a_piped_session_prints_plain_text_and_exits_0(tmp_path):
    config = write_config(tmp_path / "c.yaml", [CALL_CALCULATOR, "17 * 23 = 391.<|im_end|>"], [CALCULATOR])
    trace = tmp_path / "t.jsonl"
    proc = run_cli(
        "chat", str(config), "--trace", str(trace), input="What is 17 * 23?\n/tools\n/exit\nnever sent\n"
    )
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout
    lines = proc.stdout.splitlines()
    assert lines[:4] == [
        "I will compute it.",
        '→ calculate {"expression": "17 * 23"}',
        next(line for line in lines if line.startswith("← calculate (")),
        "17 * 23 = 391.",
    ]
    assert lines[2].endswith(": 391")
    assert "calculate: Evaluate an arithmetic expression." in lines
    assert [r["text"] for r in trace_records(trace) if r["type"] == "user"] == ["What is 17 * 23?"]

    proc = run_cli("chat", str(config), "--trace", str(tmp_path / "t2.jsonl"), input="hi\n")  # EOF, no /exit
    assert proc.returncode == 0 and proc.stdout.splitlines()[-1] == "17 * 23 = 391."


def test_errors_fed_back_to_the_model_are_marked_and_images_are_paths(tmp_path):
    image = tmp_path / "chart.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n")
    (tmp_path / "plot_tool.py").write_text(f'''\
from inkagent.actions import tool
from inkagent.schema import ActionResult


@tool
def plot(title: str) -> ActionResult:
    """Draw a chart.

    Args:
        title: the chart's title
    """
    return ActionResult(name="plot", output="a chart of " + title, files=[{str(image)!r}])
''')
    responses = [
        'Oops.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": <|action_end|>\n',
        'Again.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": "1 / 0"}}'
        "<|action_end|>\n",
        'Now a chart.<|action_start|><|plugin|>\n{"name": "plot", "parameters": {"title": "sales"}}<|action_end|>\n',
        "Here is the chart.<|im_end|>",
    ]
    config = write_config(tmp_path / "c.yaml", responses, [CALCULATOR, f"{tmp_path / 'plot_tool.py'}:plot"])
    proc = run_cli("chat", str(config), "--trace", str(tmp_path / "t.jsonl"), input="Go\n")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "✗ malformed tool call (sent back to the model):" in out
    assert re.search(
        r"✗ calculate failed \(tool_error\) \(\d+\.\d\d s\), sent back to the model: .*ZeroDivision", out
    )
    assert f"  image: {image}" in out
    assert out.rstrip().endswith("Here is the chart.")


def _chat_agent_configs() -> list[Path]:
    return [
        p
        for p in sorted((ROOT / "configs").glob("*.yaml"))
        if (yaml.safe_load(p.read_text()).get("agent") or {}).get("type") == "ChatAgent"
    ]


@pytest.mark.parametrize("persona", _chat_agent_configs(), ids=lambda p: p.name)
def test_persona_configs_run_in_the_repl(persona, tmp_path):
    """A persona config's agent (ChatAgent: no tools, no trace of its own), with a scripted model."""
    data = yaml.safe_load(persona.read_text())
    data["llm"] = {"type": "ScriptedLLM", "responses": ["俺老猪来也！<|im_end|>", "吃饭去！<|im_end|>"]}
    config = tmp_path / persona.name
    config.write_text(yaml.safe_dump(data, allow_unicode=True))
    trace = tmp_path / "t.jsonl"
    proc = run_cli("chat", str(config), "--trace", str(trace), input="你是谁？\n/tools\n去哪儿？\n")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["俺老猪来也！", "this agent has no tools", "吃饭去！"]
    records = trace_records(trace)  # written by the REPL for an agent that writes none
    assert [r["text"] for r in records if r["type"] == "user"] == ["你是谁？", "去哪儿？"]
    from inkagent.trace import read_records  # prompts are stored as what they add: made whole here

    last_prompt = [r for r in read_records(trace) if r["type"] == "prompt"][-1]["messages"]
    assert [m["content"] for m in last_prompt if m["role"] != "system"] == [
        "你是谁？",
        "俺老猪来也！",
        "去哪儿？",
    ]


def test_save_never_replaces_a_file_unless_asked_with_save_bang(tmp_path):
    config = write_config(tmp_path / "c.yaml", ["Hello.<|im_end|>"], [])
    keep = tmp_path / "notes.json"
    keep.write_text("my notes")
    lines = f"hi\n/save {keep}\n/save! {keep}\n"
    proc = run_cli("chat", str(config), "--trace", str(tmp_path / "t.jsonl"), input=lines)
    assert proc.returncode == 0, proc.stderr
    assert f"{keep} exists: /save! {keep} replaces it" in proc.stdout + proc.stderr
    saved = json.loads(keep.read_text())  # replaced only by /save!
    assert [m["content"] for m in saved["messages"]] == ["hi", "Hello."]
