//! The conformance suite the [`Store`] must pass on each database. Each function takes a fresh,
//! migrated store; `tests/sqlite.rs` runs them on SQLite files, `tests/postgres.rs` on fresh
//! PostgreSQL databases.
#![allow(missing_docs, clippy::missing_panics_doc)]

use std::sync::Arc;

use chrono::{TimeZone, Utc};
use serde_json::{Value, json};
use wavegate_core::audit::{ChainBreak, ChainVerifier};

use crate::{Change, Grant, Kind, NewToken, Put, Role, Store, StoreError, StoreResult, TokenKind};

/// Calls `$run!` with the name of every test here that takes one fresh store, so that each
/// database's test file runs all of them (`tests/sqlite.rs`, `tests/postgres.rs`).
#[macro_export]
macro_rules! for_each_conformance_test {
    ($run:ident) => {
        $run!(
            starts_with_defaults,
            versions_and_audit,
            batches_are_atomic,
            archive_and_segments,
            tokens,
            environments,
            concurrent_appends_keep_the_chain,
            rollouts_and_aggregates,
            adoption,
            people,
            drills,
            changes_follow_commits,
            audit_of_target,
            leadership_fences_controller_writes,
            notifications,
            retried_batches_count_once,
        );
    };
}

fn change(actor: &str, minute: u32) -> Change {
    Change {
        actor: actor.into(),
        via: None,
        reason: Some("test".into()),
        at: Utc.with_ymd_and_hms(2026, 11, 22, 10, minute, 0).unwrap(),
    }
}

fn put(key: &str, spec: serde_json::Value) -> Put {
    Put {
        kind: Kind::Flag,
        key: key.into(),
        spec,
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    }
}

/// A token for every environment.
fn admin_token(id: &str, hash: &str, principal: &str) -> NewToken {
    NewToken {
        id: id.into(),
        hash: hash.into(),
        kind: TokenKind::Admin,
        environments: vec!["*".into()],
        principal: principal.into(),
        user_admin: false,
        evaluate_only: false,
        expires_at: None,
        roles: vec![Grant { role: Role::Admin, environments: vec!["*".into()] }],
        groups: Vec::new(),
    }
}

/// Adds a batch of these deltas, sketches and adoption rows.
async fn add(
    store: &dyn Store,
    deltas: &[crate::AggregateDelta],
    sketches: &[crate::SketchDelta],
    adoption: &[crate::AdoptionDelta],
    at: chrono::DateTime<Utc>,
    key: Option<&str>,
) -> StoreResult<bool> {
    let (deltas, sketches, adoption) = (deltas.to_vec(), sketches.to_vec(), adoption.to_vec());
    let batch =
        crate::AggregateBatch { deltas, sketches, adoption, at, key: key.map(str::to_owned) };
    store.add_aggregates(batch).await
}

/// The details of token `id`'s `token.create` audit entry.
async fn created_details(store: &dyn Store, id: &str) -> Value {
    let rows = store.audit_of(&format!("token:{id}"), 10).await.unwrap();
    let created = rows.iter().find(|r| r.action == "token.create").expect("audited");
    let entry: Value = serde_json::from_str(&created.entry.canonical).unwrap();
    entry["details"].clone()
}

async fn verify_chain(store: &dyn Store) -> i64 {
    let (v, broken) = verify_audit_chain(store).await.unwrap();
    assert_eq!(broken, None, "the audit chain verifies");
    v.verified()
}

/// A new store has dev, staging, prod in that order, revision 0, no tokens, an empty audit log.
pub async fn starts_with_defaults(store: Arc<dyn Store>) {
    let envs: Vec<_> = store.environments().await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(envs, ["dev", "staging", "prod"]);
    assert_eq!(store.revision().await.unwrap(), 0);
    assert!(!store.has_admin_token().await.unwrap());
    assert!(store.audit(0, 10).await.unwrap().is_empty());
    assert_eq!(store.audit_head().await.unwrap(), 0);
}

/// Versions are monotonic, unchanged content makes no version, and every change is audited.
pub async fn versions_and_audit(store: Arc<dyn Store>) {
    let a = json!({"variants": {"on": true}, "default": "on"});
    let b = json!({"variants": {"on": true, "off": false}, "default": "off"});
    let out = store.apply(&[put("f", a.clone())], &change("alice", 1)).await.unwrap();
    assert_eq!((out[0].version, out[0].changed), (1, true));
    let out = store.apply(&[put("f", a.clone())], &change("alice", 2)).await.unwrap();
    assert_eq!((out[0].version, out[0].changed), (1, false), "same content: no new version");
    let out = store.apply(&[put("f", b.clone())], &change("bob", 3)).await.unwrap();
    assert_eq!(out[0].version, 2);
    assert_eq!(store.revision().await.unwrap(), 2);

    let versions = store.versions(Kind::Flag, "f").await.unwrap();
    assert_eq!(
        versions
            .iter()
            .map(|v| (v.version, v.actor.as_str(), v.action.as_str()))
            .collect::<Vec<_>>(),
        [(1, "alice", "flag.create"), (2, "bob", "flag.update")]
    );
    assert_eq!(versions[0].spec, a);
    let head = store.get(Kind::Flag, "f").await.unwrap().unwrap();
    assert_eq!((head.version, head.spec), (2, b));

    let audit = store.audit(0, 100).await.unwrap();
    assert_eq!(
        audit.iter().map(|r| r.action.as_str()).collect::<Vec<_>>(),
        ["flag.create", "flag.update"]
    );
    assert_eq!(verify_chain(&*store).await, 2);
}

/// A batch is all or nothing: a conflict in its last put leaves nothing behind.
pub async fn batches_are_atomic(store: Arc<dyn Store>) {
    store.apply(&[put("x", json!({"v": 1}))], &change("a", 1)).await.unwrap();
    let mut stale = put("x", json!({"v": 3}));
    stale.expected_version = Some(7);
    let err = store.apply(&[put("y", json!({"v": 2})), stale], &change("a", 2)).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err}");
    assert!(
        store.get(Kind::Flag, "y").await.unwrap().is_none(),
        "first put of a failed batch must roll back"
    );
    assert_eq!(store.audit(0, 100).await.unwrap().len(), 1);
    assert_eq!(store.revision().await.unwrap(), 1);
}

/// Archiving is a version; archived heads are hidden from default lists; segments version too.
pub async fn archive_and_segments(store: Arc<dyn Store>) {
    store.apply(&[put("f", json!({"a": 1}))], &change("a", 1)).await.unwrap();
    let mut arch = put("f", json!({"a": 1}));
    arch.archived = true;
    let out = store.apply(&[arch], &change("a", 2)).await.unwrap();
    assert_eq!(out[0].version, 2);
    assert!(store.list(Kind::Flag, false).await.unwrap().is_empty());
    assert_eq!(store.list(Kind::Flag, true).await.unwrap().len(), 1);
    assert_eq!(store.versions(Kind::Flag, "f").await.unwrap()[1].action, "flag.archive");

    let seg = Put { kind: Kind::Segment, ..put("beta", json!({"keys": ["u1"]})) };
    store.apply(&[seg], &change("a", 3)).await.unwrap();
    assert_eq!(
        store.version(Kind::Segment, "beta", 1).await.unwrap().unwrap().spec,
        json!({"keys": ["u1"]})
    );
    assert!(store.get(Kind::Flag, "beta").await.unwrap().is_none(), "kinds are separate");
    assert_eq!(verify_chain(&*store).await, 3);
}

/// Tokens: stored by hash, found while live, gone once revoked; both audited. The last live
/// admin token for all environments is never revoked, not even by two revocations at once.
pub async fn tokens(store: Arc<dyn Store>) {
    let t = admin_token("tok1", &"ab".repeat(32), "admin");
    store.create_token(&t, &change("system", 1)).await.unwrap();
    assert!(store.has_admin_token().await.unwrap());
    let found = store.token_by_hash(&t.hash).await.unwrap().unwrap();
    assert_eq!(
        (found.kind, found.principal.as_str(), found.all_envs()),
        (TokenKind::Admin, "admin", true)
    );
    let dup = store.create_token(&t, &change("system", 2)).await;
    assert!(dup.is_err(), "duplicate token ids/hashes are refused");
    let last = |r: StoreResult<()>| matches!(r, Err(StoreError::Conflict(m)) if m.contains("last admin token"));
    assert!(last(store.revoke_token("tok1", &change("admin", 3)).await), "the only way in");
    // An admin of one environment is no way in to the others.
    let prod = NewToken {
        environments: vec!["prod".into()],
        roles: vec![Grant { role: Role::Admin, environments: vec!["prod".into()] }],
        ..admin_token("tok2", &"cd".repeat(32), "p")
    };
    store.create_token(&prod, &change("admin", 4)).await.unwrap();
    assert!(last(store.revoke_token("tok1", &change("admin", 5)).await));
    // Nor is a token for all environments without the admin role; its roles read back.
    let editor = NewToken {
        roles: vec![
            Grant { role: Role::Editor, environments: vec!["*".into()] },
            Grant { role: Role::Releaser, environments: vec!["staging".into()] },
        ],
        ..admin_token("tok_ed", &"e1".repeat(32), "ed")
    };
    store.create_token(&editor, &change("admin", 5)).await.unwrap();
    assert!(last(store.revoke_token("tok1", &change("admin", 5)).await));
    let read = store.token_by_hash(&editor.hash).await.unwrap().expect("live");
    assert_eq!(read.roles, editor.roles, "roles read back");
    assert!(read.groups.is_empty());
    let grouped = NewToken {
        groups: vec!["cab".into(), "sre".into()],
        expires_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
        ..admin_token("ses_g", &"e2".repeat(32), "gina@example.com")
    };
    store.create_token(&grouped, &change("gina@example.com", 5)).await.unwrap();
    let session = store.token_by_hash(&grouped.hash).await.unwrap().expect("live");
    assert_eq!(session.groups, ["cab", "sre"], "groups read back");
    // A token's audit entry names what it holds beyond kind, scope and owner, and nothing else.
    let keys = |details: Value| details.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        keys(created_details(&*store, "tok1").await),
        ["environments", "kind", "principal", "roles"]
    );
    let grouped_details = created_details(&*store, "ses_g").await;
    assert_eq!(grouped_details["groups"], json!(["cab", "sre"]));
    assert_eq!(grouped_details["expires_at"], "2030-01-01T00:00:00.000Z");
    assert!(
        grouped_details.get("user_admin").is_none()
            && grouped_details.get("evaluate_only").is_none()
    );
    assert!(read.holds(Role::Releaser, "staging") && !read.holds(Role::Releaser, "prod"));
    assert!(read.holds(Role::Viewer, "prod") && !read.admin_everywhere());
    assert!(store.token_by_hash(&t.hash).await.unwrap().is_some(), "still live");
    // An expiring admin token for all environments is no lasting way in either.
    let brief = NewToken {
        expires_at: Some(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()),
        ..admin_token("tok_brief", &"a4".repeat(32), "temp")
    };
    store.create_token(&brief, &change("admin", 6)).await.unwrap();
    assert!(last(store.revoke_token("tok1", &change("admin", 6)).await), "tok4 expires");
    let read = store.token_by_hash(&brief.hash).await.unwrap().expect("live");
    assert_eq!(read.expires_at, brief.expires_at, "expiry reads back");
    store
        .create_token(&admin_token("tok3", &"ef".repeat(32), "b"), &change("admin", 6))
        .await
        .unwrap();
    store.revoke_token("tok1", &change("admin", 7)).await.unwrap();
    // Issuing tokens for other people is a capability of its own, kept and never left to nobody.
    // (Of one environment, so that the all-environment rule below is not touched.)
    let people = NewToken {
        user_admin: true,
        environments: vec!["prod".into()],
        roles: vec![Grant { role: Role::Admin, environments: vec!["prod".into()] }],
        ..admin_token("tok6", &"a1".repeat(32), "root")
    };
    store.create_token(&people, &change("admin", 8)).await.unwrap();
    let read = store.token_by_hash(&people.hash).await.unwrap().expect("live");
    assert!(read.user_admin, "user_admin reads back");
    assert_eq!(created_details(&*store, "tok6").await["user_admin"], true);
    assert!(!store.token_by_hash(&"ef".repeat(32)).await.unwrap().unwrap().user_admin);
    let last_people = |r: StoreResult<()>| matches!(r, Err(StoreError::Conflict(m)) if m.contains("issue tokens for other people"));
    assert!(last_people(store.revoke_token("tok6", &change("admin", 9)).await));
    let second = NewToken { hash: "b2".repeat(32), id: "tok7".into(), ..people.clone() };
    store.create_token(&second, &change("admin", 10)).await.unwrap();
    store.revoke_token("tok6", &change("admin", 11)).await.unwrap();
    assert!(store.token_by_hash(&t.hash).await.unwrap().is_none());
    assert!(store.has_admin_token().await.unwrap());
    assert!(matches!(
        store.revoke_token("tok1", &change("admin", 8)).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(store.tokens().await.unwrap()[0].revoked_at.is_some());
    // Two revocations at once of the last two: one goes through, the other is refused.
    store
        .create_token(&admin_token("tok4", &"01".repeat(32), "c"), &change("admin", 9))
        .await
        .unwrap();
    let at = change("admin", 10);
    let (a, b) = tokio::join!(store.revoke_token("tok3", &at), store.revoke_token("tok4", &at));
    assert!(a.is_ok() != b.is_ok() && (last(a) || last(b)), "exactly one of the two is revoked");
    assert!(store.has_admin_token().await.unwrap());
    assert_eq!(
        verify_chain(&*store).await,
        12,
        "three entries more: the expiring token, the editor, the session"
    );
}

/// Environments append to the promotion order; duplicates conflict.
pub async fn environments(store: Arc<dyn Store>) {
    let e = store.create_environment("perf", &change("a", 1)).await.unwrap();
    assert_eq!(e.position, 4);
    assert!(matches!(
        store.create_environment("prod", &change("a", 2)).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.environments().await.unwrap().last().unwrap().name, "perf");
}

/// Concurrent writers never fork the audit chain.
pub async fn concurrent_appends_keep_the_chain(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for i in 0..16 {
        let s = store.clone();
        tasks.push(tokio::spawn(async move {
            s.apply(&[put(&format!("f{i}"), json!({"i": i}))], &change("a", 1)).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(verify_chain(&*store).await, 16);
    assert_eq!(store.revision().await.unwrap(), 16);
}

/// A write of `row` alone: no flag change, verdicts or audit entries, no leader epoch.
fn write_of(row: crate::RolloutRow) -> crate::RolloutWrite {
    crate::RolloutWrite { row, flag_put: None, verdicts: vec![], audit: vec![], leader_epoch: None }
}

fn rollout_row(id: &str, state: &str, rev: i64) -> crate::RolloutRow {
    crate::RolloutRow {
        id: id.into(),
        plan: "p".into(),
        flag: "f".into(),
        environment: "prod".into(),
        state: state.into(),
        rev,
        doc: json!({"wave": rev}),
        created_at: Utc::now(),
        updated_at: Utc::now(),
    }
}

/// Rollout writes are guarded by revision, carry their flag change and audit, and only one
/// rollout per flag and environment is live at a time.
pub async fn rollouts_and_aggregates(store: Arc<dyn Store>) {
    store.apply(&[put("f", json!({"v": 1}))], &change("a", 1)).await.unwrap();
    let mut flag_put = put("f", json!({"v": 2}));
    flag_put.expected_version = Some(1);
    let w = crate::RolloutWrite {
        flag_put: Some(flag_put),
        audit: vec![("rollout.start".into(), "rollout:ro_1".into(), json!({"wave": 1}))],
        ..write_of(rollout_row("ro_1", "running", 0))
    };
    assert_eq!(store.write_rollout(&w, &change("alice", 2)).await.unwrap(), 1);
    assert_eq!(store.get(Kind::Flag, "f").await.unwrap().unwrap().version, 2);
    let second = write_of(rollout_row("ro_2", "running", 0));
    assert!(
        matches!(
            store.write_rollout(&second, &change("bob", 3)).await,
            Err(StoreError::Conflict(_))
        ),
        "one live rollout per flag"
    );
    let stale = write_of(rollout_row("ro_1", "paused", 5));
    assert!(
        matches!(
            store.write_rollout(&stale, &change("bob", 3)).await,
            Err(StoreError::Conflict(_))
        ),
        "stale revision"
    );
    let verdict = crate::VerdictRow {
        id: 0,
        rollout: "ro_1".into(),
        wave: 0,
        kind: "guardrail".into(),
        name: "errors".into(),
        verdict: "fail".into(),
        report: json!({"lower": 0.1}),
        at: Utc::now(),
    };
    let done = crate::RolloutWrite {
        verdicts: vec![verdict],
        audit: vec![("rollout.rollback".into(), "rollout:ro_1".into(), json!({}))],
        ..write_of(rollout_row("ro_1", "rolled_back", 1))
    };
    assert_eq!(store.write_rollout(&done, &change("controller", 4)).await.unwrap(), 2);
    assert!(store.rollouts(true).await.unwrap().is_empty());
    assert_eq!(store.rollout("ro_1").await.unwrap().unwrap().state, "rolled_back");
    assert_eq!(store.verdicts("ro_1", 10).await.unwrap()[0].report, json!({"lower": 0.1}));
    // Now another rollout of the flag may start.
    store.write_rollout(&second, &change("bob", 5)).await.unwrap();

    // Contributions are kept per token (`source`) and summed when read.
    let src = |i: i32| if i % 2 == 0 { "tok_a" } else { "tok_b" };
    let dsrc = |arm: &str, n: f64, sum: f64, source: &str| crate::AggregateDelta {
        rollout: "ro_2".into(),
        wave: 0,
        arm: arm.into(),
        metric: "error".into(),
        n,
        sum,
        sumsq: sum,
        source: source.into(),
    };
    let d = |arm: &str, n: f64, sum: f64| dsrc(arm, n, sum, "tok_a");
    let sksrc = |counts: &[(i32, u64)], source: &str| crate::SketchDelta {
        rollout: "ro_2".into(),
        wave: 0,
        arm: "treatment".into(),
        metric: "latency_ms".into(),
        counts: counts.iter().copied().collect(),
        source: source.into(),
    };
    let sk = |counts: &[(i32, u64)]| sksrc(counts, "tok_a");
    let (deltas, sketches) =
        (&[d("treatment", 10.0, 1.0), d("control", 90.0, 2.0)], &[sk(&[(10, 2), (11, 1)])]);
    add(&*store, deltas, sketches, &[], Utc::now(), None).await.unwrap();
    add(&*store, &[d("treatment", 5.0, 1.0)], &[sk(&[(11, 4)])], &[], Utc::now(), None)
        .await
        .unwrap();
    let sketches = store.sketches("ro_2", 0, &[]).await.unwrap();
    assert_eq!(
        sketches[0].counts,
        [(10, 2), (11, 5)].into_iter().collect(),
        "sketch counts add up"
    );
    let rows = store.aggregates("ro_2", 0, &[]).await.unwrap();
    let t = rows.iter().find(|r| r.arm == "treatment").unwrap();
    assert_eq!((t.n, t.sum), (15.0, 2.0));
    assert!(store.aggregates("ro_2", 1, &[]).await.unwrap().is_empty());

    // Concurrent batches (which the stores commit in groups) all count, each once.
    let calls: Vec<_> = (0..40)
        .map(|i| {
            let (store, deltas, sketches) = (
                store.clone(),
                [dsrc("control", 1.0, f64::from(i % 2), src(i))],
                [sksrc(&[(12, 1)], src(i))],
            );
            // Every call also sees user u0 (one row, whichever call wins) and its own user.
            let users = [
                adopt("ro_2", "u0", "[\"a\"]", 10, None),
                adopt("ro_2", &format!("u{}", i + 1), "[\"b\"]", 10, Some(10)),
            ];
            tokio::spawn(
                async move { add(&*store, &deltas, &sketches, &users, Utc::now(), None).await },
            )
        })
        .collect();
    for c in calls {
        c.await.unwrap().unwrap();
    }
    let rows = store.aggregates("ro_2", 0, &[]).await.unwrap();
    let c = rows.iter().find(|r| r.arm == "control").unwrap();
    assert_eq!((c.n, c.sum), (130.0, 22.0), "40 concurrent batches on 90 + 2");
    assert_eq!(store.sketches("ro_2", 0, &[]).await.unwrap()[0].counts.get(&12), Some(&40));
    // Without tok_b's contributions (the odd calls, whose sums were 1).
    let without_b = ["tok_b".to_owned()];
    let rows = store.aggregates("ro_2", 0, &without_b).await.unwrap();
    let c = rows.iter().find(|r| r.arm == "control").unwrap();
    assert_eq!((c.n, c.sum), (110.0, 2.0), "tok_b's 20 batches left out");
    let sketches = store.sketches("ro_2", 0, &without_b).await.unwrap();
    assert_eq!(sketches[0].counts.get(&12), Some(&20));
    assert_eq!(sketches[0].source, "", "read back summed over tokens");
    let by_token = store.contributions("ro_2").await.unwrap();
    let n_of = |s: &str, arm: &str| {
        by_token.iter().filter(|c| c.source == s && c.arm == arm).map(|c| c.n).sum::<f64>()
    };
    assert_eq!((n_of("tok_a", "control"), n_of("tok_b", "control")), (110.0, 20.0));
    assert_eq!(n_of("tok_a", "treatment"), 15.0);
    let users = store.adoption("ro_2", 10).await.unwrap();
    assert_eq!(users.len(), 2);
    assert_eq!((users[0].exposed, users[0].adopted), (1, 0), "u0 once");
    assert_eq!((users[1].exposed, users[1].adopted), (40, 40));
    assert_eq!(verify_chain(&*store).await, 4, "flag create, exposure change, start, rollback");
}

fn adopt(
    rollout: &str,
    user: &str,
    cohort: &str,
    day: i64,
    task: Option<i64>,
) -> crate::AdoptionDelta {
    crate::AdoptionDelta {
        rollout: rollout.into(),
        user: user.into(),
        cohort: cohort.into(),
        exposed_day: day,
        task_day: task,
        wave: 0,
    }
}

/// Adoption keeps one row per rollout and user with its latest days and cohort, and counts
/// users by cohort from a day on.
pub async fn adoption(store: Arc<dyn Store>) {
    let sales = "[\"sales\"]";
    let ops = "[\"ops\"]";
    let batch = [
        adopt("r1", "ann", sales, 100, Some(100)),
        adopt("r1", "bob", sales, 100, None),
        adopt("r1", "cid", ops, 60, Some(60)),
        adopt("r2", "ann", ops, 100, Some(100)),
    ];
    add(&*store, &[], &[], &batch, Utc::now(), None).await.unwrap();
    // Later: bob does the task, cid is seen again (now in sales) without it, an older
    // exposure of ann changes nothing but her cohort.
    let later = [
        adopt("r1", "bob", sales, 101, Some(101)),
        adopt("r1", "cid", sales, 101, None),
        adopt("r1", "ann", sales, 90, None),
    ];
    add(&*store, &[], &[], &later, Utc::now(), None).await.unwrap();
    let count = |c: &crate::AdoptionCount| (c.cohort.clone(), c.exposed, c.adopted);
    let all: Vec<_> = store.adoption("r1", 0).await.unwrap().iter().map(count).collect();
    assert_eq!(all, [(sales.to_owned(), 3, 3)], "cid's task on day 60 still counts from day 0");
    let recent: Vec<_> = store.adoption("r1", 95).await.unwrap().iter().map(count).collect();
    assert_eq!(recent, [(sales.to_owned(), 3, 2)], "cid did the task before day 95");
    let last: Vec<_> = store.adoption("r1", 101).await.unwrap().iter().map(count).collect();
    assert_eq!(last, [(sales.to_owned(), 2, 1)], "ann was last seen on day 100");
    let other: Vec<_> = store.adoption("r2", 0).await.unwrap().iter().map(count).collect();
    assert_eq!(other, [(ops.to_owned(), 1, 1)]);
    assert!(store.adoption("r3", 0).await.unwrap().is_empty());
    // More rows than one statement holds.
    let many: Vec<_> = (0..2500)
        .map(|i| adopt("r3", &format!("u{i}"), ops, 5, (i % 5 == 0).then_some(5)))
        .collect();
    add(&*store, &[], &[], &many, Utc::now(), None).await.unwrap();
    let got: Vec<_> = store.adoption("r3", 5).await.unwrap().iter().map(count).collect();
    assert_eq!(got, [(ops.to_owned(), 2500, 500)]);
    // Pruning drops rows no window reaches any more, and only those.
    assert_eq!(store.prune_adoption(90).await.unwrap(), 2500, "r3's rows, last seen on day 5");
    let all: Vec<_> = store.adoption("r1", 0).await.unwrap().iter().map(count).collect();
    assert_eq!(all, [(sales.to_owned(), 3, 3)], "r1's rows were all seen on day 100 or 101");
    assert_eq!(store.adoption("r2", 0).await.unwrap().len(), 1);
    assert!(store.adoption("r3", 0).await.unwrap().is_empty());
    assert_eq!(store.prune_adoption(90).await.unwrap(), 0);
}

/// Adoption by the wave users were first served in (the earliest wave seen wins), feedback
/// that closes with its audit entry, and incidents stored once per source id with their arms.
pub async fn people(store: Arc<dyn Store>) {
    let at_wave = |user: &str, wave: i64, task: Option<i64>| crate::AdoptionDelta {
        wave,
        ..adopt("rw", user, "[\"x\"]", 10, task)
    };
    let first = [at_wave("a", 0, Some(10)), at_wave("b", 0, None), at_wave("c", 1, None)];
    add(&*store, &[], &[], &first, Utc::now(), None).await.unwrap();
    // Seen again in a later wave: still counted in the wave that first served them.
    let later = [at_wave("a", 1, None), at_wave("b", 2, Some(11)), at_wave("d", 1, Some(11))];
    add(&*store, &[], &[], &later, Utc::now(), None).await.unwrap();
    let waves: Vec<_> = store
        .adoption_by_wave("rw")
        .await
        .unwrap()
        .iter()
        .map(|w| (w.wave, w.exposed, w.adopted))
        .collect();
    assert_eq!(waves, [(0, 2, 2), (1, 2, 1)]);
    let in_first = store.adoption_in_wave("rw", 0).await.unwrap();
    assert_eq!((in_first.len(), in_first[0].exposed, in_first[0].adopted), (1, 2, 2));

    let fb = crate::FeedbackRow {
        release: "pay".into(),
        category: "bug".into(),
        cohort: "oslo".into(),
        sentiment: "negative".into(),
        body: "export fails".into(),
        at: Utc::now(),
        principal: "web".into(),
        blocker: true,
        ..Default::default()
    };
    let ids = store.add_feedback(&[fb]).await.unwrap();
    let got = store.feedback("pay").await.unwrap();
    assert_eq!(store.feedback_item(ids[0]).await.unwrap().as_ref(), got.first());
    assert!(store.feedback_item(ids[0] + 99).await.unwrap().is_none());
    assert_eq!((got[0].status.as_str(), got[0].blocker), ("open", true));
    let fixed = crate::FeedbackStatus {
        status: "fixed".into(),
        resolution: Some("export retried".into()),
        fixed_in: Some("flag pay v3".into()),
    };
    let row = store.set_feedback_status(ids[0], &fixed, &change("pm", 1)).await.unwrap().unwrap();
    assert_eq!((row.status.as_str(), row.closed_by.as_deref()), ("fixed", Some("pm")));
    assert!(row.closed_at.is_some());
    assert!(
        store.set_feedback_status(ids[0] + 99, &fixed, &change("pm", 2)).await.unwrap().is_none()
    );
    let audit = store.audit_of("release:pay", 10).await.unwrap();
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "feedback.status");
    let reopen = crate::FeedbackStatus { status: "open".into(), resolution: None, fixed_in: None };
    let row = store.set_feedback_status(ids[0], &reopen, &change("pm", 3)).await.unwrap().unwrap();
    assert_eq!((row.closed_at, row.closed_by), (None, None));

    let incident = crate::IncidentRow {
        id: 0,
        source: "pagerduty".into(),
        external_id: "PD1".into(),
        kind: "incident".into(),
        severity: "critical".into(),
        service: "pay".into(),
        user: Some("u1".into()),
        title: "payments down".into(),
        at: Utc::now(),
        principal: "pd".into(),
        arms: vec![crate::IncidentArm { rollout: "ro_i".into(), wave: 1, arm: "treatment".into() }],
    };
    let (id, new) = store.add_incident(&incident).await.unwrap();
    assert!(new);
    assert_eq!(store.add_incident(&incident).await.unwrap(), (id, false), "a retry is stored once");
    let counts = store.incident_counts("ro_i", 1).await.unwrap();
    assert_eq!(counts.len(), 1);
    assert_eq!(
        (counts[0].arm.as_str(), counts[0].severity.as_str(), counts[0].count),
        ("treatment", "critical", 1)
    );
    assert!(store.incident_counts("ro_i", 0).await.unwrap().is_empty());
    let listed = store.incidents(Some("pay"), 10).await.unwrap();
    assert_eq!((listed.len(), listed[0].arms.len()), (1, 1));
    assert!(store.incidents(Some("other"), 10).await.unwrap().is_empty());
}

/// A batch retried with its idempotency key (its first answer lost after the commit) counts
/// once, also when both copies meet in one group commit; keys are forgotten by age.
pub async fn retried_batches_count_once(store: Arc<dyn Store>) {
    let d = |n: f64| crate::AggregateDelta {
        rollout: "ro_k".into(),
        wave: 0,
        arm: "control".into(),
        metric: "exposure".into(),
        n,
        sum: n,
        sumsq: n,
        source: "tok_k".into(),
    };
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 10, 0, 0).unwrap();
    assert!(add(&*store, &[d(3.0)], &[], &[], at, Some("k1")).await.unwrap());
    assert!(!add(&*store, &[d(3.0)], &[], &[], at, Some("k1")).await.unwrap());
    assert!(add(&*store, &[d(1.0)], &[], &[], at, None).await.unwrap());
    assert!(add(&*store, &[d(1.0)], &[], &[], at, None).await.unwrap(), "no key: counts");
    // Concurrent copies of one batch (grouped into one transaction or not): one counts.
    let calls: Vec<_> = (0..20)
        .map(|i| {
            let store = store.clone();
            let key = format!("k{}", 2 + i % 2);
            tokio::spawn(async move {
                add(&*store, &[d(10.0)], &[], &[], at, Some(&key)).await.unwrap()
            })
        })
        .collect();
    let mut applied = 0;
    for c in calls {
        applied += usize::from(c.await.unwrap());
    }
    assert_eq!(applied, 2, "one per key");
    let n: f64 = store.aggregates("ro_k", 0, &[]).await.unwrap().iter().map(|r| r.n).sum();
    assert_eq!(n, 3.0 + 1.0 + 1.0 + 20.0);
    // Forgotten keys count again; recent ones are kept.
    let later = at + chrono::Duration::hours(1);
    assert!(add(&*store, &[d(1.0)], &[], &[], later, Some("k4")).await.unwrap());
    assert_eq!(store.prune_batch_keys(at + chrono::Duration::minutes(30)).await.unwrap(), 3);
    assert!(add(&*store, &[d(1.0)], &[], &[], later, Some("k1")).await.unwrap());
    assert!(!add(&*store, &[d(1.0)], &[], &[], later, Some("k4")).await.unwrap());
}

/// A passed drill of plan `p` version 3.
fn drill() -> crate::DrillRow {
    crate::DrillRow {
        id: 0,
        plan: "p".into(),
        plan_version: 3,
        scenario: "error-spike".into(),
        passed: true,
        report: json!({"ticks": 183}),
        at: Utc::now(),
        actor: String::new(),
    }
}

/// Drill evidence is stored per plan version and audited.
pub async fn drills(store: Arc<dyn Store>) {
    let d = drill();
    let id = store.add_drill(&d, &change("alice", 1)).await.unwrap();
    let got = store.drills("p").await.unwrap();
    assert_eq!(
        (got[0].id, got[0].plan_version, got[0].passed, got[0].actor.as_str()),
        (id, 3, true, "alice")
    );
    assert_eq!(got[0].report, json!({"ticks": 183}));
    assert!(store.drills("q").await.unwrap().is_empty());
    assert_eq!(verify_chain(&*store).await, 1);
}

/// Every committed write bumps [`Store::changes`]; reads do not.
pub async fn changes_follow_commits(store: Arc<dyn Store>) {
    let mut rx = store.changes();
    let before = *rx.borrow_and_update();
    store.revision().await.unwrap();
    store.list(Kind::Flag, true).await.unwrap();
    assert!(!rx.has_changed().unwrap(), "reads must not signal a change");
    let spec = json!({"variants": {"on": true}, "default": "on"});
    store.apply(&[put("watched", spec)], &change("alice", 1)).await.unwrap();
    assert!(rx.has_changed().unwrap(), "a committed write must signal");
    assert_ne!(*rx.borrow_and_update(), before);
    store.create_environment("qa", &change("alice", 2)).await.unwrap();
    assert!(rx.has_changed().unwrap());
}

/// `audit_of` returns one target's newest entries, oldest first.
pub async fn audit_of_target(store: Arc<dyn Store>) {
    for (i, key) in ["a", "b", "a", "a"].iter().enumerate() {
        let spec =
            json!({"description": format!("v{i}"), "variants": {"on": true}, "default": "on"});
        store.apply(&[put(key, spec)], &change("alice", i as u32)).await.unwrap();
    }
    let all = store.audit_of("flag:a", 10).await.unwrap();
    assert_eq!(store.audit_head().await.unwrap(), all.last().unwrap().entry.seq);
    assert_eq!(all.len(), 3, "three changes of a");
    assert!(all.iter().all(|r| r.target == "flag:a"));
    assert!(all.windows(2).all(|w| w[0].entry.seq < w[1].entry.seq), "oldest first");
    let last2 = store.audit_of("flag:a", 2).await.unwrap();
    assert_eq!(
        last2.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        all[1..].iter().map(|r| r.entry.seq).collect::<Vec<_>>()
    );
    assert!(store.audit_of("nobody", 10).await.unwrap().is_empty());
    // How the actor signed in is chained with the entry (and verifies).
    let via = Change { via: Some("oidc session ses_1".into()), ..change("alice", 9) };
    store.apply(&[put("b", json!({"v": 2}))], &via).await.unwrap();
    let b = store.audit_of("flag:b", 1).await.unwrap();
    assert!(b[0].entry.canonical.contains(r#""via":"oidc session ses_1""#), "{:?}", b[0].entry);
    assert!(!all[0].entry.canonical.contains("\"via\""), "absent when not known");
    assert!(verify_audit_chain(&*store).await.unwrap().1.is_none(), "the chain verifies");
}

/// Leadership is a lease: the leader keeps its epoch while it renews; another replica waits
/// while the lease runs and takes over (a new epoch, audited) once it lapses or is resigned;
/// controller writes under another epoch are refused.
pub async fn leadership_fences_controller_writes(store: Arc<dyn Store>) {
    let long = std::time::Duration::from_secs(60);
    let e1 = store.lead("replica-a", Utc::now(), long).await.unwrap().expect("the first leads");
    assert_eq!(store.lead("replica-a", Utc::now(), long).await.unwrap(), Some(e1), "renews");
    assert_eq!(store.lead("replica-b", Utc::now(), long).await.unwrap(), None, "b waits");
    store.apply(&[put("f", json!({"v": 1}))], &change("a", 1)).await.unwrap();
    let mut w = crate::RolloutWrite {
        leader_epoch: Some(e1),
        ..write_of(rollout_row("ro_1", "running", 0))
    };
    assert_eq!(store.write_rollout(&w, &change("controller", 2)).await.unwrap(), 1);
    w.row.rev = 1;
    w.leader_epoch = Some(e1 + 1);
    let err = store.write_rollout(&w, &change("controller", 3)).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("no longer leads")), "{err}");
    assert_eq!(store.rollout("ro_1").await.unwrap().unwrap().rev, 1, "nothing written");
    w.leader_epoch = None;
    store.write_rollout(&w, &change("alice", 4)).await.expect("people's writes are not fenced");
    // a's last renewal is a lease of zero: it lapses at once (as if a stopped renewing), and b
    // takes over with the next epoch; a's old epoch is fenced off.
    assert_eq!(
        store.lead("replica-a", Utc::now(), std::time::Duration::ZERO).await.unwrap(),
        Some(e1)
    );
    let e2 = store.lead("replica-b", Utc::now(), long).await.unwrap().expect("b takes over");
    assert_eq!(e2, e1 + 1);
    assert_eq!(store.lead("replica-a", Utc::now(), long).await.unwrap(), None, "a stands by");
    w.row.rev = 2;
    w.leader_epoch = Some(e1);
    assert!(store.write_rollout(&w, &change("controller", 5)).await.is_err(), "a is fenced");
    // b resigns (a graceful shutdown): a need not wait for the lease.
    store.resign(Some("replica-b")).await.unwrap();
    assert_eq!(store.lead("replica-a", Utc::now(), long).await.unwrap(), Some(e1 + 2));
    let audit = store.audit(0, 100).await.unwrap();
    let leads: Vec<&str> = audit
        .iter()
        .filter(|r| r.action == "controller.lead")
        .map(|r| r.entry.canonical.as_str())
        .collect();
    assert_eq!(leads.len(), 3, "each takeover audited once, renewals never: {leads:?}");
    assert!(
        leads[1].contains("\"holder\":\"replica-b\"")
            && leads[1].contains("\"previous\":\"replica-a\"")
    );
}

/// A backup taken from `source` restores into the empty `target` (of either kind): every row
/// the same, the audit chain verifies and continues, generated ids continue, and a second
/// restore into the now non-empty target is refused.
pub async fn backup_round_trip(source: Arc<dyn Store>, target: Arc<dyn Store>) {
    rollouts_and_aggregates(source.clone()).await;
    let drill = drill();
    source.add_drill(&drill, &change("alice", 8)).await.unwrap();
    let token = admin_token("tok_1", &"h".repeat(64), "alice");
    source.create_token(&token, &change("alice", 9)).await.unwrap();
    source.create_environment("qa", &change("alice", 10)).await.unwrap();
    // The versioned documents beside flags: a plan's scorecard and a server setting.
    let card = Put {
        kind: Kind::Scorecard,
        ..put("p", json!({"items": {"baseline": {"status": "green", "by": "alice"}}}))
    };
    let freeze =
        Put { kind: Kind::Setting, ..put("freeze", json!({"active": true, "reason": "x"})) };
    source.apply(&[card, freeze], &change("alice", 11)).await.unwrap();
    let fb = crate::FeedbackRow {
        id: 0,
        release: "checkout".into(),
        category: "usability".into(),
        cohort: "oslo".into(),
        sentiment: "negative".into(),
        body: "the pay button moved".into(),
        at: Utc::now(),
        principal: "web".into(),
        blocker: true,
        ..Default::default()
    };
    let ids = source.add_feedback(&[fb.clone(), fb.clone()]).await.unwrap();
    assert!(ids[1] > ids[0]);
    assert_eq!(source.feedback("checkout").await.unwrap().len(), 2);
    assert!(source.feedback("other").await.unwrap().is_empty());
    assert_eq!(source.versions(Kind::Scorecard, "p").await.unwrap()[0].action, "scorecard.create");
    assert!(source.get(Kind::Flag, "freeze").await.unwrap().is_none(), "kinds are separate");
    let head = source.audit_head().await.unwrap();

    let backup = source.export().await.unwrap();
    backup.validate().unwrap();
    // Through JSON, as the file on disk is.
    let text = serde_json::to_string(&backup).unwrap();
    let backup: crate::backup::Backup = serde_json::from_str(&text).unwrap();
    target.import(&backup).await.unwrap();

    let again = target.export().await.unwrap();
    assert_eq!(again.tables, backup.tables, "every table restores row for row");
    assert_eq!(target.audit_head().await.unwrap(), head);
    assert_eq!(verify_chain(&*target).await, head);
    let envs: Vec<_> = target.environments().await.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(envs, ["dev", "staging", "prod", "qa"]);
    assert!(target.has_admin_token().await.unwrap());
    assert_eq!(target.revision().await.unwrap(), source.revision().await.unwrap());
    assert_eq!(
        target.get(Kind::Setting, "freeze").await.unwrap().unwrap().spec["reason"],
        json!("x")
    );

    // The restored database carries on: the chain extends, ids do not collide.
    let spec = json!({"variants": {"on": true}, "default": "on"});
    target.apply(&[put("after-restore", spec)], &change("bob", 20)).await.unwrap();
    assert_eq!(verify_chain(&*target).await, head + 1);
    let before = target.drills("p").await.unwrap();
    let id = target.add_drill(&drill, &change("bob", 21)).await.unwrap();
    assert!(before.iter().all(|b| b.id < id), "ids continue after the restored ones");

    assert_eq!(target.feedback("checkout").await.unwrap()[1].body, "the pay button moved");
    let more = target.add_feedback(&[fb]).await.unwrap();
    assert!(more[0] > ids[1], "feedback ids continue after the restored ones");
    let err = target.import(&backup).await.unwrap_err();
    assert!(matches!(&err, StoreError::Conflict(m) if m.contains("not empty")), "{err}");
    let mut bad = backup.clone();
    bad.tables.get_mut("flags").unwrap()[0].pop();
    assert!(matches!(bad.validate(), Err(m) if m.starts_with("tables.flags[0]")));
}

/// Notification targets are audited and only hear of later entries; deliveries queue once per
/// entry and target, come due, and record their attempts; the cursor only moves forward.
pub async fn notifications(store: Arc<dyn Store>) {
    let spec = json!({"audience": "on-call", "url": "http://127.0.0.1:9/hook"});
    assert!(
        store.put_notify_target("pager", &spec, &json!({}), &change("alice", 1)).await.unwrap()
    );
    assert!(
        !store.put_notify_target("pager", &spec, &json!({}), &change("alice", 2)).await.unwrap(),
        "unchanged: no new audit entry"
    );
    let head = store.audit_head().await.unwrap();
    let targets = store.notify_targets().await.unwrap();
    assert_eq!((targets.len(), targets[0].since_seq, &targets[0].spec), (1, head, &spec));
    let spec2 = json!({"audience": "on-call", "url": "http://127.0.0.1:9/other"});
    assert!(
        !store.put_notify_target("pager", &spec2, &json!({}), &change("alice", 3)).await.unwrap()
    );
    assert_eq!(store.notify_targets().await.unwrap()[0].since_seq, head, "kept on update");

    assert_eq!(store.notify_cursor().await.unwrap(), 0);
    let at = Utc.with_ymd_and_hms(2026, 11, 22, 11, 0, 0).unwrap();
    let d = |seq: i64, event: &str| crate::NewDelivery {
        audit_seq: seq,
        target: "pager".into(),
        audience: "on-call".into(),
        event: event.into(),
        rollout: "ro_1".into(),
        environment: "prod".into(),
        payload: json!({"text": event}),
        at,
    };
    store.enqueue_deliveries(7, &[d(5, "promoted"), d(7, "rolled_back")]).await.unwrap();
    store.enqueue_deliveries(7, &[d(7, "rolled_back")]).await.unwrap();
    store.enqueue_deliveries(3, &[]).await.unwrap();
    assert_eq!(store.notify_cursor().await.unwrap(), 7, "the cursor never moves back");
    let due = store.due_deliveries(at, 10).await.unwrap();
    assert_eq!(due.len(), 2, "queued once per entry and target");
    assert_eq!((due[0].state.status.as_str(), due[0].state.attempts), ("pending", 0));
    assert!(store.due_deliveries(at - chrono::Duration::seconds(1), 10).await.unwrap().is_empty());

    let retry = crate::DeliveryState {
        status: "pending".into(),
        attempts: 1,
        last_error: Some("HTTP 500".into()),
        http_status: Some(500),
        next_at: at + chrono::Duration::seconds(2),
        at,
    };
    store.record_attempt(due[0].id, &retry).await.unwrap();
    let done = crate::DeliveryState {
        status: "delivered".into(),
        attempts: 1,
        last_error: None,
        http_status: Some(200),
        next_at: at,
        at,
    };
    store.record_attempt(due[1].id, &done).await.unwrap();
    assert!(store.due_deliveries(at, 10).await.unwrap().is_empty());
    let later = store.due_deliveries(at + chrono::Duration::seconds(2), 10).await.unwrap();
    assert_eq!(later.len(), 1);
    assert_eq!(
        (later[0].state.http_status, later[0].state.last_error.as_deref()),
        (Some(500), Some("HTTP 500"))
    );

    let all = store.deliveries(&crate::DeliveryQuery { limit: 10, ..Default::default() }).await;
    let all = all.unwrap();
    assert_eq!(all.len(), 2);
    assert!(all[0].id > all[1].id, "newest first");
    let q =
        crate::DeliveryQuery { status: Some("delivered".into()), limit: 10, ..Default::default() };
    let delivered = store.deliveries(&q).await.unwrap();
    assert_eq!((delivered.len(), delivered[0].queued.event.as_str()), (1, "rolled_back"));
    let q = crate::DeliveryQuery { target: Some("nobody".into()), limit: 10, ..Default::default() };
    assert!(store.deliveries(&q).await.unwrap().is_empty());
    // A checkpoint of the entry a notice reports is another delivery to the same target.
    store.enqueue_deliveries(0, &[d(7, "checkpoint"), d(7, "checkpoint")]).await.unwrap();
    assert_eq!(store.notify_cursor().await.unwrap(), 7, "a checkpoint leaves the cursor");
    let q = crate::DeliveryQuery { limit: 10, ..Default::default() };
    let events: Vec<String> =
        store.deliveries(&q).await.unwrap().into_iter().map(|d| d.queued.event).collect();
    assert_eq!(events, ["checkpoint", "rolled_back", "promoted"], "once per event too");

    store.delete_notify_target("pager", &change("alice", 4)).await.unwrap();
    assert!(matches!(
        store.delete_notify_target("pager", &change("alice", 5)).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store
            .deliveries(&crate::DeliveryQuery { limit: 10, ..Default::default() })
            .await
            .unwrap()
            .len(),
        3,
        "the log stays"
    );
    assert_eq!(verify_chain(&*store).await, 3, "create, update, remove");
}

/// A backup taken before the tables in [`crate::backup::ADDED_LATER`] existed (so without
/// them) restores: those tables come back empty, everything else as it was.
pub async fn older_backups_restore(source: Arc<dyn Store>, target: Arc<dyn Store>) {
    rollouts_and_aggregates(source.clone()).await;
    // Tokens from before `user_admin` (a column added later): the bootstrap admin token (made by
    // "system") comes back holding it, as the migration gives it; any other does not.
    let bootstrap = admin_token("tok_boot", &"c1".repeat(32), "admin");
    source.create_token(&bootstrap, &change("system", 20)).await.unwrap();
    let person = admin_token("tok_person", &"c2".repeat(32), "alice");
    source.create_token(&person, &change("admin", 21)).await.unwrap();
    let mut old = source.export().await.unwrap();
    for t in crate::backup::ADDED_LATER.split_whitespace() {
        old.tables.shift_remove(t);
    }
    // An older backup had one aggregate and sketch row per cell, with no token: keep one
    // token's rows, then cut every column added later off every table's rows.
    for t in ["aggregates", "sketches"] {
        old.tables.get_mut(t).unwrap().retain(|row| row.last() == Some(&json!("tok_a")));
    }
    for (table, rows) in old.tables.iter_mut() {
        let later = crate::backup::columns_added_later(table);
        for row in rows {
            row.truncate(row.len() - later);
        }
    }
    assert!(!old.tables.contains_key("adoption_users"));
    target.import(&old).await.unwrap();
    let back = target.export().await.unwrap();
    for (name, rows) in &back.tables {
        if crate::backup::added_later(name) {
            assert!(rows.is_empty(), "{name} restores empty");
        } else if name == "aggregates" || name == "sketches" {
            // They come back as counts of no token.
            let cut: Vec<Vec<Value>> = rows.iter().map(|r| r[..r.len() - 1].to_vec()).collect();
            assert_eq!(Some(&cut), old.tables.get(name), "{name} restores as it was");
            assert!(rows.iter().all(|r| r.last() == Some(&json!(""))), "{name}: {rows:?}");
        } else if name != "tokens" {
            assert_eq!(Some(rows), old.tables.get(name), "{name} restores as it was");
        }
    }
    let tokens = target.tokens().await.unwrap();
    let holds = |id: &str| tokens.iter().find(|t| t.id == id).unwrap().user_admin;
    assert!(holds("tok_boot") && !holds("tok_person"), "{tokens:?}");
    // Tokens from before roles hold `admin` in their environments.
    assert!(tokens.iter().all(|t| t.admin_everywhere()), "{tokens:?}");
    let mut short = old.clone();
    short.tables.get_mut("tokens").unwrap()[0].pop();
    let e = target.import(&short).await.unwrap_err().to_string();
    assert!(e.contains("tables.tokens[0]: 7 values, expected 13"), "{e}");
    assert!(target.adoption("ro_2", 0).await.unwrap().is_empty());
    // A table the format never had is still refused, and so is a missing original one.
    let mut broken = source.export().await.unwrap();
    broken.tables.shift_remove("flags");
    let e = target.import(&broken).await.unwrap_err().to_string();
    assert!(e.contains("tables.flags: missing"), "{e}");
}

/// Verifies the whole audit chain from its stored bytes, page by page (the suite's check; the
/// server's own walk, which also collects the ledger, is `wavegate_server::record`). Returns the verifier
/// (how many entries verified, the head hash) and the first entry that does not verify, if any.
pub async fn verify_audit_chain(
    store: &dyn Store,
) -> StoreResult<(ChainVerifier, Option<ChainBreak>)> {
    let mut v = ChainVerifier::default();
    let mut after = 0;
    loop {
        let page = store.audit(after, 1000).await?;
        let Some(last) = page.last() else { return Ok((v, None)) };
        after = last.entry.seq;
        for row in &page {
            if let Err(b) = v.push(&row.entry) {
                return Ok((v, Some(b)));
            }
        }
    }
}
