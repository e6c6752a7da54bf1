//! wavegate flags as Unleash features, for Unleash SDKs (`GET /api/client/features`).
//!
//! # How ordered rules become strategies
//!
//! wavegate serves the first matching rule; Unleash turns a feature on when any strategy holds
//! and takes the variant of the first strategy that holds.
//!
//! - **Non-boolean flags**: every rule becomes strategies in the same order, each serving its
//!   variant (weight 1000), then a catch-all strategy serves the default variant. Since Unleash
//!   takes the first strategy that holds, the variant agrees rule for rule, and `isEnabled` is
//!   true wherever the flag is enabled (as [`crate::is_on`] says).
//! - **Boolean flags**: only what serves `true` becomes strategies, since any strategy turns
//!   the feature on. A rule serving `false` still stops later rules in wavegate, so each later
//!   strategy carries the *negation* of every earlier rule that serves `false`: each of its
//!   constraints inverted (Unleash's `inverted`), expanded into one strategy per combination.
//! - **Splits** become chains of `flexibleRollout` strategies at the cumulative percentages (a
//!   boolean split exports its leading `true` share). **Percentages** (`percentage:` on a rule)
//!   are `flexibleRollout` strategies.
//! - **Segments** are exported by id: a segment's constraints as one Unleash segment, its
//!   listed keys as another (`userId IN [...]`); a segment with both becomes two strategies.
//!
//! Where Unleash cannot say exactly what wavegate does, the export takes the safe direction
//! (fewer contexts on) and records why in [`Exported::approximate`]: sub-percent cuts (rounded
//! down), a `true` share of a split after a `false` one, a rule serving `false` to a percentage
//! (later rules are exported as if it caught every context it matches), `in`/`not_in`/`eq`
//! compared without case (Unleash compares those with case), `date_after`/`date_before` on a
//! field other than `currentTime` (unleash-client for Node compares the current time whatever
//! the field), and more than
//! [`MAX_STRATEGIES`] strategies.

use indexmap::IndexMap;
use serde_json::Value;

use crate::context::CURRENT_TIME;
use crate::flag::Stickiness;
use crate::percent::Percent;
use crate::spec::{ConstraintSpec, FlagSpec, Operator, RuleSpec, SegmentSpec};
use crate::unleash::{
    ClientFeature, Dependency, Payload, Strategy, UnleashConstraint, UnleashSegment,
    UnleashVariant, unleash_field,
};

/// Most strategies one flag exports; beyond, later rules are left out (and the flag marked
/// approximate).
pub const MAX_STRATEGIES: usize = 256;

/// A flag as an Unleash feature, and where the translation is not exact.
#[derive(Debug, Clone, PartialEq)]
pub struct Exported {
    /// The feature.
    pub feature: ClientFeature,
    /// Why Unleash SDKs may answer differently from wavegate for some contexts; empty when
    /// the export is exact.
    pub approximate: Vec<String>,
}

/// Unleash segment ids of wavegate's segments: one for a segment's constraints, one for its
/// listed keys.
#[derive(Debug, Clone, Default)]
pub struct SegmentIds {
    ids: IndexMap<String, (Option<i64>, Option<i64>)>,
    /// The segments' constraints, kept for negation (which has to inline them).
    specs: IndexMap<String, SegmentSpec>,
}

/// Exports segments (ids are stable for a given set of segment names: sorted by name, two ids
/// each).
pub fn export_segments<'a>(
    segments: impl IntoIterator<Item = (&'a String, &'a SegmentSpec)>,
) -> (Vec<UnleashSegment>, SegmentIds) {
    let mut all: Vec<(&String, &SegmentSpec)> = segments.into_iter().collect();
    all.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    let mut ids = SegmentIds::default();
    for (i, (name, spec)) in all.into_iter().enumerate() {
        let base = 2 * i as i64 + 1;
        let c = (!spec.constraints.is_empty()).then(|| {
            out.push(UnleashSegment {
                id: base,
                name: Some(name.clone()),
                constraints: spec.constraints.iter().map(|c| export_constraint(c).0).collect(),
            });
            base
        });
        let k = (!spec.keys.is_empty()).then(|| {
            out.push(UnleashSegment {
                id: base + 1,
                name: Some(format!("{name} (keys)")),
                constraints: vec![keys_constraint(&spec.keys)],
            });
            base + 1
        });
        ids.ids.insert(name.clone(), (c, k));
        ids.specs.insert(name.clone(), spec.clone());
    }
    (out, ids)
}

fn keys_constraint(keys: &[String]) -> UnleashConstraint {
    UnleashConstraint {
        context_name: "userId".into(),
        operator: "IN".into(),
        values: keys.to_vec(),
        ..Default::default()
    }
}

/// A wavegate constraint as an Unleash constraint, and whether the two agree exactly.
pub fn export_constraint(c: &ConstraintSpec) -> (UnleashConstraint, bool) {
    let values: Vec<String> = c.values.iter().map(|v| v.as_str().to_owned()).collect();
    let first = values.first().cloned();
    let (operator, list, exact) = match c.op {
        Operator::In => ("IN", true, !c.case_insensitive),
        Operator::NotIn => ("NOT_IN", true, !c.case_insensitive),
        Operator::Eq => match first.as_deref().map(|v| v.trim().parse::<f64>()) {
            Some(Ok(n)) if n.is_finite() => ("NUM_EQ", false, true),
            _ => ("IN", true, !c.case_insensitive),
        },
        Operator::Contains => ("STR_CONTAINS", true, true),
        Operator::StartsWith => ("STR_STARTS_WITH", true, true),
        Operator::EndsWith => ("STR_ENDS_WITH", true, true),
        Operator::Lt => ("NUM_LT", false, true),
        Operator::Lte => ("NUM_LTE", false, true),
        Operator::Gt => ("NUM_GT", false, true),
        Operator::Gte => ("NUM_GTE", false, true),
        Operator::SemverLt => ("SEMVER_LT", false, true),
        Operator::SemverEq => ("SEMVER_EQ", false, true),
        Operator::SemverGt => ("SEMVER_GT", false, true),
        Operator::SemverGte => ("SEMVER_GTE", false, true),
        Operator::SemverLte => ("SEMVER_LTE", false, true),
        Operator::InCidr => ("IN_CIDR", true, true),
        // Unleash's specification compares `currentTime`; some SDKs ignore the field.
        Operator::DateBefore => ("DATE_BEFORE", false, c.attribute == CURRENT_TIME),
        Operator::DateAfter => ("DATE_AFTER", false, c.attribute == CURRENT_TIME),
        Operator::Regex => ("REGEX", false, true),
    };
    let case_insensitive = c.case_insensitive
        && matches!(
            c.op,
            Operator::Contains | Operator::StartsWith | Operator::EndsWith | Operator::Regex
        );
    (
        UnleashConstraint {
            context_name: unleash_field(&c.attribute).to_owned(),
            operator: operator.to_owned(),
            values: if list { values } else { Vec::new() },
            value: if list { None } else { first },
            case_insensitive,
            inverted: c.negate,
        },
        exact,
    )
}

/// One alternative: constraints and segment references that must all hold.
#[derive(Debug, Clone, Default)]
struct Conj {
    constraints: Vec<UnleashConstraint>,
    segments: Vec<i64>,
}

/// A disjunction of alternatives. Empty: never holds; one empty [`Conj`]: always holds.
type Dnf = Vec<Conj>;

struct Exporter<'a> {
    segments: &'a SegmentIds,
    approximate: Vec<String>,
    strategies: Vec<Strategy>,
    group: String,
}

impl Exporter<'_> {
    fn note(&mut self, why: String) {
        if !self.approximate.contains(&why) {
            self.approximate.push(why);
        }
    }

    fn constraint(&mut self, c: &ConstraintSpec, at: &str) -> UnleashConstraint {
        let (u, exact) = export_constraint(c);
        if !exact {
            self.note(match c.op {
                Operator::DateBefore | Operator::DateAfter => format!(
                    "{at}: `{}` on `{}`: unleash-client for Node compares the current time \
                     whatever the field (SDKs on Unleash's Yggdrasil engine read the field), so \
                     their answers differ",
                    c.op.as_str(),
                    c.attribute
                ),
                _ => format!(
                    "{at}: Unleash compares `{}` with case; it is exported case-sensitive",
                    c.op.as_str()
                ),
            });
        }
        u
    }

    /// The rule's conditions (constraints and segment) as alternatives.
    fn alternatives(&mut self, rule: &RuleSpec, at: &str) -> Dnf {
        let base: Vec<UnleashConstraint> =
            rule.constraints.iter().map(|c| self.constraint(c, at)).collect();
        let conj = |segments: Vec<i64>| Conj { constraints: base.clone(), segments };
        match rule.segment.as_deref().and_then(|s| self.segments.ids.get(s)) {
            None => vec![conj(Vec::new())],
            Some((None, None)) => vec![conj(Vec::new())],
            Some((Some(c), None)) => vec![conj(vec![*c])],
            Some((None, Some(k))) => vec![conj(vec![*k])],
            Some((Some(c), Some(k))) => vec![conj(vec![*c]), conj(vec![*k])],
        }
    }

    /// Contexts the rule's conditions do not match: every alternative fails, and an
    /// alternative fails when any of its constraints (segments inlined) fails.
    fn negation(&mut self, rule: &RuleSpec, at: &str) -> Option<Dnf> {
        let mut atoms: Vec<UnleashConstraint> =
            rule.constraints.iter().map(|c| self.constraint(c, at)).collect();
        let seg = rule.segment.as_deref().and_then(|s| self.segments.specs.get(s)).cloned();
        let mut result: Dnf = vec![Conj::default()];
        match seg {
            Some(s) if !s.keys.is_empty() && !s.constraints.is_empty() => {
                // ¬(base ∧ (keys ∨ cs)) = ¬base ∨ (¬keys ∧ ¬cs)
                let base = one_of_inverted(&atoms);
                let not_keys = vec![Conj {
                    constraints: vec![invert(keys_constraint(&s.keys))],
                    segments: vec![],
                }];
                let seg_atoms: Vec<UnleashConstraint> =
                    s.constraints.iter().map(|c| self.constraint(c, at)).collect();
                let both = product(&not_keys, &one_of_inverted(&seg_atoms))?;
                result = base;
                result.extend(both);
                return (result.len() <= MAX_STRATEGIES).then_some(result);
            }
            Some(s) => {
                if !s.keys.is_empty() {
                    atoms.push(keys_constraint(&s.keys));
                }
                atoms.extend(s.constraints.iter().map(|c| self.constraint(c, at)));
            }
            None => {}
        }
        result = one_of_inverted(&atoms);
        Some(result)
    }

    fn emit(
        &mut self,
        guard: &Dnf,
        rollout: Option<(u16, &Stickiness, Option<&str>)>,
        variant: Option<UnleashVariant>,
    ) {
        for conj in guard {
            if self.strategies.len() >= MAX_STRATEGIES {
                self.note(format!(
                    "more than {MAX_STRATEGIES} strategies; later rules are left out"
                ));
                return;
            }
            let (name, parameters) = match rollout {
                None => ("default", Default::default()),
                Some((pct, stickiness, salt)) => (
                    "flexibleRollout",
                    [
                        ("rollout", Value::String(pct.to_string())),
                        ("stickiness", Value::String(stickiness_name(stickiness))),
                        ("groupId", Value::String(salt.unwrap_or(&self.group).to_owned())),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
                ),
            };
            self.strategies.push(Strategy {
                name: name.into(),
                parameters,
                constraints: conj.constraints.clone(),
                segments: conj.segments.clone(),
                variants: variant.iter().cloned().collect(),
            });
        }
    }

    /// A cumulative cut in basis points as Unleash's whole percent, rounded down.
    fn whole_percent(&mut self, bp: u16, at: &str) -> u16 {
        if !bp.is_multiple_of(100) {
            let p = Percent::from_basis_points(bp).unwrap_or_default();
            self.note(format!("{at}: {p} is not a whole percent; rounded down to {}%", bp / 100));
        }
        bp / 100
    }
}

fn invert(mut c: UnleashConstraint) -> UnleashConstraint {
    c.inverted = !c.inverted;
    c
}

/// At least one of `atoms` fails: one alternative per atom, inverted. No atoms: never.
fn one_of_inverted(atoms: &[UnleashConstraint]) -> Dnf {
    atoms.iter().map(|a| Conj { constraints: vec![invert(a.clone())], segments: vec![] }).collect()
}

/// Both hold: every pairing of alternatives. `None` past [`MAX_STRATEGIES`].
fn product(a: &Dnf, b: &Dnf) -> Option<Dnf> {
    if a.len().saturating_mul(b.len()) > MAX_STRATEGIES {
        return None;
    }
    let mut out = Vec::with_capacity(a.len() * b.len());
    for x in a {
        for y in b {
            let mut c = x.clone();
            c.constraints.extend(y.constraints.iter().cloned());
            c.segments.extend(y.segments.iter().copied());
            out.push(c);
        }
    }
    Some(out)
}

fn stickiness_name(s: &Stickiness) -> String {
    match s {
        Stickiness::Default => "default".into(),
        Stickiness::TargetingKey => "userId".into(),
        Stickiness::Random => "random".into(),
        Stickiness::Attribute(a) => unleash_field(a).to_owned(),
    }
}

/// A variant as Unleash's (weight 1000: it is the only one of its strategy).
fn unleash_variant(name: &str, value: &Value) -> UnleashVariant {
    let payload = match value {
        Value::String(s) => Payload { kind: "string".into(), value: s.clone() },
        Value::Number(n) => Payload { kind: "number".into(), value: n.to_string() },
        other => Payload { kind: "json".into(), value: other.to_string() },
    };
    UnleashVariant {
        name: name.to_owned(),
        weight: 1000,
        weight_type: Some("variable".into()),
        stickiness: Some("default".into()),
        payload: Some(payload),
        overrides: Vec::new(),
    }
}

/// Exports flag `key` in `environment`. The spec must have passed validation.
pub fn export_flag(
    key: &str,
    spec: &FlagSpec,
    environment: &str,
    segments: &SegmentIds,
) -> Exported {
    let env = spec.environments.get(environment);
    let boolean = spec.variants.values().all(Value::is_boolean);
    let mut x = Exporter {
        segments,
        approximate: Vec::new(),
        strategies: Vec::new(),
        group: spec.salt.clone().unwrap_or_else(|| key.to_owned()),
    };
    let variant_of =
        |name: &str| spec.variants.get(name).map(|v| unleash_variant(name, v)).unwrap_or_default();
    // Contexts that no earlier rule serving `false` caught (boolean flags only).
    let mut reach: Dnf = vec![Conj::default()];
    for (i, rule) in env.map(|e| e.rules.as_slice()).unwrap_or_default().iter().enumerate() {
        let at =
            format!("rule {:?}", rule.name.clone().unwrap_or_else(|| format!("rule-{}", i + 1)));
        let alts = x.alternatives(rule, &at);
        let Some(guard) = product(&alts, &reach) else {
            x.note(format!("{at}: more than {MAX_STRATEGIES} strategies; left out"));
            continue;
        };
        let stickiness = Stickiness::parse(rule.stickiness.as_deref());
        let salt = rule.salt.as_deref();
        let mut blocks = false;
        match (&rule.serve, &rule.split) {
            (Some(v), _) => {
                let rollout = rule
                    .percentage
                    .map(|p| (x.whole_percent(p.basis_points(), &at), &stickiness, salt));
                let value = spec.variants.get(v.as_str());
                if !boolean {
                    x.emit(&guard, rollout, Some(variant_of(v)));
                } else if value == Some(&Value::Bool(true)) {
                    // A true variant with a name of its own keeps it (a dependency may name it).
                    let named = (v != "on").then(|| variant_of(v));
                    x.emit(&guard, rollout, named);
                } else {
                    blocks = true;
                    if rule.percentage.is_some() {
                        x.note(format!(
                            "{at}: serves false to a percentage; later rules are exported as if it caught every context it matches"
                        ));
                    }
                }
            }
            (None, Some(split)) => {
                let mut cum: u16 = 0;
                let mut leading_true = true;
                let mut last_cut = 0u16;
                for (name, share) in split {
                    cum += share.basis_points();
                    let is_true = spec.variants.get(name) == Some(&Value::Bool(true));
                    if boolean {
                        if is_true && leading_true {
                            continue;
                        }
                        if is_true {
                            x.note(format!(
                                "{at}: the share of {name:?} follows a share serving false; Unleash can only turn on a leading share, so it is left out"
                            ));
                        } else if leading_true {
                            let start = cum - share.basis_points();
                            if start > 0 {
                                let pct = x.whole_percent(start, &at);
                                x.emit(&guard, Some((pct, &stickiness, salt)), None);
                            }
                            leading_true = false;
                        }
                        blocks = true;
                    } else {
                        let pct = x.whole_percent(cum, &at);
                        if pct > last_cut || (pct == 100 && last_cut < 100) {
                            x.emit(&guard, Some((pct, &stickiness, salt)), Some(variant_of(name)));
                            last_cut = pct;
                        }
                    }
                }
                if boolean && leading_true {
                    // Every share serves true.
                    x.emit(&guard, Some((100, &stickiness, salt)), None);
                }
                if blocks && matches!(stickiness, Stickiness::Attribute(_)) {
                    x.note(format!(
                        "{at}: contexts without the stickiness attribute pass this split in wavegate; later rules are exported as if it caught them"
                    ));
                }
            }
            (None, None) => {}
        }
        if boolean && blocks {
            match x.negation(rule, &at).and_then(|n| product(&reach, &n)) {
                Some(r) => reach = r,
                None => {
                    x.note(format!(
                        "{at}: its negation needs more than {MAX_STRATEGIES} strategies; later rules are left out"
                    ));
                    reach = Vec::new();
                }
            }
        }
    }
    let default_value = spec.variants.get(&spec.default);
    if !boolean {
        x.emit(&vec![Conj::default()], None, Some(variant_of(&spec.default)));
    } else if default_value == Some(&Value::Bool(true)) {
        let reach = reach.clone();
        x.emit(&reach, None, None);
    }
    let dependencies = spec
        .prerequisites
        .iter()
        .map(|p| Dependency {
            feature: p.flag.clone(),
            enabled: (!p.enabled).then_some(false),
            variants: (!p.variants.is_empty()).then(|| p.variants.clone()),
        })
        .collect();
    let disabled_value =
        spec.variants.get(spec.disabled_variant.as_deref().unwrap_or(&spec.default));
    if boolean && !env.is_some_and(|e| e.enabled) && disabled_value == Some(&Value::Bool(true)) {
        x.note("switched off, the flag serves true (its disabled variant); Unleash SDKs answer false for a disabled feature".into());
    }
    // Unleash turns an enabled feature without strategies on for everyone; a boolean flag
    // that serves `true` to no one is exported switched off instead.
    let enabled = env.is_some_and(|e| e.enabled) && !x.strategies.is_empty();
    Exported {
        feature: ClientFeature {
            name: key.to_owned(),
            kind: Some("release".into()),
            description: spec.description.clone(),
            enabled,
            stale: Some(false),
            impression_data: Some(false),
            project: Some("default".into()),
            strategies: x.strategies,
            variants: Vec::new(),
            dependencies,
        },
        approximate: x.approximate,
    }
}
