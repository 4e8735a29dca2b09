"""Every config in configs/ is valid, and builds as far as this machine allows.

Each `configs/*.yaml` is picked up automatically. All are validated with `load_config`, and the keys of
their model and agent sections are checked against the real constructors. What can run here (a
scripted model) is built and run; for a GPU model or a server, everything but the model is built
(with a stand-in model), the OpenAI-compatible ones also drive a local fake server, and the GPU one
loads for real with its own keys on a tiny model on the CPU.
"""

from __future__ import annotations

import http.server
import inspect
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT
from tiny_model import tiny_model_dir  # noqa: F401  (the session fixture)

CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
#: Agents whose constructor loads nothing, so they can be built with a stand-in model.
LIGHT_AGENTS = {"Internlm2Agent", "ChatAgent"}


def _resolve(config, spec: str, table: dict[str, str]) -> Any:
    from inkagent.registry import load_object

    return load_object(spec, table=table, base_dir=config.base_dir)


def _unknown_keywords(cls: type, keywords: dict[str, Any]) -> set[str]:
    """Keywords that no `__init__` in the class's chain takes.

    A `**kwargs` is taken to hand the rest to the parent's `__init__` (as the backends do with lagent's
    `BaseModel`); the last `**kwargs` of the chain keeps them (an agent's generation parameters).
    """
    remaining = dict(keywords)
    for klass in cls.__mro__:
        if "__init__" not in vars(klass) or klass is object:
            continue
        parameters = inspect.signature(klass.__init__).parameters.values()
        named = {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        remaining = {k: v for k, v in remaining.items() if k not in named}
        if not any(p.kind == p.VAR_KEYWORD for p in parameters):
            return set(remaining)
    return set()


def _stand_in_llm():
    from inkagent.llms import ScriptedLLM

    return ScriptedLLM(responses=["Stand-in answer.<|im_end|>"])


def test_configs_are_found():
    names = {path.name for path in CONFIGS}
    assert {"internlm2-chat-7b-hf.yaml", "internlm2-lmdeploy.yaml", "internlm2-vllm.yaml"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_its_keys_are_taken(path: Path):
    from inkagent.registry import BUILTIN_AGENTS, BUILTIN_LLMS
    from inkagent.runners.config import load_config

    config = load_config(path)
    backend = _resolve(config, config.llm.type, BUILTIN_LLMS)
    assert not _unknown_keywords(backend, config.llm.kwargs), (
        f"{path.name}: llm keys {backend.__name__} does not take"
    )
    agent_cls = _resolve(config, config.agent.type, BUILTIN_AGENTS)
    if agent_cls.__name__ != "Internlm2Agent":  # a skill agent gets the agent section's extra keys
        extra = dict(config.agent.model_extra or {})
        assert not _unknown_keywords(agent_cls, extra), (
            f"{path.name}: agent keys {agent_cls.__name__} does not take"
        )


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_builds(path: Path, monkeypatch):
    """Scripted configs build whole and answer their task; others build with a stand-in model."""
    from inkagent.llms import ScriptedLLM
    from inkagent.registry import BUILTIN_LLMS
    from inkagent.runners.config import build_agent, load_config, protocol_name
    from inkagent.runners.run import close_agent, run_task

    config = load_config(path)
    if config.agent.type not in LIGHT_AGENTS:
        pytest.skip(f"{config.agent.type} loads models when built; its keys are checked above")
    runs_here = issubclass(_resolve(config, config.llm.type, BUILTIN_LLMS), ScriptedLLM)
    native = protocol_name(config) == "openai"  # a chat API is needed: its own backend (no request sent)
    agent = build_agent(config) if runs_here or native else build_agent(config, llm=_stand_in_llm())
    try:
        if config.agent.type == "Internlm2Agent":
            executor = agent.plugin_executor
            assert len(executor.actions if executor else []) == len(config.actions)
            assert (agent.interpreter_executor is not None) == (config.interpreter is not None)
        if runs_here and config.task:
            assert run_task(agent, config.task)["state"] == "answered"
        elif native:
            assert agent.protocol.native_tools and agent.llm.mode == "chat"
        else:
            assert any(e.type == "final_answer" for e in agent.stream("hello"))
    finally:
        close_agent(agent)


def test_hf_config_loads_with_all_its_keys_on_a_tiny_model(tiny_model_dir):  # noqa: F811
    """The GPU config's own keys (dtype, trust_remote_code, stop words...) on the real HFTransformer;
    only the weights (a tiny local model) and the device (the CPU) differ."""
    from inkagent.runners.config import build_agent, load_config
    from inkagent.schema import FinalAnswer, ModelOutput, PromptSent

    config = load_config(ROOT / "configs" / "internlm2-chat-7b-hf.yaml")
    assert config.llm.kwargs["device"] == "cuda" and config.llm.kwargs["path"] == "internlm/internlm2-chat-7b"
    llm_section = config.llm.model_copy(update={"path": str(tiny_model_dir), "device": "cpu"})
    config = config.model_copy(update={"llm": llm_section, "actions": [], "interpreter": None})
    agent = build_agent(config)
    try:
        assert agent.llm.model.dtype.__str__() == "torch.bfloat16"
        events = list(agent.stream("hello", max_new_tokens=8))
        prompt = next(e for e in events if isinstance(e, PromptSent))
        assert agent.llm.render(prompt.messages).startswith("<|im_start|>system\n")  # the INTERNLM2 template
        assert any(isinstance(e, ModelOutput) for e in events)
        assert isinstance(events[-1], FinalAnswer)
    finally:
        agent.close()


# -- OpenAI-compatible configs against a local server ---------------------------------------------------


class _FakeCompletions(http.server.BaseHTTPRequestHandler):
    """`POST /v1/completions`, streamed or not, answering with `self.server.answer`."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body})
        answer = self.server.answer
        if body.get("stream"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.end_headers()
            for piece in (answer[: len(answer) // 2], answer[len(answer) // 2 :]):
                chunk = {"choices": [{"index": 0, "text": piece, "finish_reason": None}]}
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            final = {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]}
            self.wfile.write(f"data: {json.dumps(final)}\n\ndata: [DONE]\n\n".encode())
        else:
            data = json.dumps({"choices": [{"index": 0, "text": answer, "finish_reason": "stop"}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def fake_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeCompletions)
    server.requests, server.answer = [], "Hello from the server."
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("name", ["internlm2-lmdeploy.yaml", "internlm2-vllm.yaml"])
def test_server_config_drives_an_openai_compatible_server(name, fake_server):
    from inkagent.runners.config import build_agent, load_config
    from inkagent.runners.run import run_task

    config = load_config(ROOT / "configs" / name)
    assert config.llm.kwargs["mode"] == "completions"
    url = f"http://127.0.0.1:{fake_server.server_port}/v1"
    config = config.model_copy(update={"llm": config.llm.model_copy(update={"base_url": url})})
    agent = build_agent(config)
    try:
        outcome = run_task(agent, "Say hello.")
    finally:
        agent.close()
    assert outcome["state"] == "answered" and outcome["answer"] == "Hello from the server."
    request = fake_server.requests[-1]
    assert request["path"] == "/v1/completions"
    body = request["body"]
    assert body["model"] == config.llm.kwargs["model"] and "<|im_end|>" in body["stop"]
    assert body["skip_special_tokens"] is False  # the protocol's tokens must reach the parser
    prompt = body["prompt"]
    assert prompt.startswith("<|im_start|>system\n") and "<|im_start|>user\nSay hello.<|im_end|>" in prompt
    for tool in ("ArxivSearch", "Weather"):  # the tools of the config are described to the model
        assert tool in prompt
    assert "<|interpreter|>" in prompt


def test_relative_model_path_is_relative_to_the_config(tiny_model_dir, tmp_path, monkeypatch):  # noqa: F811
    from inkagent.runners.config import build_llm, load_config

    (tmp_path / "configs").mkdir()
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "tiny").symlink_to(tiny_model_dir, target_is_directory=True)
    config_file = tmp_path / "configs" / "local.yaml"
    config_file.write_text("llm: {type: HFTransformer, path: ../models/tiny, device: cpu}\n")
    monkeypatch.chdir(tmp_path / "models")  # anywhere but the config's folder
    llm = build_llm(load_config(config_file))
    assert Path(llm.path) == (tmp_path / "models" / "tiny").resolve()
    assert llm.generate("hi", max_new_tokens=2) is not None
