//! Reports: gathers what the pure report builders of `wavegate-rollout` need (ended rollouts for
//! DORA, live rollouts, blackouts, schedules and the freeze for the calendar, verdicts,
//! feedback and adoption counts for the post-rollout and adoption reports).
//!
//! `allows` is the caller's environment scope: rollouts and plans outside it are left out.

use serde_json::Value;
use wavegate_api::reports::AdoptionAbout;
use wavegate_rollout::adoption::{AdoptionReport, CohortCount, WINDOWS, report};
use wavegate_rollout::calendar::{Entry, LiveRollout, conflicts};
use wavegate_rollout::chart::{guardrail_points, guardrail_svg};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::report::{Deployment, DoraReport, dora};
use wavegate_rollout::retro::{Inputs, PostRolloutReport, TimelineEntry, Verdict, post_rollout};
use wavegate_store::{Kind, RolloutRow, VerdictRow};

use crate::service::{ServiceError, ServiceResult, decode};
use crate::state::AppState;

type Time = chrono::DateTime<chrono::Utc>;

/// DORA metrics of the rollouts that ended in `[since, until)`, by team or by service, of the
/// environments `allows` takes (and only `environment`, when given). Emergency changes
/// ([`crate::service::changes`]) applied in the period count as rework and as failed changes
/// (in the group of the flag or plan they changed, from its latest rollout).
pub async fn dora_report(
    state: &AppState,
    allows: impl Fn(&str) -> bool,
    environment: Option<&str>,
    (since, until): (Time, Time),
    by_team: bool,
) -> ServiceResult<DoraReport> {
    let mut deployments = Vec::new();
    // Each flag's and plan's group, from its latest rollout (an emergency change is counted in
    // the group of what it changed).
    let mut groups: std::collections::HashMap<String, (Time, String)> = Default::default();
    for row in state.store.rollouts(false).await? {
        if !allows(&row.environment) || environment.is_some_and(|e| e != row.environment) {
            continue;
        }
        let Ok(r) = decode::<Rollout>("rollout", &row.doc) else { continue };
        let rel = &r.plan.release;
        if let Some(g) = if by_team { rel.team.clone() } else { rel.service.clone() } {
            for key in [&r.plan.flag, &r.plan.name] {
                let newer = groups.get(key).is_none_or(|(at, _)| *at < row.updated_at);
                if newer {
                    groups.insert(key.clone(), (row.updated_at, g.clone()));
                }
            }
        }
        let mut d = Deployment::of(&r, by_team, row.updated_at);
        // A completed release whose plan set targets: did it meet every one?
        if let Some(d) = d.as_mut().filter(|d| d.completed)
            && r.plan.success_metrics.iter().any(|m| m.target.is_some())
        {
            let judged = crate::service::people::success(state, &row, &r).await?;
            d.met_targets = wavegate_rollout::success::all_met(&judged);
        }
        deployments.extend(d);
    }
    // An emergency change is unplanned work that answers a failure: rework, and a failed change.
    for cr in crate::service::changes::list(state).await? {
        let (Some(e), Some(applied)) = (&cr.emergency, &cr.applied) else { continue };
        let in_scope = cr.environments.iter().any(|env| allows(env))
            && environment.is_none_or(|want| cr.environments.iter().any(|env| env == want));
        let Ok(at) = chrono::DateTime::parse_from_rfc3339(&applied.at) else { continue };
        if !in_scope || e.reason.is_empty() {
            continue;
        }
        let group = cr
            .items
            .iter()
            .find_map(|i| groups.get(&i.key).map(|(_, g)| g.clone()))
            .unwrap_or_else(|| "unknown".into());
        deployments.push(Deployment {
            group,
            completed: false,
            ended_at: at.to_utc(),
            failing_wave_started_at: None,
            commit_time: None,
            rework: true,
            met_targets: None,
        });
    }
    Ok(dora(&deployments, since, until, if by_team { "team" } else { "service" }))
}

/// The release calendar from now for `days`: live rollouts (to their earliest end), blackout
/// windows of every plan, scheduled starts, the freeze, and conflicts between dependent
/// services, ordered by start.
pub async fn calendar(
    state: &AppState,
    allows: impl Fn(&str) -> bool,
    now: Time,
    days: i64,
) -> ServiceResult<Vec<Entry>> {
    let to = now + chrono::Duration::days(days);
    let mut entries = Vec::new();
    let mut live = Vec::new();
    for row in state.store.rollouts(true).await? {
        if !allows(&row.environment) {
            continue;
        }
        let Ok(r) = decode::<Rollout>("rollout", &row.doc) else { continue };
        let remaining: chrono::Duration = r
            .plan
            .waves
            .iter()
            .skip(r.wave)
            .map(|w| w.hold.to_chrono())
            .fold(chrono::Duration::zero(), |a, b| a + b);
        let end = (r.wave_started_at + remaining).max(now + chrono::Duration::minutes(1));
        entries.push(Entry {
            kind: "rollout",
            title: format!(
                "{} {} → {} ({})",
                r.plan.release.name, r.plan.release.version, r.plan.flag, row.state
            ),
            start: r.started_at,
            end,
            environment: Some(row.environment.clone()),
            plan: Some(r.plan.name.clone()),
            rollouts: vec![r.id.clone()],
        });
        live.push(LiveRollout {
            id: r.id.clone(),
            plan: r.plan.name.clone(),
            environment: row.environment.clone(),
            service: r.plan.release.service.clone(),
            depends_on: r.plan.release.depends_on.clone(),
            start: r.started_at,
            end,
        });
    }
    entries.extend(conflicts(&live));
    for head in state.heads(Kind::Plan, false).await? {
        let Ok(plan) = decode::<wavegate_rollout::plan::PlanSpec>("plan", &head.spec) else {
            continue;
        };
        if !allows(&plan.environment) {
            continue;
        }
        for spec in &plan.blackouts {
            let Ok(b) = wavegate_rollout::blackout::Blackout::compile(spec) else { continue };
            for (start, end) in b.occurrences(now, to) {
                entries.push(Entry {
                    kind: "blackout",
                    title: format!("blackout {} ({})", spec.name, plan.name),
                    start,
                    end,
                    environment: Some(plan.environment.clone()),
                    plan: Some(plan.name.clone()),
                    rollouts: Vec::new(),
                });
            }
        }
    }
    for s in crate::service::schedules::pending(state).await? {
        // A schedule whose plan is gone has no environment: every one of them is needed.
        let readable = s.environment.as_deref().map_or(allows("*"), &allows);
        if s.start_at < to && readable {
            entries.push(Entry {
                kind: "scheduled",
                title: format!("scheduled start of {} (by {})", s.plan, s.requester),
                start: s.start_at,
                end: s.start_at + chrono::Duration::minutes(15),
                environment: s.environment,
                plan: Some(s.plan),
                rollouts: Vec::new(),
            });
        }
    }
    if let Some(why) = crate::service::freeze::active(state).await? {
        entries.push(Entry {
            kind: "freeze",
            title: format!("freeze: {why}"),
            start: now,
            end: to,
            environment: None,
            plan: None,
            rollouts: Vec::new(),
        });
    }
    entries.sort_by(|a, b| a.start.cmp(&b.start).then(a.kind.cmp(b.kind)));
    Ok(entries)
}

/// The feedback digest of release `release`.
pub async fn feedback_digest(
    state: &AppState,
    release: &str,
) -> ServiceResult<wavegate_rollout::feedback::Digest> {
    use wavegate_rollout::feedback::{Item, digest};
    let rows = state.store.feedback(release).await?;
    let items: Vec<Item<'_>> = rows
        .iter()
        .map(|r| Item {
            category: &r.category,
            cohort: &r.cohort,
            sentiment: &r.sentiment,
            text: &r.body,
        })
        .collect();
    Ok(digest(&items))
}

/// The adoption report of a rollout (lagging cohorts judged in `lagging_window` days), and
/// the fields that name it.
pub async fn adoption(
    state: &AppState,
    row: &RolloutRow,
    r: &Rollout,
    lagging_window: u32,
) -> ServiceResult<(AdoptionReport, AdoptionAbout)> {
    let spec = r.plan.adoption.as_ref().ok_or_else(|| {
        ServiceError::invalid(
            "id",
            format!(
                "rollout {:?} does not track adoption: its plan {:?} has no `adoption:` section (cohorts, key_task)",
                r.id, r.plan.name
            ),
        )
    })?;
    let now = state.clock.now();
    let today = now.timestamp().div_euclid(86_400);
    let mut counts: [Vec<CohortCount>; 3] = Default::default();
    for (i, w) in WINDOWS.iter().enumerate() {
        let since = today - i64::from(*w) + 1;
        for c in state.store.adoption(&r.id, since).await? {
            let values: Vec<String> = serde_json::from_str(&c.cohort).map_err(|e| {
                ServiceError::internal(format!("stored cohort {:?} does not decode: {e}", c.cohort))
            })?;
            counts[i].push(CohortCount {
                values,
                exposed: c.exposed.max(0) as u64,
                adopted: c.adopted.max(0) as u64,
            });
        }
    }
    let until = r.started_at + spec.track().to_chrono();
    let about = AdoptionAbout {
        rollout: r.id.clone(),
        plan: r.plan.name.clone(),
        flag: r.plan.flag.clone(),
        environment: row.environment.clone(),
        state: row.state.clone(),
        release: r.plan.release.label(),
        started_at: r.started_at,
        tracked_until: until,
        // As event ingest decides: a rollout rolled back or aborted no longer serves the new
        // variant, so its users stop being tracked.
        tracking: now < until && row.state != "rolled_back" && row.state != "aborted",
        as_of: now.format("%Y-%m-%d").to_string(),
    };
    Ok((report(spec, &counts, lagging_window), about))
}

/// The post-rollout report of a rollout, and (for the HTML page) each guardrail's chart and
/// the feedback chart as (caption, SVG) pairs.
pub async fn post_rollout_report(
    state: &AppState,
    row: &RolloutRow,
    r: &Rollout,
) -> ServiceResult<(PostRolloutReport, Vec<(String, String)>)> {
    let mut audit = state.store.audit_of(&format!("rollout:{}", r.id), 500).await?;
    audit.sort_by_key(|a| a.entry.seq);
    let timeline = audit
        .iter()
        .map(|a| {
            let e: Value = serde_json::from_str(&a.entry.canonical).unwrap_or_default();
            TimelineEntry {
                at: a.at.clone(),
                actor: a.actor.clone(),
                action: a.action.clone(),
                reason: e["reason"].as_str().map(str::to_owned),
            }
        })
        .collect();
    let mut rows = state.store.verdicts(&r.id, 1000).await?;
    rows.reverse();
    let verdicts: Vec<Verdict<'_>> = rows.iter().map(verdict).collect();
    let feedback = feedback_digest(state, &r.plan.release.name).await?;
    // Adoption by cohort, when the plan tracks it (judged in the 30-day window).
    let adoption = match r.plan.adoption {
        Some(_) => Some(adoption(state, row, r, 30).await?.0),
        None => None,
    };
    let report = post_rollout(Inputs {
        rollout: r,
        environment: &row.environment,
        state: &row.state,
        timeline,
        verdicts: &verdicts,
        feedback,
        adoption,
        success: crate::service::people::success(state, row, r).await?,
    });
    // Each guardrail's estimate and always-valid bound over the rollout, and the feedback.
    let mut figures = Vec::new();
    for g in &r.plan.guardrails {
        let points = guardrail_points(&verdicts, &g.name, None);
        figures
            .push((format!("Guardrail {}", g.name), guardrail_svg(&g.name, g.tolerance, &points)));
    }
    if report.feedback.overall.count > 0 {
        figures.push((
            "Pilot feedback sentiment".to_owned(),
            wavegate_rollout::feedback::sentiment_svg(&report.feedback),
        ));
    }
    Ok((report, figures))
}

/// A stored verdict as reports and charts read it.
pub fn verdict(v: &VerdictRow) -> Verdict<'_> {
    Verdict {
        wave: v.wave,
        name: &v.name,
        kind: &v.kind,
        verdict: &v.verdict,
        at: v.at,
        report: &v.report,
    }
}
