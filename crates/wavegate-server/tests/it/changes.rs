//! Issue 19, items 4–6: change requests for protected environments, and the emergency path.
//! Direct edits of a protected environment are refused with the way forward; a change is
//! proposed, approved by distinct people other than its author, and applied only if nothing it
//! touches has moved; an emergency is applied at once and stays open until its post-incident
//! review; plan changes (runbooks and checks too) are reviewed like any other.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, Reply, TestApp, spawn_app};

async fn person(app: &TestApp, name: &str, role: &str) -> String {
    let body = json!({"kind": "admin", "environments": ["*"], "principal": name, "roles": [{"role": role}]});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

/// `checkout` switched off in prod (`off: true`) or on.
fn checkout(prod_enabled: bool, description: &str) -> Value {
    json!({"variants": {"on": true, "off": false}, "default": "off", "description": description,
           "environments": {"prod": {"enabled": prod_enabled}, "staging": {"enabled": true}}})
}

async fn act(app: &TestApp, token: &str, id: &str, action: &str, body: Value) -> Reply {
    app.call(Method::POST, &format!("/api/v1/changes/{id}/{action}"), Some(token), Some(body)).await
}

fn says(r: &Reply, status: StatusCode, text: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap_or_default();
    assert!(msg.contains(text), "{text:?} not in {msg:?}");
}

#[tokio::test]
async fn protected_environments_change_through_reviewed_requests_or_a_declared_emergency() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let put = json!({"flags": {"checkout": checkout(true, "v1")}});
    assert_eq!(app.admin(Method::POST, "/api/v1/apply", Some(put)).await.status, StatusCode::OK);
    let (erin, rita) =
        (person(&app, "erin", "editor").await, person(&app, "rita", "releaser").await);
    let (abe, cora) =
        (person(&app, "abe", "approver").await, person(&app, "cora", "approver").await);
    let viv = person(&app, "viv", "viewer").await;

    // Only an admin for every environment protects one.
    let protect = json!({"approvals": 2});
    let r = app
        .call(
            Method::PUT,
            "/api/v1/environments/prod/protection",
            Some(&erin),
            Some(protect.clone()),
        )
        .await;
    says(&r, StatusCode::FORBIDDEN, "needs the admin role");
    let r = app.admin(Method::PUT, "/api/v1/environments/prod/protection", Some(protect)).await;
    assert_eq!((r.status, r.body["environments"].clone()), (StatusCode::OK, json!({"prod": 2})));

    // Direct edits that touch prod are refused with the way forward; staging alone is not.
    let prod_off = checkout(false, "v1");
    let r =
        app.call(Method::PUT, "/api/v1/flags/checkout", Some(&erin), Some(prod_off.clone())).await;
    says(&r, StatusCode::CONFLICT, "prod is protected: propose this as a change request");
    let mut staging_off = checkout(true, "v1");
    staging_off["environments"]["staging"]["enabled"] = json!(false);
    let r = app.call(Method::PUT, "/api/v1/flags/checkout", Some(&erin), Some(staging_off)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let plan = Plan::new("p", "checkout").owners("{ requester: rita }");
    let r = app.post_plan_as(&erin, &plan.to_string()).await;
    says(&r, StatusCode::CONFLICT, "prod is protected");

    // Erin proposes switching checkout off in prod (staging stays as she left it).
    let mut prod_off = prod_off;
    prod_off["environments"]["staging"]["enabled"] = json!(false);
    let new = json!({"description": "switch checkout off in prod", "record": "CHG-1042",
                     "flags": {"checkout": prod_off}});
    let r = app.call(Method::POST, "/api/v1/changes", Some(&viv), Some(new.clone())).await;
    says(&r, StatusCode::FORBIDDEN, "needs the editor role in prod");
    let r = app.call(Method::POST, "/api/v1/changes", Some(&erin), Some(new.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let cr = r.body.clone();
    let id = cr["id"].as_str().unwrap().to_owned();
    assert_eq!((cr["state"].as_str(), cr["required_approvals"].as_u64()), (Some("open"), Some(2)));
    assert_eq!(
        (cr["protected"].clone(), cr["items"][0]["environments"].clone()),
        (json!(["prod"]), json!(["prod"]))
    );
    assert_eq!(cr["items"][0]["base_version"], 3);

    // Reviews: never the author; distinct people; a viewer does not comment.
    says(
        &act(&app, &erin, &id, "approve", json!({})).await,
        StatusCode::FORBIDDEN,
        "rule \"change-author\"",
    );
    says(
        &act(&app, &rita, &id, "approve", json!({})).await,
        StatusCode::FORBIDDEN,
        "needs the approver role",
    );
    assert_eq!(act(&app, &abe, &id, "approve", json!({})).await.body["state"], "open");
    says(
        &act(&app, &abe, &id, "approve", json!({})).await,
        StatusCode::CONFLICT,
        "abe already approved",
    );
    says(
        &act(&app, &erin, &id, "apply", json!({})).await,
        StatusCode::CONFLICT,
        "has 1 of the 2 approvals",
    );
    says(
        &act(&app, &viv, &id, "comment", json!({"text": "hm"})).await,
        StatusCode::FORBIDDEN,
        "commenting needs",
    );
    let r = act(&app, &rita, &id, "comment", json!({"text": "after the sale, please"})).await;
    assert_eq!(r.body["comments"][0]["by"], "rita", "{:?}", r.body);
    assert_eq!(act(&app, &cora, &id, "approve", json!({})).await.body["state"], "approved");

    // Meanwhile an incident: rita (a releaser) declares an emergency on the same flag.
    let mut hotfix = checkout(true, "hotfix");
    hotfix["environments"]["prod"]["enabled"] = json!(true);
    let emergency = json!({"description": "hotfix description", "flags": {"checkout": hotfix},
                           "emergency": "payments outage INC-7"});
    let r = app.call(Method::POST, "/api/v1/changes", Some(&erin), Some(emergency.clone())).await;
    says(&r, StatusCode::FORBIDDEN, "declaring an emergency needs the releaser role");
    let r = app.call(Method::POST, "/api/v1/changes", Some(&rita), Some(emergency)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let hot = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (r.body["state"].as_str(), r.body["awaiting_review"].as_bool()),
        (Some("applied"), Some(true))
    );
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["spec"]["description"], "hotfix", "applied at once");
    let open = app.admin(Method::GET, "/api/v1/changes?state=awaiting_review", None).await.body;
    assert_eq!(open.as_array().unwrap().len(), 1, "{open}");

    // Erin's change was proposed against the version before: applying it now is refused.
    says(
        &act(&app, &erin, &id, "apply", json!({})).await,
        StatusCode::CONFLICT,
        "moved since it was proposed",
    );
    assert_eq!(
        app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body["spec"]["description"],
        "hotfix"
    );

    // DORA counts it: rework, and a failed change.
    let dora = app.admin(Method::GET, "/api/v1/reports/dora?since=7d", None).await;
    assert_eq!(dora.status, StatusCode::OK, "{:?}", dora.body);
    let g = &dora.body["groups"][0];
    assert_eq!(
        (g["deployments"].as_u64(), g["rework_rate"]["value"].as_f64()),
        (Some(1), Some(1.0)),
        "{g}"
    );
    assert_eq!(g["change_fail_rate"]["value"], 1.0, "{g}");

    // The post-incident review: an approver other than the author, with a link and summary.
    let pm = json!({"link": "x", "summary": "y"});
    let r = act(&app, &rita, &hot, "review", pm.clone()).await;
    says(&r, StatusCode::FORBIDDEN, "rule \"change-author\"");
    says(&act(&app, &erin, &hot, "review", pm).await, StatusCode::FORBIDDEN, "approver role");
    let r = act(&app, &abe, &hot, "review", json!({"link": "https://wiki/pm/7"})).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("summary"))
    );
    let r = act(
        &app,
        &abe,
        &hot,
        "review",
        json!({"link": "https://wiki/pm/7", "summary": "retry storm"}),
    )
    .await;
    assert_eq!(r.body["awaiting_review"], false, "{:?}", r.body);
    let open = app.admin(Method::GET, "/api/v1/changes?state=awaiting_review", None).await.body;
    assert!(open.as_array().unwrap().is_empty());

    // Proposed again against today's version: reviewed and applied, in one step's audit.
    let again = app.call(Method::POST, "/api/v1/changes", Some(&erin), Some(new)).await.body;
    let again_id = again["id"].as_str().unwrap().to_owned();
    act(&app, &abe, &again_id, "approve", json!({})).await;
    act(&app, &cora, &again_id, "approve", json!({})).await;
    says(
        &act(&app, &rita, &again_id, "apply", json!({})).await,
        StatusCode::FORBIDDEN,
        "applied by its author",
    );
    let r = act(&app, &erin, &again_id, "apply", json!({})).await;
    assert_eq!(
        (r.status, r.body["state"].as_str()),
        (StatusCode::OK, Some("applied")),
        "{:?}",
        r.body
    );
    let flag = app.admin(Method::GET, "/api/v1/flags/checkout", None).await.body;
    assert_eq!(flag["spec"]["environments"]["prod"]["enabled"], false);
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=1000", None).await.body;
    let entries = audit.as_array().unwrap();
    let on_cr = |action: &str| {
        entries
            .iter()
            .filter(|e| {
                e["target"] == format!("setting:change.{again_id}")
                    && e["action"] == format!("setting.{action}")
            })
            .count()
    };
    assert_eq!((on_cr("propose"), on_cr("approve"), on_cr("apply")), (1, 2, 1));
    assert!(
        entries.iter().any(|e| e["target"] == "flag:checkout"
            && e["details"]["change_request"] == again_id.as_str())
    );

    // A plan's runbook change is reviewed like the rest, and marked so.
    let yaml = plan.section("runbook: { errors: restart the pods }\n").to_string();
    let body = json!({"description": "checkout plan", "plans": [yaml]});
    let r = app.call(Method::POST, "/api/v1/changes", Some(&erin), Some(body)).await;
    assert_eq!(
        (r.status, r.body["touches_runbook"].as_bool()),
        (StatusCode::CREATED, Some(true)),
        "{:?}",
        r.body
    );
    let r = app
        .call(Method::POST, "/api/v1/changes", Some(&erin), Some(json!({"description": "nothing"})))
        .await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("flags"))
    );

    // Unprotected again: direct edits go through.
    assert_eq!(
        app.admin(Method::DELETE, "/api/v1/environments/prod/protection", None).await.status,
        StatusCode::OK
    );
    let r = app
        .call(Method::PUT, "/api/v1/flags/checkout", Some(&erin), Some(checkout(true, "v9")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}
