//! Unleash features as wavegate flags: `wavegate flag import --from-unleash`, and the harness
//! that runs Unleash's client-specification fixtures through wavegate's evaluation.
//!
//! Each feature becomes a boolean flag (`on`/`off`, default `off`) enabled as the feature is in
//! the environment; each strategy becomes a rule serving `on` (a `flexibleRollout` or
//! `gradualRollout*` percentage falls through to later rules, as Unleash tries the next
//! strategy); a strategy's segments are inlined as constraints; `dependencies` become
//! prerequisites.
//!
//! What cannot be imported exactly is reported per feature in [`Imported::unsupported`] (the
//! feature is then left out or imported without the part named): variant selection by weight
//! (Unleash's variant hash, seed 86028157; a strategy's only variant is imported, served by
//! name), the `applicationHostname` strategy, dependencies on variants chosen by weight or on
//! the `disabled` variant of a parent with variants, and names that are not wavegate flag keys.

use indexmap::IndexMap;
use serde_json::{Value, json};

use crate::percent::Percent;
use crate::spec::{
    ConstraintSpec, EnvironmentSpec, FlagFile, FlagSpec, Operator, PrerequisiteSpec, RuleSpec,
    Scalar,
};
use crate::unleash::{ClientFeatures, Strategy, UnleashConstraint, wavegate_attribute};

/// The result of importing a set of Unleash features.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The flags (and no segments: Unleash segments are inlined).
    pub file: FlagFile,
    /// Feature name → what of it could not be imported. A feature listed here may still be in
    /// `file` (without the part named) unless its answers would change, in which case it is
    /// left out.
    pub unsupported: IndexMap<String, Vec<String>>,
    /// Feature name → notes on imports that are exact but worth knowing (a strategy or
    /// dependency that can never hold, imported as such).
    pub notes: IndexMap<String, Vec<String>>,
}

/// Why a strategy or constraint cannot be imported.
enum Skip {
    /// Unleash itself treats it as never holding (an unknown strategy or operator): imported
    /// exactly by leaving the strategy out.
    Never(String),
    /// wavegate cannot express it: the feature's answers would differ.
    Unsupported(String),
}

/// Imports `features` into `environment`: enabled features are enabled there.
pub fn import_features(features: &ClientFeatures, environment: &str) -> Imported {
    let mut out = Imported::default();
    let segments: IndexMap<i64, &Vec<UnleashConstraint>> =
        features.segments.iter().map(|s| (s.id, &s.constraints)).collect();
    let mut by_name: IndexMap<&str, &crate::unleash::ClientFeature> = IndexMap::new();
    for f in &features.features {
        by_name.entry(f.name.as_str()).or_insert(f);
    }
    for (i, f) in features.features.iter().enumerate() {
        if features.features[..i].iter().any(|o| o.name == f.name) {
            out.unsupported
                .entry(f.name.clone())
                .or_default()
                .push("listed more than once: the first is imported".into());
            continue;
        }
        if let Err(m) = crate::flag::validate_flag_key(&f.name) {
            out.unsupported
                .insert(f.name.clone(), vec![format!("not a valid wavegate flag key: {m}")]);
            continue;
        }
        let mut unsupported = Vec::new();
        let mut notes = Vec::new();
        let mut enabled = f.enabled;
        let sole = sole_variants(f);
        if sole.is_none() {
            unsupported.push(
                "variants are not imported: Unleash picks them with its variant hash (seed 86028157), which wavegate does not use; on/off is imported"
                    .to_owned(),
            );
        }
        let mut prerequisites = Vec::new();
        for d in &f.dependencies {
            let parent = by_name.get(d.feature.as_str());
            let wants_on = d.enabled.unwrap_or(true);
            let never = match parent {
                _ if d.feature == f.name => Some("depends on itself".to_owned()),
                None => Some(format!("depends on {:?}, which does not exist", d.feature)),
                Some(p) if !p.dependencies.is_empty() => Some(format!(
                    "depends on {:?}, which has dependencies of its own (Unleash never enables it)",
                    d.feature
                )),
                _ => None,
            };
            if let Some(why) = never {
                notes.push(format!("{why}: imported disabled"));
                enabled = false;
                continue;
            }
            let parent_has_variants = parent.is_some_and(|p| {
                !p.variants.is_empty() || p.strategies.iter().any(|s| !s.variants.is_empty())
            });
            let variants = d.variants.clone().unwrap_or_default();
            let mut wanted = Vec::new();
            if wants_on && !variants.is_empty() {
                let parent_sole = parent.and_then(|p| sole_variants(p));
                match parent_sole {
                    // The parent's variants leave no choice: it serves them by name.
                    Some(served)
                        if parent_has_variants && !variants.iter().any(|v| v == "disabled") =>
                    {
                        wanted = variants.iter().filter(|v| served.contains(v)).cloned().collect();
                        if wanted.is_empty() {
                            notes.push(format!(
                                "depends on variants {variants:?} of {:?}, which it never serves: imported disabled",
                                d.feature
                            ));
                            enabled = false;
                            continue;
                        }
                    }
                    _ if parent_has_variants => {
                        unsupported.push(format!(
                            "depends on variants {variants:?} of {:?}, whose variants are not imported",
                            d.feature
                        ));
                        continue;
                    }
                    _ => {}
                }
            }
            if wants_on && !variants.is_empty() && wanted.is_empty() {
                // A parent without variants serves Unleash's "disabled" variant when on.
                if !variants.iter().any(|v| v == "disabled") {
                    notes.push(format!(
                        "depends on variants {variants:?} of {:?}, which has none: imported disabled",
                        d.feature
                    ));
                    enabled = false;
                    continue;
                }
            }
            prerequisites.push(PrerequisiteSpec {
                flag: d.feature.clone(),
                enabled: wants_on,
                variants: wanted,
            });
        }
        let mut rules = Vec::new();
        if f.strategies.is_empty() {
            // Unleash: an enabled feature without strategies is on for everyone.
            rules.push(RuleSpec {
                name: Some("no-strategies".into()),
                serve: Some("on".into()),
                ..RuleSpec::default()
            });
        }
        for (i, s) in f.strategies.iter().enumerate() {
            match import_strategy(&f.name, s, &segments) {
                Ok(mut rule) => {
                    // A strategy whose one variant leaves no choice serves it by name.
                    if let Some(v) = sole.as_ref().and(sole_variant(s)) {
                        rule.serve = Some(v.to_owned());
                    }
                    rules.push(RuleSpec { name: Some(format!("{}-{}", s.name, i + 1)), ..rule })
                }
                Err(Skip::Never(why)) => notes.push(format!("strategy {}: {why}", i + 1)),
                Err(Skip::Unsupported(why)) => {
                    unsupported.push(format!("strategy {} ({}): {why}", i + 1, s.name))
                }
            }
        }
        let lossy = unsupported.iter().any(|u| !u.starts_with("variants are not imported"));
        if !unsupported.is_empty() {
            out.unsupported.insert(f.name.clone(), unsupported);
        }
        if !notes.is_empty() {
            out.notes.insert(f.name.clone(), notes);
        }
        if lossy {
            continue;
        }
        let mut environments = IndexMap::new();
        environments.insert(environment.to_owned(), EnvironmentSpec { enabled, rules });
        // The variants strategies serve by name are `true` too: the flag stays boolean.
        let named = sole.into_iter().flatten().filter(|v| v != "on").map(|v| (v, json!(true)));
        out.file.flags.insert(
            f.name.clone(),
            FlagSpec {
                description: f.description.clone(),
                variants: [("on".to_owned(), json!(true)), ("off".to_owned(), json!(false))]
                    .into_iter()
                    .chain(named)
                    .collect(),
                default: "off".into(),
                disabled_variant: None,
                salt: None,
                prerequisites,
                environments,
            },
        );
    }
    // A dependency on a feature that was left out cannot be kept.
    let kept: Vec<String> = out.file.flags.keys().cloned().collect();
    for (name, spec) in out.file.flags.iter_mut() {
        let missing: Vec<String> = spec
            .prerequisites
            .iter()
            .filter(|p| !kept.contains(&p.flag))
            .map(|p| p.flag.clone())
            .collect();
        if !missing.is_empty() {
            spec.prerequisites.retain(|p| kept.contains(&p.flag));
            for e in spec.environments.values_mut() {
                e.enabled = false;
            }
            out.unsupported.entry(name.clone()).or_default().push(format!(
                "depends on {missing:?}, which could not be imported: imported disabled"
            ));
        }
    }
    out
}

/// The variant a strategy always serves: its only one (of some weight, without overrides).
fn sole_variant(s: &Strategy) -> Option<&str> {
    match s.variants.as_slice() {
        [v] if v.weight > 0 && v.overrides.is_empty() && v.name != "off" && !v.name.is_empty() => {
            Some(v.name.as_str())
        }
        _ => None,
    }
}

/// The variant names a feature's strategies serve when none of its variants is chosen by
/// weight (no feature-level variants, each strategy with none or [`sole_variant`]); `None`
/// when Unleash would pick one with its variant hash.
fn sole_variants(f: &crate::unleash::ClientFeature) -> Option<Vec<String>> {
    if !f.variants.is_empty() {
        return None;
    }
    let mut names = Vec::new();
    for s in &f.strategies {
        if s.variants.is_empty() {
            continue;
        }
        let v = sole_variant(s)?;
        if !names.iter().any(|n| n == v) {
            names.push(v.to_owned());
        }
    }
    Some(names)
}

fn percent(s: &Strategy, name: &str) -> Result<Percent, Skip> {
    let text = s.parameter(name).unwrap_or_else(|| "100".into());
    let n: f64 =
        text.trim().parse().map_err(|_| Skip::Never(format!("{name} {text:?} is not a number")))?;
    let bp = (n.clamp(0.0, 100.0) * 100.0).round() as u16;
    Ok(Percent::from_basis_points(bp).unwrap_or_default())
}

fn import_strategy(
    feature: &str,
    s: &Strategy,
    segments: &IndexMap<i64, &Vec<UnleashConstraint>>,
) -> Result<RuleSpec, Skip> {
    let mut constraints = Vec::new();
    for c in &s.constraints {
        constraints.extend(import_constraint(c)?);
    }
    for id in &s.segments {
        let Some(cs) = segments.get(id) else {
            return Err(Skip::Never(format!("segment {id} does not exist")));
        };
        for c in cs.iter() {
            constraints.extend(import_constraint(c)?);
        }
    }
    let mut rule = RuleSpec { constraints, serve: Some("on".into()), ..RuleSpec::default() };
    let group = |s: &Strategy| s.parameter("groupId").filter(|g| !g.is_empty() && g != feature);
    match s.name.as_str() {
        "default" => {}
        "flexibleRollout" => {
            rule.percentage = Some(percent(s, "rollout")?);
            rule.stickiness = match s.parameter("stickiness").as_deref() {
                None | Some("") | Some("default") => None,
                Some("userId") => Some("targetingKey".into()),
                Some(other) => Some(other.to_owned()),
            };
            rule.salt = group(s);
        }
        "gradualRolloutUserId" | "gradualRolloutSessionId" | "gradualRolloutRandom" => {
            rule.percentage = Some(percent(s, "percentage")?);
            rule.stickiness = Some(
                match s.name.as_str() {
                    "gradualRolloutUserId" => "targetingKey",
                    "gradualRolloutSessionId" => "sessionId",
                    _ => "random",
                }
                .into(),
            );
            rule.salt = group(s);
        }
        "userWithId" => {
            let ids: Vec<Scalar> = s
                .parameter("userIds")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(Scalar::from)
                .collect();
            if ids.is_empty() {
                return Err(Skip::Never("no userIds".into()));
            }
            rule.constraints.push(ConstraintSpec {
                attribute: crate::context::TARGETING_KEY.into(),
                op: Operator::In,
                values: ids,
                negate: false,
                case_insensitive: false,
            });
        }
        "remoteAddress" => {
            // `IPs`: addresses and ranges, comma-separated; entries that are neither are
            // ignored (as Unleash's engine does).
            let ips = s.parameter("IPs").unwrap_or_default();
            let values: Vec<Scalar> = ips
                .split(',')
                .map(str::trim)
                .filter(|ip| crate::constraint::parse_cidr(ip).is_some())
                .map(Scalar::from)
                .collect();
            if values.is_empty() {
                return Err(Skip::Never("no IP address or range in IPs".into()));
            }
            rule.constraints.push(ConstraintSpec {
                attribute: "remoteAddress".into(),
                op: Operator::InCidr,
                values,
                negate: false,
                case_insensitive: false,
            });
        }
        "applicationHostname" => {
            return Err(Skip::Unsupported(
                "matches the application's host name, which wavegate's contexts do not carry"
                    .into(),
            ));
        }
        other => {
            return Err(Skip::Never(format!(
                "unknown strategy {other:?}: Unleash SDKs treat it as off"
            )));
        }
    }
    Ok(rule)
}

/// An Unleash constraint as wavegate's; `None` when it holds for every context.
fn import_constraint(c: &UnleashConstraint) -> Result<Option<ConstraintSpec>, Skip> {
    let op = match c.operator.as_str() {
        "IN" => Operator::In,
        "NOT_IN" => Operator::NotIn,
        "STR_CONTAINS" => Operator::Contains,
        "STR_STARTS_WITH" => Operator::StartsWith,
        "STR_ENDS_WITH" => Operator::EndsWith,
        "NUM_EQ" => Operator::Eq,
        "NUM_LT" => Operator::Lt,
        "NUM_LTE" => Operator::Lte,
        "NUM_GT" => Operator::Gt,
        "NUM_GTE" => Operator::Gte,
        "SEMVER_EQ" => Operator::SemverEq,
        "SEMVER_LT" => Operator::SemverLt,
        "SEMVER_GT" => Operator::SemverGt,
        "SEMVER_GTE" => Operator::SemverGte,
        "SEMVER_LTE" => Operator::SemverLte,
        "IN_CIDR" => Operator::InCidr,
        "DATE_BEFORE" => Operator::DateBefore,
        "DATE_AFTER" => Operator::DateAfter,
        "REGEX" => Operator::Regex,
        other => {
            return Err(Skip::Never(format!(
                "unknown operator {other:?}: Unleash SDKs treat the constraint as failing"
            )));
        }
    };
    let list = matches!(
        op,
        Operator::In
            | Operator::NotIn
            | Operator::Contains
            | Operator::StartsWith
            | Operator::EndsWith
            | Operator::InCidr
    );
    // Entries of IN_CIDR that are no address or range match nothing (as Unleash's engine).
    let listed: Vec<&String> = c
        .values
        .iter()
        .filter(|v| op != Operator::InCidr || crate::constraint::parse_cidr(v).is_some())
        .collect();
    if list && listed.is_empty() {
        // Unleash: nothing is in an empty list, so NOT_IN [] always holds and the rest never.
        let holds = (op == Operator::NotIn) != c.inverted;
        return if holds {
            Ok(None)
        } else {
            Err(Skip::Never("an empty list matches nothing".into()))
        };
    }
    let values: Vec<Scalar> = if list {
        listed.iter().map(|v| Scalar::from(v.as_str())).collect()
    } else {
        c.value.iter().chain(c.values.first()).take(1).map(|v| Scalar::from(v.as_str())).collect()
    };
    let spec = ConstraintSpec {
        attribute: wavegate_attribute(&c.context_name).to_owned(),
        op,
        values,
        negate: c.inverted,
        // Unleash's IN/NOT_IN and NUM_EQ ignore the flag.
        case_insensitive: c.case_insensitive
            && matches!(
                op,
                Operator::Contains | Operator::StartsWith | Operator::EndsWith | Operator::Regex
            ),
    };
    // An operand that does not parse (a bad date, an empty list): Unleash's constraint fails.
    crate::constraint::Constraint::compile(&spec, &crate::error::SpecPath::root("constraint"))
        .map_err(|e| Skip::Never(format!("constraint does not hold for anyone: {e}")))?;
    Ok(Some(spec))
}

/// Parses a `/api/client/features` body (or an Unleash export with the same `features` and
/// `segments`).
pub fn parse_client_features(value: &Value) -> Result<ClientFeatures, String> {
    serde_json::from_value(value.clone())
        .map_err(|e| format!("not an Unleash features document: {e}"))
}
