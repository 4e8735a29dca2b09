"""Many requests in flight: inkagent's `OpenAICompatible` vs the official `openai` SDK, on one fake server.

The server (benchmarks/fake_openai_server.py) runs in a child process, so only the client's CPU is
counted. For each number of requests in flight, batches of requests go through:

- `inkagent generate_many`: `OpenAICompatible.generate_many(prompts, concurrency=N)` (blocking, as the
  CLI and scripts call it; it runs its own event loop),
- `inkagent acomplete_many`: `await OpenAICompatible.acomplete_many(...)` inside a running loop,
- `inkagent threads`: N threads calling the blocking `chat` / `generate` (what `inkagent bench
  --concurrency N` and batch runs do),
- `openai SDK`: one `AsyncOpenAI` client, N coroutines at a time (`asyncio.Semaphore`) in a running loop,

and with `--stream`, streamed answers: inkagent `astream_text` vs the SDK's `stream=True`, N at a time.
Runs alternate between the clients batch by batch, so machine load hits all alike; the figures are
medians over `--repeats` batches: requests per second (wall) and client CPU milliseconds per request
(`time.process_time`, all threads of this process). Ratios: inkagent / SDK req/s (above 1: faster),
and CPU per request at each level over CPU per request at 8 in flight (the scaling goal: <= 1.3).

    python benchmarks/client_concurrency.py [--levels 1,8,32,64] [--requests 256] [--repeats 3]
        [--api chat|completions] [--stream] [--latency-ms 0] [--replicas 1 (the SDK uses the first)]
    python benchmarks/client_concurrency.py --profile "inkagent generate_many" --levels 64   # cProfile

`--baseline-ref REF` adds `inkagent@REF generate_many`: the same call on `OpenAICompatible` as it is in
git revision REF (its `inkagent/llms/openai_compat.py` loaded next to today's code), so old and new
run interleaved in one process. Only that file is REF's: for a REF that has `openai_transport.py` (the
sending code, split out of `openai_compat.py`), the baseline sends with today's. `--clients a,b` keeps
only the named columns (the SDK always stays).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import importlib.util
import logging
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fake_openai_server import start_server  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402

from inkagent.llms import OpenAICompatible  # noqa: E402

Runner = Callable[[int, int], None]  # (requests, in flight) -> None; raises on a wrong answer


def prompts(api: str, n: int) -> list:
    if api == "chat":
        return [[{"role": "user", "content": f"What is {i} * 23?"}] for i in range(n)]
    return [f"What is {i} * 23?" for i in range(n)]


def load_baseline(ref: str) -> type:
    """`OpenAICompatible` as it is in git revision `ref`, imported as `inkagent.llms._baseline_openai_compat`."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{ref}:inkagent/llms/openai_compat.py"], cwd=root, capture_output=True, text=True, check=True
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="inkagent-baseline-")) / "openai_compat.py"
    path.write_text(source, encoding="utf-8")
    name = "inkagent.llms._baseline_openai_compat"  # inside the package, so its relative imports work
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module.OpenAICompatible


def make_runners(
    base_urls: list[str], api: str, stream: bool, loop: asyncio.AbstractEventLoop, baseline_ref: str | None = None
) -> tuple[dict[str, Runner], Callable[[], None]]:
    """The clients under test, each as `run(requests, in_flight)`, built once and reused by every batch;
    and the function that closes them."""

    def backend(cls: type) -> OpenAICompatible:
        return cls(
            model="bench",
            base_url=base_urls if len(base_urls) > 1 else base_urls[0],
            mode=api,
            meta_template=None,  # the SDK sends the prompt as is: so does inkagent here
            stop_words=[],
            max_new_tokens=16,
            keep_special_tokens=False,
        )

    ink = backend(OpenAICompatible)
    old = backend(load_baseline(baseline_ref)) if baseline_ref else None
    sdk = AsyncOpenAI(base_url=base_urls[0], api_key="unused", max_retries=3, timeout=60.0)

    async def sdk_one(prompt) -> str:
        if api == "chat":
            if stream:
                pieces = []
                async for chunk in await sdk.chat.completions.create(
                    model="bench", messages=prompt, max_tokens=16, stream=True
                ):
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                return "".join(pieces)
            answer = await sdk.chat.completions.create(model="bench", messages=prompt, max_tokens=16)
            return answer.choices[0].message.content
        if stream:
            pieces = []
            async for chunk in await sdk.completions.create(model="bench", prompt=prompt, max_tokens=16, stream=True):
                if chunk.choices and chunk.choices[0].text:
                    pieces.append(chunk.choices[0].text)
            return "".join(pieces)
        answer = await sdk.completions.create(model="bench", prompt=prompt, max_tokens=16)
        return answer.choices[0].text

    async def gated(one, items, in_flight: int) -> list[str]:
        gate = asyncio.Semaphore(in_flight)

        async def run(item):
            async with gate:
                return await one(item)

        return await asyncio.gather(*(run(item) for item in items))

    shared = {}  # inkagent's async client for streams, opened in the loop (the documented way to reuse one)

    async def ink_stream_one(prompt) -> str:
        if "client" not in shared:
            shared["client"] = ink.async_client(in_flight=64)
        return "".join([delta async for delta in ink.astream_text(prompt, client=shared["client"])])

    def close() -> None:
        ink.close()
        if old is not None:
            old.close()
        if "client" in shared:
            loop.run_until_complete(shared["client"].aclose())
        loop.run_until_complete(sdk.close())

    def check(answers: list[str], n: int) -> None:
        if len(answers) != n or not all(answer.startswith("The answer is") for answer in answers):
            raise RuntimeError(f"unexpected answers: {answers[:3]}")

    def ink_sync(n: int, in_flight: int) -> None:
        check(ink.generate_many(prompts(api, n), concurrency=in_flight), n)

    def old_sync(n: int, in_flight: int) -> None:
        check(old.generate_many(prompts(api, n), concurrency=in_flight), n)

    def ink_threads(n: int, in_flight: int) -> None:  # what `inkagent bench --concurrency N` does
        with ThreadPoolExecutor(in_flight) as pool:
            check(list(pool.map(ink.chat if api == "chat" else ink.generate, prompts(api, n))), n)

    def ink_async(n: int, in_flight: int) -> None:
        completions = loop.run_until_complete(ink.acomplete_many(prompts(api, n), concurrency=in_flight))
        check([c.text for c in completions], n)

    def ink_stream(n: int, in_flight: int) -> None:
        check(loop.run_until_complete(gated(ink_stream_one, prompts(api, n), in_flight)), n)

    def sdk_run(n: int, in_flight: int) -> None:
        check(loop.run_until_complete(gated(sdk_one, prompts(api, n), in_flight)), n)

    if stream:
        return {"inkagent astream_text": ink_stream, "openai SDK stream": sdk_run}, close
    runners = {
        **({f"inkagent@{baseline_ref} generate_many": old_sync} if old is not None else {}),
        "inkagent generate_many": ink_sync,
        "inkagent acomplete_many": ink_async,
        "inkagent threads": ink_threads,
        "openai SDK": sdk_run,
    }
    return runners, close


def measure(run: Runner, n: int, in_flight: int) -> tuple[float, float]:
    """(requests per second, client CPU ms per request) of one batch."""
    wall, cpu = time.perf_counter(), time.process_time()
    run(n, in_flight)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return n / wall, cpu * 1000 / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--levels", default="1,8,32,64", help="requests in flight, comma-separated")
    parser.add_argument("--requests", type=int, default=256, help="requests a batch")
    parser.add_argument("--repeats", type=int, default=3, help="measured batches per client and level")
    parser.add_argument("--api", choices=["chat", "completions"], default="chat")
    parser.add_argument("--stream", action="store_true", help="streamed answers (astream_text vs stream=True)")
    parser.add_argument("--chunks", type=int, default=8, help="content chunks of an answer")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="the server waits this long per answer")
    parser.add_argument("--replicas", type=int, default=1, help="fake servers; inkagent spreads over all")
    parser.add_argument("--profile", metavar="CLIENT", help="cProfile this client at the first level instead")
    parser.add_argument("--baseline-ref", metavar="REF", help="also run OpenAICompatible as in this git revision")
    parser.add_argument("--clients", help="only these columns, comma-separated (the SDK is always kept)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    levels = [int(level) for level in args.levels.split(",")]

    servers = [start_server(args.chunks, args.latency_ms) for _ in range(args.replicas)]
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    runners, close = make_runners([url for url, _ in servers], args.api, args.stream, loop, args.baseline_ref)
    if args.clients:
        keep = set(args.clients.split(","))
        runners = {name: run for i, (name, run) in enumerate(runners.items()) if name in keep or i == len(runners) - 1}
    try:
        if args.profile:
            run = runners[args.profile]
            run(args.requests, levels[0])  # warm up
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.repeats):
                run(args.requests, levels[0])
            profiler.disable()
            stats = pstats.Stats(profiler).strip_dirs()
            stats.sort_stats("tottime").print_stats(25)
            stats.sort_stats("cumulative").print_stats(25)
            return
        results: dict[tuple[str, int], list[tuple[float, float]]] = {}
        for level in levels:  # warm up: connections opened, code paths imported
            for run in runners.values():
                run(min(args.requests, 4 * level), level)
        for _ in range(args.repeats):
            for level in levels:
                for name, run in runners.items():
                    results.setdefault((name, level), []).append(measure(run, args.requests, level))
    finally:
        close()
        loop.close()
        for _, process in servers:
            process.terminate()
            process.wait()
            process.stdout.close()
    report(results, list(runners), levels, args)


def report(results: dict, names: list[str], levels: list[int], args: argparse.Namespace) -> None:
    def med(name: str, level: int, i: int) -> float:
        return statistics.median(sample[i] for sample in results[name, level])

    kind = f"{args.api}, {'streamed' if args.stream else 'not streamed'}"
    print(
        f"{kind}; {args.requests} requests a batch, median of {args.repeats}; server latency "
        f"{args.latency_ms:g} ms, {args.chunks} chunks; {args.replicas} server(s)"
    )
    sdk = names[-1]
    header = f"{'in flight':>9} | " + " | ".join(f"{name:^26}" for name in names)
    print(header)
    print(f"{'':>9} | " + " | ".join(f"{'req/s':>8} {'CPU ms/req':>10} {'':6}" for _ in names))
    for level in levels:
        cells = []
        for name in names:
            rate, cpu = med(name, level, 0), med(name, level, 1)
            ratio = "" if name == sdk else f"{rate / med(sdk, level, 0):5.2f}x"
            cells.append(f"{rate:8.0f} {cpu:10.2f} {ratio:>6}")
        print(f"{level:>9} | " + " | ".join(cells))
    if 8 in levels:
        print("CPU per request against 8 in flight (goal <= 1.3x for inkagent):")
        for name in names:
            base = med(name, 8, 1)
            print(f"  {name:26} " + "  ".join(f"{level}: {med(name, level, 1) / base:4.2f}x" for level in levels))
    print("ratio: req/s over the SDK's at the same level (>= 1.00x: at least as fast)")


if __name__ == "__main__":
    main()
