//! [`Flag`]: a flag compiled for one environment, and [`Segment`]: a compiled segment.
//!
//! Compiling validates everything evaluation relies on (variants exist, splits sum to 100%,
//! regexes build, segments resolve), so [`crate::eval::evaluate`] cannot fail on a flag.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use crate::constraint::Constraint;
use crate::context::{CURRENT_TIME, Context};
use crate::error::{SpecError, SpecPath};
use crate::percent::Percent;
use crate::spec::{FlagSpec, PrerequisiteSpec, RuleSpec, SegmentSpec};
use crate::timing::TimeDependence;

/// Longest flag, segment or environment key, in bytes.
pub const MAX_KEY_LEN: usize = 128;
/// Most rules per flag per environment.
pub const MAX_RULES: usize = 1000;
/// Most variants per flag.
pub const MAX_VARIANTS: usize = 100;

/// Checks a flag, segment or environment key: 1–128 characters of `A-Za-z0-9._-`, starting
/// with a letter or digit.
pub fn validate_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("key {key:?} must be 1 to {MAX_KEY_LEN} characters"));
    }
    let ok = key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && key.as_bytes()[0].is_ascii_alphanumeric();
    if !ok {
        return Err(format!(
            "key {key:?} may hold only letters, digits, '.', '_' and '-', and must start with a letter or digit"
        ));
    }
    Ok(())
}

/// Checks a flag's key: as [`validate_key`], and besides any character outside ASCII that is
/// neither white space nor a control character (Unleash allows `Feature.UTF-8.Hellø_Wørld`,
/// and its SDKs must find such flags here too). Clients send it percent-encoded in URLs.
pub fn validate_flag_key(key: &str) -> Result<(), String> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(format!("key {key:?} must be 1 to {MAX_KEY_LEN} bytes"));
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(c, '.' | '_' | '-')
            || (!c.is_ascii() && !c.is_whitespace() && !c.is_control())
    };
    let first = key.chars().next().is_some_and(char::is_alphanumeric);
    if !first || !key.chars().all(allowed) {
        return Err(format!(
            "key {key:?} may hold only letters, digits, '.', '_', '-' and other characters \
             outside ASCII (no spaces or control characters), and must start with a letter or digit"
        ));
    }
    Ok(())
}

/// The value type a flag's variants share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// `true` / `false`.
    Bool,
    /// A string.
    String,
    /// An integer or float.
    Number,
    /// A JSON object.
    Object,
}

impl ValueType {
    /// The type of a JSON value, if it is one a variant may hold.
    pub fn of(v: &serde_json::Value) -> Option<ValueType> {
        match v {
            serde_json::Value::Bool(_) => Some(ValueType::Bool),
            serde_json::Value::String(_) => Some(ValueType::String),
            serde_json::Value::Number(_) => Some(ValueType::Number),
            serde_json::Value::Object(_) => Some(ValueType::Object),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::Bool => "boolean",
            ValueType::String => "string",
            ValueType::Number => "number",
            ValueType::Object => "object",
        }
    }
}

/// A compiled segment.
#[derive(Debug)]
pub struct Segment {
    name: String,
    keys: HashSet<String>,
    constraints: Vec<Constraint>,
}

impl Segment {
    /// Validates and compiles a segment.
    pub fn compile(name: &str, spec: &SegmentSpec, path: &SpecPath) -> Result<Segment, SpecError> {
        validate_key(name).map_err(|m| path.error(m))?;
        let constraints = spec
            .constraints
            .iter()
            .enumerate()
            .map(|(i, c)| Constraint::compile(c, &path.field("constraints").index(i)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Segment {
            name: name.to_owned(),
            keys: spec.keys.iter().cloned().collect(),
            constraints,
        })
    }

    /// Whether membership depends on `currentTime`.
    pub fn reads_current_time(&self) -> bool {
        self.constraints.iter().any(Constraint::reads_current_time)
    }

    /// When membership can change with the clock alone.
    pub fn time_dependence(&self) -> TimeDependence {
        self.constraints.iter().fold(TimeDependence::Never, |d, c| d.merge(c.time_dependence()))
    }

    /// The segment's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Membership: the targeting key is listed, or (when constraints are given) they all hold.
    /// A segment with neither keys nor constraints holds everyone.
    pub fn contains(&self, ctx: &Context) -> bool {
        if !self.keys.is_empty() && ctx.targeting_key().is_some_and(|k| self.keys.contains(k)) {
            return true;
        }
        if self.constraints.is_empty() {
            return self.keys.is_empty();
        }
        self.constraints.iter().all(|c| c.matches(ctx))
    }
}

/// Compiled segments by name, shared by every flag that references them.
pub type Segments = HashMap<String, Arc<Segment>>;

/// Compiles every segment in a map of specs.
pub fn compile_segments<'a>(
    specs: impl IntoIterator<Item = (&'a String, &'a SegmentSpec)>,
    root: &SpecPath,
) -> Result<Segments, SpecError> {
    specs
        .into_iter()
        .map(|(name, spec)| {
            Ok((name.clone(), Arc::new(Segment::compile(name, spec, &root.field(name))?)))
        })
        .collect()
}

/// What a split buckets on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stickiness {
    /// targetingKey, else sessionId, else the context's entropy (Unleash's `default`).
    Default,
    /// The targeting key only; its absence is `TARGETING_KEY_MISSING`.
    TargetingKey,
    /// The context's entropy: a fresh draw per evaluation.
    Random,
    /// A named attribute; a context without it does not match the rule.
    Attribute(String),
}

impl Stickiness {
    /// Reads a stickiness name (`None` is `default`).
    pub fn parse(s: Option<&str>) -> Stickiness {
        match s {
            None | Some("default") => Stickiness::Default,
            Some("targetingKey") | Some("userId") => Stickiness::TargetingKey,
            Some("random") => Stickiness::Random,
            Some(other) => Stickiness::Attribute(other.to_owned()),
        }
    }
}

/// A variant: name and value.
#[derive(Debug, Clone)]
pub struct Variant {
    /// The variant's name.
    pub name: String,
    /// Its value.
    pub value: serde_json::Value,
}

/// What a matching rule serves.
#[derive(Debug, Clone)]
pub(crate) enum Serve {
    Variant(usize),
    /// Cumulative cuts in basis points, in the order written: `bp < cut` picks that variant.
    Split {
        cuts: Vec<(u16, usize)>,
        stickiness: Stickiness,
    },
}

/// A rule's sticky percentage: it holds for contexts bucketed below `bp`; the rest (and
/// contexts without a stickiness value) fall through to later rules.
#[derive(Debug, Clone)]
pub(crate) struct Gate {
    pub(crate) bp: u16,
    pub(crate) stickiness: Stickiness,
}

#[derive(Debug, Clone)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) segment: Option<Arc<Segment>>,
    pub(crate) constraints: Vec<Constraint>,
    pub(crate) gate: Option<Gate>,
    /// Bucketing group overriding the flag's salt.
    pub(crate) salt: Option<String>,
    pub(crate) serve: Serve,
}

/// A compiled prerequisite: what a parent flag must serve for this flag to be on.
#[derive(Debug, Clone)]
pub(crate) struct Prerequisite {
    pub(crate) flag: String,
    pub(crate) enabled: bool,
    pub(crate) variants: Vec<String>,
    /// `prerequisite:<flag>`, the rule name shown when it fails.
    pub(crate) label: String,
}

/// A flag compiled for one environment: what [`crate::eval::evaluate`] reads. What does not
/// differ between environments (key, salt, variants, prerequisites) is shared between the
/// flag's environments when they are compiled together ([`Flag::compile_each`]).
#[derive(Debug, Clone)]
pub struct Flag {
    pub(crate) key: Arc<str>,
    pub(crate) salt: Arc<str>,
    pub(crate) variants: Arc<[Variant]>,
    pub(crate) value_type: ValueType,
    pub(crate) default: usize,
    pub(crate) disabled: usize,
    pub(crate) enabled: bool,
    pub(crate) rules: Vec<Rule>,
    pub(crate) prerequisites: Arc<[Prerequisite]>,
    /// Served when a prerequisite fails: `disabled_variant` if set, else (a boolean flag) the
    /// variant serving `false`, else `default`.
    pub(crate) off: usize,
    /// The stored version this was compiled from, when the caller knows it (evaluation
    /// answers carry it so late events can be told apart from current ones).
    pub(crate) version: Option<i64>,
}

impl Flag {
    /// Validates a flag spec as a whole (every environment) against known environments and
    /// segments. Returns the value type its variants share.
    pub fn validate(
        key: &str,
        spec: &FlagSpec,
        environments: &[String],
        segments: &Segments,
        path: &SpecPath,
    ) -> Result<ValueType, SpecError> {
        validate_flag_key(key).map_err(|m| path.error(m))?;
        for env in spec.environments.keys() {
            if !environments.iter().any(|e| e == env) {
                return Err(path.field("environments").field(env).error(format!(
                    "unknown environment {env:?}; known: {}",
                    environments.join(", ")
                )));
            }
            Flag::compile(key, spec, env, segments, path)?;
        }
        // A flag with no environments still has to be well-formed.
        Flag::compile(key, spec, "", segments, path).map(|f| f.value_type)
    }

    /// Compiles the flag's state in `environment` (absent → disabled there).
    pub fn compile(
        key: &str,
        spec: &FlagSpec,
        environment: &str,
        segments: &Segments,
        path: &SpecPath,
    ) -> Result<Flag, SpecError> {
        Flag::shared_parts(key, spec, path)?.in_environment(spec, environment, segments, path)
    }

    /// Compiles the flag for each of `environments` (in their order; each as
    /// [`Flag::compile`] would, labelled with stored `version` if known), sharing what does
    /// not differ between them: key, salt, variants and prerequisites, and one compiled flag
    /// for every environment the spec does not name (the flag is off in each alike).
    pub fn compile_each(
        key: &str,
        spec: &FlagSpec,
        environments: &[String],
        segments: &Segments,
        path: &SpecPath,
        version: Option<i64>,
    ) -> Vec<Result<Arc<Flag>, SpecError>> {
        let shared = match Flag::shared_parts(key, spec, path) {
            Ok(f) => Flag { version, ..f },
            Err(e) => return environments.iter().map(|_| Err(e.clone())).collect(),
        };
        let mut absent: Option<Arc<Flag>> = None;
        let mut out = Vec::with_capacity(environments.len());
        for env in environments {
            let named = spec.environments.contains_key(env);
            let flag = match &absent {
                Some(off) if !named => Ok(off.clone()),
                _ => shared.in_environment(spec, env, segments, path).map(Arc::new),
            };
            if let (false, Ok(f)) = (named, &flag) {
                absent = Some(f.clone());
            }
            out.push(flag);
        }
        out
    }

    /// Compiles and checks what every environment of the flag shares; its rules and whether
    /// it is on are left empty (see [`Flag::in_environment`]).
    fn shared_parts(key: &str, spec: &FlagSpec, path: &SpecPath) -> Result<Flag, SpecError> {
        let vpath = path.field("variants");
        if spec.variants.is_empty() {
            return Err(vpath.error("a flag needs at least one variant"));
        }
        if spec.variants.len() > MAX_VARIANTS {
            return Err(vpath.error(format!("at most {MAX_VARIANTS} variants are allowed")));
        }
        let mut value_type = None;
        let mut variants = Vec::with_capacity(spec.variants.len());
        for (name, value) in &spec.variants {
            if name.is_empty() {
                return Err(vpath.error("variant names must not be empty"));
            }
            let Some(t) = ValueType::of(value) else {
                return Err(vpath
                    .field(name)
                    .error("a variant must be a boolean, string, number or JSON object"));
            };
            match value_type {
                None => value_type = Some(t),
                Some(prev) if prev != t => {
                    return Err(vpath.field(name).error(format!(
                        "variant is a {} but earlier variants are {}s; all variants of a flag share one type",
                        t.as_str(),
                        prev.as_str()
                    )));
                }
                Some(_) => {}
            }
            variants.push(Variant { name: name.clone(), value: value.clone() });
        }
        let default = variant_index(spec, &spec.default, path.field("default"))?;
        let disabled = match &spec.disabled_variant {
            Some(v) => variant_index(spec, v, path.field("disabled_variant"))?,
            None => default,
        };
        let prerequisites = spec
            .prerequisites
            .iter()
            .enumerate()
            .map(|(i, p)| compile_prerequisite(key, p, &path.field("prerequisites").index(i)))
            .collect::<Result<Arc<[_]>, _>>()?;
        let off = match &spec.disabled_variant {
            Some(_) => disabled,
            None => variants
                .iter()
                .position(|v| v.value == serde_json::Value::Bool(false))
                .unwrap_or(default),
        };
        let key: Arc<str> = Arc::from(key);
        Ok(Flag {
            off,
            version: None,
            salt: spec.salt.as_deref().map_or_else(|| key.clone(), Arc::from),
            key,
            variants: variants.into(),
            value_type: value_type.unwrap_or(ValueType::Bool),
            default,
            disabled,
            enabled: false,
            rules: Vec::new(),
            prerequisites,
        })
    }

    /// This flag's shared parts ([`Flag::shared_parts`]) with `environment`'s rules and state.
    fn in_environment(
        &self,
        spec: &FlagSpec,
        environment: &str,
        segments: &Segments,
        path: &SpecPath,
    ) -> Result<Flag, SpecError> {
        let env_spec = spec.environments.get(environment);
        let epath = path.field("environments").field(environment);
        let mut rules = Vec::new();
        if let Some(env_spec) = env_spec {
            if env_spec.rules.len() > MAX_RULES {
                return Err(epath
                    .field("rules")
                    .error(format!("at most {MAX_RULES} rules are allowed")));
            }
            let index_of = |name: &str, p: SpecPath| variant_index(spec, name, p);
            for (i, r) in env_spec.rules.iter().enumerate() {
                rules.push(compile_rule(
                    r,
                    i,
                    &epath.field("rules").index(i),
                    segments,
                    &index_of,
                )?);
            }
        }
        Ok(Flag { enabled: env_spec.is_some_and(|e| e.enabled), rules, ..self.clone() })
    }

    /// The flag's key.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// This flag, labelled as compiled from stored version `version`.
    pub fn with_version(self, version: i64) -> Flag {
        Flag { version: Some(version), ..self }
    }

    /// The stored version it was compiled from, if known: it changes whenever the flag does,
    /// so at every wave of a rollout (the rollout rule is part of the flag).
    pub fn version(&self) -> Option<i64> {
        self.version
    }

    /// The type its variants share.
    pub fn value_type(&self) -> ValueType {
        self.value_type
    }

    /// Whether the flag is enabled in this environment.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Whether the flag's answer can change with `currentTime` alone (a date rule), so a
    /// cached answer must not outlive the moment it was computed.
    pub fn reads_current_time(&self) -> bool {
        self.rules.iter().any(|r| {
            r.constraints.iter().any(Constraint::reads_current_time)
                || r.segment.as_ref().is_some_and(|s| s.reads_current_time())
        })
    }

    /// When the flag's answer can change with the clock alone (its rules' and segments' date
    /// tests): the bulk ETag stays valid between those moments.
    pub fn time_dependence(&self) -> TimeDependence {
        self.rules.iter().fold(TimeDependence::Never, |d, r| {
            let d = r.constraints.iter().fold(d, |d, c| d.merge(c.time_dependence()));
            match &r.segment {
                Some(s) => d.merge(s.time_dependence()),
                None => d,
            }
        })
    }

    /// The variants, in order.
    pub fn variants(&self) -> &[Variant] {
        &self.variants
    }

    /// Keys of the flags this flag depends on.
    pub fn prerequisite_keys(&self) -> impl Iterator<Item = &str> {
        self.prerequisites.iter().map(|p| p.flag.as_str())
    }

    /// The first context attribute that a rule before the one named `rule` reads and `ctx`
    /// lacks (`currentTime` aside, which the server supplies), if any: with it missing, the
    /// answer `ctx` gets may not be the one the reporting application was served. A flag with
    /// prerequisites names its first parent (their rules are not looked into) unless `ctx` is
    /// complete for them too, which this cannot tell.
    pub fn missing_before<'a>(&'a self, rule: &str, ctx: &Context) -> Option<&'a str> {
        if let Some(p) = self.prerequisites.first() {
            return Some(&p.label);
        }
        let lacks = |name: &str| name != CURRENT_TIME && ctx.attribute(name).is_none();
        for r in self.rules.iter().take_while(|r| r.name != rule) {
            let segment = r.segment.iter().flat_map(|s| s.constraints.iter());
            if let Some(c) = r.constraints.iter().chain(segment).find(|c| lacks(c.attribute())) {
                return Some(c.attribute());
            }
            let split = match &r.serve {
                Serve::Split { stickiness, .. } => Some(stickiness),
                Serve::Variant(_) => None,
            };
            for s in r.gate.as_ref().map(|g| &g.stickiness).into_iter().chain(split) {
                if let Stickiness::Attribute(a) = s
                    && lacks(a)
                {
                    return Some(a);
                }
            }
        }
        None
    }
}

/// The position of variant `name` in `spec`, or an error at `path` naming the variants.
fn variant_index(spec: &FlagSpec, name: &str, path: SpecPath) -> Result<usize, SpecError> {
    spec.variants.get_index_of(name).ok_or_else(|| {
        path.error(format!(
            "unknown variant {name:?}; variants are {}",
            spec.variants.keys().map(|k| format!("{k:?}")).collect::<Vec<_>>().join(", ")
        ))
    })
}

/// Most prerequisites per flag.
pub const MAX_PREREQUISITES: usize = 32;

fn compile_prerequisite(
    key: &str,
    p: &PrerequisiteSpec,
    path: &SpecPath,
) -> Result<Prerequisite, SpecError> {
    validate_flag_key(&p.flag).map_err(|m| path.field("flag").error(m))?;
    if p.flag == key {
        return Err(path.field("flag").error("a flag cannot be its own prerequisite"));
    }
    if !p.enabled && !p.variants.is_empty() {
        return Err(path
            .field("variants")
            .error("variants apply only to a parent that must be on (enabled: true)"));
    }
    if let Some(i) = p.variants.iter().position(String::is_empty) {
        return Err(path.field("variants").index(i).error("variant names must not be empty"));
    }
    Ok(Prerequisite {
        flag: p.flag.clone(),
        enabled: p.enabled,
        variants: p.variants.clone(),
        label: format!("prerequisite:{}", p.flag),
    })
}

/// What the prerequisite check ([`validate_prerequisites`]) reads of a flag: its spec, or its
/// compiled form in any environment (both carry the same variants and prerequisites).
pub trait PrerequisiteFacts {
    /// The flags it depends on, in order, each with the variants it must serve (none: any,
    /// while on).
    fn parents(&self) -> Vec<(&str, &[String])>;
    /// Its variants' names, in order.
    fn variant_names(&self) -> Vec<&str>;
    /// Whether every variant is a boolean.
    fn all_boolean(&self) -> bool;
}

impl PrerequisiteFacts for FlagSpec {
    fn parents(&self) -> Vec<(&str, &[String])> {
        self.prerequisites.iter().map(|p| (p.flag.as_str(), p.variants.as_slice())).collect()
    }

    fn variant_names(&self) -> Vec<&str> {
        self.variants.keys().map(String::as_str).collect()
    }

    fn all_boolean(&self) -> bool {
        self.variants.values().all(serde_json::Value::is_boolean)
    }
}

impl PrerequisiteFacts for Flag {
    fn parents(&self) -> Vec<(&str, &[String])> {
        self.prerequisites.iter().map(|p| (p.flag.as_str(), p.variants.as_slice())).collect()
    }

    fn variant_names(&self) -> Vec<&str> {
        self.variants.iter().map(|v| v.name.as_str()).collect()
    }

    fn all_boolean(&self) -> bool {
        self.variants.iter().all(|v| v.value.is_boolean())
    }
}

/// Checks the prerequisites of a whole set of flags against each other: every parent exists,
/// has no prerequisites of its own (one level, as in Unleash, so there are no cycles), and
/// a parent that must serve given variants is not boolean and has them. `flags` yields every
/// flag of the set (the one being written included, in its new form).
pub fn validate_prerequisites<'a, F: PrerequisiteFacts + ?Sized + 'a>(
    flags: impl IntoIterator<Item = (&'a str, &'a F)> + Clone,
    root: &SpecPath,
) -> Result<(), SpecError> {
    let find = |k: &str| flags.clone().into_iter().find(|(key, _)| *key == k).map(|(_, s)| s);
    validate_prerequisites_of(flags.clone(), find, root)
}

/// [`validate_prerequisites`] for some flags of a set only: checks each of `flags` (as it will
/// be) against the parents `find` returns by key (as they will be; `None`: no such flag). A
/// change need check only the flags it writes and the flags that depend on them.
pub fn validate_prerequisites_of<'a, F: PrerequisiteFacts + ?Sized + 'a>(
    flags: impl IntoIterator<Item = (&'a str, &'a F)>,
    find: impl Fn(&str) -> Option<&'a F>,
    root: &SpecPath,
) -> Result<(), SpecError> {
    for (key, spec) in flags {
        let parents = spec.parents();
        if parents.len() > MAX_PREREQUISITES {
            return Err(root
                .field(key)
                .field("prerequisites")
                .error(format!("at most {MAX_PREREQUISITES} prerequisites are allowed")));
        }
        for (i, (flag, variants)) in parents.into_iter().enumerate() {
            let path = root.field(key).field("prerequisites").index(i);
            let Some(parent) = find(flag) else {
                return Err(path.field("flag").error(format!("unknown flag {flag:?}")));
            };
            if !parent.parents().is_empty() {
                return Err(path.field("flag").error(format!(
                    "flag {flag:?} has prerequisites of its own; prerequisites are one level deep"
                )));
            }
            if variants.is_empty() {
                continue;
            }
            let names = parent.variant_names();
            // A boolean parent's variants are worth naming only when several serve the same
            // value (an import of Unleash's variants names them).
            if parent.all_boolean() && names.len() <= 2 {
                return Err(path.field("variants").error(format!(
                    "flag {flag:?} is boolean: depend on it being on or off, not on its variants"
                )));
            }
            for (j, v) in variants.iter().enumerate() {
                if !names.contains(&v.as_str()) {
                    return Err(path
                        .field("variants")
                        .index(j)
                        .error(format!("flag {flag:?} has no variant {v:?}")));
                }
            }
        }
    }
    Ok(())
}

fn compile_rule(
    r: &RuleSpec,
    i: usize,
    path: &SpecPath,
    segments: &Segments,
    index_of: &dyn Fn(&str, SpecPath) -> Result<usize, SpecError>,
) -> Result<Rule, SpecError> {
    let segment = match &r.segment {
        None => None,
        Some(name) => Some(
            segments
                .get(name)
                .cloned()
                .ok_or_else(|| path.field("segment").error(format!("unknown segment {name:?}")))?,
        ),
    };
    let constraints = r
        .constraints
        .iter()
        .enumerate()
        .map(|(j, c)| Constraint::compile(c, &path.field("constraints").index(j)))
        .collect::<Result<Vec<_>, _>>()?;
    if r.stickiness.as_deref() == Some("") {
        return Err(path.field("stickiness").error("stickiness must not be empty"));
    }
    if r.salt.as_deref() == Some("") {
        return Err(path.field("salt").error("salt must not be empty"));
    }
    let mut gate = None;
    let serve = match (&r.serve, &r.split) {
        (Some(v), None) => {
            match r.percentage {
                Some(p) => {
                    gate = Some(Gate {
                        bp: p.basis_points(),
                        stickiness: Stickiness::parse(r.stickiness.as_deref()),
                    })
                }
                None if r.stickiness.is_some() || r.salt.is_some() => {
                    return Err(path
                        .field(if r.stickiness.is_some() { "stickiness" } else { "salt" })
                        .error("stickiness and salt apply only to a split or a percentage"));
                }
                None => {}
            }
            Serve::Variant(index_of(v, path.field("serve"))?)
        }
        (None, Some(split)) => {
            let spath = path.field("split");
            if split.is_empty() {
                return Err(spath.error("a split needs at least one variant"));
            }
            let mut cuts = Vec::with_capacity(split.len());
            let mut total: u32 = 0;
            for (name, pct) in split {
                let idx = index_of(name, spath.field(name))?;
                total += u32::from(pct.basis_points());
                if total > 10_000 {
                    break;
                }
                cuts.push((total as u16, idx));
            }
            if total != 10_000 {
                let shown = if total > 10_000 {
                    "more than 100%".to_owned()
                } else {
                    Percent::from_basis_points(total as u16).unwrap_or_default().to_string()
                };
                return Err(spath.error(format!("split shares must sum to 100%, got {shown}")));
            }
            if r.percentage.is_some() {
                return Err(path
                    .field("percentage")
                    .error("percentage applies to `serve`; a split already sets its shares"));
            }
            Serve::Split { cuts, stickiness: Stickiness::parse(r.stickiness.as_deref()) }
        }
        (Some(_), Some(_)) => {
            return Err(path.error("a rule has either `serve` or `split`, not both"));
        }
        (None, None) => {
            return Err(
                path.error("a rule needs `serve: VARIANT` or `split: {VARIANT: PERCENT, …}`")
            );
        }
    };
    Ok(Rule {
        name: r.name.clone().unwrap_or_else(|| format!("rule-{}", i + 1)),
        segment,
        constraints,
        gate,
        salt: r.salt.clone(),
        serve,
    })
}
