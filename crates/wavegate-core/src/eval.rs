//! [`evaluate`]: a compiled flag and a context in, a [`Resolution`] out. Never fails, never
//! panics, allocates nothing on the common paths (a split on the targeting key included).

use crate::bucket::{BUCKETS, bucket};
use crate::constraint::number_text;
use crate::context::{AttrRef, Context, SESSION_ID};
use crate::flag::{Flag, Prerequisite, Rule, Serve, Stickiness, ValueType};

/// Why a value was served (OpenFeature's reasons).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Enabled, no rules: the default variant for everyone.
    Static,
    /// A rule that serves one variant matched.
    TargetingMatch,
    /// A rule with a percentage split matched.
    Split,
    /// Rules exist but none matched: the default variant.
    Default,
    /// The flag is disabled (kill switch) in this environment.
    Disabled,
    /// Evaluation could not proceed (see [`Resolution::error`]); the default variant is served.
    Error,
}

impl Reason {
    /// The OpenFeature name (`TARGETING_MATCH`…).
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Static => "STATIC",
            Reason::TargetingMatch => "TARGETING_MATCH",
            Reason::Split => "SPLIT",
            Reason::Default => "DEFAULT",
            Reason::Disabled => "DISABLED",
            Reason::Error => "ERROR",
        }
    }

    /// Every reason, for metrics.
    pub const ALL: [Reason; 6] = [
        Reason::Static,
        Reason::TargetingMatch,
        Reason::Split,
        Reason::Default,
        Reason::Disabled,
        Reason::Error,
    ];
}

/// Why evaluation returned [`Reason::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalError {
    /// A split with `targetingKey` stickiness met a context without a targeting key.
    TargetingKeyMissing,
}

/// The outcome of one evaluation, borrowing from the flag.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resolution<'a> {
    /// The value served.
    pub value: &'a serde_json::Value,
    /// The variant's name.
    pub variant: &'a str,
    /// Why.
    pub reason: Reason,
    /// The name of the rule that decided, if one did.
    pub rule: Option<&'a str>,
    /// Set when `reason` is [`Reason::Error`].
    pub error: Option<EvalError>,
}

/// Where evaluation finds the parents a flag's prerequisites name: the other flags of the same
/// environment.
pub trait FlagLookup {
    /// The compiled flag `key`, if it exists.
    fn flag(&self, key: &str) -> Option<&Flag>;
}

impl<V: std::borrow::Borrow<Flag>, S: std::hash::BuildHasher> FlagLookup
    for std::collections::HashMap<String, V, S>
{
    fn flag(&self, key: &str) -> Option<&Flag> {
        self.get(key).map(std::borrow::Borrow::borrow)
    }
}

/// No other flags: every prerequisite fails.
struct NoFlags;

impl FlagLookup for NoFlags {
    fn flag(&self, _: &str) -> Option<&Flag> {
        None
    }
}

/// Evaluates `flag` for `ctx` on its own. A flag with prerequisites needs its parents: use
/// [`evaluate_in`]; here its prerequisites fail (parents unknown) and it serves its disabled
/// variant.
pub fn evaluate<'a>(flag: &'a Flag, ctx: &Context) -> Resolution<'a> {
    evaluate_in(flag, ctx, &NoFlags)
}

/// Whether `flag` is on for `ctx`: enabled in its environment and, for a boolean flag, serving
/// `true` (a non-boolean flag that is enabled is on whichever variant it serves, as in Unleash,
/// where such a flag exports a catch-all strategy). A flag with prerequisites is evaluated
/// without its parents, so it is off.
pub fn is_on(flag: &Flag, ctx: &Context) -> bool {
    flag.enabled && (flag.value_type != ValueType::Bool || *evaluate(flag, ctx).value == true)
}

fn prerequisite_holds(p: &Prerequisite, ctx: &Context, flags: &dyn FlagLookup) -> bool {
    let Some(parent) = flags.flag(&p.flag) else {
        return false;
    };
    // One level only (validated on write; a stale parent that has some fails, as in Unleash).
    if !parent.prerequisites.is_empty() {
        return false;
    }
    // One evaluation serves both questions: is the parent on, and which variant it serves.
    let r = evaluate(parent, ctx);
    let on = parent.enabled && (parent.value_type != ValueType::Bool || *r.value == true);
    if !p.enabled {
        return !on;
    }
    on && (p.variants.is_empty() || p.variants.iter().any(|v| v == r.variant))
}

/// Evaluates `flag` for `ctx`, reading the parents of its prerequisites from `flags`. A
/// prerequisite that does not hold turns the flag off: it serves `disabled_variant` if the flag
/// sets one, else its `false` variant (a boolean flag), else `default`, with reason `DISABLED`
/// and rule `prerequisite:<parent>`.
pub fn evaluate_in<'a>(flag: &'a Flag, ctx: &Context, flags: &dyn FlagLookup) -> Resolution<'a> {
    if !flag.enabled {
        return resolution(flag, flag.disabled, Reason::Disabled, None);
    }
    if let Some(p) = flag.prerequisites.iter().find(|p| !prerequisite_holds(p, ctx, flags)) {
        return resolution(flag, flag.off, Reason::Disabled, Some(&p.label));
    }
    if flag.rules.is_empty() {
        return resolution(flag, flag.default, Reason::Static, None);
    }
    for rule in &flag.rules {
        if !rule_matches(rule, ctx) {
            continue;
        }
        let salt = rule.salt.as_deref().unwrap_or(&flag.salt);
        if let Some(gate) = &rule.gate {
            // A percentage falls through when the context is outside it or has no value to
            // bucket on (Unleash's strategy is then false), targetingKey stickiness included.
            match split_bucket(salt, &gate.stickiness, ctx) {
                Bucket::At(bp) if bp < gate.bp => {}
                _ => continue,
            }
        }
        match &rule.serve {
            Serve::Variant(v) => {
                return resolution(flag, *v, Reason::TargetingMatch, Some(&rule.name));
            }
            Serve::Split { cuts, stickiness } => match split_bucket(salt, stickiness, ctx) {
                Bucket::At(bp) => {
                    // Cuts are cumulative and end at 10000, so some cut is always above bp.
                    let v =
                        cuts.iter().find(|(cut, _)| bp < *cut).map_or(flag.default, |(_, v)| *v);
                    return resolution(flag, v, Reason::Split, Some(&rule.name));
                }
                Bucket::NoValue => continue,
                Bucket::TargetingKeyMissing => {
                    let mut r = resolution(flag, flag.default, Reason::Error, Some(&rule.name));
                    r.error = Some(EvalError::TargetingKeyMissing);
                    return r;
                }
            },
        }
    }
    resolution(flag, flag.default, Reason::Default, None)
}

#[inline]
fn resolution<'a>(
    flag: &'a Flag,
    v: usize,
    reason: Reason,
    rule: Option<&'a str>,
) -> Resolution<'a> {
    let variant = &flag.variants[v];
    Resolution { value: &variant.value, variant: &variant.name, reason, rule, error: None }
}

#[inline]
fn rule_matches(rule: &Rule, ctx: &Context) -> bool {
    rule.constraints.iter().all(|c| c.matches(ctx))
        && rule.segment.as_ref().is_none_or(|s| s.contains(ctx))
}

enum Bucket {
    At(u16),
    NoValue,
    TargetingKeyMissing,
}

#[inline]
fn split_bucket(salt: &str, stickiness: &Stickiness, ctx: &Context) -> Bucket {
    let random =
        || ctx.entropy().map_or(Bucket::NoValue, |e| Bucket::At((e % u32::from(BUCKETS)) as u16));
    match stickiness {
        Stickiness::Default => {
            if let Some(k) = ctx.targeting_key() {
                return Bucket::At(bucket(salt, k));
            }
            match ctx.attribute(SESSION_ID) {
                Some(a) => attr_bucket(salt, a),
                None => random(),
            }
        }
        Stickiness::TargetingKey => match ctx.targeting_key() {
            Some(k) => Bucket::At(bucket(salt, k)),
            None => Bucket::TargetingKeyMissing,
        },
        Stickiness::Random => random(),
        Stickiness::Attribute(name) => match ctx.attribute(name) {
            Some(a) => attr_bucket(salt, a),
            None => Bucket::NoValue,
        },
    }
}

fn attr_bucket(salt: &str, a: AttrRef<'_>) -> Bucket {
    match a {
        AttrRef::Str(s) => Bucket::At(bucket(salt, s)),
        AttrRef::Number(n) => Bucket::At(bucket(salt, &number_text(n))),
        AttrRef::Bool(b) => Bucket::At(bucket(salt, if b { "true" } else { "false" })),
        AttrRef::Structured => Bucket::NoValue,
    }
}
