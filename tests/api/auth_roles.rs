//! Issue 13: every route × every caller — no key, an app key, a viewer, an operator and an
//! admin key — read from the route table (through [`MATRIX`], which the router's table must
//! match), so a route added without its role fails here too. A key whose role is below the
//! route's gets 403 `insufficient_role` naming the role needed, shows nothing and does
//! nothing; a key that may use the route gets past the check: its GETs answer 200 with the
//! data, its writes (sent to an id that does not exist, or with a field the route does not
//! take, so that they change nothing) reach the handler's own 404 or 400.

use hookrelay::auth::Role;
use reqwest::Method;
use serde_json::json;

use crate::auth_fixture::{json_body, send_raw, Fixture, ALPHA_KEY};
use crate::auth_routes::{Kind, MATRIX};
use crate::common::KEY;
use crate::helpers::{assert_error, count_list, Headers, Resp, ENDPOINTS};
use crate::unknown_params::concrete;

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Caller {
    NoKey,
    App,
    Key(Role),
}

/// What a caller must get on a route.
#[derive(Debug, PartialEq)]
enum Expect {
    /// 401 `unauthorized`.
    Unauthorized,
    /// 403 `forbidden`: a key of the wrong kind.
    WrongKind,
    /// 403 `insufficient_role`, naming the role.
    Below(Role),
    /// Past the check.
    Served,
}

fn expect(kind: Kind, caller: Caller) -> Expect {
    match (kind, caller) {
        (Kind::Public, _) => Expect::Served,
        (_, Caller::NoKey) => Expect::Unauthorized,
        (Kind::Key(_), Caller::App) => Expect::WrongKind,
        (Kind::Key(needed), Caller::Key(role)) if role < needed => Expect::Below(needed),
        (Kind::Key(_), Caller::Key(_)) => Expect::Served,
        (Kind::App, Caller::App) => Expect::Served,
        (Kind::App, Caller::Key(_)) => Expect::WrongKind,
        // The sink takes an admin-role key (or a signature); any other key is just not one.
        (Kind::Sink, Caller::Key(Role::Admin)) => Expect::Served,
        (Kind::Sink, _) => Expect::Unauthorized,
    }
}

fn headers(fx: &Fixture, caller: Caller) -> Headers {
    let key = match caller {
        Caller::NoKey => return vec![],
        Caller::App => ALPHA_KEY,
        Caller::Key(Role::Viewer) => &fx.viewer_key,
        Caller::Key(Role::Operator) => &fx.operator_key,
        Caller::Key(Role::Admin) => KEY,
    };
    vec![("Authorization", format!("Bearer {key}"))]
}

/// A request that gets past the check and changes nothing: a GET as the fixture makes it
/// (real ids, so the data shows), a write to ids that do not exist (`x1`), with a field no
/// route takes; the sink gets the fixture's request (its row is counted below).
fn harmless(
    fx: &Fixture,
    method: &str,
    template: &str,
    kind: Kind,
) -> (Method, String, Option<(String, Vec<u8>)>) {
    if method == "GET" || kind == Kind::Sink {
        return fx.request(method, template);
    }
    let m = Method::from_bytes(method.as_bytes()).expect("method");
    (m, concrete(template), json_body(json!({"fooBar": 1})))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_role_as_its_row_says() {
    let fx = Fixture::start().await;
    let callers = [
        Caller::NoKey,
        Caller::App,
        Caller::Key(Role::Viewer),
        Caller::Key(Role::Operator),
        Caller::Key(Role::Admin),
    ];
    let automations = fx.relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    let messages = count_list(&fx.relay, "/v1/messages?limit=100").await;
    let jobs = count_list(&fx.relay, "/v1/processors/automations/logs/recover?limit=100").await;
    let mut refused_for_role = 0;
    for &(method, template, kind) in MATRIX {
        for caller in callers {
            let want = expect(kind, caller);
            let (m, path, body) = match want {
                Expect::Served => harmless(&fx, method, template, kind),
                _ => fx.request(method, template),
            };
            let r = send_raw(&fx.relay, m, &path, &headers(&fx, caller), body).await;
            let ctx = format!("{method} {path} as {caller:?}");
            check(&fx, &r, &want, method, &ctx);
            refused_for_role += usize::from(matches!(want, Expect::Below(_)));
        }
    }
    // viewer: 7 operator and 15 admin routes; operator: the 15 admin routes.
    assert_eq!(refused_for_role, 37);

    // Nothing a refused request asked for was done.
    let now = fx.relay.get_json(&format!("{ENDPOINTS}?limit=100")).await;
    assert_eq!(now["data"], automations["data"], "an automation changed");
    assert_eq!(count_list(&fx.relay, "/v1/messages?limit=100").await, messages);
    let jobs_now = count_list(&fx.relay, "/v1/processors/automations/logs/recover?limit=100").await;
    assert_eq!(jobs_now, jobs, "a refused recover started a job");
    let keys = fx.relay.get_json("/v1/keys").await;
    let revoked =
        keys["data"].as_array().expect("data").iter().filter(|k| !k["revoked_at"].is_null());
    assert_eq!(revoked.count(), 0, "{keys}");
    assert_eq!(keys["data"].as_array().map(Vec::len), Some(2), "a key was made: {keys}");
}

fn check(fx: &Fixture, r: &Resp, want: &Expect, method: &str, ctx: &str) {
    let code = match want {
        Expect::Served => {
            assert!(![401, 403].contains(&r.status), "{ctx}: refused: {}", r.text);
            if method == "GET" {
                assert_eq!(r.status, 200, "{ctx}: {}", r.text);
            } else {
                assert!([200, 400, 404].contains(&r.status), "{ctx}: {} {}", r.status, r.text);
            }
            return;
        }
        Expect::Unauthorized => (401, "unauthorized"),
        Expect::WrongKind => (403, "forbidden"),
        Expect::Below(_) => (403, "insufficient_role"),
    };
    assert_error(r, code.0, "", ctx);
    assert_eq!(r.body["code"], code.1, "{ctx}: {}", r.text);
    if let Expect::Below(needed) = want {
        let message = r.body["message"].as_str().unwrap_or("");
        assert!(message.contains(&format!("the {} role", needed.as_str())), "{ctx}: {message}");
    }
    for canary in &fx.canaries {
        assert!(!r.text.contains(canary.as_str()), "{ctx}: answer shows {canary:?}: {}", r.text);
    }
}
