"""Debian's headless Chromium, driven over the Chrome DevTools Protocol, for the browser tests.

A page a person looks at is tested in a real browser: this starts `chromium --headless` with
a throwaway profile, talks CDP over its websocket (the `websockets` package Airflow's API
server already installs), and offers the few verbs a test needs: open a URL, wait for a
condition, run JavaScript, type into a field, click, take a screenshot. No WebDriver, no
browser download: the Chromium of the machine (`apt-get install chromium`).
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def find_chromium() -> str | None:
    """The browser binary: $LIGHTSPEED_CHROMIUM, else the first of CANDIDATES on PATH."""
    explicit = os.environ.get("LIGHTSPEED_CHROMIUM")
    if explicit:
        return explicit if Path(explicit).exists() else None
    return next((path for name in CANDIDATES if (path := shutil.which(name))), None)


class BrowserError(RuntimeError):
    pass


class Chromium:
    """One headless Chromium with one tab. Use as a context manager; it is killed on exit."""

    def __init__(self, binary: str | None = None, *, width: int = 1440, height: int = 1000) -> None:
        self.binary = binary or find_chromium()
        if not self.binary:
            raise BrowserError("no Chromium found (apt-get install chromium, or set LIGHTSPEED_CHROMIUM)")
        self.width, self.height = width, height
        self.profile = Path(tempfile.mkdtemp(prefix="lightspeed-chromium-"))
        self.proc: subprocess.Popen[bytes] | None = None
        self.ws: Any = None
        self._ids = itertools.count(1)
        self.events: list[dict[str, Any]] = []

    def __enter__(self) -> Chromium:
        from websockets.sync.client import connect

        args = [
            self.binary,
            "--headless=new",
            "--remote-debugging-port=0",
            f"--user-data-dir={self.profile}",
            f"--window-size={self.width},{self.height}",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            "--lang=en-US",
        ]
        if os.geteuid() == 0:  # CI runs as root; Chromium's sandbox refuses root
            args.append("--no-sandbox")
        self.proc = subprocess.Popen([*args, "about:blank"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = self.profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text().strip():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.__exit__()
                raise BrowserError(f"{self.binary} did not start (exit code {self.proc.returncode})")
            time.sleep(0.05)
        port = int(port_file.read_text().split()[0])
        targets = requests.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        pages = [t for t in targets if t["type"] == "page"]
        self.ws = connect(pages[0]["webSocketDebuggerUrl"], max_size=None, open_timeout=10)
        self.send("Page.enable")
        self.send("Runtime.enable")
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ws is not None:
            self.ws.close()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    # -- protocol -------------------------------------------------------------------------------
    def send(self, method: str, timeout: float = 30, **params: Any) -> dict[str, Any]:
        """One CDP command; its result (events received meanwhile are kept in `events`)."""
        msg_id = next(self._ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        deadline = time.monotonic() + timeout
        while True:
            raw = self.ws.recv(timeout=max(deadline - time.monotonic(), 0.01))
            msg = json.loads(raw)
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise BrowserError(f"{method}: {msg['error']}")
                return dict(msg.get("result") or {})
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str, *, frame: str | None = None) -> Any:
        """The value of a JavaScript expression in the page (or in the document of iframe `frame`,
        a CSS selector; same origin only). Promises are awaited."""
        if frame:
            expression = (
                f"(() => {{ const document = window.document.querySelector({json.dumps(frame)})"
                f".contentDocument; return ({expression}); }})()"
            )
        result = self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise BrowserError(f"JavaScript failed: {result['exceptionDetails'].get('exception', result)}")
        return result.get("result", {}).get("value")

    # -- verbs ----------------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Navigate and wait for the document to be complete."""
        self.send("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete'", what=f"{url} to load")

    def wait_for(self, expression: str, *, timeout: float = 30, what: str = "", frame: str | None = None) -> Any:
        """Poll a JavaScript expression until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        last_error = ""
        # A DOM node cannot be returned by value (and `instanceof Node` fails across frames).
        expression = f"(() => {{ const v = ({expression}); return v && v.nodeType ? true : v; }})()"
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression, frame=frame)
                if value:
                    return value
            except BrowserError as exc:  # e.g. the iframe is not there yet
                last_error = str(exc)
            time.sleep(0.1)
        url = self.evaluate("location.href")
        raise BrowserError(f"timed out after {timeout} s waiting for {what or expression} at {url} {last_error}")

    def type_into(self, selector: str, text: str) -> None:
        """Focus a field and type into it as a user does (React forms see real input events)."""
        self.wait_for(f"document.querySelector({json.dumps(selector)})", what=selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).focus()")
        self.send("Input.insertText", text=text)

    def click(self, selector: str, *, frame: str | None = None) -> None:
        self.wait_for(f"document.querySelector({json.dumps(selector)})", what=selector, frame=frame)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).click()", frame=frame)

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """A PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png"}
        if full_page:
            size = self.send("Page.getLayoutMetrics")["cssContentSize"]
            params["clip"] = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
            params["captureBeyondViewport"] = True
        data = self.send("Page.captureScreenshot", **params)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path


def airflow_login(browser: Chromium, url: str, user: str, password: str) -> None:
    """Log in through Airflow's own login form (simple auth manager), typed into as a person does."""
    browser.open(f"{url}/")
    browser.type_into("input[name=username]", user)
    browser.type_into("input[name=password]", password)
    browser.click("button[type=submit]:not([disabled])")
    browser.wait_for("!location.pathname.startsWith('/auth')", what="the login to finish")
