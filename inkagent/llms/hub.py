"""Whether to ask the Hugging Face Hub at all: offline mode, and a hub that cannot be reached.

huggingface_hub retries a request that fails to connect five times with backoff (1 + 2 + 4 + 8 + 8 s),
and loading one model asks for several files (config, tokenizer files, weights index), so loading a model
by hub id on a machine with no network waits minutes before it fails, even when the model is in the
local cache. Before the first such load, `local_files_only` opens one TCP connection to the hub's host
(`HF_ENDPOINT`, default https://huggingface.co) with a short time limit; when that fails, every load of
the process reads the local cache only (as with `HF_HUB_OFFLINE=1`) and says so once in the log. A
configured proxy (`HTTPS_PROXY`, `ALL_PROXY`) is trusted: no probe, the hub is asked as usual.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

_TRUE = {"1", "true", "yes", "on"}
_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")
DEFAULT_ENDPOINT = "https://huggingface.co"
#: seconds to wait for the hub's host to accept a connection
PROBE_TIMEOUT_S = 3.0

_reachable: dict[str, bool] = {}
_lock = threading.Lock()


def hub_offline() -> bool:
    """Whether the user asked for offline mode (read now, not when huggingface_hub was imported)."""
    return any(
        os.environ.get(name, "").strip().lower() in _TRUE
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def hub_endpoint() -> str:
    """The hub's base URL: `HF_ENDPOINT` (a mirror) or https://huggingface.co."""
    return os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or DEFAULT_ENDPOINT


def hub_reachable(timeout_s: float = PROBE_TIMEOUT_S) -> bool:
    """Whether the hub's host accepts a TCP connection within `timeout_s` seconds.

    Asked once per process and endpoint (the answer is kept); True without asking when a proxy is
    configured, since the host is then reached through it.
    """
    if any(os.environ.get(name) for name in _PROXY_VARIABLES):
        return True
    endpoint = hub_endpoint()
    with _lock:
        if endpoint not in _reachable:
            _reachable[endpoint] = _connects(endpoint, timeout_s)
            if not _reachable[endpoint]:
                logger.warning(
                    "the Hugging Face Hub (%s) cannot be reached from here: models are read from the local "
                    "cache only (set HF_HUB_OFFLINE=1 to skip this check)",
                    endpoint,
                )
        return _reachable[endpoint]


def _connects(endpoint: str, timeout_s: float) -> bool:
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return True  # not a URL we can probe: leave it to huggingface_hub
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout_s):
            return True
    except OSError:  # no DNS, no route, refused, timed out
        return False


def local_files_only(source: str) -> bool:
    """Whether loading `source` (a local directory or a hub id) must read the local cache only: a hub
    id while offline mode is on or the hub cannot be reached. A local directory never asks the hub."""
    if os.path.isdir(source):
        return False
    return hub_offline() or not hub_reachable()


def cache_only_reason() -> str:
    """Why only the local cache was searched, for an error message (after `local_files_only` said so)."""
    if hub_offline():
        return "HF_HUB_OFFLINE is set, so only the local cache was searched"
    return f"the hub ({hub_endpoint()}) cannot be reached from here, so only the local cache was searched"
