"""Debian's chromium, headless, driven through Selenium, for the HTML pages' tests."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from conftest import require


def browser(width: int = 1400, height: int = 1800):
    """A headless Chromium that logs the console and every request (close it with quit)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    require(bool(chromium and driver), "Debian's chromium and chromium-driver (make system-deps)")
    from selenium import webdriver  # in the test extra: missing it is a failure
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--allow-file-access-from-files",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def fresh(page, width: int = 1400, height: int = 1800):
    """``page`` as a new browser() would be for the next test: a blank page at the size
    given, no input held, the pointer at the top left (ActionChains' offsets start there)
    and no console or request log left (console_errors and requested read them all)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.actions.action_builder import ActionBuilder

    page.get("about:blank")
    page.set_window_size(width, height)
    ActionChains(page).reset_actions()
    actions = ActionBuilder(page)
    actions.pointer_action.move_to_location(0, 0)
    actions.perform()
    page.get_log("browser")
    page.get_log("performance")
    return page


class Shared:
    """One browser() for a module's tests (a module-scoped fixture's value): ``page()``
    starts it on first use, hands it over fresh() each time; ``quit()`` at the end."""

    def __init__(self) -> None:
        self._page = None

    def page(self):
        if self._page is None:
            self._page = browser()
        return fresh(self._page)

    def open(self, path, ready: str, timeout: float = 20.0):
        """A fresh page at ``path`` (a file), once ``ready`` (a script) is truthy: (page, its value)."""
        page = self.page()
        page.get(Path(path).as_uri())
        return page, wait(page, ready, timeout)

    def quit(self) -> None:
        if self._page is not None:
            self._page.quit()
            self._page = None


def wait(page, script: str, timeout: float = 20.0):
    """The script's first truthy value, polled; AssertionError after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = page.execute_script(script)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {script}")


def console_errors(page) -> list:
    return [e for e in page.get_log("browser") if e["level"] == "SEVERE"]


def requested(page) -> list[str]:
    """The URLs the page asked for since the last call."""
    urls = []
    for entry in page.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls
