"""Finding components by name: built-ins, `package.module:Name`, `./file.py:Name`, and entry points.

Names are looked up in a per-kind table (no global class registry, so two packages cannot clash by
defining classes with the same name). Installed packages add actions under the entry-point group
`inkagent.actions`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from typing import Any

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
}
BUILTIN_AGENTS = {
    "Internlm2Agent": "inkagent.agents.internlm2_agent:Internlm2Agent",
    "ChatAgent": "inkagent.agents.chat:ChatAgent",
    "IllustratedWriter": "inkagent.agents.writer:IllustratedWriter",
    "ImageUnderstanding": "inkagent.agents.image_understanding:ImageUnderstanding",
}
ENTRY_POINT_GROUP = "inkagent.actions"


class LookupFailed(LookupError):
    """A name or import path does not resolve; the message says why."""


@cache
def entry_point_actions() -> dict[str, str]:
    """Actions that installed packages register under the `inkagent.actions` entry-point group."""
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def action_names() -> dict[str, str]:
    """Every action available by name: built-ins first, then entry points (name -> import path)."""
    names = dict(BUILTIN_ACTIONS)
    for name, target in entry_point_actions().items():
        if name in names and names[name] != target:
            raise LookupFailed(f"two actions are registered as {name!r}: {names[name]} and {target}")
        names[name] = target
    return names


def load_object(spec: str, *, table: dict[str, str] | None = None, base_dir: Path | None = None) -> Any:
    """Resolve `spec`: a name in `table`, `package.module:attr`, or `path/to/file.py:attr`.

    A relative file path is tried against `base_dir` (the config's folder), then the working directory.
    """
    if table and spec in table:
        spec = table[spec]
    if ":" not in spec:
        known = ", ".join(sorted(table)) if table else ""
        raise LookupFailed(
            f"unknown name {spec!r}" + (f" (known: {known})" if known else "") + "; use `module:attr` or `./file.py:attr`"
        )
    target, _, attr = spec.rpartition(":")
    if target.endswith(".py") or "/" in target or target.startswith("."):
        module = _load_file(target, base_dir)
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise LookupFailed(f"cannot import module {target!r}: {exc}") from exc
    try:
        obj: Any = module
        for part in attr.split("."):
            obj = getattr(obj, part)
    except AttributeError as exc:
        raise LookupFailed(f"{target!r} has no attribute {attr!r}") from exc
    return obj


def _load_file(target: str, base_dir: Path | None) -> Any:
    candidates = [Path(target)] if Path(target).is_absolute() else []
    if not candidates:
        candidates = [(base_dir / target) if base_dir else None, Path.cwd() / target]
    path = next((c.resolve() for c in candidates if c is not None and c.is_file()), None)
    if path is None:
        raise LookupFailed(f"no such file: {target}")
    module_name = f"inkagent_plugin_{abs(hash(str(path)))}"
    if module_name in sys.modules:
        return sys.modules[module_name]
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise LookupFailed(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise LookupFailed(f"{path} failed to import: {type(exc).__name__}: {exc}") from exc
    return module
