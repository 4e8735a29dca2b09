"""Cost of handing a tool call to a worker thread (a call under a time limit), old against new, in one process.

`ActionExecutor.run` of a plain synchronous tool (two integers added) with no time limit (run on the
calling thread) and with a 60 s limit (run on a pooled worker thread, so that a hung tool cannot
block the agent), for two executors: this checkout's, and the baseline's (`inkagent/actions/executor.py`
as it was at `--baseline`, read with `git show` and loaded beside the new one; the rest of inkagent
is this checkout's). The four are timed in alternating blocks, so that machine load hits all alike.
Hand-off = (time a call with a limit) - (time a call without); goal: new <= 0.5x the baseline's.
For scale, the floor of any hand-off is timed too: a bare round trip to a waiting thread (a queue to
wake it, a lock it releases), with no call in it.
Figures: the median over blocks of the wall time a call, and of the process CPU time a call (all
threads).

    python benchmarks/tool_dispatch.py [--blocks 200] [--calls 200] [--baseline acf4922]
"""

from __future__ import annotations

import _thread
import argparse
import queue
import statistics
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

from inkagent.actions import ActionExecutor, tool
from inkagent.schema import ActionResult, ToolCall

ROOT = Path(__file__).resolve().parents[1]
#: main before issue 19's second phase: a pooled worker a call, woken by a queue, waited on with an Event
BASELINE = "acf4922"


@tool
def add(a: int, b: int) -> int:
    """Add two integers.

    Args:
        a: the first
        b: the second
    """
    return a + b


def baseline_executor_class(ref: str) -> type:
    """`ActionExecutor` of `inkagent/actions/executor.py` at git `ref`, as a module beside the new one."""
    source = subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{ref}:inkagent/actions/executor.py"],
        capture_output=True, text=True, check=True,
    ).stdout
    module = types.ModuleType("inkagent.actions._executor_baseline")
    module.__package__ = "inkagent.actions"
    sys.modules[module.__name__] = module
    exec(compile(source, f"{ref}:inkagent/actions/executor.py", "exec"), module.__dict__)  # noqa: S102
    return module.ActionExecutor


def per_call(executor, call: ToolCall, calls: int) -> tuple[float, float]:
    """(wall µs, CPU µs) a call, over `calls` calls."""
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(calls):
        result = executor.run(call)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert result.output == "3", result
    return wall / calls * 1e6, cpu / calls * 1e6


class BareRoundTrip:
    """The least a hand-off can cost: wake a waiting thread through a queue, wait on a lock it releases.
    Stands in for an executor in `per_call` (its "calls" run nothing)."""

    def __init__(self) -> None:
        self._mailbox: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._work, daemon=True).start()

    def _work(self) -> None:
        while True:
            self._mailbox.get().release()

    def run(self, call: ToolCall) -> ActionResult:
        done = _thread.allocate_lock()
        done.acquire()
        self._mailbox.put(done)
        done.acquire(timeout=60)
        return ActionResult(name=call.name, output="3")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--blocks", type=int, default=200, help="alternating blocks of each of the four")
    parser.add_argument("--calls", type=int, default=200, help="calls a block")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the old executor (default %(default)s)")
    args = parser.parse_args()

    old_class = baseline_executor_class(args.baseline)
    call = ToolCall(name="add", arguments={"a": 1, "b": 2})
    executors = {
        ("old", "none"): old_class([add], timeout_s=None),
        ("old", "limit"): old_class([add], timeout_s=60.0),
        ("new", "none"): ActionExecutor([add], timeout_s=None),
        ("new", "limit"): ActionExecutor([add], timeout_s=60.0),
        ("bare", "limit"): BareRoundTrip(),
    }
    for executor in executors.values():  # warm up: the pools' first threads
        per_call(executor, call, 20)
    samples: dict[tuple[str, str], list[tuple[float, float]]] = {key: [] for key in executors}
    for _ in range(args.blocks):
        for key, executor in executors.items():
            samples[key].append(per_call(executor, call, args.calls))

    def median(key: tuple[str, str], index: int) -> float:
        return statistics.median(sample[index] for sample in samples[key])

    print(f"tool dispatch: {args.blocks} blocks of {args.calls} calls each; baseline {args.baseline}; "
          f"{threading.active_count()} threads; medians over blocks")
    print(f"{'':34} {'no limit':>10} {'60 s limit':>11} {'hand-off':>9}")
    handoff = {}
    for index, unit in ((0, "wall µs a call"), (1, "CPU µs a call")):
        for side in ("old", "new"):
            none, limit = median((side, "none"), index), median((side, "limit"), index)
            handoff[side, index] = limit - none
            print(f"{side + ' executor, ' + unit:34} {none:10.1f} {limit:11.1f} {limit - none:9.1f}")
    print(f"{'bare round trip to a thread (floor)':34} {'':10} {median(('bare', 'limit'), 0):11.1f}"
          f"   (wall µs; CPU {median(('bare', 'limit'), 1):.1f})")
    for index, unit in ((0, "wall"), (1, "CPU")):
        ratio = handoff["new", index] / handoff["old", index]
        print(f"hand-off, new / old ({unit}): {ratio:5.2f}x   goal <= 0.50x: {'met' if ratio <= 0.5 else 'not met'}")


if __name__ == "__main__":
    main()
