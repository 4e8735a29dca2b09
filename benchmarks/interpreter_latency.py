"""Interpreter latency: lagent 0.2.4's `IPythonInterpreter` against inkagent's, in one run.

For each interpreter:
- cold start: from constructing it to the result of the first `print(1+1)` (the kernel starts lazily);
- warm calls: p50 and p95 of later `print(1+1)` calls on the same kernel.
Then the ratios lagent / inkagent. Both kernels are shut down at the end.

    python benchmarks/interpreter_latency.py                 # 50 warm calls for inkagent, 5 for lagent
    python benchmarks/interpreter_latency.py --json          # one JSON object on stdout
    python benchmarks/interpreter_latency.py --skip-lagent   # inkagent only

lagent's calls each wait ~5 s for stray messages before running, so its warm sample is kept small.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

CODE = "print(1+1)"


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def measure(name: str, make: Callable[[], object], call: Callable[[object], str], warm: int) -> dict:
    """Cold start and warm-call latencies of one interpreter; checks every answer is "2"."""
    print(f"[{name}] cold start ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    interpreter = make()
    output = call(interpreter)
    cold = time.perf_counter() - started
    if output.strip() != "2":
        raise SystemExit(f"{name}: unexpected output {output!r}")
    samples = []
    for i in range(warm):
        started = time.perf_counter()
        output = call(interpreter)
        samples.append(time.perf_counter() - started)
        if output.strip() != "2":
            raise SystemExit(f"{name}: unexpected output {output!r}")
        print(f"[{name}] warm call {i + 1}/{warm}: {samples[-1] * 1000:.1f} ms", file=sys.stderr, flush=True)
    return {
        "interpreter": interpreter,
        "cold_s": cold,
        "warm_p50_s": percentile(samples, 50),
        "warm_p95_s": percentile(samples, 95),
        "warm_calls": warm,
    }


def run_inkagent(warm: int, work_dir: str) -> dict:
    from inkagent.actions import IPythonInterpreter

    result = measure(
        "inkagent", lambda: IPythonInterpreter(work_dir=work_dir), lambda i: i.run(CODE).output, warm
    )
    result.pop("interpreter").close()
    return result


def run_lagent(warm: int, work_dir: str) -> dict:
    from lagent.actions import IPythonInterpreter

    def call(interpreter) -> str:
        action_return = interpreter.run(CODE)
        return "".join(item["content"] for item in action_return.result or [] if item["type"] == "text")

    try:
        result = measure("lagent", lambda: IPythonInterpreter(work_dir=work_dir), call, warm)
    finally:
        # lagent keeps one kernel per process in a class attribute and never shuts it down
        for manager, client in IPythonInterpreter._KERNEL_CLIENTS.values():
            client.stop_channels()
            manager.shutdown_kernel(now=True)
        IPythonInterpreter._KERNEL_CLIENTS.clear()
    result.pop("interpreter", None)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--warm", type=int, default=50, help="warm calls for inkagent (default 50)")
    parser.add_argument("--lagent-warm", type=int, default=5, help="warm calls for lagent (default 5)")
    parser.add_argument("--skip-lagent", action="store_true", help="measure inkagent only")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args(argv)

    report: dict = {"code": CODE, "python": sys.version.split()[0], "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="interp-bench-") as tmp:
        report["inkagent"] = run_inkagent(args.warm, os.path.join(tmp, "inkagent"))
        if not args.skip_lagent:
            report["lagent"] = run_lagent(args.lagent_warm, os.path.join(tmp, "lagent"))
    if "lagent" in report:
        ours, theirs = report["inkagent"], report["lagent"]
        report["ratio_warm_p50"] = theirs["warm_p50_s"] / ours["warm_p50_s"]
        report["ratio_warm_p95"] = theirs["warm_p95_s"] / ours["warm_p95_s"]
        report["ratio_cold"] = theirs["cold_s"] / ours["cold_s"]

    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{'interpreter':<12} {'cold start':>12} {'warm p50':>12} {'warm p95':>12} {'warm calls':>11}")
    for name in ("lagent", "inkagent"):
        if name in report:
            row = report[name]
            print(
                f"{name:<12} {row['cold_s']:>11.2f}s {row['warm_p50_s'] * 1000:>10.1f}ms "
                f"{row['warm_p95_s'] * 1000:>10.1f}ms {row['warm_calls']:>11}"
            )
    if "ratio_warm_p50" in report:
        print(
            f"lagent / inkagent: warm p50 {report['ratio_warm_p50']:.0f}x, warm p95 {report['ratio_warm_p95']:.0f}x, "
            f"cold start {report['ratio_cold']:.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
