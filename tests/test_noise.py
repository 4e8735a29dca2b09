"""Quiet by default: no weight-loading bar, one line per hub failure, an empty tasks file is an error."""

from __future__ import annotations

import subprocess
import sys

from conftest import free_port, run_cli
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)


def test_loading_a_model_draws_no_loading_weights_bar(tiny_model_dir, capfd):  # noqa: F811
    from inkagent.llms import HFTransformer

    HFTransformer(str(tiny_model_dir), device="cpu")
    _, err = capfd.readouterr()
    assert "Loading weights" not in err


def test_an_unreachable_hub_prints_one_line_not_a_flood_of_retries():
    url = f"http://127.0.0.1:{free_port()}/internlm/model/resolve/main/config.json"  # nothing listens
    code = (
        "import logging\n"
        "from inkagent.runners.logsetup import configure_logging\n"
        "configure_logging(logging.WARNING)\n"
        "from huggingface_hub.utils import http_backoff\n"
        "for _ in range(2):\n"
        "    try:\n"
        f"        http_backoff('HEAD', {url!r}, max_retries=5, base_wait_time=0.01, max_wait_time=0.01)\n"
        "    except Exception as exc:\n"
        "        print('failed:', type(exc).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.stdout.count("failed:") == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and url in lines[0], proc.stderr


def test_an_empty_tasks_file_exits_2_with_a_message(tmp_path):
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text("\n  \n")
    config = tmp_path / "c.yaml"
    config.write_text("llm: {type: ScriptedLLM, responses: ['Done.<|im_end|>']}\n")
    proc = run_cli("run", str(config), "--tasks", str(tasks))
    assert proc.returncode == 2 and f"{tasks}: holds no tasks" in proc.stderr
