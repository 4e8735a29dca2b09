"""A fast loopback OpenAI-compatible server for client benchmarks (not a model: canned answers).

Answers `POST /v1/chat/completions` and `POST /v1/completions`, streamed (server-sent events, chunked
transfer encoding) or not, over HTTP/1.1 keep-alive. One asyncio event loop and `h11` (the HTTP/1.1
state machine httpx itself uses), so a request costs the server tens of microseconds and the figures
measure the client. Run it in its own process so its CPU is not counted against the client:

    python benchmarks/fake_openai_server.py [--port 0] [--chunks 8] [--latency-ms 0]

It prints `PORT <n>` on stdout once it listens. `--latency-ms` delays each answer (a model's
generation time) without using CPU; `--chunks` is the number of content chunks of a streamed answer;
`--status 503` makes it answer every POST with that error (a failing replica); `--echo` answers a
non-streamed request with its prompt (or last message) instead, so a test can match answers to requests. `GET /stats` returns
`{"requests": n}`, the POSTs it has received. `start_server()` starts it as a child process and
returns its base URL and the process. The tests of replicas use it too (a real process to kill).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import h11

WORDS = ["The", " answer", " is", " 391", ".", " Seventeen", " times", " twenty-three", " is", " 391", "."]


def _completion(chat: bool, chunks: int, text: str | None = None) -> bytes:
    if text is None:
        text = "".join(WORDS[i % len(WORDS)] for i in range(chunks))
    choice: dict = {"index": 0, "finish_reason": "stop", "logprobs": None}
    if chat:
        choice["message"] = {"role": "assistant", "content": text}
    else:
        choice["text"] = text
    body = {
        "id": "cmpl-bench",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": "bench",
        "choices": [choice],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    return json.dumps(body).encode()


def _stream(chat: bool, chunks: int) -> list[bytes]:
    events = []
    for i in range(chunks):
        piece = WORDS[i % len(WORDS)]
        choice: dict = {"index": 0, "finish_reason": "stop" if i == chunks - 1 else None, "logprobs": None}
        if chat:
            choice["delta"] = {"role": "assistant", "content": piece} if i == 0 else {"content": piece}
        else:
            choice["text"] = piece
        chunk = {
            "id": "cmpl-bench",
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": "bench",
            "choices": [choice],
        }
        events.append(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    usage = {
        "id": "cmpl-bench",
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": int(time.time()),
        "model": "bench",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": chunks, "total_tokens": 12 + chunks},
    }
    events.append(b"data: " + json.dumps(usage).encode() + b"\n\n")
    events.append(b"data: [DONE]\n\n")
    return events


class _Connection(asyncio.Protocol):
    """One keep-alive connection: parse requests with h11, answer each after the configured latency."""

    def __init__(self, answers: dict, latency_s: float, status: int, stats: dict, echo: bool) -> None:
        self.answers = answers
        self.echo = echo
        self.latency_s = latency_s
        self.status = status
        self.stats = stats
        self.method = b""
        self.h11 = h11.Connection(h11.SERVER)
        self.transport: asyncio.Transport | None = None
        self.target = b""
        self.body: list[bytes] = []
        self.busy = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.h11.receive_data(data)
        self._process()

    def eof_received(self) -> bool | None:
        return None  # close

    def _process(self) -> None:
        while not self.busy:
            try:
                event = self.h11.next_event()
            except h11.RemoteProtocolError:
                self.transport.close()
                return
            if event is h11.NEED_DATA or event is h11.PAUSED:
                return
            if isinstance(event, h11.Request):
                self.method, self.target, self.body = event.method, event.target, []
            elif isinstance(event, h11.Data):
                self.body.append(event.data)
            elif isinstance(event, h11.EndOfMessage):
                self.busy = True
                if self.latency_s > 0:
                    asyncio.get_running_loop().call_later(self.latency_s, self._answer)
                else:
                    self._answer()
            elif isinstance(event, h11.ConnectionClosed):
                self.transport.close()
                return

    def _answer(self) -> None:
        if self.transport.is_closing():
            return
        request = json.loads(b"".join(self.body) or b"{}")
        chat = self.target.endswith(b"/chat/completions")
        stream = bool(request.get("stream"))
        if self.method == b"GET" and self.target == b"/stats":
            self._send(200, [json.dumps(self.stats).encode()], stream=False)
        elif not (chat or self.target.endswith(b"/completions")):
            self._send(404, [b'{"error": {"message": "not found"}}'], stream=False)
        elif self.status != 200:
            self.stats["requests"] += 1
            self._send(self.status, [b'{"error": {"message": "replica failing on purpose"}}'], stream=False)
        elif self.echo and not stream:
            self.stats["requests"] += 1
            text = request["messages"][-1]["content"] if chat else request["prompt"]
            self._send(200, [_completion(chat, 0, text)], stream=False)
        else:
            self.stats["requests"] += 1
            self._send(200, self.answers[chat, stream], stream=stream)
        if self.h11.our_state is h11.MUST_CLOSE:
            self.transport.close()
            return
        self.h11.start_next_cycle()
        self.busy = False
        self._process()

    def _send(self, status: int, pieces: list[bytes], stream: bool) -> None:
        headers = [("content-type", "text/event-stream" if stream else "application/json")]
        if not stream:
            headers.append(("content-length", str(len(pieces[0]))))
        out = [self.h11.send(h11.Response(status_code=status, headers=headers))]
        out.extend(self.h11.send(h11.Data(data=piece)) for piece in pieces)
        out.append(self.h11.send(h11.EndOfMessage()))
        self.transport.write(b"".join(out))


async def serve(port: int, chunks: int, latency_ms: float, status: int = 200, echo: bool = False) -> None:
    """Listen on 127.0.0.1:`port` (0: any free port), print `PORT <n>`, and serve until killed."""
    answers = {
        (chat, stream): _stream(chat, chunks) if stream else [_completion(chat, chunks)]
        for chat in (True, False)
        for stream in (True, False)
    }
    stats = {"requests": 0}
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Connection(answers, latency_ms / 1000, status, stats, echo), "127.0.0.1", port, backlog=1024
    )
    print(f"PORT {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


def start_server(
    chunks: int = 8, latency_ms: float = 0.0, status: int = 200, echo: bool = False
) -> tuple[str, subprocess.Popen]:
    """Start the server as a child process; its base URL (with /v1) and the process (terminate it)."""
    command = [sys.executable, str(Path(__file__).resolve()), "--chunks", str(chunks)]
    command += ["--latency-ms", str(latency_ms), "--status", str(status)] + (["--echo"] if echo else [])
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    line = process.stdout.readline()
    if not line.startswith("PORT "):
        process.kill()
        raise RuntimeError(f"the fake server did not start (it printed {line!r})")
    return f"http://127.0.0.1:{int(line.split()[1])}/v1", process


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--chunks", type=int, default=8, help="content chunks of a streamed answer")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before each answer")
    parser.add_argument("--status", type=int, default=200, help="answer every POST with this status")
    parser.add_argument("--echo", action="store_true", help="answer with the prompt (non-streamed)")
    args = parser.parse_args()
    try:
        asyncio.run(serve(args.port, args.chunks, args.latency_ms, args.status, args.echo))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
