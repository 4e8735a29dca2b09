"""A hub that cannot be reached: one quick probe, then the local cache only (no minutes of retries)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_model import tiny_model_dir  # noqa: F401  (fixture)

from inkagent.errors import LLMError
from inkagent.llms import HFTransformer, hub


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def unreachable_hub(monkeypatch, tmp_path) -> Path:
    """No offline mode, a hub endpoint that refuses connections, an empty cache; returns the cache."""
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", *hub._PROXY_VARIABLES):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(hub, "_reachable", {})
    return tmp_path / "hub"


def test_an_unreachable_hub_is_probed_once_and_only_the_cache_is_read(unreachable_hub, tmp_path, caplog):
    assert hub.local_files_only("internlm/internlm2_5-7b-chat")
    assert hub.local_files_only("OFA-Sys/chinese-clip-vit-base-patch16")
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1  # said once
    assert "cannot be reached" in caplog.records[0].message
    assert not hub.local_files_only(str(tmp_path))  # a local directory never asks the hub
    assert "cannot be reached" in hub.cache_only_reason()


def test_a_listening_hub_is_asked_as_usual(unreachable_hub, monkeypatch):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{server.getsockname()[1]}")
        assert hub.hub_reachable()
        assert not hub.local_files_only("internlm/internlm2_5-7b-chat")


def test_a_proxy_is_trusted_and_offline_mode_needs_no_probe(unreachable_hub, monkeypatch):
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")
    assert not hub.local_files_only("internlm/internlm2_5-7b-chat")
    monkeypatch.delenv("HTTPS_PROXY")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub.local_files_only("internlm/internlm2_5-7b-chat")
    assert hub._reachable == {}  # offline mode answered without a probe
    assert "HF_HUB_OFFLINE" in hub.cache_only_reason()


def test_loading_a_hub_id_with_no_hub_fails_at_once_with_the_reason(unreachable_hub):
    with pytest.raises(LLMError) as caught:
        HFTransformer("internlm/internlm2_5-7b-chat")
    message = str(caught.value)
    assert "internlm/internlm2_5-7b-chat" in message
    # the reason is the probe's: huggingface_hub was never asked (it would retry each file for ~23 s)
    assert "cannot be reached" in message and "hf download" in message


def test_a_cached_model_loads_with_no_hub(unreachable_hub, tiny_model_dir):  # noqa: F811
    # the hub cache's layout: models--org--name/{refs/main, snapshots/<commit>/...}
    commit = "0" * 40
    repo = unreachable_hub / "models--inkagent--tiny-llama"
    shutil.copytree(tiny_model_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    # a new process: huggingface_hub reads HF_HUB_CACHE when it is imported
    code = (
        "from inkagent.llms import HFTransformer\n"
        "llm = HFTransformer('inkagent/tiny-llama', max_new_tokens=4)\n"
        "print('generated', repr(llm.generate('hi')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=dict(os.environ)
    )
    assert done.returncode == 0, done.stderr
    assert "generated" in done.stdout
    assert "cannot be reached" in done.stderr  # said once, as a warning
