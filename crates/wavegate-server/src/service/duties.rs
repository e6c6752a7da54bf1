//! Separation of duties without an identity provider: an approval, a scorecard sign-off or a
//! waiver vouches for someone else's change, so it never counts when it is made with a token
//! the requester issued, or one issued by a principal whose token the requester issued (at any
//! remove). Tokens record who minted them
//! (`created_by`), and issuing a token for another principal needs user administration, so a
//! requester cannot mint an approver for themselves.

use wavegate_rollout::duties::{Parties, Vouch};
use wavegate_rollout::plan::PlanSpec;
use wavegate_store::{Kind, TokenRecord};

use crate::service::{ServiceError, ServiceResult};
use crate::state::AppState;

/// Why `token` may not vouch for a change requested by `requester`, if it may not: the
/// requester issued it, or issued a token of a principal that issued it (at any remove).
/// `tokens` is every token, revoked ones included (a revoked minter still minted).
pub fn issued_by_requester(
    tokens: &[TokenRecord],
    token: &TokenRecord,
    requester: &str,
) -> Option<String> {
    // Walk up who issued whose tokens, from the token's issuer, keeping the path for the message.
    let mut paths: Vec<Vec<&str>> = vec![vec![token.created_by.as_str()]];
    let mut seen: Vec<&str> = vec![token.created_by.as_str()];
    while let Some(path) = paths.pop() {
        let issuer = *path.last().expect("a path is never empty");
        if issuer == requester {
            let chain =
                path.iter().map(|p| format!("{p:?}")).collect::<Vec<_>>().join(", issued by ");
            return Some(format!(
                "this token was issued by {chain}, who requested the change; an approval, \
                 sign-off or waiver must come from a token the requester did not issue, \
                 directly or through tokens they issued"
            ));
        }
        for t in tokens.iter().filter(|t| t.principal == issuer) {
            let up = t.created_by.as_str();
            if !seen.contains(&up) {
                seen.push(up);
                let mut longer = path.clone();
                longer.push(up);
                paths.push(longer);
            }
        }
    }
    None
}

/// Refuses (forbidden, naming the rule) when the caller may not vouch as `what` for plan
/// `plan` at `version` (the version its rollout runs, or the current one): the people behind
/// the change never may (`wavegate_rollout::duties`: the plan's requester, whoever started its
/// rollout `started` (starter, rollout id), whoever applied that version), automatic items are
/// waived by an approver, and no token the requester or the starter issued counts.
pub async fn require_may_vouch(
    state: &AppState,
    token: &TokenRecord,
    what: Vouch,
    plan: &PlanSpec,
    version: i64,
    started: Option<(&str, &str)>,
) -> ServiceResult<()> {
    let author = state.store.version(Kind::Plan, &plan.name, version).await?.map(|v| v.actor);
    let parties = Parties {
        plan: &plan.name,
        requester: &plan.owners.requester,
        approvers: &plan.owners.approvers,
        started,
        applied: author.as_deref().map(|a| (a, version)),
    };
    let who = wavegate_rollout::plan::Person { name: &token.principal, groups: &token.groups };
    if let Some(c) = wavegate_rollout::duties::conflict_for(what, &parties, &who) {
        return Err(ServiceError::Forbidden(c.message));
    }
    let tokens = state.store.tokens().await?;
    let behind = [Some(plan.owners.requester.as_str()), started.map(|(s, _)| s)];
    for person in behind.into_iter().flatten().filter(|p| !p.is_empty()) {
        if let Some(why) = issued_by_requester(&tokens, token, person) {
            return Err(ServiceError::Forbidden(why));
        }
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{TimeZone, Utc};
    use wavegate_store::TokenKind;

    use super::*;

    /// A token record for tests (an admin token for every environment).
    pub(crate) fn token(id: &str, principal: &str, created_by: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            hash: id.into(),
            kind: TokenKind::Admin,
            environments: vec!["*".into()],
            principal: principal.into(),
            created_at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
            created_by: created_by.into(),
            revoked_at: None,
            user_admin: false,
            evaluate_only: false,
            expires_at: None,
            roles: Vec::new(),
            groups: Vec::new(),
        }
    }

    #[test]
    fn the_requester_never_vouches_through_a_token_it_issued() {
        let root = token("t0", "admin", "system");
        let alice = token("t1", "alice", "admin");
        let bob = token("t2", "bob", "admin");
        let mallory = token("t3", "mallory", "alice");
        let eve = token("t4", "eve", "mallory");
        let deep = token("t5", "deeper", "eve");
        let all = [root, alice, bob.clone(), mallory.clone(), eve.clone(), deep.clone()];
        assert_eq!(issued_by_requester(&all, &bob, "alice"), None, "an independent approver");
        let direct = issued_by_requester(&all, &mallory, "alice").unwrap();
        assert!(direct.contains("issued by \"alice\""), "{direct}");
        let through = issued_by_requester(&all, &eve, "alice").unwrap();
        assert!(through.contains("\"mallory\", issued by \"alice\""), "{through}");
        let deeper = issued_by_requester(&all, &deep, "alice").unwrap();
        assert!(deeper.contains("\"eve\", issued by \"mallory\", issued by \"alice\""));
        // Principals who issued each other's tokens do not loop.
        let a = token("c1", "p", "q");
        let b = token("c2", "q", "p");
        assert_eq!(issued_by_requester(&[a.clone(), b], &a, "alice"), None);
        // The bootstrap admin issued alice's and bob's: it may not vouch for its own change
        // through them, but they vouch for each other.
        assert!(issued_by_requester(&all, &bob, "admin").is_some());
    }
}
