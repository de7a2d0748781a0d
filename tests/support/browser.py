"""Open a local page in Debian's headless ``chromium`` over the Chrome DevTools protocol.

``make browser`` installs ``chromium`` (``make test`` depends on it). The protocol runs over a
websocket (``websocket-client``): navigate, wait for the load event, collect console errors
(console API, uncaught exceptions and browser log entries at level error), evaluate JavaScript
in the page and capture a full-page PNG screenshot.
"""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import websocket

TIMEOUT_S = 30.0


@dataclass
class PageRun:
    """What the page did: ``errors`` (console and exception texts), ``value`` (the script's result)."""

    errors: list[str] = field(default_factory=list)
    value: Any = None


def chromium() -> str:
    """The ``chromium`` executable; a missing one is a failure (``make browser`` installs it)."""
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        raise RuntimeError("chromium is not installed: run `make browser` (apt-get install -y chromium)")
    return exe


def open_page(path: Path, script: str, screenshot: Path) -> PageRun:
    """Load ``path`` (file URL), return console errors and ``script``'s value; save a screenshot."""
    profile = tempfile.mkdtemp(prefix="fstore-chromium-")
    proc = subprocess.Popen([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                             "--disable-extensions", "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             "--window-size=1280,900", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = _devtools_port(proc)
        targets = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=TIMEOUT_S).read())
        page = next(t for t in targets if t["type"] == "page")
        ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=TIMEOUT_S, suppress_origin=True)
        try:
            return _drive(ws, path, script, screenshot)
        finally:
            ws.close()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(profile, ignore_errors=True)


def _devtools_port(proc: subprocess.Popen[str]) -> int:
    deadline = time.monotonic() + TIMEOUT_S
    seen = []
    assert proc.stderr is not None
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line and proc.poll() is not None:
            break
        seen.append(line)
        m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
        if m:
            return int(m.group(1))
    raise RuntimeError("chromium did not start its DevTools endpoint: " + "".join(seen)[-2000:])


class _Session:
    def __init__(self, ws: websocket.WebSocket) -> None:
        self.ws, self.next_id, self.events = ws, 0, []

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str) -> dict[str, Any]:
        for i, e in enumerate(self.events):
            if e.get("method") == method:
                return self.events.pop(i)
        deadline = time.monotonic() + TIMEOUT_S
        while time.monotonic() < deadline:
            msg = json.loads(self.ws.recv())
            if msg.get("method") == method:
                return msg
            self.events.append(msg)
        raise TimeoutError(method)


def _drive(ws: websocket.WebSocket, path: Path, script: str, screenshot: Path) -> PageRun:
    s = _Session(ws)
    for domain in ("Page", "Runtime", "Log"):
        s.call(f"{domain}.enable")
    s.call("Page.navigate", url=path.resolve().as_uri())
    s.wait_for("Page.loadEventFired")
    value = s.call("Runtime.evaluate", expression=script, returnByValue=True)
    metrics = s.call("Page.getLayoutMetrics")
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    shot = s.call("Page.captureScreenshot", format="png", captureBeyondViewport=True,
                  clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1})
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    screenshot.write_bytes(base64.b64decode(shot["data"]))
    run = PageRun(value=value.get("result", {}).get("value"))
    if "exceptionDetails" in value:
        run.errors.append(f"script: {value['exceptionDetails'].get('text')}")
    for e in s.events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            run.errors.append("console: " + " ".join(str(a.get("value", a.get("description"))) for a in p["args"]))
        elif e.get("method") == "Runtime.exceptionThrown":
            run.errors.append(f"exception: {p['exceptionDetails'].get('text')}")
        elif e.get("method") == "Log.entryAdded" and p["entry"].get("level") == "error":
            run.errors.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}")
    return run
