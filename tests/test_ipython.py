"""IPythonInterpreter on real Jupyter kernels: state, limits, isolation, figures, and no orphan kernels."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
import threading

import psutil
import pytest

from inkagent.actions import ActionExecutor, IPythonInterpreter
from inkagent.agents import Internlm2Agent
from inkagent.llms import ScriptedLLM
from inkagent.runners.config import build_agent, load_config
from inkagent.schema import ToolCall


def our_kernels() -> list[psutil.Process]:
    """Kernel processes started by this test process (their command line names our runtime folder)."""
    kernels = []
    for child in psutil.Process().children(recursive=True):
        try:
            if any("inkagent-kernel-" in part for part in child.cmdline()):
                kernels.append(child)
        except psutil.NoSuchProcess:
            pass
    return kernels


@pytest.fixture(scope="module", autouse=True)
def no_kernel_outlives_the_module():
    yield
    gc.collect()  # interpreters a test dropped without close() are finalized here
    leftover = our_kernels()
    assert not leftover, f"kernels still running: {[p.pid for p in leftover]}"


@pytest.fixture(scope="module")
def shared():
    """One interpreter for the tests that do not restart or break their kernel."""
    with IPythonInterpreter(timeout_s=20) as interpreter:
        yield interpreter


def test_state_persists_between_calls(shared):
    assert shared.run("x = 41").ok
    result = shared.run("x + 1")
    assert result.ok and result.output == "42"


def test_output_streams_results_and_tracebacks_arrive_in_order(shared):
    code = textwrap.dedent("""\
        import sys
        for i in range(3):
            print("out", i)
            print("err", i, file=sys.stderr)
        display("shown")
        1 / 0
        """)
    result = shared.run(code)
    assert not result.ok and result.error_type == "tool_error"
    lines = result.error.splitlines()
    assert lines[:7] == ["out 0", "err 0", "out 1", "err 1", "out 2", "err 2", "'shown'"]
    assert "ZeroDivisionError" in result.error and "\x1b[" not in result.error  # ANSI colours stripped
    assert "1 / 0" in result.error  # the traceback shows the failing line


def test_fenced_code_from_lagent_callers_runs(shared):
    assert shared.run("```python\nprint('fenced')\n```").output == "fenced"


def test_input_and_shell_escapes_are_disabled(shared):
    assert "input() is disabled" in shared.run("input('your name?')").error
    for code in ("!echo hi", "files = !ls", "%system echo hi", "%%bash\necho hi\n", "%pip install requests"):
        result = shared.run(code)
        assert not result.ok and "shell commands" in result.error and "disabled" in result.error, code
        assert "\nhi" not in result.error


def test_long_output_is_cut_with_a_note_keeping_both_ends(shared):
    result = shared.run("for i in range(100_000): print('line', i)")
    assert result.ok
    assert len(result.output) <= shared.max_output_chars
    assert result.output.startswith("line 0\nline 1\n") and result.output.endswith("line 99999")
    assert "output cut" in result.output


def test_matplotlib_figure_comes_back_as_a_png_file(shared):
    pytest.importorskip("matplotlib")
    result = shared.run("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\nplt.title('squares')")
    assert result.ok, result.error
    assert len(result.files) == 1
    path = shared.work_dir / result.files[0].rsplit("/", 1)[-1]
    assert str(path) == result.files[0]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"[image]({path})" in result.text()


def test_code_runs_in_the_working_directory(tmp_path):
    work_dir = tmp_path / "session"
    with IPythonInterpreter(work_dir=work_dir) as interpreter:
        assert interpreter.run("open('notes.txt', 'w').write('hi')").ok
        assert (work_dir / "notes.txt").read_text() == "hi"
    assert work_dir.is_dir()  # a folder the user named is kept


def test_time_limit_interrupts_and_the_next_call_works():
    with IPythonInterpreter(timeout_s=2) as interpreter:
        interpreter.run("kept = 'yes'")
        pid = interpreter.kernel_pid
        result = interpreter.run("print('started')\nwhile True: pass")
        assert result.error_type == "timeout"
        assert "did not finish within 2 s" in result.error and "started" in result.error
        assert "KeyboardInterrupt" not in result.error  # our own interrupt is not the model's bug
        after = interpreter.run("print(kept)")
        assert after.ok and after.output == "yes" and interpreter.kernel_pid == pid


def test_code_that_ignores_the_interrupt_gets_a_fresh_kernel():
    code = "import time\nwhile True:\n    try:\n        time.sleep(60)\n    except KeyboardInterrupt:\n        pass"
    with IPythonInterpreter(timeout_s=1, interrupt_grace_s=1) as interpreter:
        interpreter.run("lost = 1")
        result = interpreter.run(code)
        assert result.error_type == "timeout" and "kernel was restarted" in result.error
        after = interpreter.run("print('lost' in globals())")
        assert after.ok and after.output == "False"


def test_memory_bomb_is_reported_and_the_kernel_restarts():
    with IPythonInterpreter(memory_limit_mb=512) as interpreter:
        interpreter.run("before = 1")
        first_pid = interpreter.kernel_pid
        result = interpreter.run("hoard = []\nwhile True:\n    hoard.append(bytearray(10**7))")
        assert not result.ok
        assert "MemoryError" in result.error and "512 MB" in result.error and "restarted" in result.error
        after = interpreter.run("print('before' in globals())")
        assert after.ok and after.output == "False"
        assert interpreter.kernel_pid != first_pid


def test_a_dead_kernel_is_reported_and_replaced():
    with IPythonInterpreter() as interpreter:
        result = interpreter.run("import os\nos._exit(3)")
        assert not result.ok and "kernel died" in result.error and "exit code 3" in result.error
        assert interpreter.run("print('alive')").output == "alive"


def test_two_sessions_do_not_share_variables_or_folders():
    with IPythonInterpreter() as first, IPythonInterpreter() as second:
        first.run("secret = 'first'")
        result = second.run("secret")
        assert not result.ok and "NameError" in result.error
        assert first.run("secret").output == "'first'"
        assert first.kernel_pid != second.kernel_pid and first.work_dir != second.work_dir


def test_calls_from_other_threads_work_and_time_out():
    outcomes = []
    with IPythonInterpreter(timeout_s=1) as interpreter:

        def worker():
            outcomes.append(interpreter.run("print(6 * 7)"))
            outcomes.append(interpreter.run("while True: pass"))

        thread = threading.Thread(target=worker)
        thread.start()
        thread.join(60)
    assert outcomes[0].output == "42" and outcomes[1].error_type == "timeout"


def test_close_stops_the_kernel_and_removes_its_temporary_folder():
    interpreter = IPythonInterpreter()
    interpreter.run("pass")
    kernel = psutil.Process(interpreter.kernel_pid)
    work_dir = interpreter.work_dir
    interpreter.close()
    assert not kernel.is_running() or kernel.status() == psutil.STATUS_ZOMBIE
    assert not work_dir.exists()
    assert interpreter.kernel_pid is None


def test_a_dropped_interpreter_takes_its_kernel_with_it():
    interpreter = IPythonInterpreter()
    interpreter.run("pass")
    kernel = psutil.Process(interpreter.kernel_pid)
    del interpreter
    gc.collect()
    gone, _ = psutil.wait_procs([kernel], timeout=10)
    assert gone


SCRIPT = """\
import sys
from inkagent.actions import IPythonInterpreter
interpreter = IPythonInterpreter()
interpreter.run("pass")
print(interpreter.kernel_pid, flush=True)
if sys.argv[1] == "hang":
    sys.stdin.read()  # until killed
"""


def test_no_kernel_outlives_a_process_that_exits_without_closing():
    proc = subprocess.run([sys.executable, "-c", SCRIPT, "exit"], capture_output=True, text=True, timeout=60)
    pid = int(proc.stdout.strip())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_no_kernel_outlives_a_killed_agent_process():
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, "hang"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    kernel = psutil.Process(int(proc.stdout.readline()))
    proc.kill()  # SIGKILL: no atexit, no finalizers; the kernel notices its parent is gone
    proc.wait()
    gone, _ = psutil.wait_procs([kernel], timeout=15)
    assert gone


def test_the_agent_runs_interpreter_calls_and_reads_the_result():
    llm = ScriptedLLM(
        [
            "<|action_start|><|interpreter|>\n```python\nprint(sum(range(1, 101)))\n```<|action_end|>\n",
            "The sum is 5050.<|im_end|>",
        ]
    )
    executor = ActionExecutor([IPythonInterpreter()], timeout_s=None)
    with Internlm2Agent(llm, interpreter_executor=executor) as agent:
        result = agent.chat("What is 1 + 2 + ... + 100?")
    assert result.response == "The sum is 5050."
    assert "<|im_start|>environment name=<|interpreter|>\n5050<|im_end|>" in llm.prompts[1]


def test_interpreter_section_of_a_config_builds_a_limited_interpreter(tmp_path):
    config_path = tmp_path / "agent.yaml"
    config_path.write_text(
        textwrap.dedent(f"""\
        llm: {{type: ScriptedLLM, responses: []}}
        interpreter: {{type: IPythonInterpreter, timeout_s: 5, memory_limit_mb: 1024, work_dir: {tmp_path / "wd"}}}
        """)
    )
    agent = build_agent(load_config(config_path))
    try:
        interpreter = next(iter(agent.interpreter_executor.actions.values()))
        assert isinstance(interpreter, IPythonInterpreter)
        assert (interpreter.timeout_s, interpreter.memory_limit_mb) == (5, 1024)
        result = agent.interpreter_executor.run(
            ToolCall(
                kind="interpreter", name="IPythonInterpreter", arguments={"command": "import os; os.getcwd()"}
            )
        )
        assert result.output == repr(str(tmp_path / "wd"))
    finally:
        agent.close()


def _wait_for(predicate, what: str, timeout_s: float = 30.0) -> None:
    """Poll `predicate` (a condition the test cannot be notified of) until true."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_interrupt_stops_running_code_and_keeps_the_session(tmp_path):
    with IPythonInterpreter(timeout_s=60, work_dir=tmp_path) as interpreter:
        interpreter.run("kept = 41")
        results = []
        code = "import time\nopen('started', 'w').close()\nwhile True: time.sleep(0.01)"
        worker = threading.Thread(target=lambda: results.append(interpreter.run(code)))
        worker.start()
        _wait_for(lambda: (tmp_path / "started").exists(), "the cell to start")
        interpreter.interrupt()  # once: the interpreter sees it through
        worker.join(30)
        assert not worker.is_alive(), "the interrupted cell did not stop"
        assert results[0].error_type == "interrupted" and "Interrupted" in results[0].error, results[0]
        assert interpreter.run("print(kept + 1)").output.strip() == "42"


def test_an_interrupt_just_before_the_cell_starts_is_an_interrupted_error():
    with IPythonInterpreter(timeout_s=60) as interpreter:
        interpreter.run("kept = 41")
        for _ in range(3):  # the interrupt lands at a different moment of the call's start each time
            results = []
            worker = threading.Thread(target=lambda out=results: out.append(interpreter.run("while True: pass")))
            worker.start()
            _wait_for(lambda out=results: interpreter.busy or out, "the call to start")
            interpreter.interrupt()
            worker.join(30)
            assert not worker.is_alive()
            assert results[0].error_type == "interrupted" and "interrupted" in results[0].error.lower()
        assert interpreter.run("kept").output == "41"


def test_an_interrupt_between_calls_does_nothing(shared):
    shared.interrupt()
    assert shared.run("print('fine')").output == "fine"


def test_secrets_in_the_agents_environment_do_not_reach_the_kernel(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-1234")
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws-secret")
    monkeypatch.setenv("MY_SETTING", "visible")
    with IPythonInterpreter(work_dir=tmp_path, env=["MY_SETTING"]) as interpreter:
        result = interpreter.run("import os\nprint(sorted(os.environ))\nprint(os.environ['HOME'])")
        assert result.ok
        for secret in ("OPENAI_API_KEY", "HF_TOKEN", "AWS_SECRET_ACCESS_KEY", "sk-secret"):
            assert secret not in result.output
        assert "MY_SETTING" in result.output and "PATH" in result.output
        assert result.output.splitlines()[-1] == str(tmp_path.resolve())
        assert interpreter.run("import matplotlib.pyplot, numpy; print('ok')").output == "ok"


def test_carriage_return_progress_is_rendered_as_a_terminal_shows_it(shared):
    result = shared.run("for i in range(2000):\n    print(f'\\rstep {i}', end='')\nprint()\nprint('done')")
    assert result.output == "step 1999\ndone"
    result = shared.run("import sys\nsys.stdout.write('abc\\b\\bX\\n'); sys.stdout.flush()")
    assert result.output.startswith("aXc")


def _sleepers() -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if "time.sleep(600)" in " ".join(process.info["cmdline"] or []):
            found.append(process)
    return found


def test_close_reaps_detached_and_double_forked_processes():
    interpreter = IPythonInterpreter()
    code = textwrap.dedent(
        """
        import os, subprocess, sys
        pids = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                 start_new_session=True).pid for _ in range(50)]
        child = os.fork()
        if child == 0:  # double fork: the grandchild's parent exits at once
            if os.fork() == 0:
                os.setsid()
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)"])
            os._exit(0)
        os.waitpid(child, 0)
        print(pids)
        """
    )
    try:
        result = interpreter.run(code)
        assert result.ok, result.error
        pids = [int(p) for p in result.output.strip("[]\n").split(", ")]
        _wait_for(lambda: len(_sleepers()) >= 51, "the double-forked process to start")
        launched = _sleepers()
    finally:
        interpreter.close()
    gone, alive = psutil.wait_procs(launched, timeout=10)
    alive = [p for p in alive if p.status() != psutil.STATUS_ZOMBIE]
    assert not alive and set(pids) <= {p.pid for p in gone}


def test_ctrl_c_on_the_calling_thread_stops_the_cell_too(tmp_path):
    import _thread

    with IPythonInterpreter(timeout_s=60, work_dir=tmp_path) as interpreter:
        interpreter.run("kept = 1")
        code = "import time\nopen('started', 'w').close()\nwhile True: time.sleep(0.01)"

        def press_ctrl_c() -> None:
            _wait_for(lambda: (tmp_path / "started").exists(), "the cell to start")
            _thread.interrupt_main()  # KeyboardInterrupt on the agent's (this) thread, as in the REPL

        threading.Thread(target=press_ctrl_c).start()
        with pytest.raises(KeyboardInterrupt):
            interpreter.run(code)
        after = interpreter.run("print(kept)")  # not queued behind a cell still looping in the kernel
        assert after.ok and after.output == "1"
