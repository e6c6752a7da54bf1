//! The vulnerability gate (pure): a release's SBOM (CycloneDX or SPDX JSON) matched against
//! OSV records the operator provides offline, each finding rated (the record's own rating, else
//! its CVSS v3 vector's base score), judged against the plan's `fail_on` with the waivers
//! approvers granted. The server reads the SBOM and the OSV directory; this module only judges.
//!
//! Matching is by package URL (`purl`): its type names the OSV ecosystem (`pypi` → PyPI, `npm`,
//! `cargo` → crates.io, `golang` → Go, `maven`, `gem` → RubyGems, `nuget`, `composer` →
//! Packagist, `hex`, `pub`), its namespace and name the package. A component without a purl is
//! listed as unmatched, never silently passed. A version is affected when a record lists it, or
//! when it falls in one of the record's `SEMVER` or `ECOSYSTEM` ranges (ecosystem versions are
//! compared segment by segment, pre-releases before releases; `GIT` ranges are not evaluated).

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A severity rating, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// CVSS 0.1–3.9.
    Low,
    /// CVSS 4.0–6.9 (GitHub's "moderate").
    Medium,
    /// CVSS 7.0–8.9.
    High,
    /// CVSS 9.0–10.
    Critical,
}

impl Severity {
    /// Parses a rating as OSV databases write it (`CRITICAL`, `HIGH`, `MODERATE`, `MEDIUM`, `LOW`).
    pub fn parse(text: &str) -> Option<Severity> {
        match text.trim().to_ascii_lowercase().as_str() {
            "critical" => Some(Severity::Critical),
            "high" | "important" => Some(Severity::High),
            "medium" | "moderate" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }

    fn from_score(score: f64) -> Option<Severity> {
        match score {
            s if s >= 9.0 => Some(Severity::Critical),
            s if s >= 7.0 => Some(Severity::High),
            s if s >= 4.0 => Some(Severity::Medium),
            // CVSS's "none" (0.0) is scored, not unknown: the lowest rating, never unrated.
            s if s >= 0.0 => Some(Severity::Low),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        })
    }
}

/// One component of an SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Component {
    /// Its name as the SBOM gives it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Its package URL, when the SBOM gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub purl: Option<String>,
}

/// The SBOM's components, and which format it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sbom {
    /// `CycloneDX` or `SPDX`.
    pub format: &'static str,
    /// Every component (CycloneDX's nested ones included).
    pub components: Vec<Component>,
}

/// The most components an SBOM may list.
pub const MAX_COMPONENTS: usize = 100_000;

/// Reads a CycloneDX (`bomFormat: CycloneDX`) or SPDX (`spdxVersion`) JSON document.
pub fn parse_sbom(doc: &Value) -> Result<Sbom, String> {
    let mut components = Vec::new();
    if doc["bomFormat"] == "CycloneDX" {
        let mut stack: Vec<&Value> = vec![&doc["components"]];
        while let Some(list) = stack.pop() {
            for c in list.as_array().into_iter().flatten() {
                let name = c["name"].as_str().unwrap_or_default();
                if name.is_empty() {
                    continue;
                }
                components.push(Component {
                    name: name.to_owned(),
                    version: c["version"].as_str().unwrap_or_default().to_owned(),
                    purl: c["purl"].as_str().map(str::to_owned),
                });
                stack.push(&c["components"]);
                if components.len() > MAX_COMPONENTS {
                    return Err(format!("the SBOM lists more than {MAX_COMPONENTS} components"));
                }
            }
        }
        return Ok(Sbom { format: "CycloneDX", components });
    }
    if doc["spdxVersion"].is_string() {
        for p in doc["packages"].as_array().into_iter().flatten().take(MAX_COMPONENTS + 1) {
            let purl = p["externalRefs"].as_array().into_iter().flatten().find_map(|r| {
                (r["referenceType"] == "purl").then(|| r["referenceLocator"].as_str()).flatten()
            });
            components.push(Component {
                name: p["name"].as_str().unwrap_or_default().to_owned(),
                version: p["versionInfo"].as_str().unwrap_or_default().to_owned(),
                purl: purl.map(str::to_owned),
            });
        }
        if components.len() > MAX_COMPONENTS {
            return Err(format!("the SBOM lists more than {MAX_COMPONENTS} components"));
        }
        return Ok(Sbom { format: "SPDX", components });
    }
    Err("not a CycloneDX (bomFormat: CycloneDX) or SPDX (spdxVersion) JSON document".into())
}

/// A package as OSV names it: (ecosystem in lower case without its release suffix, name
/// normalized as the ecosystem compares names).
type PackageKey = (String, String);

fn normalize(ecosystem: &str, name: &str) -> String {
    match ecosystem {
        // PEP 503: case-insensitive, runs of `-`, `_` and `.` are one `-`.
        "pypi" => {
            let mut out = String::with_capacity(name.len());
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    if !out.ends_with('-') {
                        out.push('-');
                    }
                } else {
                    out.extend(c.to_lowercase());
                }
            }
            out
        }
        "nuget" | "packagist" | "hex" | "crates.io" => name.to_ascii_lowercase(),
        _ => name.to_owned(),
    }
}

fn key(ecosystem: &str, name: &str) -> PackageKey {
    let eco = ecosystem.split(':').next().unwrap_or_default().to_ascii_lowercase();
    let name = normalize(&eco, name);
    (eco, name)
}

fn percent_decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The OSV package a purl names and the version it gives, if its type maps to an ecosystem.
pub fn purl_package(purl: &str) -> Option<(PackageKey, Option<String>)> {
    let rest = purl.strip_prefix("pkg:")?;
    let rest = rest.split(['#', '?']).next()?;
    let (path, version) = match rest.rsplit_once('@') {
        Some((p, v)) if !p.is_empty() => (p, Some(percent_decode(v))),
        _ => (rest, None),
    };
    let (kind, name_path) = path.split_once('/')?;
    let segments: Vec<String> =
        name_path.split('/').filter(|s| !s.is_empty()).map(percent_decode).collect();
    let (name, namespace) = segments.split_last()?;
    let eco = match kind.to_ascii_lowercase().as_str() {
        "pypi" => "PyPI",
        "npm" => "npm",
        "cargo" => "crates.io",
        "golang" => "Go",
        "maven" => "Maven",
        "gem" => "RubyGems",
        "nuget" => "NuGet",
        "composer" => "Packagist",
        "hex" => "Hex",
        "pub" => "Pub",
        _ => return None,
    };
    let full = match eco {
        "Maven" if !namespace.is_empty() => format!("{}:{name}", namespace.join(".")),
        "npm" | "Go" | "Packagist" if !namespace.is_empty() => {
            format!("{}/{name}", namespace.join("/"))
        }
        _ => name.clone(),
    };
    Some((key(eco, &full), version))
}

/// An OSV record, as much of it as the gate reads.
#[derive(Debug, Clone, Deserialize)]
pub struct OsvRecord {
    /// Its id (`GHSA-…`, `PYSEC-…`, `RUSTSEC-…`).
    pub id: String,
    /// Other ids for the same vulnerability (often a CVE).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// One line on what it is.
    #[serde(default)]
    pub summary: Option<String>,
    /// When it was withdrawn, if it was (withdrawn records never match).
    #[serde(default)]
    pub withdrawn: Option<String>,
    #[serde(default)]
    affected: Vec<Affected>,
    #[serde(default)]
    severity: Vec<ScoreEntry>,
    #[serde(default)]
    database_specific: Option<Value>,
}

#[derive(Debug, Clone, Deserialize)]
struct Affected {
    #[serde(default)]
    package: Option<OsvPackage>,
    #[serde(default)]
    ranges: Vec<OsvRange>,
    #[serde(default)]
    versions: Vec<String>,
    #[serde(default)]
    ecosystem_specific: Option<Value>,
    #[serde(default)]
    database_specific: Option<Value>,
    #[serde(default)]
    severity: Vec<ScoreEntry>,
}

#[derive(Debug, Clone, Deserialize)]
struct OsvPackage {
    ecosystem: String,
    name: String,
}

#[derive(Debug, Clone, Deserialize)]
struct OsvRange {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    events: Vec<Event>,
}

#[derive(Debug, Clone, Deserialize)]
struct Event {
    #[serde(default)]
    introduced: Option<String>,
    #[serde(default)]
    fixed: Option<String>,
    #[serde(default)]
    last_affected: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct ScoreEntry {
    #[serde(rename = "type")]
    kind: String,
    score: String,
}

fn rating_in(v: &Option<Value>) -> Option<Severity> {
    v.as_ref().and_then(|v| v["severity"].as_str()).and_then(Severity::parse)
}

fn rating_of(scores: &[ScoreEntry]) -> Option<Severity> {
    scores
        .iter()
        .filter(|s| s.kind.starts_with("CVSS_V3"))
        .filter_map(|s| cvss3_base_score(&s.score))
        .filter_map(Severity::from_score)
        .max()
}

impl OsvRecord {
    /// Its rating for one affected entry: the database's own, else the highest CVSS v3 base
    /// score; `None` when neither is given (the gate then treats it as failing).
    fn rating(&self, a: &Affected) -> Option<Severity> {
        rating_in(&a.ecosystem_specific)
            .or_else(|| rating_in(&a.database_specific))
            .or_else(|| rating_in(&self.database_specific))
            .or_else(|| rating_of(&a.severity))
            .or_else(|| rating_of(&self.severity))
    }
}

/// The CVSS v3.x base score of a vector (`CVSS:3.1/AV:N/AC:L/…`), or `None` if it is not one.
pub fn cvss3_base_score(vector: &str) -> Option<f64> {
    let mut parts = vector.split('/');
    if !parts.next()?.starts_with("CVSS:3") {
        return None;
    }
    let m: HashMap<&str, &str> = parts.filter_map(|p| p.split_once(':')).collect();
    let changed = match *m.get("S")? {
        "U" => false,
        "C" => true,
        _ => return None,
    };
    let av = match *m.get("AV")? {
        "N" => 0.85,
        "A" => 0.62,
        "L" => 0.55,
        "P" => 0.2,
        _ => return None,
    };
    let ac = match *m.get("AC")? {
        "L" => 0.77,
        "H" => 0.44,
        _ => return None,
    };
    let pr = match (*m.get("PR")?, changed) {
        ("N", _) => 0.85,
        ("L", false) => 0.62,
        ("L", true) => 0.68,
        ("H", false) => 0.27,
        ("H", true) => 0.5,
        _ => return None,
    };
    let ui = match *m.get("UI")? {
        "N" => 0.85,
        "R" => 0.62,
        _ => return None,
    };
    let cia = |k: &str| match *m.get(k)? {
        "H" => Some(0.56),
        "L" => Some(0.22),
        "N" => Some(0.0),
        _ => None,
    };
    let iss = 1.0 - (1.0 - cia("C")?) * (1.0 - cia("I")?) * (1.0 - cia("A")?);
    let impact =
        if changed { 7.52 * (iss - 0.029) - 3.25 * (iss - 0.02f64).powi(15) } else { 6.42 * iss };
    if impact <= 0.0 {
        return Some(0.0);
    }
    let exploitability = 8.22 * av * ac * pr * ui;
    let raw = if changed { 1.08 * (impact + exploitability) } else { impact + exploitability };
    Some(round_up(raw.min(10.0)))
}

/// CVSS v3.1's round-up to one decimal.
fn round_up(x: f64) -> f64 {
    let i = (x * 100_000.0).round() as i64;
    if i % 10_000 == 0 { i as f64 / 100_000.0 } else { ((i / 10_000) + 1) as f64 / 10.0 }
}

/// One segment of a version, for ordering.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Segment {
    /// A pre-release word (`dev`, `alpha`/`a`, `beta`/`b`, `rc`/`c`/`pre`), ranked.
    Pre(u8),
    /// The end of a version.
    End,
    /// A number.
    Num(u128),
    /// Any other word (after the end: `1.0.post1` > `1.0`).
    Word(String),
}

fn segments(v: &str) -> Vec<Segment> {
    let v = v.trim().trim_start_matches(['v', 'V']);
    // Build metadata does not order (semver).
    let v = v.split('+').next().unwrap_or_default();
    let mut out = Vec::new();
    let mut chars = v.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_ascii_digit() {
            let mut n = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_ascii_digit()) {
                n.push(d);
                chars.next();
            }
            out.push(Segment::Num(n.parse().unwrap_or(u128::MAX)));
        } else if c.is_alphabetic() {
            let mut w = String::new();
            while let Some(&d) = chars.peek().filter(|d| d.is_alphabetic()) {
                w.extend(d.to_lowercase());
                chars.next();
            }
            out.push(match w.as_str() {
                "dev" | "snapshot" => Segment::Pre(0),
                "alpha" | "a" => Segment::Pre(1),
                "beta" | "b" => Segment::Pre(2),
                "pre" | "c" | "rc" | "cr" => Segment::Pre(3),
                "final" | "ga" | "release" => continue,
                _ => Segment::Word(w),
            });
        } else {
            chars.next();
        }
    }
    out
}

/// Compares two versions segment by segment (numbers numerically, pre-releases before the
/// release they lead to); the order OSV's `ECOSYSTEM` and `SEMVER` ranges use, closely enough
/// for the ecosystems named above.
pub fn compare_versions(a: &str, b: &str) -> std::cmp::Ordering {
    let (a, b) = (segments(a), segments(b));
    let n = a.len().max(b.len());
    for i in 0..n {
        let x = a.get(i).unwrap_or(&Segment::End);
        let y = b.get(i).unwrap_or(&Segment::End);
        // 1.0 == 1.0.0: a missing number is a zero.
        if matches!((x, y), (Segment::End, Segment::Num(0)) | (Segment::Num(0), Segment::End)) {
            continue;
        }
        match x.cmp(y) {
            std::cmp::Ordering::Equal => {}
            o => return o,
        }
    }
    std::cmp::Ordering::Equal
}

fn in_range(version: &str, r: &OsvRange) -> bool {
    use std::cmp::Ordering::*;
    if r.kind != "SEMVER" && r.kind != "ECOSYSTEM" {
        return false;
    }
    let at = |e: &Event| -> String {
        e.introduced.clone().or(e.fixed.clone()).or(e.last_affected.clone()).unwrap_or_default()
    };
    let mut events: Vec<&Event> = r.events.iter().collect();
    events.sort_by(|x, y| {
        let (x, y) = (at(x), at(y));
        match (x.as_str(), y.as_str()) {
            ("0", "0") => Equal,
            ("0", _) => Less,
            (_, "0") => Greater,
            _ => compare_versions(&x, &y),
        }
    });
    let mut affected = false;
    for e in events {
        if let Some(i) = &e.introduced {
            if i == "0" || compare_versions(version, i) != Less {
                affected = true;
            }
        } else if let Some(f) = &e.fixed {
            if compare_versions(version, f) != Less {
                affected = false;
            }
        } else if let Some(l) = &e.last_affected
            && compare_versions(version, l) == Greater
        {
            affected = false;
        }
    }
    affected
}

fn fixed_in(a: &Affected) -> Option<String> {
    a.ranges.iter().flat_map(|r| &r.events).filter_map(|e| e.fixed.clone()).next()
}

/// OSV records by the package they affect.
#[derive(Debug, Default)]
pub struct OsvIndex {
    by_package: HashMap<PackageKey, Vec<(usize, usize)>>,
    records: Vec<OsvRecord>,
}

impl OsvIndex {
    /// Indexes `records` (withdrawn ones are left out).
    pub fn new(records: impl IntoIterator<Item = OsvRecord>) -> OsvIndex {
        let mut index = OsvIndex::default();
        for rec in records.into_iter().filter(|r| r.withdrawn.is_none()) {
            let n = index.records.len();
            for (j, a) in rec.affected.iter().enumerate() {
                if let Some(p) = &a.package {
                    index.by_package.entry(key(&p.ecosystem, &p.name)).or_default().push((n, j));
                }
            }
            index.records.push(rec);
        }
        index
    }

    /// How many records it holds.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// A waiver of one finding, granted by an approver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiver {
    /// The vulnerability's id or one of its aliases (a CVE).
    pub finding: String,
    /// Why it is acceptable.
    pub reason: String,
    /// Until when.
    pub expires: DateTime<Utc>,
    /// Who granted it.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// One vulnerability affecting one component.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The record's id.
    pub id: String,
    /// Its aliases.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// The component (name@version).
    pub component: String,
    /// The rating; `None` when the record gives none (judged as failing).
    pub severity: Option<Severity>,
    /// The record's summary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// The first fixed version the record names, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<String>,
    /// Whether it fails the gate (at or above `fail_on`, or unrated, and not waived).
    pub blocking: bool,
    /// The waiver that covers it, if one does and has not expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waived: Option<Waiver>,
    /// A waiver that covered it and has expired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver_expired: Option<Waiver>,
}

/// The gate's verdict on one SBOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Assessment {
    /// Whether the gate passes.
    pub passed: bool,
    /// The SBOM's format.
    pub format: &'static str,
    /// How many components it lists.
    pub components: usize,
    /// Components without a purl in a known ecosystem: not checked (name@version).
    pub unmatched: Vec<String>,
    /// Every finding, blocking ones first, then by severity.
    pub findings: Vec<Finding>,
    /// The threshold.
    pub fail_on: Severity,
}

impl Assessment {
    /// One line for people: what blocks, or that nothing does.
    pub fn summary(&self) -> String {
        let blocking: Vec<String> = self
            .findings
            .iter()
            .filter(|f| f.blocking)
            .map(|f| {
                let sev = f.severity.map_or("unrated".to_owned(), |s| s.to_string());
                format!("{} in {} ({sev})", f.id, f.component)
            })
            .collect();
        let waived = self.findings.iter().filter(|f| f.waived.is_some()).count();
        if blocking.is_empty() {
            format!(
                "no vulnerability at or above {} among {} components ({} findings, {waived} waived)",
                self.fail_on,
                self.components,
                self.findings.len()
            )
        } else {
            format!(
                "{} finding(s) at or above {}: {}",
                blocking.len(),
                self.fail_on,
                blocking.join(", ")
            )
        }
    }
}

/// Judges `sbom` against `index`: a finding at or above `fail_on` (or unrated) blocks unless an
/// unexpired waiver names its id or an alias.
pub fn assess(
    sbom: &Sbom,
    index: &OsvIndex,
    fail_on: Severity,
    waivers: &[Waiver],
    now: DateTime<Utc>,
) -> Assessment {
    let mut findings = Vec::new();
    let mut unmatched = Vec::new();
    for c in &sbom.components {
        let package = c.purl.as_deref().and_then(purl_package);
        let Some((pkey, purl_version)) = package else {
            unmatched.push(format!("{}@{}", c.name, c.version));
            continue;
        };
        let version =
            if c.version.is_empty() { purl_version.unwrap_or_default() } else { c.version.clone() };
        for &(n, j) in index.by_package.get(&pkey).into_iter().flatten() {
            let rec = &index.records[n];
            let a = &rec.affected[j];
            let listed = a.versions.iter().any(|v| v == &version);
            if !listed && !a.ranges.iter().any(|r| in_range(&version, r)) {
                continue;
            }
            let severity = rec.rating(a);
            let names = |w: &&Waiver| {
                w.finding.eq_ignore_ascii_case(&rec.id)
                    || rec.aliases.iter().any(|al| w.finding.eq_ignore_ascii_case(al))
            };
            let waived = waivers.iter().filter(names).find(|w| w.expires > now).cloned();
            let waiver_expired = match waived {
                Some(_) => None,
                None => waivers.iter().filter(names).max_by_key(|w| w.expires).cloned(),
            };
            let at_or_above = severity.is_none_or(|s| s >= fail_on);
            findings.push(Finding {
                id: rec.id.clone(),
                aliases: rec.aliases.clone(),
                component: format!("{}@{version}", c.name),
                severity,
                summary: rec.summary.clone(),
                fixed: fixed_in(a),
                blocking: at_or_above && waived.is_none(),
                waived,
                waiver_expired,
            });
        }
    }
    findings.sort_by(|a, b| {
        (b.blocking, b.severity.is_none(), b.severity, &a.id).cmp(&(
            a.blocking,
            a.severity.is_none(),
            a.severity,
            &b.id,
        ))
    });
    findings.dedup_by(|a, b| a.id == b.id && a.component == b.component);
    let passed = !findings.iter().any(|f| f.blocking);
    Assessment {
        passed,
        format: sbom.format,
        components: sbom.components.len(),
        unmatched,
        findings,
        fail_on,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cmp::Ordering::*;

    fn record(v: Value) -> OsvRecord {
        serde_json::from_value(v).unwrap()
    }

    /// GHSA-9wx4-h78v-vm56 as osv.dev serves it (requests, CVE-2024-35195), trimmed.
    fn requests_record() -> OsvRecord {
        record(json!({
            "id": "GHSA-9wx4-h78v-vm56",
            "aliases": ["CVE-2024-35195"],
            "summary": "Requests `Session` object does not verify requests after making first request with verify=False",
            "affected": [{
                "package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
                "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}],
                "database_specific": {"source": "https://github.com/github/advisory-database"}
            }],
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"}],
            "database_specific": {"severity": "MODERATE", "cwe_ids": ["CWE-670"]}
        }))
    }

    fn sbom(purls: &[(&str, &str, &str)]) -> Sbom {
        let doc = json!({
            "bomFormat": "CycloneDX", "specVersion": "1.5",
            "components": purls.iter().map(|(n, v, p)| json!({"type": "library", "name": n, "version": v, "purl": p})).collect::<Vec<_>>()
        });
        parse_sbom(&doc).unwrap()
    }

    fn now() -> DateTime<Utc> {
        "2026-12-01T00:00:00Z".parse().unwrap()
    }

    #[test]
    fn cvss_base_scores_match_the_calculator() {
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), Some(9.8));
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), Some(10.0));
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"), Some(5.6));
        assert_eq!(cvss3_base_score("CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N"), Some(5.4));
        assert_eq!(cvss3_base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), Some(0.0));
        assert_eq!(Severity::from_score(0.0), Some(Severity::Low), "scored, not unrated");
        assert_eq!(cvss3_base_score("CVSS:4.0/AV:N"), None);
    }

    #[test]
    fn versions_order_as_ecosystems_do() {
        assert_eq!(compare_versions("2.31.0", "2.32.0"), Less);
        assert_eq!(compare_versions("2.32", "2.32.0"), Equal);
        assert_eq!(compare_versions("1.0.0-rc.1", "1.0.0"), Less);
        assert_eq!(compare_versions("1.0a1", "1.0b2"), Less);
        assert_eq!(compare_versions("1.0.post1", "1.0"), Greater);
        assert_eq!(compare_versions("v1.10.0", "1.9.9"), Greater);
        assert_eq!(compare_versions("1.0.0.Final", "1.0.0"), Equal);
    }

    #[test]
    fn purls_name_osv_packages() {
        let k = |p: &str| purl_package(p).map(|(k, v)| (k.0, k.1, v));
        assert_eq!(
            k("pkg:pypi/Django_REST.framework@3.0"),
            Some(("pypi".into(), "django-rest-framework".into(), Some("3.0".into())))
        );
        assert_eq!(
            k("pkg:npm/%40babel/traverse@7.23.1"),
            Some(("npm".into(), "@babel/traverse".into(), Some("7.23.1".into())))
        );
        assert_eq!(
            k("pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1?type=jar"),
            Some((
                "maven".into(),
                "org.apache.logging.log4j:log4j-core".into(),
                Some("2.14.1".into())
            ))
        );
        assert_eq!(
            k("pkg:golang/github.com/gin-gonic/gin@v1.9.0").unwrap().1,
            "github.com/gin-gonic/gin"
        );
        assert_eq!(k("pkg:generic/openssl@3.0"), None);
        assert_eq!(k("not a purl"), None);
    }

    #[test]
    fn an_affected_component_blocks_at_or_above_the_threshold() {
        let index = OsvIndex::new([requests_record()]);
        let old = sbom(&[("requests", "2.31.0", "pkg:pypi/requests@2.31.0")]);
        let a = assess(&old, &index, Severity::Medium, &[], now());
        assert!(!a.passed, "{a:?}");
        assert_eq!(a.findings[0].severity, Some(Severity::Medium), "the database's own rating");
        assert_eq!(a.findings[0].fixed.as_deref(), Some("2.32.0"));
        assert!(
            a.summary().contains("GHSA-9wx4-h78v-vm56 in requests@2.31.0 (medium)"),
            "{}",
            a.summary()
        );
        // Above its rating, it is listed and does not block.
        let a = assess(&old, &index, Severity::High, &[], now());
        assert!(a.passed && a.findings.len() == 1);
        // The fixed version is not affected.
        let new = sbom(&[("requests", "2.32.0", "pkg:pypi/requests@2.32.0")]);
        assert!(assess(&new, &index, Severity::Low, &[], now()).findings.is_empty());
    }

    #[test]
    fn waivers_cover_a_finding_until_they_expire() {
        let index = OsvIndex::new([requests_record()]);
        let old = sbom(&[("requests", "2.31.0", "pkg:pypi/requests@2.31.0")]);
        let w = Waiver {
            finding: "cve-2024-35195".into(),
            reason: "verify=False is never used".into(),
            expires: "2026-12-31T00:00:00Z".parse().unwrap(),
            by: "bob".into(),
            at: now(),
        };
        let a = assess(&old, &index, Severity::Low, std::slice::from_ref(&w), now());
        assert!(a.passed);
        assert_eq!(a.findings[0].waived.as_ref().map(|w| w.by.as_str()), Some("bob"));
        let later = "2027-01-01T00:00:00Z".parse().unwrap();
        let a = assess(&old, &index, Severity::Low, &[w], later);
        assert!(!a.passed);
        assert!(a.findings[0].waiver_expired.is_some());
    }

    #[test]
    fn unrated_findings_block_and_unmatched_components_are_named() {
        let rec = record(json!({"id": "RUSTSEC-2099-0001", "affected": [{
            "package": {"ecosystem": "crates.io", "name": "Foo"},
            "versions": ["1.2.3"]}]}));
        let index = OsvIndex::new([rec]);
        let s = sbom(&[("foo", "1.2.3", "pkg:cargo/foo@1.2.3"), ("libc6", "2.36", "")]);
        let a = assess(&s, &index, Severity::Critical, &[], now());
        assert!(!a.passed);
        assert_eq!(a.findings[0].severity, None);
        assert_eq!(a.unmatched, vec!["libc6@2.36".to_owned()]);
    }

    #[test]
    fn spdx_packages_are_read_with_their_purls() {
        let doc = json!({"spdxVersion": "SPDX-2.3", "packages": [
            {"name": "lodash", "versionInfo": "4.17.20", "externalRefs": [
                {"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl", "referenceLocator": "pkg:npm/lodash@4.17.20"}]}]});
        let s = parse_sbom(&doc).unwrap();
        assert_eq!(
            (s.format, s.components[0].purl.as_deref()),
            ("SPDX", Some("pkg:npm/lodash@4.17.20"))
        );
        assert!(parse_sbom(&json!({"hello": 1})).is_err());
    }

    #[test]
    fn last_affected_and_reintroduced_ranges() {
        let rec = record(
            json!({"id": "X-1", "database_specific": {"severity": "HIGH"}, "affected": [{
            "package": {"ecosystem": "npm", "name": "left"},
            "ranges": [{"type": "SEMVER", "events": [
                {"introduced": "1.0.0"}, {"fixed": "1.2.0"}, {"introduced": "2.0.0"}, {"last_affected": "2.1.0"}]}]}]}),
        );
        let index = OsvIndex::new([rec]);
        let hit = |v: &str| {
            let s = sbom(&[("left", v, &format!("pkg:npm/left@{v}"))]);
            !assess(&s, &index, Severity::Low, &[], now()).findings.is_empty()
        };
        assert_eq!(
            ["0.9.0", "1.0.0", "1.1.9", "1.2.0", "1.9.0", "2.0.0", "2.1.0", "2.1.1"].map(hit),
            [false, true, true, false, false, true, true, false]
        );
    }

    proptest::proptest! {
        #[test]
        fn any_version_text_orders_without_panicking(a in ".{0,40}", b in ".{0,40}") {
            proptest::prop_assert_eq!(compare_versions(&a, &b), compare_versions(&b, &a).reverse());
        }

        #[test]
        fn any_purl_or_vector_is_read_or_refused(p in ".{0,80}") {
            let _ = purl_package(&p);
            let _ = cvss3_base_score(&p);
        }
    }
}
