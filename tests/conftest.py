"""Shared test helpers. Tests never reach the network: sockets to anything but loopback are refused."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tiny_internlm2 import tiny_internlm2_dir  # noqa: F401  (session fixture: tiny InternLM2, hub layout)
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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def serve_url(tiny_model_dir) -> Iterator[str]:  # noqa: F811
    """A real `transformers serve` running the tiny model on 127.0.0.1: its OpenAI base URL."""
    port = free_port()
    command = [str(Path(sys.executable).with_name("transformers")), "serve", str(tiny_model_dir),
               "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "info"]
    env = dict(os.environ, HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              bufsize=1)
    log: list[str] = []
    watchdog = threading.Timer(120, server.kill)  # a server that never comes up ends the wait
    watchdog.start()
    try:
        # Uvicorn says so when it accepts connections; the model is loaded before that.
        for line in server.stdout:
            log.append(line)
            if "Uvicorn running on" in line:
                break
        else:
            pytest.fail("transformers serve did not start:\n" + "".join(log))
        watchdog.cancel()
        # Keep draining its output so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in server.stdout], daemon=True).start()
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        watchdog.cancel()
        server.terminate()
        server.wait(timeout=30)
