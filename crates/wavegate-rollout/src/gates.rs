//! Deployment tooling gates (pure): one go / wait / stop verdict from a plan's latest rollout,
//! answered to Argo Rollouts' `web` analysis provider as JSON (its `successCondition` and
//! `failureCondition` read `verdict`) and to Flagger's webhooks as an HTTP status (2xx: go), so
//! a Kubernetes canary of the binary and the flag's rollout are judged together.
//!
//! - **go**: the flag's rollout is running with no stop condition firing, or completed;
//! - **stop**: it was rolled back, or paused by a stop condition (a guardrail, a check, the
//!   sample-ratio check), or a guardrail's latest verdict is `fail`;
//! - **wait**: anything else — no rollout yet, paused by a person, aborted.

use serde::Serialize;

use crate::machine::{Rollout, State};

/// The verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Carry on.
    Go,
    /// Hold.
    Wait,
    /// Abort (roll the canary back).
    Stop,
}

impl Verdict {
    /// `go`, `wait`, `stop`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Go => "go",
            Verdict::Wait => "wait",
            Verdict::Stop => "stop",
        }
    }
}

/// Judges the plan's latest rollout `r` (None: never started) given its guardrails' latest
/// verdicts (`(name, verdict)`); the reason says why.
pub fn judge(plan: &str, r: Option<&Rollout>, latest: &[(String, String)]) -> (Verdict, String) {
    let Some(r) = r else {
        return (Verdict::Wait, format!("plan {plan:?} has no rollout yet"));
    };
    let failing = latest.iter().find(|(_, v)| v == "fail");
    match &r.state {
        State::Running { .. } | State::Completed if failing.is_some() => {
            let name = failing.map(|(n, _)| n.as_str()).unwrap_or_default();
            (Verdict::Stop, format!("guardrail {name:?} of {} fails", r.id))
        }
        State::Running { phase } => (
            Verdict::Go,
            format!(
                "{} is running at wave {} ({:?}) with no stop condition firing",
                r.id,
                r.wave + 1,
                phase
            ),
        ),
        State::Completed => (Verdict::Go, format!("{} completed", r.id)),
        State::RolledBack { reason } => {
            (Verdict::Stop, format!("{} was rolled back: {reason}", r.id))
        }
        // A stop condition pauses with its own words; a person's pause says who.
        State::Paused { reason } if reason.starts_with("paused by ") => {
            (Verdict::Wait, format!("{} is paused: {reason}", r.id))
        }
        State::Paused { reason } => (Verdict::Stop, format!("{} was stopped: {reason}", r.id)),
        State::Aborted { reason } => (Verdict::Wait, format!("{} was aborted: {reason}", r.id)),
    }
}

/// Flagger's webhook types.
pub const FLAGGER_HOOKS: [&str; 8] = [
    "confirm-rollout",
    "pre-rollout",
    "rollout",
    "confirm-traffic-increase",
    "confirm-promotion",
    "post-rollout",
    "rollback",
    "event",
];

/// The HTTP status a Flagger webhook of type `hook` is answered for `verdict` (Flagger reads
/// 2xx as success): confirm hooks proceed only on go (423 holds them); pre-rollout and rollout
/// hooks fail on stop (409) and pass otherwise; a rollback hook answers 200 — roll back — only
/// on stop (409 otherwise); post-rollout and event hooks are acknowledged. None: unknown type.
pub fn flagger_status(hook: &str, verdict: Verdict) -> Option<u16> {
    Some(match (hook, verdict) {
        ("confirm-rollout" | "confirm-traffic-increase" | "confirm-promotion", Verdict::Go) => 200,
        ("confirm-rollout" | "confirm-traffic-increase" | "confirm-promotion", Verdict::Wait) => {
            423
        }
        ("confirm-rollout" | "confirm-traffic-increase" | "confirm-promotion", Verdict::Stop) => {
            409
        }
        ("pre-rollout" | "rollout", Verdict::Stop) => 409,
        ("pre-rollout" | "rollout", _) => 200,
        ("rollback", Verdict::Stop) => 200,
        ("rollback", _) => 409,
        ("post-rollout" | "event", _) => 200,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flagger_hooks_read_the_verdict_as_their_type_means_it() {
        assert_eq!(flagger_status("confirm-promotion", Verdict::Go), Some(200));
        assert_eq!(flagger_status("confirm-promotion", Verdict::Wait), Some(423));
        assert_eq!(flagger_status("rollout", Verdict::Wait), Some(200));
        assert_eq!(flagger_status("rollout", Verdict::Stop), Some(409));
        assert_eq!(flagger_status("rollback", Verdict::Stop), Some(200));
        assert_eq!(flagger_status("rollback", Verdict::Go), Some(409));
        assert_eq!(flagger_status("post-rollout", Verdict::Stop), Some(200));
        assert_eq!(flagger_status("canary", Verdict::Go), None);
        assert_eq!(judge("p", None, &[]).0, Verdict::Wait);
    }
}
