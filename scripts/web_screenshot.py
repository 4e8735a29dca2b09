"""Make the README's screenshot of `inkagent web`, with the browser flow the browser tests use.

    python scripts/web_screenshot.py                       # docs/web.png, from configs/scripted.yaml
    python scripts/web_screenshot.py --config configs/demo.yaml --question "What is 17 * 23?"

Starts `inkagent web CONFIG` on a free loopback port, opens it in headless Chromium (Debian's
`/usr/bin/chromium`, driven by Playwright), asks the question, waits for the tool call's box and the
answer, and saves a screenshot. Rerun it when the page changes. The helpers here (`serve`, `browser`,
`open_page`, `ask`) are what tests/test_web_browser.py drives the page with.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: How long the page may take for one step (the first run builds the session), in milliseconds.
STEP_MS = 90_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(config: str | Path, *, trace_dir: str | Path, log: list[str] | None = None) -> Iterator[tuple[subprocess.Popen, str]]:
    """Run `inkagent web CONFIG` on a free loopback port until the block ends; yields (process, URL)."""
    port = free_port()
    command = [sys.executable, "-m", "inkagent", "web", str(config), "--port", str(port), "--trace-dir", str(trace_dir)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, bufsize=1)
    lines = log if log is not None else []
    watchdog = threading.Timer(120, server.kill)  # a server that never comes up ends the wait
    watchdog.start()
    try:
        for line in server.stdout:  # streamlit prints the URL once it accepts connections
            lines.append(line)
            if "URL: http" in line:
                break
        else:
            raise RuntimeError("inkagent web did not start:\n" + "".join(lines))
        watchdog.cancel()
        threading.Thread(target=lambda: lines.extend(server.stdout), daemon=True).start()
        yield server, f"http://127.0.0.1:{port}"
    finally:
        watchdog.cancel()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


@contextlib.contextmanager
def browser() -> Iterator[object]:
    """Headless Chromium (the system's), through Playwright."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def open_page(chromium, url: str, *, width: int = 1280, height: int = 900):
    """A new page on the app, once its chat input (or its form) is there."""
    page = chromium.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(STEP_MS)
    page.goto(url)
    page.locator('[data-testid="stChatInputTextArea"], [data-testid="stForm"]').first.wait_for()
    return page


def ask(page, text: str, files: list[str] | None = None) -> None:
    """Type a message (attaching files) into the chat input and send it."""
    if files:
        page.locator('[data-testid="stChatInput"] input[type="file"]').set_input_files(files)
        for name in files:
            page.get_by_text(Path(name).name).first.wait_for()
    page.locator('[data-testid="stChatInputTextArea"]').fill(text)
    # the send button is disabled while files upload (Enter is then ignored); click() waits until it is enabled
    page.locator('[data-testid="stChatInputSubmitButton"]').click()


def assistant_messages(page):
    return page.locator('[data-testid="stChatMessage"]').filter(has=page.locator('[data-testid="stChatMessageAvatarAssistant"]'))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(ROOT / "configs" / "scripted.yaml"))
    parser.add_argument("--question", default="What is 17 * 23?")
    parser.add_argument("--answer", default="391", help="text the answer contains (what to wait for)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "web.png"))
    args = parser.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    import tempfile

    with tempfile.TemporaryDirectory() as traces, serve(args.config, trace_dir=traces) as (_, url), browser() as chromium:
        page = open_page(chromium, url, width=1200, height=760)
        ask(page, args.question)
        page.locator('[data-testid="stExpander"]').first.wait_for()
        assistant_messages(page).last.get_by_text(args.answer).last.wait_for()
        page.locator('[data-testid="stExpander"] summary').first.click()  # show the call and its result
        result = page.locator('[data-testid="stExpander"] [data-testid="stCode"]').filter(has_text=args.answer)
        result.hover()  # waits until the box has stopped opening
        page.mouse.move(760, 40)
        page.screenshot(path=str(out), animations="disabled")
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
