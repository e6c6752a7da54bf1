//! Separation of duties: who may vouch for a plan's change — approve its rollout's promotions,
//! sign (set green) or waive its scorecard items. The people behind the change never may: the
//! plan's requester (`owners.requester`), whoever started its rollout, and whoever applied the
//! plan version in question. Waiving an item that wavegate checks by itself (`rollback-tested`,
//! `dashboards-alerts`), or a vulnerability finding, needs one of the plan's approvers. Each refusal names its rule, so a
//! person told "no" knows which rule and what would satisfy it.
//!
//! Pure: the server gathers the parties (who applied the version, who started the rollout) and
//! adds the rule about tokens the requester issued (`wavegate_server::service::duties`).

/// What a person vouches for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vouch {
    /// Approving a rollout's promotion (a gated wave, or a high-risk plan's approvals).
    Approve,
    /// Setting a scorecard item green.
    Sign,
    /// Waiving a scorecard item; `automatic` for the items wavegate checks itself.
    Waive {
        /// Whether the item is checked automatically.
        automatic: bool,
    },
    /// Waiving a vulnerability finding of its release (always one of the plan's approvers).
    WaiveFinding,
}

impl Vouch {
    fn doing(self) -> &'static str {
        match self {
            Vouch::Approve => "approve its promotions",
            Vouch::Sign => "sign its scorecard items",
            Vouch::Waive { .. } => "waive its scorecard items",
            Vouch::WaiveFinding => "waive its vulnerability findings",
        }
    }
}

/// The people behind a plan's change.
#[derive(Debug, Clone, Copy)]
pub struct Parties<'a> {
    /// The plan's name.
    pub plan: &'a str,
    /// Its `owners.requester` (empty: none named).
    pub requester: &'a str,
    /// Its `owners.approvers`.
    pub approvers: &'a [String],
    /// Who started its rollout, when one runs, and the rollout's id.
    pub started: Option<(&'a str, &'a str)>,
    /// Who applied the plan version in question, and that version.
    pub applied: Option<(&'a str, i64)>,
}

/// A rule that refuses a person's vouching.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// The rule's name: `requester`, `starter`, `plan-author` or `waiver-approver`.
    pub rule: &'static str,
    /// Why, in words, naming the rule.
    pub message: String,
}

/// The rule that forbids `principal` to vouch as `what` for `parties`' change, if one does.
pub fn conflict(what: Vouch, parties: &Parties<'_>, principal: &str) -> Option<Conflict> {
    conflict_for(what, parties, &crate::plan::Person::named(principal))
}

/// [`conflict`] for a person whose groups may put them among the plan's approvers.
pub fn conflict_for(
    what: Vouch,
    parties: &Parties<'_>,
    who: &crate::plan::Person<'_>,
) -> Option<Conflict> {
    let principal = who.name;
    let refuse = |rule: &'static str, why: String| Conflict {
        rule,
        message: format!(
            "separation of duties (rule \"{rule}\"): {why}, so they may not {} (another person must)",
            what.doing()
        ),
    };
    let plan = parties.plan;
    if !parties.requester.is_empty() && principal == parties.requester {
        return Some(refuse("requester", format!("{principal} is the requester of plan {plan:?}")));
    }
    if let Some((starter, rollout)) = parties.started
        && principal == starter
    {
        return Some(refuse("starter", format!("{principal} started rollout {rollout}")));
    }
    if let Some((author, version)) = parties.applied
        && principal == author
    {
        return Some(refuse(
            "plan-author",
            format!("{principal} applied version {version} of plan {plan:?}"),
        ));
    }
    if matches!(what, Vouch::Waive { automatic: true } | Vouch::WaiveFinding)
        && !who.listed_in(parties.approvers)
    {
        let thing = match what {
            Vouch::WaiveFinding => "a vulnerability finding",
            _ => "an item wavegate checks by itself",
        };
        let message = if parties.approvers.is_empty() {
            format!(
                "separation of duties (rule \"waiver-approver\"): {thing} is waived only by one \
                 of the plan's approvers, and plan {plan:?} names none; add owners.approvers"
            )
        } else {
            format!(
                "separation of duties (rule \"waiver-approver\"): {thing} is waived only by one \
                 of the plan's approvers ({}); {principal} is not one",
                parties.approvers.join(", ")
            )
        };
        return Some(Conflict { rule: "waiver-approver", message });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parties(approvers: &[String]) -> Parties<'_> {
        Parties {
            plan: "checkout",
            requester: "alice",
            approvers,
            started: Some(("sam", "ro_1")),
            applied: Some(("pat", 3)),
        }
    }

    #[test]
    fn the_people_behind_a_change_never_vouch_for_it() {
        let approvers = vec!["bob".to_owned(), "alice".to_owned()];
        let p = parties(&approvers);
        for (who, rule) in [("alice", "requester"), ("sam", "starter"), ("pat", "plan-author")] {
            for what in [Vouch::Approve, Vouch::Sign, Vouch::Waive { automatic: false }] {
                let c = conflict(what, &p, who).expect("refused");
                assert_eq!(c.rule, rule);
                assert!(c.message.contains(&format!("rule \"{rule}\"")), "{}", c.message);
                assert!(c.message.contains(who), "{}", c.message);
            }
        }
        let c = conflict(Vouch::Approve, &p, "alice").unwrap();
        assert!(c.message.contains("approve its promotions"), "{}", c.message);
        assert_eq!(conflict(Vouch::Approve, &p, "bob"), None);
        assert_eq!(conflict(Vouch::Sign, &p, "carol"), None, "anyone else may sign");
    }

    #[test]
    fn automatic_items_are_waived_by_an_approver() {
        let approvers = vec!["bob".to_owned()];
        let p = parties(&approvers);
        assert_eq!(conflict(Vouch::Waive { automatic: true }, &p, "bob"), None);
        let c = conflict(Vouch::Waive { automatic: true }, &p, "carol").unwrap();
        assert_eq!(c.rule, "waiver-approver");
        assert!(c.message.contains("(bob); carol is not one"), "{}", c.message);
        let none = parties(&[]);
        let c = conflict(Vouch::Waive { automatic: true }, &none, "carol").unwrap();
        assert!(c.message.contains("names none; add owners.approvers"), "{}", c.message);
        assert_eq!(conflict(Vouch::Waive { automatic: false }, &none, "carol"), None);
    }

    #[test]
    fn no_named_requester_refuses_nobody_for_it() {
        let p = Parties { requester: "", started: None, applied: None, ..parties(&[]) };
        assert_eq!(conflict(Vouch::Approve, &p, ""), None);
    }
}
