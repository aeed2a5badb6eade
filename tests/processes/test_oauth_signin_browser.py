"""The OAuth sign-in page in a real headless chromium, served by real Werkzeug servers.

Three loopback servers, each threaded in this process: the app (MCPAuth with the sign-in
on, issuer ``http://127.0.0.1:<port>``), a client's callback at ``127.0.0.1:<port>/callback``
that records every query it receives, and "elsewhere", another site reached as
``http://localhost:<port>`` that frames the page or posts a copy of its form.  What
chromium itself enforces is checked in chromium: the CSP ``form-action`` on the redirect
after the POST, ``frame-ancestors``/``X-Frame-Options``, the ``SameSite=Strict`` cookie and
the ``Origin`` of a cross-site POST; the form works with JavaScript turned off.

``MCP_TEST_SCREENSHOT_DIR=docs/images pytest tests/processes/test_oauth_signin_browser.py
-k screenshot`` regenerates ``docs/images/oauth-signin.png`` (the picture in docs/oauth.md).
"""

from __future__ import annotations

import base64
import hashlib
import os
import queue
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx2
import pytest
from flask import Flask, request
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.ui import WebDriverWait
from support.browser import save_screenshot
from support.flask_app import build_app
from support.seed import SEED_KEY
from support.servers import free_port
from werkzeug.serving import BaseWSGIServer, make_server

from flask_mcp_auth.oauth import blueprint

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

CLIENT_NAME = "Browser Test Client"
SECRET = "browser-signin-secret-0123456789abcdef"
WRONG_KEY = "not-a-key-anyone-has"
WAIT = 15.0  # seconds; the machine is shared
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SCREENSHOT_NAME = "oauth-signin.png"
#: A page whose title says whether its inline script ran.
PROBE_PAGE = (
    "<!doctype html><html><head><title>no script ran</title></head><body>"
    '<p id="probe">probe</p><script>document.title = "script ran"</script></body></html>'
)


@dataclass
class Site:
    """The three servers, what they received, and one registered client."""

    issuer: str
    callback_base: str  # http://127.0.0.1:<port>
    elsewhere: str  # http://localhost:<port>, another site
    callbacks: queue.Queue[dict[str, list[str]]]
    responses: list[tuple[str, str, int]]  # (method, path, status) the app answered
    pages: dict[str, str]  # what "elsewhere" serves, by path
    client_id: str = ""

    @property
    def redirect_uri(self) -> str:
        return f"{self.callback_base}/callback"

    def answered(self, method: str, path: str) -> list[int]:
        return [status for m, p, status in self.responses if (m, p) == (method, path)]


@dataclass
class Authorization:
    url: str
    state: str
    verifier: str = field(repr=False)


def _serve(app: Flask, stack: list[Callable[[], None]]) -> int:
    """Serve ``app`` on a free loopback port in a thread (threaded: chromium keeps idle
    connections open); the stop goes on ``stack``."""
    server: BaseWSGIServer = make_server("127.0.0.1", free_port(), app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()

    def stop() -> None:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()

    stack.append(stop)
    return int(server.server_port)


def _record_responses(app: Flask, responses: list[tuple[str, str, int]]) -> None:
    inner = app.wsgi_app

    def wsgi(environ: dict[str, Any], start_response: Any) -> Any:
        def start(status: str, headers: Any, exc_info: Any = None) -> Any:
            responses.append(
                (environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0]))
            )
            return start_response(status, headers, exc_info)

        return inner(environ, start)

    app.wsgi_app = wsgi  # type: ignore[method-assign]


def _callback_app(callbacks: queue.Queue[dict[str, list[str]]]) -> Flask:
    app = Flask("signin_browser_callback")

    @app.get("/callback")
    def callback() -> str:
        callbacks.put(request.args.to_dict(flat=False))
        return (
            "<!doctype html><html><head><title>Callback received</title></head>"
            '<body><p id="done">The client got its answer.</p></body></html>'
        )

    @app.get("/probe")
    def probe() -> str:
        return PROBE_PAGE

    return app


def _elsewhere_app(pages: dict[str, str]) -> Flask:
    app = Flask("signin_browser_elsewhere")

    @app.get("/<name>")
    def page(name: str) -> tuple[str, int]:
        return (pages[name], 200) if name in pages else ("not here", 404)

    return app


@pytest.fixture
def site() -> Iterator[Site]:
    stops: list[Callable[[], None]] = []
    try:
        callbacks: queue.Queue[dict[str, list[str]]] = queue.Queue()
        callback_port = _serve(_callback_app(callbacks), stops)
        pages: dict[str, str] = {}
        elsewhere_port = _serve(_elsewhere_app(pages), stops)

        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        app = build_app(MCP_OAUTH_ISSUER=issuer, JWT_SECRET=SECRET)
        responses: list[tuple[str, str, int]] = []
        _record_responses(app, responses)
        server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()

        def stop_app() -> None:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()

        stops.append(stop_app)
        result = Site(
            issuer=issuer,
            callback_base=f"http://127.0.0.1:{callback_port}",
            elsewhere=f"http://localhost:{elsewhere_port}",
            callbacks=callbacks,
            responses=responses,
            pages=pages,
        )
        registered = httpx2.post(
            f"{issuer}/register",
            json={
                "client_name": CLIENT_NAME,
                "redirect_uris": [result.redirect_uri],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
            timeout=WAIT,
        )
        assert registered.status_code == 201, registered.text
        result.client_id = registered.json()["client_id"]
        yield result
    finally:
        for stop in reversed(stops):
            stop()


def start_authorization(site: Site) -> Authorization:
    """A PKCE (S256) pair, a state and the authorize URL for ``<issuer>/mcp``."""
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    state = secrets.token_urlsafe(16)
    query = urlencode(
        {
            "response_type": "code",
            "client_id": site.client_id,
            "redirect_uri": site.redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "resource": f"{site.issuer}/mcp",
        }
    )
    return Authorization(f"{site.issuer}/authorize?{query}", state, verifier)


def open_signin(browser: WebDriver, authorization: Authorization) -> None:
    browser.get(authorization.url)
    WebDriverWait(browser, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, "api_key"))
    )
    assert browser.title == "Sign in with your API key"


def submit(browser: WebDriver, button: str, key: str | None = None) -> None:
    if key is not None:
        field_ = browser.find_element(By.ID, "api_key")
        field_.clear()
        field_.send_keys(key)
    browser.find_element(By.ID, button).click()


def wait_for_callback(browser: WebDriver, site: Site) -> dict[str, list[str]]:
    """The browser ends at the callback; the query the callback server received."""
    WebDriverWait(browser, WAIT).until(expected_conditions.title_is("Callback received"))
    assert browser.current_url.startswith(site.redirect_uri + "?")
    received = site.callbacks.get(timeout=5)
    assert parse_qs(urlsplit(browser.current_url).query) == received
    assert site.callbacks.empty()
    return received


# -- approve, with and without JavaScript ----------------------------------------------------


@pytest.mark.parametrize("browser_fixture", ["browser", "browser_without_javascript"])
def test_a_wrong_key_then_the_right_one_signs_in_and_the_token_works(
    browser_fixture: str, site: Site, request: pytest.FixtureRequest
) -> None:
    browser: WebDriver = request.getfixturevalue(browser_fixture)
    if browser_fixture == "browser_without_javascript":
        # The preference really is on: an inline script does not run.
        browser.get(f"{site.callback_base}/probe")
        assert browser.title == "no script ran"
    else:
        browser.get(f"{site.callback_base}/probe")
        assert browser.title == "script ran"

    authorization = start_authorization(site)
    open_signin(browser, authorization)
    assert browser.find_element(By.ID, "client-name").text == CLIENT_NAME
    assert "declared by the application itself" in browser.find_element(By.CLASS_NAME, "who").text
    callback_host = urlsplit(site.callback_base).netloc
    assert browser.find_element(By.ID, "redirect-host").text == callback_host

    submit(browser, "approve", WRONG_KEY)
    WebDriverWait(browser, WAIT).until(
        expected_conditions.presence_of_element_located((By.CSS_SELECTOR, "p.error"))
    )
    assert "That API key was not accepted" in browser.find_element(By.CSS_SELECTOR, "p.error").text
    assert site.answered("POST", "/authorize") == [401]
    assert site.callbacks.empty()
    assert WRONG_KEY not in browser.page_source

    submit(browser, "approve", SEED_KEY)
    received = wait_for_callback(browser, site)
    assert set(received) == {"code", "state", "iss"}
    assert received["state"] == [authorization.state]
    assert received["iss"] == [site.issuer]
    assert site.answered("POST", "/authorize") == [401, 302]
    assert SEED_KEY not in browser.current_url

    tokens = httpx2.post(
        f"{site.issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": received["code"][0],
            "redirect_uri": site.redirect_uri,
            "client_id": site.client_id,
            "code_verifier": authorization.verifier,
        },
        timeout=WAIT,
    )
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    assert body["token_type"].lower() == "bearer"
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    answer = httpx2.post(
        f"{site.issuer}/mcp",
        json={"jsonrpc": "2.0", "id": 7, "method": "ping"},
        headers=bearer,
        timeout=WAIT,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"jsonrpc": "2.0", "id": 7, "result": {}}
    # The token's audience is <issuer>/mcp: not a route outside it.
    assert httpx2.get(f"{site.issuer}/data", headers=bearer, timeout=WAIT).status_code == 401


# -- deny --------------------------------------------------------------------------------------


def test_deny_sends_access_denied_with_state_and_iss(browser: WebDriver, site: Site) -> None:
    authorization = start_authorization(site)
    open_signin(browser, authorization)
    submit(browser, "deny")
    received = wait_for_callback(browser, site)
    assert received.pop("error") == ["access_denied"]
    assert received.pop("state") == [authorization.state]
    assert received.pop("iss") == [site.issuer]
    assert set(received) <= {"error_description"}
    assert site.answered("POST", "/authorize") == [302]


def test_chromium_enforces_form_action_on_the_redirect(
    browser: WebDriver, site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The control for the two tests above: with ``form-action 'self'`` alone (the
    redirect's origin left out) chromium does not follow the 302 to the callback, so their
    arriving at the callback shows that the page's policy admits it."""
    original = blueprint.page_headers
    monkeypatch.setattr(
        blueprint, "page_headers", lambda response, _redirect_uri: original(response, None)
    )
    authorization = start_authorization(site)
    open_signin(browser, authorization)
    assert (
        "form-action 'self';"
        in httpx2.get(authorization.url, timeout=WAIT).headers["Content-Security-Policy"]
    )
    submit(browser, "deny")
    WebDriverWait(browser, WAIT).until(lambda _: site.answered("POST", "/authorize") == [302])
    with pytest.raises(queue.Empty):
        site.callbacks.get(timeout=1.5)
    assert not browser.current_url.startswith(site.redirect_uri)


# -- framing -----------------------------------------------------------------------------------


def test_the_page_cannot_be_framed_by_another_site(browser: WebDriver, site: Site) -> None:
    authorization = start_authorization(site)
    served = httpx2.get(authorization.url, timeout=WAIT)
    assert served.status_code == 200
    assert served.headers["X-Frame-Options"] == "DENY"
    policy = served.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert f"form-action 'self' {site.callback_base};" in policy
    assert served.headers["Cache-Control"] == "no-store"
    cookie = served.headers["Set-Cookie"]
    assert "SameSite=Strict" in cookie and "HttpOnly" in cookie and "Path=/authorize" in cookie

    site.pages["frame"] = (
        "<!doctype html><html><head><title>Framing</title></head><body>"
        f'<iframe id="signin" src="{escape(authorization.url)}" width="600" height="400"></iframe>'
        f'<iframe id="control" src="{escape(site.callback_base)}/probe"></iframe></body></html>'
    )
    browser.get(f"{site.elsewhere}/frame")
    assert browser.title == "Framing"
    # The control: a page that allows framing renders in the same kind of frame.
    browser.switch_to.frame("control")
    WebDriverWait(browser, WAIT).until(
        expected_conditions.presence_of_element_located((By.ID, "probe"))
    )
    browser.switch_to.default_content()
    # The sign-in page was served to the frame (so nothing but the browser stopped it) ...
    WebDriverWait(browser, WAIT).until(lambda _: site.answered("GET", "/authorize") == [200, 200])
    # ... and is not rendered there: chromium shows its own error page in its place.
    browser.switch_to.frame("signin")
    assert browser.find_elements(By.ID, "api_key") == []
    assert browser.find_elements(By.TAG_NAME, "form") == []
    assert "Sign in with your API key" not in browser.page_source
    assert browser.execute_script("return location.href").startswith("chrome-error://")
    browser.switch_to.default_content()
    assert site.callbacks.empty()


# -- a cross-site POST -------------------------------------------------------------------------


def test_a_copy_of_the_form_posted_from_another_site_is_refused(
    browser: WebDriver, site: Site
) -> None:
    authorization = start_authorization(site)
    open_signin(browser, authorization)  # the browser now holds the CSRF cookie
    hidden = {
        element.get_attribute("name"): element.get_attribute("value")
        for element in browser.find_elements(By.CSS_SELECTOR, "input[type=hidden]")
    }
    assert "csrf_token" in hidden and hidden["state"] == authorization.state
    fields = "".join(
        f'<input type="hidden" name="{escape(str(name))}" value="{escape(str(value))}">'
        for name, value in {**hidden, "api_key": SEED_KEY}.items()
    )
    site.pages["attack"] = (
        "<!doctype html><html><head><title>Win a prize</title></head><body>"
        f'<form method="post" action="{escape(site.issuer)}/authorize">{fields}'
        '<button id="go" type="submit" name="decision" value="approve">Claim</button>'
        "</form></body></html>"
    )
    browser.get(f"{site.elsewhere}/attack")
    assert browser.title == "Win a prize"
    browser.find_element(By.ID, "go").click()

    WebDriverWait(browser, WAIT).until(expected_conditions.title_is("Sign-in refused"))
    assert site.answered("POST", "/authorize") == [403]
    assert browser.current_url == f"{site.issuer}/authorize"
    assert site.callbacks.empty()


# -- the picture in docs/oauth.md --------------------------------------------------------------


def test_screenshot_of_the_signin_page(browser: WebDriver, site: Site, tmp_path: Path) -> None:
    """Also written to ``$MCP_TEST_SCREENSHOT_DIR/oauth-signin.png`` when that is set."""
    open_signin(browser, start_authorization(site))
    targets = [tmp_path / SCREENSHOT_NAME]
    folder = os.environ.get("MCP_TEST_SCREENSHOT_DIR")
    if folder:
        targets.append(Path(folder) / SCREENSHOT_NAME)
    for target in targets:
        assert save_screenshot(browser, target).read_bytes().startswith(PNG_SIGNATURE)
