//! The rules a rollout owns in its flag (DESIGN.md "A rollout owns one rule"): a split of the
//! new variant (listed first) against control at the wave's percentage, named
//! `rollout:<id>`, plus one `rollout:<id>:<segment>` rule per ring a wave named. Rings widen as
//! a union: a segment exposed in an earlier wave stays exposed at its highest exposure so far.
//! A plan with a `watch:` keeps its holdback on the control variant (every exposure capped at
//! 100% − holdback) until the watch ends and releases it.

use indexmap::IndexMap;
use wavegate_core::Percent;
use wavegate_core::spec::{FlagSpec, RuleSpec};

use crate::plan::{Placement, PlanSpec};

/// The prefix of every rule rollout `id` owns.
pub fn rule_prefix(id: &str) -> String {
    format!("rollout:{id}")
}

/// Whether a rule name belongs to rollout `id`.
pub fn owns_rule(id: &str, rule: &str) -> bool {
    let p = rule_prefix(id);
    rule == p || rule.strip_prefix(&p).is_some_and(|rest| rest.starts_with(':'))
}

/// The rollout's rules at `wave` (0-based), with the watch's holdback kept unless `released`.
pub fn rollout_rules(plan: &PlanSpec, id: &str, wave: usize, released: bool) -> Vec<RuleSpec> {
    let mut rings: IndexMap<&str, Percent> = IndexMap::new();
    let mut general: Option<Percent> = None;
    // Waves up to `wave`, or all of them if it is beyond the last (none for a plan without).
    for (i, w) in plan.waves[..plan.waves.len().min(wave.saturating_add(1))].iter().enumerate() {
        let exposure = plan.exposure_at(i, released);
        if w.segments.is_empty() {
            general = Some(general.map_or(exposure, |g| g.max(exposure)));
        } else {
            for s in &w.segments {
                let e = rings.entry(s.as_str()).or_insert(exposure);
                *e = (*e).max(exposure);
            }
        }
    }
    let split = |p: Percent| {
        let mut m = IndexMap::new();
        m.insert(plan.new_variant.clone(), p);
        m.insert(
            plan.control_variant.clone(),
            Percent::from_basis_points(10_000 - p.basis_points()).unwrap_or_default(),
        );
        Some(m)
    };
    // A ring never gets less than everyone gets, and a context in several rings meets the
    // most-exposed ring first (rules are tried in order), so widening is a union.
    let mut rings: Vec<(&str, Percent)> =
        rings.into_iter().map(|(s, p)| (s, general.map_or(p, |g| g.max(p)))).collect();
    rings.sort_by_key(|r| std::cmp::Reverse(r.1));
    let mut rules: Vec<RuleSpec> = rings
        .into_iter()
        .map(|(seg, p)| RuleSpec {
            name: Some(format!("{}:{seg}", rule_prefix(id))),
            segment: Some(seg.to_owned()),
            split: split(p),
            ..RuleSpec::default()
        })
        .collect();
    if let Some(p) = general {
        rules.push(RuleSpec {
            name: Some(rule_prefix(id)),
            split: split(p),
            ..RuleSpec::default()
        });
    }
    rules
}

/// `flag` with rollout `id`'s rules for `wave` in place of any it had, in `environment` (the
/// watch's holdback kept unless `released`).
pub fn with_rollout_rules(
    flag: &FlagSpec,
    plan: &PlanSpec,
    id: &str,
    wave: usize,
    released: bool,
) -> FlagSpec {
    let mut flag = flag.clone();
    let env = flag.environments.entry(plan.environment.clone()).or_default();
    let keep: Vec<RuleSpec> = env
        .rules
        .iter()
        .filter(|r| !r.name.as_deref().is_some_and(|n| owns_rule(id, n)))
        .cloned()
        .collect();
    let ours = rollout_rules(plan, id, wave, released);
    env.rules = match plan.placement {
        Placement::Last => keep.into_iter().chain(ours).collect(),
        Placement::First => ours.into_iter().chain(keep).collect(),
    };
    flag
}
