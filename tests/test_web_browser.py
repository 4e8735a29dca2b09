"""`inkagent web` in a real browser: the command on a free loopback port, headless Chromium (Debian's
`/usr/bin/chromium`) driven by Playwright. What AppTest cannot show: the tool box while the tool runs,
Stop during a slow tool, an image uploaded through the chat input, the kernel freed when the tab closes.

Each test saves a screenshot in its tmp dir. Skipped when /usr/bin/chromium is absent (.ci/run installs it).
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml
from conftest import ROOT
from vision_models import IMAGES, tiny_llava_dir  # noqa: F401  (fixture)

from inkagent.trace import read_trace

sys.path.insert(0, str(ROOT / "scripts"))
from web_screenshot import CHROMIUM, ask, assistant_messages, browser, open_page, serve  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"no Chromium at {CHROMIUM} (apt-get install chromium)"),
]
pytest.importorskip("playwright")
from playwright.sync_api import expect  # noqa: E402

SLOW_TOOL = '''
import time
from pathlib import Path

from inkagent.actions import tool


@tool
def open_gate(path: str) -> str:
    """Wait until a file exists (at most two minutes).

    Args:
        path: the file
    """
    deadline = time.monotonic() + 120
    while not Path(path).exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    return "the gate is open"
'''


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def events_until_the_end(trace_dir: Path, limit_s: float = 120.0) -> list:
    """The events of the session's trace once it holds the run's final answer (the server writes it as the
    run ends; the page shows the answer while it streams, before that)."""
    deadline = time.monotonic() + limit_s
    while True:
        events = [e for path in trace_dir.glob("web-*.trace.jsonl") for e in read_trace(path)]
        if any(getattr(e, "type", None) == "final_answer" for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.05)  # another process writes it: nothing to wait on but the file


def page_text(page) -> str:
    return page.locator("body").inner_text()


def kernels_of(server) -> list[psutil.Process]:
    """The session kernels below the server (not the reaping launchers that start them)."""
    found = []
    for process in psutil.Process(server.pid).children(recursive=True):
        command = " ".join(process.cmdline())
        if "ipykernel" in command and "subreaper" not in command:
            found.append(process)
    return found


def test_tool_box_shows_while_the_tool_runs_then_the_answer(tmp_path):
    gate = tmp_path / "gate"
    code = f"import pathlib, time\nwhile not pathlib.Path({str(gate)!r}).exists():\n    time.sleep(0.05)\nprint(17 * 23)"
    call = f"Let me compute.<|action_start|><|interpreter|>\n```python\n{code}\n```<|action_end|>\n"
    config = write_config(
        tmp_path / "interpreter.yaml",
        {"llm": {"type": "ScriptedLLM", "responses": [call, "17 * 23 = 391.<|im_end|>"]}, "interpreter": {"timeout_s": 120}},
    )
    with serve(config, trace_dir=tmp_path / "traces") as (server, url), browser() as chromium:
        page = open_page(chromium, url)
        ask(page, "What is 17 * 23?")
        running = page.locator('[data-testid="stExpander"]').filter(has_text="IPythonInterpreter · running")
        running.wait_for()
        running.locator('[data-testid="stCode"]').filter(has_text="pathlib.Path").wait_for()  # the code, as it runs
        assert running.locator('[data-testid="stExpanderIconSpinner"]').is_visible()
        assert page.get_by_role("button", name="Stop").is_visible()
        page.screenshot(path=str(tmp_path / "running.png"))
        gate.touch()
        assistant_messages(page).last.get_by_text("17 * 23 = 391.").wait_for()
        done = page.locator('[data-testid="stExpander"]').filter(has_text=re.compile(r"IPythonInterpreter · \d+\.\d\d s"))
        done.locator('[data-testid="stExpanderIconCheck"]').wait_for()  # completed in place
        page.get_by_role("button", name="Stop").wait_for(state="detached")
        page.screenshot(path=str(tmp_path / "answered.png"))
        text = page_text(page)
        assert text.index("What is 17 * 23?") < text.index("Let me compute.") < text.index("17 * 23 = 391.")
        kernels = kernels_of(server)
        assert len(kernels) == 1  # this session's kernel
        page.close()  # the session ends: its kernel goes
        gone, alive = psutil.wait_procs(kernels, timeout=60)
        assert not alive


def test_stop_during_a_slow_tool_drops_the_turn(tmp_path):
    (tmp_path / "gate.py").write_text(SLOW_TOOL, encoding="utf-8")
    never = tmp_path / "never-created"
    call = (
        "Opening the gate.<|action_start|><|plugin|>\n"
        f'{{"name": "open_gate", "parameters": {{"path": "{never}"}}}}<|action_end|>\n'
    )
    config = write_config(
        tmp_path / "slow.yaml",
        {
            "llm": {"type": "ScriptedLLM", "responses": [call, "Hello again.<|im_end|>"]},
            "actions": ["./gate.py:open_gate"],
            "agent": {"tool_timeout_s": 300},
        },
    )
    with serve(config, trace_dir=tmp_path / "traces") as (server, url), browser() as chromium:
        page = open_page(chromium, url)
        ask(page, "Open the front gate")
        page.locator('[data-testid="stExpander"]').filter(has_text="open_gate · running").wait_for()
        page.get_by_role("button", name="Stop").click()
        page.get_by_text("Stopped: the turn was dropped from the conversation.").wait_for()
        page.screenshot(path=str(tmp_path / "stopped.png"))
        text = page_text(page)
        assert "Open the front gate" not in text and "Opening the gate." not in text
        assert page.locator('[data-testid="stExpander"]').count() == 0
        ask(page, "hello")
        assistant_messages(page).last.get_by_text("Hello again.").wait_for()
        page.screenshot(path=str(tmp_path / "after.png"))
        assert "Open the front gate" not in page_text(page)
    (trace,) = (tmp_path / "traces").glob("web-*.trace.jsonl")
    events = read_trace(trace)
    assert any(getattr(e, "kind", None) == "cancelled" for e in events)
    prompts = [e for e in events if getattr(e, "type", None) == "prompt"]
    last_prompt = " ".join(str(m.get("content")) for m in prompts[-1].messages)
    assert "Open the front gate" not in last_prompt and "hello" in last_prompt  # dropped from the memory


def test_image_upload_gets_the_vision_models_answer(tmp_path, tiny_llava_dir):  # noqa: F811
    config = write_config(
        tmp_path / "vision.yaml",
        {
            "llm": {"type": "VisionLanguageModel", "path": str(tiny_llava_dir), "device": "cpu", "max_new_tokens": 8},
            "agent": {"type": "ImageUnderstanding"},
        },
    )
    images = [str(IMAGES / "red-sun.png"), str(IMAGES / "blue-sea.png")]
    with serve(config, trace_dir=tmp_path / "traces") as (server, url), browser() as chromium:
        page = open_page(chromium, url)
        ask(page, "What differs between these?", files=images)
        user = page.locator('[data-testid="stChatMessage"]').filter(has_text="What differs between these?")
        user.wait_for()
        answer = assistant_messages(page).last
        reply = answer.locator('[data-testid="stMarkdownContainer"]').first
        reply.wait_for()  # the answer has begun to stream in: the run ends in the server a moment later
        events = events_until_the_end(tmp_path / "traces")
        expect(user.locator("img")).to_have_count(2, timeout=60_000)  # the uploaded images, with the question
        page.screenshot(path=str(tmp_path / "vision.png"))
        shown = reply.inner_text().strip()
    final = [e for e in events if getattr(e, "type", None) == "final_answer"][-1]
    assert final.state.value == "answered" and final.text
    assert shown and shown.split()[0] in final.text  # the model's answer is what the page shows
    (prompt,) = [e for e in events if getattr(e, "type", None) == "prompt"]
    parts = prompt.messages[-1]["content"]
    assert [p["type"] for p in parts] == ["image", "image", "text"]
