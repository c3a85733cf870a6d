"""The real retab==0.0.49 SDK (processor-scoped automation logs,
/v1/processors/{processor_id}/automations/logs…) against hookrelay: list (filters, cursors),
get and rerun parse into retab's models, and logs of another processor are not visible.

Run through tests/sdk/run.sh, in the separate .venv-retab.
"""

from __future__ import annotations

import asyncio

import pytest
from conftest import Api, Receiver, header, unique, wait_for  # also patches typing.TypedDict

from retab import AsyncRetab, Retab
from retab.types.logs import AutomationLog, ExternalRequestLog, ListLogs
from standardwebhooks.webhooks import Webhook


@pytest.fixture(scope="session")
def client(base_url: str, api_key: str) -> Retab:
    return Retab(api_key=api_key, base_url=base_url, max_retries=0)


class Scenario:
    """Two processors; `mine` has an automation answering 200 and one answering 500."""

    def __init__(self, api: Api) -> None:
        self.processor_id = unique("proc_retab")
        self.other_processor_id = unique("proc_retab_other")
        self.ok_receiver = Receiver(status=200).start()
        self.bad_receiver = Receiver(status=500).start()
        self.ok = api.create_automation(self.processor_id, self.ok_receiver.url("/ok"), name="ok")
        self.bad = api.create_automation(self.processor_id, self.bad_receiver.url("/bad"), name="bad")
        self.other = api.create_automation(self.other_processor_id, self.ok_receiver.url("/other"), name="other")
        self.payloads: dict[str, dict] = {}
        for n in range(4):
            answer = api.send_message(self.processor_id, {"n": n, "sdk": "retab"})
            self.payloads[answer["id"]] = {"n": n, "sdk": "retab"}
        api.send_message(self.other_processor_id, {"other": True})
        ok_id, bad_id, other_id = self.ok["id"], self.bad["id"], self.other["id"]
        wait_for("ok logs", lambda: len(api.logs(f"&automation_id={ok_id}")) == 4)
        wait_for("bad logs", lambda: len(api.logs(f"&automation_id={bad_id}")) >= 4)
        wait_for("other log", lambda: len(api.logs(f"&automation_id={other_id}")) == 1)
        self.ok_log_ids = [log["id"] for log in api.logs(f"&automation_id={ok_id}")]
        self.other_log_id = api.logs(f"&automation_id={other_id}")[0]["id"]


@pytest.fixture(scope="module")
def scenario(api: Api):
    s = Scenario(api)
    yield s
    s.ok_receiver.stop()
    s.bad_receiver.stop()


def test_list_is_scoped_and_parses(client: Retab, scenario: Scenario) -> None:
    logs = client.processors.automations.logs
    page = logs.list(scenario.processor_id, automation_id=scenario.ok["id"], limit=100, order="asc")
    assert isinstance(page, ListLogs)
    assert [log.id for log in page.data] == scenario.ok_log_ids
    for log in page.data:
        assert isinstance(log, AutomationLog)
        assert log.automation_snapshot.processor_id == scenario.processor_id
        assert log.automation_snapshot.webhook_url == scenario.ok_receiver.url("/ok")
        erl = log.external_request_log
        assert isinstance(erl, ExternalRequestLog)
        assert erl.status_code == 200
        assert erl.webhook_url == scenario.ok_receiver.url("/ok")
        message_id = {k.lower(): v for k, v in erl.request_headers.items()}["webhook-id"]
        assert erl.request_body == scenario.payloads[message_id]

    everything = logs.list(scenario.processor_id, limit=100).data
    assert all(log.automation_snapshot.processor_id == scenario.processor_id for log in everything)
    assert scenario.other_log_id not in {log.id for log in everything}
    assert {scenario.ok["id"], scenario.bad["id"]} == {log.automation_snapshot.id for log in everything}

    assert len(logs.list(scenario.processor_id, status_class="2xx", limit=100).data) == 4
    failed = logs.list(scenario.processor_id, status_class="5xx", limit=100).data
    assert len(failed) >= 4 and all(log.external_request_log.status_code == 500 for log in failed)
    assert logs.list(scenario.processor_id, status_code=404).data == []
    by_url = logs.list(scenario.processor_id, webhook_url=scenario.ok_receiver.url("/ok"), limit=100, order="asc")
    assert [log.id for log in by_url.data] == scenario.ok_log_ids
    # The other processor's automation does not leak into this processor's list.
    assert logs.list(scenario.processor_id, automation_id=scenario.other["id"]).data == []
    assert [log.id for log in logs.list(scenario.other_processor_id).data] == [scenario.other_log_id]
    # Every argument `logs.list` has (the relay refuses unknown query parameters).
    every = logs.list(
        scenario.processor_id, after=scenario.ok_log_ids[0], limit=100, order="asc", status_code=200,
        status_class="2xx", automation_id=scenario.ok["id"], webhook_url=scenario.ok_receiver.url("/ok"),
        schema_id="s", schema_data_id="d",
    )
    assert [log.id for log in every.data] == scenario.ok_log_ids[1:]


def test_cursor_pagination(client: Retab, scenario: Scenario) -> None:
    logs = client.processors.automations.logs
    ids = scenario.ok_log_ids
    seen = []
    after = None
    while True:
        page = logs.list(scenario.processor_id, automation_id=scenario.ok["id"], limit=3, order="asc", after=after)
        seen.append([log.id for log in page.data])
        after = page.list_metadata.after
        if after is None:
            break
    assert seen == [ids[0:3], ids[3:4]]
    back = logs.list(scenario.processor_id, automation_id=scenario.ok["id"], limit=3, order="asc", before=ids[3])
    assert [log.id for log in back.data] == ids[0:3]
    assert back.list_metadata.before is None and back.list_metadata.after == ids[2]


def test_get_is_scoped(client: Retab, scenario: Scenario) -> None:
    logs = client.processors.automations.logs
    got = logs.get(scenario.processor_id, scenario.ok_log_ids[0])
    assert isinstance(got, AutomationLog)
    assert got.id == scenario.ok_log_ids[0]
    assert got.external_request_log.status_code == 200
    # A log of another processor is not found under this one.
    with pytest.raises(RuntimeError, match=r"\(404\)"):
        logs.get(scenario.processor_id, scenario.other_log_id)
    assert logs.get(scenario.other_processor_id, scenario.other_log_id).id == scenario.other_log_id


def test_rerun(client: Retab, api: Api) -> None:
    recv = Receiver(status=200).start()
    try:
        processor_id = unique("proc_retab_rerun")
        auto = api.create_automation(processor_id, recv.url("/r"))
        api.send_message(processor_id, {"rerun": "me"})
        log = wait_for("log", lambda: api.logs(f"&automation_id={auto['id']}"))[0]

        result = client.processors.automations.logs.rerun(processor_id, log["id"])
        assert isinstance(result, ExternalRequestLog)
        assert result.status_code == 200
        assert result.request_body == {"rerun": "me"}
        assert result.webhook_url == recv.url("/r")
        calls = recv.snapshot()
        assert len(calls) == 2
        assert header(calls[0], "webhook-id") == header(calls[1], "webhook-id")
        assert Webhook(auto["secret"]).verify(calls[1].body, calls[1].headers) == {"rerun": "me"}
        assert len(client.processors.automations.logs.list(processor_id).data) == 2

        with pytest.raises(RuntimeError, match=r"\(404\)"):
            client.processors.automations.logs.rerun(unique("proc_elsewhere"), log["id"])
        assert len(recv.snapshot()) == 2, "a refused rerun sends nothing"
    finally:
        recv.stop()


def test_async_client(base_url: str, api_key: str, scenario: Scenario) -> None:
    async def go() -> None:
        aclient = AsyncRetab(api_key=api_key, base_url=base_url, max_retries=0)
        page = await aclient.processors.automations.logs.list(scenario.processor_id, automation_id=scenario.ok["id"], order="asc")
        assert [log.id for log in page.data] == scenario.ok_log_ids
        got = await aclient.processors.automations.logs.get(scenario.processor_id, scenario.ok_log_ids[1])
        assert got.id == scenario.ok_log_ids[1]

    asyncio.run(go())
