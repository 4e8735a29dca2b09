"""`inkagent web CONFIG`: the agent (or the config's skill) in the browser, as a streamlit app.

    inkagent web configs/scripted.yaml              # http://127.0.0.1:8501
    inkagent web configs/demo.yaml --port 8600

Every browser session gets its own agent, memory and interpreter kernel (freed when the session
closes); a model with weights is loaded once and shared, one generation at a time. The page binds to
127.0.0.1 unless --host says otherwise: the interpreter runs code as the user who started the server.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..errors import InkAgentError

LOOPBACK = {"127.0.0.1", "localhost", "::1"}
APP = Path(__file__).resolve().parent.parent / "web" / "app.py"

WEB_HELP = """\
pages by the config's agent:
  Internlm2Agent      chat with tool calls (status boxes, code, images), Stop, sidebar: tools on/off,
                      interpreter on/off, language, max_turn, new conversation, downloads
  ChatAgent           persona chat (e.g. configs/persona-zhubajie.yaml)
  ImageUnderstanding  chat with images attached to the message
  IllustratedWriter   title (+ material) -> the five steps, the article with images, downloads
traces: one file per browser session in --trace-dir (default runs/)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = WEB_HELP
    parser.add_argument("config", help="YAML config file (see configs/ and `inkagent run --help`)")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8501, help="port (default 8501)")
    parser.add_argument("--trace-dir", default="runs", help="where each session's trace goes (default runs/)")
    parser.add_argument("--browser", action="store_true", help="open a browser on the page")


def run(args: argparse.Namespace) -> int:
    from .config import load_config

    try:
        config = load_config(args.config)
    except InkAgentError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.host not in LOOPBACK:
        print(
            f"warning: serving on {args.host}, not 127.0.0.1: anyone who can reach this port can use the "
            "agent, and its Python interpreter runs code as you.",
            file=sys.stderr,
        )
    os.environ["INKAGENT_WEB_CONFIG"] = str(Path(args.config).resolve())
    os.environ["INKAGENT_WEB_TRACE_DIR"] = str(Path(args.trace_dir).resolve())
    os.environ["INKAGENT_WEB_HOST"] = args.host
    try:
        from streamlit import config as st_config
        from streamlit.web import bootstrap
    except ImportError:
        print("error: streamlit is not installed: pip install 'streamlit>=1.53'", file=sys.stderr)
        return 2
    flags = {
        "server.address": args.host,
        "server.port": args.port,
        "server.headless": not args.browser,
        "server.fileWatcherType": "none",
        "server.runOnSave": False,
        "browser.gatherUsageStats": False,  # no telemetry: the page works offline
        "global.developmentMode": False,
        "client.toolbarMode": "minimal",
        "client.showErrorDetails": "none",
    }
    st_config._main_script_path = str(APP)
    bootstrap.load_config_options(flag_options=flags)
    print(f"inkagent web · {args.config} ({config.agent.type}) · http://{_url_host(args.host)}:{args.port}", file=sys.stderr)
    bootstrap.run(str(APP), False, [], flags)
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
