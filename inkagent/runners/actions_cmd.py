"""`inkagent actions`: list the available actions and the schema of each of their APIs.

With no argument, every action that can be named in a config: the built-ins and those that installed
packages register (entry-point group `inkagent.actions`). Names, import paths (`pkg.module:Name`,
`./file.py:Name`) or `--config FILE` narrow the list. Actions are imported only here, when the
command runs, and one that fails to import is reported without hiding the others.

Exit codes: 0 listed; 1 an action that was asked for by name or path cannot be loaded; 2 bad config.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import typing
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "specs",
        nargs="*",
        metavar="ACTION",
        help="action names or import paths (`pkg.module:Name`, `./file.py:Name`); default: all",
    )
    parser.add_argument(
        "--config", help="list the actions, MCP servers' tools (servers start for a moment) and interpreter of a config"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON list (with full JSON Schemas)")


def run(args: argparse.Namespace) -> int:
    from ..errors import InkAgentError

    try:
        if args.config:
            entries = _config_entries(args.config)
            explicit = True
        else:
            entries, explicit = _named_entries(args.specs), bool(args.specs)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(entries, ensure_ascii=False, indent=2) if args.json else render(entries), flush=True)
    except BrokenPipeError:  # `inkagent actions | head`: the reader left; not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    failed = [entry for entry in entries if entry.get("error")]
    return 1 if explicit and failed else 0


# -- collecting ---------------------------------------------------------------------------------
def _named_entries(specs: list[str]) -> list[dict[str, Any]]:
    from pathlib import Path

    from ..registry import action_sources, load_object

    table, clashes = action_sources()
    wanted = specs or list(table)
    entries = []
    for spec in wanted:
        source = table.get(spec)
        entry: dict[str, Any] = {
            "name": spec,
            "origin": source.origin if source else "import path",
            "target": source.target if source else spec,
        }
        if spec in clashes:
            entries.append({**entry, "error": clashes[spec]})
            continue
        try:
            obj = load_object(entry["target"], base_dir=Path.cwd())
        except Exception as exc:  # a broken plugin must not hide the others
            entries.append({**entry, "error": _reason(exc)})
            continue
        entries.append(describe(obj, entry))
    return entries


def _config_entries(path: str) -> list[dict[str, Any]]:
    from ..errors import ConfigError
    from ..registry import LookupFailed, action_names, load_object
    from .config import build_actions, load_config

    config = load_config(path)
    built = list(zip(config.actions, build_actions(config), strict=True))
    if config.interpreter is not None:
        section = config.interpreter
        try:
            target = load_object(section.type, table=action_names(), base_dir=config.base_dir)
            built.append((section, target(**(section.model_extra or {}))))
        except (LookupFailed, TypeError) as exc:
            raise ConfigError(str(exc), path=path, key="interpreter") from exc
    if config.mcp_servers:  # listed like the others: describing a toolset starts its server, for a moment
        from ..actions.mcp_client import toolset_from_spec

        for i, server in enumerate(config.mcp_servers):
            target = server.url or " ".join(server.command or [])
            built.append((_Source(server.name, target, " (MCP server)"), toolset_from_spec(config, i)))
    entries = []
    for component, action in built:
        name = component.name if isinstance(component, _Source) else getattr(action, "name", component.type)
        entry = {
            "name": name,
            "origin": f"config {path}{getattr(component, 'note', '')}",
            "target": component.type,
        }
        entries.append(describe(action, entry, built=True))
        if callable(getattr(action, "close", None)):
            action.close()
    return entries


class _Source(typing.NamedTuple):
    """Where a config entry that is not a component comes from (an MCP server)."""

    name: str
    type: str
    note: str


def describe(obj: Any, entry: dict[str, Any], *, built: bool = False) -> dict[str, Any]:
    """`entry` plus the action's description and its APIs' schemas; `error` when it cannot be described."""
    from ..actions.base import Action, bind_apis

    instance, made_here = obj, False
    try:
        if isinstance(obj, type) and not built:
            try:
                instance, made_here = obj(), True
            except Exception as exc:
                if not issubclass(obj, Action):
                    raise TypeError(f"cannot be built without arguments ({_reason(exc)})") from exc
                # an inkagent Action's schema comes from its class: describe it without its constructor
                instance = obj.__new__(obj)
        apis = bind_apis(instance)
    except Exception as exc:
        return {**entry, "error": _reason(exc)}
    finally:
        if made_here and callable(getattr(instance, "close", None)):
            instance.close()
    description = getattr(instance, "description", "")
    if not isinstance(description, str):  # a lagent action's description is a dict
        description = description.get("description", "") if isinstance(description, dict) else ""
    return {
        **entry,
        "name": getattr(instance, "name", None) or entry["name"],
        "description": description or (apis[0].spec.description if len(apis) == 1 else ""),
        "apis": [bound.spec.model_dump() for bound in apis],
    }


def _reason(exc: BaseException) -> str:
    from ..errors import InkAgentError

    text = str(exc)
    return text if isinstance(exc, InkAgentError) else f"{type(exc).__name__}: {text}"


# -- rendering ----------------------------------------------------------------------------------
def render(entries: list[dict[str, Any]]) -> str:
    """The listing as text: each action, where it comes from, and each API with its parameters."""
    blocks = []
    for entry in entries:
        lines = [f"{entry['name']}  ({entry['origin']}: {entry['target']})"]
        if entry.get("error"):
            lines.append(f"  unavailable: {entry['error']}")
            blocks.append("\n".join(lines))
            continue
        for api in entry.get("apis", []):
            schema = api["parameters"]
            required = set(schema.get("required", []))
            props = schema.get("properties", {})
            signature = ", ".join(_short_param(name, prop, name in required) for name, prop in props.items())
            lines.append(f"  {api['name']}({signature})")
            if api.get("description"):
                lines.extend(f"      {line}" for line in api["description"].splitlines())
            for name, prop in props.items():
                text = f"      - {name}: {_type_of(prop)}{', required' if name in required else ''}"
                if prop.get("description"):
                    text += f" - {prop['description']}"
                lines.append(text)
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) if blocks else "no actions"


def _short_param(name: str, prop: dict[str, Any], required: bool) -> str:
    text = f"{name}: {_type_of(prop)}"
    if not required and "default" in prop:
        text += f" = {json.dumps(prop['default'], ensure_ascii=False)}"
    return text


def _type_of(prop: dict[str, Any]) -> str:
    """A JSON Schema in a few words: `integer 1..20`, `"metric" | "imperial"`, `array of string`."""
    if "enum" in prop:
        return " | ".join(json.dumps(value, ensure_ascii=False) for value in prop["enum"])
    if "anyOf" in prop:
        return " | ".join(_type_of(option) for option in prop["anyOf"])
    kind = prop.get("type", "any")
    if isinstance(kind, list):
        kind = " | ".join(kind)
    if kind == "array" and isinstance(prop.get("items"), dict):
        return f"array of {_type_of(prop['items'])}"
    if "minimum" in prop or "maximum" in prop:
        return f"{kind} {prop.get('minimum', '')}..{prop.get('maximum', '')}"
    return str(kind)
