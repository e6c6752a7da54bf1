//! The vulnerability gate's facts, gathered without a lock: the release's SBOM (sent with the
//! start, or fetched from the check's `sbom` URL through the outbound policy), the operator's
//! OSV data (`serve --osv-dir`) and the plan's waivers; judged by `wavegate_rollout::vulns`
//! into a check outcome whose evidence is kept like any check's.

use std::time::Duration;

use serde_json::{Value, json};
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{CheckSpec, CheckWhen, VulnerabilityCheck};
use wavegate_rollout::vulns::{assess, parse_sbom};

use crate::outbound::checks::CheckOutcome;
use crate::state::AppState;

/// The most bytes of an SBOM read from a URL (the body limit bounds one sent with a start).
pub const MAX_SBOM_BYTES: usize = 32 * 1024 * 1024;

/// The most findings kept in a check's evidence (the count says how many there were).
pub const MAX_FINDINGS_KEPT: usize = 50;

/// Runs the plan's vulnerability checks (before the start); `uploaded` is the SBOM sent with
/// the start, if one was.
pub async fn run(state: &AppState, r: &Rollout, uploaded: Option<&Value>) -> Vec<CheckOutcome> {
    let mut out = Vec::new();
    let wanted = r.plan.checks.iter().filter(|c| c.when.contains(&CheckWhen::BeforeStart));
    for c in wanted {
        let Some(v) = &c.vulnerabilities else { continue };
        let (passed, evidence) = match judge(state, r, c, v, uploaded).await {
            Ok(found) => found,
            Err(error) => (false, json!({"error": error})),
        };
        out.push(CheckOutcome { spec: c.clone(), passed, evidence });
    }
    out
}

async fn judge(
    state: &AppState,
    r: &Rollout,
    c: &CheckSpec,
    v: &VulnerabilityCheck,
    uploaded: Option<&Value>,
) -> Result<(bool, Value), String> {
    let osv = state.osv.as_ref().ok_or(
        "the server has no vulnerability data: start it with --osv-dir DIR (an OSV export)",
    )?;
    let fetched;
    let (doc, source) = match (&v.sbom, uploaded) {
        (Some(url), _) => {
            let timeout = Duration::from_secs(c.timeout.map_or(30, |t| t.secs().max(1)));
            fetched = fetch(state, url, timeout).await?;
            (&fetched, url.clone())
        }
        (None, Some(doc)) => (doc, "sent with the start".to_owned()),
        (None, None) => {
            return Err(
                "no SBOM: start with --sbom FILE (CycloneDX or SPDX JSON), or give the check an sbom URL"
                    .into(),
            );
        }
    };
    let sbom = parse_sbom(doc).map_err(|e| format!("the SBOM ({source}): {e}"))?;
    let indexed = osv.index().await?;
    let waivers = crate::service::waivers::list(state, &r.plan.name)
        .await
        .map_err(|e| format!("the plan's waivers cannot be read: {e}"))?;
    let a = assess(&sbom, &indexed.index, v.fail_on, &waivers, state.clock.now());
    let kept: Vec<_> = a.findings.iter().take(MAX_FINDINGS_KEPT).collect();
    let evidence = json!({
        "summary": a.summary(),
        "sbom": {"source": source, "format": a.format, "components": a.components},
        "fail_on": a.fail_on,
        "osv": {"records": indexed.index.len(), "skipped_files": indexed.skipped},
        "findings": kept,
        "findings_total": a.findings.len(),
        "unmatched": a.unmatched.iter().take(MAX_FINDINGS_KEPT).collect::<Vec<_>>(),
        "unmatched_total": a.unmatched.len(),
    });
    Ok((a.passed, evidence))
}

async fn fetch(state: &AppState, url: &str, timeout: Duration) -> Result<Value, String> {
    let request = state
        .outbound
        .guard
        .request(reqwest::Method::GET, url)
        .map_err(|e| format!("the SBOM URL: {e}"))?
        .timeout(timeout)
        .header("accept", "application/json")
        .header("user-agent", concat!("wavegate/", env!("CARGO_PKG_VERSION")));
    let resp = request
        .send()
        .await
        .map_err(|e| format!("the SBOM could not be fetched: {}", crate::outbound::failure(&e)))?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Err(format!("the SBOM could not be fetched: status {status}"));
    }
    let (text, cut) = crate::outbound::read_capped(resp, MAX_SBOM_BYTES).await;
    if cut {
        return Err(format!("the SBOM is larger than {MAX_SBOM_BYTES} bytes"));
    }
    serde_json::from_str(&text).map_err(|e| format!("the SBOM is not JSON: {e}"))
}
