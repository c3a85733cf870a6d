//! The world the auth matrix attacks: a relay with two workflow apps, and one real resource
//! of every kind (automation, message, delivery, log, recover job, keyed and signed sheets
//! with rows, an upload, a finished run), each carrying a canary string that no refused
//! answer may contain. Also: a concrete request for every route of the matrix.

use reqwest::Method;
use serde_json::{json, Value};

use crate::common::signing::new_secret;
pub(crate) use crate::common::signing::signed_headers;
use crate::common::{self, Receiver, Relay, KEY};
use crate::helpers::{rfc3339_ago, Resp, ENDPOINTS, LOGS};

/// App `alpha`'s key, and app `beta`'s.
pub(crate) const ALPHA_KEY: &str = "app-alpha-matrix-0123456789";
pub(crate) const BETA_KEY: &str = "app-beta-matrix-0123456789";
pub(crate) const SINK: &str = "/v1/integrations/google_sheets/webhook";
const BOUNDARY: &str = "matrixBOUNDARY7";

/// Two apps with different input forms; both accept document uploads. `alpha` echoes its
/// `codeword` input, so its run's outputs are a canary.
pub(crate) const APPS: &str = r#"
[[apps]]
id = "alpha"
api_keys = ["app-alpha-matrix-0123456789"]
[[apps.inputs]]
type = "text-input"
variable = "codeword"
required = true
[apps.file_upload]
enabled = true
allowed_types = ["document"]
number_limits = 2
transfer_methods = ["local_file"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "t"
type = "template-transform"
template = "said {{ c }}"
variables = [{ variable = "c", value_selector = ["start", "codeword"] }]
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{ variable = "text", value_selector = ["t", "output"] }]
[[apps.edges]]
source = "start"
target = "t"
[[apps.edges]]
source = "t"
target = "end"

[[apps]]
id = "beta"
api_keys = ["app-beta-matrix-0123456789"]
[[apps.inputs]]
type = "text-input"
variable = "topic"
required = false
[apps.file_upload]
enabled = true
allowed_types = ["document"]
number_limits = 2
transfer_methods = ["local_file"]
[[apps.nodes]]
id = "start"
type = "start"
[[apps.nodes]]
id = "end"
type = "end"
outputs = [{ variable = "topic", value_selector = ["start", "topic"] }]
[[apps.edges]]
source = "start"
target = "end"
"#;

/// Sends `method path` with exactly `headers` and an optional `(content type, body)`.
pub(crate) async fn send_raw(
    relay: &Relay,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<(String, Vec<u8>)>,
) -> Resp {
    let mut req = common::client().request(method, relay.url(path));
    for (name, value) in headers {
        req = req.header(*name, value);
    }
    if let Some((ctype, bytes)) = body {
        req = req.header("content-type", ctype).body(bytes);
    }
    let resp = req.send().await.expect("send");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("text");
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, headers, text, body }
}

/// A JSON body.
pub(crate) fn json_body(v: Value) -> Option<(String, Vec<u8>)> {
    Some(("application/json".into(), v.to_string().into_bytes()))
}

/// A multipart upload of a small PDF named `name` by `user`.
pub(crate) fn upload_body(name: &str, user: &str) -> Option<(String, Vec<u8>)> {
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"user\"\r\n\r\n{user}\r\n\
         --{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         Content-Type: application/pdf\r\n\r\n%PDF-1.4 upload-canary-4471\r\n--{BOUNDARY}--\r\n"
    );
    Some((format!("multipart/form-data; boundary={BOUNDARY}"), body.into_bytes()))
}

/// The relay and its resources.
pub(crate) struct Fixture {
    pub(crate) relay: Relay,
    pub(crate) receiver: Receiver,
    pub(crate) automation: String,
    pub(crate) secret: String,
    pub(crate) message: String,
    pub(crate) delivery: String,
    pub(crate) log: String,
    pub(crate) job: String,
    pub(crate) replay_job: String,
    pub(crate) keyed_sheet: String,
    pub(crate) signed_sheet: String,
    pub(crate) sheet_secret: String,
    pub(crate) run: String,
    pub(crate) task: String,
    pub(crate) user: String,
    /// A viewer key and an operator key (made through `/v1/keys`), and the viewer key's id.
    pub(crate) viewer_key: String,
    pub(crate) operator_key: String,
    pub(crate) key_id: String,
    /// Strings of these resources no refused answer may contain.
    pub(crate) canaries: Vec<String>,
}

pub(crate) const PROCESSOR: &str = "proc_matrix";
const ROW_CANARY: &str = "row-canary-5531";
const CODEWORD: &str = "codeword-canary-9902";

impl Fixture {
    pub(crate) async fn start() -> Self {
        let receiver = Receiver::ok().await;
        let relay = Relay::start(&format!("{}{APPS}", common::FAST_RETRIES));
        let a = relay.create_automation(PROCESSOR, &receiver.url("/hook")).await;
        let automation = a["id"].as_str().expect("automation id").to_string();
        let secret = a["secret"].as_str().expect("secret").to_string();
        // Disabled and enabled again, so its enable/disable trail has rows to show.
        for action in ["disable", "enable"] {
            let (status, j) =
                relay.post_json(&format!("{ENDPOINTS}/{automation}/{action}"), &json!({})).await;
            assert_eq!(status, 200, "{j}");
        }
        let msg = relay.send_message(PROCESSOR, json!({"m": "message-canary-3318"})).await;
        let message = msg["id"].as_str().expect("message id").to_string();
        let delivery = msg["delivery_ids"][0].as_str().expect("delivery id").to_string();
        let log =
            relay.wait_logs_exactly("", 1).await[0]["id"].as_str().expect("log id").to_string();
        let (status, j) =
            relay.post_json(&format!("{LOGS}/recover"), &json!({"since": rfc3339_ago(60)})).await;
        assert_eq!(status, 202, "{j}");
        let job = j["id"].as_str().expect("job id").to_string();
        let (status, j) = relay
            .post_json(
                &format!("{ENDPOINTS}/{automation}/replay-missing"),
                &json!({"since": rfc3339_ago(60)}),
            )
            .await;
        assert_eq!(status, 202, "{j}");
        let replay_job = j["id"].as_str().expect("replay job id").to_string();

        let sheet_secret = new_secret();
        let (s1, keyed) =
            relay.post_json("/v1/spreadsheets", &json!({"title": "Keyed-Title-QX17"})).await;
        let (s2, signed) = relay
            .post_json(
                "/v1/spreadsheets",
                &json!({"title": "Signed-Title-QX18", "webhook_secret": sheet_secret}),
            )
            .await;
        assert_eq!((s1, s2), (201, 201), "{keyed} {signed}");
        let keyed_sheet = keyed["spreadsheetId"].as_str().expect("id").to_string();
        let signed_sheet = signed["spreadsheetId"].as_str().expect("id").to_string();
        let row = json!({"canary": ROW_CANARY}).to_string().into_bytes();
        let r = send_raw(
            &relay,
            Method::POST,
            &sink_path(&keyed_sheet),
            &[("Api-Key", KEY.into())],
            Some(("application/json".into(), row.clone())),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let r = send_raw(
            &relay,
            Method::POST,
            &sink_path(&signed_sheet),
            &signed_headers(&sheet_secret, &row),
            Some(("application/json".into(), row)),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);

        let user = "alice-canary@example.com".to_string();
        let auth = [("Authorization", format!("Bearer {ALPHA_KEY}"))];
        let up = send_raw(
            &relay,
            Method::POST,
            "/v1/files/upload",
            &auth,
            upload_body("canary-doc-8812.pdf", &user),
        )
        .await;
        assert_eq!(up.status, 201, "{}", up.text);
        let upload = up.body["id"].as_str().expect("upload id").to_string();
        let run_body = json!({"inputs": {"codeword": CODEWORD}, "user": user,
            "response_mode": "blocking",
            "files": [{"type": "document", "transfer_method": "local_file", "upload_file_id": upload}]});
        let r =
            send_raw(&relay, Method::POST, "/v1/workflows/run", &auth, json_body(run_body)).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.body["data"]["status"], "succeeded", "{}", r.text);
        let run = r.body["workflow_run_id"].as_str().expect("run id").to_string();
        let task = r.body["task_id"].as_str().expect("task id").to_string();

        let mut made = Vec::new();
        for role in ["viewer", "operator"] {
            let (status, k) = relay
                .post_json(
                    "/v1/keys",
                    &json!({"name": format!("{role}-canary-6620"), "role": role}),
                )
                .await;
            assert_eq!(status, 201, "{k}");
            made.push((
                k["key"].as_str().expect("key").to_string(),
                k["id"].as_str().expect("id").to_string(),
            ));
        }
        let [(viewer_key, key_id), (operator_key, _)] = <[_; 2]>::try_from(made).expect("two");

        let canaries = [
            &automation,
            &secret,
            &message,
            &delivery,
            &log,
            &job,
            &replay_job,
            &keyed_sheet,
            &signed_sheet,
            &sheet_secret,
            &run,
            &task,
            &user,
            &upload,
            &key_id,
            &viewer_key,
            &operator_key,
        ]
        .iter()
        .map(|s| s.to_string())
        .chain(
            [
                "message-canary-3318",
                "Keyed-Title-QX17",
                "Signed-Title-QX18",
                ROW_CANARY,
                CODEWORD,
                "canary-doc-8812",
                "upload-canary-4471",
                KEY,
                ALPHA_KEY,
                BETA_KEY,
            ]
            .map(String::from),
        )
        .collect();
        Self {
            relay,
            receiver,
            automation,
            secret,
            message,
            delivery,
            log,
            job,
            replay_job,
            keyed_sheet,
            signed_sheet,
            sheet_secret,
            run,
            task,
            user,
            viewer_key,
            operator_key,
            key_id,
            canaries,
        }
    }

    /// The concrete path (placeholders filled with this fixture's ids, the queries a route
    /// needs added) and a body that would succeed with the right key.
    pub(crate) fn request(
        &self,
        method: &str,
        template: &str,
    ) -> (Method, String, Option<(String, Vec<u8>)>) {
        let id = if template.starts_with(ENDPOINTS) || template.contains("/tests/webhook/") {
            &self.automation
        } else if template.starts_with("/v1/deliveries") {
            &self.delivery
        } else if template.starts_with("/v1/messages") {
            &self.message
        } else if template.starts_with("/v1/spreadsheets") {
            &self.keyed_sheet
        } else if template.starts_with("/v1/keys") {
            &self.key_id
        } else {
            &self.run
        };
        let job = if template.contains("/replay-missing/") { &self.replay_job } else { &self.job };
        let mut path = template
            .replace("{id}", id)
            .replace("{log_id}", &self.log)
            .replace("{processor_id}", PROCESSOR)
            .replace("{job_id}", job)
            .replace("{task_id}", &self.task)
            .replace("{range}", "Sheet1");
        assert!(!path.contains('{'), "no value for a placeholder of {template}");
        let body = match (method, template) {
            ("GET" | "DELETE", _) => None,
            ("POST", ENDPOINTS) => json_body(
                json!({"name": "intruder", "processor_id": PROCESSOR, "webhook_url": self.receiver.url("/x")}),
            ),
            ("PUT", _) => json_body(json!({"name": "hacked"})),
            ("POST", "/v1/messages") => {
                json_body(json!({"processor_id": PROCESSOR, "payload": {"evil": true}}))
            }
            ("POST", t) if t.ends_with("/logs/recover") || t.ends_with("/replay-missing") => {
                json_body(json!({"since": rfc3339_ago(3600)}))
            }
            ("POST", "/v1/spreadsheets") => json_body(json!({"title": "intruder"})),
            ("POST", "/v1/keys") => json_body(json!({"name": "intruder", "role": "admin"})),
            ("POST", "/v1/workflows/run") => json_body(
                json!({"inputs": {"codeword": "x", "topic": "x"}, "user": self.user, "response_mode": "blocking"}),
            ),
            ("POST", "/v1/workflows/tasks/{task_id}/stop") => json_body(json!({"user": self.user})),
            ("POST", "/v1/files/upload") => upload_body("intruder.pdf", &self.user),
            ("POST", SINK) => json_body(json!({"canary": "intruder"})),
            ("POST", t)
                if t.ends_with("/rerun")
                    || t.ends_with("/rotate")
                    || t.ends_with("/enable")
                    || t.ends_with("/disable")
                    || t.ends_with("/cancel")
                    || t.contains("/tests/webhook/") =>
            {
                None
            }
            _ => panic!("no request for {method} {template}: add one to Fixture::request"),
        };
        if template == SINK {
            path = sink_path(&self.keyed_sheet);
        } else if template.ends_with("/export") {
            path.push_str("?format=csv");
        }
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        (method, path, body)
    }
}

/// The sink path of worksheet 0 of `sheet`.
pub(crate) fn sink_path(sheet: &str) -> String {
    format!("{SINK}?spreadsheet_id={sheet}&worksheet_id=0")
}
