//! Adoption by cohort (pure): of the users served a release's new variant in the last 30, 60
//! and 90 days, the share who did its key task, overall and per cohort attribute (function,
//! location, manager…), with the cohorts that lag flagged.
//!
//! A plan opts in with an `adoption:` section naming the context attributes that define
//! cohorts and the outcome metric that marks the key task. The server keeps one row per user
//! (their latest cohort, the last day they were served the new variant, the last day they did
//! the key task); this module turns the per-cohort counts of those rows into the report.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wavegate_core::text::{escape_html as esc, escape_markdown as md};
use wavegate_core::wire::Event;

use crate::duration::Span;

/// The report's windows, in days back from today (today included).
pub const WINDOWS: [u32; 3] = [30, 60, 90];

/// Most cohort attributes a plan may name.
pub const MAX_COHORTS: usize = 8;

/// How a cohort with no value for an attribute is shown.
pub const NO_VALUE: &str = "(none)";

/// The users a batch of events names for tracked rollouts: per (rollout, user), the user's
/// cohort values (their latest in the batch) and whether they did the key task.
#[derive(Debug, Default)]
pub struct Users<'a>(BTreeMap<(&'a str, &'a str), UserNote<'a>>);

/// A user's cohort values and whether they did the key task.
type UserNote<'a> = (Vec<Cow<'a, str>>, bool);

impl<'a> Users<'a> {
    /// Notes the user of `e` for rollout `rollout` (tracking `spec`, whose new variant is
    /// `new_variant`): an event for the new variant from a context that names a user
    /// (`targetingKey`, else `sessionId`). The cohort is the user's values of the plan's cohort
    /// attributes (strings as they are, numbers and booleans as written, anything else
    /// [`NO_VALUE`]); an outcome carrying the key task's metric above 0 marks the task done.
    pub fn note(&mut self, rollout: &'a str, new_variant: &str, spec: &AdoptionSpec, e: &'a Event) {
        if e.variant != new_variant {
            return;
        }
        let user = ["targetingKey", "sessionId"]
            .iter()
            .find_map(|k| e.context.get(*k).and_then(Value::as_str).filter(|u| !u.is_empty()));
        let Some(user) = user else { return };
        let task = !e.is_exposure() && e.metrics.get(&spec.key_task).is_some_and(|v| *v > 0.0);
        let cohort = || spec.cohorts.iter().map(|a| cohort_value(&e.context, a)).collect();
        self.0
            .entry((rollout, user))
            .and_modify(|u| {
                u.0 = cohort();
                u.1 |= task;
            })
            .or_insert_with(|| (cohort(), task));
    }

    /// Whether no user was noted.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// (rollout, user, cohort values, key task done), by rollout and user.
    pub fn into_rows(self) -> impl Iterator<Item = (&'a str, &'a str, Vec<Cow<'a, str>>, bool)> {
        self.0.into_iter().map(|((r, u), (c, t))| (r, u, c, t))
    }
}

/// A context's value of cohort attribute `attribute`: strings as they are, numbers and
/// booleans as written, anything else [`NO_VALUE`].
pub fn cohort_value<'a>(context: &'a Value, attribute: &str) -> Cow<'a, str> {
    match context.get(attribute) {
        Some(Value::String(s)) if !s.is_empty() => Cow::Borrowed(s.as_str()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Cow::Owned(v.to_string()),
        _ => Cow::Borrowed(NO_VALUE),
    }
}

/// A plan's `adoption:` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdoptionSpec {
    /// Context attributes whose values make the cohorts (`function`, `location`, `manager`…).
    pub cohorts: Vec<String>,
    /// The key task: an outcome event for the flag's new variant that carries this metric with
    /// a value above 0.
    pub key_task: String,
    /// How long after the rollout starts its users are tracked (default 90d, at most 366d).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub track: Option<Span>,
    /// A cohort lags when its adoption is below this share of the overall adoption (and
    /// significantly so); default 0.8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lagging: Option<f64>,
    /// Fewest users a cohort needs in the window before it can be flagged (default 20).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_users: Option<u64>,
}

impl AdoptionSpec {
    /// The tracking period.
    pub fn track(&self) -> Span {
        self.track.unwrap_or(Span::from_secs(90 * 86_400))
    }
    /// The lagging ratio.
    pub fn lagging(&self) -> f64 {
        self.lagging.unwrap_or(0.8)
    }
    /// The smallest cohort that can be flagged.
    pub fn min_users(&self) -> u64 {
        self.min_users.unwrap_or(20)
    }
}

/// Checks an `adoption:` section; the message names the field.
pub fn validate(spec: &AdoptionSpec) -> Result<(), String> {
    if spec.cohorts.is_empty() || spec.cohorts.len() > MAX_COHORTS {
        return Err(format!(
            "adoption.cohorts must name 1 to {MAX_COHORTS} context attributes, got {}",
            spec.cohorts.len()
        ));
    }
    for (i, c) in spec.cohorts.iter().enumerate() {
        if c.trim().is_empty() || c.len() > 128 {
            return Err(format!("adoption.cohorts[{i}] must be a non-empty attribute name"));
        }
        if c == "targetingKey" || c == "sessionId" {
            return Err(format!(
                "adoption.cohorts[{i}]: {c} identifies a user, not a cohort; name an attribute many users share"
            ));
        }
        if spec.cohorts[..i].contains(c) {
            return Err(format!("adoption.cohorts[{i}]: {c:?} is listed twice"));
        }
    }
    if spec.key_task.trim().is_empty()
        || spec.key_task.len() > 128
        || ["exposure", "error", "latency_ms"].contains(&spec.key_task.as_str())
    {
        return Err(format!(
            "adoption.key_task must name an outcome metric (not exposure, error or latency_ms), got {:?}",
            spec.key_task
        ));
    }
    if let Some(t) = spec.track
        && !(86_400..=366 * 86_400).contains(&t.secs())
    {
        return Err(format!("adoption.track must be from 1d to 366d, got {t}"));
    }
    if spec.min_users == Some(0) {
        return Err("adoption.min_users must be at least 1".into());
    }
    if let Some(l) = spec.lagging
        && !(l > 0.0 && l < 1.0)
    {
        return Err(format!("adoption.lagging must be between 0 and 1 (exclusive), got {l}"));
    }
    Ok(())
}

/// Users of one cohort (one combination of attribute values) in one window.
#[derive(Debug, Clone, PartialEq)]
pub struct CohortCount {
    /// The attribute values, in the plan's attribute order ([`NO_VALUE`] when absent).
    pub values: Vec<String>,
    /// Users served the new variant in the window.
    pub exposed: u64,
    /// Of those, users who did the key task in the window.
    pub adopted: u64,
}

/// Exposed and adopting users, and the share.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Rate {
    /// Users served the new variant.
    pub exposed: u64,
    /// Users who did the key task.
    pub adopted: u64,
    /// `adopted / exposed`, when anyone was exposed.
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub rate: Option<f64>,
}

impl Rate {
    fn add(&mut self, exposed: u64, adopted: u64) {
        self.exposed += exposed;
        self.adopted += adopted.min(exposed);
        self.rate = (self.exposed > 0).then(|| self.adopted as f64 / self.exposed as f64);
    }

    /// The upper end of the 95% Wilson interval for the rate.
    pub fn upper(&self) -> Option<f64> {
        let n = self.exposed as f64;
        let p = self.rate?;
        let z = 1.959_963_984_540_054_f64;
        let z2 = z * z;
        let centre = p + z2 / (2.0 * n);
        let spread = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
        Some(((centre + spread) / (1.0 + z2 / n)).min(1.0))
    }
}

/// One value of a cohort attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CohortAdoption {
    /// The attribute's value.
    pub value: String,
    /// Adoption in each of [`WINDOWS`].
    pub rates: Vec<Rate>,
    /// Flagged in the lagging window.
    pub lagging: bool,
}

/// One cohort attribute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AttributeAdoption {
    /// The attribute.
    pub attribute: String,
    /// Its values, lowest adoption in the lagging window first.
    pub cohorts: Vec<CohortAdoption>,
}

/// A flagged cohort, with what flagged it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Lagging {
    /// The attribute.
    pub attribute: String,
    /// Its value.
    pub value: String,
    /// The cohort's numbers in the lagging window.
    pub rate: Rate,
    /// The overall rate in that window.
    pub overall: f64,
}

impl Lagging {
    /// Who lags: `function = support`.
    pub fn cohort(&self) -> String {
        format!("{} = {}", self.attribute, self.value)
    }

    /// How much: `10.0% of 200 users` (the cohort's rate in the lagging window).
    pub fn share(&self) -> String {
        format!("{:.1}% of {} users", self.rate.rate.unwrap_or(0.0) * 100.0, self.rate.exposed)
    }
}

/// The adoption report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct AdoptionReport {
    /// The key task's metric.
    pub key_task: String,
    /// The windows, in days: each rate list follows this order.
    pub windows: Vec<u32>,
    /// The window lagging cohorts are judged in.
    pub lagging_window: u32,
    /// All users, per window.
    pub overall: Vec<Rate>,
    /// Per attribute, in the plan's order.
    pub attributes: Vec<AttributeAdoption>,
    /// Lagging cohorts, worst first.
    pub lagging: Vec<Lagging>,
}

/// Builds the report from per-cohort counts for each of [`WINDOWS`] (`counts[i]` for
/// `WINDOWS[i]`), judging lagging cohorts in `lagging_window` (one of [`WINDOWS`]).
///
/// A cohort lags when it has at least `min_users` users in that window, its rate is below
/// `lagging` × the overall rate, and even the upper end of its 95% interval is below the
/// overall rate (so a small cohort's bad luck is not flagged).
pub fn report(
    spec: &AdoptionSpec,
    counts: &[Vec<CohortCount>; 3],
    lagging_window: u32,
) -> AdoptionReport {
    let lag_i = WINDOWS.iter().position(|w| *w == lagging_window).unwrap_or(0);
    let mut overall = vec![Rate::default(); WINDOWS.len()];
    // attribute index → value → rates per window
    let mut per: Vec<BTreeMap<&str, Vec<Rate>>> = vec![BTreeMap::new(); spec.cohorts.len()];
    for (w, rows) in counts.iter().enumerate() {
        for row in rows {
            overall[w].add(row.exposed, row.adopted);
            for (a, map) in per.iter_mut().enumerate() {
                let value = row.values.get(a).map(String::as_str).unwrap_or(NO_VALUE);
                map.entry(value).or_insert_with(|| vec![Rate::default(); WINDOWS.len()])[w]
                    .add(row.exposed, row.adopted);
            }
        }
    }
    let base = overall[lag_i].rate;
    let mut lagging = Vec::new();
    let attributes = spec
        .cohorts
        .iter()
        .zip(per)
        .map(|(attribute, map)| {
            let mut cohorts: Vec<CohortAdoption> = map
                .into_iter()
                .map(|(value, rates)| {
                    let r = rates[lag_i];
                    let lags = match (base, r.rate, r.upper()) {
                        (Some(b), Some(rate), Some(upper)) => {
                            r.exposed >= spec.min_users() && rate < spec.lagging() * b && upper < b
                        }
                        _ => false,
                    };
                    if lags {
                        lagging.push(Lagging {
                            attribute: attribute.clone(),
                            value: value.to_owned(),
                            rate: r,
                            overall: base.unwrap_or(0.0),
                        });
                    }
                    CohortAdoption { value: value.to_owned(), rates, lagging: lags }
                })
                .collect();
            cohorts.sort_by(|a, b| {
                let ra = a.rates[lag_i].rate.unwrap_or(f64::INFINITY);
                let rb = b.rates[lag_i].rate.unwrap_or(f64::INFINITY);
                ra.total_cmp(&rb).then_with(|| a.value.cmp(&b.value))
            });
            AttributeAdoption { attribute: attribute.clone(), cohorts }
        })
        .collect();
    lagging.sort_by(|a, b| {
        a.rate.rate.unwrap_or(0.0).total_cmp(&b.rate.rate.unwrap_or(0.0)).then_with(|| {
            (a.attribute.as_str(), a.value.as_str()).cmp(&(b.attribute.as_str(), b.value.as_str()))
        })
    });
    AdoptionReport {
        key_task: spec.key_task.clone(),
        windows: WINDOWS.to_vec(),
        lagging_window: WINDOWS[lag_i],
        overall,
        attributes,
        lagging,
    }
}

fn pct(r: &Rate) -> String {
    match r.rate {
        Some(p) => format!("{:.1}% ({}/{})", p * 100.0, r.adopted, r.exposed),
        None => "—".into(),
    }
}

/// The report as Markdown, under a heading naming `title` (the release and rollout). Cohort
/// values come from SDKs' contexts and the rest from the plan, so each is escaped ([`md`]).
pub fn to_markdown(title: &str, r: &AdoptionReport) -> String {
    let heads: Vec<String> = r.windows.iter().map(|w| format!("last {w} days")).collect();
    let rule = "|---".repeat(heads.len() + 1);
    let mut out = format!(
        "# Adoption: {}\n\nAdoption is the share of users served the new variant in a window who did the key task ({}) in it.\n\n| | {} |\n{rule}|\n| **all users** | {} |\n",
        md(title),
        md(&r.key_task),
        heads.join(" | "),
        r.overall.iter().map(pct).collect::<Vec<_>>().join(" | ")
    );
    for a in &r.attributes {
        out.push_str(&format!(
            "\n## By {}\n\n| {} | {} | |\n{rule}|---|\n",
            md(&a.attribute),
            md(&a.attribute),
            heads.join(" | ")
        ));
        for c in &a.cohorts {
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                md(&c.value),
                c.rates.iter().map(pct).collect::<Vec<_>>().join(" | "),
                if c.lagging { "**lagging**" } else { "" }
            ));
        }
    }
    out.push_str(&format!("\n## Lagging cohorts (last {} days)\n\n", r.lagging_window));
    if r.lagging.is_empty() {
        out.push_str("No cohort lags.\n");
    }
    for l in &r.lagging {
        let (who, share, overall) = (md(&l.cohort()), l.share(), l.overall * 100.0);
        out.push_str(&format!("- {who}: {share}, against {overall:.1}% overall\n"));
    }
    out
}

/// The report as a self-contained HTML page: the tables, and per attribute a bar chart of
/// each cohort's adoption in the lagging window against the overall rate.
pub fn to_html(title: &str, r: &AdoptionReport) -> String {
    let lag_i = r.windows.iter().position(|w| *w == r.lagging_window).unwrap_or(0);
    let heads: String = r.windows.iter().map(|w| format!("<th>last {w} days</th>")).collect();
    let cells = |rates: &[Rate]| -> String {
        rates.iter().map(|x| format!("<td>{}</td>", esc(&pct(x)))).collect()
    };
    let mut body = format!(
        "<h1>Adoption: {}</h1><p>Adoption is the share of users served the new variant in a window who did the key task (<code>{}</code>) in it.</p><table><thead><tr><th></th>{heads}</tr></thead><tbody><tr><th scope=\"row\">all users</th>{}</tr></tbody></table>",
        esc(title),
        esc(&r.key_task),
        cells(&r.overall)
    );
    let base = r.overall[lag_i].rate.unwrap_or(0.0);
    for a in &r.attributes {
        body.push_str(&format!(
            "<h2>By {a}</h2><table><thead><tr><th>{a}</th>{heads}<th></th></tr></thead><tbody>",
            a = esc(&a.attribute)
        ));
        let mut bars = String::new();
        for (i, c) in a.cohorts.iter().enumerate() {
            body.push_str(&format!(
                "<tr{}><th scope=\"row\">{}</th>{}<td>{}</td></tr>",
                if c.lagging { " class=\"lag\"" } else { "" },
                esc(&c.value),
                cells(&c.rates),
                if c.lagging { "lagging" } else { "" }
            ));
            let rate = c.rates[lag_i].rate.unwrap_or(0.0);
            let y = 10 + i * 24;
            bars.push_str(&format!(
                "<text x=\"0\" y=\"{}\">{}</text><rect x=\"140\" y=\"{y}\" width=\"{:.0}\" height=\"16\" fill=\"{}\"/><text x=\"{:.0}\" y=\"{}\">{:.1}%</text>",
                y + 12,
                esc(&c.value),
                300.0 * rate,
                if c.lagging { "#cf222e" } else { "#3b6fb6" },
                145.0 + 300.0 * rate,
                y + 12,
                rate * 100.0
            ));
        }
        let height = 20 + a.cohorts.len() * 24;
        let x = 140.0 + 300.0 * base;
        body.push_str(&format!(
            "</tbody></table><svg role=\"img\" aria-label=\"adoption by {a}, last {w} days\" width=\"520\" height=\"{height}\">{bars}<line x1=\"{x:.0}\" x2=\"{x:.0}\" y1=\"0\" y2=\"{height}\" stroke=\"#333\" stroke-dasharray=\"4 3\"/></svg>",
            a = esc(&a.attribute),
            w = r.lagging_window,
        ));
    }
    body.push_str(&format!("<h2>Lagging cohorts (last {} days)</h2><ul>", r.lagging_window));
    if r.lagging.is_empty() {
        body.push_str("<li>No cohort lags.</li>");
    }
    for l in &r.lagging {
        let (who, share, overall) = (esc(&l.cohort()), l.share(), l.overall * 100.0);
        body.push_str(&format!("<li>{who}: {share}, against {overall:.1}% overall</li>"));
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Adoption: {}</title><style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse;margin-bottom:1em}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}tr.lag{{color:#cf222e}}</style></head><body>{body}</ul></body></html>\n",
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> AdoptionSpec {
        AdoptionSpec {
            cohorts: vec!["function".into(), "location".into()],
            key_task: "report_exported".into(),
            track: None,
            lagging: None,
            min_users: None,
        }
    }

    fn row(f: &str, l: &str, exposed: u64, adopted: u64) -> CohortCount {
        CohortCount { values: vec![f.into(), l.into()], exposed, adopted }
    }

    #[test]
    fn rates_per_attribute_and_a_lagging_cohort() {
        let w30 = vec![
            row("sales", "berlin", 100, 60),
            row("sales", "paris", 100, 50),
            row("support", "berlin", 100, 10),
            row("eng", "paris", 10, 1),
        ];
        let w60 = vec![row("sales", "berlin", 150, 80), row("support", "berlin", 120, 30)];
        let r = report(&spec(), &[w30, w60, vec![]], 30);
        assert_eq!(r.overall[0], Rate { exposed: 310, adopted: 121, rate: Some(121.0 / 310.0) });
        assert_eq!(r.overall[2].rate, None);
        let function = &r.attributes[0];
        assert_eq!(function.attribute, "function");
        // Lowest adoption first: eng (10%, too small to flag), support (10%), sales (55%).
        let values: Vec<&str> = function.cohorts.iter().map(|c| c.value.as_str()).collect();
        assert_eq!(values, ["eng", "support", "sales"]);
        assert!(!function.cohorts[0].lagging, "10 users are fewer than min_users");
        assert!(function.cohorts[1].lagging);
        assert_eq!(function.cohorts[2].rates[0].adopted, 110);
        assert_eq!(
            function.cohorts[1].rates[1],
            Rate { exposed: 120, adopted: 30, rate: Some(0.25) }
        );
        assert_eq!(r.lagging.len(), 1);
        assert_eq!(
            (r.lagging[0].attribute.as_str(), r.lagging[0].value.as_str()),
            ("function", "support")
        );
        // By location: berlin 70/200 = 35% against 39% overall is within the noise.
        assert!(r.attributes[1].cohorts.iter().all(|c| !c.lagging));
        let md = to_markdown("checkout-v2", &r);
        assert!(
            md.contains("| support | 10.0% (10/100) | 25.0% (30/120) | — | **lagging** |"),
            "{md}"
        );
        assert!(
            md.contains("- function = support: 10.0% of 100 users, against 39.0% overall"),
            "{md}"
        );
        let html = to_html("<x>", &r);
        assert!(html.contains("<svg") && html.contains("&lt;x&gt;") && !html.contains("<x>"));
    }

    /// Issue 16, item 14: cohort values come from SDKs' contexts; in Markdown they are text.
    #[test]
    fn issue_16_markdown_escapes_cohort_values() {
        let hostile = "[x](https://evil.example) <b>|";
        let w30 = vec![row(hostile, "b", 100, 5), row("sales", "b", 400, 300)];
        let r = report(&spec(), &[w30.clone(), w30.clone(), w30], 30);
        let md = to_markdown("<t>", &r);
        assert!(md.starts_with("# Adoption: \\<t\\>"), "{md}");
        assert!(md.contains("| \\[x\\](https://evil.example) \\<b\\>\\| | 5.0% (5/100)"), "{md}");
        assert!(md.contains("- function = \\[x\\](https://evil.example) \\<b\\>\\|: "), "{md}");
        assert!(md.contains("key task (report\\_exported)"), "{md}");
    }

    #[test]
    fn a_cohort_is_judged_in_the_chosen_window() {
        let w30 = vec![row("sales", "b", 100, 50), row("support", "b", 100, 45)];
        let w90 = vec![row("sales", "b", 400, 300), row("support", "b", 400, 100)];
        let r = report(&spec(), &[w30.clone(), w30.clone(), w90.clone()], 30);
        assert!(r.lagging.is_empty());
        let r = report(&spec(), &[w30.clone(), w30, w90], 90);
        assert_eq!(r.lagging_window, 90);
        assert_eq!(r.lagging.len(), 1);
        assert_eq!(r.lagging[0].value, "support");
    }

    #[test]
    fn validation_names_the_field() {
        let mut s = spec();
        assert_eq!(validate(&s), Ok(()));
        s.cohorts.push("function".into());
        assert!(validate(&s).unwrap_err().contains("adoption.cohorts[2]"));
        s.cohorts = vec!["targetingKey".into()];
        assert!(validate(&s).unwrap_err().contains("identifies a user"));
        s.cohorts = vec![];
        assert!(validate(&s).unwrap_err().contains("1 to 8"));
        let mut s = spec();
        s.key_task = "exposure".into();
        assert!(validate(&s).unwrap_err().contains("adoption.key_task"));
        let mut s = spec();
        s.lagging = Some(1.5);
        assert!(validate(&s).unwrap_err().contains("adoption.lagging"));
        let mut s = spec();
        s.min_users = Some(0);
        assert!(validate(&s).unwrap_err().contains("adoption.min_users"));
        let mut s = spec();
        s.track = Some(Span::from_secs(400 * 86_400));
        assert!(validate(&s).unwrap_err().contains("adoption.track"));
    }

    #[test]
    fn the_interval_is_wide_for_few_users() {
        let small = Rate { exposed: 5, adopted: 0, rate: Some(0.0) };
        assert!(small.upper().unwrap() > 0.4);
        let big = Rate { exposed: 10_000, adopted: 0, rate: Some(0.0) };
        assert!(big.upper().unwrap() < 0.001);
    }
}
