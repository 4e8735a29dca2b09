"""The streamlit page of `inkagent web CONFIG` (run it through that command, not `streamlit run`).

The config comes from `$INKAGENT_WEB_CONFIG`, the traces go to `$INKAGENT_WEB_TRACE_DIR` (default
`runs/`). A config's agent decides the page: an `Internlm2Agent` gets the tool chat with its sidebar, a
`ChatAgent` a persona chat, `ImageUnderstanding` a chat that takes images, `IllustratedWriter` a
title form and the article.

Each browser session has its own `WebSession` (agent, memory, kernel, trace), kept in a
session-scoped `st.cache_resource` whose `on_release` closes it when the browser disconnects. A heavy
model is loaded once per process (`st.cache_resource`) and shared, one generation at a time.
"""

from __future__ import annotations

import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from inkagent.errors import InkAgentError
from inkagent.runners.config import load_config
from inkagent.web.controls import SharedModel
from inkagent.web.session import Turn, WebSession, backend_class_name
from inkagent.web.view import follow_turn, show_turn

CONFIG_ENV = "INKAGENT_WEB_CONFIG"
TRACE_ENV = "INKAGENT_WEB_TRACE_DIR"
HOST_ENV = "INKAGENT_WEB_HOST"
IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@st.cache_resource(show_spinner="Loading a model (once, for every session)…")
def shared_model(key: str, _load: Callable[[], Any]) -> SharedModel:
    """A heavy model, loaded once per process by `_load` (`key` tells models apart)."""
    return SharedModel(_load())


def _release(session: WebSession) -> None:
    """The browser went away: close its session (kernel, trace, files) off the server's thread."""
    threading.Thread(target=session.close, name="inkagent-web-close", daemon=True).start()


@st.cache_resource(scope="session", on_release=_release, show_spinner="Starting your session…")
def web_session(token: str, config_path: str, trace_dir: str) -> WebSession:
    """This browser session's agent (`token` is per session, so two sessions never share one)."""
    return WebSession(load_config(config_path), trace_dir=trace_dir, models=shared_model)


def main() -> None:
    st.set_page_config(page_title="inkagent", page_icon="🖋️", layout="wide")
    config_path = os.environ.get(CONFIG_ENV)
    if not config_path:
        st.error(f"No config: start the page with `inkagent web CONFIG` (or set {CONFIG_ENV}).")
        st.stop()
    token = st.session_state.setdefault("inkagent_token", uuid.uuid4().hex)
    try:
        session = web_session(token, str(Path(config_path).resolve()), os.environ.get(TRACE_ENV, "runs"))
    except InkAgentError as exc:
        st.error(f"Cannot start: {exc}")
        st.stop()
    except Exception as exc:  # a model that cannot load (no weights offline, no GPU...): say why
        st.error(f"Cannot start: {type(exc).__name__}: {exc}")
        st.stop()
    st.session_state["inkagent_session"] = session  # for tests; the cache owns the session
    sidebar(session)
    if session.kind == "writer":
        writer_page(session)
    else:
        chat_page(session)


# -- sidebar ------------------------------------------------------------------------------------------


def sidebar(session: WebSession) -> None:
    config = session.config
    bar = st.sidebar
    bar.title("inkagent")
    bar.caption(f"{Path(str(config.source)).name} · {type(session.agent).__name__} · {backend_class_name(config)}")
    host = os.environ.get(HOST_ENV, "127.0.0.1")
    if host not in LOOPBACK:
        bar.warning(f"Served on {host}: anyone who can reach it runs code as this user.")
    if session.kind == "agent":
        if session.tool_names:
            bar.subheader("Tools")
            for name in session.tool_names:
                bar.checkbox(name, value=True, key=f"tool:{name}")
        if session.interpreter is not None:
            bar.toggle("Python interpreter", value=True, key="interpreter")
        bar.radio("Language", ["en", "zh"], index=["en", "zh"].index(config.agent.language), key="language", horizontal=True)
        bar.number_input("max_turn", min_value=1, max_value=50, value=config.agent.max_turn, key="max_turn")
    bar.button("New conversation", on_click=session.new_conversation, use_container_width=True, key="new")
    bar.subheader("Download")
    bar.download_button(
        "Conversation (JSON)",
        data=session.conversation_json(),
        file_name="conversation.json",
        mime="application/json",
        key="download-conversation",
        help="the REPL's /save format: `inkagent chat` reads it back with /load",
    )
    bar.download_button(
        "Trace (JSON lines)",
        data=session.trace_bytes(),
        file_name=session.trace_path.name,
        mime="application/jsonl",
        key="download-trace",
        help="`inkagent trace show FILE` prints it",
    )


def _settings(session: WebSession) -> dict:
    state = st.session_state
    if session.kind != "agent":
        return {}
    return {
        "tools": {name for name in session.tool_names if state.get(f"tool:{name}", True)},
        "interpreter": bool(state.get("interpreter", True)),
        "language": state.get("language", session.config.agent.language),
        "max_turn": int(state.get("max_turn", session.config.agent.max_turn)),
    }


# -- pages --------------------------------------------------------------------------------------------


def _header(session: WebSession) -> None:
    agent = session.agent
    if session.kind == "chat" and getattr(agent, "system_prompt", ""):
        st.header(getattr(agent, "name", "Chat"))
        st.caption(getattr(agent, "description", ""))
    elif session.kind == "vision":
        st.header("Image understanding")
        st.caption("Attach one or several images to your message and ask about them.")
    else:
        st.header("Agent chat")
        st.caption("Tool calls appear as the model writes them; Stop cancels a turn and drops it.")


def chat_page(session: WebSession) -> None:
    _header(session)
    _notice()
    vision = session.kind == "vision"
    live = _live_turn(session)
    for turn in list(session.turns):
        if turn is not live:
            show_turn(turn, session)
    placeholder = "Ask about the images…" if vision else "Your message"
    prompt = st.chat_input(
        placeholder,
        accept_file="multiple" if vision else False,
        file_type=IMAGE_TYPES if vision else None,
        key="prompt",
    )
    if prompt:
        text = prompt.text if vision else prompt
        images = _save_uploads(session, prompt.files) if vision else []
        if (text or "").strip() or images:
            st.session_state.setdefault("pending", []).append((text or "", images))
    if live is None:
        live = _start_pending(session)
    while live is not None:  # the live turn, then the messages sent while it ran
        _follow(session, live)
        live = _start_pending(session)


def _start_pending(session: WebSession) -> Turn | None:
    """Start the oldest message that waits for its turn, once the agent is free."""
    pending = st.session_state.get("pending") or []
    if not pending or (session.current is not None and session.current.running):
        return None
    text, images = pending.pop(0)
    session.configure(**_settings(session))
    try:
        return session.start(text, images=images)
    except InkAgentError as exc:
        st.warning(str(exc))
        return None


def writer_page(session: WebSession) -> None:
    st.header("Illustrated writing")
    st.caption("A title (and optional material) → the article, its image positions, captions and images.")
    _notice()
    live = _live_turn(session)
    for turn in list(session.turns):
        if turn is not live:
            show_turn(turn, session)
    with st.form("write", clear_on_submit=False):
        title = st.text_input("Title", key="title")
        material = st.text_area("Material (optional)", key="material", height=100)
        submitted = st.form_submit_button("Write")
    if submitted and title.strip():
        if live is not None:
            st.warning("An article is being written: wait for it, or Stop it.")
        else:
            request = {"title": title.strip(), "material": material.strip() or None}
            live = session.start(title.strip(), request=request)
    _follow(session, live)


def _live_turn(session: WebSession) -> Turn | None:
    """The turn still running when this script run starts (drawn live, after the history)."""
    turn = session.current
    return turn if turn is not None and turn.running else None


def _follow(session: WebSession, turn: Turn | None) -> None:
    """Draw the live turn (one that is running, or was started in this script run, even if it ended)."""
    if turn is None:
        return
    for text, _ in st.session_state.get("pending") or []:
        st.caption(f"waiting for its turn: {text[:80]}")
    stop = st.empty()
    stop.button("Stop", icon=":material/stop_circle:", key="stop", on_click=_stop, args=(session,), help="cancel this turn (model and tool) and drop it")
    follow_turn(turn, session)
    stop.empty()


def _stop(session: WebSession) -> None:
    if session.stop():
        st.session_state["notice"] = "Stopped: the turn was dropped from the conversation."


def _notice() -> None:
    notice = st.session_state.pop("notice", None)
    if notice:
        st.info(notice, icon=":material/stop_circle:")


def _save_uploads(session: WebSession, files: list) -> list[str]:
    paths = []
    folder = session.upload_dir()
    for number, upload in enumerate(files, len(list(folder.iterdir())) + 1):
        target = folder / f"{number:03d}-{Path(upload.name).name}"
        target.write_bytes(upload.getvalue())
        paths.append(str(target))
    return paths


main()
