"""`inkagent run CONFIG`: run one task (or a file of tasks) and print the answer.

Exit codes: 0 the agent answered, 1 it did not reach an answer, 2 a bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ..errors import ConfigError, InkAgentError

CONFIG_HELP = """\
config keys:
  llm          the model: {type: ScriptedLLM | HFTransformer | OpenAICompatible | module:attr, ...its arguments}
  agent        {type: Internlm2Agent, max_turn: 10, language: en|zh, tool_timeout_s: 60, max_output_chars: 8000,
               meta_prompt, interpreter_prompt, plugin_prompt}
  actions      list of names (see `inkagent actions`), module:attr, ./file.py:attr, or {type: ..., args}
  interpreter  {type: IPythonInterpreter, timeout_s: 20, ...}; omit for no code interpreter
  task         the task when --task is not given
  trace        where the JSON-lines trace goes (default runs/<time>.trace.jsonl)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = CONFIG_HELP + "\nexit codes: 0 answered, 1 no answer reached, 2 bad config or usage"
    parser.add_argument("config", help="YAML config file (see configs/)")
    parser.add_argument("--task", help="the task (default: the config's `task`)")
    parser.add_argument("--trace", help="write the trace here (JSON lines)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--tasks", help="a JSONL file of tasks ({'id', 'task'} per line) to run as a batch")
    parser.add_argument("--concurrency", type=int, default=1, help="batch: tasks run at once")
    parser.add_argument("--out", help="batch: JSONL results file (tasks already in it are skipped)")


def default_trace_path() -> Path:
    return Path("runs") / (time.strftime("%Y%m%d-%H%M%S") + f"-{time.time_ns() % 10**6:06d}.trace.jsonl")


def run(args: argparse.Namespace) -> int:
    from .config import build_agent, load_config

    try:
        config = load_config(args.config)
        if args.tasks:
            from .batch import run_batch

            return run_batch(config, args)
        task = args.task or config.task
        if not task:
            raise ConfigError("no task: give --task TEXT or a `task:` key", path=args.config, key="task")
        trace_path = Path(args.trace or config.trace or default_trace_path())
        agent = build_agent(config, trace=trace_path)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        outcome = run_task(agent, task, echo=not args.json)
    finally:
        agent.close()
    outcome["trace"] = str(trace_path)
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False))
    else:
        if outcome["state"] != "answered":
            print(f"no answer: {outcome['error'] or outcome['state']}", file=sys.stderr)
        print(f"trace: {trace_path}", file=sys.stderr)
    return 0 if outcome["state"] == "answered" else 1


def run_task(agent, task: str, *, echo: bool = False) -> dict:
    """Run one task to the end; return answer, state, tool calls, error and duration."""
    from ..schema import AgentError, FinalAnswer, ToolCallStarted, ToolResult

    started = time.perf_counter()
    answer, state, error, calls = "", "cancelled", None, []
    for event in agent.stream(task):
        if isinstance(event, ToolCallStarted) and echo:
            args = json.dumps(event.call.arguments, ensure_ascii=False)
            print(f"→ {event.call.name} {args}", file=sys.stderr)
        elif isinstance(event, ToolResult):
            calls.append({"name": event.call.name, "arguments": event.call.arguments, "ok": event.result.ok,
                          "output": event.result.text()[:2000], "duration_s": round(event.result.duration_s, 3)})
            if echo:
                mark = "←" if event.result.ok else "✗"
                print(f"{mark} {_one_line(event.result.text())}", file=sys.stderr)
        elif isinstance(event, AgentError):
            error = event.message
            if echo and event.kind == "parse_error":
                print(f"✗ malformed call: {_one_line(event.message)}", file=sys.stderr)
        elif isinstance(event, FinalAnswer):
            answer, state = event.text, event.state.value
            if echo and answer:
                print(answer)
    return {"task": task, "answer": answer, "state": state, "error": None if state == "answered" else error,
            "tool_calls": calls, "duration_s": round(time.perf_counter() - started, 3)}


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
