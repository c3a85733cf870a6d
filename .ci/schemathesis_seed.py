"""Seeds a relay for .ci/schemathesis.sh and prints a schemathesis config (TOML) that gives
each operation's path parameters ids that exist, so that schemathesis reaches the success
answers of the routes of one thing (not only their 404s). A DELETE gets a thing of its own,
so that it cannot take another operation's away. Usage: seed.py BASE ADMIN_KEY APP_KEY."""

import json
import sys
import urllib.request

base, admin, app = sys.argv[1:4]


def call(method, path, body=None, key=None):
    headers = {"Content-Type": "application/json"}
    headers.update({"Authorization": f"Bearer {key}"} if key else {"Api-Key": admin})
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"null")


def automation(name):
    body = {"name": name, "processor_id": "st", "webhook_url": "https://example.com/h"}
    return call("POST", "/v1/processors/automations/endpoints", body)["id"]


endp, endp_gone = automation("kept"), automation("deleted")
receipt = call("POST", "/v1/messages", {"processor_id": "st", "payload": {"n": 1}})
msg_gone = call("POST", "/v1/messages", {"processor_id": "st", "payload": {"n": 2}})["id"]
log = call("POST", f"/v1/processors/automations/tests/webhook/{endp}")["id"]
recover = call("POST", "/v1/processors/automations/logs/recover", {"since": "1h"})["id"]
replay = call("POST", f"/v1/processors/automations/endpoints/{endp}/replay-missing",
              {"since": "1h"})["id"]
sheet = call("POST", "/v1/spreadsheets", {"title": "kept"})["spreadsheetId"]
sheet_gone = call("POST", "/v1/spreadsheets", {"title": "deleted"})["spreadsheetId"]
key_gone = call("POST", "/v1/keys", {"name": "revoked", "role": "viewer"})["id"]
run = call("POST", "/v1/workflows/run",
           {"inputs": {"name": "Ann"}, "user": "st", "response_mode": "blocking"}, key=app)

E = "/v1/processors/automations/endpoints"
L = "/v1/processors/automations/logs"
operations = [
    (E + "/{id}", "DELETE", {"path.id": endp_gone}),
    (E + "/{id}", None, {"path.id": endp}),
    (E + "/{id}/enable", None, {"path.id": endp}),
    (E + "/{id}/disable", None, {"path.id": endp}),
    (E + "/{id}/secret", None, {"path.id": endp}),
    (E + "/{id}/secret/rotate", None, {"path.id": endp}),
    (E + "/{id}/replay-missing", None, {"path.id": endp}),
    (E + "/{id}/replay-missing/{job_id}", None, {"path.id": endp, "path.job_id": replay}),
    ("/v1/processors/automations/tests/webhook/{id}", None, {"path.id": endp}),
    ("/v1/messages/{id}", None, {"path.id": receipt["id"]}),
    ("/v1/messages/{id}/content", None, {"path.id": msg_gone}),
    ("/v1/deliveries/{id}", None, {"path.id": receipt["delivery_ids"][0]}),
    (L + "/{log_id}", None, {"path.log_id": log}),
    (L + "/{log_id}/rerun", None, {"path.log_id": log}),
    ("/v1/processors/{processor_id}/automations/logs", None, {"path.processor_id": "st"}),
    ("/v1/processors/{processor_id}/automations/logs/{log_id}", None,
     {"path.processor_id": "st", "path.log_id": log}),
    ("/v1/processors/{processor_id}/automations/logs/{log_id}/rerun", None,
     {"path.processor_id": "st", "path.log_id": log}),
    (L + "/recover/{job_id}", None, {"path.job_id": recover}),
    (L + "/recover/{job_id}/cancel", None, {"path.job_id": recover}),
    ("/v1/spreadsheets/{id}", "DELETE", {"path.id": sheet_gone}),
    ("/v1/spreadsheets/{id}", None, {"path.id": sheet}),
    ("/v1/spreadsheets/{id}/signer", None, {"path.id": sheet}),
    ("/v1/spreadsheets/{id}/values/{range}", None, {"path.id": sheet, "path.range": "A1:C3"}),
    ("/v1/spreadsheets/{id}/export", None, {"path.id": sheet}),
    ("/v1/keys/{id}", None, {"path.id": key_gone}),
    ("/v1/workflows/run/{id}", None, {"path.id": run["workflow_run_id"]}),
    ("/v1/workflows/tasks/{task_id}/stop", None, {"path.task_id": run["task_id"]}),
]
for path, method, parameters in operations:
    print("[[operations]]")
    print(f"include-path = {json.dumps(path)}")
    if method:
        print(f"include-method = {json.dumps(method)}")
    else:
        print('exclude-method = "DELETE"' if path in (E + "/{id}", "/v1/spreadsheets/{id}") else "")
    pairs = ", ".join(f"{json.dumps(k)} = {json.dumps(v)}" for k, v in parameters.items())
    print(f"parameters = {{ {pairs} }}\n")
