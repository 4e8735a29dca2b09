"""Cost of calling an MCP server's tool through inkagent, against the official SDK's client alone.

One stdio server (tests/mcp_demo_server.py, the SDK's `MCPServer`), one session each, the same text tool
called `--calls` times in a row:

- baseline: `mcp.Client.call_tool` awaited in a loop (what any MCP client pays);
- inkagent: `ActionExecutor.run(ToolCall(...))` on an `MCPToolset`: schema check, hand-off from the
  caller's thread to the toolset's event loop, result conversion, time limit.

Prints the median time per call of each and their ratio. Start-up (server launch and handshake) is
measured apart: inkagent adds the guard process.

    python benchmarks/mcp_call_overhead.py [--calls 300]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

SERVER = Path(__file__).resolve().parent.parent / "tests" / "mcp_demo_server.py"


async def baseline(calls: int) -> tuple[float, list[float]]:
    from mcp import Client, StdioServerParameters

    started = time.perf_counter()
    async with Client(StdioServerParameters(command=sys.executable, args=[str(SERVER)]), mode="legacy") as client:
        await client.list_tools()
        startup = time.perf_counter() - started
        times = []
        for i in range(calls):
            t = time.perf_counter()
            result = await client.call_tool("shout", {"text": f"call {i}"})
            times.append(time.perf_counter() - t)
            assert result.content[0].text == f"CALL {i}"
    return startup, times


def inkagent(calls: int) -> tuple[float, list[float]]:
    from inkagent.actions import ActionExecutor, MCPToolset
    from inkagent.schema import ToolCall

    started = time.perf_counter()
    with MCPToolset(command=[sys.executable, str(SERVER)], name="demo") as toolset:
        executor = ActionExecutor([toolset])
        startup = time.perf_counter() - started
        times = []
        for i in range(calls):
            t = time.perf_counter()
            result = executor.run(ToolCall(name="demo.shout", arguments={"text": f"call {i}"}))
            times.append(time.perf_counter() - t)
            assert result.output == f"CALL {i}", result
    return startup, times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3, help="alternate the two this many times")
    args = parser.parse_args()
    base, ink, base_start, ink_start = [], [], [], []
    for _ in range(args.rounds):  # alternating, so a busy machine weighs on both alike
        start, times = asyncio.run(baseline(args.calls))
        base_start.append(start)
        base += times
        start, times = inkagent(args.calls)
        ink_start.append(start)
        ink += times
    base_ms, ink_ms = statistics.median(base) * 1000, statistics.median(ink) * 1000
    print(f"per call (median of {len(base)}): SDK client {base_ms:.2f} ms, inkagent {ink_ms:.2f} ms, "
          f"ratio {ink_ms / base_ms:.2f}x ({ink_ms - base_ms:+.2f} ms)")
    print(f"start-up (launch + handshake + tools/list, median): SDK client {statistics.median(base_start):.2f} s, "
          f"inkagent {statistics.median(ink_start):.2f} s")


if __name__ == "__main__":
    main()
