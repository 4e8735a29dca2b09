"""Per-turn overhead of the agent loop: lagent 0.2.4's Internlm2Agent vs inkagent's, in one process.

Both agents get the same instant model (a scripted 3-turn task: two plugin calls, then an answer), the
same 20 lagent toolkits in the prompt, and do the same work per turn: format the prompt, parse the
output, run the call, record the step. Overhead = wall time per turn minus the model's own time (the
instant model's rendering of the prompt with the meta template, measured and subtracted for both).

The protocols' own share is printed for each of the four (`inkagent.protocols`): per turn, format the
request with the same 40 APIs, parse the same task's output written in that protocol (streamed in 8
pieces), and render the call and its result back.

    python benchmarks/agent_overhead.py [--runs 300]

With `--history 8,80,200,400`: the per-turn overhead of one session continued with strings
(`agent.chat("...")` again and again) with that many messages already in its history, for each
protocol, each against the first length (goal for the text protocols: the longest within 1.2x of the
shortest). The history is made by running the same task until it is long enough; after each measured
task the session is cut back to its length (`del agent.memory[n:]`, which leaves the rest as it was).

    python benchmarks/agent_overhead.py --history 8,80,200,400 [--runs 300]

With `--request-body 8,400`: what building an OpenAI chat request costs (`OpenAICompatible._payload`
and the body's bytes) in a session continued with a new message, at each history length, for
this checkout (per-message JSON kept across requests) and for `--baseline` (`openai_compat.py` as it
was there, loaded beside the new one; its body is the whole payload encoded as httpx does for `json=`),
timed in alternating blocks. The history is the `openai` protocol's messages for the same task (tool
calls, tool results with Chinese text, with the 40 APIs as `tools`).

    python benchmarks/agent_overhead.py --request-body 8,400 [--runs 300] [--baseline 09cbbe9]
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

from lagent.actions import ActionExecutor as LagentExecutor
from lagent.actions import BaseAction, tool_api
from lagent.agents.internlm2_agent import Internlm2Agent as LagentAgent
from lagent.agents.internlm2_agent import Internlm2Protocol as LagentProtocol

from inkagent.actions import ActionExecutor
from inkagent.agents import Internlm2Agent, ToolAgent
from inkagent.llms import OpenAICompatible
from inkagent.llms.base import LLM
from inkagent.llms.openai_body import encode_body
from inkagent.protocols import get_protocol
from inkagent.protocols.base import openai_delta
from inkagent.schema import ActionResult, Message, ToolCall, ToolCallDelta

N_TOOLS = 20
TURNS = 3


def make_toolkit(index: int) -> BaseAction:
    def lookup(self, query: str, limit: int = 3) -> str:
        """Look something up.

        Args:
            query (str): what to look up
            limit (int): how many results
        """
        return f"tool {index}: {limit} results for {query}"

    def count(self, text: str) -> int:
        """Count characters.

        Args:
            text (str): the text
        """
        return len(text)

    cls = type(f"BenchTool{index}", (BaseAction,), {
        "__doc__": f"Benchmark toolkit number {index}.",
        "lookup": tool_api(lookup),
        "count": tool_api(count),
    })
    return cls()


class InstantLLM(LLM):
    """Answers from a script at once (one chunk). Its own time (rendering the prompt with the meta
    template, as a real backend does) is counted in `spent` and subtracted: it is the model's, not the agent's."""

    def __init__(self, responses: list[str]):
        super().__init__(path="instant")
        self.responses, self.i, self.spent = responses, 0, 0.0

    def _next(self, inputs) -> str:
        start = time.perf_counter()
        self.render(inputs)
        response = self.responses[self.i % len(self.responses)]
        self.i += 1
        self.spent += time.perf_counter() - start
        return response

    def stream_text(self, inputs, **gen_params):
        yield self._next(inputs)

    def chat(self, inputs, **gen_params):  # lagent's agent calls chat()
        return self._next(inputs)


class InstantChatLLM(InstantLLM):
    """`InstantLLM` as a chat API answering with native tool calls (for the `openai` protocol): each
    response is (text, tool-call deltas). Its own time (none to render: the messages are sent) is 0."""

    mode = "chat"

    def __init__(self, responses: list[tuple[str, list]]):
        super().__init__([])
        self.responses = responses

    def stream_deltas(self, inputs, **gen_params):
        text, deltas = self.responses[self.i % len(self.responses)]
        self.i += 1
        if text:
            yield text
        yield from deltas


def script() -> list[str]:
    def call(tool: int) -> str:
        body = json.dumps({"name": f"BenchTool{tool}.lookup", "parameters": {"query": "agents", "limit": 2}})
        return f"Let me look.<|action_start|><|plugin|>\n{body}<|action_end|>\n"

    return [call(3), call(7), "Here is the answer."]


def per_turn_us(runners: list, runs: int) -> list[float]:
    """Median µs per turn of each runner; blocks of runs alternate so machine load affects all alike."""
    for run_once in runners:
        for _ in range(20):  # warm up
            run_once()
    samples: list[list[float]] = [[] for _ in runners]
    block = 25
    for _ in range(max(1, runs // block)):
        for run_once, out in zip(runners, samples, strict=True):
            gc.collect()  # each block starts clean: one agent's garbage must not be collected in another's time
            for _ in range(block):
                llm = run_once.llm
                start, model_s = time.perf_counter(), llm.spent
                run_once()
                agent_s = time.perf_counter() - start - (llm.spent - model_s)
                out.append(agent_s / TURNS * 1e6)
    return [statistics.median(out) for out in samples]


def protocol_task(protocol, executor: ActionExecutor, text: str, native: list[ToolCallDelta]) -> None:
    """One task's protocol work: per turn, format the request, parse the streamed output, render back."""
    history = [Message(role="user", content="find papers about agents")]
    step = max(1, len(text) // 8)
    for _ in range(TURNS):
        protocol.request(history, executor)
        parser = protocol.stream_parser()
        for start in range(0, len(text), step):
            parser.feed(text[start : start + step])
        for delta in native:
            parser.feed(delta)
        parser.close()
        turn = parser.result()
        history.append(protocol.assistant_message(text, turn))
        history += [protocol.format_result(c, RESULT) for c in turn.calls]


RESULT = ActionResult(name="BenchTool3.lookup", output="tool 3: 2 results for agents")


def protocol_us(executor: ActionExecutor, runs: int) -> dict[str, float]:
    """Median µs per turn of each protocol's own work (see `protocol_task`)."""
    figures = {}
    call = ToolCall(name="BenchTool3.lookup", arguments={"query": "agents", "limit": 2})
    for key in ("internlm2", "openai", "hermes", "react"):
        protocol = get_protocol(key)
        history = [Message(role="user", content="q"), Message(role="assistant", content="Let me look.", tool_calls=[call])]
        written = protocol.request(history, executor).messages[-1]  # the output, as this protocol writes it
        native = [openai_delta(c, i) for i, c in enumerate(written.get("tool_calls") or [])]
        text = written.get("content") or ""
        samples = []
        for _ in range(max(20, runs)):
            start = time.perf_counter()
            protocol_task(protocol, executor, text, native)
            samples.append((time.perf_counter() - start) / TURNS * 1e6)
        figures[key] = statistics.median(samples)
    return figures


def protocol_script(name: str, executor: ActionExecutor) -> InstantLLM:
    """The benchmark's task (two calls, then the answer) as a model speaking protocol `name` writes it."""
    protocol = get_protocol(name)
    outputs = []
    for tool in (3, 7):
        call = ToolCall(name=f"BenchTool{tool}.lookup", arguments={"query": "agents", "limit": 2}, id=f"call_{tool}")
        history = [Message(role="user", content="q"), Message(role="assistant", content="Let me look.", tool_calls=[call])]
        written = protocol.request(history, executor).messages[-1]
        outputs.append((written.get("content") or "", [openai_delta(c, i) for i, c in enumerate(written.get("tool_calls") or [])]))
    answer = "Final Answer: Here is the answer." if name == "react" else "Here is the answer."
    if name == "openai":
        return InstantChatLLM([*outputs, (answer, [])])
    return InstantLLM([text for text, _ in outputs] + [answer])


def history_runner(tools: list[BaseAction], name: str, length: int):
    """A task continuing a session (protocol `name`) that holds `length` messages; cut back after each."""
    executor = ActionExecutor(tools, timeout_s=None)
    llm = protocol_script(name, executor)
    agent = ToolAgent(llm=llm, plugin_executor=executor, protocol=get_protocol(name), max_turn=TURNS)
    while len(agent.memory) < length:
        agent.chat("find papers about agents")
    del agent.memory[length:]

    def run_continued() -> None:
        result = agent.chat("find papers about agents")
        assert result.response == "Here is the answer." and len(result.actions) == 2, result
        del agent.memory[length:]

    run_continued.llm = llm
    return run_continued


def main_history(tools: list[BaseAction], lengths: list[int], runs: int) -> None:
    print(f"per-turn overhead of a session continued with strings ({N_TOOLS * 2} APIs in the prompt, "
          f"{TURNS} turns a task, median of {runs} tasks):")
    for name in ("internlm2", "hermes", "react", "openai"):
        overheads = per_turn_us([history_runner(tools, name, length) for length in lengths], runs)
        figures = "  ".join(f"{n}: {us:6.1f} µs {us / overheads[0]:4.2f}x" for n, us in zip(lengths, overheads, strict=True))
        print(f"  {name:10s} {figures}")
    print(f"goal (text protocols): {lengths[-1]} messages within 1.2x of {lengths[0]}")


#: main before per-message JSON (issue 19): every chat request body encoded whole
BODY_BASELINE = "09cbbe9"


def baseline_openai_class(ref: str) -> type:
    """`OpenAICompatible` of `inkagent/llms/openai_compat.py` at git `ref`, as a module beside the new one."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "-C", str(root), "show", f"{ref}:inkagent/llms/openai_compat.py"],
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("inkagent.llms._openai_compat_baseline")
    module.__package__ = "inkagent.llms"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{ref}:inkagent/llms/openai_compat.py", "exec"), module.__dict__)  # noqa: S102
    return module.OpenAICompatible


def main_request_body(tools: list[BaseAction], lengths: list[int], runs: int, baseline: str) -> None:
    executor = ActionExecutor(tools, timeout_s=None)
    protocol = get_protocol("openai")
    call = ToolCall(name="BenchTool3.lookup", arguments={"query": "智能体 agents", "limit": 2}, id="call_0")
    result = ActionResult(name="BenchTool3.lookup", call_id="call_0", output=json.dumps(
        [{"title": f"论文 {i}: agents that use tools", "summary": "智能体调用工具。" * 12} for i in range(3)],
        ensure_ascii=False))
    history = [Message(role="user", content="find papers about agents")]
    while len(history) < max(lengths):
        history.append(Message(role="assistant", content="我先查一下。", tool_calls=[call]))
        history.append(protocol.format_result(call, result))
        history.append(Message(role="assistant", content="Here is the answer."))
        history.append(Message(role="user", content="find papers about agents"))
    kinds = {"old": baseline_openai_class(baseline), "new": OpenAICompatible}

    def runner(kind: str, length: int):
        llm = kinds[kind](model="m", mode="chat")
        old = kind == "old"
        session = history[:length]

        def run_once() -> float:
            session.append(Message(role="user", content="and then?"))  # the session continued
            request = protocol.request(session, executor)
            params = request.gen_params()
            start = time.perf_counter()
            payload, _ = llm._payload(request.messages, params, stream=True)
            body = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode() \
                if old else encode_body(payload)  # old: httpx's encoding of `json=payload`
            spent = time.perf_counter() - start
            del session[length:]
            assert body
            return spent

        return run_once

    keys = [(kind, n) for n in lengths for kind in kinds]
    runners = {key: runner(*key) for key in keys}
    for run_once in runners.values():
        for _ in range(20):
            run_once()
    samples: dict[tuple[str, int], list[float]] = {key: [] for key in keys}
    for _ in range(max(1, runs // 25)):
        for key, run_once in runners.items():
            gc.collect()
            samples[key] += [run_once() for _ in range(25)]
    us = {key: statistics.median(values) * 1e6 for key, values in samples.items()}
    print(f"building an OpenAI chat request (payload + body bytes), a session continued with one new message; "
          f"{N_TOOLS * 2} APIs as tools; baseline {baseline}; median of {runs}:")
    for n in lengths:
        print(f"  {n:4d} messages: old {us['old', n]:8.1f} µs   new {us['new', n]:8.1f} µs   "
              f"new/old {us['new', n] / us['old', n]:5.2f}x")
    first, last = lengths[0], lengths[-1]
    print(f"  {last} vs {first} messages: old {us['old', last] / us['old', first]:5.2f}x   "
          f"new {us['new', last] / us['new', first]:5.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--history", metavar="N,N,...", help="history lengths of a continued session")
    parser.add_argument("--request-body", metavar="N,N,...", help="OpenAI chat request building at these lengths")
    parser.add_argument("--baseline", default=BODY_BASELINE, help="git ref of the old OpenAICompatible (--request-body)")
    args = parser.parse_args()
    logging.disable(logging.CRITICAL)
    tools = [make_toolkit(i) for i in range(N_TOOLS)]
    if args.request_body:
        main_request_body(tools, [int(n) for n in args.request_body.split(",")], args.runs, args.baseline)
        return
    if args.history:
        main_history(tools, [int(n) for n in args.history.split(",")], args.runs)
        return

    lagent_llm = InstantLLM(script())
    lagent_agent = LagentAgent(llm=lagent_llm, plugin_executor=LagentExecutor(actions=tools),
                               protocol=LagentProtocol(), max_turn=TURNS)

    def run_lagent() -> None:
        result = lagent_agent.chat("find papers about agents")
        assert result.response == "Here is the answer.", result

    run_lagent.llm = lagent_llm

    def inkagent_runner(timeout_s: float | None):
        llm = InstantLLM(script())
        agent = Internlm2Agent(llm=llm, plugin_executor=ActionExecutor(tools, timeout_s=timeout_s), max_turn=TURNS)

        def run_inkagent() -> None:
            agent.reset()
            result = agent.chat("find papers about agents")
            assert result.response == "Here is the answer." and len(result.actions) == 2, result

        run_inkagent.llm = llm
        return run_inkagent

    lagent_us, same_us, limited_us = per_turn_us([run_lagent, inkagent_runner(None), inkagent_runner(60.0)], args.runs)
    print(f"tools in prompt: {N_TOOLS * 2} APIs from {N_TOOLS} toolkits; turns per task: {TURNS}; runs: {args.runs}")
    print(f"lagent 0.2.4 Internlm2Agent:                 {lagent_us:8.1f} µs per turn (median)")
    print(f"inkagent, no per-call time limit (as lagent): {same_us:8.1f} µs per turn   ratio {lagent_us / same_us:5.1f}x")
    print(f"inkagent, 60 s time limit (a pooled worker):  {limited_us:8.1f} µs per turn   ratio {lagent_us / limited_us:5.1f}x")
    print("the protocol's own work per turn (format the request, parse the output, render the result):")
    for name, us in protocol_us(ActionExecutor(tools, timeout_s=None), args.runs).items():
        print(f"  {name:10s} {us:8.1f} µs per turn")


if __name__ == "__main__":
    main()
