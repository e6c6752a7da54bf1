//! The post-rollout report (pure): what happened to a rollout (its timeline, the decisions and
//! the verdicts behind them), what pilots said, how the new variant was adopted, whether its
//! flag can go, and retro prompts drawn from all of that. The server gathers the inputs; this
//! module assembles the report and writes its Markdown.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use wavegate_core::text::escape_markdown;

use crate::adoption::AdoptionReport;
use crate::feedback::Digest;
use crate::machine::{Rollout, State};
use crate::success::{Status, SuccessStatus};

/// One audited event of the rollout, oldest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct TimelineEntry {
    /// When (as recorded).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What (`rollout.start`, `rollout.promote`…).
    pub action: String,
    /// Why, when given.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub reason: Option<String>,
}

/// A stored verdict, as reports and charts read it.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict<'a> {
    /// The wave, 0-based.
    pub wave: i64,
    /// The guardrail, check or `srm`.
    pub name: &'a str,
    /// `guardrail`, `srm` or `check`.
    pub kind: &'a str,
    /// `pass`, `fail`, `inconclusive`, `ok`, `mismatch`.
    pub verdict: &'a str,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// The evidence (a guardrail's report: estimate, bounds, explanation…).
    pub report: &'a serde_json::Value,
}

/// The last verdict per guardrail (or check) and wave: the evidence behind a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Decision {
    /// The wave, 1-based.
    pub wave: i64,
    /// The guardrail, check or `srm`.
    pub name: String,
    /// `guardrail`, `srm` or `check`.
    pub kind: String,
    /// The verdict.
    pub verdict: String,
    /// Its explanation.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub explanation: Option<String>,
}

/// The post-rollout report (`GET /api/v1/rollouts/{id}/report`, JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct PostRolloutReport {
    /// Adoption by cohort in the 30-day window, when the plan tracks it.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub adoption: Option<AdoptionReport>,
    /// The stale-flag notice, once the flag has served everyone through the settle time.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub stale: Option<String>,
    /// The rollout's id.
    pub rollout: String,
    /// The plan's name.
    pub plan: String,
    /// `name version` of the release.
    pub release: String,
    /// The environment.
    pub environment: String,
    /// The rollout's state (`completed`, `rolled_back`…).
    pub state: String,
    /// How many waves the plan has.
    pub waves: usize,
    /// The wave it reached, 1-based.
    pub wave: usize,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// Its audited events, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// The last verdict per guardrail and wave.
    pub decisions: Vec<Decision>,
    /// Pilot feedback on the release.
    pub feedback: Digest,
    /// Questions for the retro.
    pub retro_prompts: Vec<String>,
    /// Success targets, judged now.
    #[serde(default)]
    pub success: Vec<SuccessStatus>,
    /// The plan's after-release items, each with who ticked it off (a rollout is closed only
    /// when it completed and every item is done).
    #[serde(default)]
    pub after_release: Vec<AfterReleaseItem>,
    /// Completed with every after-release item done.
    #[serde(default)]
    pub closed: bool,
    /// The artifact's signature as verified at the start, when one was offered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<crate::signature::ArtifactEvidence>,
}

/// One after-release item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AfterReleaseItem {
    /// The item as the plan words it.
    pub item: String,
    /// Who ticked it off (None: still to do).
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub done_by: Option<String>,
    /// When.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub done_at: Option<DateTime<Utc>>,
}

/// What the report is assembled from.
#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    /// The rollout.
    pub rollout: &'a Rollout,
    /// Its environment.
    pub environment: &'a str,
    /// Its state as stored.
    pub state: &'a str,
    /// Its audited events, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Its verdicts, oldest first.
    pub verdicts: &'a [Verdict<'a>],
    /// The feedback digest of its release.
    pub feedback: Digest,
    /// Its adoption report (30-day window), when the plan tracks adoption.
    pub adoption: Option<AdoptionReport>,
    /// Its success targets, judged now.
    pub success: Vec<SuccessStatus>,
}

/// Assembles the post-rollout report.
pub fn post_rollout(inputs: Inputs<'_>) -> PostRolloutReport {
    let r = inputs.rollout;
    let mut decisions: Vec<Decision> = Vec::new();
    for v in inputs.verdicts {
        decisions.retain(|d| !(d.name == v.name && d.wave == v.wave + 1));
        decisions.push(Decision {
            wave: v.wave + 1,
            name: v.name.to_owned(),
            kind: v.kind.to_owned(),
            verdict: v.verdict.to_owned(),
            explanation: v.report.get("explanation").and_then(|e| e.as_str()).map(str::to_owned),
        });
    }
    let holds = inputs.timeline.iter().filter(|e| e.action == "rollout.hold").count();
    let rolled_back = matches!(r.state, State::RolledBack { .. });
    let mut prompts =
        retro_prompts(r, rolled_back, holds, inputs.feedback.overall.negative_share());
    if let Some(a) = inputs.adoption.as_ref().filter(|a| !a.lagging.is_empty()) {
        let who: Vec<String> = a.lagging.iter().map(|l| l.cohort()).collect();
        // Before the closing "ready to remove?" prompt.
        let at = prompts.len().saturating_sub(1);
        prompts.insert(at, format!("Adoption lags in {}: what would help them (training, champions, communications), and who follows up?", who.join(", ")));
    }
    let missed: Vec<String> = inputs
        .success
        .iter()
        .filter(|s| matches!(s.status, Status::Missed | Status::AtRisk))
        .map(|s| format!("{} {}", s.metric, s.target))
        .collect();
    if !missed.is_empty() {
        let at = prompts.len().saturating_sub(1);
        prompts.insert(
            at,
            format!(
                "Success targets not met: {}. Was the target right, and what would move it?",
                missed.join(", ")
            ),
        );
    }
    let after_release = after_release(r);
    let left: Vec<&str> =
        after_release.iter().filter(|i| i.done_by.is_none()).map(|i| i.item.as_str()).collect();
    if !left.is_empty() {
        prompts.push(format!(
            "Before this rollout is closed: {} (`wavegate rollout close-item`).",
            left.join("; ")
        ));
    }
    let closed = r.state == State::Completed && left.is_empty();
    let stale = r.stale_at.map(|at| {
        format!(
            "Flag `{}` is stale since {}: it has served everyone through the settle time; remove it from code.",
            r.plan.flag,
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )
    });
    PostRolloutReport {
        adoption: inputs.adoption,
        stale,
        rollout: r.id.clone(),
        plan: r.plan.name.clone(),
        release: r.plan.release.label(),
        environment: inputs.environment.to_owned(),
        state: inputs.state.to_owned(),
        waves: r.plan.waves.len(),
        wave: r.wave + 1,
        started_at: r.started_at,
        timeline: inputs.timeline,
        decisions,
        feedback: inputs.feedback,
        retro_prompts: prompts,
        success: inputs.success,
        after_release,
        closed,
        artifact: r.artifact.clone(),
    }
}

/// The plan's after-release items, each with who ticked it off.
pub fn after_release(r: &Rollout) -> Vec<AfterReleaseItem> {
    r.plan
        .after_release
        .iter()
        .map(|item| {
            let done = r.after_release_done.get(item);
            AfterReleaseItem {
                item: item.clone(),
                done_by: done.map(|a| a.principal.clone()),
                done_at: done.map(|a| a.at),
            }
        })
        .collect()
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

/// The report as Markdown. Every value that came from outside (plan text, people's reasons and
/// names, pilots' feedback, SDKs' cohorts) is escaped ([`escape_markdown`]).
pub fn to_markdown(rep: &PostRolloutReport) -> String {
    let mut md = format!(
        "# Post-rollout report: {} ({})\n\n{} in {}: **{}**, wave {} of {}, started {}.\n\n## Timeline\n\n",
        escape_markdown(&rep.release),
        escape_markdown(&rep.rollout),
        escape_markdown(&rep.plan),
        escape_markdown(&rep.environment),
        escape_markdown(&rep.state),
        rep.wave,
        rep.waves,
        rep.started_at.to_rfc3339_opts(SecondsFormat::Secs, true)
    );
    for e in &rep.timeline {
        let reason =
            e.reason.as_ref().map(|r| format!(": {}", escape_markdown(r))).unwrap_or_default();
        let (at, action, actor) =
            (escape_markdown(&e.at), escape_markdown(&e.action), escape_markdown(&e.actor));
        md.push_str(&format!("- {at} — {action} by {actor}{reason}\n"));
    }
    if let Some(a) = &rep.artifact {
        md.push_str(&format!(
            "\n## Artifact\n\nSigned by key {} ({} key), verified at the start; trusted comment: {}. BLAKE2b-512 {}{}.\n",
            escape_markdown(&a.key_id),
            escape_markdown(&a.key_source),
            escape_markdown(&a.trusted_comment),
            a.blake2b,
            a.sha256.as_ref().map(|s| format!(", SHA-256 {s}")).unwrap_or_default()
        ));
    }
    md.push_str("\n## Decisions and their verdicts\n\n| wave | check | verdict | why |\n|---:|---|---|---|\n");
    for d in &rep.decisions {
        let why = escape_markdown(d.explanation.as_deref().unwrap_or(""));
        let (name, verdict) = (escape_markdown(&d.name), escape_markdown(&d.verdict));
        md.push_str(&format!("| {} | {name} | {verdict} | {why} |\n", d.wave));
    }
    if rep.decisions.is_empty() {
        md.push_str("| — | no guardrail verdicts were recorded | | |\n");
    }
    md.push_str("\n## Feedback themes\n\n");
    if rep.feedback.overall.count == 0 {
        md.push_str("No pilot feedback was posted for this release.\n");
    } else {
        for c in &rep.feedback.categories {
            let themes: Vec<String> =
                c.themes.iter().map(|(w, n)| format!("{} ({n})", escape_markdown(w))).collect();
            md.push_str(&format!(
                "- {}: {} items, {:.0}% negative{}\n",
                escape_markdown(&c.category),
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
    if let Some(a) = &rep.adoption {
        md.push_str(&format!(
            "\n## Adoption\n\nUsers served the new variant who did the key task ({}):",
            escape_markdown(&a.key_task)
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
            let (who, share, overall) =
                (escape_markdown(&l.cohort()), l.share(), l.overall * 100.0);
            md.push_str(&format!("- Lagging: {who}, {share} against {overall:.1}% overall\n"));
        }
    }
    if !rep.success.is_empty() {
        md.push_str("\n## Success targets\n\n| metric | target | cohort | status | evidence | by |\n|---|---|---|---|---|---|\n");
        for s in &rep.success {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} |\n",
                escape_markdown(&s.metric),
                escape_markdown(&s.target),
                escape_markdown(&s.cohort),
                s.status.as_str(),
                escape_markdown(&s.evidence),
                s.deadline.format("%Y-%m-%d")
            ));
        }
    }
    if !rep.after_release.is_empty() {
        md.push_str(&format!(
            "\n## After release{}\n\n",
            if rep.closed { " (closed)" } else { "" }
        ));
        for i in &rep.after_release {
            let mark = match (&i.done_by, i.done_at) {
                (Some(by), Some(at)) => format!(
                    "[x] {} — {} ({})",
                    escape_markdown(&i.item),
                    escape_markdown(by),
                    at.format("%Y-%m-%d")
                ),
                _ => format!("[ ] {}", escape_markdown(&i.item)),
            };
            md.push_str(&format!("- {mark}\n"));
        }
    }
    // Written here from a flag key (letters, digits, `.`, `_`, `-`), in a code span.
    if let Some(line) = &rep.stale {
        md.push_str(&format!("\n## Flag status\n\n{line}\n"));
    }
    md.push_str("\n## Retro prompts\n\n");
    for p in &rep.retro_prompts {
        // Wavegate's questions, with cohorts named in them.
        md.push_str(&format!("- {}\n", escape_markdown(p)));
    }
    md
}
