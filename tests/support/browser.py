"""A real headless browser for the tests: Debian's chromium driven by Selenium.

Everything runs from what is installed: ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
(Debian's ``chromium`` and ``chromium-driver`` packages, which ``.ci/run`` installs),
overridable with ``MCP_TEST_CHROMIUM`` and ``MCP_TEST_CHROMEDRIVER``.  Nothing is downloaded
at run time: the driver's path is handed to Selenium explicitly (so Selenium Manager, which
would look for and fetch a driver and a browser, is skipped), ``SE_OFFLINE=true`` is set in
case anything still reaches it, and while the driver starts any call to Selenium Manager
fails the test instead.  Chromium itself is started with its background networking
(component updates, sync, metrics, field trials) turned off.

``chromium_available()`` says whether the browser, the driver and Selenium are all there
(``missing_browser_parts()`` says what is not); ``headless_chromium()`` is a context
manager yielding a ``WebDriver`` and quitting it afterwards; ``save_screenshot(driver,
path)`` writes a PNG.  The ``browser`` fixture in tests/conftest.py turns these into a
fixture that skips, or fails under CI=true, when the browser is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

if TYPE_CHECKING:
    from selenium.webdriver.chrome.webdriver import WebDriver

DEFAULT_CHROMIUM = "/usr/bin/chromium"
DEFAULT_CHROMEDRIVER = "/usr/bin/chromedriver"
WINDOW_SIZE = (1280, 900)
PAGE_LOAD_TIMEOUT = 30.0  # seconds; the machine is shared and can be slow
INSTALL_COMMAND = "apt-get install -y chromium chromium-driver"

#: Flags for a quiet, self-contained chromium: headless, runnable as root in a container,
#: and making no connection of its own (updates, sync, metrics, first-run pages).
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",  # CI runs as root, where chromium's sandbox refuses to start
    "--disable-dev-shm-usage",  # containers give /dev/shm 64 MB
    "--disable-gpu",
    f"--window-size={WINDOW_SIZE[0]},{WINDOW_SIZE[1]}",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-features=Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--password-store=basic",
    "--use-mock-keychain",
    # No host but localhost, 127.0.0.1 and ::1 resolves: pages reach only this machine, and
    # chromium's own look-ups (accounts, component updates, DNS-hijack probes) go nowhere.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1, EXCLUDE [::1]",
)


#: ``prefs`` for ``headless_chromium`` that turn off JavaScript on every page.
JAVASCRIPT_OFF = {"profile.managed_default_content_settings.javascript": 2}


def chromium_path() -> str:
    """The chromium executable: ``MCP_TEST_CHROMIUM``, else Debian's ``/usr/bin/chromium``."""
    return os.environ.get("MCP_TEST_CHROMIUM") or DEFAULT_CHROMIUM


def chromedriver_path() -> str:
    """The chromedriver: ``MCP_TEST_CHROMEDRIVER``, else Debian's ``/usr/bin/chromedriver``."""
    return os.environ.get("MCP_TEST_CHROMEDRIVER") or DEFAULT_CHROMEDRIVER


def _executable(path: str) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def missing_browser_parts() -> list[str]:
    """What keeps the browser from starting, one sentence each (empty when nothing does)."""
    problems = [
        f"{what} {path} is not an executable file (install it: `{INSTALL_COMMAND}`)"
        for what, path in (("chromium", chromium_path()), ("chromedriver", chromedriver_path()))
        if not _executable(path)
    ]
    if importlib.util.find_spec("selenium") is None:
        problems.append("selenium is not installed (pip install -e '.[test]')")
    return problems


def chromium_available() -> bool:
    """Whether chromium, chromedriver and Selenium are all installed."""
    return not missing_browser_parts()


def _no_selenium_manager(*_args: Any, **_kwargs: Any) -> Any:
    raise AssertionError(
        "Selenium Manager was called (it would download a driver or a browser); "
        "the chromedriver path must be passed to Service explicitly"
    )


@contextlib.contextmanager
def headless_chromium(
    page_load_timeout: float = PAGE_LOAD_TIMEOUT,
    *,
    prefs: Mapping[str, Any] | None = None,
    arguments: Iterable[str] = (),
) -> Iterator[WebDriver]:
    """A headless chromium with a fresh temporary profile, quit (and the profile removed) after.

    The window is 1280x900; pages that take longer than ``page_load_timeout`` seconds to load
    raise ``selenium.common.exceptions.TimeoutException``.  chromedriver's log is kept in the
    profile folder while the browser runs.  ``prefs`` are chromium preferences (e.g.
    ``JAVASCRIPT_OFF``), ``arguments`` command-line flags added after ``CHROMIUM_FLAGS``.
    """
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    with tempfile.TemporaryDirectory(prefix="mcp-chromium-") as folder:
        profile = Path(folder) / "profile"
        profile.mkdir()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium_path()
        for flag in CHROMIUM_FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        for argument in arguments:
            options.add_argument(argument)
        if prefs:
            options.add_experimental_option("prefs", dict(prefs))
        service = Service(
            executable_path=chromedriver_path(), log_output=str(Path(folder) / "chromedriver.log")
        )
        # SE_OFFLINE: Selenium Manager, should anything still reach it, stays off the network.
        with (
            mock.patch.dict(os.environ, {"SE_OFFLINE": "true"}),
            mock.patch.object(SeleniumManager, "binary_paths", _no_selenium_manager),
        ):
            driver = webdriver.Chrome(service=service, options=options)
        try:
            driver.set_page_load_timeout(page_load_timeout)
            driver.set_window_size(*WINDOW_SIZE)
            yield driver
        finally:
            driver.quit()


def save_screenshot(driver: WebDriver, path: Path | str) -> Path:
    """Write what the browser shows to ``path`` as a PNG (parent folders made); return the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not driver.save_screenshot(str(target)):
        raise RuntimeError(f"chromium could not write a screenshot to {target}")
    return target
