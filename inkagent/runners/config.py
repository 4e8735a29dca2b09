"""Config files: YAML validated by pydantic, and the objects built from them.

```yaml
llm:                      # the model: a registered name or an import path, plus its arguments
  type: HFTransformer
  path: internlm/internlm2-chat-7b
agent:                    # Internlm2Agent unless told otherwise
  max_turn: 10
  language: en            # prompt set: en or zh
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

Any error names the file, the key path and what was expected (`ConfigError`).
"""

from __future__ import annotations

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
    max_turn: int = Field(10, ge=1)
    language: str = Field("en", pattern="^(en|zh)$")
    meta_prompt: str | None = None
    interpreter_prompt: str | None = None
    plugin_prompt: str | None = None
    tool_timeout_s: float | None = Field(60.0, gt=0)
    max_output_chars: int = Field(8000, ge=100)


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


def _build(component: Component, table: dict[str, str], config: Config, key: str, **extra: Any) -> Any:
    try:
        target = load_object(component.type, table=table, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key=f"{key}.type") from exc
    kwargs = {**component.kwargs, **extra}
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


def build_llm(config: Config) -> Any:
    """The model backend of the config."""
    return _build(_llm_component(config.llm, config), BUILTIN_LLMS, config, "llm")


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


def build_agent(config: Config, *, llm: Any = None, trace: Any = None) -> Any:
    """The agent of the config, with its model, tools and interpreter."""
    from ..actions.executor import ActionExecutor
    from ..protocols.internlm2 import Internlm2Protocol

    llm = llm if llm is not None else build_llm(config)
    section = config.agent
    try:
        agent_cls = load_object(section.type, table=BUILTIN_AGENTS, base_dir=config.base_dir)
    except LookupFailed as exc:
        raise ConfigError(str(exc), path=str(config.source), key="agent.type") from exc
    extra = dict(section.model_extra or {})
    if section.type != "Internlm2Agent" and agent_cls.__name__ != "Internlm2Agent":
        if "language" in section.model_fields_set:
            extra["language"] = section.language
        return agent_cls(llm=llm, **extra)  # a skill agent takes its own keys
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
        component = Component(type=config.interpreter.type, **(config.interpreter.model_extra or {}))
        try:
            interpreter = _build(component, action_names(), config, "interpreter")
        except BaseException:
            if plugin_executor is not None:  # MCP servers were started: stop them
                plugin_executor.close()
            raise
        # the interpreter enforces its own time limit (and restarts its kernel); no second one here
        interpreter_executor = ActionExecutor([interpreter], timeout_s=None, max_output_chars=section.max_output_chars)
    protocol = Internlm2Protocol(
        language=section.language,
        meta_prompt=section.meta_prompt,
        interpreter_prompt=section.interpreter_prompt,
        plugin_prompt=section.plugin_prompt,
    )
    return agent_cls(
        llm=llm,
        plugin_executor=plugin_executor,
        interpreter_executor=interpreter_executor,
        protocol=protocol,
        max_turn=section.max_turn,
        trace=trace,
        **extra,
    )
