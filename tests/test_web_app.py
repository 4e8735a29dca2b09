"""`inkagent web`: the streamlit page driven headless with `streamlit.testing.v1.AppTest` (scripted models,
real tools, real Jupyter kernels), and the web session's Stop, isolation and shared-model gate directly."""

from __future__ import annotations

import re
import threading
import zipfile
from io import BytesIO
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli
from vision_models import gallery_dir, tiny_clip_dir, tiny_llava_dir  # noqa: F401  (fixtures)

from inkagent.runners.config import load_config
from inkagent.runners.repl import load_conversation
from inkagent.schema import ToolCallStarted, ToolResult
from inkagent.trace import read_trace
from inkagent.web.controls import GatedLLM, SharedModel, TurnCancelled
from inkagent.web.session import WebSession

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

APP = str(ROOT / "inkagent" / "web" / "app.py")
CALCULATOR = f"{ROOT / 'configs' / 'tools' / 'calculator.py'}:calculate"
COUNTER_CODE = 'counter = globals().get("counter", 0) + 1\nprint(f"counter={counter}")'
CALL_COUNTER = f"Counting.<|action_start|><|interpreter|>\n```python\n{COUNTER_CODE}\n```<|action_end|>\n"
GATE_TOOL = '''
import re
import threading
from inkagent.actions import tool

GATE = threading.Event()


@tool
def wait_for_gate(name: str) -> str:
    """Wait until the gate opens.

    Args:
        name: the gate
    """
    GATE.wait(120)
    return f"{name} is open"
'''
CALL_GATE = (
    "Let me open the gate.<|action_start|><|plugin|>\n"
    '{"name": "wait_for_gate", "parameters": {"name": "front"}}<|action_end|>\n'
)


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture
def app(tmp_path, monkeypatch):
    """Open the page on a config (`app(path)`); every session opened is closed at the end."""
    opened: list[AppTest] = []

    def open_page(config: Path | str) -> AppTest:
        monkeypatch.setenv("INKAGENT_WEB_CONFIG", str(config))
        monkeypatch.setenv("INKAGENT_WEB_TRACE_DIR", str(tmp_path / "traces"))
        page = AppTest.from_file(APP, default_timeout=120)
        page.run()
        assert not page.exception, page.exception
        opened.append(page)
        return page

    yield open_page
    for page in opened:
        session = page.session_state["inkagent_session"] if "inkagent_session" in page.session_state else None
        if session is not None:
            session.close()


def send(page: AppTest, text: str) -> AppTest:
    page.chat_input(key="prompt").set_value(text).run()
    assert not page.exception, page.exception
    return page


def session_of(page: AppTest) -> WebSession:
    return page.session_state["inkagent_session"]


def statuses(message) -> list:
    return [child for child in message.children.values() if child.type == "status" or type(child).__name__ == "Status"]


def texts(block) -> list[str]:
    return [child.value for child in block.children.values() if hasattr(child, "value") and isinstance(child.value, str)]


# -- agent chat ---------------------------------------------------------------------------------------


def test_tool_call_result_and_answer_render(app):
    page = send(app(ROOT / "configs" / "scripted.yaml"), "What is 17 * 23?")
    user, answer = page.chat_message
    assert user.name == "user" and texts(user) == ["What is 17 * 23?"]
    assert answer.name == "assistant"
    (box,) = statuses(answer)
    assert re.fullmatch(r"calculate · \d+\.\d\d s", box.label) and box.icon == ":material/check:"
    assert texts(box) == ['{\n  "expression": "17 * 23"\n}', "391"]  # the arguments, then the result
    shown = texts(answer)
    assert shown[0] == "I will compute it." and shown[-1] == "17 * 23 = 391."
    # the sidebar lists the config's tool and offers the downloads
    assert [c.label for c in page.sidebar.checkbox] == ["calculate"]
    session = session_of(page)
    saved = Path(page.session_state["inkagent_session"].trace_path.parent) / "saved.json"
    saved.write_text(session.conversation_json(), encoding="utf-8")
    messages = load_conversation(saved)  # the REPL's /load reads the download
    assert [m.role for m in messages] == ["user", "assistant", "environment", "assistant"]
    kinds = [getattr(e, "type", None) for e in read_trace(session.trace_path)]
    assert "tool_call" in kinds and "tool_result" in kinds and kinds[-1] == "final_answer"


def test_a_switched_off_tool_fails_and_the_error_is_marked(app, tmp_path):
    page = app(ROOT / "configs" / "scripted.yaml")
    page.sidebar.checkbox(key="tool:calculate").uncheck().run()
    send(page, "What is 17 * 23?")
    answer = page.chat_message[1]
    (box,) = statuses(answer)
    assert box.label.startswith("calculate · failed, the error was sent back to the model")
    assert box.icon == ":material/error:"
    assert "Unknown tool 'calculate'" in box.error[0].value
    assert session_of(page).agent.plugin_executor.specs() == []  # the model was not offered it either


def test_new_conversation_clears_page_and_memory(app):
    page = send(app(ROOT / "configs" / "scripted.yaml"), "What is 17 * 23?")
    assert len(page.chat_message) == 2 and session_of(page).agent.memory
    page.sidebar.button(key="new").click().run()
    assert len(page.chat_message) == 0
    assert session_of(page).agent.memory == []


def test_two_sessions_have_their_own_kernel_and_history(app, tmp_path):
    config = write_config(
        tmp_path / "counter.yaml",
        {
            "llm": {"type": "ScriptedLLM", "responses": [CALL_COUNTER, "Counted.<|im_end|>"], "cycle": True},
            "interpreter": {"timeout_s": 60},
        },
    )
    first = app(config)
    second = app(config)
    send(first, "count")
    send(first, "count again")
    send(second, "count")
    one, two = session_of(first), session_of(second)
    assert one is not two
    assert one.kernel_pid and two.kernel_pid and one.kernel_pid != two.kernel_pid
    results = [texts(statuses(m)[0])[-1] for m in first.chat_message if m.name == "assistant"]
    assert results == ["counter=1", "counter=2"]  # the first session's kernel kept its variable
    (other,) = [texts(statuses(m)[0])[-1] for m in second.chat_message if m.name == "assistant"]
    assert other == "counter=1"  # ...which the second session never saw
    assert [m.content for m in two.agent.memory if m.role == "user"] == ["count"]
    assert statuses(first.chat_message[1])[0].code[0].language == "python"


def test_language_and_max_turn_reach_the_agent(app):
    page = app(ROOT / "configs" / "scripted.yaml")
    page.sidebar.radio(key="language").set_value("zh").run()
    page.sidebar.number_input(key="max_turn").set_value(1).run()
    send(page, "What is 17 * 23?")
    agent = session_of(page).agent
    assert agent.max_turn == 1 and agent.protocol.prompt_language == "zh"
    assert "max_turn=1" in page.chat_message[1].error[0].value  # one model call, then no answer


# -- persona chat and writing -------------------------------------------------------------------------


def test_persona_chat(app, tmp_path):
    persona = yaml.safe_load((ROOT / "configs" / "persona-zhubajie.yaml").read_text(encoding="utf-8"))
    persona["llm"] = {"type": "ScriptedLLM", "responses": ["俺老猪饿了！<|im_end|>", "猴哥救我！<|im_end|>"]}
    page = app(write_config(tmp_path / "zhubajie.yaml", persona))
    assert page.header[0].value == "ZhuBajie"
    send(page, "你好")
    send(page, "师父呢？")
    answers = [texts(m) for m in page.chat_message if m.name == "assistant"]
    assert answers == [["俺老猪饿了！"], ["猴哥救我！"]]
    assert not page.sidebar.checkbox  # a persona has no tools
    llm = session_of(page).llm
    system, *rounds = llm.messages[-1]
    assert system == {"role": "system", "content": persona["agent"]["system_prompt"]}
    assert [m["content"] for m in rounds] == ["你好", "俺老猪饿了！", "师父呢？"]


def test_writer_shows_the_steps_and_the_article(app, tmp_path, gallery_dir, tiny_clip_dir, tiny_llava_dir):  # noqa: F811
    article = "水墨画\n\n山水之间，墨色流动。\n\n留白是东方美学的呼吸。\n\n笔墨当随时代。"
    config = write_config(
        tmp_path / "writer.yaml",
        {
            "llm": {
                "type": "ScriptedLLM",
                "responses": [article, "适合插入图像的行是<Seg1>, <Seg3>", '远山与墨"', '竹林"'],
            },
            "agent": {
                "type": "IllustratedWriter",
                "language": "zh",
                "gallery": str(gallery_dir),
                "clip_model": str(tiny_clip_dir),
                "vlm": {"path": str(tiny_llava_dir), "device": "cpu"},
                "num_images": 2,
            },
        },
    )
    page = app(config)
    page.text_input(key="title").input("水墨画")
    page.text_area(key="material").input("水和墨调配成不同深浅的墨色。")
    page.button[0].click().run()
    assert not page.exception, page.exception
    user, answer = page.chat_message
    assert texts(user)[0] == "水墨画"
    labels = [box.label for box in statuses(answer)]
    assert labels[0] == "Step 1 · the article"
    assert labels[1].startswith("Step 2 · where the images go · ")
    assert sum(label.startswith("Step 5 · choose the image <Seg") for label in labels) == 2
    assert labels[-1].startswith("Saved · ")
    assert all(box.icon == ":material/check:" for box in statuses(answer))
    shown = texts(answer)
    assert "留白是东方美学的呼吸。" in shown and "笔墨当随时代。" in shown
    kinds = [child.type for child in answer.children.values()]
    body = kinds[kinds.index("divider") + 1 :]
    # the article, each image right after the segment chosen for it (<Seg1>, <Seg3>), then the downloads
    assert body == ["markdown", "markdown", "image", "markdown", "markdown", "image", "flex_container"]
    session = session_of(page)
    saved = session.turns[-1].article
    assert len(saved.images) == 2
    assert {choice.method for choice in saved.choices.values()} == {"logits"}  # the VLM chose
    other = session_of(app(config))  # a second session: the VLM and the gallery index are the same objects
    assert other.agent.vlm.shared is session.agent.vlm.shared and other.agent.retriever is session.agent.retriever
    llm = session.llm
    assert "水和墨调配成不同深浅的墨色" in llm.messages[0][0]["content"]  # the material reached step 1
    from inkagent.web.session import article_zip

    names = set(zipfile.ZipFile(BytesIO(article_zip(saved))).namelist())
    assert {"article.md", "article.html"} <= names and sum(n.startswith("images/") for n in names) == 2


# -- the session itself: Stop, the shared-model gate ----------------------------------------------------


def test_stop_cancels_a_running_tool_and_drops_the_turn(tmp_path):
    from inkagent.registry import load_object

    (tmp_path / "gate.py").write_text(GATE_TOOL, encoding="utf-8")
    config = write_config(
        tmp_path / "gate.yaml",
        {
            "llm": {"type": "ScriptedLLM", "responses": [CALL_GATE, "Hello again.<|im_end|>"]},
            "actions": ["./gate.py:wait_for_gate"],
        },
    )
    gate = load_object("./gate.py:GATE", base_dir=tmp_path)
    session = WebSession(load_config(config), trace_dir=tmp_path / "traces")
    try:
        turn = session.start("open the front gate")
        seen: list = []
        while not any(isinstance(e, ToolCallStarted) for e in seen):
            events, finished = turn.wait_events(len(seen), 30)
            assert not finished, turn.error
            seen += events
        assert session.stop() is True
        assert turn.state == "cancelled" and session.turns == [] and session.agent.memory == []
        assert not any(isinstance(e, ToolResult) for e in turn.events)
        again = session.start("hello")
        assert again.wait_done(30) and again.state == "done"
        assert [m.content for m in session.agent.memory] == ["hello", "Hello again."]
        kinds = [getattr(e, "kind", None) for e in read_trace(session.trace_path)]
        assert "cancelled" in kinds
    finally:
        gate.set()
        session.close()


def test_the_shared_model_generates_for_one_session_at_a_time():
    from inkagent.llms import ScriptedLLM

    shared = SharedModel(ScriptedLLM(["first answer", "second answer"], chunk_size=3))
    one, two = GatedLLM(shared, threading.Event()), GatedLLM(shared, threading.Event())
    holding = one.stream_text("hi")
    assert next(holding) == "fir"  # session one is generating
    result: dict = {}
    worker = threading.Thread(target=lambda: result.setdefault("text", "".join(two.stream_text("hi"))))
    worker.start()
    assert two.waiting.wait(10)  # session two waits, visibly
    assert "".join(holding) == "st answer"
    worker.join(30)
    assert result["text"] == "second answer" and not two.waiting.is_set()
    # Stop ends a wait
    cancel = threading.Event()
    three = GatedLLM(shared, cancel)
    holding = one.stream_text("hi")
    shared.model.responses.append("third")
    next(holding)
    cancel.set()
    with pytest.raises(TurnCancelled):
        next(three.stream_text("hi"))
    holding.close()
    assert not shared.lock.locked()


def test_web_command_help_and_bad_config(tmp_path):
    done = run_cli("web", "--help")
    assert done.returncode == 0 and "--host" in done.stdout and "127.0.0.1" in done.stdout
    bad = write_config(tmp_path / "bad.yaml", {"llm": {"type": "ScriptedLLM"}, "agent": {"max_turn": 0}})
    done = run_cli("web", str(bad))
    assert done.returncode == 2 and "bad.yaml" in done.stderr and "agent.max_turn" in done.stderr


@pytest.mark.slow
def test_demo_config_offline_with_one_shared_model(app):
    """configs/demo.yaml: the bundled model, loaded once for both sessions, answers through the interpreter."""
    first = send(app(ROOT / "configs" / "demo.yaml"), "What is 17 * 23?")
    second = app(ROOT / "configs" / "demo.yaml")
    answer = first.chat_message[1]
    (box,) = statuses(answer)
    assert box.label.startswith("IPythonInterpreter · ") and box.icon == ":material/check:"
    assert "391" in texts(answer)[-1]
    one, two = session_of(first), session_of(second)
    assert one.llm.shared is two.llm.shared  # the weights are loaded once per process
    assert one.agent is not two.agent


def test_a_figure_from_the_interpreter_shows_inline_and_a_malformed_call_is_marked(app, tmp_path):
    plot = "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()"
    config = write_config(
        tmp_path / "plot.yaml",
        {
            "llm": {
                "type": "ScriptedLLM",
                "responses": [
                    'Oops.<|action_start|><|plugin|>\n{"name": "calculate", "parameters": {"expression": }<|action_end|>\n',
                    f"Plotting.<|action_start|><|interpreter|>\n```python\n{plot}\n```<|action_end|>\n",
                    "Here is the plot.<|im_end|>",
                ],
            },
            "actions": [CALCULATOR],
            "interpreter": {"timeout_s": 120},
        },
    )
    page = send(app(config), "Plot squares")
    answer = page.chat_message[1]
    (warning,) = answer.warning
    assert warning.value.startswith("Malformed tool call, sent back to the model:")
    (box,) = statuses(answer)
    assert box.icon == ":material/check:" and box.code[0].value == plot
    assert [child.type for child in box.children.values()].count("image") == 1  # the figure, inline
    assert texts(answer)[-1] == "Here is the plot."


class HeldModel:
    """A shared model whose first answer stops half-way until `gate` is set."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls = 0

    def stream_text(self, inputs, **gen_params):
        self.calls += 1
        if self.calls > 1:
            yield "Second."
            return
        yield "Slow"
        self.gate.wait(30)
        yield " answer."


def test_a_session_waits_visibly_while_another_uses_the_shared_model(tmp_path):
    from inkagent.schema import TextDelta

    config = load_config(
        write_config(tmp_path / "persona.yaml", {"llm": {"type": "ScriptedLLM"}, "agent": {"type": "ChatAgent"}})
    )
    config.llm.type = "tests:HeavyModel"  # any backend but ScriptedLLM / OpenAICompatible is shared
    model, shared = HeldModel(), {}

    def provider(key, load):
        return shared.setdefault(key, SharedModel(model))

    first = WebSession(config, trace_dir=tmp_path / "t", models=provider)
    second = WebSession(config, trace_dir=tmp_path / "t", models=provider)
    try:
        assert first.llm.shared is second.llm.shared
        one = first.start("hello")
        seen: list = []
        while not any(isinstance(e, TextDelta) for e in seen):  # the first session is generating
            events, finished = one.wait_events(len(seen), 30)
            assert not finished, one.error
            seen += events
        two = second.start("hello too")
        assert second.llm.waiting.wait(30) and second.waiting_for_model
        model.gate.set()
        assert one.wait_done(30) and two.wait_done(30)
        assert not second.waiting_for_model
        assert [m.content for m in first.agent.memory] == ["hello", "Slow answer."]
        assert [m.content for m in second.agent.memory] == ["hello too", "Second."]
    finally:
        model.gate.set()
        first.close()
        second.close()


def test_the_page_warns_when_served_beyond_this_machine(app, monkeypatch):
    monkeypatch.setenv("INKAGENT_WEB_HOST", "0.0.0.0")
    page = app(ROOT / "configs" / "scripted.yaml")
    (warning,) = page.sidebar.warning
    assert "0.0.0.0" in warning.value and "runs code as this user" in warning.value


def test_a_model_that_cannot_load_is_explained_on_the_page(app, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    missing = tmp_path / "no-such-model"
    page = app(write_config(tmp_path / "broken.yaml", {"llm": {"type": "HFTransformer", "path": str(missing)}}))
    (error,) = page.error
    assert error.value.startswith("Cannot start:") and "no-such-model" in error.value
    assert "inkagent_session" not in page.session_state


def test_stop_while_the_model_writes_drops_the_turn(tmp_path):
    from inkagent.schema import TextDelta

    answer = "A long answer that the user stops half-way. " * 20
    config = write_config(
        tmp_path / "slow.yaml",
        {"llm": {"type": "ScriptedLLM", "responses": [answer], "chunk_size": 2, "delay_s": 0.02}, "agent": {"type": "ChatAgent"}},
    )
    session = WebSession(load_config(config), trace_dir=tmp_path / "traces")
    try:
        turn = session.start("tell me everything")
        seen: list = []
        while not any(isinstance(e, TextDelta) for e in seen):
            events, finished = turn.wait_events(len(seen), 30)
            assert not finished, turn.error
            seen += events
        assert session.stop() is True
        written = "".join(e.text for e in turn.events if isinstance(e, TextDelta))
        assert turn.state == "cancelled" and 0 < len(written) < len(answer.strip())
        assert session.agent.memory == [] and session.turns == []
        assert session.conversation_json().count('"role"') == 0
    finally:
        session.close()
