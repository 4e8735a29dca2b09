"""OpenAICompatible with several servers (`base_url: [...]`): requests are spread over the replicas, and a
replica that is killed or answers 5xx is avoided, the request going to another. The servers are real
processes (benchmarks/fake_openai_server.py, a loopback OpenAI-compatible server) on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import gc
import subprocess
import sys
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from inkagent.errors import ConfigError, LLMError
from inkagent.llms import OpenAICompatible
from inkagent.llms.replicas import ReplicaSet
from inkagent.runners.config import build_llm, load_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from fake_openai_server import start_server  # noqa: E402

ANSWER = "The answer is 391. Seventeen times twenty-three"  # the fake server's answer (8 chunks)
MESSAGES = [{"role": "user", "content": "What is 17 * 23?"}]


class Servers:
    """Fake servers started on demand; all are killed at the end of the test."""

    def __init__(self) -> None:
        self.processes: dict[str, subprocess.Popen] = {}

    def start(self, status: int = 200, echo: bool = False) -> str:
        url, process = start_server(status=status, echo=echo)
        self.processes[url] = process
        return url

    def kill(self, url: str) -> None:
        process = self.processes[url]
        process.kill()
        process.wait()

    def requests(self, url: str) -> int:
        """How many completions requests the server at `url` has received."""
        return httpx.get(url.removesuffix("/v1") + "/stats").json()["requests"]

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.kill()
            process.wait()
            process.stdout.close()


@pytest.fixture
def servers() -> Iterator[Servers]:
    started = Servers()
    yield started
    started.stop_all()


def client(urls: list[str], **kwargs) -> OpenAICompatible:
    kwargs.setdefault("max_retries", 0)
    return OpenAICompatible(model="bench", base_url=urls, mode="chat", stop_words=[], **kwargs)


def test_requests_are_spread_and_a_killed_replica_is_failed_over(servers):
    a, b = servers.start(), servers.start()
    with client([a, b]) as llm:
        assert [llm.chat(MESSAGES) for _ in range(10)] == [ANSWER] * 10
        assert servers.requests(a) == 5 and servers.requests(b) == 5  # nothing in flight: round-robin

        servers.kill(a)  # its pooled keep-alive connections die with it
        # max_retries=0: no second round, so each answer below comes from moving to the live replica.
        assert [llm.chat(MESSAGES) for _ in range(6)] == [ANSWER] * 6
        assert "".join(llm.stream_text(MESSAGES)) == ANSWER
        assert llm.generate_many([MESSAGES] * 40, concurrency=16) == [ANSWER] * 40
        assert servers.requests(b) == 5 + 6 + 1 + 40

        async def streams() -> list[str]:
            answers = []
            async with llm.async_client() as shared:
                for _ in range(3):
                    answers.append("".join([d async for d in llm.astream_text(MESSAGES, client=shared)]))
            return answers

        assert asyncio.run(streams()) == [ANSWER] * 3


def test_a_replica_answering_5xx_is_avoided_and_the_request_moves_on(servers):
    failing, healthy = servers.start(status=503), servers.start()
    # A 10 s cool-down: once it failed, the failing replica is not asked again during this test.
    with client([failing, healthy], retry_backoff_s=10.0) as llm:
        assert [llm.chat(MESSAGES) for _ in range(8)] == [ANSWER] * 8
        assert llm.generate_many([MESSAGES] * 8, concurrency=4) == [ANSWER] * 8
    assert servers.requests(failing) == 1
    assert servers.requests(healthy) == 16


def test_a_request_in_flight_counts_until_its_stream_is_closed(servers):
    a, b = servers.start(), servers.start()
    with client([a, b]) as llm:
        stream = llm.stream_text(MESSAGES)
        next(stream)  # the stream is open on one replica...
        first = {url: servers.requests(url) for url in (a, b)}
        busy = a if first[a] else b
        for _ in range(3):  # ...so the next requests go to the other one
            assert llm.chat(MESSAGES) == ANSWER
        assert servers.requests(busy) == 1
        assert "".join(stream) == ANSWER[len("The") :]
        assert [r.in_flight for r in llm.replicas.replicas] == [0, 0]


def test_many_prompts_over_replicas_come_back_in_order(servers):
    a, b = servers.start(echo=True), servers.start(echo=True)
    prompts = [f"prompt {i}" for i in range(50)]
    with OpenAICompatible(model="m", base_url=[a, b], meta_template=None, stop_words=[]) as llm:
        assert llm.generate_many(prompts, concurrency=13) == prompts  # 13 in flight: pools of 4, 4, 4, 1
        assert [c.text for c in asyncio.run(llm.acomplete_many(prompts, concurrency=64))] == prompts
    assert servers.requests(a) + servers.requests(b) == 100 and servers.requests(a) > 10


def test_many_threads_share_a_backend_without_leaking_connections(servers):
    """`inkagent bench --concurrency 48` calls the blocking API from 48 threads at once."""
    a, b = servers.start(), servers.start()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        llm = client([a, b])
        with ThreadPoolExecutor(48) as pool:
            assert list(pool.map(llm.chat, [MESSAGES] * 144)) == [ANSWER] * 144
        assert [r.in_flight for r in llm.replicas.replicas] == [0, 0]
        llm.close()
        del llm
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]  # every socket was closed
    assert servers.requests(a) + servers.requests(b) == 144


def test_all_replicas_down_is_a_clear_error_naming_them(servers):
    a, b = servers.start(), servers.start()
    servers.kill(a)
    servers.kill(b)
    llm = client([a, b], max_retries=1, retry_backoff_s=0.01)
    with pytest.raises(LLMError, match="did not answer") as caught:
        llm.chat(MESSAGES)
    message = str(caught.value)
    assert a in message and b in message and "4 attempt(s)" in message  # 2 rounds of 2 replicas
    with pytest.raises(LLMError, match="did not answer"):
        llm.generate_many([MESSAGES] * 3, concurrency=2)


def test_a_config_takes_a_list_of_base_urls(tmp_path):
    path = tmp_path / "replicas.yaml"
    path.write_text(
        "llm:\n  type: OpenAICompatible\n  model: internlm2-chat-7b\n  base_url:\n"
        "    - http://10.0.0.1:8000/v1\n    - http://10.0.0.2:8000/v1/\n",
        encoding="utf-8",
    )
    llm = build_llm(load_config(path))
    assert llm.base_urls == ["http://10.0.0.1:8000/v1", "http://10.0.0.2:8000/v1"]
    assert llm.endpoint == "http://10.0.0.1:8000/v1/completions"
    for bad in ([], ["http://a/v1", "http://a/v1/"], [""]):
        with pytest.raises(ConfigError, match="base_url"):
            OpenAICompatible(model="m", base_url=bad)


def test_replica_choice_prefers_the_least_busy_and_skips_failed_ones():
    replicas = ReplicaSet(["http://a", "http://b", "http://c"], cooldown_s=60.0)
    first, second, third = replicas.pick(), replicas.pick(), replicas.pick()
    assert {first.url, second.url, third.url} == {"http://a", "http://b", "http://c"}
    replicas.release(second, failed=False)
    assert replicas.pick() is second  # the only one with nothing in flight
    replicas.release(first, failed=True)  # cooling down for a minute
    assert replicas.pick() is not first and replicas.pick() is not first
    assert replicas.pick(avoid={second, third}) is first  # nothing else left: better than nothing
