"""Shared test helpers. Tests never reach the network: sockets to anything but loopback are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tiny_model import tiny_model_dir  # noqa: F401  (session fixture: tiny random InternLM2-style Llama)

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).parent / "fixtures"

_real_connect = socket.socket.connect


def _loopback_only(self, address):
    host = address[0] if isinstance(address, tuple) else address
    if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise ConnectionRefusedError(f"tests may not reach the network (tried {address})")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch):
    if os.environ.get("INKAGENT_NETWORK_TESTS") != "1":
        monkeypatch.setattr(socket.socket, "connect", _loopback_only)


def pytest_collection_modifyitems(config, items):
    if os.environ.get("INKAGENT_NETWORK_TESTS") == "1":
        return
    skip = pytest.mark.skip(reason="needs the internet; set INKAGENT_NETWORK_TESTS=1")
    for item in items:
        if "network" in item.keywords:
            item.add_marker(skip)


def run_cli(*args: str, cwd: Path | None = None, input: str | None = None, env: dict | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
    """Run the real `inkagent` command in a subprocess."""
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
    return subprocess.run([sys.executable, "-m", "inkagent", *args], cwd=cwd or ROOT, input=input,
                          capture_output=True, text=True, timeout=timeout, env=full_env)
