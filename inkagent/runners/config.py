"""Config files: YAML validated by pydantic, and the objects built from them.

```yaml
llm:                      # the model: a registered name or an import path, plus its arguments
  type: HFTransformer
  path: internlm/internlm2-chat-7b
agent:                    # a ToolAgent (Internlm2Agent) unless told otherwise; only the agent's own settings
  protocol: internlm2     # internlm2 | openai | hermes | react, or {type: openai, tool_choice: required}
  max_turn: 10
  language: en            # prompt set: en or zh
  generation: {temperature: 0.2}   # generation options for every model call (or put them under llm:)
actions:                  # by name, `module:attr`, `./file.py:attr`, or a mapping with arguments
  - ArxivSearch
  - {type: Weather, units: imperial}
  - ./my_tools.py:translate
interpreter: {timeout_s: 20}   # an IPythonInterpreter; omit or null for none
mcp_servers:              # MCP servers whose tools become actions `<name>.<tool>`
  - {name: files, command: [python, -m, my_fs_server, /data], env: {LOG_LEVEL: info}}
  - {name: search, url: "http://127.0.0.1:9000/mcp", headers_env: {Authorization: SEARCH_TOKEN}}
task: What is 17 * 23?
```

Any error names the file, the key path and what was expected (`ConfigError`). Keys are checked against
what they configure: `llm:`, `actions:` and `interpreter:` keys against the class's constructor (its
whole chain of `__init__`s, lagent's generation options included), `agent:` keys against the agent's
settings; an unknown key is named with the closest valid one.
"""

from __future__ import annotations

import difflib
import inspect
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError
from ..registry import BUILTIN_AGENTS, BUILTIN_LLMS, LookupFailed, action_names, load_object


class Component(BaseModel):
    """A thing to build: `type` (a name or import path) and the arguments of its constructor."""

    model_config = ConfigDict(extra="allow")
    type: str

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class AgentSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "Internlm2Agent"
    protocol: str | dict[str, Any] | None = None  # a name, or {type: <name>, <the protocol's options>}; internlm2
    max_turn: int = Field(10, ge=1)
    language: str = Field("en", pattern="^(en|zh)$")
    meta_prompt: str | None = None
    interpreter_prompt: str | None = None
    plugin_prompt: str | None = None
    tool_timeout_s: float | None = Field(60.0, gt=0)
    max_output_chars: int = Field(8000, ge=100)
    generation: dict[str, Any] = {}  # generation options passed on every model call


class InterpreterSection(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str = "IPythonInterpreter"


class MCPServerSpec(BaseModel):
    """One `mcp_servers:` entry: an MCP server started with `command` (stdio) or reached at `url`."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[A-Za-z_][\w-]*$")  # the namespace of its tools: `files.read_file`
    command: list[str] | None = Field(None, min_length=1)
    url: str | None = Field(None, pattern=r"^https?://")
    env: dict[str, str] = {}  # extra environment of a stdio server
    headers_env: dict[str, str] = {}  # HTTP header -> the NAME of the environment variable holding it
    cwd: str | None = None  # a stdio server's working directory (relative to the config file)
    timeout_s: float | None = Field(None, gt=0)  # per call; default: agent.tool_timeout_s
    files_dir: str | None = None  # where result images go (relative to the config file)

    @model_validator(mode="after")
    def _one_transport(self) -> MCPServerSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError("give either command: [...] (a stdio server) or url: ... (streamable HTTP)")
        return self


class Config(BaseModel):
    """A whole config file."""

    model_config = ConfigDict(extra="forbid")
    llm: Component
    agent: AgentSection = AgentSection()
    actions: list[Component] = []
    interpreter: InterpreterSection | None = None
    mcp_servers: list[MCPServerSpec] = []
    task: str | None = None
    trace: str | None = None
    source: Path | None = Field(None, exclude=True)  # the file it came from (set by load_config)

    @field_validator("actions", mode="before")
    @classmethod
    def _names_to_components(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"type": item} if isinstance(item, str) else item for item in value]
        return value

    @field_validator("mcp_servers")
    @classmethod
    def _distinct_servers(cls, value: list[MCPServerSpec]) -> list[MCPServerSpec]:
        names = [server.name for server in value]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise ValueError(f"two MCP servers are named {twice[0]!r}: their tools would clash")
        return value

    @property
    def base_dir(self) -> Path | None:
        return self.source.parent if self.source else None


def _key_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> Config:
    """Read and validate a config file; raise `ConfigError` naming the file and the key on any problem."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the config: {exc.strerror or exc}", path=str(path)) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{where}not valid YAML ({getattr(exc, 'problem', exc)})", path=str(path)) from exc
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of sections (llm, agent, actions, interpreter, task)", path=str(path))
    data.update(overrides or {})
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = _key_path(error["loc"]) or "(top level)"
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown key (expected one of: llm, agent, actions, interpreter, mcp_servers, task, trace)"
        elif error["type"] == "missing":
            message = "required key is missing"
        elif error.get("input") is not None and error["type"] != "missing":
            message += f" (got {error['input']!r})"
        raise ConfigError(message, path=str(path), key=key) from exc
    config.source = path
    return config


#: Keys under `agent:` that other parts of inkagent read (accepted whatever the agent class).
_SHARED_AGENT_KEYS = frozenset({"protocol"})
#: Internlm2Agent's constructor arguments that build_agent fills in itself (not config keys).
_BUILT_AGENT_ARGS = frozenset({"llm", "plugin_executor", "interpreter_executor", "max_turn", "trace", "protocol"})


def accepted_keywords(target: Any) -> set[str] | None:
    """The keyword arguments `target` (a class or function) accepts, or None when it takes any.

    A class's `__init__` that passes `**kwargs` on is followed up its MRO, so a backend accepts its
    base classes' arguments too (lagent's `max_new_tokens`, `top_p`...); `GENERATION_OPTIONS`, where a
    class documents more, are added.
    """
    names: set[str] = set(getattr(target, "GENERATION_OPTIONS", ()) or ())
    functions = [c.__dict__["__init__"] for c in target.__mro__ if "__init__" in c.__dict__] if isinstance(
        target, type) else [target]
    for function in functions:
        if function is object.__init__:
            return None  # **kwargs reached object: nobody checks them
        try:
            parameters = inspect.signature(function).parameters.values()
        except (TypeError, ValueError):
            return None
        names |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            names.discard("self")
            return names
    return None


def unknown_key_error(key: str, valid: set[str] | frozenset[str], *, path: str | None, where: str) -> ConfigError:
    """A config error naming the unknown `key` under `where` and the closest valid key."""
    if key == "api_key":
        from ..llms.apikey import API_KEY_IN_CONFIG

        return ConfigError(API_KEY_IN_CONFIG, path=path, key=f"{where}.{key}")
    close = difflib.get_close_matches(key, sorted(valid), n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(sorted(valid))}"
    return ConfigError(f"unknown key ({hint})", path=path, key=f"{where}.{key}")


def check_keys(keys: Any, target: Any, *, path: str | None, where: str, ignore: frozenset[str] = frozenset()) -> None:
    """Raise `unknown_key_error` for the first of `keys` that `target` does not accept."""
    valid = accepted_keywords(target)
    if valid is None:
        return
    valid = (valid | ignore) - {"self"}
    for key in keys:
        if key not in valid:
            raise unknown_key_error(key, valid - {"kwargs"}, path=path, where=where)


def check_agent_keys(config: Config, agent_cls: type) -> None:
    """`agent:` holds the agent's own settings: its section's fields and its class's constructor arguments.

    Generation options go under `agent.generation:` (or `llm:`); a misplaced one is named with that hint.
    """
    path = str(config.source) if config.source else None
    section = config.agent
    own = set(type(section).model_fields) | _SHARED_AGENT_KEYS
    try:  # the agent's named arguments; its **kwargs are generation options, not settings
        parameters = inspect.signature(agent_cls.__init__).parameters.values()
    except (TypeError, ValueError):
        return
    own |= {p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
    own = (own - _BUILT_AGENT_ARGS - {"self"}) | _SHARED_AGENT_KEYS
    for key in section.model_extra or {}:
        if key not in own:
            if key in _GENERATION_HINTS:
                raise ConfigError(
                    "a generation option: put it under agent.generation (or llm)", path=path, key=f"agent.{key}"
                )
            raise unknown_key_error(key, own - {"type"}, path=path, where="agent")


#: Generation options people put under `agent:` by habit (lagent passed them on from there).
_GENERATION_HINTS = frozenset({
    "temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "stop_words", "do_sample",
    "max_tokens", "seed",
})


def _build(component: Component, table: dict[str, str], config: Config, key: str, **extra: Any) -> Any:
    try:
        target = load_object(component.type, table=table, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key=f"{key}.type") from exc
    kwargs = {**component.kwargs, **extra}
    if isinstance(target, type):
        check_keys(component.kwargs, target, path=str(config.source), where=key)
    if not isinstance(target, type):
        if component.kwargs:
            raise ConfigError(
                f"{component.type} is not a class, so it takes no arguments (got {sorted(component.kwargs)})",
                path=str(config.source), key=key,
            )
        return target
    try:
        return target(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"cannot build {component.type}: {exc}", path=str(config.source), key=key) from exc


#: Model arguments that hold a local path: `./x` or `../x` there is relative to the config file.
_PATH_KEYS = ("path", "tokenizer_path")


def _llm_component(component: Component, config: Config) -> Component:
    """`component` with its relative model paths made relative to the config file, so a config works
    from any directory; other values (hub ids, absolute paths) are left alone."""
    updates = {}
    for key in _PATH_KEYS:
        value = component.kwargs.get(key)
        if isinstance(value, str) and value.startswith(("./", "../")) and config.base_dir is not None:
            updates[key] = str((config.base_dir / value).resolve())
    return component.model_copy(update=updates) if updates else component


def protocol_name(config: Config) -> str:
    """The name of the config's `agent.protocol` (`internlm2` by default)."""
    spec = config.agent.protocol
    if isinstance(spec, dict):
        return str(spec.get("type", "internlm2"))
    return spec or "internlm2"


def build_llm(config: Config) -> Any:
    """The model backend of the config.

    With a protocol other than `internlm2`, the backend does not carry InternLM2's defaults: no
    `<|im_end|>` stop word (the protocol says its own) and, for chat APIs and backends that render
    with the model's own chat template (`meta_template: null`), no INTERNLM2 meta template. A raw-prompt
    completions backend keeps its ChatML template (Qwen's format too). Set either key to override.
    """
    component = _llm_component(config.llm, config)
    if protocol_name(config) != "internlm2":
        component = _without_internlm2_defaults(component, config)
    return _build(component, BUILTIN_LLMS, config, "llm")


def _without_internlm2_defaults(component: Component, config: Config) -> Component:
    try:
        target = load_object(component.type, table=BUILTIN_LLMS, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key="llm.type") from exc
    if not isinstance(target, type):
        return component
    updates: dict[str, Any] = {}
    if "stop_words" not in component.kwargs:
        updates["stop_words"] = None
    completions = component.kwargs.get("mode", "completions") != "chat" and hasattr(target, "stream_deltas")
    if "meta_template" not in component.kwargs and not completions:
        updates["meta_template"] = None
    return component.model_copy(update=updates)


def build_actions(config: Config, agent_llm: Any = None) -> list[Any]:
    """The config's actions. An action's `llm:` key may be a backend mapping, or `agent` for the agent's model."""
    table = action_names()
    actions = []
    for i, component in enumerate(config.actions):
        extra = {}
        llm_spec = component.kwargs.get("llm")
        if llm_spec == "agent":
            extra["llm"] = agent_llm
        elif isinstance(llm_spec, dict):
            try:
                nested = Component.model_validate(llm_spec)
            except ValidationError as exc:
                raise ConfigError("expected {type: <backend>, ...}", path=str(config.source), key=f"actions[{i}].llm") from exc
            extra["llm"] = _build(_llm_component(nested, config), BUILTIN_LLMS, config, f"actions[{i}].llm")
        actions.append(_build(component, table, config, f"actions[{i}]", **extra))
    return actions


def build_mcp_toolsets(config: Config) -> list[Any]:
    """The config's MCP servers as `MCPToolset`s, started (their tools listed); none started on error."""
    if not config.mcp_servers:
        return []
    from ..actions.mcp_client import build_toolsets

    return build_toolsets(config, timeout_s=config.agent.tool_timeout_s)


def build_protocol(config: Config) -> Any:
    """The config's `agent.protocol`: a name, or a mapping with `type` (the name) and the protocol's options.
    `language` and the prompt keys of `agent:` apply to the protocols that take them."""
    from ..protocols import get_protocol

    section, spec = config.agent, config.agent.protocol
    options = {k: v for k, v in spec.items() if k != "type"} if isinstance(spec, dict) else {}
    name = protocol_name(config)
    if name == "internlm2":
        prompts = {"meta_prompt": section.meta_prompt, "interpreter_prompt": section.interpreter_prompt,
                   "plugin_prompt": section.plugin_prompt}  # fmt: skip
        options = {"language": section.language, **prompts, **options}
    elif name == "react":
        options = {"language": section.language, **options}
    elif section.meta_prompt is not None:  # openai / hermes: the meta prompt is their system prompt
        options = {"system_prompt": section.meta_prompt, **options}
    try:
        return get_protocol(name, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"cannot build protocol {name!r}: {exc}", path=str(config.source), key="agent.protocol") from exc


def build_agent(config: Config, *, llm: Any = None, trace: Any = None) -> Any:
    """The agent of the config, with its model, tools and interpreter.

    When it loads the model itself (`llm` not given), the interpreter is built first and its kernel
    started in the background (`IPythonInterpreter.start`), so that the kernel starts while the model
    loads; given a model, the kernel starts on the first call, as before.

    Raises:
        ConfigError: a bad key, or a protocol the backend cannot serve (`openai` needs a chat API).
    """
    from ..agents.tool_agent import ToolAgent

    section = config.agent
    try:
        agent_cls = load_object(section.type, table=BUILTIN_AGENTS, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key="agent.type") from exc
    check_agent_keys(config, agent_cls)
    tool_agent = isinstance(agent_cls, type) and issubclass(agent_cls, ToolAgent)
    if not tool_agent or llm is not None or config.interpreter is None:
        return _build_agent(config, agent_cls, llm if llm is not None else build_llm(config), trace, None)
    interpreter = _build_interpreter(config)
    start = getattr(interpreter, "start", None)
    if callable(start):
        start()  # in the background: the kernel starts while the model loads
    try:
        return _build_agent(config, agent_cls, build_llm(config), trace, interpreter)
    except BaseException:
        closer = getattr(interpreter, "close", None)
        if callable(closer):
            closer()
        raise


def _build_interpreter(config: Config) -> Any:
    assert config.interpreter is not None
    component = Component(type=config.interpreter.type, **(config.interpreter.model_extra or {}))
    return _build(component, action_names(), config, "interpreter")


def _build_agent(config: Config, agent_cls: type, llm: Any, trace: Any, interpreter: Any) -> Any:
    """`build_agent` once the model is there (and the interpreter, when built already)."""
    from ..actions.executor import ActionExecutor
    from ..agents.tool_agent import ToolAgent

    section = config.agent
    extra = dict(section.model_extra or {})
    for shared in _SHARED_AGENT_KEYS:
        extra.pop(shared, None)  # read by other parts of inkagent, not the agent's constructor
    if section.generation:
        extra.update(section.generation)  # the agent passes them on to every model call
    if not (isinstance(agent_cls, type) and issubclass(agent_cls, ToolAgent)):
        if "language" in section.model_fields_set:
            extra["language"] = section.language
        return agent_cls(llm=llm if llm is not None else build_llm(config), **extra)  # a skill takes its own keys
    protocol = build_protocol(config)
    llm = llm if llm is not None else build_llm(config)
    try:
        protocol.check_backend(llm)
    except ConfigError as exc:
        raise ConfigError(str(exc), path=str(config.source), key="agent.protocol") from exc
    limits = {"timeout_s": section.tool_timeout_s, "max_output_chars": section.max_output_chars}
    actions = build_actions(config, llm)
    toolsets = build_mcp_toolsets(config)
    try:
        plugin_executor = ActionExecutor(actions + toolsets, **limits) if actions or toolsets else None
    except ValueError as exc:  # two actions with one name
        for toolset in toolsets:
            toolset.close()
        key = "mcp_servers" if any(t.name in str(exc) for t in toolsets) else "actions"
        raise ConfigError(str(exc), path=str(config.source), key=key) from exc
    interpreter_executor = None
    if config.interpreter is not None:
        try:
            if interpreter is None:
                interpreter = _build_interpreter(config)
        except BaseException:
            if plugin_executor is not None:  # MCP servers were started: stop them
                plugin_executor.close()
            raise
        # the interpreter enforces its own time limit (and restarts its kernel); no second one here
        interpreter_executor = ActionExecutor([interpreter], timeout_s=None, max_output_chars=section.max_output_chars)
    return agent_cls(
        llm=llm,
        plugin_executor=plugin_executor,
        interpreter_executor=interpreter_executor,
        protocol=protocol,
        max_turn=section.max_turn,
        trace=trace,
        **extra,
    )
