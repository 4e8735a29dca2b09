"""lagent 0.2.4's InternLM2 demos, ported by renaming `lagent` to `inkagent`, run end to end (issue 15).

The demo programs live in tests/lagent_demos/ and follow lagent's examples line for line where they can:
a CLI loop (history list, `stream_chat`, printing by `AgentStatusCode`, `history.extend(inner_steps)`) and a
streamlit app (sidebar toggles setting the agent's executors and prompts, `st.session_state` history,
actions rendered from `ActionReturn.args`). A scripted model plays InternLM2; the interpreter is a real
Jupyter kernel.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

DEMOS = Path(__file__).parent / "lagent_demos"
CODE = "x = 6 * 7\nprint(x)"
SCRIPT = [
    f"我来算一下。<|action_start|><|interpreter|>\n```python\n{CODE}\n```<|action_end|>\n<|im_end|>",
    "结果是 42。<|im_end|>",
    "翻倍是 84。<|im_end|>",
]


def test_cli_demo_two_turns_through_a_pipe(tmp_path):
    script, record = tmp_path / "script.json", tmp_path / "prompts.json"
    script.write_text(json.dumps(SCRIPT, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(DEMOS / "internlm2_agent_cli_demo.py"), "--script", str(script), "--record", str(record)],
        input="What is 6*7?\n\nAnd doubled?\n\nexit\n\n", capture_output=True, text=True, timeout=180,
        cwd=tmp_path, env={**os.environ, "PYTHONIOENCODING": "utf-8"},
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    # the thought, then the code while it is written (CODING), then the answers, in order
    assert out.index("我来算一下。") < out.index(" IPythonInterpreter: ") < out.index(CODE) < out.index("结果是 42。")
    assert out.index("结果是 42。") < out.index("翻倍是 84。")
    assert "Traceback" not in done.stderr
    prompts = json.loads(record.read_text(encoding="utf-8"))
    assert len(prompts) == 3
    last = prompts[2]  # the second turn: every earlier message exactly once
    assert last.count("What is 6*7?") == 1 and last.count(CODE) == 1 and last.count("结果是 42。") == 1
    assert last.count("<|im_start|>environment name=<|interpreter|>\n42<|im_end|>") == 1
    assert last.endswith("<|im_start|>user\nAnd doubled?<|im_end|>\n<|im_start|>assistant\n")


def test_streamlit_demo_two_turns_with_sidebar_toggles(tmp_path, monkeypatch):
    script = tmp_path / "script.json"
    script.write_text(json.dumps(SCRIPT, ensure_ascii=False), encoding="utf-8")
    monkeypatch.setenv("INKAGENT_DEMO_SCRIPT", str(script))
    monkeypatch.chdir(tmp_path)
    app = AppTest.from_file(str(DEMOS / "internlm2_agent_web_demo.py"), default_timeout=120)

    def rerun(step):
        step.run()
        assert not app.exception, [e.value for e in app.exception]

    rerun(app)
    rerun(app.sidebar.checkbox[0].check())  # 数据分析: sets _interpreter_executor
    rerun(app.chat_input[0].set_value("What is 6*7?"))
    chatbot = app.session_state["chatbot"]
    assert chatbot._interpreter_executor is not None and chatbot._plugin_executor is None
    app.sidebar.text_area[0].set_value("你是一个数学助手。")  # 系统提示词: sets _protocol._meta_template
    rerun(app.sidebar.multiselect[0].select("ArxivSearch"))  # 插件选择: sets _plugin_executor
    rerun(app.chat_input[0].set_value("And doubled?"))
    rerun(app)  # the final page renders the whole conversation from the session state

    page = "\n".join(m.value for m in app.markdown)
    assert "结果是 42。" in page and "翻倍是 84。" in page
    assert f"```python\n{CODE}\n```" in page  # the interpreter's ActionReturn.args['text']
    assert "```\n42\n```" in page  # its result
    assert [i.value for i in app.info] == ["IPythonInterpreter"]

    prompts = app.session_state["chatbot"]._llm.prompts
    assert len(prompts) == 3
    last = prompts[2]
    assert last.count("What is 6*7?") == 1 and last.count(CODE) == 1 and last.count("结果是 42。") == 1
    assert last.startswith("<|im_start|>system\n你是一个数学助手。<|im_end|>")
    assert "ArxivSearch.get_arxiv_article_information" in last  # the plugin toggled on
    assert "当开启工具" not in last and "当开启工具" in prompts[0]
