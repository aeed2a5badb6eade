"""The browser harness works: Debian's headless chromium, driven by Selenium, fills in and
submits a form served by a real local server, and takes a screenshot; nothing is fetched
from the network to do it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from flask import Flask, request
from markupsafe import escape
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from support.browser import WINDOW_SIZE, save_screenshot
from support.servers import free_port
from werkzeug.serving import BaseWSGIServer, make_server

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

FORM_PAGE = """<!doctype html>
<html><head><title>Harness form</title></head>
<body>
  <form method="post" action="/submit">
    <label for="note">Note</label> <input id="note" name="note">
    <button id="send" type="submit">Send</button>
  </form>
</body></html>"""

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def form_app(received: queue.Queue[str]) -> Flask:
    """A page with a form; POST /submit records the value and shows it back."""
    app = Flask("browser_harness")

    @app.get("/")
    def form() -> str:
        return FORM_PAGE

    @app.post("/submit")
    def submit() -> str:
        note = request.form["note"]
        received.put(note)
        return (
            "<!doctype html><html><head><title>Received</title></head>"
            f'<body><p id="result">Received: {escape(note)}</p></body></html>'
        )

    return app


@pytest.fixture
def form_server() -> Iterator[tuple[str, queue.Queue[str]]]:
    """The form app on a real Werkzeug server on a free loopback port, in a thread.

    Threaded: chromium keeps idle (and speculative) connections open, which would block a
    one-connection-at-a-time server, and its shutdown, until they time out.
    """
    received: queue.Queue[str] = queue.Queue()
    server: BaseWSGIServer = make_server(
        "127.0.0.1", free_port(), form_app(received), threaded=True
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", received
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


def test_chromium_submits_a_form_to_a_real_server(
    browser: WebDriver, form_server: tuple[str, queue.Queue[str]], tmp_path: Path
) -> None:
    base_url, received = form_server
    note = "hello from chromium <&>"

    browser.get(f"{base_url}/")
    assert browser.title == "Harness form"
    browser.find_element(By.ID, "note").send_keys(note)
    browser.find_element(By.ID, "send").click()

    WebDriverWait(browser, 15).until(expected_conditions.title_is("Received"))
    assert received.get(timeout=5) == note
    assert received.empty()
    assert browser.find_element(By.ID, "result").text == f"Received: {note}"
    assert browser.current_url == f"{base_url}/submit"

    shot = save_screenshot(browser, tmp_path / "shots" / "received.png")
    data = shot.read_bytes()
    assert data.startswith(PNG_SIGNATURE)
    # The IHDR chunk right after the signature holds the width and height: the viewport's
    # (the 1280x900 window less the browser's own toolbar, which headless mode still counts).
    width = int.from_bytes(data[16:20], "big")
    height = int.from_bytes(data[20:24], "big")
    viewport = browser.execute_script("return [window.innerWidth, window.innerHeight]")
    assert [width, height] == viewport
    assert width == WINDOW_SIZE[0]
    assert 0 < height <= WINDOW_SIZE[1]


def test_the_browser_is_headless_and_sized(browser: WebDriver) -> None:
    user_agent = browser.execute_script("return navigator.userAgent")
    assert "HeadlessChrome" in user_agent
    size = browser.get_window_size()
    assert (size["width"], size["height"]) == WINDOW_SIZE
