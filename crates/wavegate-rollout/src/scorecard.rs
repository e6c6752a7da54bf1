//! The go/no-go scorecard: items from the plan (by default the seven of the classic go/no-go
//! checklist), each green, red or waived with who set it and the evidence, two of them checked
//! automatically. [`assess`] is pure: the server supplies the stored item states and the
//! automatic facts.
//!
//! **Pinned (DESIGN.md):** a plan without a `scorecard:` section gets the seven default items as
//! warnings that never block; a declared scorecard blocks the start and every promotion while
//! the number of items not green reaches `max_red` (default 2); a waived item counts as green
//! and keeps its reason.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::plan::PlanSpec;

/// The item checked automatically from the guardrails' signal sources.
pub const DASHBOARDS: &str = "dashboards-alerts";
/// The item checked automatically from drills of the plan version.
pub const ROLLBACK_TESTED: &str = "rollback-tested";
/// The item checked automatically from the release's feedback (no open blockers).
pub const PILOT_FEEDBACK: &str = "pilot-feedback";
/// The item checked automatically from the plan's stakeholders (every cohort has a champion).
pub const SUPPORT_STAFFED: &str = "support-staffed";
/// The item checked automatically from the notification targets (every audience has one whose
/// test message succeeded in the last 7 days).
pub const COMMUNICATIONS: &str = "communications";
/// Whether item `key` is one wavegate always checks by itself ([`DASHBOARDS`],
/// [`ROLLBACK_TESTED`]): it can only be waived, and only by an approver (`crate::duties`).
pub fn is_automatic(key: &str) -> bool {
    key == DASHBOARDS || key == ROLLBACK_TESTED
}

/// Whether item `key` is checked by wavegate once there is something to check ([`PILOT_FEEDBACK`]:
/// feedback, [`SUPPORT_STAFFED`]: stakeholders, [`COMMUNICATIONS`]: notification targets);
/// until then what a person set stands, and a person may set it as any manual item.
pub fn checks_itself_when_it_can(key: &str) -> bool {
    [PILOT_FEEDBACK, SUPPORT_STAFFED, COMMUNICATIONS].contains(&key)
}

/// How recent a passing test message must be for [`COMMUNICATIONS`].
pub const TEST_MESSAGE_MAX_AGE_DAYS: i64 = 7;

/// How recent a passing drill must be for [`ROLLBACK_TESTED`].
pub const DRILL_MAX_AGE_DAYS: i64 = 30;

/// The classic go/no-go checklist: key and title.
pub const DEFAULT_ITEMS: [(&str, &str); 7] = [
    ("metrics-approved", "Success metrics and stop conditions approved"),
    ("baseline", "Baseline documented"),
    (PILOT_FEEDBACK, "Pilot feedback addressed (no open blockers)"),
    (SUPPORT_STAFFED, "Support and champions staffed (every cohort has a champion)"),
    (DASHBOARDS, "Dashboards and alerts validated (every guardrail's source returns data)"),
    (
        ROLLBACK_TESTED,
        "Rollback runbook tested (a drill of this plan version passed within 30 days)",
    ),
    (
        COMMUNICATIONS,
        "Communications ready (every audience has a target whose test message succeeded within 7 days)",
    ),
];

/// A plan's `scorecard:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScorecardSpec {
    /// No-go when this many items or more are not green (default 2).
    #[serde(default = "default_max_red")]
    pub max_red: u32,
    /// The items; empty means the seven defaults.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemSpec>,
}

fn default_max_red() -> u32 {
    2
}

/// One scorecard item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemSpec {
    /// Stable key (`baseline`, `dashboards-alerts`…); `dashboards-alerts` and
    /// `rollback-tested` are checked automatically.
    pub key: String,
    /// What it asks; defaults to the default item's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// An item's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Done.
    Green,
    /// Not done.
    Red,
    /// Not needed here, with a reason; counts as green.
    Waived,
    /// Nobody has said (counts as not green).
    Unset,
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Green => "green",
            Status::Red => "red",
            Status::Waived => "waived",
            Status::Unset => "unset",
        }
    }

    /// Parses `green`, `red` or `waived` (what a person may set).
    pub fn parse_settable(s: &str) -> Option<Status> {
        match s {
            "green" => Some(Status::Green),
            "red" => Some(Status::Red),
            "waived" => Some(Status::Waived),
            _ => None,
        }
    }
}

/// What a person set on an item.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemState {
    /// The status set.
    pub status: Status,
    /// Who set it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Evidence (a link, a note) or, for a waiver, the reason.
    pub note: String,
}

/// The automatic checks' results: `(passed, evidence)`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AutoFacts {
    /// Whether every guardrail's signal source returns data.
    pub signals: Option<(bool, String)>,
    /// Whether a drill of this plan version passed within [`DRILL_MAX_AGE_DAYS`].
    pub drill: Option<(bool, String)>,
    /// Whether the release's feedback has no open blocker (None: no feedback yet).
    pub feedback: Option<(bool, String)>,
    /// Whether every cohort has a champion (None: the plan names no stakeholders).
    pub champions: Option<(bool, String)>,
    /// Whether every audience has a recently tested target (None: no targets at all).
    pub communications: Option<(bool, String)>,
}

/// One item, assessed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessed {
    /// Key.
    pub key: String,
    /// Title.
    pub title: String,
    /// Status (an automatic item's check, unless a person waived it).
    pub status: Status,
    /// Whether the status came from an automatic check.
    pub automatic: bool,
    /// Who set it (`wavegate` for an automatic check).
    pub by: Option<String>,
    /// When a person set it.
    pub at: Option<DateTime<Utc>>,
    /// Evidence or waiver reason.
    pub note: Option<String>,
}

/// The scorecard of a plan, assessed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Assessment {
    /// Whether the plan declares a scorecard (only then does it block).
    pub declared: bool,
    /// The no-go threshold.
    pub max_red: u32,
    /// The items.
    pub items: Vec<Assessed>,
    /// Items not green (waived counts as green).
    pub not_green: u32,
    /// Go: fewer than `max_red` items not green.
    pub go: bool,
    /// Whether it holds the start and promotions (declared and no-go).
    pub blocks: bool,
}

impl Assessment {
    /// Why it blocks, naming the items; `None` when it does not.
    pub fn block_reason(&self) -> Option<String> {
        if !self.blocks {
            return None;
        }
        let items: Vec<String> = self
            .items
            .iter()
            .filter(|i| !matches!(i.status, Status::Green | Status::Waived))
            .map(|i| format!("{} ({})", i.key, i.status.as_str()))
            .collect();
        Some(format!(
            "no-go: {} scorecard items are not green (no-go at {}): {}",
            self.not_green,
            self.max_red,
            items.join(", ")
        ))
    }
}

/// The items a plan's scorecard has: its declared ones, or the seven defaults.
pub fn items_of(plan: &PlanSpec) -> Vec<(String, String)> {
    let declared = plan.scorecard.as_ref().map(|s| s.items.as_slice()).unwrap_or_default();
    if declared.is_empty() {
        return DEFAULT_ITEMS.iter().map(|(k, t)| ((*k).to_owned(), (*t).to_owned())).collect();
    }
    declared
        .iter()
        .map(|i| {
            let title = i.title.clone().unwrap_or_else(|| {
                DEFAULT_ITEMS
                    .iter()
                    .find(|(k, _)| *k == i.key)
                    .map_or_else(|| i.key.clone(), |(_, t)| (*t).to_owned())
            });
            (i.key.clone(), title)
        })
        .collect()
}

/// Checks a `scorecard:` section: keys are unique, non-empty and at most 64 characters; at
/// least one item; `max_red` at least 1.
pub fn validate(spec: &ScorecardSpec) -> Result<(), String> {
    if spec.max_red == 0 {
        return Err("scorecard.max_red must be at least 1".into());
    }
    for (i, item) in spec.items.iter().enumerate() {
        if item.key.is_empty() || item.key.len() > 64 {
            return Err(format!("scorecard.items[{i}].key must be 1 to 64 characters"));
        }
        if spec.items[..i].iter().any(|o| o.key == item.key) {
            return Err(format!("scorecard.items[{i}].key {:?} is listed twice", item.key));
        }
    }
    Ok(())
}

/// Assesses `plan`'s scorecard from what people set (`states`, by item key) and the automatic
/// checks. An automatic item follows its check unless a person waived it; a manual item is
/// what a person set, `unset` until then.
pub fn assess(
    plan: &PlanSpec,
    states: &BTreeMap<String, ItemState>,
    facts: &AutoFacts,
) -> Assessment {
    let declared = plan.scorecard.is_some();
    let max_red = plan.scorecard.as_ref().map_or(default_max_red(), |s| s.max_red);
    let items: Vec<Assessed> = items_of(plan)
        .into_iter()
        .map(|(key, title)| {
            let set = states.get(&key);
            let auto = match key.as_str() {
                DASHBOARDS => Some(facts.signals.clone()),
                ROLLBACK_TESTED => Some(facts.drill.clone()),
                PILOT_FEEDBACK => Some(facts.feedback.clone()),
                SUPPORT_STAFFED => Some(facts.champions.clone()),
                COMMUNICATIONS => Some(facts.communications.clone()),
                _ => None,
            };
            match (auto, set) {
                (Some(_), Some(s)) if s.status == Status::Waived => person(key, title, s),
                (Some(None), Some(s)) if checks_itself_when_it_can(&key) => person(key, title, s),
                (Some(result), _) => {
                    let (status, note) = match result {
                        Some((true, e)) => (Status::Green, e),
                        Some((false, e)) => (Status::Red, e),
                        None => (Status::Unset, "not checked yet".to_owned()),
                    };
                    Assessed {
                        key,
                        title,
                        status,
                        automatic: true,
                        by: Some("wavegate".into()),
                        at: None,
                        note: Some(note),
                    }
                }
                (None, Some(s)) => person(key, title, s),
                (None, None) => Assessed {
                    key,
                    title,
                    status: Status::Unset,
                    automatic: false,
                    by: None,
                    at: None,
                    note: None,
                },
            }
        })
        .collect();
    let not_green =
        items.iter().filter(|i| !matches!(i.status, Status::Green | Status::Waived)).count() as u32;
    let go = not_green < max_red;
    Assessment { declared, max_red, items, not_green, go, blocks: declared && !go }
}

fn person(key: String, title: String, s: &ItemState) -> Assessed {
    Assessed {
        key,
        title,
        status: s.status,
        automatic: false,
        by: Some(s.by.clone()),
        at: Some(s.at),
        note: Some(s.note.clone()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(scorecard: Option<&str>) -> PlanSpec {
        let mut text = "name: p\nrelease: { name: r, version: 1.0.0, risk: low }\nflag: f\nnew_variant: \"on\"\ncontrol_variant: \"off\"\nenvironment: prod\nowners: { requester: a }\nwaves: [{ exposure: 10% }]\n".to_owned();
        if let Some(s) = scorecard {
            text.push_str(s);
        }
        wavegate_core::flagfile::parse_yaml(&text).unwrap()
    }

    fn set(status: Status) -> ItemState {
        ItemState {
            status,
            by: "kari".into(),
            at: "2026-11-20T09:00:00Z".parse().unwrap(),
            note: "see doc".into(),
        }
    }

    #[test]
    fn undeclared_scorecards_warn_but_never_block() {
        let a = assess(&plan(None), &BTreeMap::new(), &AutoFacts::default());
        assert_eq!((a.items.len(), a.not_green, a.go, a.blocks), (7, 7, false, false));
        assert_eq!(a.block_reason(), None);
    }

    #[test]
    fn declared_scorecards_block_at_max_red_and_waivers_count_green() {
        let p = plan(Some(
            "scorecard: { max_red: 2, items: [{ key: baseline }, { key: communications }, { key: rollback-tested }] }\n",
        ));
        let facts =
            AutoFacts { drill: Some((true, "drill 3 passed".into())), ..AutoFacts::default() };
        let mut states = BTreeMap::new();
        states.insert("baseline".to_owned(), set(Status::Red));
        let a = assess(&p, &states, &facts);
        assert_eq!((a.not_green, a.go, a.blocks), (2, false, true));
        let why = a.block_reason().unwrap();
        assert!(why.contains("baseline (red)") && why.contains("communications (unset)"), "{why}");
        assert_eq!(a.items[0].title, "Baseline documented");
        states.insert("communications".to_owned(), set(Status::Waived));
        let a = assess(&p, &states, &facts);
        assert_eq!((a.not_green, a.go, a.blocks), (1, true, false));
        assert_eq!(a.items[1].note.as_deref(), Some("see doc"), "a waiver keeps its reason");
        // An automatic item follows its check; a person can waive it but not paint it green.
        states.insert(ROLLBACK_TESTED.to_owned(), set(Status::Green));
        let failing = AutoFacts { drill: Some((false, "no drill".into())), ..AutoFacts::default() };
        let a = assess(&p, &states, &failing);
        assert_eq!(a.items[2].status, Status::Red);
        assert!(a.items[2].automatic);
    }

    #[test]
    fn people_items_follow_their_checks_once_there_is_something_to_check() {
        let p = plan(Some(
            "scorecard: { max_red: 1, items: [{ key: pilot-feedback }, { key: support-staffed }, { key: communications }] }\n",
        ));
        let mut states = BTreeMap::new();
        for key in [PILOT_FEEDBACK, SUPPORT_STAFFED, COMMUNICATIONS] {
            states.insert(key.to_owned(), set(Status::Green));
        }
        // Nothing to check yet: what people said stands.
        let a = assess(&p, &states, &AutoFacts::default());
        assert!(a.go && a.items.iter().all(|i| i.status == Status::Green && !i.automatic), "{a:?}");
        // Then the checks decide: an open blocker, a cohort without a champion.
        let facts = AutoFacts {
            feedback: Some((false, "1 open blocker".into())),
            champions: Some((false, "function = support has no champion".into())),
            communications: Some((true, "every audience tested".into())),
            ..AutoFacts::default()
        };
        let a = assess(&p, &states, &facts);
        let statuses: Vec<Status> = a.items.iter().map(|i| i.status).collect();
        assert_eq!(statuses, [Status::Red, Status::Red, Status::Green]);
        assert!(a.blocks && a.block_reason().unwrap().contains("pilot-feedback (red)"));
    }

    #[test]
    fn validation_names_the_problem() {
        let bad = ScorecardSpec {
            max_red: 2,
            items: vec![
                ItemSpec { key: "a".into(), title: None },
                ItemSpec { key: "a".into(), title: None },
            ],
        };
        assert!(validate(&bad).unwrap_err().contains("listed twice"));
        assert!(validate(&ScorecardSpec { max_red: 0, items: vec![] }).is_err());
    }
}
