//! The authorization matrix (issue 16): every operation of the OpenAPI document × every kind of
//! caller, each cell the status the server must answer. The operations come from the document
//! the server serves, so a route added without a row here fails this test, as does a row for a
//! route that is gone, and a status a cell expects that the document does not list.
//!
//! Columns (a token's scope is prod unless it says otherwise):
//!
//! | column | caller |
//! | --- | --- |
//! | `A`  | the bootstrap admin token, scoped to every environment (`*`) |
//! | `E+` | an admin token scoped to prod, touching prod |
//! | `E-` | the same token touching staging |
//! | `V` `Ed` `Rl` `Ap` | a person's admin token for prod holding one role (viewer, editor, releaser, approver), touching prod |
//! | `S+` / `S-` | a server-sdk token for prod, touching prod / staging |
//! | `C+` / `C-` | a client-sdk token for prod, touching prod / staging |
//! | `R`  | a revoked admin token for every environment (used once before its revocation) |
//! | `N`  | no token |
//!
//! A row whose expectation has `-` in the `-` columns is not bound to an environment (the same
//! request for every scope): those cells are not sent. Environment-bound rows touch prod in the
//! `A`, `R` and `N` columns. Each cell that could change something has its own object (flag,
//! plan, rollout, token…) prepared beforehand, so the cells run concurrently and in any order;
//! only the freeze, which would hold every rollout start, is driven after the rest.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use futures_util::StreamExt;
use serde_json::{Value, json};
use tower::ServiceExt;
use wavegate_testkit::fixtures::Plan;

use crate::support::{ADMIN, TestApp, spawn_app};

/// The columns, in the order the expectations list them: title, tag (names each cell's own
/// objects), whether it touches another environment than its token's.
const COLUMNS: [(&str, &str, bool); 13] = [
    ("A", "a", false),
    ("E+", "eo", false),
    ("E-", "ex", true),
    ("V", "vw", false),
    ("Ed", "ed", false),
    ("Rl", "rl", false),
    ("Ap", "ap", false),
    ("S+", "so", false),
    ("S-", "sx", true),
    ("C+", "co", false),
    ("C-", "cx", true),
    ("R", "r", false),
    ("N", "n", false),
];

/// Concurrent requests at most (SQLite serialises the writes; the pool waits at most a second).
const CONCURRENCY: usize = 8;

/// What a cell is asked in: the environment it touches, its tag, and the prepared fixtures.
struct Cell<'a> {
    env: &'static str,
    t: &'static str,
    fx: &'a Fixtures,
}

/// One request.
struct Req {
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// Server-sent events: only the status is read.
    endless: bool,
}

impl Req {
    fn new(method: Method, path: impl Into<String>) -> Req {
        Req { method, path: path.into(), headers: Vec::new(), body: Vec::new(), endless: false }
    }

    fn json(mut self, body: Value) -> Req {
        self.headers.push(("content-type", "application/json".into()));
        self.body = serde_json::to_vec(&body).unwrap();
        self
    }

    fn yaml(mut self, text: &str) -> Req {
        self.headers.push(("content-type", "application/yaml".into()));
        self.body = text.as_bytes().to_vec();
        self
    }

    /// Names the environment (the protocols and events read it from this header).
    fn env(mut self, env: &str) -> Req {
        self.headers.push(("x-wavegate-environment", env.into()));
        self
    }

    fn endless(mut self) -> Req {
        self.endless = true;
        self
    }
}

fn get(path: impl Into<String>) -> Req {
    Req::new(Method::GET, path)
}

fn post(path: impl Into<String>, body: Value) -> Req {
    Req::new(Method::POST, path).json(body)
}

fn put(path: impl Into<String>, body: Value) -> Req {
    Req::new(Method::PUT, path).json(body)
}

fn delete(path: impl Into<String>) -> Req {
    Req::new(Method::DELETE, path)
}

/// One operation: its method and documented path, the statuses per column, and the request a
/// cell sends.
struct Row {
    method: &'static str,
    path: &'static str,
    expect: &'static str,
    build: fn(&Cell) -> Req,
}

macro_rules! rows {
    ($($method:ident $path:literal $expect:literal => $build:expr;)*) => {
        vec![$(Row { method: stringify!($method), path: $path, expect: $expect, build: $build }),*]
    };
}

/// A boolean flag enabled in prod and staging.
fn flag(default: &str) -> Value {
    json!({"variants": {"on": true, "off": false}, "default": default,
           "environments": {"prod": {"enabled": true}, "staging": {"enabled": true}}})
}

/// `flag("off")` switched off in `env`: a change to that environment alone.
fn flag_off_in(env: &str) -> Value {
    let mut f = flag("off");
    f["environments"][env]["enabled"] = json!(false);
    f
}

const GUARDRAIL: &str = "guardrails:
  - { name: errors, metric: error, comparison: absolute, tolerance: 0.05, mde: 0.05, min_sample: 50, action: rollback }
runbook: { errors: look }
adoption: { cohorts: [country], key_task: order_placed }
";

/// A plan `name` of `flag` in `env` with one guardrail, tracking adoption, requested by someone
/// who issued none of the callers' tokens (so scorecard sign-offs are theirs to make).
fn plan(name: &str, flag: &str, env: &str) -> String {
    let plan = Plan::new(name, flag).environment(env).owners("{ requester: release-lead }");
    plan.section(GUARDRAIL).to_string()
}

/// The operations, each with its expected statuses per column:
/// `A  E+ E- V  Ed Rl Ap S+ S- C+ C- R  N`.
fn rows() -> Vec<Row> {
    rows! {
        // ---------- meta and the dashboard's files: public ----------
        GET "/healthz"                  "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/healthz");
        GET "/readyz"                   "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/readyz");
        GET "/metrics"                  "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/metrics");
        GET "/api/v1/openapi.json"      "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/api/v1/openapi.json");
        GET "/api/v1/schemas/plan.json" "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/api/v1/schemas/plan.json");
        GET "/"                         "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/");
        GET "/assets/app.js"            "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/assets/app.js");
        GET "/assets/app.css"           "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/assets/app.css");
        GET "/api/v1/whoami"            "200 200 - 200 200 200 200 200 - 200 - 401 401" => |_| get("/api/v1/whoami");

        // ---------- sign-in (this server has no identity provider: tokens only) ----------
        GET "/auth/config"     "200 200 - 200 200 200 200 200 - 200 - 200 200" => |_| get("/auth/config");
        GET "/auth/login"      "404 404 - 404 404 404 404 404 - 404 - 404 404" => |_| get("/auth/login");
        GET "/auth/callback"   "404 404 - 404 404 404 404 404 - 404 - 404 404" => |_| get("/auth/callback?code=c&state=s");
        POST "/auth/cli/token" "404 404 - 404 404 404 404 404 - 404 - 404 404" =>
            |_| post("/auth/cli/token", json!({"code": "c", "verifier": "v"}));
        POST "/auth/logout"    "409 409 - 409 409 409 409 409 - 409 - 401 401" => |_| post("/auth/logout", Value::Null);

        // ---------- environments ----------
        GET "/api/v1/environments"  "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/environments");
        POST "/api/v1/environments" "201 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post("/api/v1/environments", json!({"name": format!("env-{}", c.t)}));

        // ---------- flags ----------
        GET "/api/v1/flags"                               "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/flags");
        GET "/api/v1/flags/{key}"                         "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/flags/shared");
        GET "/api/v1/flags/{key}/versions"                "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/flags/shared/versions");
        GET "/api/v1/flags/{key}/versions/{version}"      "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/flags/shared/versions/1");
        GET "/api/v1/flags/{key}/diff"                    "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/flags/shared/diff?from=1");
        PUT "/api/v1/flags/{key}"                 "200 200 403 403 200 403 403 403 403 403 403 401 401" =>
            |c| put(format!("/api/v1/flags/put-{}", c.t), flag_off_in(c.env));
        POST "/api/v1/flags/{key}/revert"         "200 200 403 403 200 403 403 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/flags/rev-{}/revert", c.t), json!({"version": 1}));
        POST "/api/v1/flags/{key}/check"                  "200 200 - 403 200 403 403 403 - 403 - 401 401" =>
            |_| Req::new(Method::POST, "/api/v1/flags/checked/check").yaml(&flag("on").to_string());
        POST "/api/v1/flags/{key}/archive"                "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post(format!("/api/v1/flags/arch-{}/archive", c.t), Value::Null);
        POST "/api/v1/flags/{key}/unarchive"              "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post(format!("/api/v1/flags/unarch-{}/unarchive", c.t), Value::Null);
        POST "/api/v1/apply"                      "200 200 403 403 200 403 403 403 403 403 403 401 401" =>
            |c| post("/api/v1/apply", json!({"flags": {format!("app-{}", c.t): flag_off_in(c.env)}}));

        // ---------- segments ----------
        GET "/api/v1/segments"                            "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/segments");
        GET "/api/v1/segments/{key}"                      "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/segments/seg");
        GET "/api/v1/segments/{key}/versions"             "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/segments/seg/versions");
        GET "/api/v1/segments/{key}/versions/{version}"   "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/segments/seg/versions/1");
        GET "/api/v1/segments/{key}/diff"                 "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/segments/seg/diff?from=1");
        PUT "/api/v1/segments/{key}"                      "201 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| put(format!("/api/v1/segments/sput-{}", c.t), json!({"keys": ["u9"]}));
        POST "/api/v1/segments/{key}/check"               "200 200 - 403 200 403 403 403 - 403 - 401 401" =>
            |_| Req::new(Method::POST, "/api/v1/segments/checked/check").yaml("keys: [u1]");
        POST "/api/v1/segments/{key}/revert"              "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post(format!("/api/v1/segments/srev-{}/revert", c.t), json!({"version": 1}));
        POST "/api/v1/segments/{key}/archive"             "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post(format!("/api/v1/segments/sarch-{}/archive", c.t), Value::Null);
        POST "/api/v1/segments/{key}/unarchive"           "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| post(format!("/api/v1/segments/sunarch-{}/unarchive", c.t), Value::Null);

        // ---------- tokens, audit, backup ----------
        GET "/api/v1/tokens"                              "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/tokens");
        POST "/api/v1/tokens"                     "201 201 403 403 403 403 403 403 403 403 403 401 401" =>
            |c| post("/api/v1/tokens", json!({"kind": "client-sdk", "environments": [c.env]}));
        DELETE "/api/v1/tokens/{id}"              "200 200 403 403 403 403 403 403 403 403 403 401 401" =>
            |c| delete(format!("/api/v1/tokens/{}", c.fx.victims[c.t]));
        GET "/api/v1/audit"                               "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/audit");
        GET "/api/v1/audit/verify"                        "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/audit/verify");
        GET "/api/v1/audit/checkpoint"                    "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/audit/checkpoint");
        GET "/api/v1/backup"                              "200 403 - 403 403 403 403 403 - 403 - 401 401" => |_| get("/api/v1/backup");

        // ---------- plans, drills, scorecards ----------
        POST "/api/v1/plans/lint"                 "200 200 - 200 200 200 200 403 - 403 - 401 401" =>
            |_| Req::new(Method::POST, "/api/v1/plans/lint").yaml(&plan("lint", "shared", "prod"));
        GET "/api/v1/plans"                               "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/plans");
        POST "/api/v1/plans"                      "201 201 403 403 201 403 403 403 403 403 403 401 401" =>
            |c| Req::new(Method::POST, "/api/v1/plans").yaml(&plan(&format!("new-{}", c.t), "shared", c.env));
        GET "/api/v1/plans/{name}"                "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/plans/plan-{}", c.env));
        GET "/api/v1/plans/{name}/versions"       "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/plans/plan-{}/versions", c.env));
        GET "/api/v1/plans/{name}/drills"         "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/plans/plan-{}/drills", c.env));
        POST "/api/v1/plans/{name}/drills"        "201 201 403 403 403 201 403 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/plans/plan-{}/drills", c.env),
                json!({"plan": c.fx.plans[c.env], "report": {"scenario": "matrix", "passed": true}}));
        POST "/api/v1/plans/{name}/drills/run"    "201 201 403 403 403 201 403 403 403 403 403 401 401" =>
            |c| Req::new(Method::POST, format!("/api/v1/plans/plan-{}/drills/run", c.env))
                .yaml("name: matrix\nrate: 20\nduration: 1h\nbaseline: { error_rate: 0.01, latency_ms: 100 }\n");
        GET "/api/v1/plans/{name}/scorecard"      "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/plans/plan-{}/scorecard", c.env));
        PUT "/api/v1/plans/{name}/scorecard/{item}" "200 200 403 403 403 403 200 403 403 403 403 401 401" =>
            |c| put(format!("/api/v1/plans/plan-{}/scorecard/baseline", c.env),
                json!({"status": "green", "note": c.t}));
        // ---------- releases ----------
        GET "/api/v1/releases"                    "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/releases");
        PUT "/api/v1/releases/{name}"             "200 200 403 403 200 403 403 403 403 403 403 401 401" =>
            |c| put(format!("/api/v1/releases/rel-put-{}", c.t), json!({"members": [{"plan": format!("plan-{}", c.env)}]}));
        GET "/api/v1/releases/{name}"             "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/releases/rel-{}", c.env));
        GET "/api/v1/releases/{name}/report"      "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/releases/rel-{}/report", c.env));
        POST "/api/v1/releases/{name}/start"      "201 201 403 403 403 201 403 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/releases/rel-start-{}/start", c.t), Value::Null);
        GET "/api/v1/plans/{name}/waivers"        "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/plans/waive-{}/waivers", c.env));
        PUT "/api/v1/plans/{name}/waivers/{finding}" "200 200 403 403 403 403 200 403 403 403 403 401 401" =>
            |c| put(format!("/api/v1/plans/waive-{}/waivers/CVE-2024-{}", c.env, c.t),
                json!({"reason": "matrix", "expires": "30d"}));
        DELETE "/api/v1/plans/{name}/waivers/{finding}" "200 200 403 403 403 403 200 403 403 403 403 401 401" =>
            |c| delete(format!("/api/v1/plans/waive-{}/waivers/GHSA-del-{}", c.env, c.t));

        // ---------- rollouts ----------
        GET "/api/v1/rollouts"                            "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/rollouts");
        POST "/api/v1/rollouts"                   "201 201 403 403 403 201 403 403 403 403 403 401 401" =>
            |c| post("/api/v1/rollouts", json!({"plan": format!("start-{}", c.t)}));
        GET "/api/v1/rollouts/{id}"               "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}", c.fx.rollouts[c.env]));
        GET "/api/v1/rollouts/{id}/verdicts"      "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/verdicts", c.fx.rollouts[c.env]));
        GET "/api/v1/rollouts/{id}/guardrails/{name}/chart" "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/guardrails/errors/chart", c.fx.rollouts[c.env]));
        GET "/api/v1/rollouts/{id}/report"        "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/report", c.fx.rollouts[c.env]));
        GET "/api/v1/rollouts/{id}/adoption"      "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/adoption", c.fx.rollouts[c.env]));
        GET "/api/v1/rollouts/{id}/contributions" "200 200 403 403 403 403 403 403 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/contributions", c.fx.rollouts[c.env]));
        POST "/api/v1/rollouts/{id}/{command}"    "200 200 403 403 403 200 403 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/rollouts/{}/pause", c.fx.commanded[c.t]), json!({"reason": "matrix"}));

        // ---------- events and the stream ----------
        POST "/api/v1/events"                     "202 202 403 403 403 403 403 202 403 403 403 401 401" =>
            |c| post("/api/v1/events", json!({"events": [{"type": "exposure", "flag": "shared",
                "variant": "on", "context": {"targetingKey": "u1"}}]})).env(c.env);
        POST "/v1/traces"                         "200 200 403 403 403 403 403 200 403 403 403 401 401" =>
            |c| post("/v1/traces", json!({})).env(c.env);
        GET "/api/v1/stream"                      "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/stream?environment={}", c.env)).endless();

        // ---------- governance ----------
        GET "/api/v1/freeze"                              "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/freeze");
        GET "/api/v1/schedules"                           "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/schedules");
        DELETE "/api/v1/schedules/{plan}"         "200 200 403 403 403 200 403 403 403 403 403 401 401" =>
            |c| delete(format!("/api/v1/schedules/sched-{}", c.t));

        // ---------- change requests (no environment is protected until the serial rows) ----------
        GET "/api/v1/changes"                     "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/changes");
        POST "/api/v1/changes"            "201 201 403 403 201 403 403 403 403 403 403 401 401" =>
            |c| post("/api/v1/changes", json!({"description": "matrix",
                "flags": {format!("crf-{}", c.t): flag_off_in(c.env)}}));
        GET "/api/v1/changes/{id}"        "200 200 403 200 200 200 200 403 403 403 403 401 401" =>
            |c| get(format!("/api/v1/changes/{}", c.fx.changes[c.env]));
        POST "/api/v1/changes/{id}/{action}" "200 200 403 403 200 200 200 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/changes/{}/comment", c.fx.changes[c.env]), json!({"text": c.t}));
        GET "/api/v1/protection"                  "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/protection");

        // ---------- notifications ----------
        GET "/api/v1/notifications/targets"               "200 403 - 403 403 403 403 403 - 403 - 401 401" => |_| get("/api/v1/notifications/targets");
        GET "/api/v1/notifications/targets/{name}"        "200 403 - 403 403 403 403 403 - 403 - 401 401" => |_| get("/api/v1/notifications/targets/tgt");
        PUT "/api/v1/notifications/targets/{name}"        "201 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| put(format!("/api/v1/notifications/targets/t-{}", c.t),
                json!({"audience": "manager", "url": "http://127.0.0.1:9/hook"}));
        DELETE "/api/v1/notifications/targets/{name}"     "204 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |c| delete(format!("/api/v1/notifications/targets/del-{}", c.t));
        POST "/api/v1/notifications/targets/{name}/test"  "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |_| post("/api/v1/notifications/targets/tgt/test", Value::Null);
        GET "/api/v1/notifications/deliveries"            "200 200 - 200 200 200 200 403 - 403 - 401 401" => |_| get("/api/v1/notifications/deliveries");

        // ---------- reports ----------
        GET "/api/v1/reports/dora"                        "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/reports/dora");
        GET "/api/v1/reports/adoption"                    "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/reports/adoption");
        GET "/api/v1/calendar"                            "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/calendar");
        POST "/api/v1/feedback"                   "201 201 403 201 201 201 201 201 403 403 403 401 401" =>
            |c| post("/api/v1/feedback", json!({"release": format!("pf-{} 1.0.0", c.env),
                "category": "ux", "cohort": "pilots", "sentiment": "neutral", "text": "fine"}));
        GET "/api/v1/feedback/digest"             "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/feedback/digest?release=pf-{}%201.0.0", c.env));
        GET "/api/v1/feedback"                    "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/feedback?release=pf-{}%201.0.0", c.env));
        POST "/api/v1/feedback/{id}/status"       "200 200 403 403 200 200 403 403 403 403 403 401 401" =>
            |c| post(format!("/api/v1/feedback/{}/status", c.fx.feedback[c.env]),
                json!({"status": "wont_fix", "note": c.t}));
        GET "/api/v1/rollouts/{id}/success"       "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/rollouts/{}/success", c.fx.rollouts[c.env]));

        // ---------- incidents (about a service, not an environment) ----------
        POST "/api/v1/incidents"                          "201 201 - 403 403 201 403 201 - 403 - 401 401" =>
            |c| post("/api/v1/incidents", json!({"severity": "high", "service": "pf", "title": c.t}));
        POST "/api/v1/incidents/pagerduty"                "201 201 - 403 403 201 403 201 - 403 - 401 401" =>
            |c| post("/api/v1/incidents/pagerduty?service=pf", json!({"event": {"event_type": "incident.triggered",
                "data": {"id": format!("PD{}", c.t), "title": "down", "urgency": "high"}}}));
        POST "/api/v1/incidents/opsgenie"                 "201 201 - 403 403 201 403 201 - 403 - 401 401" =>
            |c| post("/api/v1/incidents/opsgenie", json!({"action": "Create",
                "alert": {"alertId": format!("OG{}", c.t), "message": "down", "priority": "P2", "entity": "pf"}}));
        GET "/api/v1/incidents"                           "200 200 - 200 200 200 200 200 - 403 - 401 401" => |_| get("/api/v1/incidents");

        // ---------- deployment tooling gates (Flagger's token also read from its metadata) ----------
        GET "/api/v1/gates/argo/{plan}"                   "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get(format!("/api/v1/gates/argo/plan-{}", c.env));
        POST "/api/v1/gates/flagger/{plan}/{hook}"        "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| post(format!("/api/v1/gates/flagger/plan-{}/rollout", c.env), json!({"name": "podinfo", "namespace": "test"}));

        // ---------- OFREP ----------
        POST "/ofrep/v1/evaluate/flags/{key}"     "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| post("/ofrep/v1/evaluate/flags/shared", json!({"context": {"targetingKey": "u1"}})).env(c.env);
        POST "/ofrep/v1/evaluate/flags"           "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| post("/ofrep/v1/evaluate/flags", json!({"context": {"targetingKey": "u1"}})).env(c.env);
        GET "/ofrep/v1/events"                    "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| get(format!("/ofrep/v1/events?environment={}", c.env)).endless();

        // ---------- Unleash: the client API (rules) and the frontend API (answers) ----------
        GET "/api/client/features"                "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get("/api/client/features").env(c.env);
        GET "/api/client/features/{name}"         "200 200 403 200 200 200 200 200 403 403 403 401 401" =>
            |c| get("/api/client/features/shared").env(c.env);
        POST "/api/client/register"               "202 202 403 202 202 202 202 202 403 403 403 401 401" =>
            |c| post("/api/client/register", registration()).env(c.env);
        POST "/api/client/metrics"                "202 202 403 403 403 403 403 202 403 403 403 401 401" =>
            |c| post("/api/client/metrics", metrics()).env(c.env);
        GET "/api/frontend"                       "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| get("/api/frontend?userId=u1").env(c.env);
        POST "/api/frontend"                      "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| post("/api/frontend", json!({"context": {"userId": "u1"}})).env(c.env);
        GET "/api/frontend/all"                   "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| get("/api/frontend/all?userId=u1").env(c.env);
        POST "/api/frontend/all"                  "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| post("/api/frontend/all", json!({"context": {"userId": "u1"}})).env(c.env);
        GET "/api/frontend/features/{name}"       "200 200 403 200 200 200 200 200 403 200 403 401 401" =>
            |c| get("/api/frontend/features/shared?userId=u1").env(c.env);
        POST "/api/frontend/client/register"      "202 202 403 202 202 202 202 202 403 202 403 401 401" =>
            |c| post("/api/frontend/client/register", registration()).env(c.env);
        POST "/api/frontend/client/metrics"       "202 202 403 202 202 202 202 202 403 202 403 401 401" =>
            |c| post("/api/frontend/client/metrics", metrics()).env(c.env);
    }
}

/// Rows driven one at a time after all the others: the freeze holds every rollout start.
fn serial_rows() -> Vec<Row> {
    rows! {
        PUT "/api/v1/freeze"    "200 403 - 403 403 403 403 403 - 403 - 401 401" => |_| put("/api/v1/freeze", json!({"reason": "matrix"}));
        DELETE "/api/v1/freeze" "200 403 - 403 403 403 403 403 - 403 - 401 401" => |_| delete("/api/v1/freeze");
        PUT "/api/v1/environments/{name}/protection"    "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |_| put("/api/v1/environments/prod/protection", json!({"approvals": 1}));
        DELETE "/api/v1/environments/{name}/protection" "200 403 - 403 403 403 403 403 - 403 - 401 401" =>
            |_| delete("/api/v1/environments/prod/protection");
    }
}

fn registration() -> Value {
    json!({"appName": "matrix", "instanceId": "i-1", "sdkVersion": "unleash-client-python:6.9.1",
           "strategies": ["default"], "started": "2026-01-01T00:00:00Z", "interval": 15})
}

fn metrics() -> Value {
    json!({"appName": "matrix", "instanceId": "i-1", "bucket": {"start": "2026-01-01T00:00:00Z",
           "stop": "2026-01-01T00:01:00Z", "toggles": {}}})
}

/// What the cells act on, prepared as the all-environment admin.
struct Fixtures {
    /// Per column: the token it sends (none for `N`).
    tokens: [Option<String>; 13],
    /// The stored spec of `plan-prod` and `plan-staging` (for drills).
    plans: BTreeMap<&'static str, Value>,
    /// A running rollout per environment (of `plan-prod`, `plan-staging`).
    rollouts: BTreeMap<&'static str, String>,
    /// Per tag: a running rollout for the cell's command.
    commanded: BTreeMap<&'static str, String>,
    /// Per tag: a token for the cell to revoke.
    victims: BTreeMap<&'static str, String>,
    /// A change request per environment (changing `pf-<env>` there).
    changes: BTreeMap<&'static str, String>,
    /// A feedback item per environment (about `pf-<env> 1.0.0`, rolled out there).
    feedback: BTreeMap<&'static str, i64>,
}

/// The environment a column touches.
fn env_of(other: bool) -> &'static str {
    if other { "staging" } else { "prod" }
}

async fn ok(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let r = app.admin(method.clone(), path, body).await;
    assert!(r.status.is_success(), "fixture {method} {path}: {} {:?}", r.status, r.body);
    r.body
}

async fn mint(app: &TestApp, kind: &str, envs: &[&str], principal: &str) -> (String, String) {
    mint_with(app, json!({"kind": kind, "environments": envs, "principal": principal})).await
}

async fn mint_with(app: &TestApp, body: Value) -> (String, String) {
    let r = ok(app, Method::POST, "/api/v1/tokens", Some(body)).await;
    (r["token"].as_str().unwrap().to_owned(), r["id"].as_str().unwrap().to_owned())
}

async fn start(app: &TestApp, plan: &str) -> String {
    let r = ok(app, Method::POST, "/api/v1/rollouts", Some(json!({"plan": plan}))).await;
    r["id"].as_str().unwrap().to_owned()
}

impl Fixtures {
    async fn prepare(app: &TestApp) -> Fixtures {
        let (env_admin, _) = mint(app, "admin", &["prod"], "prod-admin").await;
        let (sdk, _) = mint(app, "server-sdk", &["prod"], "prod-sdk").await;
        let (client, _) = mint(app, "client-sdk", &["prod"], "prod-client").await;
        let mut people = Vec::new();
        for role in ["viewer", "editor", "releaser", "approver"] {
            let body = json!({"kind": "admin", "environments": ["prod"],
                "principal": format!("prod-{role}"), "roles": [{"role": role}]});
            people.push(Some(mint_with(app, body).await.0));
        }
        let [viewer, editor, releaser, approver] = people.try_into().unwrap();
        let (revoked, revoked_id) = mint(app, "admin", &["*"], "gone").await;
        // Used once (so a cache knows it), then revoked.
        let r = app.call(Method::GET, "/api/v1/whoami", Some(&revoked), None).await;
        assert_eq!(r.status, StatusCode::OK);
        ok(app, Method::DELETE, &format!("/api/v1/tokens/{revoked_id}"), None).await;

        // Flags and segments: shared ones to read, and each cell's own to change.
        let mut flags = serde_json::Map::new();
        let mut segments = serde_json::Map::new();
        flags.insert("shared".into(), flag("on"));
        for key in ["pf-prod", "pf-staging"] {
            flags.insert(key.into(), flag("off"));
        }
        segments.insert("seg".into(), json!({"keys": ["u1"]}));
        for (_, t, _) in COLUMNS {
            for prefix in ["put", "rev", "arch", "unarch", "app", "sf", "cf", "crf", "rsf"] {
                flags.insert(format!("{prefix}-{t}"), flag("off"));
            }
            for prefix in ["srev", "sarch", "sunarch"] {
                segments.insert(format!("{prefix}-{t}"), json!({"keys": ["u1"]}));
            }
        }
        let file = json!({"segments": segments, "flags": flags});
        ok(app, Method::POST, "/api/v1/apply", Some(file)).await;
        // Second versions: `shared`, and each revert target changed in its cell's environment.
        let mut shared = flag("on");
        shared["description"] = json!("on for everyone");
        let mut second =
            json!({"flags": {"shared": shared}, "segments": {"seg": {"keys": ["u1", "u2"]}}});
        for (_, t, other) in COLUMNS {
            second["flags"][format!("rev-{t}")] = flag_off_in(env_of(other));
            second["segments"][format!("srev-{t}")] = json!({"keys": ["u2"]});
        }
        ok(app, Method::POST, "/api/v1/apply", Some(second)).await;
        for (_, t, _) in COLUMNS {
            ok(app, Method::POST, &format!("/api/v1/flags/unarch-{t}/archive"), None).await;
            ok(app, Method::POST, &format!("/api/v1/segments/sunarch-{t}/archive"), None).await;
        }

        // Plans and rollouts: one to read per environment, and each cell's own to start,
        // command and unschedule.
        // The plans to read are written and started by people who are not callers, so that
        // scorecard sign-offs are the callers' to make (separation of duties).
        let mut plans = BTreeMap::new();
        let mut rollouts = BTreeMap::new();
        let (planner, _) = mint(app, "admin", &["*"], "planner").await;
        let (starter, _) = mint(app, "admin", &["*"], "starter").await;
        for env in ["prod", "staging"] {
            let name = format!("plan-{env}");
            let yaml = plan(&name, &format!("pf-{env}"), env);
            assert!(app.post_plan_as(&planner, &yaml).await.status.is_success());
            plans.insert(
                env,
                ok(app, Method::GET, &format!("/api/v1/plans/{name}"), None).await["spec"].clone(),
            );
            let body = json!({"plan": name});
            let r = app.call(Method::POST, "/api/v1/rollouts", Some(&starter), Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
            rollouts.insert(env, r.body["id"].as_str().unwrap().to_owned());
        }
        // Plans whose vulnerability waivers the callers may grant and revoke: the callers who
        // act as approvers are its approvers; each cell revokes its own waiver.
        for env in ["prod", "staging"] {
            let owners =
                "{ requester: release-lead, approvers: [admin, prod-admin, prod-approver] }";
            let yaml = Plan::new(&format!("waive-{env}"), &format!("pf-{env}"))
                .environment(env)
                .owners(owners)
                .to_string();
            assert!(app.post_plan_as(&planner, &yaml).await.status.is_success());
            for (_, t, _) in COLUMNS {
                let grant = json!({"reason": "fixture", "expires": "30d"});
                let path = format!("/api/v1/plans/waive-{env}/waivers/GHSA-del-{t}");
                ok(app, Method::PUT, &path, Some(grant)).await;
            }
        }
        // Releases: one to read per environment (of its plan), and each cell's own to start
        // (of a plan of its own).
        for env in ["prod", "staging"] {
            let doc = json!({"members": [{"plan": format!("plan-{env}")}]});
            ok(app, Method::PUT, &format!("/api/v1/releases/rel-{env}"), Some(doc)).await;
        }
        for (_, t, other) in COLUMNS {
            let plan = format!("rs-{t}");
            assert!(
                app.post_plan(&self::plan(&plan, &format!("rsf-{t}"), env_of(other)))
                    .await
                    .status
                    .is_success()
            );
            let doc = json!({"members": [{"plan": plan}]});
            ok(app, Method::PUT, &format!("/api/v1/releases/rel-start-{t}"), Some(doc)).await;
        }
        let mut commanded = BTreeMap::new();
        let mut victims = BTreeMap::new();
        let at = (app.state.clock.now() + chrono::Duration::days(2)).to_rfc3339();
        for (_, t, other) in COLUMNS {
            let env = env_of(other);
            for (name, flag) in [
                (format!("start-{t}"), format!("sf-{t}")),
                (format!("cmd-{t}"), format!("cf-{t}")),
                (format!("sched-{t}"), "shared".to_owned()),
            ] {
                assert!(app.post_plan(&plan(&name, &flag, env)).await.status.is_success());
            }
            commanded.insert(t, start(app, &format!("cmd-{t}")).await);
            let schedule = json!({"plan": format!("sched-{t}"), "start_at": at});
            ok(app, Method::POST, "/api/v1/rollouts", Some(schedule)).await;
            victims.insert(t, mint(app, "client-sdk", &[env], &format!("victim-{t}")).await.1);
            let target = json!({"audience": "manager", "url": "http://127.0.0.1:9/hook"});
            ok(app, Method::PUT, &format!("/api/v1/notifications/targets/del-{t}"), Some(target))
                .await;
        }
        let target = json!({"audience": "manager", "url": "http://127.0.0.1:9/hook"});
        ok(app, Method::PUT, "/api/v1/notifications/targets/tgt", Some(target)).await;
        let mut changes = BTreeMap::new();
        for env in ["prod", "staging"] {
            let cr = json!({"description": "matrix fixture",
                "flags": {format!("pf-{env}"): flag_off_in(env)}});
            let r = ok(app, Method::POST, "/api/v1/changes", Some(cr)).await;
            changes.insert(env, r["id"].as_str().unwrap().to_owned());
        }
        let mut feedback = BTreeMap::new();
        for env in ["prod", "staging"] {
            let item = json!({"release": format!("pf-{env} 1.0.0"), "category": "ux",
                "cohort": "pilots", "sentiment": "negative", "text": "slow", "blocker": true});
            let r = ok(app, Method::POST, "/api/v1/feedback", Some(item)).await;
            feedback.insert(env, r["ids"][0].as_i64().unwrap());
        }

        let admin = Some(ADMIN.to_owned());
        let tokens = [
            admin,
            Some(env_admin.clone()),
            Some(env_admin),
            viewer,
            editor,
            releaser,
            approver,
            Some(sdk.clone()),
            Some(sdk),
            Some(client.clone()),
            Some(client),
            Some(revoked),
            None,
        ];
        Fixtures { tokens, plans, rollouts, commanded, victims, changes, feedback }
    }
}

/// Sends one cell's request; its status.
async fn send(router: axum::Router, token: Option<&str>, req: Req) -> StatusCode {
    let mut builder = Request::builder().method(req.method).uri(&req.path);
    if let Some(t) = token {
        builder = builder.header("authorization", format!("Bearer {t}"));
    }
    for (k, v) in &req.headers {
        builder = builder.header(*k, v);
    }
    let resp = router.oneshot(builder.body(Body::from(req.body)).unwrap()).await.unwrap();
    let status = resp.status();
    if !req.endless || status != StatusCode::OK {
        // Read the answer to its end, as a client would (a handler's work may finish there).
        let _ = http_body_util::BodyExt::collect(resp.into_body()).await;
    }
    status
}

/// The expected statuses of a row, per column (`None`: not sent).
fn expectations(row: &Row) -> Vec<Option<u16>> {
    let cells: Vec<&str> = row.expect.split_whitespace().collect();
    assert_eq!(cells.len(), COLUMNS.len(), "{} {}: one status per column", row.method, row.path);
    let parsed: Vec<Option<u16>> = cells
        .iter()
        .map(|c| if *c == "-" { None } else { Some(c.parse().expect("a status or -")) })
        .collect();
    let bound = parsed.iter().all(Option::is_some);
    let unbound = COLUMNS.iter().zip(&parsed).all(|((_, _, other), e)| e.is_none() == *other);
    assert!(
        bound || unbound,
        "{} {}: `-` goes in every column touching another environment, or in none",
        row.method,
        row.path
    );
    parsed
}

/// The document's operations as (METHOD, path) with the statuses each documents.
fn documented(doc: &Value) -> BTreeMap<(String, String), BTreeSet<u16>> {
    let mut out = BTreeMap::new();
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let statuses = op["responses"]
                .as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.parse().ok())
                .collect();
            out.insert((method.to_uppercase(), path.clone()), statuses);
        }
    }
    out
}

/// Runs `rows`, `CONCURRENCY` cells at a time; each cell's (row, column, status answered).
async fn run(app: &TestApp, fx: &Fixtures, rows: &[Row], serial: bool) -> Vec<(usize, usize, u16)> {
    let mut cells = Vec::new();
    for (r, row) in rows.iter().enumerate() {
        for (c, expected) in expectations(row).into_iter().enumerate() {
            if expected.is_none() {
                continue;
            }
            let (_, t, other) = COLUMNS[c];
            let req = (row.build)(&Cell { env: env_of(other), t, fx });
            cells.push((r, c, req));
        }
    }
    let answers = futures_util::stream::iter(cells).map(|(r, c, req)| {
        let router = app.router.clone();
        let token = fx.tokens[c].clone();
        async move { (r, c, send(router, token.as_deref(), req).await.as_u16()) }
    });
    if serial {
        answers.buffered(1).collect().await
    } else {
        answers.buffer_unordered(CONCURRENCY).collect().await
    }
}

// See: issue 16 ("Done when": an authorization matrix in CI).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_every_kind_of_caller_as_the_matrix_says() {
    let started = Instant::now();
    let app = spawn_app().await;
    let doc = app.raw(Method::GET, "/api/v1/openapi.json", None, &[], vec![]).await.body;
    let documented = documented(&doc);
    let (rows, serial) = (rows(), serial_rows());

    // Every documented operation has exactly one row, and every row a documented operation
    // whose statuses include the ones the row expects.
    let mut listed = BTreeSet::new();
    let mut problems = Vec::new();
    for row in rows.iter().chain(&serial) {
        let key = (row.method.to_owned(), row.path.to_owned());
        if !listed.insert(key.clone()) {
            problems.push(format!("{} {}: two rows", row.method, row.path));
        }
        match documented.get(&key) {
            None => problems.push(format!(
                "{} {}: a row for an operation the document does not have",
                row.method, row.path
            )),
            Some(statuses) => {
                for s in expectations(row).into_iter().flatten() {
                    if !statuses.contains(&s) {
                        problems.push(format!(
                            "{} {}: expects {s}, which the document does not list",
                            row.method, row.path
                        ));
                    }
                }
            }
        }
    }
    for (method, path) in documented.keys() {
        if !listed.contains(&(method.clone(), path.clone())) {
            problems.push(format!("{method} {path}: no row in the authorization matrix"));
        }
    }
    assert!(problems.is_empty(), "the matrix and the document differ:\n{}", problems.join("\n"));

    let prepared = Instant::now();
    let fx = Fixtures::prepare(&app).await;
    let fixtures_took = prepared.elapsed();
    let mut answered = run(&app, &fx, &rows, false).await;
    let mut serial_answered = run(&app, &fx, &serial, true).await;
    let shift = rows.len();
    answered.extend(serial_answered.drain(..).map(|(r, c, s)| (r + shift, c, s)));

    let all: Vec<&Row> = rows.iter().chain(&serial).collect();
    let mut got: BTreeMap<(usize, usize), u16> = BTreeMap::new();
    for (r, c, s) in answered {
        got.insert((r, c), s);
    }
    let mut wrong = Vec::new();
    let mut table = String::new();
    let titles: Vec<String> = COLUMNS.iter().map(|(t, _, _)| format!("{t:>4}")).collect();
    table.push_str(&format!("{:<58}{}\n", "", titles.join("")));
    for (r, row) in all.iter().enumerate() {
        let mut line = format!("{:<58}", format!("{} {}", row.method, row.path));
        for (c, expected) in expectations(row).into_iter().enumerate() {
            match (expected, got.get(&(r, c))) {
                (None, _) => line.push_str("   -"),
                (Some(e), Some(&s)) if e == s => line.push_str(&format!("{s:>4}")),
                (Some(e), s) => {
                    let s = s.map_or("none".to_owned(), u16::to_string);
                    line.push_str(&format!("{:>4}", format!("!{s}")));
                    wrong.push(format!(
                        "{} {} [{}]: expected {e}, got {s}",
                        row.method, row.path, COLUMNS[c].0
                    ));
                }
            }
        }
        table.push_str(&line);
        table.push('\n');
    }
    let cells = got.len();
    eprintln!(
        "authorization matrix: {} operations × {} columns = {cells} cells sent ({} rows bound to an environment); fixtures {:.1?}, total {:.1?}\n{table}",
        all.len(),
        COLUMNS.len(),
        all.iter().filter(|r| expectations(r).iter().all(Option::is_some)).count(),
        fixtures_took,
        started.elapsed()
    );
    assert!(wrong.is_empty(), "cells that answered otherwise:\n{}\n\n{table}", wrong.join("\n"));
}
