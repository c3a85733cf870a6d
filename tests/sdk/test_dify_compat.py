"""The real dify-client==0.1.10 SDK (PyPI) against hookrelay's Dify-compatible Workflow App
API, with the demo app of config.example.toml (built in when the server runs without
--config): parameters, file upload, blocking / streaming / async runs, run detail, stop,
workflow logs and Dify's error codes. Then the real uiform==0.0.35 SDK parses the
AutomationLogs those runs produced (completion, automation_snapshot, user_email,
file_metadata, rerun), and every delivered webhook verifies with standardwebhooks==1.1.0.

The published dify-client has `DifyClient` only; the upstream `WorkflowClient` methods
(sdk-contracts §3.1) are added below, on top of the SDK's own `_send_request`, so the
package's real transport (requests, `Authorization: Bearer`, `Content-Type: application/json`
on every call, no timeout, no status checks) is what talks to the relay.

A second part starts its own hookrelay (HOOKRELAY_BIN, exported by run.sh) with a slow app
to get a run that is stopped mid-run and one that times out, and checks that their logs
parse in uiform too.

Run through tests/sdk/run.sh (it starts the server and sets HOOKRELAY_BASE_URL/_API_KEY).
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterable, Iterator, Optional

import pydantic
import pytest
import requests
from conftest import Api, Receiver, header, wait_for  # also patches typing.TypedDict

from dify_client import DifyClient
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from uiform import UiForm
from uiform.types.automations.webhooks import WebhookRequest
from uiform.types.logs import AutomationLog, ExternalRequestLog, ListLogs

DEMO_APP = "demo"
DEMO_KEY = "app-demo-key-0123456789"  # public demo key of config.example.toml
DEMO_NODES_FRIENDLY = ["start", "is_formal", "friendly", "end_friendly"]
DEMO_NODES_FORMAL = ["start", "is_formal", "formal", "end_formal"]


# --- the upstream WorkflowClient, on the published DifyClient ----------------------------------


class WorkflowClient(DifyClient):
    """Dify's upstream `WorkflowClient` (sdks/python-client, not in the PyPI release).

    Same paths, bodies and defaults as upstream. One addition: `run(..., files=...)` puts
    Dify's top-level `files` list in the body when given (upstream's run has no such
    parameter; the API accepts it). Like upstream, `run` does NOT pass `stream=True`: a
    streaming run is read to its end before `run` returns.
    """

    def run(self, inputs, response_mode="streaming", user="abc-123", files=None):
        data = {"inputs": inputs, "response_mode": response_mode, "user": user}
        if files is not None:
            data["files"] = files
        return self._send_request("POST", "/workflows/run", data)

    def stop(self, task_id, user):
        return self._send_request("POST", f"/workflows/tasks/{task_id}/stop", {"user": user})

    def get_result(self, workflow_run_id):
        return self._send_request("GET", f"/workflows/run/{workflow_run_id}")

    def get_workflow_logs(
        self,
        keyword=None,
        status=None,
        page=1,
        limit=20,
        created_at__before=None,
        created_at__after=None,
        created_by_end_user_session_id=None,
        created_by_account=None,
    ):
        params = {"page": page, "limit": limit}
        if keyword:
            params["keyword"] = keyword
        if status:
            params["status"] = status
        if created_at__before:
            params["created_at__before"] = created_at__before
        if created_at__after:
            params["created_at__after"] = created_at__after
        if created_by_end_user_session_id:
            params["created_by_end_user_session_id"] = created_by_end_user_session_id
        if created_by_account:
            params["created_by_account"] = created_by_account
        return self._send_request("GET", "/workflows/logs", params=params)


def workflow_client(base_url: str, key: str = DEMO_KEY) -> WorkflowClient:
    client = WorkflowClient(key)
    assert client.base_url == "https://api.dify.ai/v1", "the published SDK hard-codes its base URL"
    client.base_url = f"{base_url}/v1"  # /v1 included, no trailing slash (plain concatenation)
    return client


# --- helpers ----------------------------------------------------------------------------------


def bounded(what: str, seconds: float, fn: Callable[[], Any]) -> Any:
    """fn() in a daemon thread; fails (instead of hanging: requests has no timeout) when it
    has not returned after `seconds`, e.g. because a response body is never closed."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as e:  # noqa: BLE001 - re-raised below
            box["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    if t.is_alive():
        raise AssertionError(f"{what}: still running after {seconds}s (response never ended?)")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@dataclass
class SseFrame:
    event: Optional[str]  # the `event:` field (only pings carry one here)
    data: Optional[dict]  # the parsed `data:` JSON


def sse_frames(lines: Iterable[bytes]) -> Iterator[SseFrame]:
    """SSE frames from `iter_lines()` output, decoded as UTF-8 here (requests would assume
    ISO-8859-1 for text/* without a charset)."""
    event: Optional[str] = None
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8")
        if line == "":
            if event is not None or data:
                yield SseFrame(event, json.loads("\n".join(data)) if data else None)
            event, data = None, []
        elif line.startswith(":"):
            continue  # comment
        elif line.startswith("event:"):
            event = line[len("event:") :].strip()
        elif line.startswith("data:"):
            data.append(line[len("data:") :].removeprefix(" "))
        # other fields (id:, retry:) are not used by Dify
    if event is not None or data:
        yield SseFrame(event, json.loads("\n".join(data)) if data else None)


def workflow_events(frames: Iterable[SseFrame]) -> tuple[list[dict], int]:
    """(the workflow events, the number of pings)."""
    events, pings = [], 0
    for frame in frames:
        if frame.event == "ping":
            assert frame.data is None, frame
            pings += 1
            continue
        assert frame.data is not None, f"a frame without data: {frame}"
        assert frame.event in (None, "message"), frame
        events.append(frame.data)
    return events, pings


def check_run_events(events: list[dict], node_ids: list[str], outputs: dict) -> tuple[str, str]:
    """Dify's order and ids for a finished run of the demo app; returns (task_id, run_id)."""
    names = [e["event"] for e in events]
    assert names[0] == "workflow_started", names
    assert names[-1] == "workflow_finished", names
    assert names.count("workflow_started") == 1 and names.count("workflow_finished") == 1, names
    task_id, run_id = events[0]["task_id"], events[0]["workflow_run_id"]
    uuid.UUID(task_id), uuid.UUID(run_id)
    assert task_id != run_id
    for e in events:
        assert e["task_id"] == task_id and e["workflow_run_id"] == run_id, e
        assert isinstance(e["data"], dict), e

    started = events[0]["data"]
    assert started["id"] == run_id
    assert started["workflow_id"] == DEMO_APP
    assert isinstance(started["created_at"], int)

    # node_started/node_finished pairs, one node at a time, with the same execution id.
    seen_nodes, open_exec = [], None
    for e in events[1:-1]:
        d = e["data"]
        if e["event"] == "node_started":
            assert open_exec is None, f"node_started while {open_exec} is open: {names}"
            open_exec = d["id"]
            seen_nodes.append(d["node_id"])
            assert d["index"] == len(seen_nodes), d
            assert d["predecessor_node_id"] == (seen_nodes[-2] if len(seen_nodes) > 1 else None), d
            for key in ("node_type", "title", "inputs", "created_at"):
                assert key in d, (key, d)
        elif e["event"] == "node_finished":
            assert d["id"] == open_exec, (d, open_exec)
            assert d["node_id"] == seen_nodes[-1]
            assert d["status"] == "succeeded" and d["error"] is None, d
            assert isinstance(d["elapsed_time"], (int, float))
            assert set(d["execution_metadata"]) >= {"total_tokens", "total_price", "currency"}
            open_exec = None
        elif e["event"] == "text_chunk":
            assert isinstance(d["text"], str)
        else:
            raise AssertionError(f"unexpected event {e['event']} in {names}")
    assert open_exec is None
    assert seen_nodes == node_ids, seen_nodes

    finished = events[-1]["data"]
    assert finished["id"] == run_id
    assert finished["workflow_id"] == DEMO_APP
    assert finished["status"] == "succeeded", finished
    assert finished["outputs"] == outputs
    assert finished["error"] is None
    assert finished["total_steps"] == len(node_ids)
    assert isinstance(finished["total_tokens"], int)
    assert isinstance(finished["elapsed_time"], (int, float))
    assert finished["finished_at"] >= finished["created_at"]
    return task_id, run_id


def dify_error(resp: requests.Response, status: int, code: str) -> dict:
    """Dify's error shape {code, message, status}."""
    assert resp.status_code == status, f"{resp.status_code} {resp.text}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    body = resp.json()
    assert body["code"] == code, body
    assert body["status"] == status, body
    assert isinstance(body["message"], str) and body["message"], body
    return body


def email_or_none(user: str) -> Optional[str]:
    return user if "@" in user and user.rsplit("@", 1)[1].count(".") >= 1 else None


# --- the demo session: an automation on processor "demo", then the runs ------------------------


@dataclass
class RunInfo:
    user: str
    inputs: dict
    outputs: dict
    task_id: str
    filename: Optional[str] = None
    file_bytes: Optional[bytes] = None


@dataclass
class Demo:
    wf: WorkflowClient
    receiver: Receiver
    automation: dict
    runs: dict[str, RunInfo] = field(default_factory=dict)  # workflow_run_id -> what it was
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, run_id: str, info: RunInfo) -> None:
        with self.lock:
            assert run_id not in self.runs
            self.runs[run_id] = info

    def blocking(self, inputs: dict, user: str, outputs: dict, files=None, **extra) -> tuple[str, dict]:
        resp = self.wf.run(inputs, response_mode="blocking", user=user, files=files)
        assert resp.status_code == 200, resp.text
        assert resp.headers["content-type"].startswith("application/json")
        body = resp.json()
        data = body["data"]
        assert data["status"] == "succeeded", body
        assert data["outputs"] == outputs, body
        self.record(body["workflow_run_id"], RunInfo(user, inputs, outputs, body["task_id"], **extra))
        return body["workflow_run_id"], body


@pytest.fixture(scope="module")
def demo(base_url: str, api: Api):
    """The automation on the demo app's processor is created before any run, so every run
    of this module becomes exactly one webhook call to `receiver`."""
    receiver = Receiver(status=200).start()
    automation = api.create_automation(DEMO_APP, receiver.url("/dify-runs"), name="dify-compat")
    try:
        yield Demo(workflow_client(base_url), receiver, automation)
    finally:
        receiver.stop()


@dataclass
class Uploaded:
    body: dict
    name: str
    content: bytes
    user: str


@pytest.fixture(scope="module")
def uploaded(demo: Demo) -> Uploaded:
    content = "Quarterly brief: revenue up 12 %, café opened in Zürich.\n".encode()
    user = "ada.lovelace@example.com"
    resp = demo.wf.file_upload(user, {"file": ("brief.txt", content, "text/plain")})
    assert resp.status_code == 201, resp.text
    return Uploaded(resp.json(), "brief.txt", content, user)


@dataclass
class CanonicalRuns:
    email_run: str  # blocking, formal, user is an email address
    plain_run: str  # blocking, default tone, user is not an email
    file_run: str  # blocking, with the uploaded file (local_file)
    stream_run: str  # streaming


@pytest.fixture(scope="module")
def runs(demo: Demo, uploaded: Uploaded) -> CanonicalRuns:
    email_run, _ = demo.blocking(
        {"name": "Ada", "tone": "formal"}, "ada.lovelace@example.com", {"greeting": "Good day, Ada."}
    )
    plain_run, _ = demo.blocking({"name": "Bo"}, "user-42", {"greeting": "Hi Bo! 👋"})
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": uploaded.body["id"]}]
    file_run, _ = demo.blocking(
        {"name": "Grace", "tone": "formal"},
        uploaded.user,
        {"greeting": "Good day, Grace."},
        files=files,
        filename=uploaded.name,
        file_bytes=uploaded.content,
    )
    resp = bounded("streaming run", 30, lambda: demo.wf.run({"name": "Zoë"}, response_mode="streaming", user="zoe"))
    events, _ = workflow_events(sse_frames(resp.iter_lines()))
    task_id, stream_run = check_run_events(events, DEMO_NODES_FRIENDLY, {"greeting": "Hi Zoë! 👋"})
    demo.record(stream_run, RunInfo("zoe", {"name": "Zoë"}, {"greeting": "Hi Zoë! 👋"}, task_id))
    return CanonicalRuns(email_run, plain_run, file_run, stream_run)


# --- parameters and upload --------------------------------------------------------------------


def test_parameters(demo: Demo) -> None:
    resp = demo.wf.get_application_parameters("user-params")
    assert resp.status_code == 200, resp.text
    body = resp.json()

    form = body["user_input_form"]
    assert isinstance(form, list) and len(form) == 2, form
    for item in form:
        assert isinstance(item, dict) and len(item) == 1, item  # {"<control type>": {...}}
    (name_kind, name), (tone_kind, tone) = (next(iter(i.items())) for i in form)
    assert name_kind == "text-input"
    assert name["variable"] == "name" and name["label"] == "Your name"
    assert name["required"] is True
    assert name["max_length"] == 48
    assert tone_kind == "select"
    assert tone["variable"] == "tone" and tone["label"] == "Tone"
    assert tone["required"] is False
    assert tone["default"] == "friendly"
    assert tone["options"] == ["friendly", "formal"]

    upload = body["file_upload"]
    for kind in ("document", "image"):
        assert upload[kind]["enabled"] is True, upload
        assert upload[kind]["number_limits"] == 3
        assert set(upload[kind]["transfer_methods"]) == {"local_file", "remote_url"}
    for kind in ("audio", "video"):
        assert upload[kind]["enabled"] is False, upload

    system = body["system_parameters"]
    for key in ("file_size_limit", "image_file_size_limit", "audio_file_size_limit", "video_file_size_limit"):
        assert isinstance(system[key], int) and system[key] > 0, system


def test_file_upload(demo: Demo, uploaded: Uploaded) -> None:
    body = uploaded.body
    assert set(body) >= {"id", "name", "size", "extension", "mime_type", "created_by", "created_at"}, body
    assert body["id"]
    assert body["name"] == "brief.txt"
    assert body["size"] == len(uploaded.content)
    assert body["extension"] == "txt"  # no dot
    assert body["mime_type"] == "text/plain"
    assert body["created_by"]  # the end user (Dify: the end-user id)
    assert isinstance(body["created_at"], int)
    assert abs(body["created_at"] - time.time()) < 600, "created_at is Unix seconds"

    # An image is accepted too (documents and images are enabled).
    png = demo.wf.file_upload("user-up", {"file": ("pixel.png", b"\x89PNG\r\n\x1a\n0000", "image/png")})
    assert png.status_code == 201, png.text
    assert png.json()["extension"] == "png" and png.json()["mime_type"] == "image/png"


def test_file_upload_errors(demo: Demo) -> None:
    exe = demo.wf.file_upload("user-up", {"file": ("setup.exe", b"MZ\x90\x00", "application/octet-stream")})
    dify_error(exe, 415, "unsupported_file_type")
    audio = demo.wf.file_upload("user-up", {"file": ("song.mp3", b"ID3", "audio/mpeg")})
    dify_error(audio, 415, "unsupported_file_type")  # audio is not enabled for the demo app
    two = demo.wf._send_request_with_files(
        "POST",
        "/files/upload",
        data={"user": "user-up"},
        files=[("file", ("a.txt", b"a", "text/plain")), ("file", ("b.txt", b"b", "text/plain"))],
    )
    dify_error(two, 400, "too_many_files")
    # A multipart body with no file part.
    none = demo.wf._send_request_with_files(
        "POST", "/files/upload", data={"user": "user-up"}, files={"note": (None, "no file here")}
    )
    dify_error(none, 400, "no_file_uploaded")


def test_file_upload_without_files_gets_dify_error_shape(demo: Demo) -> None:
    # The SDK's own call with no file: requests then sends the form url-encoded (no
    # multipart at all). Dify answers 400 no_file_uploaded; the relay must answer some
    # 400 in Dify's {code, message, status} shape, not plain text.
    resp = demo.wf.file_upload("user-up", {})
    assert resp.status_code == 400, resp.text
    assert resp.headers.get("content-type", "").startswith("application/json"), (
        f"plain-text error for a non-multipart upload: {resp.headers.get('content-type')!r} {resp.text!r}"
    )
    body = resp.json()
    assert body["code"] in ("no_file_uploaded", "invalid_param"), body
    assert body["status"] == 400


# --- runs -------------------------------------------------------------------------------------


def test_blocking_run(demo: Demo, runs: CanonicalRuns) -> None:
    run_id, body = demo.blocking({"name": "Linus", "tone": "formal"}, "user-blocking", {"greeting": "Good day, Linus."})
    assert set(body) == {"workflow_run_id", "task_id", "data"}, body
    data = body["data"]
    assert data["id"] == run_id == body["workflow_run_id"]
    uuid.UUID(body["task_id"])
    assert data["workflow_id"] == DEMO_APP
    assert data["error"] is None
    assert data["total_steps"] == 4 and isinstance(data["total_steps"], int)
    assert data["total_tokens"] == 0
    assert isinstance(data["elapsed_time"], float) and data["elapsed_time"] >= 0
    assert isinstance(data["created_at"], int) and isinstance(data["finished_at"], int)
    assert data["finished_at"] >= data["created_at"]
    assert abs(data["created_at"] - time.time()) < 600

    # The default tone and non-ASCII output survive the round trip (response decoded as JSON/UTF-8).
    _, friendly = demo.blocking({"name": "Zoë"}, "user-blocking", {"greeting": "Hi Zoë! 👋"})
    assert friendly["data"]["outputs"]["greeting"].endswith("👋")


def test_streaming_run_read_by_the_sdk(demo: Demo, runs: CanonicalRuns) -> None:
    # Upstream run(): requests reads the whole body before returning, so returning at all
    # means the relay closed the response after workflow_finished.
    resp = bounded(
        "streaming run", 30, lambda: demo.wf.run({"name": "Ümit", "tone": "formal"}, response_mode="streaming", user="u-sse")
    )
    assert resp.status_code == 200, resp.text
    ctype = resp.headers["content-type"]
    assert ctype.startswith("text/event-stream"), ctype
    assert "charset=utf-8" in ctype.replace(" ", "").lower(), ctype
    assert resp.headers.get("transfer-encoding", "").lower() == "chunked", resp.headers
    events, _ = workflow_events(sse_frames(resp.iter_lines()))
    outputs = {"greeting": "Good day, Ümit."}
    task_id, run_id = check_run_events(events, DEMO_NODES_FORMAL, outputs)
    demo.record(run_id, RunInfo("u-sse", {"name": "Ümit", "tone": "formal"}, outputs, task_id))
    # Nothing but blank lines after the last event.
    tail = resp.content.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    assert json.loads(tail.decode().removeprefix("data:").strip())["event"] == "workflow_finished"


def test_streaming_run_read_incrementally(demo: Demo, runs: CanonicalRuns) -> None:
    # The same call with stream=True (as Dify's Completion/Chat clients do): events are
    # read as they come, and the body ends right after workflow_finished.
    body = {"inputs": {"name": "Kai"}, "response_mode": "streaming", "user": "u-sse-incremental"}

    def consume() -> tuple[list[dict], bool]:
        resp = demo.wf._send_request("POST", "/workflows/run", body, stream=True)
        assert resp.status_code == 200
        frames = sse_frames(resp.iter_lines())
        events = []
        for frame in frames:
            if frame.event == "ping":
                continue
            events.append(frame.data)
            if frame.data["event"] == "workflow_finished":
                break
        rest = list(frames)  # must end at once: the relay closes the body
        resp.close()
        return events, rest

    events, rest = bounded("incremental streaming run", 30, consume)
    assert [f for f in rest if f.event != "ping"] == [], rest
    outputs = {"greeting": "Hi Kai! 👋"}
    task_id, run_id = check_run_events(events, DEMO_NODES_FRIENDLY, outputs)
    demo.record(run_id, RunInfo("u-sse-incremental", {"name": "Kai"}, outputs, task_id))


def test_async_run(demo: Demo, runs: CanonicalRuns) -> None:
    # hookrelay's extension: 202 with the ids at once; the run finishes on its own.
    resp = demo.wf.run({"name": "Async"}, response_mode="async", user="u-async")
    assert resp.status_code == 202, resp.text
    body = resp.json()
    run_id, task_id = body["workflow_run_id"], body["task_id"]
    outputs = {"greeting": "Hi Async! 👋"}
    detail = wait_for(
        "the async run to finish",
        lambda: (lambda r: r if r["status"] != "running" else None)(demo.wf.get_result(run_id).json()),
    )
    assert detail["status"] == "succeeded" and detail["outputs"] == outputs, detail
    demo.record(run_id, RunInfo("u-async", {"name": "Async"}, outputs, task_id))


def test_run_with_uploaded_file(demo: Demo, uploaded: Uploaded, runs: CanonicalRuns) -> None:
    detail = demo.wf.get_result(runs.file_run)
    assert detail.status_code == 200, detail.text
    assert detail.json()["status"] == "succeeded"
    # An unknown upload id is invalid_param, and creates no run.
    before = demo.wf.get_workflow_logs(limit=1).json()["total"]
    files = [{"type": "document", "transfer_method": "local_file", "upload_file_id": str(uuid.uuid4())}]
    dify_error(demo.wf.run({"name": "X"}, "blocking", "user-files", files=files), 400, "invalid_param")
    # A file type the app does not accept.
    files = [{"type": "audio", "transfer_method": "local_file", "upload_file_id": uploaded.body["id"]}]
    dify_error(demo.wf.run({"name": "X"}, "blocking", "user-files", files=files), 400, "invalid_param")
    assert demo.wf.get_workflow_logs(limit=1).json()["total"] == before


def test_get_result(demo: Demo, runs: CanonicalRuns) -> None:
    resp = demo.wf.get_result(runs.email_run)
    assert resp.status_code == 200, resp.text
    detail = resp.json()
    assert set(detail) >= {
        "id", "workflow_id", "status", "inputs", "outputs", "error", "total_steps", "total_tokens",
        "created_at", "finished_at", "elapsed_time",
    }, detail
    assert detail["id"] == runs.email_run
    assert detail["workflow_id"] == DEMO_APP
    assert detail["status"] == "succeeded"
    assert detail["outputs"] == {"greeting": "Good day, Ada."}
    assert detail["error"] is None
    inputs = detail["inputs"]
    if isinstance(inputs, str):  # Dify: a JSON-encoded string
        inputs = json.loads(inputs)
    assert inputs == {"name": "Ada", "tone": "formal"}
    assert detail["total_steps"] == 4
    assert detail["finished_at"] >= detail["created_at"]

    # Defaults are applied to the recorded inputs.
    plain = demo.wf.get_result(runs.plain_run).json()
    plain_inputs = json.loads(plain["inputs"]) if isinstance(plain["inputs"], str) else plain["inputs"]
    assert plain_inputs == {"name": "Bo", "tone": "friendly"}

    dify_error(demo.wf.get_result(str(uuid.uuid4())), 404, "not_found")


def test_stop(demo: Demo, runs: CanonicalRuns) -> None:
    task_id = demo.runs[runs.stream_run].task_id
    # A known task that already finished: success (Dify's answer), and the run stays succeeded.
    resp = demo.wf.stop(task_id, "zoe")
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"result": "success"}
    assert demo.wf.get_result(runs.stream_run).json()["status"] == "succeeded"
    # Unknown task ids, and another user's task, are 404 not_found (Dify would say success).
    dify_error(demo.wf.stop(str(uuid.uuid4()), "zoe"), 404, "not_found")
    dify_error(demo.wf.stop(task_id, "someone-else"), 404, "not_found")
    # `user` is required.
    dify_error(demo.wf.stop(task_id, ""), 400, "invalid_param")


def test_workflow_logs(demo: Demo, runs: CanonicalRuns) -> None:
    resp = demo.wf.get_workflow_logs()
    assert resp.status_code == 200, resp.text
    page = resp.json()
    assert page["page"] == 1 and page["limit"] == 20
    assert page["total"] >= 4
    assert page["has_more"] is (page["total"] > 20)
    assert len(page["data"]) == min(20, page["total"])
    created = [item["created_at"] for item in page["data"]]
    assert created == sorted(created, reverse=True), "newest first"
    by_id = {item["id"]: item for item in page["data"]}
    assert runs.email_run in by_id, "a recent run is listed"
    item = by_id[runs.email_run]
    wr = item["workflow_run"]
    assert wr["id"] == runs.email_run
    assert wr["status"] == "succeeded"
    assert wr["error"] is None
    assert wr["total_steps"] == 4
    for key in ("version", "elapsed_time", "total_tokens", "created_at", "finished_at"):
        assert key in wr, (key, wr)
    assert item["created_from"] == "service-api"
    assert item["created_by_role"] == "end_user"
    assert item["created_by_account"] is None
    assert item["created_by_end_user"]["session_id"] == "ada.lovelace@example.com"
    assert item["created_by_end_user"]["type"] == "service_api"

    # Pagination: limit 1 walks the same order.
    first = demo.wf.get_workflow_logs(page=1, limit=1).json()
    second = demo.wf.get_workflow_logs(page=2, limit=1).json()
    assert first["limit"] == 1 and first["has_more"] is True and second["page"] == 2
    assert [first["data"][0]["id"], second["data"][0]["id"]] == [i["id"] for i in page["data"][:2]]

    # keyword: a substring of a run's inputs (case-insensitive).
    marker = f"Kw{uuid.uuid4().hex[:10]}"
    kw_run, _ = demo.blocking({"name": marker}, "user-kw", {"greeting": f"Hi {marker}! 👋"})
    found = demo.wf.get_workflow_logs(keyword=marker.lower()).json()
    assert found["total"] == 1 and [i["id"] for i in found["data"]] == [kw_run], found
    assert demo.wf.get_workflow_logs(keyword="no-such-text-anywhere").json()["total"] == 0
    # keyword also matches the end user's session id.
    assert runs.email_run in {i["id"] for i in demo.wf.get_workflow_logs(keyword="ada.lovelace", limit=100).json()["data"]}

    # status filter
    ok = demo.wf.get_workflow_logs(status="succeeded", limit=100).json()
    assert ok["total"] >= 5 and all(i["workflow_run"]["status"] == "succeeded" for i in ok["data"])
    failed = demo.wf.get_workflow_logs(status="failed", limit=100).json()
    assert all(i["workflow_run"]["status"] == "failed" for i in failed["data"])
    dify_error(demo.wf.get_workflow_logs(status="bogus"), 400, "invalid_param")

    # the end user's session id
    mine = demo.wf.get_workflow_logs(created_by_end_user_session_id="user-kw").json()
    assert [i["id"] for i in mine["data"]] == [kw_run]
    # runs are never made by accounts
    assert demo.wf.get_workflow_logs(created_by_account="someone").json()["total"] == 0

    # created_at window
    future = demo.wf.get_workflow_logs(created_at__after="2999-01-01T00:00:00Z").json()
    assert future["total"] == 0
    everything = demo.wf.get_workflow_logs(limit=1).json()["total"]
    past = demo.wf.get_workflow_logs(created_at__before="2999-01-01T00:00:00Z", limit=1).json()
    assert past["total"] == everything

    # bounds
    dify_error(demo.wf.get_workflow_logs(limit=101), 400, "invalid_param")
    dify_error(demo.wf.get_workflow_logs(page=0), 400, "invalid_param")


def test_bad_inputs(demo: Demo, runs: CanonicalRuns) -> None:
    before = demo.wf.get_workflow_logs(limit=1).json()["total"]
    cases = [
        ({"tone": "formal"}, "missing required name"),
        ({"name": "", "tone": "formal"}, "empty required name"),
        ({"name": "Ann", "tone": "sarcastic"}, "tone not in its options"),
        ({"name": "x" * 49}, "name over max_length 48"),
        ({"name": 42}, "name not a string"),
    ]
    for inputs, why in cases:
        for mode in ("blocking", "streaming"):
            resp = bounded(why, 30, lambda: demo.wf.run(inputs, response_mode=mode, user="user-bad"))
            body = dify_error(resp, 400, "invalid_param")
            assert "name" in body["message"] or "tone" in body["message"], (why, body)
    # `user` is required (the SDK sends whatever it is given).
    dify_error(demo.wf.run({"name": "Ann"}, "blocking", user=""), 400, "invalid_param")
    dify_error(demo.wf.run({"name": "Ann"}, "sometimes", user="user-bad"), 400, "invalid_param")
    # 48 characters is fine.
    demo.blocking({"name": "y" * 48}, "user-bad", {"greeting": f"Hi {'y' * 48}! 👋"})
    # Nothing was half-created by the rejected requests: one new run only.
    assert demo.wf.get_workflow_logs(limit=1).json()["total"] == before + 1


def test_wrong_key(base_url: str, api_key: str, demo: Demo) -> None:
    for key in ("app-not-a-real-key-0123456789", "app-"):
        stranger = workflow_client(base_url, key)
        dify_error(stranger.get_application_parameters("u"), 401, "unauthorized")
        dify_error(stranger.run({"name": "Ann"}, "blocking", "u"), 401, "unauthorized")
        dify_error(stranger.get_workflow_logs(), 401, "unauthorized")
        dify_error(stranger.file_upload("u", {"file": ("a.txt", b"a", "text/plain")}), 401, "unauthorized")
    # The admin key is a valid key of the wrong kind here: 403 (documented in workflows.rs).
    admin = workflow_client(base_url, api_key)
    dify_error(admin.get_application_parameters("u"), 403, "forbidden")


# --- what the runs produced: webhooks and AutomationLogs (uiform) ------------------------------
# Defined last so that every run above has been recorded (pytest runs a file in order); the
# `runs` fixture makes the canonical runs when this is selected alone.


def run_id_of(payload: dict) -> str:
    return payload["metadata"]["workflow_run_id"]


def test_webhooks_verify_with_standardwebhooks(demo: Demo, runs: CanonicalRuns) -> None:
    expected = dict(demo.runs)
    wait_for(f"{len(expected)} webhook calls", lambda: len(demo.receiver.snapshot()) >= len(expected))
    time.sleep(0.3)  # a stray extra call would show up now
    calls = demo.receiver.snapshot()
    secret = demo.automation["secret"]
    seen: dict[str, dict] = {}
    for call in calls:
        assert call.path == "/dify-runs"
        assert header(call, "content-type").startswith("application/json")
        payload = Webhook(secret).verify(call.body, call.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(call.body + b" ", call.headers)
        run_id = run_id_of(payload)
        assert run_id not in seen, f"two calls for run {run_id}"
        seen[run_id] = payload
    assert set(seen) == set(expected), "one webhook per finished run, none for rejected requests"

    for run_id, payload in seen.items():
        info = expected[run_id]
        meta = payload["metadata"]
        assert meta["task_id"] == info.task_id
        assert meta["workflow_id"] == DEMO_APP
        assert meta["status"] == "succeeded"
        assert meta["error"] is None
        assert meta["user"] == info.user
        assert meta["total_steps"] == 4
        assert payload["user"] == email_or_none(info.user)
        message = payload["completion"]["choices"][0]["message"]
        assert json.loads(message["content"]) == info.outputs
        assert message["parsed"] == info.outputs
        if info.filename:
            fp = payload["file_payload"]
            assert fp["filename"] == info.filename
            assert fp["url"] == "data:text/plain;base64," + base64.b64encode(info.file_bytes).decode()
            # A run with a file: the body is uiform's WebhookRequest.
            req = WebhookRequest.model_validate(payload)
            assert req.file_payload.filename == info.filename
            assert str(req.user) == info.user
            assert req.completion.extraction_id == run_id


def test_webhook_of_a_run_without_file_is_a_uiform_webhook_request(demo: Demo, runs: CanonicalRuns) -> None:
    # uiform's WebhookRequest (the documented webhook body) requires `file_payload`
    # (MIMEData, not Optional): a run without files sends its inputs as a JSON document.
    wait_for("webhook calls", lambda: len(demo.receiver.snapshot()) >= len(demo.runs))
    calls = [json.loads(c.body) for c in demo.receiver.snapshot()]
    plain = next(p for p in calls if run_id_of(p) == runs.plain_run)
    try:
        WebhookRequest.model_validate(plain)
    except pydantic.ValidationError as e:
        pytest.fail(
            "the webhook body of a run without files does not validate as uiform's WebhookRequest "
            f"(file_payload={plain.get('file_payload')!r}): {e.errors()[0]}"
        )


def test_uiform_parses_the_run_logs(base_url: str, api_key: str, demo: Demo, runs: CanonicalRuns) -> None:
    client = UiForm(api_key=api_key, base_url=base_url, max_retries=0)
    logs_api = client.processors.automations.logs
    auto_id = demo.automation["id"]
    expected = dict(demo.runs)

    def all_logs() -> list[AutomationLog]:
        out: list[AutomationLog] = []
        after = None
        while True:
            page = logs_api.list(automation_id=auto_id, limit=100, order="asc", after=after)
            assert isinstance(page, ListLogs)
            out.extend(page.data)
            after = page.list_metadata.after
            if after is None:
                return out

    logs = wait_for(f"{len(expected)} logs", lambda: (lambda l: l if len(l) >= len(expected) else None)(all_logs()))
    by_run: dict[str, AutomationLog] = {}
    for log in logs:
        assert isinstance(log, AutomationLog)
        erl = log.external_request_log
        assert isinstance(erl, ExternalRequestLog)
        assert erl.status_code == 200 and erl.error is None
        run_id = erl.request_body["metadata"]["workflow_run_id"]
        assert run_id not in by_run
        by_run[run_id] = log
    assert set(by_run) == set(expected)

    for run_id, log in by_run.items():
        info = expected[run_id]
        assert log.automation_snapshot.processor_id == DEMO_APP
        assert log.automation_snapshot.id == auto_id
        assert str(log.automation_snapshot.webhook_url) == demo.receiver.url("/dify-runs")
        choice = log.completion.choices[0]
        assert json.loads(choice.message.content) == info.outputs
        assert choice.finish_reason == "stop"
        assert log.completion.object == "chat.completion"
        assert getattr(log.completion, "extraction_id", run_id) == run_id
        assert log.completion.usage is None or log.completion.usage.total_tokens == 0
        expected_email = email_or_none(info.user)
        assert (str(log.user_email) if log.user_email else None) == expected_email, (info.user, log.user_email)
        if info.filename:
            assert log.file_metadata is not None
            assert log.file_metadata.filename == info.filename
            assert log.file_metadata.url.startswith("data:text/plain;base64,")
        else:
            # Without a file, the run's inputs stand in as the document (WebhookRequest needs one).
            assert log.file_metadata is not None
            assert log.file_metadata.filename.endswith("inputs.json"), log.file_metadata.filename
            assert log.file_metadata.url.startswith("data:application/json;base64,")
            encoded = log.file_metadata.url.split(",", 1)[1]
            document = json.loads(base64.b64decode(encoded))
            assert info.inputs.items() <= document.items(), (info.inputs, document)  # defaults added
        # get parses the same log
        got = logs_api.get(log.id)
        assert got.id == log.id and got.completion == log.completion

    assert by_run[runs.email_run].user_email == "ada.lovelace@example.com"
    assert by_run[runs.plain_run].user_email is None
    assert by_run[runs.file_run].file_metadata.filename == "brief.txt"

    # rerun: the same signed body again, answered as uiform's ExternalRequestLog.
    target = by_run[runs.file_run]
    calls_before = len(demo.receiver.snapshot())
    result = logs_api.rerun(target.id)
    assert isinstance(result, ExternalRequestLog)
    assert result.status_code == 200 and result.error is None
    assert str(result.webhook_url) == demo.receiver.url("/dify-runs")
    assert result.request_body == target.external_request_log.request_body
    calls = demo.receiver.snapshot()
    assert len(calls) == calls_before + 1
    again = Webhook(demo.automation["secret"]).verify(calls[-1].body, calls[-1].headers)
    assert again == target.external_request_log.request_body
    assert len(all_logs()) == len(expected) + 1
    # The rerun's call is not a new run: the demo session now has one extra call.
    demo_runs_in_calls = [run_id_of(json.loads(c.body)) for c in calls]
    assert demo_runs_in_calls.count(runs.file_run) == 2


# --- a second relay with a slow app: stopped and timed-out runs --------------------------------


class SlowServer:
    """Answers GET after `delay` seconds (or when released), for the http-request node."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.release = threading.Event()
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802
                outer.hits += 1
                outer.release.wait(outer.delay)
                out = b'{"slow": true}'
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(out)))
                    self.end_headers()
                    self.wfile.write(out)
                except OSError:
                    pass  # the relay gave up on the call

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}{path}"

    def stop(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


SLOW_KEY = "app-slow-key-0123456789"
SLOW_ADMIN_KEY = "sdk-compat-slow-admin-key-0123456789"


@pytest.fixture(scope="module")
def slow_relay():
    """A hookrelay of its own (HOOKRELAY_BIN) with an app whose http-request node waits on
    SlowServer: short run timeout, pings every 200 ms."""
    binary = os.environ.get("HOOKRELAY_BIN")
    if not binary:
        pytest.fail("HOOKRELAY_BIN is not set; run these tests through tests/sdk/run.sh", pytrace=False)
    slow = SlowServer(delay=30)
    work = tempfile.mkdtemp(prefix="hookrelay-slow-")
    config = os.path.join(work, "config.toml")
    with open(config, "w") as f:
        f.write(
            f"""
listen = "127.0.0.1:0"
database = "{work}/h.db"
api_keys = ["{SLOW_ADMIN_KEY}"]
[security]
allow_private_targets = true
[workflow]
ping_interval_ms = 200
[[apps]]
id = "slow"
name = "Slow"
api_keys = ["{SLOW_KEY}"]
run_timeout_secs = 3
[[apps.inputs]]
type = "text-input"
variable = "path"
required = true
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "call"
type = "http-request"
method = "GET"
url = "{slow.url('')}{{{{#start.path#}}}}"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{{ variable = "body", value_selector = ["call", "body"] }}]
[[apps.edges]]
source = "start"
target = "call"
[[apps.edges]]
source = "call"
target = "end"
"""
        )
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKRELAY_")}
    env["RUST_LOG"] = os.environ.get("RUST_LOG", "warn")
    stdout = open(os.path.join(work, "stdout.log"), "w")
    stderr = open(os.path.join(work, "stderr.log"), "w")
    proc = subprocess.Popen([binary, "serve", "--config", config], stdout=stdout, stderr=stderr, cwd=work)
    try:

        def address() -> Optional[str]:
            assert proc.poll() is None, open(os.path.join(work, "stderr.log")).read()
            for line in open(os.path.join(work, "stdout.log")):
                if line.startswith("hookrelay listening on "):
                    return line.split()[3]
            return None

        base = wait_for("the slow relay to listen", address, timeout=20).rstrip("/")
        yield base, slow
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        slow.stop()
        stdout.close()
        stderr.close()


def test_stopped_and_timed_out_runs(slow_relay) -> None:
    base, slow = slow_relay
    api = Api(base, SLOW_ADMIN_KEY)
    receiver = Receiver(status=200).start()
    try:
        automation = api.create_automation("slow", receiver.url("/slow-runs"), name="slow")
        wf = workflow_client(base, SLOW_KEY)

        # Stop mid-run: the stream ends with workflow_finished status "stopped".
        def stopped_run() -> tuple[list[dict], int, dict]:
            resp = wf._send_request(
                "POST", "/workflows/run", {"inputs": {"path": "/wait"}, "response_mode": "streaming", "user": "stopper@example.com"}, stream=True
            )
            assert resp.status_code == 200, resp.text
            events, pings, stop_answer = [], 0, None
            for frame in sse_frames(resp.iter_lines()):
                if frame.event == "ping":
                    pings += 1
                    if stop_answer is None and events and pings >= 2:
                        r = wf.stop(events[0]["task_id"], "stopper@example.com")
                        assert r.status_code == 200, r.text
                        stop_answer = r.json()
                    continue
                events.append(frame.data)
            return events, pings, stop_answer

        events, pings, stop_answer = bounded("stopped run", 30, stopped_run)
        assert stop_answer == {"result": "success"}
        assert pings >= 2, "event: ping frames during a long run"
        names = [e["event"] for e in events]
        assert names[0] == "workflow_started" and names[-1] == "workflow_finished", names
        finished = events[-1]["data"]
        assert finished["status"] == "stopped" and finished["outputs"] is None, finished
        stopped_id = events[0]["workflow_run_id"]
        assert wf.get_result(stopped_id).json()["status"] == "stopped"

        # Timeout: the app's run_timeout_secs (3 s) fails the run.
        resp = bounded("timed-out run", 30, lambda: wf.run({"path": "/wait"}, "blocking", "timeout-user"))
        assert resp.status_code == 200, resp.text
        data = resp.json()["data"]
        assert data["status"] == "failed" and "timed out" in (data["error"] or ""), data
        failed_id = resp.json()["workflow_run_id"]
        logs_page = wf.get_workflow_logs(status="failed").json()
        assert [i["id"] for i in logs_page["data"]] == [failed_id]
        assert wf.get_workflow_logs(status="stopped").json()["data"][0]["id"] == stopped_id

        # Both final states fire webhooks (the default: all statuses)...
        wait_for("2 webhook calls", lambda: len(receiver.snapshot()) == 2)
        statuses = {}
        for call in receiver.snapshot():
            payload = Webhook(automation["secret"]).verify(call.body, call.headers)
            statuses[payload["metadata"]["workflow_run_id"]] = payload["metadata"]["status"]
        assert statuses == {stopped_id: "stopped", failed_id: "failed"}

        # ...and their AutomationLogs must parse in uiform (a failing run is exactly when a
        # user looks at the logs). OpenAI's ChatCompletion allows finish_reason
        # stop|length|tool_calls|content_filter|function_call only.
        client = UiForm(api_key=SLOW_ADMIN_KEY, base_url=base, max_retries=0)
        wait_for("2 logs", lambda: len(api.logs(f"&automation_id={automation['id']}")) == 2)
        raw = api.logs(f"&automation_id={automation['id']}")
        reasons = [log["completion"]["choices"][0]["finish_reason"] for log in raw]
        try:
            page = client.processors.automations.logs.list(automation_id=automation["id"], limit=100)
        except pydantic.ValidationError as e:
            pytest.fail(
                f"uiform cannot parse the logs of stopped/failed runs (finish_reason {reasons}): {e.errors()[0]}"
            )
        assert len(page.data) == 2
        for log in page.data:
            assert log.automation_snapshot.processor_id == "slow"
            assert json.loads(log.completion.choices[0].message.content) == {}
        by_status = {log.external_request_log.request_body["metadata"]["status"]: log for log in page.data}
        assert str(by_status["stopped"].user_email) == "stopper@example.com"
        assert by_status["failed"].user_email is None
    finally:
        receiver.stop()
