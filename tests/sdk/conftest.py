"""Shared support for the SDK compatibility tests (run by tests/sdk/run.sh).

The relay under test is given by HOOKRELAY_BASE_URL and HOOKRELAY_API_KEY. Automations and
messages are created with plain HTTP (urllib, independent of the SDKs); the SDKs are only
used for what they are being tested on. Receivers are http.server instances on 127.0.0.1:0.
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import typing
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional

import pytest

# uiform 0.0.35 / retab 0.0.49 declare pydantic models with typing.TypedDict, which pydantic
# refuses below Python 3.12; this must run before either SDK is imported.
if sys.version_info < (3, 12):
    import typing_extensions

    typing.TypedDict = typing_extensions.TypedDict  # type: ignore[attr-defined]


def _env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        # Not a skip: a compat run without a server must fail, not pass vacuously.
        pytest.fail(f"{name} is not set; run these tests through tests/sdk/run.sh", pytrace=False)
    return value


@pytest.fixture(scope="session")
def base_url() -> str:
    return _env("HOOKRELAY_BASE_URL").rstrip("/")


@pytest.fixture(scope="session")
def api_key() -> str:
    return _env("HOOKRELAY_API_KEY")


# --- plain HTTP to the relay ------------------------------------------------------------------


class Api:
    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.api_key = api_key

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Api-Key", self.api_key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                raw = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def create_automation(self, processor_id: str, url: str, name: str = "sdk-compat") -> dict:
        status, body = self.call(
            "POST",
            "/v1/processors/automations/endpoints",
            {"name": name, "processor_id": processor_id, "webhook_url": url},
        )
        assert status == 201, f"create automation: {status} {body}"
        assert body["secret"].startswith("whsec_"), body
        return body

    def send_message(self, processor_id: str, payload: dict) -> dict:
        status, body = self.call("POST", "/v1/messages", {"processor_id": processor_id, "payload": payload})
        assert status == 202, f"POST /v1/messages: {status} {body}"
        return body

    def rotate_secret(self, automation_id: str) -> dict:
        status, body = self.call("POST", f"/v1/processors/automations/endpoints/{automation_id}/secret/rotate")
        assert status == 200, f"rotate: {status} {body}"
        return body

    def logs(self, query: str) -> list[dict]:
        """Every log matching `query`, oldest first (plain HTTP, following cursors)."""
        out: list[dict] = []
        after = ""
        while True:
            status, page = self.call("GET", f"/v1/processors/automations/logs?limit=100&order=asc{query}{after}")
            assert status == 200, f"list logs: {status} {page}"
            out.extend(page["data"])
            nxt = page["list_metadata"]["after"]
            if not nxt:
                return out
            after = f"&after={nxt}"


@pytest.fixture(scope="session")
def api(base_url: str, api_key: str) -> Api:
    return Api(base_url, api_key)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def unique(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


# --- receivers --------------------------------------------------------------------------------


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """Records every POST; answers `status` with a JSON body."""

    status: int = 200
    response: dict = field(default_factory=lambda: {"ok": True, "rows": 1})
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: Optional[ThreadingHTTPServer] = None

    def start(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                with receiver.lock:
                    receiver.calls.append(Call(self.path, {k: v for k, v in self.headers.items()}, body))
                out = json.dumps(receiver.response).encode()
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("X-Receiver", "sdk-compat")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def url(self, path: str = "/hook") -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def snapshot(self) -> list[Call]:
        with self.lock:
            return list(self.calls)

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def make_receiver():
    started: list[Receiver] = []

    def make(status: int = 200) -> Receiver:
        r = Receiver(status=status).start()
        started.append(r)
        return r

    yield make
    for r in started:
        r.stop()


def header(call: Call, name: str) -> str:
    for k, v in call.headers.items():
        if k.lower() == name.lower():
            return v
    raise AssertionError(f"call has no {name} header: {call.headers}")
