"""The `inkagent` command. Each subcommand lives in its own module, imported only when it runs."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from . import __version__

# name -> (module, one-line help). A module defines `add_arguments(parser)` and `run(args) -> int`;
# both must keep heavy imports (torch, transformers, jupyter) inside `run`.
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("inkagent.runners.run", "run an agent task (or a file of tasks) from a config"),
    "chat": ("inkagent.runners.repl", "talk to an agent in a REPL that shows every tool call"),
    "bench": ("inkagent.runners.bench", "measure a model's tool-call accuracy (BFCL, inkagent-tools)"),
    "actions": ("inkagent.runners.actions_cmd", "list the available actions and their parameters"),
    "trace": ("inkagent.runners.trace_cmd", "show a saved trace"),
    "write": ("inkagent.runners.skills_cmd", "illustrated writing: an article with images for a title"),
    "see": ("inkagent.runners.skills_cmd", "ask a question about an image"),
    "convert-internlm2": (
        "inkagent.runners.convert_cmd",
        "write an InternLM2 / InternLM2.5 checkpoint as a standard Llama checkpoint",
    ),
    "mcp": ("inkagent.runners.mcp_cmd", "serve a config's actions as an MCP server (mcp serve CONFIG)"),
    "web": ("inkagent.runners.web", "the agent and the skills in the browser (a streamlit page)"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; given `command`, only that subcommand's module is imported and its arguments
    added (the others are listed with their help line only), so that a run does not pay for the imports
    of every subcommand."""
    parser = argparse.ArgumentParser(
        prog="inkagent",
        description="InternLM2-protocol agents: run tasks, chat with tool traces, benchmark tool calls.",
    )
    parser.add_argument("--version", action="version", version=f"inkagent {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="log more (-vv for debug)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        if command is not None and name != command:
            subparsers.add_parser(name, help=help_text, description=help_text)
            continue
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue  # a subcommand not built yet
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        add = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
        add(sub)
        sub.set_defaults(_module=module, _runner=getattr(module, f"run_{name}", None) or module.run)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The subcommand named in `argv` (the first word that is not an option), if it is one."""
    word = next((arg for arg in argv if not arg.startswith("-")), None)
    return word if word in COMMANDS else None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(_command_in(sys.argv[1:] if argv is None else argv))
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    level = [logging.WARNING, logging.INFO, logging.DEBUG][min(args.verbose, 2)]
    from .runners.logsetup import configure_logging

    configure_logging(level)  # one line per message, hub retries collapsed
    code = int(args._runner(args) or 0)
    if argv is None:  # the `inkagent` program, which exits now
        _spare_the_last_collections()
    return code


def _spare_the_last_collections() -> None:
    """Keep the garbage collections of the interpreter's exit from walking every object alive now:
    after a model was loaded (torch, transformers: millions of objects) they take about a second. Only
    cyclic garbage collection is skipped: exit handlers (`atexit`, `weakref.finalize`: kernels, MCP
    servers) still run, and objects freed by reference counting are still freed."""
    import gc

    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
