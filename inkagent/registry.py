"""Finding components by name: built-ins, `package.module:Name`, `./file.py:Name`, and entry points.

Names are looked up in a per-kind table (no global class registry, so two packages cannot clash by
defining classes with the same name, as they do in lagent's). Installed packages add actions under the
entry-point group `inkagent.actions`:

```toml
[project.entry-points."inkagent.actions"]
Translate = "my_package.tools:Translate"
```

Two packages registering one name (or a package registering a built-in's name) is an error, raised
when that name is looked up, naming both packages: nothing is silently shadowed.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from .errors import InkAgentError

BUILTIN_ACTIONS = {
    "IPythonInterpreter": "inkagent.actions.ipython:IPythonInterpreter",
    "ArxivSearch": "inkagent.actions.arxiv:ArxivSearch",
    "Weather": "inkagent.actions.weather:Weather",
    "ImageCaption": "inkagent.actions.image_caption:ImageCaption",
    "ImageRetrieval": "inkagent.actions.image_retrieval:ImageRetrieval",
}
BUILTIN_LLMS = {
    "ScriptedLLM": "inkagent.llms.scripted:ScriptedLLM",
    "HFTransformer": "inkagent.llms.hf:HFTransformer",
    "OpenAICompatible": "inkagent.llms.openai_compat:OpenAICompatible",
    "LMDeployClient": "inkagent.llms.lmdeploy_wrapper:LMDeployClient",
    "VisionLanguageModel": "inkagent.llms.vlm:VisionLanguageModel",
    "OpenAICompatibleVision": "inkagent.llms.vision_server:OpenAICompatibleVision",
}
BUILTIN_AGENTS = {
    "Internlm2Agent": "inkagent.agents.internlm2_agent:Internlm2Agent",
    "ToolAgent": "inkagent.agents.tool_agent:ToolAgent",
    "ChatAgent": "inkagent.agents.chat:ChatAgent",
    "IllustratedWriter": "inkagent.agents.writer:IllustratedWriter",
    "ImageUnderstanding": "inkagent.agents.image_understanding:ImageUnderstanding",
}
ENTRY_POINT_GROUP = "inkagent.actions"


class LookupFailed(InkAgentError, LookupError):
    """A name or import path does not resolve; the message says why."""


@dataclass(frozen=True)
class ActionSource:
    """Where a named action comes from: `builtin`, or the distribution that registered it."""

    name: str
    target: str  # "package.module:attr"
    origin: str  # "builtin" or "entry point of <distribution> <version>"


@cache
def entry_point_sources() -> tuple[ActionSource, ...]:
    """Every action that installed packages register under the `inkagent.actions` entry-point group."""
    from importlib.metadata import entry_points

    sources = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(ep, "dist", None)
        origin = f"entry point of {dist.name} {dist.version}" if dist is not None else "entry point"
        sources.append(ActionSource(ep.name, ep.value, origin))
    return tuple(sources)


def entry_point_actions() -> dict[str, str]:
    """Entry-point actions, name -> import path (a name registered twice keeps its first target)."""
    names: dict[str, str] = {}
    for source in entry_point_sources():
        names.setdefault(source.name, source.target)
    return names


def action_sources() -> tuple[dict[str, ActionSource], dict[str, str]]:
    """The available actions by name, and the names that clash (name -> the error message)."""
    found: dict[str, list[ActionSource]] = {}
    for name, target in BUILTIN_ACTIONS.items():
        found.setdefault(name, []).append(ActionSource(name, target, "builtin"))
    for source in entry_point_sources():
        if all(source.target != other.target for other in found.get(source.name, [])):
            found.setdefault(source.name, []).append(source)
    table = {name: sources[0] for name, sources in found.items()}
    clashes = {
        name: f"two actions are registered as {name!r}: "
        + " and ".join(f"{s.target} ({s.origin})" for s in sources)
        + "; uninstall one, or name the one you mean by its import path"
        for name, sources in found.items()
        if len(sources) > 1
    }
    return table, clashes


class ActionTable(dict):
    """Action name -> import path. Looking up a name that two packages register raises `LookupFailed`."""

    def __init__(self, entries: dict[str, str], clashes: dict[str, str]):
        super().__init__(entries)
        self.clashes = clashes

    def __getitem__(self, name: str) -> str:
        if name in self.clashes:
            raise LookupFailed(self.clashes[name])
        return super().__getitem__(name)


def action_names() -> dict[str, str]:
    """Every action available by name: built-ins, then entry points (name -> import path)."""
    table, clashes = action_sources()
    return ActionTable({name: source.target for name, source in table.items()}, clashes)


def load_object(spec: str, *, table: dict[str, str] | None = None, base_dir: Path | None = None) -> Any:
    """Resolve `spec`: a name in `table`, `package.module:attr`, or `path/to/file.py:attr`.

    A relative file path is tried against `base_dir` (the config's folder), then the working directory.
    """
    if table and spec in table:
        spec = table[spec]
    if ":" not in spec:
        known = ", ".join(sorted(table)) if table else ""
        raise LookupFailed(
            f"unknown name {spec!r}"
            + (f" (known: {known})" if known else "")
            + "; use `module:attr` or `./file.py:attr`"
        )
    target, _, attr = spec.rpartition(":")
    if _is_file_target(target):
        module = _load_file(target, base_dir)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise LookupFailed(f"cannot import module {target!r}: {exc}") from exc
        except Exception as exc:  # the module itself is broken: say so instead of a traceback
            raise LookupFailed(f"module {target!r} failed to import: {type(exc).__name__}: {exc}") from exc
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise LookupFailed(f"{target!r} has no attribute {attr!r}") from exc
    return obj


def _is_file_target(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target or target.startswith(".")


_FILE_LOCK = threading.RLock()  # two agents built at once must not both import the same plugin file


def _load_file(target: str, base_dir: Path | None) -> Any:
    with _FILE_LOCK:
        return _load_file_locked(target, base_dir)


def _load_file_locked(target: str, base_dir: Path | None) -> Any:
    """Import a plugin file once per process (under a name derived from its path).

    Its folder is appended to `sys.path`, so a plugin file can import modules that sit next to it,
    as it could when run as a script.
    """
    candidates = (
        [Path(target)]
        if Path(target).is_absolute()
        else [base_dir / target if base_dir else None, Path.cwd() / target]
    )
    path = next((c.resolve() for c in candidates if c is not None and c.is_file()), None)
    if path is None:
        tried = ", ".join(str(c) for c in candidates if c is not None)
        raise LookupFailed(f"no such file: {target} (tried {tried})")
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    module_name = f"inkagent_plugin_{_identifier(path.stem)}_{digest}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LookupFailed(f"cannot load {path} as a Python module")
    if str(path.parent) not in sys.path:
        sys.path.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # before executing: dataclasses and pydantic look the module up
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise LookupFailed(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module


def _identifier(text: str) -> str:
    """`text` made into a Python identifier fragment."""
    return "".join(ch if ch.isalnum() or ch == "_" else "_" for ch in text)
