"""`inkagent bench CONFIG --suite bfcl|inkagent-tools`: measure a model's tool-call accuracy.

The config is the one `inkagent run` reads; only its `llm:` section is used. Results go to
`--out` (default `runs/bench-<suite>-<mode>-<time>/`): `results.jsonl` (one line per record, written as
each finishes; `--resume` continues an interrupted run), `report.json` and `report.md`.

Exit codes: 0 done, 1 done but some model calls failed (rerun with --resume), 2 bad config or usage.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

MODE_HELP = """\
modes (default: the config's agent protocol, `agent.protocol`; internlm2 for the InternLM2 agent):
  internlm2  the InternLM2 plugin protocol: functions in the plugin prompt, <|plugin|> calls decoded
  openai     native function calling: `tools` sent to an OpenAICompatible backend in mode: chat
             (`native` is the same)
  hermes     <tool_call> JSON in text, functions in the system prompt (Qwen2.5, Qwen3, Hermes)
  react      lagent's ReAct prompt: Thought / Action / Action Input fields
  prompt     BFCL's prompt mode: the functions in the system prompt, the answer a Python list of calls
  Every protocol mode decodes with the agent's own parser. When no output decodes in the chosen
  mode, the report names the mode in which they do.

example:
  inkagent bench configs/internlm2-vllm.yaml --suite bfcl --categories simple_python multiple --limit 20 \\
      --concurrency 8 --out runs/bfcl-smoke
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from ..bench.bfcl import MODES
    from ..bench.datasets import SPLITS, SUITES

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = (
        MODE_HELP + "\nexit codes: 0 done, 1 some model calls failed (use --resume), 2 bad config or usage"
    )
    parser.add_argument("config", help="YAML config (its llm: section names the backend)")
    parser.add_argument("--suite", choices=SUITES, default="bfcl", help="benchmark suite (default: bfcl)")
    parser.add_argument("--categories", nargs="+", metavar="CATEGORY", help="only these categories")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N records per category")
    parser.add_argument(
        "--out", metavar="DIR", help="results folder (default runs/bench-<suite>-<mode>-<time>)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=1, metavar="N", help="requests in flight (default 1)"
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out, skipping finished records"
    )
    parser.add_argument(
        "--mode", choices=MODES, default=None,
        help="how the model is asked (default: the config's agent protocol; see below)",
    )
    parser.add_argument(
        "--split", choices=SPLITS, default="test", help="inkagent-tools split (default: test)"
    )
    parser.add_argument("--prompt-language", choices=("en", "zh"), default="en", help="internlm2 prompt set")
    parser.add_argument(
        "--data", metavar="DIR", help="data folder in the suite's layout (default: bundled copy)"
    )
    parser.add_argument("--max-new-tokens", type=int, metavar="N", help="generation budget per answer")
    parser.add_argument("--temperature", type=float, help="sample at this temperature (default: greedy)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")


def _gen_params(args: argparse.Namespace) -> dict:
    params: dict = {"do_sample": False}
    if args.temperature is not None and args.temperature > 0:
        params = {"do_sample": True, "temperature": args.temperature}
    if args.max_new_tokens:
        params["max_new_tokens"] = args.max_new_tokens
    return params


def run(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ..bench.datasets import load_suite
    from ..bench.harness import BenchOptions, check_setup
    from ..bench.modes import default_mode
    from ..bench.report import print_table
    from ..errors import ConfigError, InkAgentError
    from .config import build_llm, load_config

    console = Console(stderr=True)
    out: Path | None = None
    try:
        if args.resume and not args.out:
            raise ConfigError("--resume needs --out (the folder of the run to continue)")
        if args.limit is not None and args.limit < 1:
            raise ConfigError("--limit must be at least 1")
        config = load_config(args.config)
        suite = load_suite(args.suite, args.categories, args.split, args.data)
        mode = args.mode or default_mode(config)
        out = Path(args.out or f"runs/bench-{args.suite}-{mode}-{time.strftime('%Y%m%d-%H%M%S')}")
        llm = build_llm(config)
        options = BenchOptions(
            mode=mode,
            out_dir=out,
            concurrency=args.concurrency,
            resume=args.resume,
            limit=args.limit,
            prompt_language=args.prompt_language,
            gen_params=_gen_params(args),
        )
        check_setup(llm, options)
        meta = {"config": str(args.config), "model": config.llm.type + _model_name(config)}
        report = _run_with_progress(llm, suite, options, meta, console)
    except InkAgentError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=True, highlight=False)
        return 2
    except KeyboardInterrupt:
        where = f"{out}/results.jsonl" if out else "nowhere yet"
        console.print(f"interrupted; finished records are in {where} (continue with --resume)")
        return 130
    if args.json:
        print(json.dumps(report, ensure_ascii=False, indent=2, default=repr))
    else:
        print_table(report, Console())
        console.print(f"report: {out / 'report.md'} and {out / 'report.json'}")
    if report["meta"].get("mode_hint"):
        console.print(f"[yellow]{report['meta']['mode_hint']['message']}[/yellow]", highlight=False)
    if report["meta"]["inference_errors"]:
        console.print(
            f"[yellow]{report['meta']['inference_errors']} model calls failed; rerun with --resume --out {out}[/yellow]"
        )
        return 1
    return 0


def _model_name(config) -> str:
    extra = config.llm.kwargs
    name = extra.get("model") or extra.get("path")
    return f" ({name})" if name else ""


def _run_with_progress(llm, suite, options, meta, console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from ..bench.harness import run_benchmark

    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console) as progress:
        task = progress.add_task(f"{suite.name} · {options.mode}", total=None)

        def update(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        return run_benchmark(llm, suite, options, meta=meta, on_progress=update)
