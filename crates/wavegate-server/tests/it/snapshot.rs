//! Issue 21, item 7: a write of flags alone is applied to the served snapshot by reading and
//! compiling only those flags; everything else is shared with the snapshot before. What is
//! served is exactly what a full rebuild from the store would serve.

use std::sync::Arc;

use axum::http::{Method, StatusCode};
use serde_json::json;
use wavegate_server::snapshot::Snapshot;

use crate::support::{TestApp, spawn_app};

fn flag(default: &str, segment: Option<&str>) -> serde_json::Value {
    let rules = match segment {
        Some(s) => json!([{ "name": "pilots", "segment": s, "serve": "on" }]),
        None => json!([]),
    };
    json!({"variants": {"on": true, "off": false}, "default": default,
        "environments": {"prod": {"enabled": true, "rules": rules}}})
}

/// The served snapshot against one built afresh from the store: the same revision, specs and
/// compiled flags (by key and version) in every environment.
async fn same_as_a_full_rebuild(app: &TestApp) {
    let served = app.state.snapshot.load_full();
    let fresh = Snapshot::load(&*app.state.store, &app.state.record).await.unwrap();
    assert_eq!(served.revision, fresh.revision);
    let specs = |s: &Snapshot| {
        s.flag_specs
            .iter()
            .map(|(k, v)| (k.clone(), v.spec.to_string()))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(specs(&served), specs(&fresh));
    for env in &fresh.environments {
        let versions = |s: &Snapshot| {
            let mut v: Vec<(String, Option<i64>)> =
                s.flags[env].iter().map(|(k, f)| (k.clone(), f.version())).collect();
            v.sort();
            v
        };
        assert_eq!(versions(&served), versions(&fresh), "{env}");
    }
}

#[tokio::test]
async fn a_flag_write_recompiles_that_flag_only_and_serves_what_a_rebuild_would() {
    let app = spawn_app().await;
    let seg =
        app.admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u1"]}))).await;
    assert_eq!(seg.status, StatusCode::CREATED);
    for key in ["a", "b", "c"] {
        let r =
            app.admin(Method::PUT, &format!("/api/v1/flags/{key}"), Some(flag("off", None))).await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
    let before = app.state.snapshot.load_full();
    let b_before = before.flags["prod"]["b"].clone();

    // a changes (and starts using the segment): only a is compiled again.
    let r = app.admin(Method::PUT, "/api/v1/flags/a", Some(flag("on", Some("pilots")))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.tick().await;
    let after = app.state.snapshot.load_full();
    assert_eq!(after.revision, before.revision + 1);
    assert!(Arc::ptr_eq(&after.flags["prod"]["b"], &b_before), "b is shared, not rebuilt");
    assert!(!Arc::ptr_eq(&after.flags["prod"]["a"], &before.flags["prod"]["a"]));
    assert_eq!(after.flags["prod"]["a"].version(), Some(2));
    same_as_a_full_rebuild(&app).await;
    let sdk = app.token("server-sdk", &["prod"]).await;
    let served = app.ofrep(&sdk, "a", json!({"targetingKey": "u1"})).await;
    assert_eq!(served.body["value"], true, "the new a is served: {:?}", served.body);

    // Archived: no longer served; the others still shared.
    let r = app.admin(Method::POST, "/api/v1/flags/c/archive", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let after = app.state.snapshot.load_full();
    assert!(!after.flags["prod"].contains_key("c") && !after.flag_specs.contains_key("c"));
    assert!(Arc::ptr_eq(&after.flags["prod"]["b"], &b_before));
    same_as_a_full_rebuild(&app).await;

    // A segment change rebuilds everything (flags compile against segments).
    let r = app.admin(Method::PUT, "/api/v1/segments/pilots", Some(json!({"keys": ["u2"]}))).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let after = app.state.snapshot.load_full();
    assert!(!Arc::ptr_eq(&after.flags["prod"]["b"], &b_before), "rebuilt after a segment change");
    same_as_a_full_rebuild(&app).await;
}

#[tokio::test]
async fn a_change_made_meanwhile_by_someone_else_means_a_full_rebuild() {
    let app = spawn_app().await;
    for key in ["a", "b"] {
        app.admin(Method::PUT, &format!("/api/v1/flags/{key}"), Some(flag("off", None))).await;
    }
    // Another replica's write of b lands in the store behind this server's back, then this
    // server's own write of a: the revision has moved by two when it reloads for a, so it
    // rebuilds instead of patching a alone (which would leave b's change unserved). (The
    // server's own change feed may rebuild first; either way b's change is served. The
    // decision itself is unit-tested in `state::reload_tests`.)
    let put = |key: &str| {
        wavegate_server::service::config::put(
            wavegate_store::Kind::Flag,
            key,
            flag("on", None),
            false,
        )
    };
    let change = app.state.change(&wavegate_server::service::Who::own("elsewhere"), None);
    let held = app.state.hold_reloads().await;
    app.state.store.apply(&[put("b")], &change).await.unwrap();
    app.state.store.apply(&[put("a")], &change).await.unwrap();
    app.state.reload_flags(held, &["a"]).await.unwrap();
    let served = app.state.snapshot.load_full();
    assert_eq!(served.flags["prod"]["a"].version(), Some(2));
    assert_eq!(served.flags["prod"]["b"].version(), Some(2), "b's other change is served too");
    same_as_a_full_rebuild(&app).await;
}

/// A write of more flags than the change feed keeps (each flag is an audit entry) leaves the
/// feed's follower behind. It used to read and compile every flag again on hearing it had
/// fallen behind, after the write had already patched its flags in: at 10,000 flags in files
/// of 2,000 that doubled the server's memory. Now it rebuilds only when the snapshot lacks the
/// store's revision or environments, which a change of another replica's still brings.
#[tokio::test]
async fn a_write_of_more_flags_than_the_feed_keeps_is_patched_in_once_not_rebuilt() {
    let app = spawn_app().await;
    let n = wavegate_server::runtime::feed::FeedConfig::default().capacity + 100;
    let mut yaml = String::from("flags:\n");
    for i in 0..n {
        yaml.push_str(&format!(
            "  f{i:05}:\n    variants: {{on: true, off: false}}\n    default: \"off\"\n"
        ));
    }
    let full = app.state.metrics.snapshots_built("full");
    let patched = app.state.metrics.snapshots_built("patch");
    let r = app.apply_yaml(&yaml).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.state.snapshot.load().flag_specs.len(), n);
    assert_eq!(app.state.metrics.snapshots_built("patch"), patched + 1);

    // Another replica's change that does not move the revision (an environment), written
    // straight to the store: the follower must still rebuild for it, and it hears of it only
    // after the flags' entries, so once it is served the follower has handled those too.
    let change = wavegate_store::Change {
        actor: "other-replica".into(),
        via: None,
        reason: Some("test".into()),
        at: app.state.clock.now(),
    };
    app.state.store.create_environment("qa", &change).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !app.state.snapshot.load().environments.iter().any(|e| e == "qa") {
        assert!(std::time::Instant::now() < deadline, "the new environment was never served");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.state.metrics.snapshots_built("full"),
        full + 1,
        "one full build, for the environment; none for the flags the write patched in"
    );
    assert_eq!(app.state.snapshot.load().flag_specs.len(), n);
    same_as_a_full_rebuild(&app).await;
}
