"""`inkagent bench` against a real `transformers serve` running the tiny random model, with concurrency.

The model babbles, so the accuracy is about 0; what is tested is the plumbing: concurrent requests,
every record answered and scored, the report written. Everything listens on 127.0.0.1.
"""

from __future__ import annotations

import json
import threading

import pytest
from conftest import run_cli
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)

from inkagent.bench.datasets import load_bfcl
from inkagent.bench.harness import BenchOptions, run_benchmark
from inkagent.llms import OpenAICompatible

pytestmark = pytest.mark.slow


class CountingClient(OpenAICompatible):
    """Counts how many requests are in flight at once."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._gate = threading.Lock()
        self.in_flight = self.most_in_flight = 0

    def complete(self, inputs, **gen_params):
        with self._gate:
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return super().complete(inputs, **gen_params)
        finally:
            with self._gate:
                self.in_flight -= 1


def test_bench_cli_against_transformers_serve(serve_url, tiny_model_dir, tmp_path):  # noqa: F811
    config = tmp_path / "served.yaml"
    config.write_text(
        f"llm:\n  type: OpenAICompatible\n  model: {tiny_model_dir}\n  base_url: {serve_url}\n  max_new_tokens: 8\n",
        encoding="utf-8",
    )
    out = tmp_path / "run"
    categories = ["simple_python", "parallel", "irrelevance", "live_relevance"]
    result = run_cli(
        "bench", str(config), "--categories", *categories, "--limit", "3", "--concurrency", "4",
        "--out", str(out), "--json", timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["records"] == 12 and report["meta"]["inference_errors"] == 0
    assert set(report["categories"]) == set(categories)
    assert sum(1 for _ in (out / "results.jsonl").open()) == 12
    assert (out / "report.md").exists()


@pytest.mark.parametrize("mode", ["prompt", "internlm2"])
def test_requests_run_concurrently(serve_url, tiny_model_dir, tmp_path, mode):  # noqa: F811
    llm = CountingClient(model=str(tiny_model_dir), base_url=serve_url, max_new_tokens=6)
    suite = load_bfcl(["simple_python", "irrelevance"])
    options = BenchOptions(
        mode=mode, out_dir=tmp_path / "run", concurrency=4, limit=4, gen_params={"do_sample": False}
    )
    report = run_benchmark(llm, suite, options)
    assert report["records"] == 8 and report["meta"]["inference_errors"] == 0
    assert llm.most_in_flight > 1
    # babble is no call: the irrelevance records pass, the simple ones fail to decode
    assert report["categories"]["irrelevance"]["correct"] == 4
