//! What environment-scoped tokens may do and see (issue 16, "Scopes"): regressions for the gaps
//! an outside review found. Which route answers which token is the matrix's (`authz.rs`); these
//! follow a finding through to its effect (the flag still archived, the schedule still pending,
//! what an answer holds).

use axum::http::{Method, StatusCode as S};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::Plan;

use crate::stream::Reader;
use crate::support::{ADMIN, FLAGS, TestApp, spawn_app};

/// An admin token for `envs` with its own principal.
async fn admin_for(app: &TestApp, principal: &str, envs: &[&str]) -> String {
    let body = json!({"kind": "admin", "environments": envs, "principal": principal});
    let r = app.mint(ADMIN, body).await;
    assert_eq!(r.status, S::CREATED, "{:?}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

fn simple_flag() -> Value {
    json!({"variants": {"on": true, "off": false}, "default": "off",
           "environments": {"prod": {"enabled": true}, "staging": {"enabled": true}}})
}

async fn archived(app: &TestApp, key: &str) -> bool {
    let r = app.admin(Method::GET, &format!("/api/v1/flags/{key}"), None).await;
    r.body["archived"].as_bool().unwrap()
}

// See: issue 16, item 3.
#[tokio::test]
async fn issue_16_3_archiving_through_any_route_needs_every_environment() {
    let app = spawn_app().await;
    let prod = admin_for(&app, "prod-lead", &["prod"]).await;
    let flag = "/api/v1/flags/paywall";
    assert_eq!(app.admin(Method::PUT, flag, Some(simple_flag())).await.status, S::CREATED);
    app.admin(Method::POST, &format!("{flag}/archive"), None).await; // v2, archived
    assert!(archived(&app, "paywall").await);

    // Putting the same content back would serve it again in every environment.
    let r = app.call(Method::PUT, flag, Some(&prod), Some(simple_flag())).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("unarchives"), "{:?}", r.body);
    // So would a flag file naming it.
    let file = json!({"flags": {"paywall": simple_flag()}});
    let r = app.call(Method::POST, "/api/v1/apply", Some(&prod), Some(file)).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    // And a revert to a version that was live.
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 1})))
        .await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(archived(&app, "paywall").await, "still archived");

    // Live again (v3): a revert to the archived version would take it away everywhere.
    app.admin(Method::POST, &format!("{flag}/unarchive"), None).await;
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 2})))
        .await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("archives"), "{:?}", r.body);
    assert!(!archived(&app, "paywall").await, "still served");

    // What the token may do stays allowed: its own environment of a live flag.
    let mut change = simple_flag();
    change["environments"]["prod"]["enabled"] = json!(false);
    let r = app.call(Method::PUT, flag, Some(&prod), Some(change)).await;
    assert_eq!(r.status, S::OK, "{:?}", r.body);
    let r = app
        .call(Method::POST, &format!("{flag}/revert"), Some(&prod), Some(json!({"version": 3})))
        .await;
    assert_eq!(r.status, S::OK, "{:?}", r.body);
    // And the all-environment admin may still bring an archived flag back by putting it.
    app.admin(Method::POST, &format!("{flag}/archive"), None).await;
    assert_eq!(app.admin(Method::PUT, flag, Some(simple_flag())).await.status, S::OK);
    assert!(!archived(&app, "paywall").await);
}

/// A staging plan `stage` and a prod plan `live` for the showcase's flags.
async fn two_plans(app: &TestApp) {
    assert_eq!(app.apply_yaml(FLAGS).await.status, S::OK);
    let stage = Plan::new("stage", "banner-color").environment("staging").to_string().replace(
        "new_variant: \"on\"\ncontrol_variant: \"off\"",
        "new_variant: red\ncontrol_variant: blue",
    );
    assert_eq!(app.post_plan(&stage).await.status, S::CREATED);
    assert_eq!(
        app.post_plan(&Plan::new("live", "price-factor").to_string().replace(
            "new_variant: \"on\"\ncontrol_variant: \"off\"",
            "new_variant: sale\ncontrol_variant: base"
        ))
        .await
        .status,
        S::CREATED
    );
}

// See: issue 16, item 4.
#[tokio::test]
async fn issue_16_4_plan_versions_drills_and_schedules_check_the_environment() {
    let app = spawn_app().await;
    two_plans(&app).await;
    let prod_admin = admin_for(&app, "prod-lead", &["prod"]).await;
    let stage_admin = admin_for(&app, "stage-lead", &["staging"]).await;
    let prod_sdk = app.token("server-sdk", &["prod"]).await;

    // A prod token reads nothing of the staging plan, and records no drill for it.
    let r = app.call(Method::GET, "/api/v1/plans/stage/versions", Some(&prod_sdk), None).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    let r = app.call(Method::GET, "/api/v1/plans/stage/drills", Some(&prod_admin), None).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    let plan = app.admin(Method::GET, "/api/v1/plans/stage", None).await.body["spec"].clone();
    let drill = json!({"plan": plan, "report": {"scenario": "s", "passed": true}});
    let path = "/api/v1/plans/stage/drills";
    let r = app.call(Method::POST, path, Some(&prod_admin), Some(drill.clone())).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert_eq!(
        app.call(Method::POST, path, Some(&stage_admin), Some(drill)).await.status,
        S::CREATED
    );
    let r = app.call(Method::GET, "/api/v1/plans/stage/versions", Some(&stage_admin), None).await;
    assert_eq!(r.body.as_array().map(Vec::len), Some(1), "{:?}", r.body);
    // Nor may it take the plan over by applying it in prod.
    let moved = app.admin(Method::GET, "/api/v1/plans/stage", None).await;
    let yaml = Plan::new("stage", "banner-color").to_string().replace(
        "new_variant: \"on\"\ncontrol_variant: \"off\"",
        "new_variant: red\ncontrol_variant: blue",
    );
    let r = app
        .raw(
            Method::POST,
            "/api/v1/plans",
            Some(&prod_admin),
            &[("content-type", "application/yaml")],
            yaml.clone().into_bytes(),
        )
        .await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    assert_eq!(app.admin(Method::GET, "/api/v1/plans/stage", None).await.body, moved.body);

    // A start scheduled in staging: a prod admin neither sees nor cancels it.
    let at = (app.state.clock.now() + chrono::Duration::hours(2)).to_rfc3339();
    let r = app
        .admin(Method::POST, "/api/v1/rollouts", Some(json!({"plan": "stage", "start_at": at})))
        .await;
    assert_eq!(r.status, S::ACCEPTED, "{:?}", r.body);
    for token in [&prod_admin, &prod_sdk] {
        let r = app.call(Method::GET, "/api/v1/schedules", Some(token), None).await;
        assert_eq!(r.body, json!([]));
        let r = app.call(Method::GET, "/api/v1/calendar", Some(token), None).await;
        let kinds: Vec<&Value> =
            r.body["entries"].as_array().unwrap().iter().map(|e| &e["kind"]).collect();
        assert!(!kinds.contains(&&json!("scheduled")), "{:?}", r.body);
    }
    let r = app.call(Method::DELETE, "/api/v1/schedules/stage", Some(&prod_admin), None).await;
    assert_eq!(r.status, S::FORBIDDEN, "{:?}", r.body);
    let r = app.call(Method::GET, "/api/v1/schedules", Some(&stage_admin), None).await;
    assert_eq!(r.body[0]["plan"], "stage", "still pending");

    // Moved to prod by someone who may, the staging schedule still belongs to staging, and
    // is not started in prod when it falls due.
    let r = app.post_plan(&yaml).await;
    assert_eq!(r.status, S::OK, "{:?}", r.body);
    let r = app.call(Method::GET, "/api/v1/schedules", Some(&prod_admin), None).await;
    assert_eq!(r.body, json!([]));
    app.clock.advance(chrono::Duration::hours(3));
    app.tick().await;
    assert_eq!(app.count("/api/v1/rollouts").await, 0, "not started in prod");
    let audit =
        app.admin(Method::GET, "/api/v1/audit?target=setting:schedule.stage&limit=1", None).await;
    assert_eq!(audit.body[0]["action"], "setting.failed", "{:?}", audit.body);
    let error = audit.body[0]["details"]["error"].as_str().unwrap_or_default();
    assert!(error.contains("moved to prod"), "{:?}", audit.body);
}

// See: issue 16, item 5.
#[tokio::test]
async fn issue_16_5_scoped_admins_see_only_their_environments() {
    let app = spawn_app().await;
    two_plans(&app).await;
    let prod_admin = admin_for(&app, "prod-lead", &["prod"]).await;
    let stage_sdk = app.token("server-sdk", &["staging"]).await;
    let prod_sdk = app.token("server-sdk", &["prod"]).await;
    let target = json!({"audience": "manager", "url": "http://127.0.0.1:9/x"});
    app.admin(Method::PUT, "/api/v1/notifications/targets/mgmt", Some(target)).await;

    // Tokens: those within its scope (which it may revoke), not the bootstrap or staging ones.
    let tokens = app.call(Method::GET, "/api/v1/tokens", Some(&prod_admin), None).await.body;
    let scopes: Vec<&Value> =
        tokens.as_array().unwrap().iter().map(|t| &t["environments"]).collect();
    assert!(scopes.iter().all(|e| **e == json!(["prod"])), "{tokens}");
    assert_eq!(scopes.len(), 2, "itself and the prod server-sdk token: {tokens}");

    // The audit log: what is about prod or shared by all, never staging's plan, tokens or the
    // notification targets.
    let all = app.admin(Method::GET, "/api/v1/audit?limit=1000", None).await.body;
    let mine =
        app.call(Method::GET, "/api/v1/audit?limit=1000", Some(&prod_admin), None).await.body;
    let targets = |v: &Value| -> Vec<String> {
        v.as_array().unwrap().iter().map(|e| e["target"].as_str().unwrap().to_owned()).collect()
    };
    let (all_targets, mine_targets) = (targets(&all), targets(&mine));
    assert!(
        all_targets.contains(&"plan:stage".to_owned())
            && all_targets.contains(&"notify:mgmt".to_owned())
    );
    assert!(mine_targets.contains(&"plan:live".to_owned()), "{mine_targets:?}");
    assert!(mine_targets.contains(&"flag:banner-color".to_owned()), "{mine_targets:?}");
    for hidden in ["plan:stage", "notify:mgmt"] {
        assert!(!mine_targets.contains(&hidden.to_owned()), "{hidden}: {mine_targets:?}");
    }
    let token_entries: Vec<&Value> =
        mine.as_array().unwrap().iter().filter(|e| e["action"] == "token.create").collect();
    assert_eq!(token_entries.len(), 2, "its own and the prod sdk token's: {token_entries:?}");
    let flag_entry =
        mine.as_array().unwrap().iter().find(|e| e["target"] == "flag:banner-color").unwrap();
    assert!(flag_entry["details"].get("content_sha256").is_none(), "{flag_entry}");
    // A page that is not full means the end: paging one by one reads the same entries.
    let mut after = 0;
    let mut paged = Vec::new();
    loop {
        let path = format!("/api/v1/audit?after={after}&limit=1");
        let page = app.call(Method::GET, &path, Some(&prod_admin), None).await.body;
        let Some(e) = page.as_array().unwrap().first() else { break };
        after = e["seq"].as_i64().unwrap();
        paged.push(e["target"].as_str().unwrap().to_owned());
    }
    assert_eq!(paged, mine_targets);

    // The feedback digest: a release of staging's is not prod's to read.
    let item = json!({"release": "banner-color 1.0.0", "category": "ux", "cohort": "pilots", "sentiment": "negative", "text": "too red"});
    let r = app.call(Method::POST, "/api/v1/feedback", Some(&prod_sdk), Some(item.clone())).await;
    assert_eq!(r.status, S::FORBIDDEN, "nor does prod write it: {:?}", r.body);
    app.admin(Method::POST, "/api/v1/feedback", Some(item)).await;
    let digest = "/api/v1/feedback/digest?release=banner-color%201.0.0";
    for token in [&prod_admin, &prod_sdk] {
        assert_eq!(app.call(Method::GET, digest, Some(token), None).await.status, S::FORBIDDEN);
    }
    let r = app.call(Method::GET, digest, Some(&stage_sdk), None).await;
    assert_eq!((r.status, r.body["digest"]["overall"]["count"].clone()), (S::OK, json!(1)));
    let ours = "/api/v1/feedback/digest?release=price-factor%201.0.0";
    assert_eq!(app.call(Method::GET, ours, Some(&prod_admin), None).await.status, S::OK);
    // A release no environment has yet takes anyone's feedback, and is read by all-environment
    // tokens until it has a plan.
    let early = json!({"release": "search 0.1.0", "category": "ux", "cohort": "pilots", "sentiment": "positive", "text": "quick"});
    let r = app.call(Method::POST, "/api/v1/feedback", Some(&prod_sdk), Some(early)).await;
    assert_eq!(r.status, S::CREATED, "{:?}", r.body);
    let early = "/api/v1/feedback/digest?release=search%200.1.0";
    assert_eq!(app.call(Method::GET, early, Some(&prod_sdk), None).await.status, S::FORBIDDEN);
    assert_eq!(app.admin(Method::GET, early, None).await.status, S::OK);

    // The stream's audit events: staging's changes pass the prod admin by.
    let mut s = Reader::open(&app, app.router.clone(), &prod_admin, &[], "").await.unwrap();
    assert_eq!(s.next_event().await.event, "snapshot");
    app.token("client-sdk", &["staging"]).await;
    let stage = app.admin(Method::GET, "/api/v1/plans/stage", None).await.body["spec"].clone();
    let drill = json!({"plan": stage, "report": {"scenario": "s", "passed": true}});
    app.admin(Method::POST, "/api/v1/plans/stage/drills", Some(drill)).await;
    app.token("client-sdk", &["prod"]).await;
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["action"].as_str()), ("audit", Some("token.create")));
    assert_eq!(e.data["details"]["environments"], json!(["prod"]), "{:?}", e.data);
}

/// A segment of listed users in prod's `vip` flag, and one only dev uses.
const MEMBERS: &str = r#"
segments:
  pilots: { keys: [u1, u2] }
  dev-crew: { keys: [d1] }
flags:
  vip:
    variants: { "on": true, "off": false }
    default: "off"
    environments:
      prod: { enabled: true, rules: [ { segment: pilots, serve: "on" } ] }
      dev: { enabled: true, rules: [ { segment: dev-crew, serve: "on" } ] }
"#;

// See: issue 16, item 6.
#[tokio::test]
async fn issue_16_6_tokens_read_the_members_of_the_segments_their_environments_use() {
    let app = spawn_app().await;
    assert_eq!(app.apply_yaml(MEMBERS).await.status, S::OK);
    let prod_sdk = app.token("server-sdk", &["prod"]).await;
    let prod_admin = admin_for(&app, "prod-lead", &["prod"]).await;
    let client = app.token("client-sdk", &["prod"]).await;

    for token in [&prod_sdk, &prod_admin] {
        let get = |path: &'static str| app.call(Method::GET, path, Some(token), None);
        let pilots = get("/api/v1/segments/pilots").await.body;
        assert_eq!(pilots["spec"]["keys"], json!(["u1", "u2"]), "used in prod: {pilots}");
        let crew = get("/api/v1/segments/dev-crew").await.body;
        assert!(crew["spec"].get("keys").is_none() && crew["spec"]["keys_redacted"] == true);
        let list = get("/api/v1/segments").await.body;
        let listed = list.as_array().unwrap().iter().find(|s| s["key"] == "pilots").unwrap();
        assert_eq!(listed["spec"]["keys"], json!(["u1", "u2"]), "{list}");
        let versions = get("/api/v1/segments/pilots/versions").await.body;
        assert_eq!(versions[0]["spec"]["keys"], json!(["u1", "u2"]));
    }
    // The Unleash export gives the same members, as an `IN` constraint, and no others.
    let r = app.raw(Method::GET, "/api/client/features", Some(&prod_sdk), &[], vec![]).await;
    let text = r.body.to_string();
    assert!(text.contains("u1") && !text.contains("d1"), "{text}");
    // client-sdk tokens read none of it.
    for path in ["/api/v1/segments/pilots", "/api/v1/segments", "/api/client/features"] {
        let r = app.raw(Method::GET, path, Some(&client), &[], vec![]).await;
        assert_eq!(r.status, S::FORBIDDEN, "{path}");
    }

    // The stream: the snapshot holds prod's members; a flag that starts using dev's segment
    // in prod brings its members first.
    let mut s = Reader::open(&app, app.router.clone(), &prod_sdk, &[], "").await.unwrap();
    let snap = s.next_event().await;
    let seg = |snap: &Value, key: &str| {
        snap["segments"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap()["spec"]
            .clone()
    };
    assert_eq!(seg(&snap.data, "pilots")["keys"], json!(["u1", "u2"]));
    assert_eq!(seg(&snap.data, "dev-crew")["keys_redacted"], true);
    let mut flag = app.admin(Method::GET, "/api/v1/flags/vip", None).await.body["spec"].clone();
    flag["environments"]["prod"]["rules"] = json!([{"segment": "dev-crew", "serve": "on"}]);
    assert_eq!(app.admin(Method::PUT, "/api/v1/flags/vip", Some(flag)).await.status, S::OK);
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.id.as_deref()), ("segment", None), "{e:?}");
    assert_eq!(e.data["spec"]["keys"], json!(["d1"]));
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["key"].as_str()), ("flag", Some("vip")));
    // Its members, once used in prod, are prod's to read over REST too.
    let crew = app.call(Method::GET, "/api/v1/segments/dev-crew", Some(&prod_sdk), None).await;
    assert_eq!(crew.body["spec"]["keys"], json!(["d1"]));
    // A change to a segment prod uses arrives with its members; one prod does not, without.
    app.admin(Method::PUT, "/api/v1/segments/dev-crew", Some(json!({"keys": ["d1", "d2"]}))).await;
    let e = s.next_event().await;
    assert_eq!(
        (e.event.as_str(), e.data["spec"]["keys"].clone()),
        ("segment", json!(["d1", "d2"]))
    );
    app.admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u3"]}))).await;
    let e = s.next_event().await;
    assert_eq!((e.event.as_str(), e.data["key"].as_str()), ("segment", Some("pilots")));
    assert_eq!(e.data["spec"]["keys_redacted"], true, "{:?}", e.data);
}
