"""The inkagent-tools suite: size, languages, fixed split, reproducible generator, schemas, oracle runs."""

from __future__ import annotations

import collections
import importlib
import importlib.util
import json
from pathlib import Path

import pytest
from conftest import ROOT, run_cli

from inkagent.bench.bfcl import score
from inkagent.bench.datasets import TOOLS_DIR, load_inkagent_tools
from inkagent.bench.render import render_output


@pytest.fixture(scope="module")
def everything():
    return load_inkagent_tools("all")


def load_generator():
    spec = importlib.util.spec_from_file_location(
        "make_inkagent_tools", ROOT / "scripts" / "make_inkagent_tools.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_at_least_300_cases_in_english_and_chinese_with_a_fixed_split(everything):
    test, train = load_inkagent_tools("test"), load_inkagent_tools("train")
    assert len(everything.records) >= 300
    assert len(test.records) + len(train.records) == len(everything.records)
    assert not {r.id for r in test.records} & {r.id for r in train.records}
    languages = collections.Counter(r.question["language"] for r in everything.records)
    assert set(languages) == {"en", "zh"} and min(languages.values()) > 0.4 * len(everything.records)
    for split in (test, train):
        categories = collections.Counter(r.category for r in split.records)
        assert set(categories) == {"simple", "multiple", "parallel", "parallel_multiple", "irrelevance"}
    # the test split is fixed: the same ids on every load, recorded in the manifest
    manifest = json.loads((TOOLS_DIR / "manifest.json").read_text(encoding="utf-8"))
    assert sum(manifest["counts"]["test"].values()) == len(test.records)
    assert "inkagent-tools 1.0" in test.version and "split test" in test.version


def test_the_generator_reproduces_the_packaged_files(tmp_path):
    generator = load_generator()
    generator.write(tmp_path)
    packaged = sorted(p.relative_to(TOOLS_DIR) for p in TOOLS_DIR.rglob("*.json"))
    regenerated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*.json"))
    assert packaged == regenerated
    for relative in packaged:
        assert (tmp_path / relative).read_bytes() == (TOOLS_DIR / relative).read_bytes(), relative


def test_records_are_well_formed(everything):
    generator = load_generator()
    for record in everything.records:
        offered = {f["name"]: f for f in record.question["function"]}
        assert all(offered[name] == generator.FUNCTIONS[name] for name in offered)
        if record.category == "simple":
            assert len(offered) == 1
        if record.category == "irrelevance":
            assert record.answer is None
            continue
        calls = record.answer["ground_truth"]
        assert len(calls) == (1 if record.category in ("simple", "multiple") else len(calls)) >= 1
        for call in calls:
            ((name, params),) = call.items()
            properties = offered[name]["parameters"]["properties"]
            assert set(params) <= set(properties)
            required = offered[name]["parameters"]["required"]
            assert all(p in params and "" not in params[p] for p in required), record.id


@pytest.mark.parametrize("mode", ["prompt", "internlm2", "openai", "hermes", "react", "native"])
def test_ground_truth_passes_every_case(everything, mode):
    for record in everything.records:
        output = render_output(mode, record.category, record.question, record.answer)
        result = score(record.category, record.question, record.answer, output, mode)
        assert result.valid, (record.id, result.error_type, result.errors[:1], output)


# Where an action exists in the tree, the suite must offer it with the same parameters.
ACTIONS = {
    "IPythonInterpreter": ("inkagent.actions.ipython", "IPythonInterpreter", "IPythonInterpreter"),
    "ImageCaption": ("inkagent.actions.image_caption", "ImageCaption", "ImageCaption"),
    "ImageRetrieval": ("inkagent.actions.image_retrieval", "ImageRetrieval", "ImageRetrieval"),
    "ChatAgent": ("inkagent.agents.chat", "ChatSkill", "ChatSkill"),
    "ImageUnderstanding": ("inkagent.agents.image_understanding", "ImageQuestionSkill", "ImageQuestionSkill"),
    "IllustratedWriter": ("inkagent.agents.writer", "WriteSkill", "WriteSkill"),
    "Weather.current": ("inkagent.actions.weather", "Weather", "Weather.current"),
    "Weather.forecast": ("inkagent.actions.weather", "Weather", "Weather.forecast"),
    "ArxivSearch.get_arxiv_article_information": (
        "inkagent.actions.arxiv",
        "ArxivSearch",
        "ArxivSearch.get_arxiv_article_information",
    ),
}
_JSON_TO_BFCL = {
    "string": "string",
    "integer": "integer",
    "number": "float",
    "boolean": "boolean",
    "array": "array",
}


def _json_type(schema: dict) -> str | None:
    if "type" in schema:
        return schema["type"]
    options = [s for s in schema.get("anyOf", []) if s.get("type") != "null"]
    return options[0].get("type") if len(options) == 1 else None


@pytest.mark.parametrize("name", sorted(ACTIONS))
def test_schemas_match_the_actions_in_the_tree(name):
    module_name, class_name, api_name = ACTIONS[name]
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ModuleNotFoundError, AttributeError):
        pytest.skip(f"{module_name}:{class_name} is not in the tree yet (the suite's schema is a guess)")
    action = object.__new__(cls)  # the schema comes from the method signatures; nothing is loaded
    specs = {bound.spec.name: bound.spec for bound in action.apis()}
    spec = specs[api_name]
    ours = load_generator().FUNCTIONS[name]["parameters"]
    theirs = spec.parameters
    assert set(ours["properties"]) == set(theirs.get("properties", {}))
    assert set(ours["required"]) == set(theirs.get("required", []))
    for param, schema in theirs.get("properties", {}).items():
        assert ours["properties"][param]["type"] == _JSON_TO_BFCL.get(_json_type(schema)), param


def test_oracle_through_inkagent_bench_on_the_test_split(tmp_path):
    config = tmp_path / "oracle.yaml"
    config.write_text(
        "llm:\n  type: inkagent.bench.oracle:OracleLLM\n  suite: inkagent-tools\n  mode: internlm2\n  split: test\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    result = run_cli(
        "bench", str(config), "--suite", "inkagent-tools", "--mode", "internlm2", "--out", str(out), "--json"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["correct"] == report["records"] == len(load_inkagent_tools("test").records)
    assert report["aggregates"] == {"overall": 1.0, "tool_calls": 1.0, "irrelevance": 1.0}
    assert "inkagent-tools 1.0" in report["meta"]["data_version"]
    assert Path(out / "report.md").read_text(encoding="utf-8").count("| irrelevance |") == 2
