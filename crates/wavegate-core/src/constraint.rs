//! Compiled constraints: operands parsed and regexes built once, at compile time, so that
//! evaluation only compares.

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use regex::Regex;
use semver::Version;

use crate::context::{AttrRef, Context, bytes_eq};
use crate::error::{SpecError, SpecPath};
use crate::spec::{ConstraintSpec, Operator};

/// Longest regex pattern accepted, in bytes.
pub const MAX_REGEX_LEN: usize = 1024;
/// Largest compiled regex program, in bytes (the `regex` crate's size limit).
pub const MAX_REGEX_SIZE: usize = 256 * 1024;
/// Most operands a constraint may list.
pub const MAX_VALUES: usize = 10_000;

/// A validated constraint, ready to match.
#[derive(Debug, Clone)]
pub struct Constraint {
    attribute: String,
    matcher: Matcher,
    negate: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    /// `in` / `not_in` (`not_in` is `in` with `absent_result` true and the result inverted).
    In {
        values: Vec<String>,
        ci: bool,
        inverted: bool,
    },
    Eq {
        text: String,
        number: Option<f64>,
        ci: bool,
    },
    Contains {
        values: Vec<String>,
        ci: bool,
    },
    StartsWith {
        values: Vec<String>,
        ci: bool,
    },
    EndsWith {
        values: Vec<String>,
        ci: bool,
    },
    Num {
        op: Cmp,
        value: f64,
    },
    Semver {
        op: Cmp,
        value: Version,
    },
    Date {
        op: Cmp,
        value: DateTime<Utc>,
    },
    Regex(Regex),
    /// IP ranges: network address and prefix length.
    Cidr(Vec<(IpAddr, u8)>),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Lt,
    Lte,
    Eq,
    Gt,
    Gte,
}

impl Cmp {
    fn holds(self, ord: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            Cmp::Lt => ord == Less,
            Cmp::Lte => ord != Greater,
            Cmp::Eq => ord == Equal,
            Cmp::Gt => ord == Greater,
            Cmp::Gte => ord != Less,
        }
    }
}

impl Constraint {
    /// Validates and compiles a constraint; `path` says where it is for error messages.
    pub fn compile(spec: &ConstraintSpec, path: &SpecPath) -> Result<Constraint, SpecError> {
        if spec.attribute.is_empty() {
            return Err(path.field("attribute").error("attribute must not be empty"));
        }
        let vpath = path.field("values");
        if spec.values.len() > MAX_VALUES {
            return Err(vpath.error(format!("at most {MAX_VALUES} values are allowed")));
        }
        let ci = spec.case_insensitive;
        let texts = || -> Result<Vec<String>, SpecError> {
            if spec.values.is_empty() {
                return Err(
                    vpath.error(format!("operator {} needs at least one value", spec.op.as_str()))
                );
            }
            Ok(spec
                .values
                .iter()
                .map(|v| if ci { v.as_str().to_lowercase() } else { v.as_str().to_owned() })
                .collect())
        };
        let single = || -> Result<&str, SpecError> {
            match spec.values.as_slice() {
                [one] => Ok(one.as_str()),
                _ => Err(vpath.error(format!(
                    "operator {} needs exactly one value, got {}",
                    spec.op.as_str(),
                    spec.values.len()
                ))),
            }
        };
        let number = || -> Result<f64, SpecError> {
            let s = single()?;
            s.trim().parse::<f64>().ok().filter(|n| n.is_finite()).ok_or_else(|| {
                vpath.error(format!("operator {} needs a number, got {s:?}", spec.op.as_str()))
            })
        };
        let version = || -> Result<Version, SpecError> {
            let s = single()?;
            parse_semver(s)
                .ok_or_else(|| vpath.error(format!("{s:?} is not a semantic version (like 1.2.3)")))
        };
        let date = || -> Result<DateTime<Utc>, SpecError> {
            let s = single()?;
            parse_date(s).ok_or_else(|| {
                vpath.error(format!(
                    "{s:?} is not an RFC 3339 date-time (like 2026-01-31T00:00:00Z)"
                ))
            })
        };
        let matcher = match spec.op {
            Operator::In => Matcher::In { values: texts()?, ci, inverted: false },
            Operator::NotIn => Matcher::In { values: texts()?, ci, inverted: true },
            Operator::Eq => {
                let s = single()?;
                let number = s.trim().parse::<f64>().ok().filter(|n| n.is_finite());
                Matcher::Eq { text: if ci { s.to_lowercase() } else { s.to_owned() }, number, ci }
            }
            Operator::Contains => Matcher::Contains { values: texts()?, ci },
            Operator::StartsWith => Matcher::StartsWith { values: texts()?, ci },
            Operator::EndsWith => Matcher::EndsWith { values: texts()?, ci },
            Operator::Lt => Matcher::Num { op: Cmp::Lt, value: number()? },
            Operator::Lte => Matcher::Num { op: Cmp::Lte, value: number()? },
            Operator::Gt => Matcher::Num { op: Cmp::Gt, value: number()? },
            Operator::Gte => Matcher::Num { op: Cmp::Gte, value: number()? },
            Operator::SemverLt => Matcher::Semver { op: Cmp::Lt, value: version()? },
            Operator::SemverEq => Matcher::Semver { op: Cmp::Eq, value: version()? },
            Operator::SemverGt => Matcher::Semver { op: Cmp::Gt, value: version()? },
            Operator::SemverGte => Matcher::Semver { op: Cmp::Gte, value: version()? },
            Operator::SemverLte => Matcher::Semver { op: Cmp::Lte, value: version()? },
            Operator::InCidr => {
                let mut nets = Vec::new();
                for (i, v) in texts()?.iter().enumerate() {
                    let net = parse_cidr(v).ok_or_else(|| {
                        vpath.index(i).error(format!(
                            "{v:?} is not an IP address or range (like 10.0.0.0/8 or 2001:db8::/32)"
                        ))
                    })?;
                    nets.push(net);
                }
                Matcher::Cidr(nets)
            }
            Operator::DateBefore => Matcher::Date { op: Cmp::Lt, value: date()? },
            Operator::DateAfter => Matcher::Date { op: Cmp::Gt, value: date()? },
            Operator::Regex => {
                let pattern = single()?;
                if pattern.len() > MAX_REGEX_LEN {
                    return Err(vpath.error(format!(
                        "regex is {} bytes; at most {MAX_REGEX_LEN} are allowed",
                        pattern.len()
                    )));
                }
                let re = regex::RegexBuilder::new(pattern)
                    .case_insensitive(ci)
                    .size_limit(MAX_REGEX_SIZE)
                    .dfa_size_limit(MAX_REGEX_SIZE)
                    .build()
                    .map_err(|e| {
                        vpath.error(format!("invalid regex: {}", one_line(&e.to_string())))
                    })?;
                Matcher::Regex(re)
            }
        };
        Ok(Constraint { attribute: spec.attribute.clone(), matcher, negate: spec.negate })
    }

    /// Whether the constraint reads `currentTime` (so its answer changes with the clock).
    pub fn reads_current_time(&self) -> bool {
        self.attribute == crate::context::CURRENT_TIME
    }

    /// When its answer can change with the clock alone: a date comparison of `currentTime` at
    /// its date, any other test of `currentTime` at any moment.
    pub fn time_dependence(&self) -> crate::timing::TimeDependence {
        use crate::timing::TimeDependence;
        match &self.matcher {
            _ if !self.reads_current_time() => TimeDependence::Never,
            Matcher::Date { value, .. } => TimeDependence::At(vec![*value]),
            _ => TimeDependence::Always,
        }
    }

    /// The context attribute it reads.
    pub fn attribute(&self) -> &str {
        &self.attribute
    }

    /// Whether the context satisfies the constraint. A missing attribute satisfies only
    /// `not_in` (as in Unleash); `negate` then inverts either way.
    #[inline]
    pub fn matches(&self, ctx: &Context) -> bool {
        let base = match ctx.attribute(&self.attribute) {
            None => matches!(self.matcher, Matcher::In { inverted: true, .. }),
            Some(attr) => self.matcher.matches(attr),
        };
        base != self.negate
    }
}

impl Matcher {
    fn matches(&self, attr: AttrRef<'_>) -> bool {
        match self {
            Matcher::In { values, ci, inverted } => {
                let found = with_text(attr, *ci, |t| {
                    values.iter().any(|v| bytes_eq(v.as_bytes(), t.as_bytes()))
                })
                .unwrap_or(false);
                found != *inverted
            }
            Matcher::Eq { text, number, ci } => match (attr, number) {
                (AttrRef::Number(n), Some(want)) => n == *want,
                (AttrRef::Str(s), Some(want))
                    if s.trim().parse::<f64>().is_ok_and(|n| n == *want) =>
                {
                    true
                }
                _ => with_text(attr, *ci, |t| bytes_eq(t.as_bytes(), text.as_bytes()))
                    .unwrap_or(false),
            },
            Matcher::Contains { values, ci } => {
                with_text(attr, *ci, |t| values.iter().any(|v| t.contains(v.as_str())))
                    .unwrap_or(false)
            }
            Matcher::StartsWith { values, ci } => {
                with_text(attr, *ci, |t| values.iter().any(|v| starts_with(t, v))).unwrap_or(false)
            }
            Matcher::EndsWith { values, ci } => {
                with_text(attr, *ci, |t| values.iter().any(|v| ends_with(t, v))).unwrap_or(false)
            }
            Matcher::Num { op, value } => {
                let n = match attr {
                    AttrRef::Number(n) => n,
                    AttrRef::Str(s) => match s.trim().parse::<f64>() {
                        Ok(n) => n,
                        Err(_) => return false,
                    },
                    _ => return false,
                };
                n.partial_cmp(value).is_some_and(|o| op.holds(o))
            }
            Matcher::Semver { op, value } => match attr {
                AttrRef::Str(s) => {
                    parse_semver(s).is_some_and(|v| op.holds(v.cmp_precedence(value)))
                }
                _ => false,
            },
            Matcher::Date { op, value } => {
                let t = match attr {
                    AttrRef::Str(s) => parse_date(s),
                    // Numbers are milliseconds since the Unix epoch.
                    AttrRef::Number(ms) if ms.is_finite() && ms.abs() < 1e15 => {
                        DateTime::from_timestamp_millis(ms as i64)
                    }
                    _ => None,
                };
                t.is_some_and(|t| op.holds(t.cmp(value)))
            }
            Matcher::Cidr(nets) => match attr {
                AttrRef::Str(s) => {
                    s.trim().parse::<IpAddr>().is_ok_and(|ip| nets.iter().any(|n| in_range(ip, *n)))
                }
                _ => false,
            },
            Matcher::Regex(re) => match attr {
                AttrRef::Str(s) => re.is_match(s),
                AttrRef::Number(_) | AttrRef::Bool(_) => {
                    with_text(attr, false, |t| re.is_match(t)).unwrap_or(false)
                }
                AttrRef::Structured => false,
            },
        }
    }
}

#[inline(always)]
fn starts_with(t: &str, prefix: &str) -> bool {
    t.len() >= prefix.len() && bytes_eq(&t.as_bytes()[..prefix.len()], prefix.as_bytes())
}

#[inline(always)]
fn ends_with(t: &str, suffix: &str) -> bool {
    t.len() >= suffix.len() && bytes_eq(&t.as_bytes()[t.len() - suffix.len()..], suffix.as_bytes())
}

/// Runs `f` on the attribute's text (lowercased when `ci`); `None` for structured values.
#[inline]
fn with_text<R>(attr: AttrRef<'_>, ci: bool, f: impl FnOnce(&str) -> R) -> Option<R> {
    match attr {
        AttrRef::Str(s) if !ci => Some(f(s)),
        AttrRef::Str(s) => Some(f(&s.to_lowercase())),
        AttrRef::Number(n) => Some(f(&number_text(n))),
        AttrRef::Bool(b) => Some(f(if b { "true" } else { "false" })),
        AttrRef::Structured => None,
    }
}

/// A number as text, integers without a fraction (`31`, not `31.0`), as SDKs send them.
pub(crate) fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

/// Strict semantic versions, as Unleash reads them: `v1.2.3` is not one.
fn parse_semver(s: &str) -> Option<Version> {
    Version::parse(s.trim()).ok()
}

/// An IP range, `address/prefix` or a bare address (all its bits), as (network, prefix).
pub fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let s = s.trim();
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a.parse::<IpAddr>().ok()?, Some(p.parse::<u8>().ok()?)),
        None => (s.parse::<IpAddr>().ok()?, None),
    };
    let bits = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = prefix.unwrap_or(bits);
    (prefix <= bits).then_some((addr, prefix))
}

/// Whether `ip` lies in the range `net`/`prefix` (of the same family).
fn in_range(ip: IpAddr, (net, prefix): (IpAddr, u8)) -> bool {
    let mask = |bits: u32, width: u32| -> u128 {
        if bits == 0 { 0 } else { (!0u128 << (width - bits)) & (!0u128 >> (128 - width)) }
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let m = mask(u32::from(prefix), 32);
            (u128::from(u32::from(a)) & m) == (u128::from(u32::from(n)) & m)
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let m = mask(u32::from(prefix), 128);
            (u128::from(a) & m) == (u128::from(n) & m)
        }
        _ => false,
    }
}

fn parse_date(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s.trim()).ok().map(|d| d.with_timezone(&Utc))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
