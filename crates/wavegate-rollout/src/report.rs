//! DORA metrics from rollouts (pure): deployment frequency, lead time for changes, change fail
//! rate, failed-deployment recovery time and rework rate, per group (service or team) over a
//! period, each with its performance-cluster label.
//!
//! Definitions (one deployment = one rollout that ended in the period, in the environment
//! asked for):
//! - **deployment frequency**: completed rollouts per day;
//! - **lead time**: median of release `commit_time` → completion at 100%;
//! - **change fail rate**: rolled back / (completed + rolled back);
//! - **recovery time**: median, over rolled-back rollouts, of the failing wave's start → the
//!   rollback (the flag is back on the pre-rollout version then);
//! - **rework rate**: share of deployments whose `change_type` is `hotfix` or `emergency`.
//!
//! Cluster thresholds follow the DORA reports (elite / high / medium / low); rework rate has no
//! published clusters, so it is labelled with the change-fail-rate thresholds.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use wavegate_core::text::{escape_html as esc, escape_markdown as md};

use crate::machine::{Rollout, State};
use crate::plan::ChangeType;

/// The formats reports are served in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The report's data (the default).
    Json,
    /// Markdown, for pasting into a ticket or a wiki.
    Markdown,
    /// A self-contained HTML page (with charts where the report has them).
    Html,
    /// iCalendar (the release calendar only).
    Ics,
}

impl Format {
    /// The name in `format=` and `--format`.
    pub fn name(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Markdown => "markdown",
            Format::Html => "html",
            Format::Ics => "ics",
        }
    }

    /// The `Content-Type` it is served with.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Markdown => "text/markdown; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::Ics => "text/calendar; charset=utf-8",
        }
    }

    /// Parses `given` (None: json) as one of `allowed`; the error says what is allowed.
    pub fn parse(given: Option<&str>, allowed: &[Format]) -> Result<Format, String> {
        let given = given.unwrap_or("json");
        allowed.iter().copied().find(|f| f.name() == given).ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
            let list = match names.split_last() {
                Some((last, [])) => (*last).to_owned(),
                Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
                None => String::new(),
            };
            format!("format must be {list}, got {given:?}")
        })
    }
}

/// What most reports are served as.
pub const DOCUMENT_FORMATS: [Format; 3] = [Format::Json, Format::Markdown, Format::Html];

/// One ended rollout, as the report reads it.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// Group key (service or team; `unknown` when the plan names none).
    pub group: String,
    /// Completed (true) or rolled back (false).
    pub completed: bool,
    /// When it ended (completed or rolled back).
    pub ended_at: DateTime<Utc>,
    /// When the failing wave started (rolled back only).
    pub failing_wave_started_at: Option<DateTime<Utc>>,
    /// Release commit time, if the plan gives it.
    pub commit_time: Option<DateTime<Utc>>,
    /// Hotfix or emergency.
    pub rework: bool,
    /// Whether every success target was met (None: the plan set none, or not completed).
    pub met_targets: Option<bool>,
}

impl Deployment {
    /// Reads an ended rollout; `None` while it runs or when it was aborted. `ended_fallback`
    /// stands in for the end time of rollouts stored before it was recorded.
    pub fn of(r: &Rollout, by_team: bool, ended_fallback: DateTime<Utc>) -> Option<Deployment> {
        let completed = match r.state {
            State::Completed => true,
            State::RolledBack { .. } => false,
            _ => return None,
        };
        let rel = &r.plan.release;
        let group = if by_team { rel.team.clone() } else { rel.service.clone() }
            .unwrap_or_else(|| "unknown".into());
        Some(Deployment {
            group,
            completed,
            ended_at: if completed {
                r.completed_at.unwrap_or(ended_fallback)
            } else {
                ended_fallback
            },
            failing_wave_started_at: (!completed).then_some(r.wave_started_at),
            commit_time: rel.commit_time.map(|t| t.with_timezone(&Utc)),
            rework: matches!(rel.change_type, Some(ChangeType::Hotfix | ChangeType::Emergency)),
            met_targets: None,
        })
    }
}

/// A metric's value and its performance cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Metric {
    /// The value (`null`: no data in the period).
    #[cfg_attr(feature = "schema", schema(required = true))]
    pub value: Option<f64>,
    /// Its unit (`per day`, `hours`, `ratio`).
    pub unit: String,
    /// `elite`, `high`, `medium`, `low`, or `n/a` without data.
    pub cluster: String,
}

/// The five DORA metrics of one service or team.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct GroupReport {
    /// Service or team.
    pub group: String,
    /// Deployments (completed + rolled back) in the period.
    pub deployments: usize,
    /// Completed rollouts per day.
    pub deployment_frequency: Metric,
    /// Median commit → 100%, hours.
    pub lead_time: Metric,
    /// Rolled back / deployments.
    pub change_fail_rate: Metric,
    /// Median failing wave start → rollback, hours.
    pub recovery_time: Metric,
    /// Hotfix/emergency share.
    pub rework_rate: Metric,
    /// Completed releases in the period whose plan set success targets.
    #[serde(default)]
    pub with_success_targets: usize,
    /// Of those, releases that met every target.
    #[serde(default)]
    pub met_success_targets: usize,
}

impl GroupReport {
    /// The five metrics in the order the report's columns show them.
    pub fn metrics(&self) -> [&Metric; 5] {
        [
            &self.deployment_frequency,
            &self.lead_time,
            &self.change_fail_rate,
            &self.recovery_time,
            &self.rework_rate,
        ]
    }
}

/// The DORA report (`GET /api/v1/reports/dora`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct DoraReport {
    /// Period start.
    pub since: DateTime<Utc>,
    /// Period end.
    pub until: DateTime<Utc>,
    /// `service` or `team`.
    pub grouped_by: String,
    /// One row per group, sorted by name.
    pub groups: Vec<GroupReport>,
}

fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    Some(if n % 2 == 1 { xs[n / 2] } else { (xs[n / 2 - 1] + xs[n / 2]) / 2.0 })
}

impl Metric {
    /// `value` in `unit`, in the first of DORA's elite, high and medium clusters whose bound
    /// it meets (at or above when higher is better, else at or below), or `low`.
    fn graded(
        value: Option<f64>,
        unit: &'static str,
        bounds: [f64; 3],
        higher_is_better: bool,
    ) -> Metric {
        let cluster = match value {
            None => "n/a",
            Some(v) => bounds
                .iter()
                .zip(["elite", "high", "medium"])
                .find(|(b, _)| if higher_is_better { v >= **b } else { v <= **b })
                .map_or("low", |(_, label)| label),
        };
        Metric { value, unit: unit.into(), cluster: cluster.into() }
    }
}

/// Computes the report over `deployments` ended in `[since, until)`.
pub fn dora(
    deployments: &[Deployment],
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    grouped_by: &'static str,
) -> DoraReport {
    let days = ((until - since).num_seconds() as f64 / 86_400.0).max(1.0 / 24.0);
    let mut by_group: BTreeMap<&str, Vec<&Deployment>> = BTreeMap::new();
    for d in deployments.iter().filter(|d| d.ended_at >= since && d.ended_at < until) {
        by_group.entry(d.group.as_str()).or_default().push(d);
    }
    let hours = |d: Duration| d.num_seconds() as f64 / 3600.0;
    let groups = by_group
        .into_iter()
        .map(|(group, ds)| {
            let total = ds.len();
            let completed: Vec<&&Deployment> = ds.iter().filter(|d| d.completed).collect();
            let failed: Vec<&&Deployment> = ds.iter().filter(|d| !d.completed).collect();
            let freq = Some(completed.len() as f64 / days);
            let lead = median(
                completed
                    .iter()
                    .filter_map(|d| d.commit_time.map(|c| hours(d.ended_at - c).max(0.0)))
                    .collect(),
            );
            let cfr = (total > 0).then(|| failed.len() as f64 / total as f64);
            let recovery = median(
                failed
                    .iter()
                    .filter_map(|d| {
                        d.failing_wave_started_at.map(|s| hours(d.ended_at - s).max(0.0))
                    })
                    .collect(),
            );
            let rework =
                (total > 0).then(|| ds.iter().filter(|d| d.rework).count() as f64 / total as f64);
            GroupReport {
                group: group.to_owned(),
                deployments: total,
                // Elite: on demand (daily or more); high: weekly; medium: monthly.
                deployment_frequency: Metric::graded(
                    freq,
                    "per day",
                    [1.0, 1.0 / 7.0, 1.0 / 30.0],
                    true,
                ),
                // Elite: under a day; high: under a week; medium: under a month.
                lead_time: Metric::graded(lead, "hours", [24.0, 168.0, 720.0], false),
                change_fail_rate: Metric::graded(cfr, "ratio", [0.05, 0.10, 0.15], false),
                // Elite: under an hour; high: under a day; medium: under a week.
                recovery_time: Metric::graded(recovery, "hours", [1.0, 24.0, 168.0], false),
                rework_rate: Metric::graded(rework, "ratio", [0.05, 0.10, 0.15], false),
                with_success_targets: completed.iter().filter(|d| d.met_targets.is_some()).count(),
                met_success_targets: completed
                    .iter()
                    .filter(|d| d.met_targets == Some(true))
                    .count(),
            }
        })
        .collect();
    DoraReport { since, until, grouped_by: grouped_by.into(), groups }
}

/// A rate of deployments per day as people say it: `2.50/day`, or `1 per 30 days` below one a
/// day (never `0.00/day` beside one deployment); the dashboard words it the same way.
fn per_day(v: f64) -> String {
    if v >= 1.0 {
        return format!("{v:.2}/day");
    }
    if v <= 0.0 {
        return "none".into();
    }
    let days = 1.0 / v;
    if days < 10.0 { format!("1 per {days:.1} days") } else { format!("1 per {days:.0} days") }
}

fn fmt(m: &Metric) -> String {
    match m.value {
        None => "—".into(),
        Some(v) if m.unit == "ratio" => format!("{:.1}%", v * 100.0),
        Some(v) if m.unit == "per day" => per_day(v),
        Some(v) => format!("{v:.1} h"),
    }
}

/// The report as a Markdown table. Group names come from plans, so they are escaped.
pub fn to_markdown(r: &DoraReport) -> String {
    let mut out = format!(
        "# DORA metrics by {}, {} to {}\n\n| {} | deployments | deployment frequency | lead time | change fail rate | recovery time | rework rate | met success targets |\n|---|---:|---|---|---|---|---|---|\n",
        r.grouped_by,
        r.since.format("%Y-%m-%d"),
        r.until.format("%Y-%m-%d"),
        r.grouped_by
    );
    for g in &r.groups {
        let cells: Vec<String> =
            g.metrics().iter().map(|m| format!("{} ({})", fmt(m), m.cluster)).collect();
        let group = md(&g.group);
        out.push_str(&format!(
            "| {group} | {} | {} | {} |\n",
            g.deployments,
            cells.join(" | "),
            success_cell(g)
        ));
    }
    if r.groups.is_empty() {
        out.push_str("\nNo rollout ended in this period.\n");
    }
    out.push_str("\nClusters: elite, high, medium, low (DORA); rework rate uses the change-fail-rate thresholds.\n");
    out
}

/// `2 of 3` (releases that met every success target, of those with targets), or `—`.
fn success_cell(g: &GroupReport) -> String {
    if g.with_success_targets == 0 {
        "—".to_owned()
    } else {
        format!("{} of {}", g.met_success_targets, g.with_success_targets)
    }
}

/// The report as a self-contained HTML page with a bar chart of deployments per group.
pub fn to_html(r: &DoraReport) -> String {
    let max = r.groups.iter().map(|g| g.deployments).max().unwrap_or(1).max(1) as f64;
    let mut rows = String::new();
    let mut bars = String::new();
    for (i, g) in r.groups.iter().enumerate() {
        let cells: String = g
            .metrics()
            .iter()
            .map(|m| {
                format!("<td>{} <span class=\"c-{0}\">{}</span></td>", esc(&fmt(m)), m.cluster)
            })
            .collect();
        let group = esc(&g.group);
        rows.push_str(&format!(
            "<tr><th scope=\"row\">{group}</th><td>{}</td>{cells}</tr>\n",
            g.deployments
        ));
        let w = 300.0 * g.deployments as f64 / max;
        let y = 10 + i * 24;
        bars.push_str(&format!(
            "<text x=\"0\" y=\"{}\">{}</text><rect x=\"120\" y=\"{}\" width=\"{w:.0}\" height=\"16\" fill=\"#3b6fb6\"/><text x=\"{:.0}\" y=\"{}\">{}</text>",
            y + 12,
            esc(&g.group),
            y,
            125.0 + w,
            y + 12,
            g.deployments
        ));
    }
    let height = 20 + r.groups.len() * 24;
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>DORA metrics</title><style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.c-elite{{color:#1a7f37}}.c-high{{color:#3b6fb6}}.c-medium{{color:#9a6700}}.c-low{{color:#cf222e}}</style></head><body><h1>DORA metrics by {g}, {s} to {u}</h1><table><thead><tr><th>{g}</th><th>deployments</th><th>deployment frequency</th><th>lead time</th><th>change fail rate</th><th>recovery time</th><th>rework rate</th></tr></thead><tbody>{rows}</tbody></table><h2>Deployments per {g}</h2><svg role=\"img\" aria-label=\"deployments per {g}\" width=\"480\" height=\"{height}\">{bars}</svg></body></html>\n",
        g = r.grouped_by,
        s = r.since.format("%Y-%m-%d"),
        u = r.until.format("%Y-%m-%d"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(h: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-01T00:00:00Z").unwrap().with_timezone(&Utc)
            + Duration::hours(h)
    }

    fn dep(
        group: &str,
        completed: bool,
        end: i64,
        commit: Option<i64>,
        rework: bool,
    ) -> Deployment {
        Deployment {
            group: group.into(),
            completed,
            ended_at: t(end),
            failing_wave_started_at: (!completed).then(|| t(end - 2)),
            commit_time: commit.map(t),
            rework,
            // Completed releases alternate between met and missed targets; rolled back ones have none.
            met_targets: completed.then_some(end % 20 == 10),
        }
    }

    #[test]
    fn metrics_and_clusters() {
        let ds = vec![
            dep("checkout", true, 10, Some(0), false),
            dep("checkout", true, 30, Some(20), false),
            dep("checkout", false, 50, None, true),
            dep("search", true, 100, Some(-400), false),
            dep("search", true, 24 * 40, Some(0), false), // outside the period
        ];
        let r = dora(&ds, t(0), t(24 * 10), "service");
        assert_eq!(r.groups.len(), 2);
        let c = &r.groups[0];
        assert_eq!((c.group.as_str(), c.deployments), ("checkout", 3));
        assert_eq!(c.deployment_frequency.value, Some(0.2));
        assert_eq!(c.deployment_frequency.cluster, "high");
        assert_eq!((c.lead_time.value, c.lead_time.cluster.as_str()), (Some(10.0), "elite"));
        assert_eq!(c.change_fail_rate.cluster, "low");
        assert_eq!((c.recovery_time.value, c.recovery_time.cluster.as_str()), (Some(2.0), "high"));
        assert!((c.rework_rate.value.unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!((c.with_success_targets, c.met_success_targets), (2, 2));
        assert_eq!((r.groups[1].with_success_targets, r.groups[1].met_success_targets), (1, 0));
        let s = &r.groups[1];
        assert_eq!((s.lead_time.value, s.lead_time.cluster.as_str()), (Some(500.0), "medium"));
        assert_eq!((s.recovery_time.value, s.recovery_time.cluster.as_str()), (None, "n/a"));
        let md = to_markdown(&r);
        assert!(
            md.contains("| checkout | 3 | 1 per 5.0 days (high) | 10.0 h (elite) | 33.3% (low)")
                && md.contains("| 2 of 2 |"),
            "{md}"
        );
        assert!(to_html(&r).contains("<svg"));
    }

    /// Issue 16, item 14: group names come from plans; in Markdown they are text, one cell.
    #[test]
    fn issue_16_markdown_escapes_group_names() {
        let r = dora(&[dep("a|b <i>[l](u)", true, 10, Some(0), false)], t(0), t(24), "service");
        let md = to_markdown(&r);
        assert!(md.contains("| a\\|b \\<i\\>\\[l\\](u) | 1 |"), "{md}");
        let page = markdown_page("DORA", &md);
        assert!(page.contains("<td>a|b &lt;i&gt;[l](u)</td><td>1</td>"), "{page}");
    }

    #[test]
    fn group_names_are_escaped_quotes_included() {
        let r = dora(&[dep("a\"b'<c>&", true, 10, Some(0), false)], t(0), t(24), "service");
        let html = to_html(&r);
        assert!(html.contains("<th scope=\"row\">a&quot;b&#39;&lt;c&gt;&amp;</th>"), "{html}");
        assert!(!html.contains("a\"b") && !html.contains("b'"), "{html}");
    }
}

/// Renders the Markdown these reports write (headings, paragraphs, `-` lists, pipe tables,
/// `**bold**` and `` `code` ``) as a self-contained HTML page; all text is escaped.
pub fn markdown_page(title: &str, md: &str) -> String {
    markdown_page_with(title, md, &[])
}

/// [`markdown_page`] followed by a "Charts" section of `figures`: (caption, SVG) pairs. The
/// captions are escaped; the SVG is inserted as it is, so it must come from this program's own
/// chart renderers (which escape the text they draw), never from input.
pub fn markdown_page_with(title: &str, md: &str, figures: &[(String, String)]) -> String {
    let page = markdown_page_body(title, md);
    if figures.is_empty() {
        return page;
    }
    let mut charts = String::from("<h2>Charts</h2>\n");
    for (caption, svg) in figures {
        charts.push_str(&format!(
            "<figure>{svg}<figcaption>{}</figcaption></figure>\n",
            esc(caption)
        ));
    }
    page.replacen("</body></html>", &format!("{charts}</body></html>"), 1)
}

fn markdown_page_body(title: &str, md: &str) -> String {
    let inline = |s: &str| {
        let mut out = String::new();
        let mut bold = false;
        let mut code = false;
        let mut rest = s;
        while !rest.is_empty() {
            if let Some(r) = rest.strip_prefix("**") {
                out.push_str(if bold { "</strong>" } else { "<strong>" });
                bold = !bold;
                rest = r;
            } else if let Some(r) = rest.strip_prefix('`') {
                out.push_str(if code { "</code>" } else { "<code>" });
                code = !code;
                rest = r;
            } else {
                let c = rest.chars().next().unwrap_or(' ');
                rest = &rest[c.len_utf8()..];
                // A backslash escape (`escape_markdown`) is the character itself, as text.
                let c = match rest.chars().next() {
                    Some(next) if c == '\\' && !code && next.is_ascii_punctuation() => {
                        rest = &rest[1..];
                        next
                    }
                    _ => c,
                };
                out.push_str(&esc(c.encode_utf8(&mut [0; 4])));
            }
        }
        if bold {
            out.push_str("</strong>");
        }
        if code {
            out.push_str("</code>");
        }
        out
    };
    let mut body = String::new();
    let mut in_list = false;
    let mut in_table = false;
    for line in md.lines() {
        let t = line.trim();
        if in_list && !t.starts_with("- ") {
            body.push_str("</ul>\n");
            in_list = false;
        }
        if in_table && !t.starts_with('|') {
            body.push_str("</tbody></table>\n");
            in_table = false;
        }
        if let Some(h) = t.strip_prefix("## ") {
            body.push_str(&format!("<h2>{}</h2>\n", inline(h)));
        } else if let Some(h) = t.strip_prefix("# ") {
            body.push_str(&format!("<h1>{}</h1>\n", inline(h)));
        } else if let Some(item) = t.strip_prefix("- ") {
            if !in_list {
                body.push_str("<ul>\n");
                in_list = true;
            }
            body.push_str(&format!("<li>{}</li>\n", inline(item)));
        } else if t.starts_with('|') {
            let cells = table_cells(t);
            if cells.iter().all(|c| c.chars().all(|ch| matches!(ch, '-' | ':'))) {
                continue;
            }
            if !in_table {
                body.push_str("<table><thead><tr>");
                for c in &cells {
                    body.push_str(&format!("<th>{}</th>", inline(c)));
                }
                body.push_str("</tr></thead><tbody>\n");
                in_table = true;
            } else {
                body.push_str("<tr>");
                for c in &cells {
                    body.push_str(&format!("<td>{}</td>", inline(c)));
                }
                body.push_str("</tr>\n");
            }
        } else if !t.is_empty() {
            body.push_str(&format!("<p>{}</p>\n", inline(t)));
        }
    }
    if in_list {
        body.push_str("</ul>\n");
    }
    if in_table {
        body.push_str("</tbody></table>\n");
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}</style></head><body>\n{body}</body></html>\n",
        esc(title)
    )
}

/// The cells of a table row `| a | b \\| c |`: split at each `|` that no backslash escapes.
fn table_cells(row: &str) -> Vec<&str> {
    let inner = row.strip_prefix('|').unwrap_or(row);
    let mut cells = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            '|' if !escaped => {
                cells.push(inner[start..i].trim());
                start = i + 1;
            }
            _ => escaped = false,
        }
    }
    let last = inner[start..].trim();
    if !last.is_empty() {
        cells.push(last);
    }
    cells
}

#[cfg(test)]
mod page_tests {
    #[test]
    fn charts_follow_the_page_with_escaped_captions() {
        let page = super::markdown_page_with(
            "t",
            "# T",
            &[("a <b>".into(), "<svg id=\"x\"></svg>".into())],
        );
        assert!(page.contains("<h2>Charts</h2>\n<figure><svg id=\"x\"></svg><figcaption>a &lt;b&gt;</figcaption></figure>\n</body></html>"), "{page}");
        assert_eq!(super::markdown_page_with("t", "# T", &[]), super::markdown_page("t", "# T"));
    }

    /// A backslash escape reads as its character; in a code span it stays as written.
    #[test]
    fn markdown_pages_read_backslash_escapes_as_text() {
        let html = super::markdown_page(
            "t",
            "a \\*b\\* \\\\ `c\\*` \\<x\\>\n\n| \\| | 2 |\n|---|---|\n| y | \\|z |\n",
        );
        assert!(html.contains("<p>a *b* \\ <code>c\\*</code> &lt;x&gt;</p>"), "{html}");
        assert!(
            html.contains("<th>|</th><th>2</th>") && html.contains("<td>y</td><td>|z</td>"),
            "{html}"
        );
    }

    #[test]
    fn markdown_pages_escape_and_structure() {
        let html = super::markdown_page(
            "t <x>",
            "# Title\n\nSome **bold** `code` <b>\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- two\n",
        );
        assert!(
            html.contains("<h1>Title</h1>")
                && html.contains("<strong>bold</strong> <code>code</code> &lt;b&gt;"),
            "{html}"
        );
        assert!(
            html.contains("<th>a</th><th>b</th>") && html.contains("<td>1</td><td>2</td>"),
            "{html}"
        );
        assert!(
            html.contains("<li>two</li>\n</ul>") && html.contains("<title>t &lt;x&gt;</title>"),
            "{html}"
        );
    }
}

#[cfg(test)]
mod format_tests {
    use super::*;

    #[test]
    fn formats_parse_with_json_the_default_and_errors_name_the_allowed_ones() {
        assert_eq!(Format::parse(None, &DOCUMENT_FORMATS), Ok(Format::Json));
        assert_eq!(Format::parse(Some("html"), &DOCUMENT_FORMATS), Ok(Format::Html));
        assert_eq!(
            Format::parse(Some("pdf"), &DOCUMENT_FORMATS).unwrap_err(),
            "format must be json, markdown or html, got \"pdf\""
        );
        assert_eq!(
            Format::parse(Some("html"), &[Format::Json, Format::Ics]).unwrap_err(),
            "format must be json or ics, got \"html\""
        );
    }
}
