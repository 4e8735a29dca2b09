"""Batch runs: `inkagent run CONFIG --tasks FILE.jsonl [--concurrency N] [--out FILE] [--trace DIR]`.

Each task runs on a fresh agent (its own memory, tools and trace). The model is built once and shared
by all tasks, so weights are loaded once; a `ScriptedLLM` is the exception, since its script is meant
to replay for every task. As each task ends, its result line is appended to `--out` and flushed, so a
run that is killed loses only the tasks that were running; rerunning the same command skips every task
whose id is already in `--out`, except those that failed outside the agent (the backend failed:
`llm_error`; the task crashed: `error`), which run again (the newest line of an id is the one that counts).

Tasks file: one JSON object per line, `{"id": "q1", "task": "..."}`; `id` defaults to the line number.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from ..errors import ConfigError, InkAgentError

logger = logging.getLogger(__name__)

#: Result states that mean "try again": the backend failed, or the task crashed before an answer.
RETRY_STATES = frozenset({"llm_error", "error"})
_BUILD_LOCK = threading.Lock()


@dataclass(frozen=True)
class Task:
    id: str
    task: str


def read_tasks(path: Path) -> list[Task]:
    """The tasks of a JSONL file; any problem is a `ConfigError` naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read the tasks: {exc.strerror or exc}", path=str(path)) from exc
    tasks: list[Task] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(
                f"not valid JSON ({exc.msg}, column {exc.colno})", path=str(path), key=where
            ) from exc
        if not isinstance(record, dict):
            raise ConfigError(
                'expected an object like {"id": "q1", "task": "..."}', path=str(path), key=where
            )
        text = record.get("task")
        if not isinstance(text, str) or not text.strip():
            raise ConfigError('needs a "task" string', path=str(path), key=where)
        task_id = record.get("id", number)
        if not isinstance(task_id, str | int) or isinstance(task_id, bool):
            raise ConfigError(
                f'"id" must be a string or an integer (got {task_id!r})', path=str(path), key=where
            )
        task_id = str(task_id)
        if task_id in seen:
            raise ConfigError(f"id {task_id!r} is also on line {seen[task_id]}", path=str(path), key=where)
        seen[task_id] = number
        tasks.append(Task(task_id, text))
    if not tasks:
        raise ConfigError('holds no tasks (expected one JSON object per line, {"id": "q1", "task": "..."})',
                          path=str(path))
    return tasks


def finished_ids(out: Path) -> set[str]:
    """Ids whose newest line in a results file is final (not a state that is retried)."""
    latest: dict[str, str] = {}
    if not out.exists():
        return set()
    with out.open(encoding="utf-8") as file:
        for line in file:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # the line being written when a run was killed
            if isinstance(record, dict) and "id" in record:
                latest[str(record["id"])] = str(record.get("state", ""))
    return {task_id for task_id, state in latest.items() if state not in RETRY_STATES}


class ResultsFile:
    """Appends result lines, each flushed at once; a torn last line from a killed run is cut first."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        _cut_torn_line(path)
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self._file.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def _cut_torn_line(path: Path) -> None:
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as file:
        data = file.read()
        if data.endswith(b"\n"):
            return
        keep = data.rfind(b"\n") + 1
        logger.warning("%s ends in a partial line (a killed run); removing it", path)
        file.truncate(keep)


def run_batch(config: Any, args: argparse.Namespace) -> int:
    """Run the tasks of `args.tasks` (see the module doc). Returns the exit status of `inkagent run`."""
    if args.concurrency < 1:
        raise ConfigError(f"--concurrency must be 1 or more (got {args.concurrency})")
    tasks_path = Path(args.tasks)
    tasks = read_tasks(tasks_path)
    out = Path(args.out) if args.out else tasks_path.with_name(tasks_path.stem + ".results.jsonl")
    trace_dir = Path(args.trace) if args.trace else out.with_name(out.stem + ".traces")
    done = finished_ids(out)
    todo = [task for task in tasks if task.id not in done]
    outcomes: dict[str, int] = {"answered": 0, "other": 0}
    status = 0
    if todo:
        llm = _shared_llm(config)  # before the progress bar: loading weights logs its own progress
        results = ResultsFile(out)
        progress = _progress(len(tasks), len(tasks) - len(todo))
        try:
            status = _run_all(config, llm, todo, args.concurrency, trace_dir, results, progress, outcomes)
        finally:
            progress.close()
            results.close()
            if llm is not None and callable(getattr(llm, "close", None)):
                llm.close()
    skipped = len(tasks) - len(todo)
    print(
        f"{len(tasks)} tasks: {outcomes['answered']} answered, {outcomes['other']} without an answer"
        f"{f', {skipped} already in {out}' if skipped else ''} · results: {out}",
        file=sys.stderr,
    )
    if status:
        return status
    return 0 if outcomes["other"] == 0 else 1


def _run_all(
    config: Any,
    llm: Any,
    todo: list[Task],
    concurrency: int,
    trace_dir: Path,
    results: ResultsFile,
    progress: _Progress,
    outcomes: dict[str, int],
) -> int:
    stop = threading.Event()
    fatal: list[BaseException] = []
    submitted: list[Future] = []
    recorded: set[Future] = set()

    def record(future: Future) -> None:
        if future in recorded:
            return
        recorded.add(future)
        try:
            result = future.result()
        except InkAgentError as exc:  # the config cannot build an agent: every task would fail the same way
            fatal.append(exc)
            stop.set()
            return
        if result["state"] == "cancelled":
            return  # stopped by Ctrl-C: not a result; it runs again next time
        results.write(result)
        outcomes["answered" if result["state"] == "answered" else "other"] += 1
        progress.advance(result)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="inkagent-task")
    queue = iter(todo)
    try:
        # submit lazily, so that a stop (Ctrl-C, a bad config) leaves the rest of the tasks unstarted
        while True:
            pending = [f for f in submitted if f not in recorded]
            while len(pending) < concurrency and not stop.is_set():
                task = next(queue, None)
                if task is None:
                    break
                future = pool.submit(_run_one, config, llm, task, trace_dir, stop)
                submitted.append(future)
                pending.append(future)
            if not pending:
                break
            finished, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                record(future)
    except KeyboardInterrupt:
        stop.set()
        print(
            "\ninterrupted: waiting for the running tasks to stop (Ctrl-C again to quit now)", file=sys.stderr
        )
        try:
            for future in submitted:
                future.exception()  # running tasks notice `stop` at their next event
                record(future)  # a task that finished meanwhile still gets its line
            pool.shutdown(wait=True)
        except KeyboardInterrupt:
            os._exit(130)  # every finished line is already flushed; running tasks are abandoned
        return 130
    pool.shutdown(wait=True)
    if fatal:
        print(f"error: {fatal[0]}", file=sys.stderr)
        return 2
    return 0


def _run_one(config: Any, llm: Any, task: Task, trace_dir: Path, stop: threading.Event) -> dict[str, Any]:
    """One task on a fresh agent. Anything but a config error becomes a result with state `error`."""
    from .config import build_agent
    from .run import close_agent, run_task

    if stop.is_set():
        return {"id": task.id, "state": "cancelled"}
    trace = trace_dir / f"{_safe_name(task.id)}.trace.jsonl"
    started = time.perf_counter()
    with _BUILD_LOCK:  # one at a time: plugin files are imported on first use, not thread-safely
        agent = build_agent(config, llm=llm, trace=trace)  # a ConfigError here stops the batch
    try:
        outcome = run_task(agent, task.task, stop=stop)
    except Exception as exc:  # a crash in one task must not end the batch; its line says why
        logger.debug("task %s crashed", task.id, exc_info=True)
        outcome = {
            "task": task.task,
            "answer": "",
            "state": "error",
            "error": f"{type(exc).__name__}: {exc}",
            "tool_calls": [],
            "duration_s": round(time.perf_counter() - started, 3),
        }
    finally:
        close_agent(agent)
    return {"id": task.id, **outcome, "trace": str(trace)}


def _shared_llm(config: Any) -> Any:
    """The model every task shares, or None when each task builds its own (a ScriptedLLM)."""
    from ..llms.scripted import ScriptedLLM
    from ..registry import BUILTIN_LLMS, LookupFailed, load_object
    from .config import build_llm

    try:
        backend = load_object(config.llm.type, table=BUILTIN_LLMS, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key="llm.type") from exc
    if isinstance(backend, type) and issubclass(backend, ScriptedLLM):
        return None
    return build_llm(config)


def _safe_name(task_id: str) -> str:
    """A file name for a task id: path separators and odd characters become `_`."""
    name = re.sub(r"[^\w.-]+", "_", task_id).strip("._") or "task"
    return name[:100]


# -- progress -----------------------------------------------------------------------------------------


class _Progress:
    """A line per finished task (stderr); subclasses draw a bar on a terminal."""

    def __init__(self, total: int, skipped: int):
        self.total, self.count = total, skipped
        if skipped:
            print(
                f"{skipped} of {total} tasks already done; running the other {total - skipped}",
                file=sys.stderr,
            )

    def advance(self, result: dict[str, Any]) -> None:
        self.count += 1
        print(f"[{self.count}/{self.total}] {self.describe(result)}", file=sys.stderr, flush=True)

    @staticmethod
    def describe(result: dict[str, Any]) -> str:
        calls = len(result.get("tool_calls") or [])
        return (
            f"{result['id']}: {result['state']} · {calls} tool call{'' if calls == 1 else 's'}"
            f" · {result.get('duration_s', 0):.1f} s"
        )

    def close(self) -> None:
        pass


class _RichProgress(_Progress):
    def __init__(self, total: int, skipped: int):
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        super().__init__(total, skipped)
        self.progress = Progress(
            TextColumn("tasks"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self.bar = self.progress.add_task("tasks", total=total, completed=skipped)
        self.progress.start()

    def advance(self, result: dict[str, Any]) -> None:
        from rich.text import Text

        answered = result["state"] == "answered"
        line = Text.assemble(
            ("✓ " if answered else "✗ ", "green" if answered else "yellow"), self.describe(result)
        )
        self.progress.console.print(line, highlight=False)
        self.progress.advance(self.bar)

    def close(self) -> None:
        self.progress.stop()


def _progress(total: int, skipped: int) -> _Progress:
    if sys.stderr.isatty() and os.environ.get("TERM") != "dumb":
        return _RichProgress(total, skipped)
    return _Progress(total, skipped)
