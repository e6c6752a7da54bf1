//! The go/no-go scorecard: item states stored per plan as a versioned `scorecard` document
//! (every change a version and an audit entry), the automatic facts (the plan's guardrail
//! sources return data; a drill of this plan version passed within 30 days), and the
//! assessment itself, `wavegate_rollout::scorecard::assess` (pure).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::json;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{PlanSpec, SignalSource};
use wavegate_rollout::scorecard::{
    Assessment, AutoFacts, DRILL_MAX_AGE_DAYS, ItemState, Status, assess, items_of,
};
use wavegate_rollout::stats::Reading;
use wavegate_store::{Kind, Put, StoreError};

use crate::service::{ServiceError, ServiceResult, Who};
use crate::state::AppState;

/// The stored item states of `plan`, and the version of the document holding them (0: none).
async fn states(state: &AppState, plan: &str) -> ServiceResult<(BTreeMap<String, ItemState>, i64)> {
    Ok(match state.head(Kind::Scorecard, plan).await? {
        Some(h) => (serde_json::from_value(h.spec["items"].clone()).unwrap_or_default(), h.version),
        None => (BTreeMap::new(), 0),
    })
}

/// Whether a drill of `plan` at `version` passed within the last 30 days.
async fn drill_fact(
    state: &AppState,
    plan: &str,
    version: i64,
    now: DateTime<Utc>,
) -> ServiceResult<(bool, String)> {
    let since = now - chrono::Duration::days(DRILL_MAX_AGE_DAYS);
    let drills = state.store.drills(plan).await?;
    Ok(match drills.iter().find(|d| d.passed && d.plan_version == version && d.at >= since) {
        Some(d) => (
            true,
            format!(
                "drill {} ({}) of plan version {version} passed at {}",
                d.id,
                d.scenario,
                d.at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        ),
        None => (
            false,
            format!(
                "no passing drill of plan version {version} in the last {DRILL_MAX_AGE_DAYS} days: run `wavegate drill {plan} --record`"
            ),
        ),
    })
}

/// Whether every guardrail's signal source returns data: Prometheus guardrails must answer
/// their query now (from this tick's `readings`, or queried for `r`); event guardrails are fed
/// by wavegate's own events API.
async fn signals_fact(
    state: &AppState,
    plan: &PlanSpec,
    r: Option<&Rollout>,
    readings: Option<&BTreeMap<String, Reading>>,
) -> Option<(bool, String)> {
    if plan.guardrails.is_empty() {
        return Some((false, "the plan has no guardrails to validate".into()));
    }
    let mut missing = Vec::new();
    let mut ok = Vec::new();
    for g in &plan.guardrails {
        if g.source != SignalSource::Prometheus {
            ok.push(format!("{} (events)", g.name));
            continue;
        }
        let reading = match (readings.and_then(|m| m.get(&g.name)), r) {
            (Some(reading), _) => reading.clone(),
            (None, Some(r)) => {
                crate::outbound::prometheus::read(&state.outbound, r, g, state.clock.now()).await
            }
            (None, None) => return None,
        };
        match (&reading.error, reading.treatment) {
            (None, Some(_)) => ok.push(format!("{} (prometheus)", g.name)),
            (Some(e), _) => missing.push(format!("{}: {e}", g.name)),
            (None, None) => missing.push(format!("{}: the query returned no data", g.name)),
        }
    }
    Some(if missing.is_empty() {
        (true, format!("returning data: {}", ok.join(", ")))
    } else {
        (false, format!("no data from {}", missing.join("; ")))
    })
}

/// Whether the release has no open blocker (None: nobody has said anything about it yet).
async fn feedback_fact(state: &AppState, plan: &PlanSpec) -> ServiceResult<Option<(bool, String)>> {
    let items = crate::service::people::release_feedback(state, &plan.release).await?;
    if items.is_empty() {
        return Ok(None);
    }
    let open: Vec<String> = items
        .iter()
        .filter(|f| f.blocker && f.status == "open")
        .map(|f| format!("#{} ({})", f.id, f.category))
        .collect();
    let closed = items.iter().filter(|f| f.status != "open").count();
    Ok(Some(if open.is_empty() {
        (true, format!("no open blockers ({} items, {closed} closed)", items.len()))
    } else {
        (false, format!("{} open blocker(s): {}", open.len(), open.join(", ")))
    }))
}

/// Whether every cohort value — each the plan's stakeholders name, and each seen among the
/// users of `r` (30-day adoption report) — has a champion (None: the plan names no
/// stakeholders).
async fn champions_fact(
    state: &AppState,
    plan: &PlanSpec,
    r: Option<&Rollout>,
) -> ServiceResult<Option<(bool, String)>> {
    let Some(stakeholders) = &plan.stakeholders else { return Ok(None) };
    let mut cohorts: std::collections::BTreeSet<(String, String)> = stakeholders
        .iter()
        .flat_map(|(a, values)| {
            values.keys().filter(|v| *v != "*").map(move |v| (a.clone(), v.clone()))
        })
        .collect();
    if let Some(r) = r.filter(|r| r.plan.adoption.is_some() && r.id != "preview")
        && let Some(row) = state.store.rollout(&r.id).await?
    {
        let (report, _) = crate::service::reports::adoption(state, &row, r, 30).await?;
        for a in &report.attributes {
            for c in a.cohorts.iter().filter(|c| c.value != wavegate_rollout::adoption::NO_VALUE) {
                cohorts.insert((a.attribute.clone(), c.value.clone()));
            }
        }
    }
    let missing: Vec<String> = cohorts
        .iter()
        .filter(|(a, v)| {
            wavegate_rollout::people::stakeholder(stakeholders, a, v)
                .is_none_or(|s| s.champion.is_none())
        })
        .map(|(a, v)| format!("{a} = {v}"))
        .collect();
    Ok(Some(if missing.is_empty() {
        (true, format!("every cohort has a champion ({} cohorts)", cohorts.len()))
    } else {
        (false, format!("no champion for {}", missing.join(", ")))
    }))
}

/// Whether each audience has a notification target for the plan's environment whose test
/// message succeeded within 7 days (None: no notification target exists).
async fn communications_fact(
    state: &AppState,
    plan: &PlanSpec,
    now: DateTime<Utc>,
) -> ServiceResult<Option<(bool, String)>> {
    use crate::runtime::notify::spec::{Audience, TargetSpec};
    let targets = state.store.notify_targets().await?;
    if targets.is_empty() {
        return Ok(None);
    }
    let since =
        now - chrono::Duration::days(wavegate_rollout::scorecard::TEST_MESSAGE_MAX_AGE_DAYS);
    let mut ready = std::collections::BTreeSet::new();
    for t in &targets {
        let Ok(spec) = serde_json::from_value::<TargetSpec>(t.spec.clone()) else { continue };
        if spec.withheld || !spec.environments.iter().any(|e| e == "*" || *e == plan.environment) {
            continue;
        }
        let tests = state.store.audit_of(&format!("notify:{}", t.name), 50).await?;
        let tested = tests.iter().any(|a| {
            a.action == "notify.test"
                && chrono::DateTime::parse_from_rfc3339(&a.at).is_ok_and(|at| at >= since)
                && serde_json::from_str::<serde_json::Value>(&a.entry.canonical)
                    .is_ok_and(|e| e["details"]["ok"] == true)
        });
        if tested {
            ready.insert(spec.audience.as_str());
        }
    }
    let audiences = [Audience::Executive, Audience::Manager, Audience::EndUser, Audience::OnCall];
    let missing: Vec<&str> =
        audiences.iter().map(|a| a.as_str()).filter(|a| !ready.contains(a)).collect();
    Ok(Some(if missing.is_empty() {
        (true, "every audience has a target whose test message succeeded within 7 days".into())
    } else {
        (
            false,
            format!(
                "no target tested successfully within 7 days for: {} (`wavegate notify test <target>`)",
                missing.join(", ")
            ),
        )
    }))
}

/// Assesses `plan` (at `version`). `r` is a rollout of it, for templating Prometheus queries
/// (without one, that automatic item stays unset); `readings` are this tick's, if any.
pub async fn assessment(
    state: &AppState,
    plan: &PlanSpec,
    version: i64,
    r: Option<&Rollout>,
    readings: Option<&BTreeMap<String, Reading>>,
) -> ServiceResult<Assessment> {
    let now = state.clock.now();
    let facts = AutoFacts {
        signals: signals_fact(state, plan, r, readings).await,
        drill: Some(drill_fact(state, &plan.name, version, now).await?),
        feedback: feedback_fact(state, plan).await?,
        champions: champions_fact(state, plan, r).await?,
        communications: communications_fact(state, plan, now).await?,
    };
    Ok(assess(plan, &states(state, &plan.name).await?.0, &facts))
}

/// A rollout to template Prometheus queries with: the plan's live one, else a preview.
pub async fn rollout_for(state: &AppState, plan: &PlanSpec, version: i64) -> Option<Rollout> {
    if let Ok(rows) = state.store.rollouts(true).await {
        for row in rows.iter().filter(|r| r.plan == plan.name) {
            if let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) {
                return Some(r);
            }
        }
    }
    wavegate_rollout::machine::start(
        "preview".into(),
        plan.clone(),
        version,
        String::new(),
        0,
        state.clock.now(),
    )
    .ok()
    .map(|(r, _)| r)
}

/// How many times a scorecard change is made again when another change landed first.
const ATTEMPTS: usize = 5;

/// Not found unless plan `plan` declares (or defaults to) scorecard item `item`.
pub fn require_item(plan: &PlanSpec, item: &str) -> ServiceResult<()> {
    let items = items_of(plan);
    if items.iter().any(|(k, _)| k == item) {
        return Ok(());
    }
    Err(ServiceError::not_found(format!(
        "plan {:?} has no scorecard item {item:?}; items: {}",
        plan.name,
        items.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", ")
    )))
}

/// Sets item `item` of plan `plan` to `status` (green, red or waived; a waiver needs a `note`),
/// as `actor`; written at the version it was read from, so concurrent changes never lose one.
pub async fn set_item(
    state: &AppState,
    plan: &PlanSpec,
    item: &str,
    status: &str,
    note: Option<String>,
    actor: &Who,
) -> ServiceResult<()> {
    let name = &plan.name;
    require_item(plan, item)?;
    let Some(status) = Status::parse_settable(status) else {
        return Err(ServiceError::invalid("status", "status must be green, red or waived"));
    };
    let note = note.unwrap_or_default().trim().to_owned();
    if note.len() > 2000 {
        return Err(ServiceError::invalid("note", "note must be at most 2000 characters"));
    }
    if status == Status::Waived && note.is_empty() {
        return Err(ServiceError::invalid("note", "a waiver needs a reason: send it as `note`"));
    }
    if wavegate_rollout::scorecard::is_automatic(item) && status != Status::Waived {
        return Err(ServiceError::invalid(
            "status",
            format!("{item} is checked automatically; it can only be waived"),
        ));
    }
    for attempt in 1..=ATTEMPTS {
        let (mut current, version) = states(state, name).await?;
        current.insert(
            item.to_owned(),
            ItemState { status, by: actor.name.clone(), at: state.clock.now(), note: note.clone() },
        );
        let put = Put {
            kind: Kind::Scorecard,
            key: name.clone(),
            spec: json!({"items": current}),
            archived: false,
            expected_version: Some(version),
            action: Some("set".into()),
            details: json!({"item": item, "status": status.as_str()}),
        };
        let change = state.change(actor, Some(format!("scorecard {item}: {}", status.as_str())));
        match state.store.apply(&[put], &change).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict(_)) if attempt < ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
    unreachable!("the loop returns on its last attempt")
}
