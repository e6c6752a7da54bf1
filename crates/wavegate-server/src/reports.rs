//! Reports: `GET /api/v1/reports/dora` — DORA metrics from the rollouts that ended in a period
//! (`wavegate_rollout::report`), as JSON, Markdown or HTML; `GET /api/v1/calendar` — the release
//! calendar (`wavegate_rollout::calendar`), as JSON or iCalendar.

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::report::{Deployment, dora, to_html, to_markdown};
use wavegate_store::TokenKind;

use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::json::ApiQuery as Query;
use crate::state::AppState;

/// Report routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/reports/dora", get(dora_report))
        .route("/api/v1/calendar", get(calendar))
        .route("/api/v1/feedback", axum::routing::post(post_feedback))
        .route("/api/v1/feedback/digest", get(feedback_digest))
        .route("/api/v1/rollouts/{id}/report", get(rollout_report))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DoraQuery {
    /// A span back from now (`30d`, default) or an RFC 3339 time.
    #[serde(default)]
    since: Option<String>,
    /// RFC 3339; default now.
    #[serde(default)]
    until: Option<String>,
    /// `service` (default) or `team`.
    #[serde(default)]
    by: Option<String>,
    /// Only rollouts in this environment (default: all the token may read).
    #[serde(default)]
    environment: Option<String>,
    /// `json` (default), `markdown` or `html`.
    #[serde(default)]
    format: Option<String>,
}

fn time(
    field: &str,
    s: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    wavegate_rollout::duration::parse_span(s).map(|span| now - span.to_chrono()).map_err(|_| {
        ApiError::invalid(
            field,
            format!("{field} must be a span like 30d or an RFC 3339 time, got {s:?}"),
        )
    })
}

async fn dora_report(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DoraQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let now = state.clock.now();
    let since = time("since", q.since.as_deref().unwrap_or("30d"), now)?;
    let until = match &q.until {
        Some(u) => time("until", u, now)?,
        None => now,
    };
    if until <= since {
        return Err(ApiError::invalid("until", "until must be after since"));
    }
    let by_team = match q.by.as_deref().unwrap_or("service") {
        "service" => false,
        "team" => true,
        other => {
            return Err(ApiError::invalid(
                "by",
                format!("by must be service or team, got {other:?}"),
            ));
        }
    };
    let mut deployments = Vec::new();
    for row in state.store.rollouts(false).await? {
        if !p.0.allows_env(&row.environment)
            || q.environment.as_ref().is_some_and(|e| *e != row.environment)
        {
            continue;
        }
        let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) else { continue };
        deployments.extend(Deployment::of(&r, by_team, row.updated_at));
    }
    let report = dora(&deployments, since, until, if by_team { "team" } else { "service" });
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => axum::Json(report).into_response(),
        "markdown" => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], to_markdown(&report))
                .into_response()
        }
        "html" => {
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], to_html(&report)).into_response()
        }
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json, markdown or html, got {other:?}"),
            ));
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CalendarQuery {
    /// Days ahead to show (1–366, default 14).
    #[serde(default)]
    days: Option<i64>,
    /// `json` (default) or `ics`.
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/calendar`: live rollouts (to their earliest end), blackout windows of every
/// plan, the freeze, and conflicts between dependent services, as JSON or iCalendar.
async fn calendar(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<CalendarQuery>,
) -> ApiResult<Response> {
    use wavegate_rollout::calendar::{Entry, LiveRollout, conflicts, to_ics};
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let days = q.days.unwrap_or(14);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid("days", "days must be 1 to 366"));
    }
    let now = state.clock.now();
    let to = now + chrono::Duration::days(days);
    let mut entries = Vec::new();
    let mut live = Vec::new();
    for row in state.store.rollouts(true).await? {
        if !p.0.allows_env(&row.environment) {
            continue;
        }
        let Ok(r) = serde_json::from_value::<Rollout>(row.doc.clone()) else { continue };
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
    for head in state.store.list(wavegate_store::Kind::Plan, false).await? {
        let Ok(plan) = serde_json::from_value::<wavegate_rollout::plan::PlanSpec>(head.spec) else {
            continue;
        };
        if !p.0.allows_env(&plan.environment) {
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
    for (plan, at, by, _) in crate::schedule::pending(&state).await? {
        if at < to {
            entries.push(Entry {
                kind: "scheduled",
                title: format!("scheduled start of {plan} (by {by})"),
                start: at,
                end: at + chrono::Duration::minutes(15),
                environment: None,
                plan: Some(plan),
                rollouts: Vec::new(),
            });
        }
    }
    if let Some(why) = crate::freeze::active(&state).await? {
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
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => axum::Json(serde_json::json!({"from": now, "to": to, "entries": entries}))
            .into_response(),
        "ics" => ([(header::CONTENT_TYPE, "text/calendar; charset=utf-8")], to_ics(&entries, now))
            .into_response(),
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json or ics, got {other:?}"),
            ));
        }
    })
}

/// Most feedback items per request.
pub const MAX_FEEDBACK: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackIn {
    release: String,
    category: String,
    cohort: String,
    sentiment: String,
    text: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum FeedbackBody {
    Many { feedback: Vec<FeedbackIn> },
    One(FeedbackIn),
}

/// `POST /api/v1/feedback`: one item, or `{"feedback": [...]}`; validated whole.
async fn post_feedback(
    State(state): State<AppState>,
    p: Principal,
    crate::json::JsonBody(body): crate::json::JsonBody<FeedbackBody>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let items = match body {
        FeedbackBody::Many { feedback } => feedback,
        FeedbackBody::One(f) => vec![f],
    };
    if items.is_empty() || items.len() > MAX_FEEDBACK {
        return Err(ApiError::invalid("feedback", format!("send 1 to {MAX_FEEDBACK} items")));
    }
    let now = state.clock.now();
    let mut rows = Vec::with_capacity(items.len());
    for (i, f) in items.into_iter().enumerate() {
        let at = |field: &str| format!("feedback[{i}].{field}");
        for (field, v, max) in [
            ("release", &f.release, 128),
            ("category", &f.category, 64),
            ("cohort", &f.cohort, 64),
            ("text", &f.text, 4000),
        ] {
            if v.trim().is_empty() || v.len() > max {
                return Err(ApiError::invalid(
                    at(field),
                    format!("{field} must be 1 to {max} characters"),
                ));
            }
        }
        if !matches!(f.sentiment.as_str(), "positive" | "neutral" | "negative") {
            return Err(ApiError::invalid(
                at("sentiment"),
                "sentiment must be positive, neutral or negative",
            ));
        }
        rows.push(wavegate_store::FeedbackRow {
            id: 0,
            release: f.release.trim().to_owned(),
            category: f.category.trim().to_lowercase(),
            cohort: f.cohort.trim().to_owned(),
            sentiment: f.sentiment,
            body: f.text,
            at: now,
            principal: p.name().to_owned(),
        });
    }
    let ids = state.store.add_feedback(&rows).await?;
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(serde_json::json!({"accepted": ids.len(), "ids": ids})),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DigestQuery {
    release: String,
    #[serde(default)]
    format: Option<String>,
}

/// `GET /api/v1/feedback/digest?release=…`: themes by category and cohort.
async fn feedback_digest(
    State(state): State<AppState>,
    p: Principal,
    Query(q): Query<DigestQuery>,
) -> ApiResult<Response> {
    use wavegate_rollout::feedback::{Item, digest, to_markdown};
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let rows = state.store.feedback(&q.release).await?;
    let items: Vec<Item<'_>> = rows
        .iter()
        .map(|r| Item {
            category: &r.category,
            cohort: &r.cohort,
            sentiment: &r.sentiment,
            text: &r.body,
        })
        .collect();
    let d = digest(&items);
    Ok(match q.format.as_deref().unwrap_or("json") {
        "json" => {
            axum::Json(serde_json::json!({"release": q.release, "digest": d})).into_response()
        }
        "markdown" => {
            ([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], to_markdown(&q.release, &d))
                .into_response()
        }
        "html" => {
            let figures = if d.overall.count == 0 {
                vec![]
            } else {
                vec![(
                    "Sentiment by category and cohort".to_owned(),
                    wavegate_rollout::feedback::sentiment_svg(&d),
                )]
            };
            let page = wavegate_rollout::report::markdown_page_with(
                &format!("Pilot feedback: {}", q.release),
                &to_markdown(&q.release, &d),
                &figures,
            );
            ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response()
        }
        other => {
            return Err(ApiError::invalid(
                "format",
                format!("format must be json, markdown or html, got {other:?}"),
            ));
        }
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RolloutReportQuery {
    #[serde(default)]
    format: Option<String>,
}

/// Retro prompts, from what happened.
fn retro_prompts(
    r: &Rollout,
    rolled_back: bool,
    holds: usize,
    feedback_negative: f64,
) -> Vec<String> {
    let mut out = vec!["What would we do the same way next time?".to_owned()];
    if rolled_back {
        out.push("Which signal caught the failure, how long after exposure, and could an earlier wave or a tighter guardrail have caught it sooner?".into());
        out.push("Did the rollback restore service for every user, and what does the runbook entry need?".into());
    }
    if holds > 0 {
        out.push(format!("The rollout was held {holds} time(s) (blackout, freeze or no-go): was the plan's calendar realistic?"));
    }
    if feedback_negative >= 0.3 {
        out.push("Pilot feedback was mostly negative in some categories: which themes must be fixed before the next release?".into());
    }
    if r.plan.guardrails.is_empty() {
        out.push(
            "The plan had no guardrails: which metric would have told us it went wrong?".into(),
        );
    }
    out.push("Is the flag ready to be removed from code?".into());
    out
}

/// `GET /api/v1/rollouts/{id}/report`: timeline, decisions with their verdicts, feedback
/// themes and retro prompts (JSON or Markdown).
async fn rollout_report(
    State(state): State<AppState>,
    p: Principal,
    crate::json::ApiPath(id): crate::json::ApiPath<String>,
    Query(q): Query<RolloutReportQuery>,
) -> ApiResult<Response> {
    p.require(&[TokenKind::Admin, TokenKind::ServerSdk])?;
    let (row, r) = crate::rollouts::load(&state, &p, &id).await?;
    let audit = state.store.audit_of(&format!("rollout:{id}"), 500).await?;
    let mut audit = audit;
    audit.sort_by_key(|a| a.entry.seq);
    let timeline: Vec<serde_json::Value> = audit
        .iter()
        .map(|a| {
            let e: serde_json::Value = serde_json::from_str(&a.entry.canonical).unwrap_or_default();
            serde_json::json!({"at": a.at, "actor": a.actor, "action": a.action, "reason": e["reason"]})
        })
        .collect();
    let mut verdicts = state.store.verdicts(&id, 1000).await?;
    verdicts.reverse();
    // The last verdict per guardrail and wave: the decision's evidence.
    let mut decisions: Vec<serde_json::Value> = Vec::new();
    for v in &verdicts {
        decisions.retain(|d| !(d["name"] == v.name.as_str() && d["wave"] == v.wave + 1));
        decisions.push(serde_json::json!({"wave": v.wave + 1, "name": v.name, "kind": v.kind, "verdict": v.verdict,
            "explanation": v.report.get("explanation").cloned().unwrap_or(serde_json::Value::Null)}));
    }
    let feedback = state.store.feedback(&r.plan.release.name).await?;
    let items: Vec<wavegate_rollout::feedback::Item<'_>> = feedback
        .iter()
        .map(|f| wavegate_rollout::feedback::Item {
            category: &f.category,
            cohort: &f.cohort,
            sentiment: &f.sentiment,
            text: &f.body,
        })
        .collect();
    let digest = wavegate_rollout::feedback::digest(&items);
    let holds = timeline.iter().filter(|e| e["action"] == "rollout.hold").count();
    let rolled_back = matches!(r.state, wavegate_rollout::machine::State::RolledBack { .. });
    let mut prompts = retro_prompts(&r, rolled_back, holds, digest.overall.negative_share());
    let stale = r.stale_at.map(|at| {
        format!(
            "Flag `{}` is stale since {}: it has served everyone through the settle time; remove it from code.",
            r.plan.flag,
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        )
    });
    // Adoption by cohort, when the plan tracks it (judged in the 30-day window).
    let adoption = match r.plan.adoption {
        Some(_) => Some(crate::adoption::build(&state, &row, &r, 30).await?.0),
        None => None,
    };
    if let Some(a) = adoption.as_ref().filter(|a| !a.lagging.is_empty()) {
        let who: Vec<String> =
            a.lagging.iter().map(|l| format!("{} = {}", l.attribute, l.value)).collect();
        // Before the closing "ready to remove?" prompt.
        let at = prompts.len().saturating_sub(1);
        prompts.insert(at, format!("Adoption lags in {}: what would help them (training, champions, communications), and who follows up?", who.join(", ")));
    }
    let report = serde_json::json!({
        "adoption": adoption,
        "stale": stale,
        "rollout": id, "plan": r.plan.name, "release": format!("{} {}", r.plan.release.name, r.plan.release.version),
        "environment": row.environment, "state": row.state, "waves": r.plan.waves.len(), "wave": r.wave + 1,
        "started_at": r.started_at, "timeline": timeline, "decisions": decisions,
        "feedback": digest, "retro_prompts": prompts,
    });
    if q.format.as_deref().unwrap_or("json") == "json" {
        return Ok(axum::Json(report).into_response());
    }
    let html = match q.format.as_deref() {
        Some("markdown") => false,
        Some("html") => true,
        _ => return Err(ApiError::invalid("format", "format must be json, markdown or html")),
    };
    let mut md = format!(
        "# Post-rollout report: {} ({})\n\n{} in {}: **{}**, wave {} of {}, started {}.\n\n## Timeline\n\n",
        report["release"].as_str().unwrap_or(""),
        id,
        r.plan.name,
        row.environment,
        row.state,
        r.wave + 1,
        r.plan.waves.len(),
        r.started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    for e in report["timeline"].as_array().into_iter().flatten() {
        md.push_str(&format!(
            "- {} — {} by {}{}\n",
            e["at"].as_str().unwrap_or(""),
            e["action"].as_str().unwrap_or(""),
            e["actor"].as_str().unwrap_or(""),
            e["reason"].as_str().map(|r| format!(": {r}")).unwrap_or_default()
        ));
    }
    md.push_str("\n## Decisions and their verdicts\n\n| wave | check | verdict | why |\n|---:|---|---|---|\n");
    for d in &decisions {
        md.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            d["wave"],
            d["name"].as_str().unwrap_or(""),
            d["verdict"].as_str().unwrap_or(""),
            d["explanation"].as_str().unwrap_or("")
        ));
    }
    if decisions.is_empty() {
        md.push_str("| — | no guardrail verdicts were recorded | | |\n");
    }
    md.push_str("\n## Feedback themes\n\n");
    if digest.overall.count == 0 {
        md.push_str("No pilot feedback was posted for this release.\n");
    } else {
        for c in &digest.categories {
            let themes: Vec<String> = c.themes.iter().map(|(w, n)| format!("{w} ({n})")).collect();
            md.push_str(&format!(
                "- {}: {} items, {:.0}% negative{}\n",
                c.category,
                c.tally.count,
                c.tally.negative_share() * 100.0,
                if themes.is_empty() {
                    String::new()
                } else {
                    format!("; themes: {}", themes.join(", "))
                }
            ));
        }
    }
    if let Some(a) = &adoption {
        md.push_str(&format!(
            "\n## Adoption\n\nUsers served the new variant who did the key task (`{}`):",
            a.key_task
        ));
        for (w, o) in a.windows.iter().zip(&a.overall) {
            match o.rate {
                Some(p) => md.push_str(&format!(
                    " {:.1}% of {} in the last {w} days;",
                    p * 100.0,
                    o.exposed
                )),
                None => md.push_str(&format!(" nobody in the last {w} days;")),
            }
        }
        md.pop();
        md.push_str(".\n");
        for l in &a.lagging {
            md.push_str(&format!(
                "- Lagging: {} = {}, {:.1}% of {} users against {:.1}% overall\n",
                l.attribute,
                l.value,
                l.rate.rate.unwrap_or(0.0) * 100.0,
                l.rate.exposed,
                l.overall * 100.0
            ));
        }
    }
    if let Some(line) = &stale {
        md.push_str(&format!("\n## Flag status\n\n{line}\n"));
    }
    md.push_str("\n## Retro prompts\n\n");
    for p in &prompts {
        md.push_str(&format!("- {p}\n"));
    }
    if html {
        // Each guardrail's estimate and always-valid bound over the rollout, and the feedback.
        let mut figures = Vec::new();
        for g in &r.plan.guardrails {
            let points = crate::chart::guardrail_points(&verdicts, &g.name, None);
            figures.push((
                format!("Guardrail {}", g.name),
                crate::chart::guardrail_svg(&g.name, g.tolerance, &points),
            ));
        }
        if digest.overall.count > 0 {
            figures.push((
                "Pilot feedback sentiment".to_owned(),
                wavegate_rollout::feedback::sentiment_svg(&digest),
            ));
        }
        let page = wavegate_rollout::report::markdown_page_with(
            &format!("Post-rollout report: {id}"),
            &md,
            &figures,
        );
        return Ok(([(header::CONTENT_TYPE, "text/html; charset=utf-8")], page).into_response());
    }
    Ok(([(header::CONTENT_TYPE, "text/markdown; charset=utf-8")], md).into_response())
}
