"""The real uiform==0.0.35 SDK against hookrelay: list (filters, cursors), get, rerun, the
test webhook and endpoints.get all parse into the SDK's own models; every delivered call
verifies with the real standardwebhooks==1.1.0 package, also across a secret rotation.

Run through tests/sdk/run.sh (it starts the server and sets HOOKRELAY_BASE_URL/_API_KEY).
"""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
from conftest import Api, Receiver, header, unique, wait_for  # also patches typing.TypedDict

from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from uiform import AsyncUiForm, UiForm
from uiform.types.automations.endpoints import Endpoint
from uiform.types.automations.webhooks import WebhookRequest
from uiform.types.logs import AutomationLog, ExternalRequestLog, ListLogs

# A payload in the shape uiform's WebhookRequest parses, so the log's completion, user_email
# and file_metadata come from it.
PDF_URL = "data:application/pdf;base64," + base64.b64encode(b"%PDF-1.4 tiny").decode()


def webhook_request_payload(n: int) -> dict:
    return {
        "completion": {
            "id": f"chatcmpl-sdk-{n}",
            "object": "chat.completion",
            "created": 1735689600,
            "model": "gpt-4o-mini",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": json.dumps({"n": n})},
                }
            ],
        },
        "user": "jane.doe@example.com",
        "file_payload": {"filename": f"invoice-{n}.pdf", "url": PDF_URL},
        "metadata": {"n": n},
    }


@pytest.fixture(scope="session")
def client(base_url: str, api_key: str) -> UiForm:
    return UiForm(api_key=api_key, base_url=base_url, max_retries=0)


def receiver(status: int = 200) -> Receiver:
    return Receiver(status=status).start()


def sdk_logs(client: UiForm, **filters) -> list[AutomationLog]:
    """Every log matching `filters`, oldest first, walked with the SDK's `after` cursor."""
    out: list[AutomationLog] = []
    after = None
    for _ in range(1000):
        page = client.processors.automations.logs.list(limit=100, order="asc", after=after, **filters)
        assert isinstance(page, ListLogs)
        out.extend(page.data)
        after = page.list_metadata.after
        if after is None:
            return out
    raise AssertionError("cursor walk did not end")


class Scenario:
    """One processor, two automations: `ok` (answers 200) and `bad` (answers 500)."""

    def __init__(self, api: Api) -> None:
        self.processor_id = unique("proc_uiform")
        self.ok_receiver = receiver(200)
        self.bad_receiver = receiver(500)
        self.ok = api.create_automation(self.processor_id, self.ok_receiver.url("/ok"), name="ok")
        self.bad = api.create_automation(self.processor_id, self.bad_receiver.url("/bad"), name="bad")
        self.payloads: dict[str, dict] = {}  # message id -> payload
        for n in range(5):
            payload = webhook_request_payload(n) if n % 2 == 0 else {"n": n, "text": f"plain payload {n}"}
            answer = api.send_message(self.processor_id, payload)
            assert len(answer["delivery_ids"]) == 2, answer
            self.payloads[answer["id"]] = payload
        ok_id, bad_id = self.ok["id"], self.bad["id"]
        wait_for("5 logs of the ok automation", lambda: len(api.logs(f"&automation_id={ok_id}")) == 5)
        wait_for("5 logs of the failing automation", lambda: len(api.logs(f"&automation_id={bad_id}")) >= 5)
        self.ok_log_ids = [log["id"] for log in api.logs(f"&automation_id={ok_id}")]


@pytest.fixture(scope="module")
def scenario(api: Api):
    s = Scenario(api)
    yield s
    s.ok_receiver.stop()
    s.bad_receiver.stop()


def test_list_parses_into_sdk_models(client: UiForm, scenario: Scenario) -> None:
    page = client.processors.automations.logs.list(automation_id=scenario.ok["id"], limit=100, order="asc")
    assert isinstance(page, ListLogs)
    assert len(page.data) == 5
    assert page.list_metadata.before is None and page.list_metadata.after is None
    assert [log.id for log in page.data] == scenario.ok_log_ids
    seen_messages = set()
    for log in page.data:
        assert isinstance(log, AutomationLog)
        assert log.object == "automation_log"
        assert log.id.startswith("log_auto_")
        assert log.organization_id
        snap = log.automation_snapshot
        assert snap.id == scenario.ok["id"]
        assert snap.name == "ok"
        assert snap.processor_id == scenario.processor_id
        assert str(snap.webhook_url) == scenario.ok_receiver.url("/ok")
        erl = log.external_request_log
        assert isinstance(erl, ExternalRequestLog)
        assert erl.status_code == 200
        assert erl.error is None
        assert str(erl.webhook_url) == scenario.ok_receiver.url("/ok")
        assert erl.duration_ms >= 0
        assert erl.response_at >= erl.request_at
        assert erl.response_body == {"ok": True, "rows": 1}
        assert {k.lower(): v for k, v in erl.response_headers.items()}.get("x-receiver") == "sdk-compat"
        req_headers = {k.lower(): v for k, v in erl.request_headers.items()}
        message_id = req_headers["webhook-id"]
        assert message_id in scenario.payloads, req_headers
        seen_messages.add(message_id)
        assert req_headers["webhook-timestamp"].isdigit()
        payload = scenario.payloads[message_id]
        assert erl.request_body == payload
        if "completion" in payload:
            # A WebhookRequest payload surfaces as the log's completion, user and file.
            assert log.completion.id == payload["completion"]["id"]
            assert log.user_email == "jane.doe@example.com"
            assert log.file_metadata is not None
            assert log.file_metadata.filename == payload["file_payload"]["filename"]
        else:
            assert log.completion.choices, "a plain payload still yields a completion"
    assert seen_messages == set(scenario.payloads)


def test_list_filters(client: UiForm, scenario: Scenario) -> None:
    logs = client.processors.automations.logs
    ok_id, bad_id = scenario.ok["id"], scenario.bad["id"]

    assert len(logs.list(automation_id=ok_id, status_class="2xx", limit=100).data) == 5
    assert logs.list(automation_id=ok_id, status_class="5xx", limit=100).data == []
    assert len(logs.list(automation_id=ok_id, status_code=200, limit=100).data) == 5
    assert logs.list(automation_id=ok_id, status_code=500, limit=100).data == []

    failed = logs.list(automation_id=bad_id, status_class="5xx", limit=100).data
    assert len(failed) >= 5
    for log in failed:
        assert log.automation_snapshot.id == bad_id
        assert log.external_request_log.status_code == 500
        assert log.external_request_log.response_body == {"ok": True, "rows": 1}
    assert logs.list(automation_id=bad_id, status_class="2xx", limit=100).data == []

    # status_class alone, across all automations: only 5xx logs come back, bad's among them.
    only_5xx = sdk_logs(client, status_class="5xx")
    assert only_5xx
    assert all(500 <= log.external_request_log.status_code <= 599 for log in only_5xx)
    assert {log.id for log in failed} <= {log.id for log in only_5xx}

    by_url = sdk_logs(client, webhook_url=scenario.ok_receiver.url("/ok"))
    assert [log.id for log in by_url] == scenario.ok_log_ids
    by_bad_url = sdk_logs(client, webhook_url=scenario.bad_receiver.url("/bad"))
    assert len(by_bad_url) >= 5 and all(log.automation_snapshot.id == bad_id for log in by_bad_url)
    assert logs.list(webhook_url=scenario.ok_receiver.url("/nowhere")).data == []

    # Every argument `logs.list` has: the relay refuses unknown query parameters, so each one
    # the SDK sends must be known (schema_id and schema_data_id are accepted and ignored).
    every = logs.list(
        after=scenario.ok_log_ids[0], limit=100, order="asc", status_code=200, status_class="2xx",
        automation_id=ok_id, webhook_url=scenario.ok_receiver.url("/ok"), schema_id="s", schema_data_id="d",
    )
    assert [log.id for log in every.data] == scenario.ok_log_ids[1:]
    back = logs.list(before=scenario.ok_log_ids[-1], automation_id=ok_id, order="asc", schema_id="s")
    assert [log.id for log in back.data] == scenario.ok_log_ids[:-1]


def test_cursor_pagination(client: UiForm, scenario: Scenario) -> None:
    logs = client.processors.automations.logs
    ok_id = scenario.ok["id"]
    ids = scenario.ok_log_ids

    # Forward walk, ascending, 2 per page: [0,1] [2,3] [4].
    pages = []
    after = None
    while True:
        page = logs.list(automation_id=ok_id, limit=2, order="asc", after=after)
        pages.append([log.id for log in page.data])
        after = page.list_metadata.after
        if after is None:
            break
        assert after == page.data[-1].id
        assert len(pages) < 10
    assert pages == [ids[0:2], ids[2:4], ids[4:5]]

    # Descending walk gives the reverse.
    desc = []
    after = None
    while True:
        page = logs.list(automation_id=ok_id, limit=2, order="desc", after=after)
        desc.extend(log.id for log in page.data)
        after = page.list_metadata.after
        if after is None:
            break
    assert desc == list(reversed(ids))

    # `before` = the page just before the cursor, same order.
    page = logs.list(automation_id=ok_id, limit=2, order="asc", before=ids[2])
    assert [log.id for log in page.data] == ids[0:2]
    assert page.list_metadata.before is None
    assert page.list_metadata.after == ids[1]
    middle = logs.list(automation_id=ok_id, limit=2, order="asc", after=ids[1])
    assert middle.list_metadata.before == ids[2]
    back = logs.list(automation_id=ok_id, limit=2, order="asc", before=middle.list_metadata.before)
    assert [log.id for log in back.data] == ids[0:2]
    page = logs.list(automation_id=ok_id, limit=2, order="desc", before=ids[1])
    assert [log.id for log in page.data] == [ids[3], ids[2]]


def test_get_matches_list(client: UiForm, scenario: Scenario) -> None:
    listed = {log.id: log for log in client.processors.automations.logs.list(automation_id=scenario.ok["id"], limit=100).data}
    assert len(listed) == 5
    for log_id, from_list in listed.items():
        got = client.processors.automations.logs.get(log_id)
        assert isinstance(got, AutomationLog)
        assert got.id == log_id
        assert got.automation_snapshot == from_list.automation_snapshot
        assert got.external_request_log == from_list.external_request_log
        assert got.completion == from_list.completion
        assert got.user_email == from_list.user_email
        assert got.file_metadata == from_list.file_metadata
        assert got.created_at == from_list.created_at
    # positional and keyword forms both work (rerun(id=...) from the seed doc does not exist)
    assert client.processors.automations.logs.get(log_id=scenario.ok_log_ids[0]).id == scenario.ok_log_ids[0]


def test_deliveries_verify_with_standardwebhooks(scenario: Scenario) -> None:
    secret = scenario.ok["secret"]
    calls = scenario.ok_receiver.snapshot()
    assert len(calls) == 5
    seen = set()
    for call in calls:
        assert call.path == "/ok"
        assert header(call, "content-type").startswith("application/json")
        message_id = header(call, "webhook-id")
        assert message_id in scenario.payloads
        seen.add(message_id)
        verified = Webhook(secret).verify(call.body, call.headers)
        assert verified == scenario.payloads[message_id]
        # The check is real: another secret or a changed body fails.
        with pytest.raises(WebhookVerificationError):
            Webhook(scenario.bad["secret"]).verify(call.body, call.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(secret).verify(call.body + b" ", call.headers)
        # And the body is the producer's payload, byte for byte equivalent JSON.
        assert json.loads(call.body) == scenario.payloads[message_id]
    assert seen == set(scenario.payloads)
    # The failing automation's calls are signed with its own secret.
    for call in scenario.bad_receiver.snapshot():
        Webhook(scenario.bad["secret"]).verify(call.body, call.headers)


def test_rerun(client: UiForm, api: Api) -> None:
    recv = receiver(200)
    try:
        processor_id = unique("proc_rerun")
        auto = api.create_automation(processor_id, recv.url("/rerun-me"))
        payload = webhook_request_payload(42)
        message = api.send_message(processor_id, payload)
        original = wait_for("first log", lambda: api.logs(f"&automation_id={auto['id']}"))[0]
        assert len(recv.snapshot()) == 1

        result = client.processors.automations.logs.rerun(original["id"])
        assert isinstance(result, ExternalRequestLog)
        assert result.status_code == 200
        assert result.error is None
        assert str(result.webhook_url) == recv.url("/rerun-me")
        assert result.request_body == payload
        assert result.response_body == {"ok": True, "rows": 1}
        assert result.duration_ms >= 0

        calls = recv.snapshot()
        assert len(calls) == 2, "rerun is synchronous: the call happened before it answered"
        first, again = calls
        assert header(again, "webhook-id") == header(first, "webhook-id") == message["id"]
        assert again.body == first.body
        assert Webhook(auto["secret"]).verify(again.body, again.headers) == payload

        # A new log, linked to the original; the original is unchanged.
        logs = sdk_logs(client, automation_id=auto["id"])
        assert len(logs) == 2
        assert logs[0].id == original["id"]
        assert logs[1].external_request_log == result
        raw = api.logs(f"&automation_id={auto['id']}")
        assert raw[1]["rerun_of"] == original["id"] and raw[1]["trigger"] == "rerun"
        assert client.processors.automations.logs.get(original["id"]).external_request_log.status_code == 200

        # keyword form
        assert client.processors.automations.logs.rerun(log_id=original["id"]).status_code == 200
        assert len(recv.snapshot()) == 3
    finally:
        recv.stop()


def test_rerun_of_a_failed_call_parses(client: UiForm, api: Api) -> None:
    recv = receiver(503)
    try:
        processor_id = unique("proc_rerun_fail")
        auto = api.create_automation(processor_id, recv.url("/down"))
        api.send_message(processor_id, {"n": 1})
        original = wait_for("first log", lambda: api.logs(f"&automation_id={auto['id']}"))[0]
        result = client.processors.automations.logs.rerun(original["id"])
        assert isinstance(result, ExternalRequestLog)
        assert result.status_code == 503
        assert result.request_body == {"n": 1}
        got = client.processors.automations.logs.get(original["id"])
        assert got.external_request_log.status_code == 503
    finally:
        recv.stop()


def test_secret_rotation_signs_with_old_and_new(client: UiForm, api: Api) -> None:
    recv = receiver(200)
    try:
        processor_id = unique("proc_rotate")
        auto = api.create_automation(processor_id, recv.url("/rot"))
        old = auto["secret"]
        api.send_message(processor_id, {"before": "rotation"})
        wait_for("pre-rotation call", lambda: len(recv.snapshot()) == 1)

        rotated = api.rotate_secret(auto["id"])
        new = rotated["secret"]
        assert new.startswith("whsec_") and new != old
        assert rotated["previous_secret_expires_at"]

        pre = recv.snapshot()[0]
        Webhook(old).verify(pre.body, pre.headers)
        with pytest.raises(WebhookVerificationError):
            Webhook(new).verify(pre.body, pre.headers)

        api.send_message(processor_id, {"after": "rotation"})
        wait_for("post-rotation call", lambda: len(recv.snapshot()) == 2)
        post = recv.snapshot()[1]
        assert len([s for s in header(post, "webhook-signature").split(" ") if s.startswith("v1,")]) >= 2
        assert Webhook(new).verify(post.body, post.headers) == {"after": "rotation"}
        assert Webhook(old).verify(post.body, post.headers) == {"after": "rotation"}

        # A rerun of the pre-rotation log is signed with both too.
        first_log = api.logs(f"&automation_id={auto['id']}")[0]
        assert client.processors.automations.logs.rerun(first_log["id"]).status_code == 200
        rerun_call = recv.snapshot()[2]
        assert Webhook(new).verify(rerun_call.body, rerun_call.headers) == {"before": "rotation"}
        assert Webhook(old).verify(rerun_call.body, rerun_call.headers) == {"before": "rotation"}
    finally:
        recv.stop()


def test_async_client(base_url: str, api_key: str, scenario: Scenario) -> None:
    async def go() -> None:
        aclient = AsyncUiForm(api_key=api_key, base_url=base_url, max_retries=0)
        page = await aclient.processors.automations.logs.list(automation_id=scenario.ok["id"], limit=100, order="asc")
        assert isinstance(page, ListLogs)
        assert [log.id for log in page.data] == scenario.ok_log_ids
        got = await aclient.processors.automations.logs.get(scenario.ok_log_ids[0])
        assert isinstance(got, AutomationLog)
        assert got.id == scenario.ok_log_ids[0]
        assert got.external_request_log.status_code == 200

    asyncio.run(go())


def test_async_rerun(base_url: str, api_key: str, api: Api) -> None:
    recv = receiver(200)
    try:
        processor_id = unique("proc_async")
        auto = api.create_automation(processor_id, recv.url("/a"))
        api.send_message(processor_id, {"async": True})
        log = wait_for("log", lambda: api.logs(f"&automation_id={auto['id']}"))[0]

        async def go() -> ExternalRequestLog:
            aclient = AsyncUiForm(api_key=api_key, base_url=base_url, max_retries=0)
            return await aclient.processors.automations.logs.rerun(log["id"])

        result = asyncio.run(go())
        assert isinstance(result, ExternalRequestLog)
        assert result.status_code == 200
        assert len(recv.snapshot()) == 2
    finally:
        recv.stop()


def test_test_webhook_and_endpoint_get(client: UiForm, api: Api) -> None:
    recv = receiver(200)
    try:
        processor_id = unique("proc_test_hook")
        auto = api.create_automation(processor_id, recv.url("/sample"), name="sample")

        endpoint = client.processors.automations.endpoints.get(auto["id"])
        assert isinstance(endpoint, Endpoint)
        assert endpoint.object == "automation.endpoint"
        assert endpoint.id == auto["id"]
        assert endpoint.name == "sample"
        assert endpoint.processor_id == processor_id
        assert str(endpoint.webhook_url) == recv.url("/sample")

        log = client.processors.automations.tests.webhook(auto["id"], verbose=False)
        assert isinstance(log, AutomationLog)
        assert log.automation_snapshot.id == auto["id"]
        assert log.external_request_log is not None
        assert log.external_request_log.status_code == 200
        calls = recv.snapshot()
        assert len(calls) == 1
        # The sample call is a WebhookRequest the SDK parses, signed like any delivery.
        sample = Webhook(auto["secret"]).verify(calls[0].body, calls[0].headers)
        WebhookRequest.model_validate(sample)
        assert client.processors.automations.logs.get(log.id).id == log.id
    finally:
        recv.stop()


def test_errors_surface_as_sdk_errors(base_url: str, client: UiForm) -> None:
    with pytest.raises(RuntimeError, match=r"\(404\)"):
        client.processors.automations.logs.get("log_auto_doesnotexist")
    with pytest.raises(RuntimeError, match=r"\(404\)"):
        client.processors.automations.logs.rerun("log_auto_doesnotexist")
    stranger = UiForm(api_key="not-the-key-0123456789", base_url=base_url, max_retries=0)
    with pytest.raises(RuntimeError, match=r"\(401\)"):
        stranger.processors.automations.logs.list()
    with pytest.raises(RuntimeError, match=r"\(4\d\d\)"):
        client.processors.automations.logs.list(after="not-a-cursor")
