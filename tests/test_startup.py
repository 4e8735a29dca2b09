"""Start-up: a plain run imports nothing heavy, and the interpreter's kernel starts while the model loads."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import psutil
from conftest import ROOT

from inkagent.actions import IPythonInterpreter
from inkagent.llms import ScriptedLLM
from inkagent.runners.config import build_agent, load_config
from inkagent.schema import ToolCall

HEAVY = ("torch", "transformers", "jupyter_client", "zmq", "lagent", "PIL", "mcp")


def _modules_after(argv: list[str]) -> tuple[int, list[str], list[str]]:
    """Run `inkagent ARGV` in a fresh interpreter; its exit code, the heavy packages and the inkagent
    subcommand modules it imported."""
    code = textwrap.dedent(f"""\
        import sys
        from inkagent.cli import main
        code = main({argv!r})
        heavy = sorted(m for m in {HEAVY!r} if m in sys.modules)
        commands = sorted(m for m in sys.modules if m.startswith("inkagent.runners.") and m.endswith(("_cmd", "bench")))
        print("MODULES", heavy, commands)
        sys.exit(code)
        """)
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES"))
    heavy, commands = line.removeprefix("MODULES ").split("] [")
    return done.returncode, eval(heavy + "]"), eval("[" + commands)  # noqa: S307 (our own repr of two lists)


def test_a_scripted_run_imports_no_heavy_library_and_no_other_subcommand(tmp_path):
    code, heavy, commands = _modules_after(["run", "configs/scripted.yaml", "--trace", str(tmp_path / "t.jsonl")])
    assert code == 0
    assert heavy == []
    assert commands == []  # bench, mcp, actions...: not imported to run a task


def test_help_still_lists_every_subcommand():
    from inkagent.cli import COMMANDS, build_parser

    for command in (None, "run"):
        text = build_parser(command).format_help()
        assert all(name in text for name in COMMANDS)
    assert "--tasks" in build_parser("run")._subparsers._group_actions[0].choices["run"].format_help()


def _kernels(recursive: bool = True) -> list[psutil.Process]:
    """Kernel processes of this test process (their command line names our runtime folder); not
    `recursive`: the launchers only (`inkagent.subreaper`), one a kernel, there from its start."""
    found = []
    for child in psutil.Process().children(recursive=recursive):
        try:
            if any("inkagent-kernel-" in part for part in child.cmdline()) and child.status() != psutil.STATUS_ZOMBIE:
                found.append(child)
        except psutil.NoSuchProcess:
            pass
    return found


def _config(tmp_path, interpreter: str = "{type: IPythonInterpreter, timeout_s: 20}"):
    path = tmp_path / "agent.yaml"
    path.write_text(f"llm: {{type: ScriptedLLM, responses: []}}\ninterpreter: {interpreter}\n")
    return load_config(path)


def _interpreter(agent) -> IPythonInterpreter:
    return next(iter(agent.interpreter_executor.actions.values()))


def test_the_kernel_starts_when_the_agent_is_built_and_the_first_call_uses_it(tmp_path):
    assert _kernels() == []
    agent = build_agent(_config(tmp_path))
    try:
        started = {p.pid for p in _kernels(recursive=False)}
        assert len(started) == 1  # launched before any call
        result = agent.interpreter_executor.run(
            ToolCall(kind="interpreter", name="IPythonInterpreter", arguments={"command": "x = 6 * 7\nx"})
        )
        assert result.output == "42"
        assert {p.pid for p in _kernels(recursive=False)} == started  # that kernel ran it, no new one
    finally:
        agent.close()
    assert _kernels() == []


def test_given_a_model_the_agent_starts_no_kernel_until_the_first_call(tmp_path):
    agent = build_agent(_config(tmp_path), llm=ScriptedLLM([]))  # a batch's agents share one loaded model
    try:
        assert _kernels() == []
    finally:
        agent.close()


def test_closing_an_agent_whose_kernel_is_still_starting_leaves_no_kernel(tmp_path):
    agent = build_agent(_config(tmp_path))
    agent.close()
    assert _kernels() == []
    assert _interpreter(agent).kernel_pid is None


def test_a_kernel_that_fails_to_start_is_reported_by_the_first_call_and_the_next_tries_again(tmp_path):
    interpreter = IPythonInterpreter(memory_limit_mb=1, work_dir=tmp_path)  # too little to start Python
    try:
        interpreter.start()
        call = ToolCall(kind="interpreter", name="IPythonInterpreter", arguments={"command": "1 + 1"})
        from inkagent.actions import ActionExecutor

        executor = ActionExecutor([interpreter], timeout_s=None)
        first = executor.run(call)
        assert first.error_type == "tool_error" and "failed to start" in first.error
        interpreter.memory_limit_mb = None
        assert executor.run(call).output == "2"  # a fresh start, not the stored error again
    finally:
        interpreter.close()
    assert _kernels() == []


def test_a_tool_without_time_limit_runs_on_the_calling_thread_and_one_with_a_limit_does_not():
    from inkagent.actions import ActionExecutor, tool

    @tool
    def where() -> str:
        """The name of the thread running this call, after printing it."""
        import threading

        print("on", threading.current_thread().name)
        return threading.current_thread().name

    import threading

    call = ToolCall(name="where", arguments={})
    inline = ActionExecutor([where], timeout_s=None).run(call)
    assert inline.output == f"on {threading.current_thread().name}\n{threading.current_thread().name}"
    limited = ActionExecutor([where], timeout_s=30).run(call)
    assert limited.ok and limited.output.endswith("inkagent-call")  # a pooled worker; its print is still captured
    assert limited.output.startswith("on inkagent-call")


def test_num_threads_sets_torch_threads_and_a_bad_value_is_named(tiny_model_dir):
    import pytest
    import torch

    from inkagent.errors import LLMError
    from inkagent.llms import HFTransformer

    with pytest.raises(LLMError, match="num_threads must be a positive whole number, not 0"):
        HFTransformer(path=str(tiny_model_dir), device="cpu", num_threads=0)
    before = torch.get_num_threads()
    try:
        llm = HFTransformer(path=str(tiny_model_dir), device="cpu", num_threads=1, max_new_tokens=2)
        assert torch.get_num_threads() == 1
        assert isinstance(llm.generate("hello"), str)
    finally:
        torch.set_num_threads(before)
