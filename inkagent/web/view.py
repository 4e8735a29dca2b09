"""Streamlit rendering of a turn: streamed text, a status box per tool call, images, errors, articles.

`TurnView` takes the agent's events (inkagent/schema.py) one by one, so the same code draws a turn
live, as its events arrive, and from the history, all at once.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import streamlit as st

from ..schema import AgentError, FinalAnswer, TextDelta, ToolCallStarted, ToolResult
from .session import Turn, WebSession, article_blocks, article_zip

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
#: How often a live turn refreshes its clock (and lets streamlit see a Stop click), in seconds.
TICK_S = 0.25
#: The writer's steps, as the page names them.
WRITER_STEPS = {
    "choose_positions": "Step 2 · where the images go",
    "write_caption": "Step 3 · caption",
    "retrieve": "Step 4 · candidate images",
    "choose_image": "Step 5 · choose the image",
    "save": "Saved",
}


def show_user(turn: Turn) -> None:
    with st.chat_message("user"):
        st.markdown(turn.text)
        if turn.request and turn.request.get("material"):
            st.caption("Material: " + turn.request["material"])
        images = [path for path in turn.images if Path(path).is_file()]
        if images:
            st.image(images, width=160)


class TurnView:
    """Draws one turn's events inside an assistant chat message."""

    def __init__(self, *, writer: bool = False, live: bool = False) -> None:
        self.writer = writer
        self.live = live
        self.box = st.chat_message("assistant")
        self.text = ""
        self.text_slot: Any = None
        self.article_status: Any = None
        self.calls: dict[str, tuple[Any, float, str]] = {}  # call id -> (status box, start, label)
        self.call_times: dict[str, float] = {}  # call id -> when the call was announced (epoch s)
        self.shown_text = False
        self.errors = 0

    # -- events ------------------------------------------------------------------------------------
    def add_all(self, events: list[Any]) -> None:
        for event in events:
            self.add(event)
        self.flush()

    def add(self, event: Any) -> None:
        if isinstance(event, TextDelta):
            self.text += event.text
        elif isinstance(event, ToolCallStarted):
            self.flush()
            self._call(event)
        elif isinstance(event, ToolResult):
            self.flush()
            self._result(event)
        elif isinstance(event, AgentError):
            self.flush()
            self._error(event)
        elif isinstance(event, FinalAnswer):
            self.flush()
            self._final(event)

    def flush(self) -> None:
        """Show the text received since the last flush (one update per batch of deltas)."""
        if not self.text:
            return
        with self.box:
            if self.writer:
                if self.article_status is None:
                    self.article_status = st.status("Step 1 · writing the article", state="running", expanded=True)
                    with self.article_status:
                        self.text_slot = st.empty()
            elif self.text_slot is None:
                self.text_slot = st.empty()
        self.text_slot.markdown(self.text)
        self.shown_text = True

    def _end_text_block(self) -> None:
        if self.writer and self.article_status is not None:
            self.article_status.update(label="Step 1 · the article", state="complete", expanded=False)
        self.text, self.text_slot = "", None

    def _label(self, name: str, arguments: dict[str, Any]) -> str:
        if self.writer:
            step = name.rsplit(".", 1)[-1]
            label = WRITER_STEPS.get(step, step)
            if "position" in arguments:
                label += f" <Seg{arguments['position']}>"
            return label
        return name

    def _call(self, event: ToolCallStarted) -> None:
        self._end_text_block()
        call = event.call
        label = self._label(call.name, call.arguments)
        with self.box:
            status = st.status(f"{label} · running", state="running", expanded=True)
        with status:
            command = call.arguments.get("command") if call.kind == "interpreter" else None
            if isinstance(command, str):
                st.code(command, language="python")
            elif call.arguments:
                st.code(json.dumps(call.arguments, ensure_ascii=False, indent=2), language="json")
        self.calls[call.id] = (status, time.perf_counter(), label)
        self.call_times[call.id] = event.time

    def _result(self, event: ToolResult) -> None:
        result = event.result
        found = self.calls.pop(event.call.id, None)
        if found is None:  # a result without its call (should not happen): give it a box of its own
            self._call(ToolCallStarted(call=event.call))
            found = self.calls.pop(event.call.id)
        status, _, label = found
        images = [f for f in result.files if Path(f).suffix.lower() in IMAGE_SUFFIXES and Path(f).is_file()]
        with status:
            if result.ok:
                if result.output:
                    st.code(result.output, language="text")
                if len(images) == 1:
                    st.image(images[0])
                elif images:  # candidates: side by side
                    st.image(images, width=120)
                others = [f for f in result.files if f not in images]
                if others:
                    st.caption("files: " + ", ".join(others))
            else:
                st.error(result.error or "the call failed")
                st.caption("↩ this error was sent back to the model")
        # a skill's steps carry no duration of their own: the time between the call and its result
        duration = result.duration_s or max(0.0, event.time - self.call_times.pop(event.call.id, event.time))
        took = f"{duration:.2f} s"
        if result.ok:
            status.update(label=f"{label} · {took}", state="complete", expanded=bool(images))
        else:
            status.update(label=f"{label} · failed, the error was sent back to the model · {took}", state="error", expanded=True)

    def _error(self, event: AgentError) -> None:
        self.errors += 1
        with self.box:
            if event.kind == "parse_error":
                st.warning(f"Malformed tool call, sent back to the model: {event.message}", icon=":material/undo:")
            else:
                st.error(event.message)

    def _final(self, event: FinalAnswer) -> None:
        if self.writer:
            self._end_text_block()
        if event.text and not self.shown_text and not self.writer:
            with self.box:
                st.markdown(event.text)
        if event.state.value != "answered" and not self.errors:
            with self.box:
                st.error(f"No answer ({event.state.value}).")

    # -- live --------------------------------------------------------------------------------------
    def tick(self, activity: Any, session: WebSession, turn: Turn) -> None:
        """Refresh the running calls' clocks and the activity line (each refresh lets Stop through)."""
        now = time.perf_counter()
        for status, started, label in self.calls.values():
            status.update(label=f"{label} · running {now - started:.1f} s", state="running", expanded=True)
        if session.waiting_for_model:
            activity.caption(":material/hourglass_top: waiting: another session is using the model")
        elif not self.calls:
            activity.caption(f"… working · {now - turn.started:.1f} s")
        else:
            activity.empty()


def show_turn(turn: Turn, session: WebSession) -> None:
    """A finished turn from the history."""
    show_user(turn)
    view = TurnView(writer=session.kind == "writer")
    view.add_all(turn.events)
    _show_end(view, turn)


def follow_turn(turn: Turn, session: WebSession) -> None:
    """Draw a running turn as its events arrive, until it ends."""
    show_user(turn)
    view = TurnView(writer=session.kind == "writer", live=True)
    activity = st.empty()
    shown = 0
    while True:
        events, finished = turn.wait_events(shown, TICK_S)
        for event in events:
            view.add(event)
        shown += len(events)
        view.flush()
        if finished:
            break
        view.tick(activity, session, turn)
    activity.empty()
    _show_end(view, turn)


def _show_end(view: TurnView, turn: Turn) -> None:
    if turn.state == "failed":
        with view.box:
            st.error(f"The turn failed: {turn.error}")
    if turn.article is not None:
        with view.box:
            show_article(turn.article)


def show_article(article: Any) -> None:
    """The written article with its images in place, and its downloads."""
    st.divider()
    for text, image, caption in article_blocks(article):
        st.markdown(text)
        if image is not None and Path(image).is_file():
            st.image(str(image), caption=caption or None)
    for problem in article.problems:
        st.warning(problem)
    if article.folder is not None:
        name = Path(article.folder).name
        left, right = st.columns(2)
        left.download_button(
            "Download Markdown",
            data=article.markdown.encode("utf-8"),
            file_name=f"{name}.md",
            mime="text/markdown",
            key=f"md-{article.folder}",
        )
        right.download_button(
            "Download Markdown + HTML + images (zip)",
            data=article_zip(article),
            file_name=f"{name}.zip",
            mime="application/zip",
            key=f"zip-{article.folder}",
        )
