"""How long scoring all 3,641 BFCL v4 single-turn records takes (the budget is 2 s).

    python benchmarks/bench_scoring.py [--repeat 5]

The outputs are the ground truth rendered for each mode, so every record goes the whole way through
decoding and the checker. Prints the best time of `--repeat` runs per mode and its ratio to the budget
(below 1.0 is within budget). Loading the data is timed separately; it is not part of scoring.
"""

from __future__ import annotations

import argparse
import time

from inkagent.bench.bfcl import score
from inkagent.bench.datasets import load_bfcl
from inkagent.bench.render import render_output

BUDGET_S = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per mode; the best is reported")
    args = parser.parse_args()

    started = time.perf_counter()
    suite = load_bfcl()
    load_s = time.perf_counter() - started
    print(f"loaded {len(suite.records)} records in {load_s:.3f} s")

    for mode in ("prompt", "internlm2", "native"):
        outputs = [render_output(mode, r.category, r.question, r.answer) for r in suite.records]
        best = float("inf")
        for _ in range(args.repeat):
            started = time.perf_counter()
            passed = sum(
                score(r.category, r.question, r.answer, output, mode).valid
                for r, output in zip(suite.records, outputs, strict=True)
            )
            best = min(best, time.perf_counter() - started)
        rate = len(suite.records) / best
        print(
            f"{mode:>9}: scored {len(suite.records)} records in {best:.3f} s ({rate:,.0f}/s, {passed} valid); "
            f"ratio to the {BUDGET_S:.0f} s budget: {best / BUDGET_S:.3f}"
        )


if __name__ == "__main__":
    main()
