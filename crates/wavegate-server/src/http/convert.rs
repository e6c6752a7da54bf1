//! The API's shapes (`wavegate-api`) of the store's and the rollout machine's values: what the
//! handlers answer is built here, field for field, so the wire format has one definition.
//!
//! [`IntoApi`] plays the part of `From`: both sides of each conversion are other crates' types,
//! so the orphan rule forbids implementing `From` itself here, and the API crate may not know
//! the store or the machine. Times keep the text each answer has always carried: flag and
//! segment heads and versions, tokens and audit entries format theirs with milliseconds; the
//! rest serialise chrono's `DateTime` as it is.

use chrono::SecondsFormat;
use wavegate_api as api;
use wavegate_rollout::machine::{Phase, Rollout, State};
use wavegate_rollout::scorecard::{Assessed, Assessment, Status};
use wavegate_store::{
    AggregateRow, AuditRow, Delivery, DrillRow, Head, PutOutcome, RolloutRow, TokenRecord,
    VerdictRow, VersionRecord,
};

/// Converts a value of the store or the machine into its API shape `T` (a local `From`).
pub trait IntoApi<T> {
    /// The API shape.
    fn into_api(self) -> T;
}

/// A time as the API writes it: RFC 3339 with milliseconds, UTC.
pub(crate) fn millis(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl IntoApi<api::flags::Head> for Head {
    fn into_api(self) -> api::flags::Head {
        api::flags::Head {
            key: self.key,
            version: self.version,
            archived: self.archived,
            updated_at: millis(self.updated_at),
            updated_by: self.updated_by,
            spec: self.spec,
            stale: None,
            unleash_approximate: None,
            unleash_notes: None,
        }
    }
}

impl IntoApi<api::flags::Version> for VersionRecord {
    fn into_api(self) -> api::flags::Version {
        api::flags::Version {
            key: self.key,
            version: self.version,
            archived: self.archived,
            actor: self.actor,
            action: self.action,
            reason: self.reason,
            created_at: millis(self.created_at),
            spec: self.spec,
        }
    }
}

impl IntoApi<api::flags::ApplyOutcome> for &PutOutcome {
    fn into_api(self) -> api::flags::ApplyOutcome {
        api::flags::ApplyOutcome {
            kind: self.kind.as_str().to_owned(),
            key: self.key.clone(),
            version: self.version,
            changed: self.changed,
        }
    }
}

impl IntoApi<api::tokens::Token> for &TokenRecord {
    fn into_api(self) -> api::tokens::Token {
        api::tokens::Token {
            id: self.id.clone(),
            kind: self.kind,
            environments: self.environments.clone(),
            principal: self.principal.clone(),
            created_at: millis(self.created_at),
            created_by: self.created_by.clone(),
            revoked_at: self.revoked_at.map(millis),
            user_admin: self.user_admin,
            evaluate_only: self.evaluate_only,
            expires_at: self.expires_at.map(millis),
            roles: self.roles.iter().map(IntoApi::into_api).collect(),
        }
    }
}

impl IntoApi<api::tokens::RoleGrant> for &wavegate_store::Grant {
    fn into_api(self) -> api::tokens::RoleGrant {
        api::tokens::RoleGrant {
            role: self.role.as_str().to_owned(),
            environments: self.environments.clone(),
        }
    }
}

/// The audit API's view of one entry: its reason and details as chained (from the stored
/// canonical bytes), the rest from the row.
impl IntoApi<api::audit::AuditEntry> for &AuditRow {
    fn into_api(self) -> api::audit::AuditEntry {
        let doc: serde_json::Value =
            serde_json::from_str(&self.entry.canonical).unwrap_or_default();
        api::audit::AuditEntry {
            seq: self.entry.seq,
            at: self.at.clone(),
            actor: self.actor.clone(),
            via: doc.get("via").and_then(|r| r.as_str()).map(str::to_owned),
            action: self.action.clone(),
            target: self.target.clone(),
            reason: doc.get("reason").and_then(|r| r.as_str()).map(str::to_owned),
            details: doc.get("details").cloned().unwrap_or_default(),
            hash: self.entry.hash.clone(),
            prev_hash: self.entry.prev_hash.clone(),
        }
    }
}

impl IntoApi<api::plans::PlanHead> for Head {
    fn into_api(self) -> api::plans::PlanHead {
        api::plans::PlanHead {
            name: self.key,
            version: self.version,
            updated_at: self.updated_at,
            updated_by: self.updated_by,
            spec: self.spec,
        }
    }
}

impl IntoApi<api::plans::PlanVersion> for VersionRecord {
    fn into_api(self) -> api::plans::PlanVersion {
        api::plans::PlanVersion {
            version: self.version,
            actor: self.actor,
            action: self.action,
            reason: self.reason,
            created_at: self.created_at,
            spec: self.spec,
        }
    }
}

impl IntoApi<api::plans::Drill> for DrillRow {
    fn into_api(self) -> api::plans::Drill {
        api::plans::Drill {
            id: self.id,
            plan_version: self.plan_version,
            scenario: self.scenario,
            passed: self.passed,
            at: self.at,
            actor: self.actor,
            report: self.report,
        }
    }
}

impl IntoApi<api::plans::Finding> for &wavegate_rollout::lint::Finding {
    fn into_api(self) -> api::plans::Finding {
        api::plans::Finding {
            severity: self.severity,
            line: self.line,
            column: self.column,
            code: self.code.to_owned(),
            message: self.message.clone(),
        }
    }
}

impl IntoApi<api::rollouts::RolloutState> for &State {
    fn into_api(self) -> api::rollouts::RolloutState {
        use api::rollouts::RolloutState as S;
        match self {
            State::Running { .. } => S::Running,
            State::Paused { .. } => S::Paused,
            State::Completed => S::Completed,
            State::RolledBack { .. } => S::RolledBack,
            State::Aborted { .. } => S::Aborted,
        }
    }
}

/// The public view of a rollout: what a start, the list and the commands answer (the full view
/// of `GET /api/v1/rollouts/{id}` adds to it).
impl IntoApi<api::rollouts::Rollout> for (&RolloutRow, &Rollout) {
    fn into_api(self) -> api::rollouts::Rollout {
        use wavegate_rollout::plan::Risk;
        let (row, r) = self;
        let (phase, reason) = match &r.state {
            // A people gate's hold is explained like a pause.
            State::Running { phase } => {
                (Some(*phase), r.gated.clone().filter(|_| *phase == Phase::Gated))
            }
            State::Paused { reason } | State::RolledBack { reason } | State::Aborted { reason } => {
                (None, Some(reason.clone()))
            }
            State::Completed => (None, None),
        };
        let release = &r.plan.release;
        api::rollouts::Rollout {
            id: r.id.clone(),
            plan: r.plan.name.clone(),
            plan_version: r.plan_version,
            flag: r.plan.flag.clone(),
            environment: r.plan.environment.clone(),
            release: api::rollouts::Release {
                name: release.name.clone(),
                version: release.version.clone(),
                risk: match release.risk {
                    Risk::Low => api::rollouts::Risk::Low,
                    Risk::Medium => api::rollouts::Risk::Medium,
                    Risk::High => api::rollouts::Risk::High,
                },
            },
            team: release.team.clone(),
            service: release.service.clone(),
            regions: release.regions.clone(),
            state: (&r.state).into_api(),
            phase,
            reason,
            wave: r.wave as u64 + 1,
            waves: r.plan.waves.len() as u64,
            // A stored rollout whose plan lacks its wave is shown, not a panic (`step`
            // escalates it).
            // What the flag serves: a watch's holdback stays off until the rollout completes.
            exposure: r
                .plan
                .waves
                .get(r.wave)
                .map(|_| r.plan.exposure_at(r.wave, r.state == State::Completed).to_string()),
            requester: r.requester.clone(),
            approvals: r.approvals.clone(),
            approvals_needed: r.plan.approvals_needed(),
            excluded_tokens: r.excluded_tokens.clone(),
            after_release_done: r
                .after_release_done
                .iter()
                .map(|(item, a)| (item.clone(), a.clone()))
                .collect(),
            blackout: r.blackout.clone(),
            release_run: r.release_run.clone(),
            artifact: r.artifact.clone(),
            pre_rollout_version: r.pre_rollout_version,
            started_at: r.started_at,
            wave_started_at: r.wave_started_at,
            updated_at: row.updated_at,
            verdicts: None,
            scorecard: None,
            signals: None,
            latency: None,
            runbook: None,
        }
    }
}

/// A stored verdict, its wave 1-based.
impl IntoApi<api::rollouts::Verdict> for &VerdictRow {
    fn into_api(self) -> api::rollouts::Verdict {
        api::rollouts::Verdict {
            wave: self.wave + 1,
            kind: self.kind.clone(),
            name: self.name.clone(),
            verdict: self.verdict.clone(),
            at: self.at,
            report: self.report.clone(),
        }
    }
}

impl IntoApi<api::rollouts::Signal> for &AggregateRow {
    fn into_api(self) -> api::rollouts::Signal {
        api::rollouts::Signal {
            arm: self.arm.clone(),
            metric: self.metric.clone(),
            n: self.n,
            mean: if self.n > 0.0 { self.sum / self.n } else { 0.0 },
            last_at: self.last_at,
        }
    }
}

impl IntoApi<api::scorecard::ItemStatus> for Status {
    fn into_api(self) -> api::scorecard::ItemStatus {
        use api::scorecard::ItemStatus as S;
        match self {
            Status::Green => S::Green,
            Status::Red => S::Red,
            Status::Waived => S::Waived,
            Status::Unset => S::Unset,
        }
    }
}

impl IntoApi<api::scorecard::Item> for &Assessed {
    fn into_api(self) -> api::scorecard::Item {
        api::scorecard::Item {
            key: self.key.clone(),
            title: self.title.clone(),
            status: self.status.into_api(),
            automatic: self.automatic,
            by: self.by.clone(),
            at: self.at,
            note: self.note.clone(),
        }
    }
}

/// A plan's scorecard, assessed (without the plan's name and version, which the scorecard
/// routes add).
impl IntoApi<api::scorecard::Scorecard> for &Assessment {
    fn into_api(self) -> api::scorecard::Scorecard {
        api::scorecard::Scorecard {
            declared: self.declared,
            max_red: self.max_red,
            items: self.items.iter().map(IntoApi::into_api).collect(),
            not_green: self.not_green,
            go: self.go,
            blocks: self.blocks,
            plan: None,
            plan_version: None,
            block_reason: self.block_reason(),
        }
    }
}

/// The scorecard as a rollout's view shows it.
impl IntoApi<api::rollouts::RolloutScorecard> for &Assessment {
    fn into_api(self) -> api::rollouts::RolloutScorecard {
        api::rollouts::RolloutScorecard {
            declared: self.declared,
            go: self.go,
            blocks: self.blocks,
            not_green: self.not_green,
            max_red: self.max_red,
            items: self.items.iter().map(IntoApi::into_api).collect(),
            block_reason: self.block_reason(),
        }
    }
}

/// A delivery of the log; `next_at` only while it is pending.
impl IntoApi<api::notify::Delivery> for &Delivery {
    fn into_api(self) -> api::notify::Delivery {
        api::notify::Delivery {
            id: self.id,
            audit_seq: self.queued.audit_seq,
            target: self.queued.target.clone(),
            audience: self.queued.audience.clone(),
            event: self.queued.event.clone(),
            rollout: self.queued.rollout.clone(),
            environment: self.queued.environment.clone(),
            status: self.state.status.clone(),
            attempts: self.state.attempts,
            last_error: self.state.last_error.clone(),
            http_status: self.state.http_status,
            next_at: (self.state.status == "pending").then_some(self.state.next_at),
            created_at: self.queued.at,
            updated_at: self.state.at,
            text: self.queued.payload.get("text").and_then(|t| t.as_str()).map(str::to_owned),
        }
    }
}

impl IntoApi<api::reports::CalendarEntry> for wavegate_rollout::calendar::Entry {
    fn into_api(self) -> api::reports::CalendarEntry {
        api::reports::CalendarEntry {
            kind: self.kind.to_owned(),
            title: self.title,
            start: self.start,
            end: self.end,
            environment: self.environment,
            plan: self.plan,
            rollouts: self.rollouts,
        }
    }
}
