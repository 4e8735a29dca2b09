"""Spreading requests over the replicas of one model (vLLM / LMDeploy data-parallel servers).

`ReplicaSet.pick()` chooses the server for the next request: the one with the fewest requests in
flight among those not cooling down after a failure, ties broken round-robin. `release()` records the
outcome: a failed request (a connection error or a 5xx) puts its replica in a cool-down that doubles
with each consecutive failure (capped), so the next requests go elsewhere; a success ends it. When
every replica is cooling down, the one whose cool-down ends first is used (a server that comes back
is found again). Thread-safe: the sync client is used from many threads (`inkagent bench
--concurrency`, batch runs), the async one from an event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(eq=False)
class Replica:
    """One server: its API root (with `/v1`), requests in flight, and its failure state."""

    url: str
    in_flight: int = 0
    failures: int = 0  # consecutive failed requests
    down_until: float = 0.0  # time.monotonic() before which the replica is avoided


def normalize_base_urls(base_url: str | Sequence[str]) -> list[str]:
    """`base_url` as a list of API roots without a trailing slash; a clear error if empty or not strings."""
    urls = [base_url] if isinstance(base_url, str) else list(base_url)
    if not urls or not all(isinstance(url, str) and url.strip() for url in urls):
        raise ConfigError(f"base_url must be a URL or a non-empty list of URLs, not {base_url!r}")
    cleaned = [url.strip().rstrip("/") for url in urls]
    if len(set(cleaned)) != len(cleaned):
        raise ConfigError(f"base_url lists the same server twice: {cleaned}")
    return cleaned


class ReplicaSet:
    """The replicas of one model and the choice of the next one.

    Args:
        urls: API roots (see `normalize_base_urls`).
        cooldown_s: how long a replica is avoided after its first failure; doubled for each
            further consecutive failure, up to `max_cooldown_s`.
    """

    def __init__(self, urls: Sequence[str], cooldown_s: float = 1.0, max_cooldown_s: float = 30.0):
        self.replicas = [Replica(url) for url in urls]
        self.cooldown_s = cooldown_s
        self.max_cooldown_s = max_cooldown_s
        self._next = 0  # round-robin start, so that ties do not always go to the first replica
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.replicas)

    def pick(self, avoid: Collection[Replica] = ()) -> Replica:
        """The replica for the next request (counted in flight until `release`).

        `avoid`: replicas that already failed this request; they are used only if nothing else is left.
        """
        with self._lock:
            now = time.monotonic()
            count = len(self.replicas)
            order = [self.replicas[(self._next + i) % count] for i in range(count)]
            self._next = (self._next + 1) % count
            fresh = [r for r in order if r not in avoid] or order
            up = [r for r in fresh if r.down_until <= now]
            if up:
                chosen = min(up, key=lambda r: r.in_flight)  # min keeps the first of equals: round-robin
            else:
                chosen = min(fresh, key=lambda r: r.down_until)
            chosen.in_flight += 1
            return chosen

    def release(self, replica: Replica, failed: bool) -> None:
        """The request sent to `replica` is over: `failed` if the server could not answer it."""
        with self._lock:
            replica.in_flight -= 1
            if failed:
                replica.failures += 1
                pause = min(self.cooldown_s * 2 ** (replica.failures - 1), self.max_cooldown_s)
                replica.down_until = time.monotonic() + pause
            else:
                replica.failures = 0
                replica.down_until = 0.0
