//! People gates (pure): the thresholds a wave's adoption and feedback must meet before it is
//! promoted, the facts they are judged on, the stakeholders of each cohort (sponsor, champion,
//! training owner) and the notices a lagging cohort sends them.
//!
//! A wave's `gates:` hold *leaving* that wave, as its `promotion` does: a failing gate holds
//! the rollout in phase `gated` with the reason, and never rolls anything back by itself.
//!
//! **Threshold grammar** (also in the plan's JSON Schema):
//!
//! ```text
//! threshold := op number ["%"] [("×" | "x" | "*") "previous wave"]
//! op        := ">=" | "<=" | ">" | "<" | "≥" | "≤"
//! ```
//!
//! `>= 70%` and `>= 0.7` are the same bound; `>= 0.9 × previous wave` compares the wave's
//! rate with the previous wave's (only adoption's `key_task_rate` may, and not on the first wave).

use std::collections::BTreeSet;
use std::fmt;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::adoption::Lagging;
use crate::machine::{Action, Rollout};

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>=`
    AtLeast,
    /// `>`
    Above,
    /// `<=`
    AtMost,
    /// `<`
    Below,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::AtLeast => ">=",
            Op::Above => ">",
            Op::AtMost => "<=",
            Op::Below => "<",
        }
    }

    /// Whether `x op bound` holds.
    pub fn holds(self, x: f64, bound: f64) -> bool {
        match self {
            Op::AtLeast => x >= bound,
            Op::Above => x > bound,
            Op::AtMost => x <= bound,
            Op::Below => x < bound,
        }
    }

    /// Whether larger values are better (`>=`, `>`).
    pub fn wants_more(self) -> bool {
        matches!(self, Op::AtLeast | Op::Above)
    }
}

/// A threshold such as `>= 70%` or `>= 0.9 × previous wave`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    /// The comparison.
    pub op: Op,
    /// The bound (a share as a fraction: `70%` is 0.7), or the factor of the previous wave's.
    pub value: f64,
    /// Relative to the previous wave's value.
    pub relative: bool,
}

impl Threshold {
    /// Parses the grammar of the module's documentation; the message says what is wrong.
    pub fn parse(text: &str) -> Result<Threshold, String> {
        let t = text.trim();
        let bad = |why: &str| {
            format!(
                "{why} in threshold {t:?}: write an operator (>=, <=, >, <) and a number, e.g. \">= 70%\", \"<= 0.3\" or \">= 0.9 × previous wave\""
            )
        };
        let (op, rest) = [
            (">=", Op::AtLeast),
            ("≥", Op::AtLeast),
            ("<=", Op::AtMost),
            ("≤", Op::AtMost),
            (">", Op::Above),
            ("<", Op::Below),
        ]
        .iter()
        .find_map(|(s, op)| t.strip_prefix(s).map(|rest| (*op, rest.trim_start())))
        .ok_or_else(|| bad("no operator"))?;
        let end = rest
            .char_indices()
            .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
            .map_or(rest.len(), |(i, _)| i);
        let (num, mut rest) = (&rest[..end], rest[end..].trim_start());
        let mut value: f64 = num.parse().map_err(|_| bad("no number"))?;
        if let Some(r) = rest.strip_prefix('%') {
            value /= 100.0;
            rest = r.trim_start();
        }
        let relative = if rest.is_empty() {
            false
        } else {
            let r = ["×", "x", "*"]
                .iter()
                .find_map(|m| rest.strip_prefix(m))
                .ok_or_else(|| bad("unexpected text after the number"))?;
            let words: Vec<&str> = r.split_whitespace().collect();
            if words != ["previous", "wave"] {
                return Err(bad("after × only \"previous wave\" may follow"));
            }
            true
        };
        if !value.is_finite() || value < 0.0 || (!relative && value > 1.0) {
            return Err(bad("a share is from 0 to 1 (or 0% to 100%)"));
        }
        Ok(Threshold { op, value, relative })
    }

    /// The bound to compare with, given the previous wave's value (None: not known yet).
    pub fn bound(&self, previous: Option<f64>) -> Option<f64> {
        if self.relative { previous.map(|p| p * self.value) } else { Some(self.value) }
    }
}

impl fmt::Display for Threshold {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.relative {
            write!(f, "{} {} × previous wave", self.op.as_str(), self.value)
        } else {
            write!(f, "{} {}%", self.op.as_str(), round(self.value * 100.0))
        }
    }
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

impl Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Threshold, D::Error> {
        let text = String::deserialize(d)?;
        Threshold::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A wave's `gates:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatesSpec {
    /// Adoption of the users first served the new variant in this wave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<AdoptionGate>,
    /// Feedback about the release.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<FeedbackGate>,
}

/// The adoption gate: the key-task rate of the users this wave first served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptionGate {
    /// E.g. `>= 60%` or `>= 0.9 × previous wave`.
    pub key_task_rate: Threshold,
    /// Users the wave must have served before the gate can pass (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_users: Option<u64>,
}

/// The feedback gate: the release's feedback since the rollout started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackGate {
    /// E.g. `<= 30%`: the share of negative items.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub negative_share: Option<Threshold>,
    /// Most open blockers allowed (usually 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open_blockers: Option<u64>,
}

impl AdoptionGate {
    /// Users needed before a verdict (default 20).
    pub fn min_users(&self) -> u64 {
        self.min_users.unwrap_or(20)
    }
}

/// Checks wave `wave`'s gates (0-based); the message names the field.
pub fn validate_gates(g: &GatesSpec, wave: usize, tracks_adoption: bool) -> Result<(), String> {
    let at = format!("waves[{wave}].gates");
    if g.adoption.is_none() && g.feedback.is_none() {
        return Err(format!("{at} is empty: declare adoption or feedback (or leave gates out)"));
    }
    if let Some(a) = &g.adoption {
        if !tracks_adoption {
            return Err(format!(
                "{at}.adoption needs the plan's `adoption:` section (cohorts and key_task) to count users"
            ));
        }
        if a.key_task_rate.relative && wave == 0 {
            return Err(format!(
                "{at}.adoption.key_task_rate compares with the previous wave, but wave 1 has none"
            ));
        }
        if a.min_users == Some(0) {
            return Err(format!("{at}.adoption.min_users must be at least 1"));
        }
    }
    if let Some(f) = &g.feedback {
        if f.negative_share.is_none() && f.open_blockers.is_none() {
            return Err(format!("{at}.feedback: declare negative_share or open_blockers"));
        }
        if f.negative_share.is_some_and(|t| t.relative) {
            return Err(format!(
                "{at}.feedback.negative_share is a share (e.g. \"<= 30%\"), not relative to a wave"
            ));
        }
    }
    Ok(())
}

/// Adoption of the users first served the new variant in one wave.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct WaveAdoption {
    /// Users first served in the wave.
    pub exposed: u64,
    /// Of those, users who did the key task.
    pub adopted: u64,
}

impl WaveAdoption {
    /// `adopted / exposed`, when anyone was served.
    pub fn rate(&self) -> Option<f64> {
        (self.exposed > 0).then(|| self.adopted.min(self.exposed) as f64 / self.exposed as f64)
    }
}

/// The release's feedback since the rollout started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct FeedbackFacts {
    /// Items.
    pub items: u64,
    /// Negative items.
    pub negative: u64,
    /// Items marked as blockers that are still open.
    pub open_blockers: u64,
}

/// A lagging cohort as the controller sees it (the adoption report's rule, 30-day window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LaggingCohort {
    /// The cohort attribute.
    pub attribute: String,
    /// Its value.
    pub value: String,
    /// Users served.
    pub exposed: u64,
    /// Users who did the key task.
    pub adopted: u64,
    /// The overall rate.
    pub overall: f64,
}

impl From<&Lagging> for LaggingCohort {
    fn from(l: &Lagging) -> LaggingCohort {
        LaggingCohort {
            attribute: l.attribute.clone(),
            value: l.value.clone(),
            exposed: l.rate.exposed,
            adopted: l.rate.adopted,
            overall: l.overall,
        }
    }
}

impl LaggingCohort {
    /// `function=support`: how the rollout remembers that it was told.
    pub fn key(&self) -> String {
        format!("{}={}", self.attribute, self.value)
    }
    fn rate(&self) -> f64 {
        self.adopted.min(self.exposed) as f64 / self.exposed.max(1) as f64
    }
}

/// What the controller knows of people at a tick (gathered by the server, simulated by drills).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PeopleSignals {
    /// Adoption per wave (index: the wave, 0-based) by when users were first served.
    #[serde(default)]
    pub waves: Vec<WaveAdoption>,
    /// The release's feedback.
    #[serde(default)]
    pub feedback: FeedbackFacts,
    /// Cohorts lagging now.
    #[serde(default)]
    pub lagging: Vec<LaggingCohort>,
    /// Wave 1's cohort mix against the flag's users, while the pilot is still to be judged.
    #[serde(default)]
    pub pilot: Option<PilotMix>,
}

/// A gate's verdict with its numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GateReport {
    /// `adoption` or `feedback`.
    pub gate: &'static str,
    /// Whether it passes.
    pub pass: bool,
    /// What was measured and against what.
    pub explanation: String,
    /// The numbers.
    pub evidence: Value,
}

/// Judges wave `wave`'s gates (0-based) on `facts`; None facts (unknown) hold every gate.
pub fn assess(gates: &GatesSpec, wave: usize, facts: Option<&PeopleSignals>) -> Vec<GateReport> {
    let mut out = Vec::new();
    if let Some(a) = &gates.adoption {
        out.push(match facts {
            None => unknown("adoption"),
            Some(f) => adoption_gate(a, wave, f),
        });
    }
    if let Some(fb) = &gates.feedback {
        out.push(match facts {
            None => unknown("feedback"),
            Some(f) => feedback_gate(fb, &f.feedback),
        });
    }
    out
}

fn unknown(gate: &'static str) -> GateReport {
    GateReport {
        gate,
        pass: false,
        explanation: format!("{gate} facts are unavailable; held until they can be read"),
        evidence: Value::Null,
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

fn adoption_gate(a: &AdoptionGate, wave: usize, f: &PeopleSignals) -> GateReport {
    let here = f.waves.get(wave).copied().unwrap_or_default();
    let previous = wave.checked_sub(1).and_then(|p| f.waves.get(p)).and_then(WaveAdoption::rate);
    let evidence = json!({"wave": wave + 1, "users": here.exposed, "adopted": here.adopted,
        "rate": here.rate(), "previous_wave_rate": previous, "threshold": a.key_task_rate,
        "min_users": a.min_users()});
    let report = |pass, explanation| GateReport {
        gate: "adoption",
        pass,
        explanation,
        evidence: evidence.clone(),
    };
    if here.exposed < a.min_users() {
        return report(
            false,
            format!(
                "adoption: wave {} has served {} of the {} users its gate needs",
                wave + 1,
                here.exposed,
                a.min_users()
            ),
        );
    }
    let rate = here.rate().unwrap_or(0.0);
    let Some(bound) = a.key_task_rate.bound(previous) else {
        return report(false, format!("adoption: wave {wave} has no users to compare with yet"));
    };
    let pass = a.key_task_rate.op.holds(rate, bound);
    let of = if a.key_task_rate.relative {
        format!(
            "{} × wave {}'s {} = {}",
            a.key_task_rate.value,
            wave,
            pct(previous.unwrap_or(0.0)),
            pct(bound)
        )
    } else {
        pct(bound)
    };
    report(
        pass,
        format!(
            "adoption: key-task rate of wave {}'s {} users is {} ({} did it), needs {} {of}",
            wave + 1,
            here.exposed,
            pct(rate),
            here.adopted,
            a.key_task_rate.op.as_str()
        ),
    )
}

fn feedback_gate(g: &FeedbackGate, f: &FeedbackFacts) -> GateReport {
    let share = if f.items == 0 { 0.0 } else { f.negative as f64 / f.items as f64 };
    let mut failed = Vec::new();
    let mut said = Vec::new();
    if let Some(t) = g.negative_share {
        let ok = t.op.holds(share, t.value);
        said.push(format!(
            "{} of {} items negative ({}), needs {t}",
            f.negative,
            f.items,
            pct(share)
        ));
        if !ok {
            failed.push("negative_share");
        }
    }
    if let Some(max) = g.open_blockers {
        said.push(format!("{} open blocker(s), at most {max} allowed", f.open_blockers));
        if f.open_blockers > max {
            failed.push("open_blockers");
        }
    }
    GateReport {
        gate: "feedback",
        pass: failed.is_empty(),
        explanation: format!("feedback: {}", said.join("; ")),
        evidence: json!({"items": f.items, "negative": f.negative, "negative_share": share,
            "open_blockers": f.open_blockers, "failed": failed}),
    }
}

/// Who answers for one cohort value.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stakeholder {
    /// Who sponsors the change for this cohort.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sponsor: Option<String>,
    /// Who champions it among the cohort's users (told when the cohort lags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub champion: Option<String>,
    /// Who trains the cohort (told when the cohort lags).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub training_owner: Option<String>,
}

/// A plan's `stakeholders:`: cohort attribute → value → its people. `*` as a value stands for
/// every value the attribute has no entry for.
pub type Stakeholders = IndexMap<String, IndexMap<String, Stakeholder>>;

/// The people of cohort `attribute = value`, if any are named.
pub fn stakeholder<'a>(
    s: &'a Stakeholders,
    attribute: &str,
    value: &str,
) -> Option<&'a Stakeholder> {
    let values = s.get(attribute)?;
    values.get(value).or_else(|| values.get("*"))
}

/// Checks `stakeholders:` against the plan's adoption cohorts; the message names the field.
pub fn validate_stakeholders(s: &Stakeholders, cohorts: &[String]) -> Result<(), String> {
    for (attribute, values) in s {
        if !cohorts.contains(attribute) {
            return Err(format!(
                "stakeholders.{attribute}: not one of the adoption cohorts ({}); stakeholders are named per cohort attribute",
                cohorts.join(", ")
            ));
        }
        for (value, who) in values {
            if who.champion.is_none() && who.training_owner.is_none() && who.sponsor.is_none() {
                return Err(format!(
                    "stakeholders.{attribute}.{value}: name a sponsor, champion or training_owner"
                ));
            }
        }
    }
    Ok(())
}

/// The runbook entry sent with a lagging cohort's notice: `enablement:<attribute>=<value>`,
/// else `enablement`.
pub fn enablement<'a>(r: &'a Rollout, c: &LaggingCohort) -> Option<&'a String> {
    let runbook = &r.plan.runbook;
    runbook.get(&format!("enablement:{}", c.key())).or_else(|| runbook.get("enablement"))
}

/// Audits each cohort that started lagging since the rollout last looked (`rollout.cohort_lagging`,
/// addressed to its champion and training owner, with the numbers and the enablement steps),
/// and forgets cohorts that recovered (so a relapse is told again). Returns the cohorts it
/// remembers as told.
pub fn lagging_notices(
    r: &Rollout,
    lagging: &[LaggingCohort],
    actions: &mut Vec<Action>,
) -> BTreeSet<String> {
    let now: BTreeSet<String> = lagging.iter().map(LaggingCohort::key).collect();
    for c in lagging.iter().filter(|c| !r.lagging_told.contains(&c.key())) {
        let who = r
            .plan
            .stakeholders
            .as_ref()
            .and_then(|s| stakeholder(s, &c.attribute, &c.value))
            .cloned()
            .unwrap_or_default();
        let notify: Vec<&String> = who.champion.iter().chain(who.training_owner.iter()).collect();
        actions.push(Action::Audit {
            action: "rollout.cohort_lagging".into(),
            details: json!({
                "rollout": r.id, "wave": r.wave + 1,
                "cohort": {"attribute": c.attribute, "value": c.value},
                "users": c.exposed, "adopted": c.adopted, "rate": c.rate(),
                "overall": c.overall,
                "message": format!("{} = {}: {} of {} users did the key task ({}), against {} overall",
                    c.attribute, c.value, c.adopted, c.exposed, pct(c.rate()), pct(c.overall)),
                "sponsor": who.sponsor, "champion": who.champion,
                "training_owner": who.training_owner, "notify": notify,
                "enablement": enablement(r, c),
            }),
        });
    }
    now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_parse_as_the_grammar_says() {
        let t = Threshold::parse(">= 70%").unwrap();
        assert_eq!((t.op, t.value, t.relative), (Op::AtLeast, 0.7, false));
        assert_eq!(Threshold::parse("<=0.3").unwrap().value, 0.3);
        let r = Threshold::parse(">= 0.9 × previous wave").unwrap();
        assert!(r.relative && r.value == 0.9);
        assert!(Threshold::parse("> 0.9 x previous  wave").unwrap().relative);
        assert_eq!(Threshold::parse("≤ 30%").unwrap().op, Op::AtMost);
        for bad in ["70%", ">= ", ">= lots", ">= 70% of users", ">= 1.5", ">= 0.9 × next wave", ""]
        {
            assert!(Threshold::parse(bad).is_err(), "{bad:?} parsed");
        }
        // Round trip through its text.
        for text in [">= 70%", "<= 30%", ">= 0.9 × previous wave"] {
            let t = Threshold::parse(text).unwrap();
            assert_eq!(Threshold::parse(&t.to_string()).unwrap(), t);
        }
    }

    fn facts(waves: &[(u64, u64)], fb: (u64, u64, u64)) -> PeopleSignals {
        PeopleSignals {
            waves: waves
                .iter()
                .map(|&(exposed, adopted)| WaveAdoption { exposed, adopted })
                .collect(),
            feedback: FeedbackFacts { items: fb.0, negative: fb.1, open_blockers: fb.2 },
            lagging: Vec::new(),
            pilot: None,
        }
    }

    #[test]
    fn an_adoption_gate_compares_with_the_previous_wave_once_it_has_its_users() {
        let gates: GatesSpec = serde_json::from_value(json!({"adoption":
            {"key_task_rate": ">= 0.9 × previous wave", "min_users": 100}}))
        .unwrap();
        let few = assess(&gates, 1, Some(&facts(&[(200, 120), (50, 10)], (0, 0, 0))));
        assert!(!few[0].pass && few[0].explanation.contains("50 of the 100"), "{few:?}");
        let low = assess(&gates, 1, Some(&facts(&[(200, 120), (200, 60)], (0, 0, 0))));
        assert!(!low[0].pass && low[0].explanation.contains("30.0%"), "{low:?}");
        let ok = assess(&gates, 1, Some(&facts(&[(200, 120), (200, 110)], (0, 0, 0))));
        assert!(ok[0].pass, "{ok:?}");
        assert!(!assess(&gates, 1, None)[0].pass, "unknown holds");
    }

    #[test]
    fn a_feedback_gate_counts_negative_items_and_open_blockers() {
        let gates: GatesSpec = serde_json::from_value(json!({"feedback":
            {"negative_share": "<= 30%", "open_blockers": 0}}))
        .unwrap();
        assert!(assess(&gates, 0, Some(&facts(&[], (10, 3, 0))))[0].pass);
        let neg = &assess(&gates, 0, Some(&facts(&[], (10, 4, 0))))[0];
        assert!(!neg.pass && neg.evidence["failed"] == json!(["negative_share"]), "{neg:?}");
        let blocked = &assess(&gates, 0, Some(&facts(&[], (10, 0, 1))))[0];
        assert!(!blocked.pass && blocked.explanation.contains("1 open blocker"), "{blocked:?}");
    }

    proptest::proptest! {
        /// Any text a plan may hold as a threshold parses or is refused with a message; what
        /// parses prints back to the same threshold.
        #[test]
        fn any_threshold_text_parses_or_is_refused_without_panicking(text in "\\PC{0,40}") {
            if let Ok(t) = Threshold::parse(&text) {
                proptest::prop_assert_eq!(Threshold::parse(&t.to_string()).map(|b| b.op), Ok(t.op));
            }
        }

        /// Gates judge any facts without panicking, and a gate with too few users never passes.
        #[test]
        fn gates_judge_any_facts(exposed in 0u64..1000, adopted in 0u64..2000, prev in 0u64..1000,
                                 items in 0u64..50, negative in 0u64..60, blockers in 0u64..3) {
            let gates: GatesSpec = serde_json::from_value(json!({
                "adoption": {"key_task_rate": ">= 0.9 × previous wave", "min_users": 10},
                "feedback": {"negative_share": "<= 30%", "open_blockers": 0}})).unwrap();
            let f = facts(&[(prev, prev / 2), (exposed, adopted)], (items, negative, blockers));
            let reports = assess(&gates, 1, Some(&f));
            if exposed < 10 {
                proptest::prop_assert!(!reports[0].pass);
            }
            if blockers > 0 {
                proptest::prop_assert!(!reports[1].pass);
            }
        }
    }

    #[test]
    fn gates_are_validated_with_their_field() {
        let rel: GatesSpec = serde_json::from_value(
            json!({"adoption": {"key_task_rate": ">= 0.9 × previous wave"}}),
        )
        .unwrap();
        assert!(validate_gates(&rel, 0, true).unwrap_err().contains("waves[0].gates.adoption"));
        assert!(validate_gates(&rel, 1, false).unwrap_err().contains("adoption:"));
        validate_gates(&rel, 1, true).unwrap();
        assert!(validate_gates(&GatesSpec::default(), 2, true).unwrap_err().contains("waves[2]"));
    }
}

/// The aggregates' arm under which wave 1's exposures are counted by cohort (metric
/// `cohort:<attribute>=<value>`), for the representativeness check: everyone evaluating the
/// flag, whichever variant or rule served them.
pub const POPULATION_ARM: &str = "population";

/// The aggregate metric of one cohort value's exposures.
pub fn cohort_metric(attribute: &str, value: &str) -> String {
    format!("cohort:{attribute}={value}")
}

/// The largest total-variation distance between the first wave's cohort mix and the
/// population's (per cohort attribute) at which the pilot still counts as representative.
pub const MAX_PILOT_DISTANCE: f64 = 0.2;

/// Fewest first-wave users before representativeness is judged.
pub const MIN_PILOT_USERS: u64 = 30;

/// Who the first wave served and who the flag sees, by cohort: `attribute=value` → count
/// (users first served the new variant in wave 1; exposures of everyone evaluating the flag).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PilotMix {
    /// Wave 1's new-variant users per `attribute=value`.
    pub pilot: std::collections::BTreeMap<String, u64>,
    /// Everyone's exposures per `attribute=value`.
    pub population: std::collections::BTreeMap<String, u64>,
}

/// How one cohort attribute's pilot mix compares with the population's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MixDistance {
    /// The attribute.
    pub attribute: String,
    /// Total-variation distance (0: the same mix, 1: disjoint).
    pub distance: f64,
    /// The value the pilot over-represents most, with its pilot and population shares.
    pub most_over: Option<(String, f64, f64)>,
}

/// The distance per attribute between the pilot's mix and the population's; None until the
/// pilot has [`MIN_PILOT_USERS`] and the population has been seen.
pub fn pilot_distances(mix: &PilotMix) -> Option<Vec<MixDistance>> {
    let split = |m: &std::collections::BTreeMap<String, u64>| {
        let mut by: std::collections::BTreeMap<String, std::collections::BTreeMap<String, u64>> =
            Default::default();
        for (k, n) in m {
            if let Some((a, v)) = k.split_once('=') {
                *by.entry(a.to_owned()).or_default().entry(v.to_owned()).or_default() += n;
            }
        }
        by
    };
    let (pilot, population) = (split(&mix.pilot), split(&mix.population));
    let mut out = Vec::new();
    for (attribute, p) in &pilot {
        let pn: u64 = p.values().sum();
        let Some(q) = population.get(attribute) else { continue };
        let qn: u64 = q.values().sum();
        if pn < MIN_PILOT_USERS || qn == 0 {
            return None;
        }
        let values: BTreeSet<&String> = p.keys().chain(q.keys()).collect();
        let share = |m: &std::collections::BTreeMap<String, u64>, n: u64, v: &str| {
            m.get(v).copied().unwrap_or(0) as f64 / n as f64
        };
        let mut distance = 0.0;
        let mut most_over: Option<(String, f64, f64)> = None;
        for v in values {
            let (ps, qs) = (share(p, pn, v), share(q, qn, v));
            distance += (ps - qs).abs() / 2.0;
            if ps > qs && most_over.as_ref().is_none_or(|(_, a, b)| ps - qs > a - b) {
                most_over = Some((v.clone(), ps, qs));
            }
        }
        out.push(MixDistance { attribute: attribute.clone(), distance, most_over });
    }
    (!out.is_empty()).then_some(out)
}

/// The `rollout.pilot_checked` audit action for wave 1's mix (a warning in it when a cohort
/// attribute's distance exceeds [`MAX_PILOT_DISTANCE`]), or None while it cannot be judged.
pub fn pilot_check(r: &Rollout, mix: &PilotMix) -> Option<Action> {
    let distances = pilot_distances(mix)?;
    let skewed: Vec<String> = distances
        .iter()
        .filter(|d| d.distance > MAX_PILOT_DISTANCE)
        .map(|d| match &d.most_over {
            Some((v, ps, qs)) => format!(
                "{}: {} is {} of the pilot but {} of the flag's users (distance {:.2} > {MAX_PILOT_DISTANCE})",
                d.attribute,
                v,
                pct(*ps),
                pct(*qs),
                d.distance
            ),
            None => format!("{}: distance {:.2} > {MAX_PILOT_DISTANCE}", d.attribute, d.distance),
        })
        .collect();
    let warning = (!skewed.is_empty()).then(|| {
        format!(
            "the first wave is not representative of the flag's users: {}; later waves may behave differently",
            skewed.join("; ")
        )
    });
    Some(Action::Audit {
        action: "rollout.pilot_checked".into(),
        details: json!({"rollout": r.id, "wave": 1, "representative": warning.is_none(),
            "warning": warning, "distances": distances, "threshold": MAX_PILOT_DISTANCE}),
    })
}

/// The cohorts (`attribute = value`) each wave's segments pick — an `in` or `eq` constraint on
/// one of the plan's adoption cohort attributes — that the plan's stakeholders give no champion,
/// by wave (0-based). Nothing when the plan names no stakeholders (lint warns about that apart).
pub fn unchampioned(
    plan: &crate::plan::PlanSpec,
    segments: &IndexMap<String, wavegate_core::spec::SegmentSpec>,
) -> Vec<(usize, Vec<String>)> {
    use wavegate_core::spec::Operator;
    let (Some(stakeholders), Some(adoption)) = (&plan.stakeholders, &plan.adoption) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for (i, wave) in plan.waves.iter().enumerate() {
        let mut missing = Vec::new();
        for seg in wave.segments.iter().filter_map(|n| segments.get(n)) {
            for c in seg.constraints.iter().filter(|c| {
                !c.negate
                    && matches!(c.op, Operator::In | Operator::Eq)
                    && adoption.cohorts.contains(&c.attribute)
            }) {
                for v in &c.values {
                    let named = stakeholder(stakeholders, &c.attribute, v.as_str())
                        .is_some_and(|s| s.champion.is_some());
                    let cohort = format!("{} = {}", c.attribute, v.as_str());
                    if !named && !missing.contains(&cohort) {
                        missing.push(cohort);
                    }
                }
            }
        }
        if !missing.is_empty() {
            out.push((i, missing));
        }
    }
    out
}

/// Lint's "friendly users only" check: the first wave is restricted to segments that pick
/// insiders — an internal email domain (`ends_with @…`/`in`/`eq` on an `email` or `domain`
/// attribute), a hand-picked list of keys, or a name like `internal`, `employees`, `staff`,
/// `dogfood` — so it says little of how everyone else will take the change. `segments` holds
/// the segments known (name → spec); unknown ones are left out of the judgement.
pub fn friendly_pilot(
    plan: &crate::plan::PlanSpec,
    segments: &IndexMap<String, wavegate_core::spec::SegmentSpec>,
) -> Option<String> {
    use wavegate_core::spec::Operator;
    let first = plan.waves.first()?;
    if first.segments.is_empty() {
        return None;
    }
    let mut why = Vec::new();
    for name in &first.segments {
        let lower = name.to_lowercase();
        let named = ["internal", "employee", "staff", "dogfood", "insider", "team"]
            .iter()
            .any(|w| lower.contains(w));
        let Some(seg) = segments.get(name) else {
            if named {
                why.push(format!("segment {name:?} is named for insiders"));
                continue;
            }
            return None;
        };
        let domain = seg.constraints.iter().find(|c| {
            let a = c.attribute.to_lowercase();
            (a.contains("email") || a.contains("domain"))
                && !c.negate
                && matches!(c.op, Operator::EndsWith | Operator::In | Operator::Eq)
        });
        if let Some(c) = domain {
            let values: Vec<&str> = c.values.iter().map(|v| v.as_str()).collect();
            why.push(format!("segment {name:?} keeps {} to {}", c.attribute, values.join(", ")));
        } else if seg.constraints.is_empty() && !seg.keys.is_empty() {
            why.push(format!("segment {name:?} is a hand-picked list of {} users", seg.keys.len()));
        } else if named {
            why.push(format!("segment {name:?} is named for insiders"));
        } else {
            // One segment reaches beyond insiders: the pilot is not insiders only.
            return None;
        }
    }
    Some(format!(
        "the first wave reaches insiders only ({}): friendly users rarely behave like everyone else; add a wave with a representative share of all users before widening",
        why.join("; ")
    ))
}
