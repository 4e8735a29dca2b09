"""`inkagent run CONFIG`: run one task (or a file of tasks) and print the answer.

Exit codes: 0 the agent answered, 1 it did not reach an answer, 2 a bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

from ..errors import ConfigError, InkAgentError

CONFIG_HELP = """\
config keys (ready configs in configs/):
  llm          the model: {type: NAME or module:attr, ...its arguments}
                 ScriptedLLM       responses: [...], delay_s, cycle (offline, for tests and demos)
                 HFTransformer     path (hub id, or a directory: ./ and ../ are relative to the
                                   config), device (cuda, cpu, auto), dtype (auto,
                                   bfloat16, float16, float32), trust_remote_code, stop_words,
                                   max_new_tokens, temperature, top_p, top_k, meta_template,
                                   num_threads (CPU threads; 1 suits small models);
                                   InternLM2 loads natively (use_hub_code: true runs its hub code)
                 OpenAICompatible  base_url (with /v1; a list spreads requests over replicas), model,
                                   api_key_env (the NAME of the variable that holds the key; never
                                   the key itself), mode: completions | chat, timeout,
                                   total_timeout_s (per request, default 600), max_retries, max_retry_wait_s
                 OpenAICompatibleVision  a vision model on LMDeploy / vLLM (XComposer2, InternVL):
                                   base_url, model, prefill, api_key_env (for see / write configs)
  agent        {type: Internlm2Agent | ToolAgent | ChatAgent | module:attr, max_turn: 10, language: en | zh,
               protocol: internlm2 | openai | hermes | react (or {type: <name>, <its options>}),
               tool_timeout_s: 60, max_output_chars: 8000, meta_prompt, interpreter_prompt, plugin_prompt,
               generation: {temperature: ..., ...}}: the agent's own settings; generation options go
               under agent.generation or llm. An unknown key anywhere is an error naming the closest one.
  actions      a list: names (see `inkagent actions`), module:attr, ./file.py:attr (relative to the
               config), or {type: ..., its arguments}
  interpreter  {type: IPythonInterpreter, timeout_s: 20, memory_limit_mb, work_dir, env: [NAME, ...]};
               omit for no code interpreter. The kernel gets a minimal environment: only the variables
               named in env (or {NAME: value}) beyond PATH, locale and what Python needs
  mcp_servers  MCP servers whose tools become actions <name>.<tool>: a list of
               {name, command: [...], env: {...}} (stdio) or {name, url, headers_env: {HEADER: ENV_VAR}}
               (streamable HTTP); optional cwd, timeout_s, files_dir (relative to the config)
  task         the task when --task is not given
  trace        where the JSON-lines trace goes (default runs/<time>.trace.jsonl); see `inkagent trace show`

batch (--tasks FILE.jsonl): one JSON object per line, {"id": "q1", "task": "..."} (id defaults to the line
number). Each task runs on a fresh agent; a result line (id, task, answer, state, error, tool_calls,
duration_s, trace) is appended to --out (default FILE.results.jsonl) as each task ends, and traces go
to --trace DIR (default OUT.traces/). Rerunning skips the tasks already in --out, except those that
failed outside the agent (state llm_error or error), which are run again.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = CONFIG_HELP + (
        "\nexit codes: 0 answered (batch: every task run answered), 1 no answer reached, 2 bad config or"
        " usage, 130 interrupted"
    )
    parser.add_argument("config", help="YAML config file (see configs/)")
    parser.add_argument("--task", help="the task (default: the config's `task`)")
    parser.add_argument(
        "--trace", help="write the trace here (JSON lines); batch: a directory, one trace per task"
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument("--tasks", help="a JSONL file of tasks ({'id', 'task'} per line) to run as a batch")
    parser.add_argument(
        "--concurrency", type=int, default=1, help="batch: how many tasks run at once (default 1)"
    )
    parser.add_argument("--out", help="batch: the JSONL results file; tasks already in it are skipped")


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
    renderer = None if args.json else _task_renderer()
    try:
        outcome = run_task(agent, task, renderer=renderer)
    finally:
        if renderer is not None:
            renderer.close()
        close_agent(agent)
    outcome["trace"] = str(trace_path)
    if args.json:
        print(json.dumps(outcome, ensure_ascii=False))
    else:
        if not sys.stdout.isatty() and outcome["answer"]:
            print(outcome["answer"])  # the progress went to stderr; stdout gets the answer alone
        if outcome["state"] != "answered":
            print(f"no answer: {outcome['error'] or outcome['state']}", file=sys.stderr)
        print(f"trace: {trace_path}", file=sys.stderr)
    return 0 if outcome["state"] == "answered" else 1


def _task_renderer():
    """Where `inkagent run` shows the run: the terminal when stdout is one, else stderr, so that a
    pipe or a file gets the answer alone."""
    from .render import EventRenderer

    if sys.stdout.isatty():
        return EventRenderer(sys.stdout)
    # stdout gets the answer; a terminal on stderr still streams it, a log shows it only once
    return EventRenderer(sys.stderr, summary=False, show_answer=sys.stderr.isatty())


def run_task(agent, task: str, *, renderer=None, stop: threading.Event | None = None) -> dict:
    """Run one task to the end; return answer, state, tool calls, error and duration.

    Args:
        renderer: an `EventRenderer` that shows the events as they come (none: silent).
        stop: when set, the run is cancelled at its next event (state "cancelled").
    """
    from ..schema import AgentError, FinalAnswer, ToolResult

    started = time.perf_counter()
    answer, state, error, calls = "", "cancelled", None, []
    stream = agent.stream(task)
    try:
        for event in stream:
            if stop is not None and stop.is_set():
                break
            if renderer is not None:
                renderer.render(event)
            if isinstance(event, ToolResult):
                calls.append(
                    {
                        "name": event.call.name,
                        "arguments": event.call.arguments,
                        "ok": event.result.ok,
                        "output": event.result.text()[:2000],
                        "duration_s": round(event.result.duration_s, 3),
                    }
                )
            elif isinstance(event, AgentError):
                error = event.message
            elif isinstance(event, FinalAnswer):
                answer, state = event.text, event.state.value
    finally:
        stream.close()  # a run left early (stop, Ctrl-C) is rolled back by the agent
    return {
        "task": task,
        "answer": answer,
        "state": state,
        "error": None if state == "answered" else error,
        "tool_calls": calls,
        "duration_s": round(time.perf_counter() - started, 3),
    }


def close_agent(agent) -> None:
    """Release what an agent holds (kernels, trace files); skill agents may hold nothing."""
    close = getattr(agent, "close", None)
    if callable(close):
        close()
