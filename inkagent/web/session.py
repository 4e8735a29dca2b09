"""One browser session of `inkagent web`: its own agent, memory, interpreter kernel and trace.

A turn runs `agent.stream()` on a worker thread and collects its events; the page follows them as
they come (`Turn.wait_events`). Stop cancels the turn as Ctrl-C does in the REPL: the model stops,
running tools are interrupted, and the agent drops the partial turn from its memory. Nothing here
imports streamlit, so sessions are tested directly; `app.py` draws them.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InkAgentError
from ..registry import BUILTIN_LLMS, LookupFailed, load_object
from ..schema import AgentError, TextDelta
from .controls import GatedLLM, SharedModel, ToolView, TurnCancelled

#: Gets or loads a model shared by the whole process: (key, loader) -> `SharedModel`.
ModelProvider = Callable[[str, Callable[[], Any]], SharedModel]

logger = logging.getLogger(__name__)

#: Backends cheap enough to build for every session (subclasses too: a server's clients); any other model
#: (weights in this process) is loaded once and shared.
LIGHT_BACKENDS = ("inkagent.llms.scripted:ScriptedLLM", "inkagent.llms.openai_compat:OpenAICompatible")
#: How long Stop waits for the worker to wind down before the page moves on (seconds).
STOP_WAIT_S = 15.0


def _backend_class(config: Any) -> Any:
    try:
        return load_object(config.llm.type, table=BUILTIN_LLMS, base_dir=config.base_dir)
    except LookupFailed:
        return None


def backend_class_name(config: Any) -> str:
    """The class name of the config's model backend (`HFTransformer`, `ScriptedLLM`...)."""
    backend = _backend_class(config)
    return getattr(backend, "__name__", config.llm.type)


def is_heavy(config: Any) -> bool:
    """Whether the config's model is loaded once per process and shared (weights), not built per session."""
    backend = _backend_class(config)
    if not isinstance(backend, type):
        return True  # not a class we know: share it (build_llm reports a bad name)
    light = tuple(load_object(spec) for spec in LIGHT_BACKENDS)
    return not issubclass(backend, light)


def model_key(config: Any) -> str:
    """What identifies a shared model: the config file and its `llm` section."""
    return json.dumps([str(config.source), config.llm.model_dump(mode="json")], sort_keys=True, default=str)


@dataclass
class Turn:
    """One message and what the agent did with it; `events` grow while the worker runs."""

    text: str
    images: list[str] = field(default_factory=list)
    request: dict[str, Any] | None = None  # the writer's {"title", "material"}
    events: list[Any] = field(default_factory=list)
    state: str = "running"  # running | done | cancelled | failed
    error: str | None = None
    started: float = field(default_factory=time.perf_counter)
    article: Any = None  # the writer's `Article`
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def running(self) -> bool:
        return self.state == "running"

    def add(self, event: Any) -> None:
        with self._changed:
            self.events.append(event)
            self._changed.notify_all()

    def finish(self, state: str, error: str | None = None) -> None:
        with self._changed:
            self.state, self.error = state, error
            self._changed.notify_all()

    def wait_events(self, shown: int, timeout: float) -> tuple[list[Any], bool]:
        """The events after the first `shown` (waiting up to `timeout` s for one), and whether the turn ended."""
        with self._changed:
            if len(self.events) <= shown and self.running:
                self._changed.wait(timeout)
            return self.events[shown:], not self.running

    def wait_done(self, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: not self.running, timeout)


class WebSession:
    """A browser session's agent and conversation.

    Args:
        config: the loaded `Config`.
        trace_dir: where this session's trace file goes (`web-<time>-<id>.trace.jsonl`).
        models: gets or loads the process-wide models (`ModelProvider`): a heavy `llm` (weights) and a
            writer's VLM and gallery index come from it; without it, every model is this session's own.
    """

    def __init__(self, config: Any, *, trace_dir: str | Path = "runs", models: ModelProvider | None = None):
        from ..runners.config import build_agent
        from ..trace import TraceWriter

        self.config = config
        self.cancel = threading.Event()
        self.work_dir = Path(tempfile.mkdtemp(prefix="inkagent-web-"))
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.trace_path = Path(trace_dir) / f"web-{stamp}-{self.work_dir.name[-8:]}.trace.jsonl"
        self.models = models
        try:
            self.llm = self._model_of(config)
            built = self._with_shared_parts(config)
            self.agent = build_agent(built, llm=self.llm, trace=self.trace_path)
        except BaseException:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            raise
        self.kind = agent_kind(self.agent)
        # a skill agent writes no trace of its own: the session writes its events
        self._own_trace = None if isinstance(getattr(self.agent, "trace", None), TraceWriter) else TraceWriter(self.trace_path)
        self.plugins = self._wrap("plugin_executor")
        self.interpreter = self._wrap("interpreter_executor")
        self.turns: list[Turn] = []
        self.current: Turn | None = None
        self._worker: threading.Thread | None = None
        self._lock = threading.RLock()
        self._articles = 0
        self.closed = False

    def _model_of(self, config: Any) -> Any:
        """The config's model: the process-wide one when it is heavy and a provider is given, else its own."""
        from ..runners.config import build_llm

        if self.models is None or not is_heavy(config):
            return build_llm(config)
        return GatedLLM(self.models(model_key(config), lambda: build_llm(config)), self.cancel)

    def _with_shared_parts(self, config: Any) -> Any:
        """The config with a writer's heavy parts (its VLM, its gallery index) taken from the provider."""
        from ..agents.writer import IllustratedWriter
        from ..registry import BUILTIN_AGENTS

        extra = dict(config.agent.model_extra or {})
        if self.models is None or extra.get("retriever") is not None:
            return config
        try:
            agent_cls = load_object(config.agent.type, table=BUILTIN_AGENTS, base_dir=config.base_dir)
        except LookupFailed:
            return config  # build_agent reports it, naming the key
        if not (isinstance(agent_cls, type) and issubclass(agent_cls, IllustratedWriter)):
            return config
        where = str(config.source)
        vlm = extra.get("vlm")
        if isinstance(vlm, str | dict):
            from ..llms.vlm import VisionLanguageModel

            key = json.dumps(["vlm", where, vlm], sort_keys=True, default=str)
            kwargs = dict(vlm) if isinstance(vlm, dict) else {"path": vlm}  # the writer's own two forms
            extra["vlm"] = GatedLLM(self.models(key, lambda: VisionLanguageModel(**kwargs)), self.cancel)
        if extra.get("gallery") is not None:
            from ..actions.image_retrieval import DEFAULT_CLIP, ImageRetrieval

            gallery = str(extra.pop("gallery"))  # as `inkagent write` takes it
            clip = extra.pop("clip_model", None) or DEFAULT_CLIP
            top_k = int(extra.get("num_candidates", 4))
            key = json.dumps(["gallery", gallery, clip, top_k])
            extra["retriever"] = self.models(key, lambda: ImageRetrieval(gallery, clip, top_k=top_k)).model
        fields = type(config.agent).model_fields
        given = {name: getattr(config.agent, name) for name in config.agent.model_fields_set if name in fields}
        section = type(config.agent).model_validate({**given, **extra})  # the keys the file set, no more
        return config.model_copy(update={"agent": section})

    def _wrap(self, attribute: str) -> ToolView | None:
        executor = getattr(self.agent, attribute, None)
        if executor is None:
            return None
        view = ToolView(executor, self.cancel)
        setattr(self.agent, attribute, view)
        return view

    # -- what the sidebar shows and sets -----------------------------------------------------------
    @property
    def tool_names(self) -> list[str]:
        return self.plugins.tool_names() if self.plugins is not None else []

    @property
    def waiting_for_model(self) -> bool:
        """True while this session's turn waits for a shared model that another session is using."""
        return isinstance(self.llm, GatedLLM) and self.llm.waiting.is_set()

    def configure(
        self,
        *,
        tools: set[str] | None = None,
        interpreter: bool = True,
        language: str | None = None,
        max_turn: int | None = None,
    ) -> None:
        """Apply the sidebar's settings (between turns): tools on, interpreter on/off, language, max_turn."""
        if self.plugins is not None:
            self.plugins.enabled = None if tools is None else set(tools)
        if self.interpreter is not None and hasattr(self.agent, "interpreter_executor"):
            self.agent.interpreter_executor = self.interpreter if interpreter else None
        if max_turn is not None and hasattr(self.agent, "max_turn"):
            self.agent.max_turn = int(max_turn)
        if language is not None and self.kind == "agent" and language != self.language:
            self.agent.protocol = _protocol_for(self.config, language)
            self._language = language

    @property
    def language(self) -> str:
        return getattr(self, "_language", self.config.agent.language)

    # -- turns -------------------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        worker = self._worker
        return worker is not None and worker.is_alive()

    def start(self, text: str, *, images: list[str] | None = None, request: dict[str, Any] | None = None) -> Turn:
        """Start a turn on a worker thread and return it (the page follows `turn.events`)."""
        with self._lock:
            if self.closed:
                raise RuntimeError("the session is closed")
            if self.busy:
                self._settle(STOP_WAIT_S)
                if self.busy:
                    raise InkAgentError("the previous turn is still stopping; send the message again in a moment")
            self.cancel.clear()
            turn = Turn(text=text, images=list(images or []), request=request)
            self.turns.append(turn)
            self.current = turn
            self._worker = threading.Thread(
                target=self._run, args=(turn,), name="inkagent-web-turn", daemon=True
            )
            self._worker.start()
            return turn

    def _message(self, turn: Turn) -> tuple[Any, dict[str, Any]]:
        if self.kind == "writer":
            self._articles += 1
            request = dict(turn.request or {"title": turn.text})
            request.setdefault("out_dir", str(self.work_dir / f"article-{self._articles}"))
            return request, {}
        if turn.images:
            return turn.text, {"images": turn.images}
        return turn.text, {}

    def _run(self, turn: Turn) -> None:
        stream = None
        try:
            message, kwargs = self._message(turn)
            stream = self.agent.stream(message, **kwargs)
            for event in stream:
                if self._own_trace is not None and not isinstance(event, TextDelta):
                    self._own_trace.write(event)
                turn.add(event)
                if self.cancel.is_set():
                    raise TurnCancelled()
            turn.article = getattr(self.agent, "last_article", None) if self.kind == "writer" else None
            turn.finish("done")
        except TurnCancelled:
            if stream is not None:
                stream.close()  # the agent drops the partial turn from its memory
            if self._own_trace is not None:
                self._own_trace.write(AgentError(kind="cancelled", message="the run was cancelled"))
            turn.finish("cancelled")
        except Exception as exc:  # an agent that raises instead of reporting (a bad image): say so
            logger.debug("the turn failed", exc_info=True)
            if stream is not None:
                stream.close()
            turn.finish("failed", f"{type(exc).__name__}: {exc}")

    def stop(self) -> bool:
        """Cancel the running turn (model, tools) and drop it from the page and the conversation.

        Returns False when no turn was running.
        """
        with self._lock:
            turn = self.current
            if turn is None or not turn.running:
                return False
            self.cancel.set()
            for view in (self.plugins, self.interpreter):
                if view is not None:
                    view.interrupt()
            turn.wait_done(STOP_WAIT_S)
            if turn in self.turns:
                self.turns.remove(turn)
            return True

    def _settle(self, timeout: float) -> None:
        """Wait for a cancelled worker still winding down (a tool that ignored the interrupt)."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)

    def new_conversation(self) -> None:
        """Forget everything: stop a running turn, clear the memory and the page, restart the kernel."""
        with self._lock:
            self.stop()
            self._settle(STOP_WAIT_S)
            self.agent.reset()
            self.turns.clear()
            self.current = None
            if self.interpreter is not None:
                self.interpreter.restart()

    def close(self) -> None:
        """End the session: stop its turn, shut its kernel down, close its trace, delete its files."""
        from ..runners.run import close_agent

        with self._lock:
            if self.closed:
                return
            self.closed = True
            self.stop()
        close_agent(self.agent)
        if self._own_trace is not None:
            self._own_trace.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)

    @property
    def kernel_pid(self) -> int | None:
        """The process id of this session's interpreter kernel, or None while none runs."""
        if self.interpreter is None:
            return None
        for action in self.interpreter.actions.values():
            pid = getattr(action, "kernel_pid", None)
            if pid is not None:
                return pid
        return None

    # -- downloads ---------------------------------------------------------------------------------
    def conversation_json(self) -> str:
        """The conversation as the REPL's `/save` writes it (`inkagent chat` can `/load` it)."""
        from ..runners.repl import CONVERSATION_FORMAT

        messages = [
            m.model_dump(mode="json") if hasattr(m, "model_dump") else dict(m)
            for m in getattr(self.agent, "memory", [])
        ]
        document: dict[str, Any] = {"format": CONVERSATION_FORMAT, "version": 1, "messages": messages}
        if self.config.source is not None:
            document["config"] = str(self.config.source)
        return json.dumps(document, ensure_ascii=False, indent=2) + "\n"

    def trace_bytes(self) -> bytes:
        """This session's trace so far (JSON lines)."""
        try:
            return self.trace_path.read_bytes()
        except FileNotFoundError:
            return b""

    def upload_dir(self) -> Path:
        folder = self.work_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        return folder


def agent_kind(agent: Any) -> str:
    """How the page shows an agent: `agent` (tools), `chat` (persona), `vision` (images) or `writer`."""
    from ..agents.image_understanding import ImageUnderstanding
    from ..agents.writer import IllustratedWriter

    if isinstance(agent, IllustratedWriter):
        return "writer"
    if isinstance(agent, ImageUnderstanding):
        return "vision"
    if hasattr(agent, "plugin_executor") or hasattr(agent, "interpreter_executor"):
        return "agent"
    return "chat"


def _protocol_for(config: Any, language: str) -> Any:
    """The protocol the config builds, in another prompt language (built by the config system itself)."""
    from ..runners.config import build_protocol

    section = config.agent.model_copy(update={"language": language})
    return build_protocol(config.model_copy(update={"agent": section}))


def article_blocks(article: Any) -> list[tuple[str, Path | None, str]]:
    """The article as (segment text, image shown after it or None, caption), in order."""
    placed = sorted(p for p, choice in article.choices.items() if choice.hit is not None)
    images = dict(zip(placed, article.images, strict=False))
    return [(text, images.get(i), article.captions.get(i, "")) for i, text in enumerate(article.segments)]


def article_zip(article: Any) -> bytes:
    """`article.md`, `article.html` and `images/` of a saved article, as a zip archive."""
    buffer = io.BytesIO()
    folder = Path(article.folder)
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()

