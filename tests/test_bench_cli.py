"""`inkagent bench` end to end: the oracle and abstaining backends give the expected numbers; runs
resume; bad input is a clear error."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import run_cli

from inkagent.bench.harness import RESULTS_FILE, read_results

ORACLE_PROMPT = {  # (correct, total) per category: see bfcl.IMPOSSIBLE_RECORDS and friends
    "simple_python": (400, 400),
    "simple_java": (98, 100),  # simple_java_36 and _65 cannot pass
    "simple_javascript": (50, 50),
    "multiple": (200, 200),
    "parallel": (200, 200),
    "parallel_multiple": (200, 200),
    "irrelevance": (240, 240),
    "live_simple": (256, 258),  # two README records
    "live_multiple": (1050, 1053),  # three README records
    "live_parallel": (16, 16),
    "live_parallel_multiple": (24, 24),
    # three prompts also appear in live_simple / live_multiple wanting a call; the oracle calls there
    "live_irrelevance": (881, 884),
    "live_relevance": (16, 16),
}


def write_config(tmp_path: Path, name: str, llm: dict) -> Path:
    path = tmp_path / f"{name}.yaml"
    lines = ["llm:"] + [f"  {key}: {value}" for key, value in llm.items()]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def bench(config: Path, *args: str):
    result = run_cli("bench", str(config), *args, "--json")
    report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
    return result, report


def scores(report: dict) -> dict:
    return {c: (s["correct"], s["total"]) for c, s in report["categories"].items()}


def test_oracle_scores_the_ground_truth_through_inkagent_bench(tmp_path):
    config = write_config(tmp_path, "oracle", {"type": "inkagent.bench.oracle:OracleLLM", "suite": "bfcl"})
    out = tmp_path / "run"
    result, report = bench(config, "--suite", "bfcl", "--mode", "prompt", "--out", str(out), "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    assert scores(report) == ORACLE_PROMPT
    aggregates = report["aggregates"]
    assert aggregates["non_live_simple"] == pytest.approx((1 + 0.98 + 1) / 3)
    assert aggregates["non_live_overall"] == pytest.approx(((1 + 0.98 + 1) / 3 + 3) / 4)
    assert aggregates["live_overall"] == pytest.approx((256 + 1050 + 16 + 24) / (258 + 1053 + 16 + 24))
    assert aggregates["irrelevance"] == pytest.approx((1 + 881 / 884) / 2)
    assert aggregates["relevance"] == 1.0
    assert report["meta"]["data_version"].startswith("BFCL v4") and len(report["meta"]["data_sha256"]) == 64
    assert report["error_types"] == {
        "simple_function_checker:missing_required": 4,
        "irrelevance_error:decoder_success": 3,
        "value_error:list/tuple": 2,
        "simple_function_checker:unexpected_param": 1,
    }
    assert len(read_results(out / RESULTS_FILE)) == 3641
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "| simple_java | 98 | 100 | 98.00% |" in markdown and "6ea57973" in markdown
    assert (
        json.loads((out / "report.json").read_text(encoding="utf-8"))["correct"] == report["correct"] == 3631
    )


def test_abstaining_model_scores_only_on_irrelevance(tmp_path):
    config = write_config(tmp_path, "abstain", {"type": "inkagent.bench.oracle:AbstainLLM"})
    result, report = bench(config, "--out", str(tmp_path / "run"), "--concurrency", "4")
    assert result.returncode == 0, result.stderr
    expected = {c: (total if "irrelevance" in c else 0, total) for c, (_, total) in ORACLE_PROMPT.items()}
    assert scores(report) == expected
    assert report["aggregates"] == {
        "non_live_simple": 0.0,
        "non_live_overall": 0.0,
        "live_overall": 0.0,
        "irrelevance": 1.0,
        "relevance": 0.0,
    }
    assert report["error_types"] == {"ast_decoder:decoder_failed": 2501, "relevance_error:decoder_failed": 16}


@pytest.mark.parametrize("mode", ["internlm2", "native"])
def test_oracle_in_the_other_modes(tmp_path, mode):
    config = write_config(tmp_path, "oracle", {"type": "inkagent.bench.oracle:OracleLLM", "mode": mode})
    args = ["--mode", mode, "--limit", "25", "--out", str(tmp_path / "run"), "--concurrency", "3"]
    result, report = bench(config, *args)
    assert result.returncode == 0, result.stderr
    failed = {f["id"] for f in report["failures"]}
    assert failed <= {"live_simple_29-7-2", "live_simple_106-63-0", "live_simple_112-68-0"}
    assert report["records"] == sum(min(25, total) for _, total in ORACLE_PROMPT.values())
    assert report["meta"]["mode"] == mode


def test_an_interrupted_run_resumes_and_retries_failed_requests(tmp_path):
    (tmp_path / "flaky.py").write_text(
        "from inkagent.bench.oracle import OracleLLM\n"
        "from inkagent.errors import LLMError\n\n"
        "class Flaky(OracleLLM):\n"
        "    def __init__(self, fail_first=0, **kwargs):\n"
        "        super().__init__(**kwargs)\n"
        "        self.fail_first = fail_first\n\n"
        "    def answer(self, inputs, tools=None):\n"
        "        with self._lock:\n"
        "            self.fail_first -= 1\n"
        "            failing = self.fail_first >= 0\n"
        "        if failing:\n"
        "            raise LLMError('server unavailable (HTTP 503)')\n"
        "        return super().answer(inputs, tools)\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    args = ["--categories", "simple_python", "multiple", "--limit", "10", "--out", str(out), "--mode", "prompt"]
    first = write_config(tmp_path, "first", {"type": "./flaky.py:Flaky", "fail_first": 4})
    result, report = bench(first, *args)
    assert result.returncode == 1  # finished, but some calls failed
    assert report["meta"]["inference_errors"] == 4
    assert report["error_types"]["inference_error"] == 4
    assert "--resume" in result.stderr

    again = run_cli("bench", str(first), *args)
    assert again.returncode == 2 and "--resume" in again.stderr  # will not mix two runs silently

    second = write_config(tmp_path, "second", {"type": "./flaky.py:Flaky", "fail_first": 0})
    result, report = bench(second, *args, "--resume")
    assert result.returncode == 0, result.stderr
    assert report["records"] == 20 and report["correct"] == 20
    assert len(read_results(out / RESULTS_FILE)) == 24  # 20 rows, then the 4 retried ones appended

    # --limit grows: a resumed run asks only for the new records
    result, report = bench(second, *args[:3], "--limit", "12", "--out", str(out), "--mode", "prompt", "--resume")
    assert result.returncode == 0 and report["records"] == 24
    assert len(read_results(out / RESULTS_FILE)) == 28

    mixed = run_cli("bench", str(second), *args[:-2], "--resume", "--mode", "internlm2")
    assert mixed.returncode == 2 and "mode=prompt" in mixed.stderr  # one run, one mode


def test_bad_input_is_a_clear_error(tmp_path):
    abstain = write_config(tmp_path, "abstain", {"type": "inkagent.bench.oracle:AbstainLLM"})
    result = run_cli("bench", str(abstain), "--categories", "simple_rust")
    assert result.returncode == 2 and "simple_rust" in result.stderr and "simple_python" in result.stderr
    result = run_cli("bench", str(abstain), "--resume")
    assert result.returncode == 2 and "--out" in result.stderr
    scripted = write_config(tmp_path, "scripted", {"type": "ScriptedLLM"})
    result = run_cli("bench", str(scripted), "--mode", "native", "--out", str(tmp_path / "n"))
    assert result.returncode == 2 and "chat_with_tools" in result.stderr
    result = run_cli("bench", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2 and "missing.yaml" in result.stderr


@pytest.mark.parametrize(
    ("agent", "mode"),
    [("", "internlm2"), ("agent:\n  protocol: hermes\n", "hermes"), ("agent:\n  protocol: react\n", "react"),
     ("agent:\n  type: ChatAgent\n", "prompt")],
)
def test_the_default_mode_follows_the_configs_protocol(tmp_path, agent, mode):
    config = tmp_path / "oracle.yaml"
    config.write_text(f"llm:\n  type: inkagent.bench.oracle:OracleLLM\n  mode: {mode}\n{agent}", encoding="utf-8")
    result, report = bench(config, "--categories", "simple_python", "irrelevance", "--limit", "5",
                           "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert report["meta"]["mode"] == mode and report["correct"] == report["records"] == 10


def test_when_nothing_decodes_the_report_names_the_mode_that_would(tmp_path):
    call = '<|action_start|><|plugin|>\\n{\\"name\\": \\"f\\", \\"parameters\\": {}}<|action_end|>\\n'
    config = write_config(tmp_path, "internlm2_model", {"type": "ScriptedLLM", "cycle": "true",
                                                         "responses": f'["{call}"]'})
    result, report = bench(config, "--mode", "prompt", "--categories", "simple_python", "live_relevance",
                           "--limit", "3", "--out", str(tmp_path / "run"))
    assert result.returncode == 0, result.stderr
    assert report["correct"] == 0
    assert report["meta"]["mode_hint"]["mode"] == "internlm2" and report["meta"]["mode_hint"]["decoded"] == 6
    assert "rerun with --mode internlm2" in result.stderr
    assert "rerun with --mode internlm2" in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")
