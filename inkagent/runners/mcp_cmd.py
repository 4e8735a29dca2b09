"""`inkagent mcp serve CONFIG [--http HOST:PORT]`: a config's actions as an MCP server.

Served: the config's `actions` (built-ins, plugins, skills), the tools of its `mcp_servers`, and its
interpreter when the config has an `interpreter:` section. Without `--http` the server speaks MCP on
stdin/stdout (what IDEs and desktop assistants start); with it, streamable HTTP at
`http://HOST:PORT/mcp` (port 0: a free port, printed on stderr). Calls honour `agent.tool_timeout_s`
and `agent.max_output_chars`.

Exit codes: 0 the client closed the connection (or Ctrl-C), 2 a bad config or usage.
"""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    commands = parser.add_subparsers(dest="mcp_command", metavar="SUBCOMMAND", required=True)
    serve = commands.add_parser(
        "serve",
        help="serve the config's actions as an MCP server (stdio, or streamable HTTP with --http)",
        description=__doc__.split("\n\n")[1],
    )
    serve.add_argument("config", help="YAML config file: its actions, mcp_servers and interpreter are served")
    serve.add_argument("--http", metavar="HOST:PORT", help="serve streamable HTTP at http://HOST:PORT/mcp")
    serve.add_argument(
        "--name", default="inkagent", help="the server name MCP clients see (default: inkagent)"
    )


def run(args: argparse.Namespace) -> int:
    from ..errors import ConfigError, InkAgentError

    try:
        address = _address(args.http) if args.http else None
        executor = build_executor(args.config)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    import anyio

    from ..actions.mcp_server import build_server, serve_http, serve_stdio

    server = build_server(executor, name=args.name)
    try:
        if address is None:
            anyio.run(serve_stdio, server)
        else:

            def ready(url: str) -> None:
                print(
                    f"serving {len(executor.api_names())} tools over MCP at {url}",
                    file=sys.stderr,
                    flush=True,
                )

            anyio.run(serve_http, server, *address, ready)
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken, the host is not ours
        print(
            f"error: {ConfigError(f'cannot serve on {args.http}: {exc.strerror or exc}', key='--http')}",
            file=sys.stderr,
        )
        return 2
    finally:
        executor.close()
    return 0


def build_executor(path: str):
    """An `ActionExecutor` with every action the config names: actions, MCP servers' tools, interpreter."""
    from ..actions.executor import ActionExecutor
    from ..errors import ConfigError
    from ..registry import action_names
    from .config import Component, _build, build_actions, build_llm, build_mcp_toolsets, load_config

    config = load_config(path)
    needs_llm = any(component.kwargs.get("llm") == "agent" for component in config.actions)
    actions = build_actions(config, build_llm(config) if needs_llm else None)
    if config.interpreter is not None:
        component = Component(type=config.interpreter.type, **(config.interpreter.model_extra or {}))
        actions.append(_build(component, action_names(), config, "interpreter"))
    actions += build_mcp_toolsets(config)
    section = config.agent
    try:
        return ActionExecutor(
            actions, timeout_s=section.tool_timeout_s, max_output_chars=section.max_output_chars
        )
    except ValueError as exc:  # two actions with one name
        for action in actions:
            if callable(getattr(action, "close", None)):
                action.close()
        raise ConfigError(str(exc), path=path, key="actions") from exc


def _address(text: str) -> tuple[str, int]:
    from ..errors import ConfigError

    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise ConfigError(f"expected HOST:PORT (like 127.0.0.1:8765), got {text!r}", key="--http")
    return host.strip("[]"), int(port)
