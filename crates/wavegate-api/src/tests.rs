//! Each family of types against real answers of the server (`fixtures/*.json`, taken from a
//! server running the demo story and a guarded rollout of `examples/checkout-v2.yaml`): every
//! example deserialises and serialises back to the same JSON value, so no field is lost,
//! renamed, retyped or turned from absent into `null`.

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::audit::{AuditEntry, Verification};
use crate::environments::Environment;
use crate::error::{ErrorBody, ErrorCode, OfrepErrorBody};
use crate::events::Ingested;
use crate::flags::{Applied, Archived, Diff, Head, Reverted, Version};
use crate::freeze::Freeze;
use crate::notify::{Delivery, Target, TestSent};
use crate::ofrep::Evaluation;
use crate::plans::{Drill, DrillRecorded, PlanApplied, PlanHead, PlanVersion};
use crate::reports::{
    AdoptionSummary, Calendar, DoraReport, FeedbackAccepted, FeedbackDigest, PostRolloutReport,
    RolloutAdoption,
};
use crate::rollouts::{Phase, Rollout, RolloutState, RolloutVerdicts, Scheduled};
use crate::schedules::{Cancelled, Schedule};
use crate::scorecard::Scorecard;
use crate::tokens::{CreatedToken, Revoked, Token, TokenKind};

fn fixture(name: &str) -> Value {
    let text = match name {
        "audit" => include_str!("../fixtures/audit.json"),
        "environments" => include_str!("../fixtures/environments.json"),
        "error" => include_str!("../fixtures/error.json"),
        "events" => include_str!("../fixtures/events.json"),
        "flags" => include_str!("../fixtures/flags.json"),
        "freeze" => include_str!("../fixtures/freeze.json"),
        "notify" => include_str!("../fixtures/notify.json"),
        "ofrep" => include_str!("../fixtures/ofrep.json"),
        "plans" => include_str!("../fixtures/plans.json"),
        "reports" => include_str!("../fixtures/reports.json"),
        "rollouts" => include_str!("../fixtures/rollouts.json"),
        "schedules" => include_str!("../fixtures/schedules.json"),
        "scorecard" => include_str!("../fixtures/scorecard.json"),
        "tokens" => include_str!("../fixtures/tokens.json"),
        other => panic!("no fixture {other}"),
    };
    serde_json::from_str(text).unwrap()
}

/// Reads `v` as a `T` and checks that it serialises back to the same JSON value; also that a
/// field the type does not know is ignored.
#[track_caller]
fn round_trip<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let t: T = serde_json::from_value(v.clone())
        .unwrap_or_else(|e| panic!("{} does not read {v}: {e}", std::any::type_name::<T>()));
    let back = serde_json::to_value(&t).unwrap();
    assert_eq!(back, *v, "{} does not give back what it read", std::any::type_name::<T>());
    let mut extended = v.clone();
    let target = match &mut extended {
        Value::Array(items) => items.first_mut(),
        other => Some(other),
    };
    if let Some(Value::Object(o)) = target {
        o.insert("a_field_from_the_future".into(), json!({"x": [1, 2.5]}));
        serde_json::from_value::<T>(extended.clone()).unwrap_or_else(|e| {
            panic!("{} refuses an unknown field: {e}", std::any::type_name::<T>())
        });
    }
    t
}

/// [`round_trip`], and the serialised text is byte for byte what was read: same field order.
#[track_caller]
fn exact<T: DeserializeOwned + Serialize>(v: &Value) -> T {
    let t = round_trip::<T>(v);
    assert_eq!(serde_json::to_string(&t).unwrap(), v.to_string(), "field order differs");
    t
}

#[test]
fn error_bodies() {
    let e = fixture("error");
    let not_found: ErrorBody = exact(&e[0]);
    assert_eq!((not_found.code, not_found.field), (ErrorCode::NotFound, None));
    let invalid: ErrorBody = exact(&e[1]);
    assert_eq!(invalid.field.as_deref(), Some("reason"));
    let ofrep: OfrepErrorBody = exact(&e[2]);
    assert_eq!(ofrep.error_code, "FLAG_NOT_FOUND");
    assert!(
        serde_json::from_value::<ErrorBody>(e[2].clone()).is_err(),
        "an OFREP error is not one"
    );
}

#[test]
fn environments() {
    let envs: Vec<Environment> = exact(&fixture("environments"));
    assert_eq!(
        envs.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(),
        ["dev", "staging", "prod"]
    );
}

#[test]
fn flags_and_segments() {
    let f = fixture("flags");
    let list: Vec<Head> = exact(&f["list"]);
    assert!(list.iter().all(|h| h.stale.is_none() && h.unleash_approximate.is_none()));
    let get: Head = exact(&f["get"]);
    assert_eq!(get.unleash_approximate, Some(false));
    assert_eq!(get.outline().unwrap().enabled_in(), ["dev", "staging", "prod"]);
    let stale: Head = exact(&f["stale"]);
    assert_eq!(stale.stale.unwrap().rollout, "ro_4f2ceb03eb");
    let versions: Vec<Version> = exact(&f["versions"]);
    assert_eq!(versions[0].reason.as_deref(), Some("wavegate demo: sample flags"));
    exact::<Version>(&f["version"]);
    exact::<Diff>(&f["diff"]);
    exact::<Archived>(&f["archived"]);
    exact::<Reverted>(&f["reverted"]);
    let applied: Applied = exact(&f["applied"]);
    assert_eq!((applied.changed, applied.results[0].kind.as_str()), (2, "segment"));
    exact::<Vec<Head>>(&f["segments"]);
}

#[test]
fn tokens() {
    let t = fixture("tokens");
    let created: CreatedToken = exact(&t["created"]);
    assert_eq!(created.record.kind, TokenKind::ClientSdk);
    assert!(created.token.starts_with("wg_"));
    let list: Vec<Token> = exact(&t["list"]);
    assert_eq!(list[0].principal, "admin");
    exact::<Revoked>(&t["revoked"]);
}

#[test]
fn audit_entries_and_verification() {
    let a = fixture("audit");
    let entries: Vec<AuditEntry> = exact(&a["entries"]);
    let promote = entries.iter().find(|e| e.action == "rollout.promote").unwrap();
    let d = promote.rollout_details().unwrap();
    assert_eq!((d.from_wave, d.to_wave, d.exposure.as_deref()), (Some(1), Some(2), Some("25%")));
    assert!(!d.verdicts.is_empty());
    let rollback = entries.iter().find(|e| e.action == "rollout.rollback").unwrap();
    let d = rollback.rollout_details().unwrap();
    assert_eq!((d.by.as_deref(), d.guardrail.as_deref()), (Some("automatic"), Some("error-rate")));
    assert!(d.verdict.unwrap().treatment.n > 0.0);
    let ok: Verification = exact(&a["verify"]);
    assert!(ok.ok && ok.head.is_some() && ok.first_bad.is_none());
    let broken: Verification = exact(&a["broken"]);
    assert_eq!(broken.first_bad.unwrap().seq, 12);
}

#[test]
fn plans_and_drills() {
    let p = fixture("plans");
    let applied: PlanApplied = exact(&p["applied"]);
    assert_eq!(applied.warnings[0].code, "no-promotion-path");
    let list: Vec<PlanHead> = exact(&p["list"]);
    let outline = list[0].outline().unwrap();
    assert_eq!((outline.flag.as_str(), outline.environment.as_str()), ("new-checkout", "prod"));
    exact::<PlanHead>(&p["get"]);
    exact::<Vec<PlanVersion>>(&p["versions"]);
    let drills: Vec<Drill> = exact(&p["drills"]);
    assert!(drills[0].passed);
    exact::<DrillRecorded>(&p["recorded"]);
}

#[test]
fn rollouts() {
    let r = fixture("rollouts");
    let started: Rollout = exact(&r["started"]);
    assert_eq!((started.state, started.phase), (RolloutState::Running, Some(Phase::Hold)));
    assert!(started.verdicts.is_none() && started.runbook.is_none());
    assert_eq!(started.exposure_percent(), Some(5.0));
    // The full view adds verdicts, the scorecard (without the plan's name, in its own field
    // order), signals, latency and the runbook, after the common fields.
    let got: Rollout = exact(&r["get"]);
    assert_eq!(got.state, RolloutState::Paused);
    assert!(got.current_verdicts().any(|v| v.guardrail_report().is_some()));
    assert!(got.current_verdicts().any(|v| v.srm_report().is_some()));
    assert!(got.scorecard.as_ref().is_some_and(|s| !s.items.is_empty()));
    assert_eq!(got.runbook.as_ref().map(|r| r.len()), Some(2));
    let demo: Rollout = exact(&r["get_demo"]);
    assert_eq!(demo.state, RolloutState::RolledBack);
    assert!(!demo.latency.unwrap_or_default().is_empty());
    exact::<Vec<Rollout>>(&r["list"]);
    let approved: Rollout = exact(&r["command"]);
    assert_eq!(approved.approvals[0].principal, "bob");
    let scheduled: Scheduled = exact(&r["scheduled"]);
    assert_eq!(scheduled.scheduled.reason, None);
    let verdicts: RolloutVerdicts = exact(&r["verdicts"]);
    assert_eq!(verdicts.guardrail_specs().unwrap().len(), 2);
    assert!(verdicts.verdicts.iter().any(|v| v.verdict == "fail"));
}

#[test]
fn scorecards_and_schedules() {
    let s = fixture("scorecard");
    let show: Scorecard = exact(&s["show"]);
    assert_eq!((show.plan.as_deref(), show.plan_version), (Some("checkout-v2"), Some(1)));
    let set: Scorecard = exact(&s["set"]);
    assert_eq!(set.plan_version, None);
    let sch = fixture("schedules");
    exact::<Vec<Schedule>>(&sch["list"]);
    exact::<Cancelled>(&sch["cancelled"]);
}

#[test]
fn freeze() {
    let f = fixture("freeze");
    let on: Freeze = exact(&f["on"]);
    assert_eq!(on.reason.as_deref(), Some("incident 42"));
    let off: Freeze = exact(&f["off"]);
    assert!(!off.active && off.lifted_by.is_some());
    exact::<Freeze>(&f["never"]);
}

#[test]
fn reports() {
    let r = fixture("reports");
    let dora: DoraReport = exact(&r["dora"]);
    assert_eq!(dora.groups[0].lead_time.value, None);
    let cal: Calendar = exact(&r["calendar"]);
    assert!(cal.entries.iter().any(|e| e.kind == "blackout" && e.rollouts.is_empty()));
    exact::<FeedbackAccepted>(&r["feedback_accepted"]);
    let digest: FeedbackDigest = exact(&r["digest"]);
    assert_eq!(digest.digest.overall.count, 2);
    let adoption: RolloutAdoption = exact(&r["adoption"]);
    assert_eq!(adoption.report.windows, [30, 60, 90]);
    let summary: AdoptionSummary = exact(&r["adoption_summary"]);
    assert!(summary.rollouts[0].about.tracking);
    let report: PostRolloutReport = exact(&r["report"]);
    assert!(report.adoption.is_some());
    let demo: PostRolloutReport = exact(&r["report_demo"]);
    assert_eq!(demo.state, "rolled_back");
}

#[test]
fn notifications() {
    let n = fixture("notify");
    let list: Vec<Target> = exact(&n["list"]);
    assert!(list.iter().any(|t| t.signed));
    exact::<Target>(&n["set"]);
    let failed: TestSent = exact(&n["test_failed"]);
    assert_eq!((failed.ok, failed.http_status), (false, None));
    let ok: TestSent = exact(&n["test_ok"]);
    assert_eq!(ok.http_status, Some(200));
    let deliveries: Vec<Delivery> = exact(&n["deliveries"]);
    assert!(deliveries[0].next_at.is_some());
}

#[test]
fn events_and_ofrep() {
    let ingested: Ingested = exact(&fixture("events"));
    assert_eq!(ingested.accepted, ingested.counted + ingested.stale + ingested.unattributed);
    let eval: Evaluation = exact(&fixture("ofrep"));
    assert_eq!(eval.metadata.rule.as_deref(), Some("rollout:ro_6af536f600"));
    assert_eq!(eval.metadata.version, Some(2));
}

/// Every top-level type gives an OpenAPI schema (the follow-up builds the document from them).
#[test]
fn every_type_has_a_schema() {
    use utoipa::openapi::ComponentsBuilder;
    let components = ComponentsBuilder::new()
        .schema_from::<ErrorBody>()
        .schema_from::<OfrepErrorBody>()
        .schema_from::<Environment>()
        .schema_from::<crate::environments::NewEnvironment>()
        .schema_from::<Head>()
        .schema_from::<Version>()
        .schema_from::<Diff>()
        .schema_from::<crate::flags::Revert>()
        .schema_from::<Reverted>()
        .schema_from::<Archived>()
        .schema_from::<crate::flags::FlagPut>()
        .schema_from::<crate::flags::SegmentPut>()
        .schema_from::<Applied>()
        .schema_from::<crate::tokens::NewToken>()
        .schema_from::<Token>()
        .schema_from::<CreatedToken>()
        .schema_from::<Revoked>()
        .schema_from::<AuditEntry>()
        .schema_from::<Verification>()
        .schema_from::<PlanApplied>()
        .schema_from::<PlanHead>()
        .schema_from::<PlanVersion>()
        .schema_from::<crate::plans::RecordDrill>()
        .schema_from::<DrillRecorded>()
        .schema_from::<Drill>()
        .schema_from::<Rollout>()
        .schema_from::<crate::rollouts::StartRollout>()
        .schema_from::<Scheduled>()
        .schema_from::<crate::rollouts::RolloutCommand>()
        .schema_from::<RolloutVerdicts>()
        .schema_from::<Schedule>()
        .schema_from::<Cancelled>()
        .schema_from::<Scorecard>()
        .schema_from::<crate::scorecard::SetItem>()
        .schema_from::<Freeze>()
        .schema_from::<crate::freeze::FreezeOn>()
        .schema_from::<DoraReport>()
        .schema_from::<Calendar>()
        .schema_from::<crate::reports::FeedbackItem>()
        .schema_from::<crate::reports::FeedbackBatch>()
        .schema_from::<FeedbackAccepted>()
        .schema_from::<FeedbackDigest>()
        .schema_from::<RolloutAdoption>()
        .schema_from::<AdoptionSummary>()
        .schema_from::<PostRolloutReport>()
        .schema_from::<Target>()
        .schema_from::<crate::notify::PutTarget>()
        .schema_from::<TestSent>()
        .schema_from::<Delivery>()
        .schema_from::<Ingested>()
        .schema_from::<crate::ofrep::EvaluationRequest>()
        .schema_from::<Evaluation>()
        .build();
    let doc = serde_json::to_value(&components).unwrap();
    let rollout = &doc["schemas"]["Rollout"];
    assert!(rollout["properties"]["phase"].is_object(), "{rollout}");
    assert_eq!(doc["schemas"].as_object().unwrap().len(), 52);
}

/// The names the CLI prints (`as_str`) are the names on the wire.
#[test]
fn printed_names_are_the_wire_names() {
    use crate::notify::{Audience, NotifyEvent, PayloadFormat};
    use crate::scorecard::ItemStatus;
    #[track_caller]
    fn same(v: impl Serialize, name: &str) {
        assert_eq!(json!(v), name);
    }
    for k in [TokenKind::Admin, TokenKind::ServerSdk, TokenKind::ClientSdk] {
        same(k, k.as_str());
    }
    for s in [
        RolloutState::Running,
        RolloutState::Paused,
        RolloutState::Completed,
        RolloutState::RolledBack,
        RolloutState::Aborted,
    ] {
        same(s, s.as_str());
        assert_eq!(s.to_string(), s.as_str());
    }
    for p in [
        Phase::Hold,
        Phase::Analyzing,
        Phase::AwaitingApproval,
        Phase::NoGo,
        Phase::Watching,
        Phase::Gated,
    ] {
        same(p, p.as_str());
        assert_eq!(p.to_string(), p.as_str());
    }
    for s in [ItemStatus::Green, ItemStatus::Red, ItemStatus::Waived, ItemStatus::Unset] {
        same(s, s.as_str());
    }
    for a in [
        Audience::Executive,
        Audience::Manager,
        Audience::EndUser,
        Audience::OnCall,
        Audience::Champion,
    ] {
        same(a, a.as_str());
    }
    for e in NotifyEvent::ALL {
        same(e, e.as_str());
    }
    for f in
        [PayloadFormat::Json, PayloadFormat::Slack, PayloadFormat::Teams, PayloadFormat::Pagerduty]
    {
        same(f, f.as_str());
    }
}
