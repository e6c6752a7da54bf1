//! Coordinated releases (pure): a release document groups several plans — flags of different
//! services and teams — with their order (`after`: a member starts once the plans it names have
//! completed) and their pace (`with`: members that advance wave by wave together, none more
//! than one wave ahead of another), and says what a failure of one member does to the others
//! (`on_failure`: pause them all, roll them all back, or leave them be).
//!
//! The server keeps the document and its run, starts members and carries out the decisions;
//! this module validates the document and decides from the members' states.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// What a member's failure does to the release's other members.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailurePolicy {
    /// Pause every other live member (a person decides what next).
    #[default]
    PauseAll,
    /// Roll every other live member back.
    RollbackAll,
    /// Only the failed member stops; the others go on (members after it never start).
    Member,
}

/// One member of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The stored plan it rolls out.
    pub plan: String,
    /// Plans (members) that must complete before this one starts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<String>,
    /// Members this one advances with, wave by wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub with: Vec<String>,
}

/// A release document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReleaseSpec {
    /// Its name.
    pub name: String,
    /// What it ships.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its members, in the order people read them.
    pub members: Vec<Member>,
    /// What a member's failure does (default `pause_all`).
    #[serde(default)]
    pub on_failure: FailurePolicy,
}

/// The most members a release may have.
pub const MAX_MEMBERS: usize = 50;

impl ReleaseSpec {
    /// Whether the document holds together: members named once, `after` and `with` naming
    /// members (not themselves), no cycle of `after`, at most [`MAX_MEMBERS`], a description of
    /// at most 2000 characters. The error names the field.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |field: String, m: String| Err((field, m));
        if self.members.is_empty() || self.members.len() > MAX_MEMBERS {
            return bad("members".into(), format!("a release has 1 to {MAX_MEMBERS} members"));
        }
        if self.description.as_ref().is_some_and(|d| d.chars().count() > 2000) {
            return bad("description".into(), "a description has at most 2000 characters".into());
        }
        let names: BTreeSet<&str> = self.members.iter().map(|m| m.plan.as_str()).collect();
        if names.len() != self.members.len() {
            return bad("members".into(), "each plan is a member once".into());
        }
        for (i, m) in self.members.iter().enumerate() {
            for (what, list) in [("after", &m.after), ("with", &m.with)] {
                for (j, other) in list.iter().enumerate() {
                    if other == &m.plan || !names.contains(other.as_str()) {
                        return bad(
                            format!("members[{i}].{what}[{j}]"),
                            format!("{other:?} is not another member of the release"),
                        );
                    }
                }
            }
        }
        // Members that advance together cannot come one after the other (the one ahead would
        // wait for a partner that waits for it).
        let before = |plan: &str| -> BTreeSet<&str> {
            let mut seen = BTreeSet::new();
            let mut todo = vec![plan];
            while let Some(p) = todo.pop() {
                for m in self.members.iter().filter(|m| m.plan == p) {
                    for a in &m.after {
                        if seen.insert(a.as_str()) {
                            todo.push(a.as_str());
                        }
                    }
                }
            }
            seen
        };
        for (i, m) in self.members.iter().enumerate() {
            for (j, w) in m.with.iter().enumerate() {
                if before(&m.plan).contains(w.as_str()) || before(w).contains(m.plan.as_str()) {
                    return bad(
                        format!("members[{i}].with[{j}]"),
                        format!(
                            "{} and {w} come one after the other (after), so they cannot advance together (with)",
                            m.plan
                        ),
                    );
                }
            }
        }
        // No cycle of `after`: every member can be ordered.
        let mut done: BTreeSet<&str> = BTreeSet::new();
        while done.len() < self.members.len() {
            let ready: Vec<&str> = self
                .members
                .iter()
                .filter(|m| !done.contains(m.plan.as_str()))
                .filter(|m| m.after.iter().all(|a| done.contains(a.as_str())))
                .map(|m| m.plan.as_str())
                .collect();
            if ready.is_empty() {
                let left: Vec<&str> = self
                    .members
                    .iter()
                    .map(|m| m.plan.as_str())
                    .filter(|p| !done.contains(p))
                    .collect();
                return bad(
                    "members".into(),
                    format!("`after` goes round in a circle among {}", left.join(", ")),
                );
            }
            done.extend(ready);
        }
        Ok(())
    }

    /// The members that advance with `plan` (named by it, or naming it).
    pub fn partners(&self, plan: &str) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        for m in &self.members {
            if m.plan == plan {
                out.extend(m.with.iter().map(String::as_str));
            } else if m.with.iter().any(|w| w == plan) {
                out.insert(m.plan.as_str());
            }
        }
        out
    }
}

/// Where a member stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberState {
    /// Not started.
    Waiting,
    /// Its rollout runs (or is paused) at this wave (0-based).
    Live {
        /// The rollout's id.
        rollout: String,
        /// The wave it is in.
        wave: usize,
        /// Whether it is paused.
        paused: bool,
    },
    /// Its rollout completed.
    Completed,
    /// Its rollout was rolled back or aborted.
    Failed {
        /// The rollout's id.
        rollout: String,
    },
}

/// What to do to a live member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// Pause it.
    Pause,
    /// Roll it back.
    Rollback,
}

/// How a release run stands and what to do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Members to start now.
    pub start: Vec<String>,
    /// Live members to act on: (plan, rollout, what), with the reason.
    pub act: Vec<(String, String, Act)>,
    /// Why, when a member failed.
    pub failure: Option<String>,
    /// `running`, `completed` or `failed`.
    pub state: &'static str,
}

/// The next step of a release run whose members stand as `states` (by plan).
/// `handled_failure` is whether the failure policy was already carried out (it acts once).
pub fn step(
    spec: &ReleaseSpec,
    states: &BTreeMap<String, MemberState>,
    handled_failure: bool,
) -> Step {
    let state_of = |p: &str| states.get(p).cloned().unwrap_or(MemberState::Waiting);
    let failed: Vec<(&str, String)> = spec
        .members
        .iter()
        .filter_map(|m| match state_of(&m.plan) {
            MemberState::Failed { rollout } => Some((m.plan.as_str(), rollout)),
            _ => None,
        })
        .collect();
    let mut act = Vec::new();
    let failure = failed.first().map(|(plan, rollout)| {
        format!("release {}: member {plan} failed (rollout {rollout})", spec.name)
    });
    if failure.is_some() && !handled_failure {
        let what = match spec.on_failure {
            FailurePolicy::PauseAll => Some(Act::Pause),
            FailurePolicy::RollbackAll => Some(Act::Rollback),
            FailurePolicy::Member => None,
        };
        if let Some(what) = what {
            for m in &spec.members {
                if let MemberState::Live { rollout, paused, .. } = state_of(&m.plan)
                    && !(paused && what == Act::Pause)
                {
                    act.push((m.plan.clone(), rollout, what));
                }
            }
        }
    }
    // Members whose `after` all completed start, unless a failure stops the release (under
    // `member`, only what comes after the failed member waits for ever).
    let blocked_by_failure = |m: &Member| match spec.on_failure {
        FailurePolicy::Member => {
            m.after.iter().any(|a| matches!(state_of(a), MemberState::Failed { .. }))
        }
        _ => failure.is_some(),
    };
    let start: Vec<String> = spec
        .members
        .iter()
        .filter(|m| state_of(&m.plan) == MemberState::Waiting)
        .filter(|m| !blocked_by_failure(m))
        .filter(|m| m.after.iter().all(|a| state_of(a) == MemberState::Completed))
        .map(|m| m.plan.clone())
        .collect();
    let all_done = spec.members.iter().all(|m| state_of(&m.plan) == MemberState::Completed);
    let live = spec.members.iter().any(|m| matches!(state_of(&m.plan), MemberState::Live { .. }));
    let state = if all_done {
        "completed"
    } else if failure.is_some()
        && start.is_empty()
        && (!live || spec.on_failure != FailurePolicy::Member)
    {
        "failed"
    } else {
        "running"
    };
    Step { start, act, failure, state }
}

/// Why `plan`, at wave `wave` (0-based), may not be promoted yet: a partner it advances with
/// is behind it (still in an earlier wave, or not started). `None`: it may.
pub fn pace_hold(
    spec: &ReleaseSpec,
    plan: &str,
    wave: usize,
    states: &BTreeMap<String, MemberState>,
) -> Option<String> {
    let behind: Vec<String> = spec
        .partners(plan)
        .into_iter()
        .filter_map(|p| match states.get(p) {
            Some(MemberState::Live { wave: w, .. }) if *w < wave => {
                Some(format!("{p} (wave {})", w + 1))
            }
            None | Some(MemberState::Waiting) => Some(format!("{p} (not started)")),
            _ => None,
        })
        .collect();
    (!behind.is_empty()).then(|| {
        format!(
            "release {}: advancing with {}, which must reach wave {} first",
            spec.name,
            behind.join(", "),
            wave + 1
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml: &str) -> ReleaseSpec {
        wavegate_core::flagfile::parse_yaml(yaml).unwrap()
    }

    fn live(id: &str, wave: usize) -> MemberState {
        MemberState::Live { rollout: id.into(), wave, paused: false }
    }

    const TWO: &str = "name: r\nmembers:\n  - plan: api\n  - plan: ui\n    after: [api]\n";

    #[test]
    fn documents_are_validated_with_the_field_named() {
        assert!(spec(TWO).validate().is_ok());
        let e =
            spec("name: r\nmembers:\n  - plan: a\n    after: [b]\n  - plan: b\n    after: [a]\n")
                .validate()
                .unwrap_err();
        assert!(e.1.contains("circle"), "{e:?}");
        let e = spec("name: r\nmembers:\n  - plan: a\n    with: [zz]\n").validate().unwrap_err();
        assert_eq!(e.0, "members[0].with[0]");
        let e = spec("name: r\nmembers: []\n").validate().unwrap_err();
        assert_eq!(e.0, "members");
        // Together and one after the other, directly or through another member: never.
        let e =
            spec("name: r\nmembers:\n  - plan: a\n    with: [b]\n  - plan: b\n    after: [a]\n")
                .validate()
                .unwrap_err();
        assert_eq!(e.0, "members[0].with[0]", "{e:?}");
        let e = spec("name: r\nmembers:\n  - plan: a\n    with: [c]\n  - plan: b\n    after: [a]\n  - plan: c\n    after: [b]\n").validate().unwrap_err();
        assert!(e.1.contains("cannot advance together"), "{e:?}");
    }

    #[test]
    fn members_start_in_order_and_the_release_completes() {
        let s = spec(TWO);
        let mut st = BTreeMap::new();
        assert_eq!(step(&s, &st, false).start, ["api"]);
        st.insert("api".to_owned(), live("ro_a", 0));
        let now = step(&s, &st, false);
        assert!(now.start.is_empty() && now.state == "running");
        st.insert("api".to_owned(), MemberState::Completed);
        assert_eq!(step(&s, &st, false).start, ["ui"]);
        st.insert("ui".to_owned(), MemberState::Completed);
        assert_eq!(step(&s, &st, false).state, "completed");
    }

    #[test]
    fn a_failure_acts_as_the_policy_says_once() {
        let three = "name: r\nmembers:\n  - plan: a\n  - plan: b\n  - plan: c\n    after: [a]\non_failure: POLICY\n";
        let mut st = BTreeMap::new();
        st.insert("a".to_owned(), live("ro_a", 1));
        st.insert("b".to_owned(), MemberState::Failed { rollout: "ro_b".into() });
        let s = spec(&three.replace("POLICY", "rollback_all"));
        let d = step(&s, &st, false);
        assert_eq!(d.act, [("a".to_owned(), "ro_a".to_owned(), Act::Rollback)]);
        assert!(d.failure.as_deref().unwrap().contains("member b failed (rollout ro_b)"));
        assert!(step(&s, &st, true).act.is_empty(), "once");
        let s = spec(&three.replace("POLICY", "pause_all"));
        assert_eq!(step(&s, &st, false).act[0].2, Act::Pause);
        // Under `member`, a goes on and c (after a) still starts once a completes.
        let s = spec(&three.replace("POLICY", "member"));
        assert!(step(&s, &st, false).act.is_empty());
        st.insert("a".to_owned(), MemberState::Completed);
        let d = step(&s, &st, false);
        assert_eq!((d.start.clone(), d.state), (vec!["c".to_owned()], "running"));
        // Under pause_all, nothing more starts and the release has failed once nothing runs.
        let s = spec(&three.replace("POLICY", "pause_all"));
        let d = step(&s, &st, true);
        assert_eq!((d.start.len(), d.state), (0, "failed"));
    }

    #[test]
    fn partners_keep_pace() {
        let s = spec("name: r\nmembers:\n  - plan: a\n    with: [b]\n  - plan: b\n");
        let mut st = BTreeMap::new();
        st.insert("a".to_owned(), live("ro_a", 1));
        st.insert("b".to_owned(), live("ro_b", 0));
        assert_eq!(
            pace_hold(&s, "a", 1, &st).as_deref(),
            Some("release r: advancing with b (wave 1), which must reach wave 2 first")
        );
        assert_eq!(pace_hold(&s, "b", 0, &st), None, "the partner behind may catch up");
        st.insert("b".to_owned(), live("ro_b", 1));
        assert_eq!(pace_hold(&s, "a", 1, &st), None);
        st.insert("b".to_owned(), MemberState::Completed);
        assert_eq!(pace_hold(&s, "a", 1, &st), None);
    }
}
