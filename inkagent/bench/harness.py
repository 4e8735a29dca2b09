"""Run a model over a suite: requests in a thread pool, results appended as they finish, resumable.

Each finished record is one JSON line in `<out>/results.jsonl` (flushed at once, so an interrupted run
keeps everything it finished); `resume=True` skips the ids already there. A request that fails (server
down, timeout) is written with `inference_error: true` and error type `inference_error`; a resumed
run asks for those again. The report (`report.json`, `report.md`) is built from the whole file.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError, InkAgentError
from .bfcl import MODES, NATIVE_MODES, jsonable, score
from .datasets import BenchRecord, Suite
from .modes import mode_hint
from .prompts import build_request
from .report import build_report, write_report

logger = logging.getLogger(__name__)

RESULTS_FILE = "results.jsonl"
RUN_FILE = "run.json"
_MAX_RAW_CHARS = 8000


@dataclass
class BenchOptions:
    """How to run: mode, output folder, concurrency, resume, and generation parameters."""

    mode: str = "prompt"  # `inkagent bench` passes the config's protocol (see modes.default_mode)
    out_dir: Path = Path("runs/bench")
    concurrency: int = 1
    resume: bool = False
    limit: int | None = None
    prompt_language: str = "en"
    #: BFCL's language notes in the function docs (set by `run_benchmark`: on for the bfcl suite)
    language_hints: bool = True
    gen_params: dict[str, Any] = field(default_factory=dict)


def select_records(suite: Suite, limit: int | None) -> list[BenchRecord]:
    """The suite's records, at most `limit` from each category (in file order)."""
    if limit is None:
        return list(suite.records)
    return [r for records in suite.by_category().values() for r in records[:limit]]


def read_results(path: Path) -> list[dict[str, Any]]:
    """The rows of a results file; a torn last line (killed mid-write) is skipped with a warning."""
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                logger.warning("%s:%d is not valid JSON (an interrupted write?); it is ignored", path, number)
    return rows


def latest_rows(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """One row per id, the last one written (a resumed run re-asks the records that failed to run)."""
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["id"]] = row
    return latest


def ask(llm: Any, record: BenchRecord, options: BenchOptions) -> Any:
    """Send one record to the model in the chosen mode; the raw output to score."""
    request = build_request(
        options.mode,
        record.category,
        record.question,
        prompt_language=options.prompt_language,
        language_hints=options.language_hints,
    )
    if options.mode in NATIVE_MODES:
        chat_with_tools = getattr(llm, "chat_with_tools", None)
        if chat_with_tools is None:
            raise ConfigError(
                f"--mode {options.mode} needs a backend that sends tools (OpenAICompatible with mode: chat); "
                f"{type(llm).__name__} has no chat_with_tools"
            )
        completion = chat_with_tools(request.messages, request.tools, **options.gen_params)
        calls = list(getattr(completion, "tool_calls", None) or [])
        return calls if calls else getattr(completion, "text", "")
    return llm.chat(request.messages, **options.gen_params)


def expected_tools(record: BenchRecord) -> list[str]:
    """The functions a correct answer calls (none for an irrelevance record)."""
    return sorted({name for call in (record.answer or {}).get("ground_truth", []) for name in call})


def _row(record: BenchRecord, raw: Any, mode: str, elapsed: float) -> dict[str, Any]:
    result = score(record.category, record.question, record.answer, raw, mode)
    stored = raw[:_MAX_RAW_CHARS] if isinstance(raw, str) else raw
    row = {"id": record.id, "category": record.category, "latency_s": round(elapsed, 4), "raw_output": stored}
    row["expected_tools"] = expected_tools(record)
    row.update(result.to_dict())
    row["errors"] = row["errors"][:3]
    row["decoded"] = jsonable(result.decoded)
    return row


def _check_same_run(path: Path, identity: dict[str, str], resume: bool) -> None:
    """A results folder holds one suite in one mode: refuse to resume it with another."""
    if resume and path.exists():
        recorded = json.loads(path.read_text(encoding="utf-8"))
        for key, value in identity.items():
            if recorded.get(key) != value:
                raise ConfigError(
                    f"{path.parent} holds a {key}={recorded.get(key)} run; this one is {key}={value}"
                )
    path.write_text(json.dumps(identity) + "\n", encoding="utf-8")


def check_setup(llm: Any, options: BenchOptions) -> None:
    """Raise `ConfigError` for a run that cannot work, before any request is sent."""
    if options.mode not in MODES:
        raise ConfigError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if options.concurrency < 1:
        raise ConfigError(f"concurrency must be at least 1, got {options.concurrency}")
    if options.mode in NATIVE_MODES and not callable(getattr(llm, "chat_with_tools", None)):
        raise ConfigError(
            f"--mode {options.mode} needs a backend that sends tools (OpenAICompatible with mode: chat); "
            f"{type(llm).__name__} has no chat_with_tools"
        )
    if options.mode in NATIVE_MODES and getattr(llm, "mode", None) == "completions":
        raise ConfigError(
            f"--mode {options.mode} sends tools over the chat API: set `mode: chat` in the config's llm section"
        )


def run_benchmark(
    llm: Any,
    suite: Suite,
    options: BenchOptions,
    *,
    meta: dict[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Run `llm` over the suite's records and return the report (also written to `options.out_dir`).

    `on_progress(done, total)` is called after each record (from the calling thread).
    """
    check_setup(llm, options)
    options = replace(options, language_hints=suite.name == "bfcl")
    out = Path(options.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / RESULTS_FILE
    records = select_records(suite, options.limit)
    previous = latest_rows(read_results(results_path)) if options.resume else {}
    if not options.resume and results_path.exists() and results_path.stat().st_size:
        raise ConfigError(
            f"{results_path} exists: pass --resume to continue that run, or choose another --out"
        )
    todo = [r for r in records if r.id not in previous or previous[r.id].get("inference_error")]
    _check_same_run(out / RUN_FILE, {"suite": suite.name, "mode": options.mode}, options.resume)
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    done = len(records) - len(todo)
    if on_progress:
        on_progress(done, len(records))

    def work(record: BenchRecord) -> dict[str, Any]:
        clock = time.perf_counter()
        try:
            raw = ask(llm, record, options)
        except ConfigError:
            raise
        except (InkAgentError, OSError, TimeoutError) as exc:
            logger.warning("%s: the model call failed: %s", record.id, exc)
            return {
                "id": record.id,
                "category": record.category,
                "valid": False,
                "error_type": "inference_error",
                "errors": [f"{type(exc).__name__}: {exc}"],
                "raw_output": None,
                "inference_error": True,
                "expected_tools": expected_tools(record),
            }
        return _row(record, raw, options.mode, time.perf_counter() - clock)

    with results_path.open("a", encoding="utf-8") as sink, ThreadPoolExecutor(options.concurrency) as pool:
        futures = [pool.submit(work, record) for record in todo]
        try:
            for future in as_completed(futures):
                row = future.result()  # rows are written here, by this thread only
                sink.write(json.dumps(row, ensure_ascii=False, default=repr) + "\n")
                sink.flush()
                done += 1
                if on_progress:
                    on_progress(done, len(records))
        except BaseException:
            for future in futures:
                future.cancel()
            raise

    wanted = {r.id for r in records}
    rows = [row for row_id, row in latest_rows(read_results(results_path)).items() if row_id in wanted]
    order = {r.id: i for i, r in enumerate(records)}
    rows.sort(key=lambda row: order[row["id"]])
    full_meta = {
        "suite": suite.name,
        "mode": options.mode,
        "data_version": suite.version,
        "data_sha256": suite.data_sha256,
        "limit_per_category": options.limit,
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "inference_errors": sum(1 for row in rows if row.get("inference_error")),
        **(meta or {}),
    }
    hint = mode_hint(rows, options.mode)
    if hint is not None:
        full_meta["mode_hint"] = hint
        logger.warning("%s", hint["message"])
    report = build_report(rows, suite=suite.name, categories=suite.categories, meta=full_meta)
    write_report(report, out)
    return report
