"""Measure the bundled demo model: task success, tool-call accuracy, and behaviour off its training.

    python scripts/eval_demo_model.py                   # the bundled model: all but validation
    python scripts/eval_demo_model.py --model DIR --arithmetic 60 --calls 400 --out report.json
    python scripts/eval_demo_model.py --model DIR --validation 300 --no-bench --calls 0 --arithmetic 0 \
        --no-off-domain                                 # to compare trained models

- arithmetic: held-out arithmetic tasks (a hash partition of expressions never used in training) run
  through the real agent of configs/demo.yaml with the real Jupyter interpreter; a task succeeds when
  the final answer contains the right number.
- bench: tool-call accuracy on the test split of `inkagent-tools` (what `inkagent bench configs/demo.yaml
  --suite inkagent-tools --mode internlm2` measures; the same harness and scorer, run in-process).
- calls: the first turn of held-out synthetic requests under the demo config's own prompt, scored on
  the decoded calls: the right tools with exactly the right arguments, or no call where none is due.
- validation: held-out synthetic first turns under benchmark-style prompts (random tools of the benchmark's
  train split, values from the generator's held-out partition and composed ones, many needing several
  calls), scored on exact calls. It is for choosing between trained models without looking at the test
  split; it is stricter than the benchmark (no alternative values accepted).
- conversations (`--conversations N`): held-out 3-turn conversations (scripts/demo_conversations.py)
  through the real agent of configs/demo.yaml, its kernel and its offline tools, each user turn continuing
  the session as `inkagent chat` does. Each turn is scored by its kind: arithmetic and programs — the right
  value in the answer (for a follow-up, the value given the right answers before it); weather / arXiv — the
  right tool and arguments, and the offline failure relayed; code given by the user — run as given, its
  output or time-out relayed; small talk — no call, an answer; out of scope — no call, a short refusal.
  Reported: the share of turns right, and of conversations with every turn right. `--conversation-split
  validation` draws another set, for choosing between trained models; the test set is reported once.
- off-domain: requests the model was not trained on (a poem, history...) run through the agent; each
  must end cleanly, with an answer or a clear failure state, within the turn and token limits.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from demo_conversations import ConversationGenerator, contains_number, score_turn  # noqa: E402
from demo_dialogues import DEMO_TOOLS, Request, RequestGenerator  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "configs" / "demo.yaml"
OFF_DOMAIN = [
    "Write a poem about autumn leaves.",
    "Who was the first president of the United States?",
    "Explain the causes of the French Revolution.",
    "Tell me a long story about a dragon and a knight.",
    "Translate 'the weather is nice today' into German.",
    "What is the best programming language?",
    "写一首关于长江的诗。",
    "明朝是哪一年灭亡的？",
    "Summarize the plot of Hamlet in detail.",
    "asdf qwer zxcv",
]
logger = logging.getLogger("eval_demo_model")


def load_llm(model: str, threads: int = 1) -> Any:
    """The model as configs/demo.yaml loads it: greedy, 256 new tokens at most, `threads` CPU threads (the
    config's 1: the same thread count gives the same sums, so the same tokens, run after run)."""
    from inkagent.llms import HFTransformer

    return HFTransformer(path=model, device="cpu", do_sample=False, max_new_tokens=256, num_threads=threads)


def build_demo_agent(config_path: Path, llm: Any) -> Any:
    from inkagent.runners.config import build_agent, load_config

    return build_agent(load_config(config_path), llm=llm)


def arithmetic_tasks(count: int, seed: int) -> list[Request]:
    """Held-out arithmetic tasks: expressions from the hash partition training never used."""
    generator = RequestGenerator(seed, split="eval")
    tasks: list[Request] = []
    while len(tasks) < count:
        lang = "en" if generator.rng.random() < 0.7 else "zh"
        request = (
            generator.arithmetic(lang) if generator.rng.random() < 0.8 else generator.worded_arithmetic(lang)
        )
        if request is not None and request.expected:
            tasks.append(request)
    return tasks


def eval_arithmetic(agent: Any, count: int, seed: int) -> dict[str, Any]:
    rows, successes = [], 0
    started = time.perf_counter()
    for request in arithmetic_tasks(count, seed):
        expected = request.expected[0]
        agent.reset()
        result = agent.chat(request.user)
        answer = result.response or ""
        ok = contains_number(answer, expected)
        successes += ok
        rows.append(
            {
                "task": request.user,
                "expected": expected,
                "answer": answer,
                "calls": [a.type for a in result.actions],
                "ok": ok,
            }
        )
        logger.info("%s %s -> %s", "ok  " if ok else "FAIL", request.user, answer[:80])
    return {
        "tasks": count,
        "success": successes / count,
        "seconds": round(time.perf_counter() - started, 1),
        "failures": [r for r in rows if not r["ok"]],
    }


def eval_bench(llm: Any, out_dir: Path, prompt_language: str = "en") -> dict[str, Any]:
    """`inkagent bench --suite inkagent-tools --mode internlm2` on the test split, in-process."""
    import shutil

    from inkagent.bench.datasets import load_suite
    from inkagent.bench.harness import BenchOptions, run_benchmark

    shutil.rmtree(out_dir, ignore_errors=True)
    suite = load_suite("inkagent-tools", split="test")
    options = BenchOptions(
        mode="internlm2", out_dir=out_dir, prompt_language=prompt_language, gen_params={"do_sample": False}
    )
    started = time.perf_counter()
    report = run_benchmark(llm, suite, options)
    report["seconds"] = round(time.perf_counter() - started, 1)
    return report


def call_report(per_kind: dict[str, list[int]], failures: list[dict], started: float) -> dict[str, Any]:
    """Accuracy overall and per kind of request, from [correct, total] counts."""
    total = sum(n for _, n in per_kind.values())
    return {
        "examples": total,
        "accuracy": sum(k for k, _ in per_kind.values()) / total,
        "per_kind": {k: {"accuracy": round(a / n, 4), "n": n} for k, (a, n) in sorted(per_kind.items())},
        "seconds": round(time.perf_counter() - started, 1),
        "failures": failures[:50],
    }


def eval_calls(llm: Any, count: int, seed: int, language_prompt: str = "en") -> dict[str, Any]:
    """First-turn call accuracy on held-out requests, under the demo config's prompt."""
    from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, Weather
    from inkagent.protocols import Internlm2Protocol
    from inkagent.schema import Message

    plugins = ActionExecutor([Weather(), ArxivSearch()])
    interpreter_action = IPythonInterpreter()
    interpreter = ActionExecutor([interpreter_action], timeout_s=None)
    protocol = Internlm2Protocol(language=language_prompt)
    generator = RequestGenerator(seed + 1, split="eval")
    per_kind: dict[str, list[int]] = {}
    failures = []
    started = time.perf_counter()
    try:
        for _ in range(count):
            request = generator.fit(generator.sample(), set(DEMO_TOOLS))
            prompt = protocol.format([Message(role="user", content=request.user)], plugins, interpreter)
            output = llm.chat(prompt)
            parsed = protocol.parse(output)
            got = [{"name": c.name, "arguments": c.arguments} for c in parsed.calls]
            want = [{"name": c.name, "arguments": c.arguments} for c in request.calls]
            ok = got == want and not parsed.errors
            stats = per_kind.setdefault(request.kind, [0, 0])
            stats[0] += ok
            stats[1] += 1
            if not ok:
                failures.append(
                    {
                        "kind": request.kind,
                        "task": request.user,
                        "expected": want,
                        "got": got,
                        "output": output[:300],
                    }
                )
    finally:
        interpreter_action.close()
    return call_report(per_kind, failures, started)


def call_keys(calls: list) -> list[str]:
    """Calls as sorted text, to compare regardless of their order."""
    return sorted(json.dumps({c.name: c.arguments}, sort_keys=True, ensure_ascii=False) for c in calls)


def eval_validation(llm: Any, count: int, seed: int) -> dict[str, Any]:
    """Exact-call accuracy on held-out synthetic requests under benchmark-style prompts."""
    from inkagent.bench.datasets import load_inkagent_tools
    from inkagent.bench.prompts import build_request
    from inkagent.protocols import Internlm2Protocol

    functions = {f["name"]: f for r in load_inkagent_tools("train").records for f in r.question["function"]}
    names = sorted(functions)
    rng = random.Random(seed)
    generator = RequestGenerator(seed + 2, split="eval", novel=0.5, multi_call=2.0)
    protocol = Internlm2Protocol()
    per_kind: dict[str, list[int]] = {}
    failures = []
    started = time.perf_counter()
    while sum(n for _, n in per_kind.values()) < count:
        offered = rng.sample(names, rng.choice([1, 2, 2, 3, 4]))
        # as in training: mostly requests the offered tools serve, some that they cannot
        request = generator.servable(set(offered)) if rng.random() < 0.8 else generator.sample()
        if request is None:
            continue
        request = generator.fit(request, set(offered))
        question = {
            "question": [[{"role": "user", "content": request.user}]],
            "function": [functions[name] for name in offered],
        }
        output = llm.chat(build_request("internlm2", "simple", question, language_hints=False).messages)
        turn = protocol.parse(output)
        got = None if turn.errors else call_keys(turn.calls)  # None: a malformed call
        want = call_keys(request.calls)
        kind = request.kind if len(request.calls) < 2 else "multi_call"
        stats = per_kind.setdefault(kind, [0, 0])
        stats[0] += got == want
        stats[1] += 1
        if got != want:
            failures.append({"task": request.user, "tools": offered, "expected": want, "got": got})
    return call_report(per_kind, failures, started)


def eval_conversations(agent: Any, count: int, seed: int, split: str = "eval") -> dict[str, Any]:
    """Held-out 3-turn conversations through the real agent: each user turn continues the session
    (`agent.stream(text)`, as `inkagent chat` does); each turn is scored by its kind (`score_turn`)."""
    from inkagent.schema import ToolCall

    generator = ConversationGenerator(seed, split=split, offline=1.0)  # the agent's tools are offline too
    per_kind: dict[str, list[int]] = {}
    rows, turns_right, turns_total, whole = [], 0, 0, 0
    started = time.perf_counter()
    for index in range(count):
        conversation = generator.conversation(turns=3)
        agent.reset()
        verdicts = []
        for turn in conversation.turns:
            calls: list[ToolCall] = []
            answer, state = "", "none"
            for event in agent.stream(turn.user):
                kind = getattr(event, "type", "")
                if kind == "tool_call":
                    calls.append(event.call)
                elif kind == "final_answer":
                    answer, state = event.text, event.state.value
            ok, why = score_turn(turn, calls, answer)
            key = turn.kind + (" (follow-up)" if turn.followup else "")
            stats = per_kind.setdefault(key, [0, 0])
            stats[0] += ok
            stats[1] += 1
            verdicts.append(
                {
                    "kind": key,
                    "user": turn.user,
                    "calls": [{"name": c.name, "arguments": c.arguments} for c in calls],
                    "answer": answer[:300],
                    "state": state,
                    "ok": ok,
                    "why": why,
                }
            )
        right = sum(v["ok"] for v in verdicts)
        turns_right += right
        turns_total += len(verdicts)
        whole += right == len(verdicts)
        rows.append({"lang": conversation.lang, "ok": right == len(verdicts), "turns": verdicts})
        logger.info(
            "conversation %d/%d: %d/%d turns right (%s)",
            index + 1,
            count,
            right,
            len(verdicts),
            conversation.lang,
        )
    return {
        "conversations": count,
        "turns": turns_total,
        "turn_accuracy": turns_right / turns_total,
        "conversation_accuracy": whole / count,
        "per_kind": {k: {"accuracy": round(a / n, 4), "n": n} for k, (a, n) in sorted(per_kind.items())},
        "seconds": round(time.perf_counter() - started, 1),
        "failures": [r for r in rows if not r["ok"]][:60],
    }


def eval_speed(llm: Any, tokens: int = 200, repeats: int = 3) -> dict[str, Any]:
    """Generation speed after the demo config's own prompt (tools listed, ~630 tokens): `tokens` new
    tokens forced (`min_new_tokens`), the median of `repeats` runs; tokens/s counts the new tokens over the
    whole call (prefill included), as a user waits for them."""
    import statistics

    from inkagent.actions import ActionExecutor, ArxivSearch, IPythonInterpreter, Weather
    from inkagent.protocols import Internlm2Protocol
    from inkagent.schema import Message

    interpreter_action = IPythonInterpreter()
    try:
        prompt = Internlm2Protocol().format(
            [Message(role="user", content="What is 17 * 23?")],
            ActionExecutor([Weather(), ArxivSearch()]),
            ActionExecutor([interpreter_action], timeout_s=None),
        )
    finally:
        interpreter_action.close()
    rates, prompt_tokens = [], 0
    for _ in range(repeats):
        llm.chat(prompt, max_new_tokens=tokens, min_new_tokens=tokens, stop_words=[])
        rates.append(llm.last_stats.tokens_per_s)
        prompt_tokens = llm.last_stats.prompt_tokens
    return {"new_tokens": tokens, "prompt_tokens": prompt_tokens, "tokens_per_s": round(statistics.median(rates), 1)}


def eval_off_domain(agent: Any) -> dict[str, Any]:
    rows = []
    for task in OFF_DOMAIN:
        agent.reset()
        started = time.perf_counter()
        final = None
        error = None
        for event in agent.stream(task):
            kind = getattr(event, "type", "")
            if kind == "final_answer":
                final = event
            elif kind == "error":
                error = event.message
        rows.append(
            {
                "task": task,
                "state": final.state.value if final else "none",
                "answer": final.text if final else "",
                "error": error,
                "seconds": round(time.perf_counter() - started, 2),
            }
        )
        logger.info("%s -> %s %s", task, rows[-1]["state"], rows[-1]["answer"][:80])
    clean = sum(r["state"] != "none" for r in rows)
    return {
        "tasks": len(rows),
        "ended_cleanly": clean,
        "answered": sum(r["state"] == "answered" for r in rows),
        "rows": rows,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=str(ROOT / "inkagent" / "demo_model"))
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--arithmetic", type=int, default=60, help="held-out arithmetic tasks (0 to skip)")
    parser.add_argument(
        "--bench",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="tool-call accuracy on the inkagent-tools test split",
    )
    parser.add_argument("--bench-out", default="runs/bench-demo-model", help="where the bench results go")
    parser.add_argument(
        "--calls", type=int, default=200, help="held-out requests under the demo prompt (0 to skip)"
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        help="held-out synthetic requests under benchmark-style prompts, for choosing a model (0 to skip)",
    )
    parser.add_argument(
        "--conversations",
        type=int,
        default=0,
        help="held-out 3-turn conversations through the agent, scored turn by turn (0 to skip)",
    )
    parser.add_argument(
        "--conversation-split",
        choices=["validation", "test"],
        default="test",
        help="which held-out conversations: validation (for choosing a model) or test (reported once)",
    )
    parser.add_argument("--off-domain", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument(
        "--speed", action=argparse.BooleanOptionalAction, default=True, help="tokens/s after the demo prompt"
    )
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (configs/demo.yaml: 1)")
    parser.add_argument("--out", help="write the full report here (JSON)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    llm = load_llm(args.model, args.threads)
    report: dict[str, Any] = {"model": args.model}
    if args.bench:
        report["bench"] = eval_bench(llm, Path(args.bench_out))
        bench = report["bench"]
        logger.info(
            "inkagent-tools test: %d/%d correct; %s",
            bench["correct"],
            bench["records"],
            json.dumps(bench["aggregates"]),
        )
    if args.calls:
        report["calls"] = eval_calls(llm, args.calls, args.seed)
        logger.info("call accuracy %.3f %s", report["calls"]["accuracy"], report["calls"]["per_kind"])
    if args.validation:
        report["validation"] = eval_validation(llm, args.validation, args.seed)
        logger.info("validation %.3f %s", report["validation"]["accuracy"], report["validation"]["per_kind"])
    if args.speed:
        report["speed"] = eval_speed(llm)
        logger.info("speed: %s", report["speed"])
    if args.arithmetic or args.off_domain or args.conversations:
        agent = build_demo_agent(Path(args.config), llm)
        try:
            if args.arithmetic:
                report["arithmetic"] = eval_arithmetic(agent, args.arithmetic, args.seed)
                logger.info("arithmetic task success %.3f", report["arithmetic"]["success"])
            if args.conversations:
                # the two held-out sets differ by seed; both come from the eval partition of values
                seed = args.seed + (0 if args.conversation_split == "test" else 500)
                report["conversations"] = eval_conversations(agent, args.conversations, seed)
                logger.info(
                    "conversations (%s): turns %.3f, whole conversations %.3f %s",
                    args.conversation_split,
                    report["conversations"]["turn_accuracy"],
                    report["conversations"]["conversation_accuracy"],
                    report["conversations"]["per_kind"],
                )
            if args.off_domain:
                report["off_domain"] = eval_off_domain(agent)
                logger.info(
                    "off-domain: %d/%d ended cleanly", report["off_domain"]["ended_cleanly"], len(OFF_DOMAIN)
                )
        finally:
            agent.close()
    summary = {
        "bench_accuracy": (report["bench"]["correct"] / report["bench"]["records"])
        if "bench" in report
        else None,
        "bench_aggregates": report.get("bench", {}).get("aggregates"),
        "demo_prompt_call_accuracy": report.get("calls", {}).get("accuracy"),
        "validation_accuracy": report.get("validation", {}).get("accuracy"),
        "arithmetic_success": report.get("arithmetic", {}).get("success"),
        "off_domain_clean": report.get("off_domain", {}).get("ended_cleanly"),
        "tokens_per_s": report.get("speed", {}).get("tokens_per_s"),
        "conversation_turn_accuracy": report.get("conversations", {}).get("turn_accuracy"),
        "conversation_accuracy": report.get("conversations", {}).get("conversation_accuracy"),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
