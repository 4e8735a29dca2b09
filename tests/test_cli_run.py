"""`inkagent run` and config files, as a user drives them from a shell."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
import yaml
from conftest import ROOT, run_cli


def test_help_and_version_do_not_import_heavy_libraries():
    code = ("import sys, inkagent.cli as c; c.build_parser().format_help(); "
            "print(sorted(m for m in ('torch', 'transformers', 'jupyter_client', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert "inkagent 0.1.0" in run_cli("--version").stdout
    assert "run" in run_cli("--help").stdout


def test_scripted_demo_runs_offline_and_answers(tmp_path):
    trace = tmp_path / "trace.jsonl"
    proc = run_cli("run", "configs/scripted.yaml", "--trace", str(trace), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["answer"] == "17 * 23 = 391." and result["state"] == "answered"
    assert result["tool_calls"][0]["output"] == "391"
    records = [json.loads(line) for line in trace.read_text().splitlines()]
    assert [r["type"] for r in records][-1] == "final_answer"


def write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(text))
    return path


def write_yaml(tmp_path, data: dict):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bad_config_names_file_and_key_without_traceback(tmp_path):
    path = write(tmp_path, """\
        llm: {type: ScriptedLLM}
        agent: {max_turn: zero}
        """)
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2
    assert f"{path}: agent.max_turn:" in proc.stderr and "integer" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_unknown_action_and_unknown_key_are_named(tmp_path):
    path = write(tmp_path, """\
        llm: {type: ScriptedLLM}
        actions: [Calculator3000]
        """)
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2 and "actions[0].type" in proc.stderr and "Calculator3000" in proc.stderr
    path = write(tmp_path, "llm: {type: ScriptedLLM}\nmodel: oops\n")
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2 and "model: unknown key" in proc.stderr
    proc = run_cli("run", str(tmp_path / "missing.yaml"), "--task", "x")
    assert proc.returncode == 2 and "missing.yaml" in proc.stderr


def test_yaml_syntax_error_gives_the_line(tmp_path):
    path = write(tmp_path, "llm:\n  type: [ScriptedLLM\n")
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2 and "line" in proc.stderr and "not valid YAML" in proc.stderr


def test_plugin_file_referenced_by_path_runs(tmp_path):
    (tmp_path / "my_tools.py").write_text(textwrap.dedent('''\
        from inkagent.actions import tool

        @tool
        def shout(text: str) -> str:
            """Upper-case a text.

            Args:
                text: what to shout
            """
            return text.upper() + "!"
        '''))
    call = '<|action_start|><|plugin|>\n{"name": "shout", "parameters": {"text": "hello"}}<|action_end|>\n'
    path = write_yaml(tmp_path, {"llm": {"type": "ScriptedLLM", "responses": [call, "It said HELLO!<|im_end|>"]},
                                 "actions": ["./my_tools.py:shout"]})
    proc = run_cli("run", str(path), "--task", "shout hello", "--json", "--trace", str(tmp_path / "t.jsonl"), cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tool_calls"][0]["output"] == "HELLO!"


def test_no_answer_exits_1_and_says_why(tmp_path):
    call = '<|action_start|><|plugin|>\n{"name": "nothing"}<|action_end|>'
    path = write_yaml(tmp_path, {"llm": {"type": "ScriptedLLM", "responses": [call], "cycle": True},
                                 "agent": {"max_turn": 2}})
    proc = run_cli("run", str(path), "--task", "x", "--trace", str(tmp_path / "t.jsonl"))
    assert proc.returncode == 1
    assert "no answer" in proc.stderr


def test_two_actions_with_one_name_are_a_config_error(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.py").write_text("from inkagent.actions import tool\n\n@tool\ndef same() -> str:\n"
                                             '    """Same name."""\n    return "x"\n')
    path = write_yaml(tmp_path, {"llm": {"type": "ScriptedLLM"}, "actions": ["./a.py:same", "./b.py:same"]})
    proc = run_cli("run", str(path), "--task", "x")
    assert proc.returncode == 2 and "actions" in proc.stderr and "two actions" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_tool_printing_10_mb_does_not_break_json_output(tmp_path):
    (tmp_path / "noisy.py").write_text(textwrap.dedent('''\
        import sys
        from inkagent.actions import tool

        @tool
        def noisy(text: str) -> str:
            """Print ten megabytes, then answer.

            Args:
                text: what to answer
            """
            line = "x" * 99 + "\\n"
            for _ in range(100_000):
                sys.stdout.write(line)
            return text
        '''))
    call = '<|action_start|><|plugin|>\n{"name": "noisy", "parameters": {"text": "done"}}<|action_end|>\n'
    path = write_yaml(tmp_path, {"llm": {"type": "ScriptedLLM", "responses": [call, "Finished.<|im_end|>"]},
                                 "actions": ["./noisy.py:noisy"]})
    proc = run_cli("run", str(path), "--task", "go", "--json", "--trace", str(tmp_path / "t.jsonl"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout)["answer"] == "Finished." and len(proc.stdout) < 100_000
    records = [json.loads(line) for line in (tmp_path / "t.jsonl").read_text().splitlines()]
    output = next(r for r in records if r["type"] == "tool_result")["result"]["output"]
    assert output.endswith("done") and "output cut" in output and len(output) < 10_000


ANSWER = {"type": "ScriptedLLM", "responses": ["Done.<|im_end|>"]}


def test_typos_under_agent_and_llm_are_config_errors_naming_the_closest_key(tmp_path):
    cases = [
        ({"agent": {"tool_timeout": 5, "langauge": "zh"}}, "agent.langauge: unknown key (did you mean 'language'?)"),
        ({"agent": {"tool_timeout": 5}}, "agent.tool_timeout: unknown key (did you mean 'tool_timeout_s'?)"),
        ({"agent": {"temperature": 0.2}}, "agent.temperature: a generation option: put it under agent.generation"),
        ({"llm": {**ANSWER, "tempreature": 0.5}}, "llm.tempreature: unknown key (did you mean 'temperature'?)"),
        ({"llm": {"type": "OpenAICompatible", "api_key": "sk-abc123456789"}}, "llm.api_key: api_key is not read"),
        ({"interpreter": {"timeout_sec": 5}}, "interpreter.timeout_sec: unknown key (did you mean 'timeout_s'?)"),
    ]
    from inkagent.errors import ConfigError
    from inkagent.runners.config import build_agent, load_config

    for data, message in cases:
        path = write_yaml(tmp_path, {"llm": ANSWER, **data})
        with pytest.raises(ConfigError) as caught:
            build_agent(load_config(path))
        assert message in str(caught.value) and str(path) in str(caught.value)
        assert "sk-abc123456789" not in str(caught.value)
    path = write_yaml(tmp_path, {"llm": ANSWER, **cases[0][0]})
    proc = run_cli("run", str(path), "--task", "x", "--trace", str(tmp_path / "t.jsonl"))
    assert proc.returncode == 2 and cases[0][1] in proc.stderr and "Traceback" not in proc.stderr


def test_generation_options_protocol_and_backend_keywords_are_accepted(tmp_path):
    from inkagent.runners.config import build_agent, load_config

    path = write_yaml(tmp_path, {
        "llm": {**ANSWER, "max_new_tokens": 64, "top_k": 5, "stop_words": ["<|im_end|>"]},
        "agent": {"generation": {"temperature": 0.2}, "protocol": "internlm2", "max_repeats": 3},
    })
    agent = build_agent(load_config(path))
    assert agent.gen_params == {"temperature": 0.2} and agent.max_repeats == 3
    assert agent.chat("hi").response == "Done."
