//! Plans: applying a plan (lint, then checked against what the store holds), reading one, and
//! recording a drill as evidence for the plan version it rehearsed.

use serde_json::{Value, json};
use wavegate_core::spec::FlagSpec;
use wavegate_rollout::lint::{Finding, Severity, lint};
use wavegate_rollout::plan::PlanSpec;
use wavegate_store::{Change, DrillRow, Kind, Put};

use crate::outbound::policy::Policy;
use crate::service::{ServiceError, ServiceResult, Who, decode};
use crate::state::AppState;

/// A stored plan and its version (404 when there is none).
pub async fn get(state: &AppState, name: &str) -> ServiceResult<(PlanSpec, i64)> {
    let head = state
        .head(Kind::Plan, name)
        .await?
        .ok_or_else(|| ServiceError::not_found(format!("plan {name:?} not found")))?;
    Ok((decode("plan", &head.spec)?, head.version))
}

/// Validates a parsed plan against what the store holds (environment, flag, variants,
/// promotion path, segments); returns the flag's spec.
pub async fn check_against_store(state: &AppState, plan: &PlanSpec) -> ServiceResult<FlagSpec> {
    let envs = state.snapshot.load().environments.clone();
    if !envs.contains(&plan.environment) {
        return Err(ServiceError::invalid(
            "environment",
            format!("unknown environment {:?}; known: {}", plan.environment, envs.join(", ")),
        ));
    }
    let head =
        state.head(Kind::Flag, &plan.flag).await?.filter(|h| !h.archived).ok_or_else(|| {
            ServiceError::invalid(
                "flag",
                format!("flag {:?} does not exist (or is archived)", plan.flag),
            )
        })?;
    let flag: FlagSpec = decode("flag", &head.spec)?;
    for (field, v) in
        [("new_variant", &plan.new_variant), ("control_variant", &plan.control_variant)]
    {
        if !flag.variants.contains_key(v) {
            return Err(ServiceError::invalid(
                field,
                format!("flag {:?} has no variant {v:?}", plan.flag),
            ));
        }
    }
    for (i, e) in plan.promotion_path.iter().enumerate() {
        if !envs.contains(e) {
            return Err(ServiceError::invalid(
                format!("promotion_path[{i}]"),
                format!("unknown environment {e:?}; known: {}", envs.join(", ")),
            ));
        }
    }
    let segments: Vec<String> =
        state.heads(Kind::Segment, false).await?.into_iter().map(|h| h.key).collect();
    for (i, w) in plan.waves.iter().enumerate() {
        for s in &w.segments {
            if !segments.contains(s) {
                return Err(ServiceError::invalid(
                    format!("waves[{i}].segments"),
                    format!("unknown segment {s:?}"),
                ));
            }
        }
    }
    Ok(flag)
}

/// A plan as parsed from its YAML: lint errors refuse it (located at their line and column).
/// The caller checks the principal may write the plan's environment before [`apply`].
pub fn parse(text: &str) -> ServiceResult<(PlanSpec, Vec<Finding>)> {
    let (plan, findings) = lint(text);
    if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
        return Err(ServiceError::Malformed {
            field: e.line.map(|l| format!("line {l}, column {}", e.column.unwrap_or(0))),
            message: format!("plan does not lint ({}): {}", e.code, e.message),
        });
    }
    let plan = plan.ok_or_else(|| ServiceError::malformed("plan does not parse"))?;
    Ok((plan, findings))
}

/// What applying a plan did.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The plan's name.
    pub name: String,
    /// Its version now.
    pub version: i64,
    /// Whether a new version was written (unchanged content makes none).
    pub changed: bool,
}

/// The lint findings that need the store's segments: a first wave that reaches insiders only
/// (`friendly-pilot`), a wave reaching cohorts no stakeholder champions (`no-champion`).
pub async fn store_findings(
    state: &AppState,
    text: &str,
    plan: &PlanSpec,
) -> ServiceResult<Vec<wavegate_rollout::lint::Finding>> {
    let wanted: std::collections::BTreeSet<&String> =
        plan.waves.iter().flat_map(|w| w.segments.iter()).collect();
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = indexmap::IndexMap::new();
    for name in wanted {
        if let Some(head) = state.head(Kind::Segment, name).await?
            && let Ok(spec) = decode::<wavegate_core::spec::SegmentSpec>("segment", &head.spec)
        {
            segments.insert(name.clone(), spec);
        }
    }
    Ok(wavegate_rollout::lint::segment_findings(text, plan, &segments))
}

/// Refuses a plan whose check, gate or guardrail URLs the outbound policy refuses as written
/// (a loopback or metadata address, `localhost`…): the request would never be sent. Names are
/// checked again, with what they resolve to, whenever the server connects.
pub fn check_outbound(policy: &Policy, plan: &PlanSpec) -> ServiceResult<()> {
    let checks = plan.checks.iter().enumerate().flat_map(|(i, c)| {
        let http = c.http.as_ref().map(|h| (format!("checks[{i}].http.url"), h.url.as_str()));
        let hook = c.webhook.as_ref().map(|w| (format!("checks[{i}].webhook.url"), w.url.as_str()));
        http.into_iter().chain(hook)
    });
    let guardrails = plan.guardrails.iter().enumerate().filter_map(|(i, g)| {
        Some((format!("guardrails[{i}].prometheus_url"), g.prometheus_url.as_deref()?))
    });
    for (field, url) in checks.chain(guardrails) {
        // A URL that does not parse is the request's own failure to report, when it runs.
        let Ok(parsed) = reqwest::Url::parse(url) else { continue };
        if let Some(host) = parsed.host_str() {
            policy.check_host(host).map_err(|r| ServiceError::invalid(field, r.to_string()))?;
        }
    }
    Ok(())
}

/// Stores `plan` as a new version (after checking it against the store and the outbound
/// policy).
pub async fn apply(state: &AppState, plan: &PlanSpec, change: &Change) -> ServiceResult<Applied> {
    check_against_store(state, plan).await?;
    check_outbound(state.outbound.guard.policy(), plan)?;
    let put = Put {
        kind: Kind::Plan,
        key: plan.name.clone(),
        spec: serde_json::to_value(plan).map_err(ServiceError::internal)?,
        archived: false,
        expected_version: None,
        action: None,
        details: json!({}),
    };
    crate::service::changes::refuse_protected(state, std::slice::from_ref(&put)).await?;
    let out = state.store.apply(&[put], change).await?;
    Ok(Applied { name: plan.name.clone(), version: out[0].version, changed: out[0].changed })
}

/// Records a drill of plan `name` as evidence for the stored version it rehearsed (matched by
/// content). Returns the stored row.
pub async fn record_drill(
    state: &AppState,
    name: &str,
    plan: Value,
    report: Value,
    actor: &Who,
) -> ServiceResult<DrillRow> {
    let drilled: PlanSpec = serde_json::from_value(plan)
        .map_err(|e| ServiceError::invalid("plan", format!("not a plan: {e}")))?;
    if drilled.name != name {
        return Err(ServiceError::invalid(
            "plan",
            format!("the drilled plan is {:?}, not {name:?}", drilled.name),
        ));
    }
    let drilled = serde_json::to_value(&drilled).map_err(ServiceError::internal)?;
    let versions = state.store.versions(Kind::Plan, name).await?;
    let version = versions.iter().rev().find(|v| v.spec == drilled).ok_or_else(|| {
        ServiceError::conflict(format!(
            "no stored version of plan {name:?} matches the drilled file; `plan apply` it first"
        ))
    })?;
    let passed = report.get("passed").and_then(Value::as_bool).ok_or_else(|| {
        ServiceError::invalid("report.passed", "the report has no boolean `passed`")
    })?;
    let scenario = report.get("scenario").and_then(Value::as_str).unwrap_or("unnamed").to_owned();
    let mut row = DrillRow {
        id: 0,
        plan: name.to_owned(),
        plan_version: version.version,
        scenario,
        passed,
        report,
        at: state.clock.now(),
        actor: actor.name.clone(),
    };
    row.id = state.store.add_drill(&row, &state.change(actor, None)).await?;
    Ok(row)
}
