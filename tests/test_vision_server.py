"""OpenAICompatibleVision against a loopback server speaking OpenAI's chat/completions wire format.

The server replays the documented format (as LMDeploy and vLLM send it): server-sent `chat.completion.chunk`
events with `delta.content`, or one `chat.completion` with `message.content` and, when asked,
`logprobs.content[].top_logprobs`. It records every request so the tests can check what was sent
(image content parts as base64 data URLs, the prefill fields, logprobs requests).
"""

from __future__ import annotations

import base64
import http.server
import json
import threading
from collections.abc import Callable
from typing import Any

import pytest
from conftest import ROOT, run_cli
from vision_models import IMAGES, gallery_dir, tiny_clip_dir  # noqa: F401  (fixtures)

from inkagent.actions import ImageCaption
from inkagent.actions.image_retrieval import Hit
from inkagent.agents import IllustratedWriter, ImageUnderstanding
from inkagent.llms import OpenAICompatibleVision, ScriptedLLM
from inkagent.llms.vlm import ImageError

SUN, SEA = str(IMAGES / "red-sun.png"), str(IMAGES / "blue-sea.png")
Responder = Callable[[dict], tuple[str, Any]]


class _ChatServer(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body})
        text, logprobs = self.server.respond(body)
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            pieces = [text[i : i + 3] for i in range(0, len(text), 3)] or [""]
            head = {"id": "c1", "object": "chat.completion.chunk", "model": body["model"]}
            first = {**head, "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(first)}\n\n".encode())
            for piece in pieces:
                chunk = {
                    **head,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
                self.wfile.write(f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n".encode())
            last = {**head, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode())
            return
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
        if logprobs is not None:
            choice["logprobs"] = logprobs
        usage = {"prompt_tokens": 10, "completion_tokens": 2, "total_tokens": 12}
        data = json.dumps(
            {"id": "c1", "object": "chat.completion", "choices": [choice], "usage": usage}
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _ChatServer)
    httpd.requests, httpd.respond = [], lambda body: ("A red sun over the sea.", None)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.url = f"http://127.0.0.1:{httpd.server_port}/v1"
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def letter_logprobs(scores: dict[str, float], chosen: str) -> dict:
    """`logprobs` of a one-token answer `chosen`, with `scores` as its alternatives (OpenAI's shape)."""
    alternatives = [
        {"token": token, "logprob": lp, "bytes": list(token.encode())} for token, lp in scores.items()
    ]
    return {
        "content": [
            {
                "token": chosen,
                "logprob": scores[chosen],
                "bytes": list(chosen.encode()),
                "top_logprobs": alternatives,
            }
        ]
    }


def image_urls(message: dict) -> list[str]:
    return [part["image_url"]["url"] for part in message["content"] if part["type"] == "image_url"]


def decoded(url: str) -> bytes:
    header, _, data = url.partition(",")
    assert header == "data:image/png;base64"
    return base64.b64decode(data)


def test_images_travel_as_data_urls_in_order_and_the_answer_streams(server):
    vlm = OpenAICompatibleVision(model="xcomposer2", base_url=server.url)
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "image", "image": SUN},
                {"type": "image", "image": SEA},
                {"type": "text", "text": "Compare them."},
            ],
        }
    ]

    deltas = list(vlm.stream_text(messages))

    assert "".join(deltas) == "A red sun over the sea." and len(deltas) > 1
    request = server.requests[-1]
    assert request["path"] == "/v1/chat/completions"
    body = request["body"]
    assert body["stream"] is True and body["model"] == "xcomposer2" and body["temperature"] == 0.0
    sent = body["messages"][0]
    assert [decoded(u) for u in image_urls(sent)] == [open(SUN, "rb").read(), open(SEA, "rb").read()]
    assert sent["content"][-1] == {"type": "text", "text": "Compare them."}


def test_prompt_text_with_images_and_a_missing_image(server):
    vlm = OpenAICompatibleVision(model="m", base_url=server.url)
    assert "".join(vlm.stream_text("What is it?", images=[SUN])) == "A red sun over the sea."
    assert len(image_urls(server.requests[-1]["body"]["messages"][0])) == 1
    with pytest.raises(ImageError, match="not found"):
        list(vlm.stream_text("What is it?", images=[str(IMAGES / "nope.png")]))
    assert len(server.requests) == 1  # nothing sent for a bad image


def test_image_caption_action_and_image_understanding_use_it(server):
    vlm = OpenAICompatibleVision(model="m", base_url=server.url)
    assert ImageCaption(llm=vlm, max_new_tokens=20).run(SUN) == "A red sun over the sea."
    assert server.requests[-1]["body"]["max_tokens"] == 20

    agent = ImageUnderstanding(vlm)
    answer = agent.chat("What is in the picture?", images=[SUN])
    assert "red sun" in str(getattr(answer, "response", answer))
    server.respond = lambda body: ("The sea is blue.", None)
    agent.chat("And now?", images=[SEA])
    history = server.requests[-1]["body"]["messages"]  # the second turn carries the first turn's image
    assert [len(image_urls(m)) for m in history if m["role"] == "user"] == [1, 1]


def test_letter_choice_is_read_from_logprobs(server):
    scores = {"▁C": -0.2, "A": -1.9, " D": -3.0, "hello": -0.1}
    server.respond = lambda body: ("C", letter_logprobs(scores, "▁C"))
    vlm = OpenAICompatibleVision(model="m", base_url=server.url)  # prefill on (vLLM)
    messages = [
        {"role": "user", "content": [{"type": "text", "text": "Which?"}, {"type": "image", "image": SUN}]}
    ]

    choice = vlm.choose_letter(messages, list("ABCD"), primer="最合适的图是")

    assert choice.letter == "C"
    assert sum(choice.probabilities.values()) == pytest.approx(1.0) and choice.probabilities["B"] == 0.0
    assert choice.probabilities["C"] > choice.probabilities["A"] > choice.probabilities["D"] > 0
    body = server.requests[-1]["body"]
    assert body["logprobs"] is True and body["top_logprobs"] == 20 and body["stream"] is False
    assert body["messages"][-1] == {"role": "assistant", "content": "最合适的图是"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_letter_choice_is_parsed_when_the_server_gives_no_logprobs(server):
    server.respond = lambda body: ("最合适的图是\n  D", None)  # XComposer2's own answer (fixture run)
    vlm = OpenAICompatibleVision(model="m", base_url=server.url, prefill=False)  # LMDeploy
    choice = vlm.choose_letter([{"role": "user", "content": "Which?"}], list("ABCD"), primer="最合适的图是")
    assert choice.letter == "D"
    body = server.requests[-1]["body"]
    assert body["messages"][-1]["role"] == "user" and "continue_final_message" not in body
    server.respond = lambda body: ("None of them.", None)
    with pytest.raises(Exception, match="names none of"):
        vlm.choose_letter([{"role": "user", "content": "Which?"}], list("ABCD"))


def test_writer_chooses_among_candidates_through_the_server(server):
    server.respond = lambda body: ("B", letter_logprobs({"B": -0.1, "A": -2.5}, "B"))
    writer = IllustratedWriter(
        ScriptedLLM([]), vlm={"type": "OpenAICompatibleVision", "model": "m", "base_url": server.url}
    )
    assert isinstance(writer.vlm, OpenAICompatibleVision)
    paths = sorted(str(p) for p in IMAGES.glob("*.png"))[:3]
    candidates = [Hit(path, 0.5 - i / 10) for i, path in enumerate(paths)]
    choice = writer.choose_image(["第一段", "第二段"], 1, candidates)
    assert choice.method == "logits" and choice.letter == "B" and choice.hit == candidates[1]
    sent = server.requests[-1]["body"]["messages"][0]
    assert [decoded(u) for u in image_urls(sent)] == [open(p, "rb").read() for p in paths]


def test_a_started_answer_is_cut_when_the_server_cannot_prefill(server):
    server.respond = lambda body: ('标题是"一张古老的水墨画卷轴"', None)
    vlm = OpenAICompatibleVision(model="m", base_url=server.url, prefill=False)
    writer = IllustratedWriter(vlm)
    caption = writer.write_caption(["标题", "第一段", "第二段"], 1)
    assert caption == "一张古老的水墨画卷轴"
    assert server.requests[-1]["body"]["messages"][-1]["role"] == "user"  # the primer was not sent


# -- from configs and the command line -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["xcomposer2-lmdeploy.yaml", "internvl-vllm.yaml"])
def test_ready_configs_answer_questions_about_images(name, server):
    from inkagent.runners.config import build_agent, load_config

    config = load_config(ROOT / "configs" / name)
    llm = config.llm.model_copy(update={"base_url": server.url})
    agent = build_agent(config.model_copy(update={"llm": llm}))
    assert isinstance(agent.llm, OpenAICompatibleVision)
    agent.chat("What is it?", images=[SUN])
    body = server.requests[-1]["body"]
    assert body["model"] == config.llm.kwargs["model"] and len(image_urls(body["messages"][-1])) == 1


def test_inkagent_see_with_a_server_config(server, tmp_path):
    config = tmp_path / "see.yaml"
    config.write_text(
        f"llm:\n  type: OpenAICompatibleVision\n  base_url: {server.url}\n  model: internvl\n"
        "agent:\n  type: ImageUnderstanding\n"
    )
    done = run_cli("see", SUN, SEA, "What differs?", "--config", str(config))
    assert done.returncode == 0, done.stderr
    assert "A red sun over the sea." in done.stdout
    assert len(image_urls(server.requests[-1]["body"]["messages"][-1])) == 2


def test_inkagent_write_with_xcomposer2_behind_a_server(server, gallery_dir, tiny_clip_dir, tmp_path):  # noqa: F811
    article = "水墨画\n第一段：墨分五色。\n第二段：留白。\n第三段：意境。"

    def respond(body: dict) -> tuple[str, Any]:
        last = body["messages"][-1]
        text = last["content"] if isinstance(last["content"], str) else ""
        if body.get("logprobs"):
            return "A", letter_logprobs({"A": -0.3, "B": -1.5}, "A")
        if last["role"] == "assistant":  # the caption primer, continued (prefill)
            return '一幅山水画"', None
        if "选择适合插入图像" in text:
            return "适合插入图像的行是<Seg1>, <Seg3>.", None
        return article, None

    server.respond = respond
    config = tmp_path / "writer.yaml"
    config.write_text(
        json.dumps(
            {
                "llm": {"type": "OpenAICompatibleVision", "base_url": server.url, "model": "xcomposer2"},
                "agent": {"type": "IllustratedWriter", "clip_model": str(tiny_clip_dir), "language": "zh"},
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    out = tmp_path / "article"
    done = run_cli(
        "write",
        "水墨画",
        "--config",
        str(config),
        "--out",
        str(out),
        "--gallery",
        str(gallery_dir),
        "--images",
        "2",
    )
    assert done.returncode == 0, done.stderr
    markdown = (out / "article.md").read_text(encoding="utf-8")
    assert "第三段：意境。" in markdown and markdown.count("![") == 2
    assert sum(1 for r in server.requests if r["body"].get("logprobs")) == 2  # one choice per image


def test_image_caption_action_takes_the_server_from_a_config(server, tmp_path):
    from inkagent.runners.config import build_agent, load_config
    from inkagent.runners.run import close_agent, run_task

    call = json.dumps({"name": "ImageCaption", "parameters": {"image": SUN}})
    config = tmp_path / "caption.yaml"
    config.write_text(
        json.dumps(
            {
                "llm": {
                    "type": "ScriptedLLM",
                    "responses": [
                        f"<|action_start|><|plugin|>\n{call}<|action_end|>\n<|im_end|>",
                        "It shows a sunset.<|im_end|>",
                    ],
                },
                "agent": {"type": "Internlm2Agent", "max_turn": 3},
                "actions": [
                    {
                        "type": "ImageCaption",
                        "llm": {
                            "type": "OpenAICompatibleVision",
                            "base_url": server.url,
                            "model": "xcomposer2",
                        },
                    }
                ],
            }
        )
    )
    agent = build_agent(load_config(config))
    try:
        outcome = run_task(agent, "Describe the image.")
    finally:
        close_agent(agent)
    assert outcome["state"] == "answered"
    assert "A red sun over the sea." in agent.llm.prompts[1]  # the caption went back to the model
    assert len(image_urls(server.requests[-1]["body"]["messages"][0])) == 1
