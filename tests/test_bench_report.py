"""The report: BFCL's aggregate formulas, the failure listing, and reading results files."""

from __future__ import annotations

import json

import pytest

from inkagent.bench.datasets import load_bfcl
from inkagent.bench.harness import BenchOptions, read_results, run_benchmark
from inkagent.bench.report import bfcl_aggregates, build_report, category_scores, render_markdown
from inkagent.errors import ConfigError
from inkagent.llms import OpenAICompatible


def rows(category: str, correct: int, total: int) -> list[dict]:
    return [
        {
            "id": f"{category}_{i}",
            "category": category,
            "valid": i < correct,
            "error_type": None if i < correct else "x",
        }
        for i in range(total)
    ]


def test_bfcl_aggregates_mix_plain_and_record_weighted_means():
    results = (
        rows("simple_python", 9, 10) + rows("simple_java", 1, 2) + rows("simple_javascript", 0, 1)
        + rows("multiple", 1, 1) + rows("parallel", 1, 2) + rows("parallel_multiple", 0, 1)
        + rows("live_simple", 3, 4) + rows("live_multiple", 1, 4) + rows("live_parallel", 0, 1)
        + rows("live_parallel_multiple", 1, 1) + rows("irrelevance", 1, 1) + rows("live_irrelevance", 1, 4)
        + rows("live_relevance", 1, 2)
    )  # fmt: skip
    aggregates = bfcl_aggregates(category_scores(results, []))
    simple = (0.9 + 0.5 + 0.0) / 3  # plain mean, not 10/13
    assert aggregates["non_live_simple"] == pytest.approx(simple)
    assert aggregates["non_live_overall"] == pytest.approx((simple + 1.0 + 0.5 + 0.0) / 4)
    assert aggregates["live_overall"] == pytest.approx((3 + 1 + 0 + 1) / (4 + 4 + 1 + 1))  # record-weighted
    assert aggregates["irrelevance"] == pytest.approx((1.0 + 0.25) / 2)
    assert aggregates["relevance"] == 0.5


def test_an_aggregate_needs_all_of_its_categories():
    aggregates = bfcl_aggregates(category_scores(rows("simple_python", 1, 1) + rows("multiple", 1, 1), []))
    assert aggregates == {
        "non_live_simple": None,
        "non_live_overall": None,
        "live_overall": None,
        "irrelevance": None,
        "relevance": None,
    }


def test_markdown_lists_failures_by_error_type():
    results = rows("simple_python", 1, 3)
    results[1]["errors"] = ["Missing required parameter: 'x'."]
    results[1]["raw_output"] = "[f(y=1)]"
    report = build_report(
        results, suite="bfcl", categories=["simple_python"], meta={"suite": "bfcl", "mode": "prompt"}
    )
    text = render_markdown(report)
    assert "| simple_python | 1 | 3 | 33.33% |" in text
    assert "| `x` | 2 |" in text
    assert "`simple_python_1` `x`: Missing required parameter: 'x'. — output: `[f(y=1)]`" in text


def test_a_torn_last_line_is_ignored(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(
        json.dumps({"id": "a", "category": "c", "valid": True}) + "\n" + '{"id": "b", "categ',
        encoding="utf-8",
    )
    assert [row["id"] for row in read_results(path)] == ["a"]


def test_native_mode_needs_the_chat_api(tmp_path):
    llm = OpenAICompatible(model="m", base_url="http://127.0.0.1:9/v1", mode="completions")
    options = BenchOptions(mode="native", out_dir=tmp_path / "run", limit=1)
    with pytest.raises(ConfigError, match="mode: chat"):
        run_benchmark(llm, load_bfcl(["simple_python"]), options)


def test_accuracy_by_expected_tool():
    results = [
        {"id": "a", "category": "simple", "valid": True, "expected_tools": ["Weather.current"]},
        {"id": "b", "category": "parallel", "valid": False, "error_type": "x", "expected_tools": ["Weather.current"]},
        {"id": "c", "category": "parallel_multiple", "valid": True, "expected_tools": ["ArxivSearch", "Weather.current"]},
        {"id": "d", "category": "irrelevance", "valid": True, "expected_tools": []},
    ]  # fmt: skip
    report = build_report(results, suite="inkagent-tools", categories=[], meta={})
    assert report["tools"] == {
        "Weather.current": {"correct": 2, "total": 3, "accuracy": 2 / 3},
        "(no call)": {"correct": 1, "total": 1, "accuracy": 1.0},
        "ArxivSearch": {"correct": 1, "total": 1, "accuracy": 1.0},
    }
    assert "| `Weather.current` | 2 | 3 | 66.67% |" in render_markdown(report)
    # results written before the field existed, or a suite of thousands of functions (BFCL): no table
    old = [{"id": "x", "category": "simple", "valid": True}]
    assert build_report(old, suite="bfcl", categories=[], meta={})["tools"] is None
    many = [{"id": str(i), "category": "simple", "valid": True, "expected_tools": [f"f{i}"]} for i in range(51)]
    assert build_report(many, suite="bfcl", categories=[], meta={})["tools"] is None
