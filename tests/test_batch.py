"""`inkagent run CONFIG --tasks FILE.jsonl`: many tasks, one result line each, resumable after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run_cli

CALL_RECORD = (
    "Let me write that down.<|action_start|><|plugin|>\n"
    '{"name": "record", "parameters": {"note": "seen"}}<|action_end|>\n'
)


@pytest.fixture
def batch(tmp_path):
    """A config whose tool appends a line to calls.log (a side effect to count), and 8 tasks."""
    calls = tmp_path / "calls.log"
    (tmp_path / "record_tool.py").write_text(f'''\
from inkagent.actions import tool


@tool
def record(note: str) -> str:
    """Write a note down.

    Args:
        note: the note
    """
    with open({str(calls)!r}, "a") as log:
        log.write(note + "\\n")
    return "written"
''')
    config = tmp_path / "config.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "llm": {
                    "type": "ScriptedLLM",
                    "responses": [CALL_RECORD, "Written down, all done.<|im_end|>"],
                    "delay_s": 0.02,
                    "chunk_size": 8,
                },
                "actions": ["./record_tool.py:record"],
            }
        )
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        "".join(json.dumps({"id": f"t{i}", "task": f"task number {i}"}) + "\n" for i in range(8))
    )
    return config, tasks, calls


def results(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def count_lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.exists() else 0


def start_batch(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "inkagent", "run", *args],
        cwd=cwd,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )


def wait_for_results(process: subprocess.Popen, count: int) -> list[str]:
    """Read the progress lines (one per finished task) until `count` tasks have finished."""
    seen = []
    for line in process.stderr:
        if line.startswith("[") and ": answered" in line:
            seen.append(line)
            if len(seen) == count:
                return seen
    raise AssertionError(f"the batch ended after {len(seen)} results; rc {process.wait()}")


def test_a_killed_batch_resumes_without_redoing_finished_tasks(tmp_path, batch):
    config, tasks, calls = batch
    out = tmp_path / "out.jsonl"
    process = start_batch(
        str(config), "--tasks", str(tasks), "--out", str(out), "--concurrency", "2", cwd=tmp_path
    )
    try:
        wait_for_results(process, 3)
        process.send_signal(signal.SIGKILL)  # no chance to clean up
        process.wait(20)
    finally:
        process.kill()
        process.stderr.close()
    finished = {r["id"] for r in results(out)}
    assert 3 <= len(finished) < 8, "the kill came too late to test resuming"
    calls_before = count_lines(calls)

    proc = run_cli("run", str(config), "--tasks", str(tasks), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    lines = results(out)
    assert sorted(r["id"] for r in lines) == [f"t{i}" for i in range(8)]  # each task exactly once
    assert count_lines(calls) - calls_before == 8 - len(finished)  # the finished ones did not run again
    for record in lines:
        assert record["state"] == "answered" and record["answer"] == "Written down, all done."
        assert record["tool_calls"][0]["name"] == "record" and record["task"].startswith("task number")
        assert record["duration_s"] > 0
    for task_id in finished:  # one run in each finished task's trace
        trace = [
            json.loads(line) for line in Path(next(r for r in lines if r["id"] == task_id)["trace"]).open()
        ]
        assert [r["type"] for r in trace].count("user") == 1
    assert f"{len(finished)} already in {out}" in proc.stderr


def test_ctrl_c_stops_the_batch_keeping_only_whole_results(tmp_path, batch):
    config, tasks, calls = batch
    # a slower model: the six tasks left must still be running when Ctrl-C comes, even on a busy machine
    settings = yaml.safe_load(config.read_text())
    settings["llm"]["delay_s"] = 0.1
    config.write_text(yaml.safe_dump(settings))
    out = tmp_path / "out.jsonl"
    process = start_batch(
        str(config), "--tasks", str(tasks), "--out", str(out), "--concurrency", "2", cwd=tmp_path
    )
    try:
        wait_for_results(process, 2)
        process.send_signal(signal.SIGINT)
        rest = process.stderr.read()
        assert process.wait(20) == 130
    finally:
        process.kill()
        process.stderr.close()
    assert "interrupted" in rest
    lines = results(out)
    assert 2 <= len(lines) < 8 and all(r["state"] == "answered" for r in lines)  # no "cancelled" lines
    proc = run_cli("run", str(config), "--tasks", str(tasks), "--out", str(out), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert sorted(r["id"] for r in results(out)) == [f"t{i}" for i in range(8)]


def test_failed_lines_are_retried_final_ones_skipped_and_a_torn_line_cut(tmp_path, batch):
    config, tasks, calls = batch
    out = tmp_path / "out.jsonl"
    done = [
        {"id": "t0", "state": "answered"},
        {"id": "t1", "state": "max_turn"},
        {"id": "t2", "state": "llm_error"},
    ]
    torn = '{"id": "t3", "state": "ans'  # the line being written when a run was killed
    out.write_text("".join(json.dumps(r) + "\n" for r in done) + torn)
    proc = run_cli(
        "run", str(config), "--tasks", str(tasks), "--out", str(out), "--concurrency", "3", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    lines = results(out)  # every line is JSON again: the torn one was cut
    assert [r["id"] for r in lines[:3]] == ["t0", "t1", "t2"]
    assert sorted(r["id"] for r in lines[3:]) == ["t2", "t3", "t4", "t5", "t6", "t7"]
    assert count_lines(calls) == 6
    assert "2 of 8 tasks already done" in proc.stderr


def test_every_task_gets_a_line_and_a_batch_with_unanswered_tasks_exits_1(tmp_path):
    config = tmp_path / "config.yaml"
    call = '<|action_start|><|plugin|>\n{"name": "missing_tool", "parameters": {}}<|action_end|>\n'
    config.write_text(
        yaml.safe_dump(
            {"llm": {"type": "ScriptedLLM", "responses": [call], "cycle": True}, "agent": {"max_turn": 2}}
        )
    )
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        '{"id": "only", "task": "call something"}\n\n{"task": "no id: the line number is used"}\n'
    )
    proc = run_cli("run", str(config), "--tasks", str(tasks), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    lines = results(tmp_path / "tasks.results.jsonl")  # the default --out, next to the tasks
    assert sorted(r["id"] for r in lines) == ["3", "only"]
    assert {r["state"] for r in lines} <= {"repeated_failure", "max_turn"}
    assert all(Path(r["trace"]).parent == tmp_path / "tasks.results.traces" for r in lines)
    assert "0 answered, 2 without an answer" in proc.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"id": 1, "task": "a"}\n{"id": 1, "task": "b"}\n', "line 2: id '1' is also on line 1"),
        ('{"id": 1, "task": "a"}\n{"id": 2\n', "line 2: not valid JSON"),
        ('{"id": 1, "prompt": "a"}\n', 'line 1: needs a "task" string'),
    ],
)
def test_a_bad_tasks_file_names_the_line(tmp_path, content, message):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(content)
    proc = run_cli("run", str(ROOT / "configs" / "scripted.yaml"), "--tasks", str(tasks), cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "tasks.results.jsonl").exists()


def test_a_config_that_cannot_build_an_agent_stops_the_batch_at_once(tmp_path, batch):
    config, tasks, calls = batch
    data = yaml.safe_load(config.read_text())
    data["actions"] = ["./no_such_file.py:record"]
    config.write_text(yaml.safe_dump(data))
    proc = run_cli("run", str(config), "--tasks", str(tasks), "--concurrency", "4", cwd=tmp_path)
    assert proc.returncode == 2 and "no_such_file.py" in proc.stderr and "Traceback" not in proc.stderr
    assert count_lines(tmp_path / "tasks.results.jsonl") == 0
