"""Accuracy per category, BFCL's aggregate scores, the failures, and the report files.

BFCL's aggregates (its leaderboard's single-turn columns):
- non-live "Simple" = plain mean of simple_python, simple_java and simple_javascript;
- non-live overall = plain mean of Simple, multiple, parallel and parallel_multiple;
- live overall = record-weighted mean of live_simple, live_multiple, live_parallel, live_parallel_multiple;
- irrelevance = plain mean of irrelevance and live_irrelevance; relevance = live_relevance.
An aggregate is reported only when every category it needs was run (else null).
For inkagent-tools: the record-weighted accuracy over all categories, over the call categories, and
on irrelevance. Both suites also get the accuracy by expected tool when they name few enough functions.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

NON_LIVE_SIMPLE = ("simple_python", "simple_java", "simple_javascript")
NON_LIVE_AST = ("multiple", "parallel", "parallel_multiple")
LIVE_AST = ("live_simple", "live_multiple", "live_parallel", "live_parallel_multiple")
IRRELEVANCE = ("irrelevance", "live_irrelevance")


def category_scores(
    results: list[dict[str, Any]], categories: tuple[str, ...] | list[str]
) -> dict[str, dict]:
    """{category: {correct, total, accuracy}} in the given order (categories with no result left out)."""
    counts: dict[str, list[int]] = {}
    for row in results:
        pair = counts.setdefault(row["category"], [0, 0])
        pair[0] += bool(row.get("valid"))
        pair[1] += 1
    order = list(categories) + sorted(c for c in counts if c not in categories)
    return {
        c: {"correct": counts[c][0], "total": counts[c][1], "accuracy": counts[c][0] / counts[c][1]}
        for c in order
        if c in counts and counts[c][1]
    }


#: Above this many distinct functions (BFCL has thousands) the per-tool table is left out.
MAX_TOOLS_LISTED = 50
NO_CALL = "(no call)"


def tool_scores(results: list[dict[str, Any]]) -> dict[str, dict] | None:
    """{function: {correct, total, accuracy}} over the records whose answer calls it; records that must
    not call anything under "(no call)". None when the results do not say (older results files) or name
    more than `MAX_TOOLS_LISTED` functions."""
    counts: dict[str, list[int]] = {}
    for row in results:
        if "expected_tools" not in row:
            return None
        for name in row["expected_tools"] or [NO_CALL]:
            pair = counts.setdefault(name, [0, 0])
            pair[0] += bool(row.get("valid"))
            pair[1] += 1
    if not counts or len(counts) > MAX_TOOLS_LISTED:
        return None
    return {
        name: {"correct": c, "total": t, "accuracy": c / t}
        for name, (c, t) in sorted(counts.items(), key=lambda item: (-item[1][1], item[0]))
    }


def _mean(values: list[float | None]) -> float | None:
    if not values or any(v is None for v in values):
        return None
    return sum(values) / len(values)  # type: ignore[arg-type]


def _weighted(scores: dict[str, dict], categories: tuple[str, ...]) -> float | None:
    if any(c not in scores for c in categories):
        return None
    total = sum(scores[c]["total"] for c in categories)
    return sum(scores[c]["correct"] for c in categories) / total if total else None


def bfcl_aggregates(scores: dict[str, dict]) -> dict[str, float | None]:
    """BFCL's single-turn aggregate accuracies (see the module docstring)."""

    def acc(category: str) -> float | None:
        return scores[category]["accuracy"] if category in scores else None

    simple = _mean([acc(c) for c in NON_LIVE_SIMPLE])
    return {
        "non_live_simple": simple,
        "non_live_overall": _mean([simple] + [acc(c) for c in NON_LIVE_AST]),
        "live_overall": _weighted(scores, LIVE_AST),
        "irrelevance": _mean([acc(c) for c in IRRELEVANCE]),
        "relevance": acc("live_relevance"),
    }


def tools_aggregates(scores: dict[str, dict]) -> dict[str, float | None]:
    """inkagent-tools: overall, call categories, and irrelevance (record-weighted)."""

    def weighted(categories: list[str]) -> float | None:
        total = sum(scores[c]["total"] for c in categories)
        return sum(scores[c]["correct"] for c in categories) / total if total else None

    calls = [c for c in scores if "relevance" not in c]
    return {
        "overall": weighted(list(scores)),
        "tool_calls": weighted(calls),
        "irrelevance": weighted([c for c in scores if "irrelevance" in c]),
    }


def build_report(
    results: list[dict[str, Any]],
    *,
    suite: str,
    categories: tuple[str, ...] | list[str],
    meta: dict[str, Any],
) -> dict[str, Any]:
    """The whole report as a JSON-able dict: meta, per-category scores, aggregates, failures."""
    scores = category_scores(results, categories)
    aggregates = bfcl_aggregates(scores) if suite == "bfcl" else tools_aggregates(scores)
    failures = [
        {
            "id": row["id"],
            "category": row["category"],
            "error_type": row.get("error_type"),
            "error": _first_error(row.get("errors")),
            "raw_output": row.get("raw_output"),
        }
        for row in results
        if not row.get("valid")
    ]
    error_types = Counter(f["error_type"] or "unknown" for f in failures)
    return {
        "meta": meta,
        "records": len(results),
        "correct": sum(bool(r.get("valid")) for r in results),
        "categories": scores,
        "aggregates": aggregates,
        "tools": tool_scores(results),
        "error_types": dict(error_types.most_common()),
        "failures": failures,
    }


def _first_error(errors: Any) -> str:
    if not errors:
        return ""
    first = errors[0]
    return first if isinstance(first, str) else json.dumps(first, ensure_ascii=False, default=repr)[:500]


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.2f}%"


def render_markdown(report: dict[str, Any], max_failures: int = 50) -> str:
    """The report as Markdown: meta, per-category table, aggregates, error types, some failures."""
    meta = report["meta"]
    lines = [f"# inkagent bench: {meta.get('suite')} ({meta.get('mode')} mode)", ""]
    for key in ("model", "data_version", "data_sha256", "config", "started", "finished"):
        if meta.get(key):
            lines.append(f"- {key.replace('_', ' ')}: `{meta[key]}`")
    if meta.get("mode_hint"):
        lines += ["", f"**{meta['mode_hint']['message']}**"]
    lines += ["", "| category | correct | total | accuracy |", "|---|---:|---:|---:|"]
    for category, score in report["categories"].items():
        lines.append(f"| {category} | {score['correct']} | {score['total']} | {_pct(score['accuracy'])} |")
    lines += ["", "| aggregate | accuracy |", "|---|---:|"]
    for name, value in report["aggregates"].items():
        lines.append(f"| {name} | {_pct(value)} |")
    if report.get("tools"):
        lines += ["", "## Accuracy by expected tool", "", "| tool | correct | total | accuracy |", "|---|---:|---:|---:|"]
        for name, score in report["tools"].items():
            lines.append(f"| `{name}` | {score['correct']} | {score['total']} | {_pct(score['accuracy'])} |")
    if report["error_types"]:
        lines += ["", "## Failures by error type", "", "| error type | count |", "|---|---:|"]
        lines += [f"| `{name}` | {count} |" for name, count in report["error_types"].items()]
        shown = report["failures"][:max_failures]
        lines += ["", f"## Failures (first {len(shown)} of {len(report['failures'])})", ""]
        for failure in shown:
            raw = failure["raw_output"]
            raw_text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False)
            raw_text = (raw_text or "").replace("`", "'").replace("\n", "\\n")[:300]
            error = (failure["error"] or "").replace("|", "\\|").replace("\n", " ")[:300]
            lines.append(f"- `{failure['id']}` `{failure['error_type']}`: {error} — output: `{raw_text}`")
    return "\n".join(lines) + "\n"


def print_table(report: dict[str, Any], console: Any = None) -> None:
    """Per-category and aggregate accuracy as a rich table."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    meta = report["meta"]
    table = Table(title=f"{meta.get('suite')} · {meta.get('mode')} mode · {meta.get('model', '')}")
    table.add_column("category")
    table.add_column("correct", justify="right")
    table.add_column("total", justify="right")
    table.add_column("accuracy", justify="right")
    for category, score in report["categories"].items():
        table.add_row(category, str(score["correct"]), str(score["total"]), _pct(score["accuracy"]))
    table.add_section()
    for name, value in report["aggregates"].items():
        table.add_row(f"[bold]{name}[/bold]", "", "", f"[bold]{_pct(value)}[/bold]")
    console.print(table)
    if report["error_types"]:
        top = ", ".join(f"{name} ×{count}" for name, count in list(report["error_types"].items())[:6])
        console.print(f"failures: {len(report['failures'])} ({top})")
    console.print(f"data: {meta.get('data_version')}")


def write_report(report: dict[str, Any], out_dir: str | Path) -> tuple[Path, Path]:
    """Write `report.json` and `report.md` into `out_dir`; return their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = out / "report.json", out / "report.md"
    json_path.write_text(
        json.dumps(report, ensure_ascii=False, indent=2, default=repr) + "\n", encoding="utf-8"
    )
    md_path.write_text(render_markdown(report), encoding="utf-8")
    return json_path, md_path
