"""Start-up time of the three commands users wait for, against the goals, with an import breakdown.

    inkagent run configs/scripted.yaml                          goal <= 1.0 s  (end to end)
    inkagent run configs/demo.yaml --task "What is 17 * 23?"     goal <= 5.0 s  (end to end)
    inkagent chat configs/demo.yaml                             goal <= 4.0 s  (until its prompt `›`)

Each command runs `--runs` times as a fresh process (`python -m inkagent`, so PYTHONPATH selects the
code), from a temporary directory (traces land there), with `HF_HUB_OFFLINE=1`; `chat` runs in a
pseudo-terminal (pexpect) and is timed until the prompt appears, then left with `/exit`. Figures: the
median wall time (and the fastest), and the median CPU seconds of the process and its children (for
`chat`: until it has exited). Then each `run` command once more under `python -X importtime`: the
seconds spent importing (wall, `self` times), by package group (lagent, torch, transformers,
jupyter, the rest). A module of a group is charged to its group; any other module to the nearest group
it was imported under: what `import lagent` pulls in (jsonschema, its URI grammar...) is lagent's,
torch is torch's even when transformers imports it; modules imported outside any group are "others"
(the largest are listed by top-level package).

    python benchmarks/startup.py [--runs 3] [--no-imports] [--baseline DIR]

Python's bytecode cache is on for the runs (PYTHONDONTWRITEBYTECODE is dropped from their
environment, as users run), and each command runs once unmeasured first, so that the caches exist.
With `--baseline DIR` (another inkagent checkout, e.g. main before a change), every command also runs
with `PYTHONPATH=DIR` and DIR's own configs, alternating with this checkout's runs, and each figure is
printed beside the baseline's, with their ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import pexpect

ROOT = Path(__file__).resolve().parents[1]
TASK = "What is 17 * 23?"
PROMPT = "›"



def commands(root: Path) -> list[tuple[str, list[str], float, bool]]:
    """(label, inkagent arguments, goal in seconds, whether it is timed to the REPL prompt), with the
    configs of the checkout at `root`."""
    return [
        ("inkagent run configs/scripted.yaml", ["run", str(root / "configs/scripted.yaml")], 1.0, False),
        (
            f'inkagent run configs/demo.yaml --task "{TASK}"',
            ["run", str(root / "configs/demo.yaml"), "--task", TASK],
            5.0,
            False,
        ),
        ("inkagent chat configs/demo.yaml (to the prompt)", ["chat", str(root / "configs/demo.yaml")], 4.0, True),
    ]


COMMANDS = commands(ROOT)

#: Package groups of the import breakdown: top-level module names.
GROUPS = {
    "lagent": {"lagent"},
    "torch": {"torch", "functorch", "torchgen", "sympy", "mpmath", "networkx"},
    "transformers": {"transformers", "tokenizers", "safetensors", "huggingface_hub", "sentencepiece"},
    "jupyter": {"jupyter_client", "jupyter_core", "ipykernel", "zmq", "tornado", "traitlets", "IPython"},
}
_IMPORT_LINE = re.compile(r"^import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)\s*$")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _env(home: Path, code: Path = ROOT) -> dict[str, str]:
    """The environment of a measured run of the inkagent checkout at `code`."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "INKAGENT_HOME": str(home), "TERM": "xterm-256color"}
    env["PROMPT_TOOLKIT_NO_CPR"] = "1"
    env["PYTHONPATH"] = os.pathsep.join([str(code), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.pop("NO_COLOR", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # users' runs read cached bytecode
    return env


def time_run(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s, CPU s) of one `inkagent ...` run to its end; raises if it fails."""
    cpu, wall = _children_cpu(), time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "inkagent", *args], cwd=cwd, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - wall, _children_cpu() - cpu
    if done.returncode != 0 or "391" not in done.stdout:
        raise RuntimeError(f"inkagent {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return wall, cpu


def time_prompt(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """(wall s until the REPL's prompt, CPU s until it has exited) of `inkagent chat ...` in a terminal."""
    cpu, wall = _children_cpu(), time.perf_counter()
    child = pexpect.spawn(
        sys.executable, ["-m", "inkagent", *args], env=env, cwd=str(cwd), dimensions=(40, 120), encoding="utf-8"
    )
    try:
        child.expect_exact(PROMPT, timeout=120)
        wall = time.perf_counter() - wall
        child.send("/exit\r")
        child.expect(pexpect.EOF, timeout=60)
    finally:
        child.close(force=True)
    return wall, _children_cpu() - cpu


def _group_of(module: str) -> str | None:
    package = module.partition(".")[0]
    return next((name for name, members in GROUPS.items() if package in members), None)


def import_breakdown(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[dict[str, float], dict[str, float]]:
    """Seconds of imports by group, and of the "others" by top-level package, of one run under `-X importtime`.

    importtime prints the import tree in post-order (a module after the ones it imported, indented
    one step deeper); each module's `self` time goes to its own group, else to its nearest importer's.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "inkagent", *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    stack: list[tuple[int, str, float, list]] = []  # (depth, module, self s, children): subtrees not yet adopted
    for line in done.stderr.splitlines():
        match = _IMPORT_LINE.match(line)
        if not match:
            continue
        depth = len(match.group(3))
        children = []
        while stack and stack[-1][0] > depth:
            children.append(stack.pop())
        stack.append((depth, match.group(4), int(match.group(1)) / 1e6, children))
    by_group: dict[str, float] = defaultdict(float)
    others: dict[str, float] = defaultdict(float)

    def charge(node: tuple[int, str, float, list], group: str | None) -> None:
        _depth, module, seconds, children = node
        group = _group_of(module) or group
        by_group[group or "others"] += seconds
        if group is None:
            others[module.partition(".")[0]] += seconds
        for child in children:
            charge(child, group)

    for root in stack:
        charge(root, None)
    return dict(by_group), dict(others)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="runs of each command")
    parser.add_argument("--no-imports", action="store_true", help="skip the -X importtime breakdown")
    parser.add_argument("--baseline", type=Path, help="another inkagent checkout to compare with, run alternately")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="inkagent-startup-") as tmp:
        cwd = Path(tmp)
        sides = {"this": (commands(ROOT), _env(cwd / "home"))}
        if args.baseline:
            base = args.baseline.resolve()
            sides["baseline"] = (commands(base), _env(cwd / "home", base))
        samples: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
        for run in range(args.runs + 1):  # the commands alternate, so machine load hits all alike
            for side, (side_commands, env) in sides.items():
                for label, command, _goal, to_prompt in side_commands:
                    timer = time_prompt if to_prompt else time_run
                    sample = timer(command, cwd, env)
                    if run:  # the first round only fills the bytecode caches
                        samples[side, label].append(sample)

        print(f"start-up, {args.runs} runs each (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
        print(f"{'command':58} {'wall s':>7} {'fastest':>8} {'CPU s':>6}   goal")
        for label, _command, goal, _ in COMMANDS:
            for side in sides:
                walls = [wall for wall, _ in samples[side, label]]
                wall, cpu = statistics.median(walls), statistics.median(cpu for _, cpu in samples[side, label])
                verdict = "met" if wall <= goal else f"{wall / goal:.1f}x the goal"
                name = label if side == "this" else f"  baseline ({args.baseline})"
                line = f"{name:58} {wall:7.2f} {min(walls):8.2f} {cpu:6.2f}   <= {goal:.1f} s: {verdict}"
                if side == "baseline":
                    this_wall = statistics.median(wall for wall, _ in samples["this", label])
                    this_cpu = statistics.median(cpu for _, cpu in samples["this", label])
                    line += f"; this/baseline: wall {this_wall / wall:.2f}x, CPU {this_cpu / cpu:.2f}x"
                print(line)

        if args.no_imports:
            return
        print("\nimport time by package group, seconds (python -X importtime, one run):")
        names = [*GROUPS, "others"]
        print(f"{'command':58} " + " ".join(f"{name:>12}" for name in names) + f" {'total':>7}")
        for label, command, _goal, to_prompt in COMMANDS:
            if to_prompt:
                continue  # the same imports as `run` with the same config, up to the prompt
            by_group, others = import_breakdown(command, cwd, sides["this"][1])
            cells = " ".join(f"{by_group.get(name, 0.0):12.2f}" for name in names)
            print(f"{label:58} {cells} {sum(by_group.values()):7.2f}")
            largest = sorted(((s, p) for p, s in others.items()), reverse=True)[:8]
            print(f"{'':58} others: " + ", ".join(f"{p} {s:.2f}" for s, p in largest))


if __name__ == "__main__":
    main()
