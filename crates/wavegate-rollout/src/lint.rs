//! `plan lint`: structural errors and anti-patterns, each with a line and column.

use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::Spanned;
use wavegate_core::flagfile::{FlagFileError, parse_yaml};

use crate::blackout::Blackout;
use crate::plan::{Comparison, Direction, PlanSpec, Risk, SignalSource};

/// How bad a lint finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The plan must not be applied.
    Error,
    /// Allowed, but probably a mistake.
    Warning,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    /// Error or warning.
    pub severity: Severity,
    /// 1-based line, when known.
    pub line: Option<u64>,
    /// 1-based column, when known.
    pub column: Option<u64>,
    /// A stable code, like `first-wave-too-large`.
    pub code: &'static str,
    /// What is wrong and what to do.
    pub message: String,
}

/// Largest first wave allowed (a "big-bang" first wave is an anti-pattern).
pub const MAX_FIRST_WAVE_BP: u16 = 2500;

/// The most bad readings a Prometheus guardrail may tolerate (`failure_limit`).
pub const MAX_FAILURE_LIMIT: u32 = 100;

#[derive(Deserialize)]
struct Loc {
    #[serde(default)]
    waves: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    guardrails: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    owners: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    blackouts: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    release: Option<Spanned<IgnoredAny>>,
    #[serde(default)]
    success_metrics: Vec<Spanned<IgnoredAny>>,
    #[serde(default)]
    stakeholders: Option<Spanned<IgnoredAny>>,
}

/// Where wave `i` (0-based) of plan file `text` starts: (line, column), 1-based.
pub fn wave_position(text: &str, i: usize) -> Option<(u64, u64)> {
    let loc: Loc = parse_yaml(text).ok()?;
    loc.waves.get(i).map(|s| (s.referenced.line(), s.referenced.column()))
}

/// The findings that need the store's segments (`segments`: the ones the plan's waves name):
/// a first wave that reaches insiders only ([`crate::people::friendly_pilot`]), and a wave whose
/// segments pick cohorts (an `in`/`eq` constraint on a cohort attribute) that no stakeholder
/// champions ([`crate::people::unchampioned`]); warnings at their wave.
pub fn segment_findings(
    text: &str,
    plan: &PlanSpec,
    segments: &indexmap::IndexMap<String, wavegate_core::spec::SegmentSpec>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let warn = |i: usize, code, message| {
        let pos = wave_position(text, i);
        Finding {
            severity: Severity::Warning,
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            code,
            message,
        }
    };
    if let Some(message) = crate::people::friendly_pilot(plan, segments) {
        out.push(warn(0, "friendly-pilot", message));
    }
    for (i, cohorts) in crate::people::unchampioned(plan, segments) {
        out.push(warn(
            i,
            "no-champion",
            format!(
                "wave {} reaches {} with no champion in stakeholders: nobody among those users is told when they lag",
                i + 1,
                cohorts.join(", ")
            ),
        ));
    }
    out
}

/// Parses and lints a plan file. Returns the plan when it parsed (even with findings).
pub fn lint(text: &str) -> (Option<PlanSpec>, Vec<Finding>) {
    if text.contains("extends")
        && let Ok(doc) = parse_yaml::<serde_json::Value>(text)
        && crate::template::extends(&doc)
    {
        let message = "extends names templates that the wavegate CLI resolves from files: lint, drill and apply this plan with it (the server stores resolved plans)".to_owned();
        let f = Finding {
            severity: Severity::Error,
            line: None,
            column: None,
            code: "unresolved-extends",
            message,
        };
        return (None, vec![f]);
    }
    let plan: PlanSpec = match parse_yaml(text) {
        Ok(p) => p,
        Err(FlagFileError::Syntax { line, column, message }) => {
            return (
                None,
                vec![Finding { severity: Severity::Error, line, column, code: "syntax", message }],
            );
        }
        Err(e) => {
            return (
                None,
                vec![Finding {
                    severity: Severity::Error,
                    line: None,
                    column: None,
                    code: "syntax",
                    message: e.to_string(),
                }],
            );
        }
    };
    let loc: Option<Loc> = parse_yaml(text).ok();
    let at =
        |s: Option<&Spanned<IgnoredAny>>| s.map(|s| (s.referenced.line(), s.referenced.column()));
    let wave_at = |i: usize| at(loc.as_ref().and_then(|l| l.waves.get(i)));
    let guard_at = |i: usize| at(loc.as_ref().and_then(|l| l.guardrails.get(i)));
    let mut out = Vec::new();
    let mut push = |severity, pos: Option<(u64, u64)>, code, message: String| {
        out.push(Finding {
            severity,
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            code,
            message,
        });
    };
    use Severity::{Error, Warning};

    if plan.owners.requester.trim().is_empty() {
        push(
            Error,
            at(loc.as_ref().and_then(|l| l.owners.as_ref())),
            "no-owner",
            "owners.requester is missing: every plan needs an owner".into(),
        );
    }
    if plan.new_variant == plan.control_variant {
        push(Error, None, "same-variants", "new_variant and control_variant must differ".into());
    }
    if plan.promotion_path.contains(&plan.environment) {
        push(
            Error,
            None,
            "promotion-path-includes-itself",
            format!("promotion_path lists {:?}, the plan's own environment", plan.environment),
        );
    }
    if plan.auto_start && plan.promotion_path.is_empty() {
        push(
            Error,
            None,
            "auto-start-without-path",
            "auto_start starts a rollout once the release completed in its promotion_path, and there is none".into(),
        );
    }
    if plan.auto_start
        && plan.checks.iter().any(|c| c.vulnerabilities.as_ref().is_some_and(|v| v.sbom.is_none()))
    {
        push(
            Error,
            None,
            "auto-start-needs-sbom-url",
            "a plan that starts by itself (auto_start) sends no SBOM with its start: give its vulnerabilities check an sbom URL".into(),
        );
    }
    if plan.promotion_path.is_empty()
        && (plan.environment == "prod" || plan.environment == "production")
    {
        push(
            Warning,
            None,
            "no-promotion-path",
            "no promotion_path: declare the environments this release must complete in first (e.g. promotion_path: [staging])".into(),
        );
    }
    match &plan.scorecard {
        Some(s) => {
            if let Err(m) = crate::scorecard::validate(s) {
                push(Error, None, "bad-scorecard", m);
            }
        }
        None if plan.environment == "prod" || plan.environment == "production" => push(
            Warning,
            None,
            "no-scorecard",
            "no scorecard: declare `scorecard:` so a production start needs a go (the seven default items are shown, but never block)".into(),
        ),
        None => {}
    }
    if let Some(o) = &plan.otel
        && let Err(m) = crate::otel::validate(o)
    {
        push(Error, None, "bad-otel", m);
    }
    if let Some(a) = &plan.adoption
        && let Err(m) = crate::adoption::validate(a)
    {
        push(Error, None, "bad-adoption", m);
    }
    if plan.waves.is_empty() {
        push(Error, None, "no-waves", "a plan needs at least one wave".into());
    }
    for (i, m) in plan.success_metrics.iter().enumerate() {
        if let Err(e) = crate::success::validate(m, i, &plan) {
            let pos = at(loc.as_ref().and_then(|l| l.success_metrics.get(i)));
            push(Error, pos, "bad-success-metric", e);
        }
    }
    let cohorts = plan.adoption.as_ref().map(|a| a.cohorts.as_slice()).unwrap_or(&[]);
    let stakeholders_at = at(loc.as_ref().and_then(|l| l.stakeholders.as_ref()));
    match &plan.stakeholders {
        Some(s) => {
            if let Err(e) = crate::people::validate_stakeholders(s, cohorts) {
                push(Error, stakeholders_at, "bad-stakeholders", e);
            }
            for (attribute, values) in s {
                for value in values.iter().filter(|(_, w)| w.champion.is_none()).map(|(v, _)| v) {
                    push(
                        Warning,
                        stakeholders_at,
                        "no-champion",
                        format!(
                            "cohort {attribute} = {value} has no champion: nobody among its users is told when it lags"
                        ),
                    );
                }
            }
        }
        None if plan
            .waves
            .iter()
            .any(|w| w.gates.as_ref().is_some_and(|g| g.adoption.is_some())) =>
        {
            push(
                Warning,
                None,
                "no-champion",
                format!(
                    "adoption gates but no stakeholders: name a champion per cohort ({}) so a lagging cohort's champion is told",
                    cohorts.join(", ")
                ),
            )
        }
        None => {}
    }
    for (i, w) in plan.waves.iter().enumerate() {
        if let Some(g) = &w.gates
            && let Err(e) = crate::people::validate_gates(g, i, plan.adoption.is_some())
        {
            push(Error, wave_at(i), "bad-gates", e);
        }
    }
    match &plan.watch {
        Some(w) => {
            let hb = w.holdback.basis_points();
            if w.period.secs() == 0 {
                push(Error, None, "bad-watch", "watch.for must be longer than zero".into());
            }
            if hb == 0 || hb > crate::plan::MAX_HOLDBACK_BP {
                push(
                    Error,
                    None,
                    "bad-watch",
                    format!(
                        "watch.holdback is {}; keep 0.01% to {}% of the audience on the control variant",
                        w.holdback,
                        crate::plan::MAX_HOLDBACK_BP / 100
                    ),
                );
            }
            if plan.waves.last().is_some_and(|l| l.exposure.basis_points() != 10_000 || !l.segments.is_empty()) {
                push(
                    Error,
                    None,
                    "bad-watch",
                    "a watch follows a last wave at 100% of everyone; the holdback is what it keeps back".into(),
                );
            }
        }
        None if plan.release.risk == crate::plan::Risk::High => push(
            Warning,
            None,
            "no-watch",
            "high-risk release without a watch: nothing judges it after 100%; declare `watch: { for: 72h, holdback: 1% }`".into(),
        ),
        None => {}
    }
    if let Some(first) =
        plan.waves.first().filter(|w| w.exposure.basis_points() > MAX_FIRST_WAVE_BP)
    {
        push(
            Error,
            wave_at(0),
            "first-wave-too-large",
            format!("the first wave exposes {}; start at 25% or less", first.exposure),
        );
    }
    for i in 1..plan.waves.len() {
        let (prev, w) = (&plan.waves[i - 1], &plan.waves[i]);
        let same_rings = prev.segments == w.segments;
        if w.exposure < prev.exposure || (same_rings && w.exposure == prev.exposure) {
            push(
                Error,
                wave_at(i),
                "waves-not-increasing",
                format!(
                    "wave {} exposes {} after wave {} exposed {}; waves must widen",
                    i + 1,
                    w.exposure,
                    i,
                    prev.exposure
                ),
            );
        }
    }
    for (i, w) in plan.waves.iter().enumerate() {
        if w.exposure.basis_points() == 0 {
            push(Error, wave_at(i), "empty-wave", format!("wave {} exposes 0%", i + 1));
        }
        if let Some(max) = w.max_duration.filter(|m| *m < w.hold) {
            push(
                Error,
                wave_at(i),
                "max-before-hold",
                format!("wave {}: max_duration {max} is shorter than its hold {}", i + 1, w.hold),
            );
        }
    }
    if plan
        .waves
        .last()
        .is_some_and(|w| w.exposure.basis_points() != 10_000 || !w.segments.is_empty())
    {
        push(
            Warning,
            wave_at(plan.waves.len() - 1),
            "last-wave-partial",
            "the last wave does not reach 100% of everyone; the rollout completes there".into(),
        );
    }
    if plan.guardrails.is_empty() {
        push(
            Warning,
            None,
            "no-stop-condition",
            "no guardrails: nothing will pause or roll this rollout back by itself".into(),
        );
    }
    let mut names = std::collections::HashSet::new();
    for (i, g) in plan.guardrails.iter().enumerate() {
        if !names.insert(g.name.as_str()) {
            push(
                Error,
                guard_at(i),
                "duplicate-guardrail",
                format!("guardrail name {:?} is used twice", g.name),
            );
        }
        match (g.source, &g.query) {
            (crate::plan::SignalSource::Prometheus, None) => push(
                Error,
                guard_at(i),
                "query-missing",
                format!("guardrail {:?} reads Prometheus but has no `query`", g.name),
            ),
            (crate::plan::SignalSource::Events, None) if g.metric.is_empty() => push(
                Error,
                guard_at(i),
                "metric-missing",
                format!(
                    "guardrail {:?} needs a `metric` (error, latency_ms or a named metric)",
                    g.name
                ),
            ),
            (crate::plan::SignalSource::Incidents, q)
                if q.is_some()
                    || g.silent.is_some()
                    || g.quantile.is_some()
                    || g.comparison == Comparison::Bound =>
            {
                push(
                    Error,
                    guard_at(i),
                    "bad-incident-guardrail",
                    format!(
                        "guardrail {:?} reads incidents: it compares arms or the pre-rollout rate (relative or absolute), with no query, quantile, bound or silent limit",
                        g.name
                    ),
                )
            }
            (crate::plan::SignalSource::Events, Some(_)) => push(
                Error,
                guard_at(i),
                "query-unused",
                format!(
                    "guardrail {:?} has a `query` but its source is events; add source: prometheus",
                    g.name
                ),
            ),
            _ => {}
        }
        if let Some(sev) = &g.severity
            && (g.source != crate::plan::SignalSource::Incidents
                || !crate::incidents::SEVERITIES.contains(&sev.as_str()))
        {
            push(
                Error,
                guard_at(i),
                "bad-severity",
                format!(
                    "guardrail {:?}: severity applies to source: incidents and is one of {}",
                    g.name,
                    crate::incidents::SEVERITIES.join(", ")
                ),
            );
        }
        if g.baseline_window.is_some() && g.source != crate::plan::SignalSource::Incidents {
            push(
                Error,
                guard_at(i),
                "bad-baseline-window",
                format!("guardrail {:?}: baseline_window applies to source: incidents", g.name),
            );
        }
        if g.comparison == Comparison::Bound && g.bound.is_none() {
            push(
                Error,
                guard_at(i),
                "bound-missing",
                format!("guardrail {:?} compares against a bound but sets no `bound`", g.name),
            );
        }
        if g.comparison != Comparison::Bound && g.bound.is_some() {
            push(
                Error,
                guard_at(i),
                "bound-unused",
                format!(
                    "guardrail {:?} sets `bound` but compares {:?} vs control; use comparison: bound",
                    g.name, g.comparison
                ),
            );
        }
        if !(g.tolerance >= 0.0 && g.tolerance.is_finite()) {
            push(
                Error,
                guard_at(i),
                "bad-tolerance",
                format!("guardrail {:?}: tolerance must be 0 or more", g.name),
            );
        }
        for (what, v) in [("alpha", g.alpha()), ("beta", g.beta())] {
            if !(v > 0.0 && v < 0.5) {
                push(
                    Error,
                    guard_at(i),
                    "bad-error-rate",
                    format!("guardrail {:?}: {what} must be between 0 and 0.5, got {v}", g.name),
                );
            }
        }
        if g.mde.is_some_and(|m| !(m > 0.0 && m.is_finite())) {
            push(
                Error,
                guard_at(i),
                "bad-mde",
                format!("guardrail {:?}: mde must be positive", g.name),
            );
        }
        let windowed = g.failure_limit.is_some() || g.failures.is_some() || g.range_step.is_some();
        if windowed && g.source != crate::plan::SignalSource::Prometheus {
            push(
                Error,
                guard_at(i),
                "readings-unused",
                format!(
                    "guardrail {:?} sets failure_limit, failures or range_step, which judge Prometheus readings, but its source is events (a sequential test that needs none); add source: prometheus or remove them",
                    g.name
                ),
            );
        }
        if let Some(q) = g.quantile {
            let why = if !(q > 0.0 && q < 1.0) {
                Some(format!("quantile is {q}; give one between 0 and 1, like 0.95 or 0.99"))
            } else if g.metric != crate::arms::LATENCY_MS || g.source != SignalSource::Events {
                Some("quantile judges the events' latency_ms sketches: set metric: latency_ms and source: events".to_owned())
            } else if g.harmful != Direction::Increase {
                Some(
                    "a quantile guardrail guards against latency rising: harmful: increase"
                        .to_owned(),
                )
            } else if g.comparison == Comparison::Bound && g.bound.is_none() {
                Some(
                    "comparison: bound needs the bound the quantile must stay under, in ms"
                        .to_owned(),
                )
            } else {
                None
            };
            if let Some(why) = why {
                push(Error, guard_at(i), "bad-quantile", format!("guardrail {:?}: {why}", g.name));
            }
        }
        if g.failure_limit.is_some_and(|n| n > MAX_FAILURE_LIMIT) {
            push(
                Error,
                guard_at(i),
                "bad-failure-limit",
                format!(
                    "guardrail {:?}: failure_limit {} is more than {MAX_FAILURE_LIMIT}; a guardrail that tolerates that many bad readings guards nothing",
                    g.name,
                    g.failure_limit.unwrap_or_default()
                ),
            );
        }
        if g.failures.is_some() && g.failure_limit.is_none_or(|n| n == 0) {
            push(
                Warning,
                guard_at(i),
                "failures-unused",
                format!(
                    "guardrail {:?} sets `failures` but no failure_limit above 0, so its first bad reading acts either way",
                    g.name
                ),
            );
        }
        if g.range_step.is_some_and(|s| s.secs() == 0) {
            push(
                Error,
                guard_at(i),
                "bad-range-step",
                format!("guardrail {:?}: range_step must be at least 1s", g.name),
            );
        }
        if g.min_sample == 0 {
            push(
                Warning,
                guard_at(i),
                "no-min-sample",
                format!("guardrail {:?}: min_sample 0 lets a tiny sample pass", g.name),
            );
        }
        if !plan.runbook.contains_key(&g.name) {
            push(
                Warning,
                guard_at(i),
                "no-runbook",
                format!("no runbook entry for guardrail {:?}", g.name),
            );
        }
        if let Some(window) = g.window {
            for (j, w) in plan.waves.iter().enumerate() {
                if w.hold < window {
                    push(
                        Warning,
                        wave_at(j),
                        "hold-shorter-than-window",
                        format!(
                            "wave {} holds {} but guardrail {:?} needs a {window} window",
                            j + 1,
                            w.hold,
                            g.name
                        ),
                    );
                }
            }
        }
    }
    let approvers_other: Vec<&String> =
        plan.owners.approvers.iter().filter(|a| **a != plan.owners.requester).collect();
    if plan.approvals_needed() as usize > approvers_other.len() && !plan.owners.approvers.is_empty()
    {
        push(
            Error,
            at(loc.as_ref().and_then(|l| l.owners.as_ref())),
            "too-few-approvers",
            format!(
                "{} approvals are needed but only {} approver(s) other than the requester are listed",
                plan.approvals_needed(),
                approvers_other.len()
            ),
        );
    }
    if plan.release.risk == Risk::High && approvers_other.is_empty() {
        push(
            Error,
            at(loc.as_ref().and_then(|l| l.release.as_ref())),
            "high-risk-self-approval",
            "a high-risk plan needs an approver other than its requester".into(),
        );
    }
    let bad_digest = plan
        .release
        .artifact_sha256
        .as_ref()
        .is_some_and(|d| d.len() != 64 || !d.bytes().all(|b| b.is_ascii_hexdigit()));
    if bad_digest {
        push(
            Error,
            at(loc.as_ref().and_then(|l| l.release.as_ref())),
            "bad-digest",
            "release.artifact_sha256 must be 64 hex digits".into(),
        );
    }
    for (i, k) in plan.release.signed_by.iter().enumerate() {
        if let Err(e) = crate::signature::check_entry(k) {
            push(
                Error,
                at(loc.as_ref().and_then(|l| l.release.as_ref())),
                "bad-signing-key",
                format!(
                    "release.signed_by[{i}] is neither a minisign public key nor a key id (hex, as minisign prints it): {e}"
                ),
            );
        }
    }
    for (i, b) in plan.blackouts.iter().enumerate() {
        if let Err(e) = Blackout::compile(b) {
            push(Error, at(loc.as_ref().and_then(|l| l.blackouts.get(i))), "bad-blackout", e);
        }
    }
    for c in &plan.checks {
        let kinds = [c.http.is_some(), c.webhook.is_some(), c.vulnerabilities.is_some()];
        if kinds.iter().filter(|k| **k).count() != 1 {
            push(
                Error,
                None,
                "bad-check",
                format!("check {:?}: give exactly one of http, webhook or vulnerabilities", c.name),
            );
        }
        if c.vulnerabilities.is_some() && !c.when.contains(&crate::plan::CheckWhen::BeforeStart) {
            push(
                Error,
                None,
                "bad-check",
                format!(
                    "check {:?}: a vulnerabilities check runs before the start; its `when` must include before_start",
                    c.name
                ),
            );
        }
        let url = c
            .http
            .as_ref()
            .map(|h| h.url.as_str())
            .or(c.webhook.as_ref().map(|w| w.url.as_str()))
            .or(c.vulnerabilities.as_ref().and_then(|v| v.sbom.as_deref()))
            .unwrap_or("");
        if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
            push(
                Error,
                None,
                "bad-check",
                format!("check {:?}: url must start with http:// or https://", c.name),
            );
        }
        if c.when.is_empty() {
            push(Error, None, "bad-check", format!("check {:?}: `when` is empty", c.name));
        }
        if c.http.as_ref().is_some_and(|h| h.json_field.is_some() != h.expect_value.is_some()) {
            push(
                Error,
                None,
                "bad-check",
                format!("check {:?}: json_field and expect_value go together", c.name),
            );
        }
    }
    let (computed, why) = crate::forecast::computed_risk(&plan);
    if plan.release.risk < computed {
        push(
            Warning,
            at(loc.as_ref().and_then(|l| l.release.as_ref())),
            "risk-understated",
            format!(
                "release.risk is {:?} but the plan's facts imply {:?}: {why}",
                plan.release.risk, computed
            )
            .to_lowercase(),
        );
    }
    if !(plan.srm_alpha() > 0.0 && plan.srm_alpha() < 0.5) {
        push(Error, None, "bad-srm-alpha", "srm_alpha must be between 0 and 0.5".into());
    }
    if let Err(e) = wavegate_core::flag::validate_key(&plan.name) {
        push(Error, None, "bad-name", e);
    }
    // A plan is readable by every token that may read plans (server-sdk ones included) and is
    // kept whole in every backup: no place for a password.
    let urls = plan
        .guardrails
        .iter()
        .enumerate()
        .filter_map(|(i, g)| {
            let url = g.prometheus_url.as_deref()?;
            Some((guard_at(i), format!("guardrails[{i}].prometheus_url"), url))
        })
        .chain(plan.checks.iter().enumerate().flat_map(|(i, c)| {
            let http = c.http.as_ref().map(|h| (format!("checks[{i}].http.url"), h.url.as_str()));
            let hook =
                c.webhook.as_ref().map(|w| (format!("checks[{i}].webhook.url"), w.url.as_str()));
            let sbom = c.vulnerabilities.as_ref().and_then(|v| {
                Some((format!("checks[{i}].vulnerabilities.sbom"), v.sbom.as_deref()?))
            });
            http.into_iter().chain(hook).chain(sbom).map(|(field, url)| (None, field, url))
        }));
    for (pos, field, url) in urls {
        if wavegate_core::text::redact_url(url) != url {
            push(
                Warning,
                pos,
                "credentials-in-url",
                format!(
                    "{field} carries credentials, which everyone who may read this plan sees (server-sdk tokens too) and every backup keeps; give Prometheus' to serve --prometheus-url instead"
                ),
            );
        }
    }
    (Some(plan), out)
}

/// Whether any finding is an error.
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}

/// Findings from a forecast: holds and maximum durations too short to decide. A hold shorter
/// than the mean time to the guardrail's first pass verdict does not set the wave's pace (the
/// verdict does); a maximum duration shorter than the mean time to the promoting pass
/// escalates more often than not.
pub fn forecast_findings(plan: &PlanSpec, forecasts: &[crate::forecast::Forecast]) -> Vec<Finding> {
    let mut out = Vec::new();
    let fmt = |secs: f64| crate::duration::Span::from_secs(secs.ceil() as u64).to_string();
    for f in forecasts {
        let Some(w) = plan.waves.get(f.wave - 1) else { continue };
        if let Some(verdict) = f.pass_verdict_secs.or(f.to_pass_secs)
            && (w.hold.secs() as f64) < verdict
        {
            out.push(Finding {
                severity: Severity::Warning,
                line: None,
                column: None,
                code: "hold-shorter-than-decision",
                message: format!(
                    "wave {} holds {} but guardrail {:?} needs about {} to pass without effect; the wave will wait for its verdict",
                    f.wave, w.hold, f.guardrail, fmt(verdict)
                ),
            });
        }
        let Some(pass) = f.to_pass_secs else { continue };
        if let Some(max) = w.max_duration.filter(|m| (m.secs() as f64) < pass) {
            out.push(Finding {
                severity: Severity::Warning,
                line: None,
                column: None,
                code: "max-duration-too-short",
                message: format!(
                    "wave {}: max_duration {max} is shorter than the ~{} guardrail {:?} needs to decide; expect an escalation",
                    f.wave, fmt(pass), f.guardrail
                ),
            });
        }
    }
    out
}

/// The SARIF 2.1.0 log of `findings` for plan file `uri` (code-review tools, GitHub code
/// scanning): one run of the `wavegate` tool, one rule per finding code, each result at its
/// line and column when known.
pub fn to_sarif(uri: &str, findings: &[Finding], version: &str) -> serde_json::Value {
    use serde_json::json;
    let mut codes: Vec<&str> = findings.iter().map(|f| f.code).collect();
    codes.sort_unstable();
    codes.dedup();
    let rules: Vec<serde_json::Value> = codes
        .iter()
        .map(|c| json!({"id": c, "name": c, "shortDescription": {"text": format!("wavegate plan lint: {c}")}}))
        .collect();
    let results: Vec<serde_json::Value> = findings
        .iter()
        .map(|f| {
            let mut location = json!({"physicalLocation": {"artifactLocation": {"uri": uri}}});
            if let Some(line) = f.line.filter(|l| *l > 0) {
                let mut region = json!({"startLine": line});
                if let Some(col) = f.column.filter(|c| *c > 0) {
                    region["startColumn"] = json!(col);
                }
                location["physicalLocation"]["region"] = region;
            }
            json!({
                "ruleId": f.code,
                "ruleIndex": codes.iter().position(|c| *c == f.code).unwrap_or(0),
                "level": if f.severity == Severity::Error { "error" } else { "warning" },
                "message": {"text": f.message},
                "locations": [location],
            })
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "wavegate", "version": version,
                "informationUri": "https://github.com/wavegate/wavegate", "rules": rules}},
            "artifacts": [{"location": {"uri": uri}}],
            "results": results,
        }],
    })
}

/// GitHub Actions workflow commands for `findings` of plan file `file`
/// (`::error file=…,line=…,col=…,title=…::message`), one per line, escaped as GitHub requires
/// (`%`, CR and LF in messages; also `:` and `,` in properties).
pub fn to_github_annotations(file: &str, findings: &[Finding]) -> String {
    let data = |s: &str| s.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A");
    let prop = |s: &str| data(s).replace(':', "%3A").replace(',', "%2C");
    let mut out = String::new();
    for f in findings {
        let level = if f.severity == Severity::Error { "error" } else { "warning" };
        let mut props = vec![format!("file={}", prop(file))];
        if let Some(l) = f.line {
            props.push(format!("line={l}"));
        }
        if let Some(c) = f.column {
            props.push(format!("col={c}"));
        }
        props.push(format!("title={}", prop(&format!("wavegate {}", f.code))));
        out.push_str(&format!("::{level} {}::{}\n", props.join(","), data(&f.message)));
    }
    out
}
