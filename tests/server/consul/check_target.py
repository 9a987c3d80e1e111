"""A health-check target for the check tests, run as its own process: ``check_target.py PORT``.

``GET|HEAD|POST /t/<name>`` answers with the code set for ``<name>`` (200 by default) and a body
(``"ok"``, or with ``counter`` set a body that changes on every request). ``PUT /_set/<name>?code=N&counter=1``
changes it; ``GET /_hits/<name>`` says how many probes arrived and the headers of the last one.
``/redirect/<name>`` redirects to ``/t/<name>``; ``/slow/<seconds>`` answers after that long.
``GET /healthz`` is the harness's readiness probe.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

STATE: dict[str, dict[str, object]] = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_args: object) -> None:
        pass

    def _answer(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _probe(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/healthz":
            self._answer(200, b"ok")
            return
        if parts.path.startswith("/_hits/"):
            with LOCK:
                state = STATE.get(parts.path[len("/_hits/") :], {})
                body = json.dumps({"hits": state.get("hits", 0), "last": state.get("last", {})})
            self._answer(200, body.encode())
            return
        if parts.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", "/t/" + parts.path[len("/redirect/") :])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if parts.path.startswith("/slow/"):
            time.sleep(float(parts.path[len("/slow/") :]))
            self._answer(200, b"slow")
            return
        if not parts.path.startswith("/t/"):
            self._answer(404, b"no such target")
            return
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode() if length else ""
        with LOCK:
            state = STATE.setdefault(parts.path[3:], {"code": 200, "counter": False, "hits": 0})
            state["hits"] = int(state["hits"]) + 1  # type: ignore[call-overload]
            state["last"] = {"method": self.command, "headers": dict(self.headers.items()), "body": sent}
            code = int(state["code"])  # type: ignore[call-overload]
            body = f"ok {state['hits']}" if state["counter"] else "ok"
        self._answer(code, body.encode())

    def do_GET(self) -> None:
        self._probe()

    def do_HEAD(self) -> None:
        self._probe()

    def do_POST(self) -> None:
        self._probe()

    def do_PUT(self) -> None:
        parts = urlsplit(self.path)
        if not parts.path.startswith("/_set/"):
            self._probe()
            return
        query = parse_qs(parts.query)
        with LOCK:
            state = STATE.setdefault(parts.path[len("/_set/") :], {"code": 200, "counter": False, "hits": 0})
            state["code"] = int(query.get("code", ["200"])[0])
            state["counter"] = query.get("counter", ["0"])[0] == "1"
        self._answer(200, b"set")


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
