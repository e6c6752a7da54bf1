//! `wavegate rollout …`: start (now or `--at`), status, watch, explain, list, and people's
//! commands (approve, reject, pause, resume, rollback), and which tokens' contributions count
//! (contributions, exclude, include).

use std::process::ExitCode;

use chrono::{DateTime, Utc};
use reqwest::Method;
use serde::Serialize;
use wavegate_api::reports::SuccessReport;
use wavegate_api::rollouts::{
    Contributions, Phase, Rollout, RolloutCommand as Command, RolloutState, RolloutVerdicts,
    Scheduled, StartRollout, Verdict,
};
use wavegate_rollout::plan::GuardrailSpec;
use wavegate_rollout::stats::{Moments, judge, srm};

use crate::cli::{Remote, RolloutCommand};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::{file_digests, read_text};
use crate::output::{answer, float, or_dash, print_json, time};

/// Runs `wavegate rollout …`.
pub async fn run(cmd: RolloutCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
    let mut item = None;
    let (path, reason, token) = match cmd {
        RolloutCommand::Start { plan, reason, artifact, signature, sbom, at } => {
            let mut body = StartRollout {
                plan: plan.clone(),
                reason,
                start_at: at.clone(),
                ..StartRollout::default()
            };
            if let Some(file) = &artifact {
                let digests = file_digests(file)?;
                // The signature given, or the one minisign writes beside the file.
                let beside = std::path::PathBuf::from(format!("{}.minisig", file.display()));
                let signature = signature.or_else(|| beside.is_file().then_some(beside));
                if let Some(sig) = signature {
                    body.artifact_signature = Some(read_text(&sig)?);
                    body.artifact_blake2b = Some(digests.blake2b);
                }
                body.artifact_sha256 = Some(digests.sha256);
            }
            if let Some(file) = &sbom {
                body.sbom = Some(sbom_components(file)?);
            }
            let rb = c.request(Method::POST, "/api/v1/rollouts").json(&body);
            if at.is_some() {
                answer(remote.json, &c.call::<Scheduled>(rb).await?, |s| {
                    println!("scheduled: {plan} starts at {}", time(&s.scheduled.start_at))
                });
            } else {
                answer(remote.json, &c.call::<Rollout>(rb).await?, |r| {
                    print!("started ");
                    print_rollout(r)
                });
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Status { id } => {
            let a = c.get::<Rollout>(&format!("/api/v1/rollouts/{}", enc(&id))).await?;
            answer(remote.json, &a, print_status);
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Watch { id, interval } => return watch(&c, remote, &id, &interval).await,
        RolloutCommand::Explain { id, wave } => return explain(&c, remote, &id, wave).await,
        RolloutCommand::List { state, environment } => {
            let mut q = Vec::new();
            if let Some(st) = state {
                q.push(format!("state={}", enc(&st)));
            }
            if let Some(e) = environment {
                q.push(format!("environment={}", enc(&e)));
            }
            let a = c.get::<Vec<Rollout>>(&format!("/api/v1/rollouts?{}", q.join("&"))).await?;
            answer(remote.json, &a, |list| list.iter().for_each(print_rollout));
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Contributions { id } => {
            let path = format!("/api/v1/rollouts/{}/contributions", enc(&id));
            answer(remote.json, &c.get::<Contributions>(&path).await?, print_contributions);
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Approve { id, reason } => (format!("{}/approve", enc(&id)), reason, None),
        RolloutCommand::Reject { id, reason } => {
            (format!("{}/reject", enc(&id)), Some(reason), None)
        }
        RolloutCommand::Pause { id, reason } => (format!("{}/pause", enc(&id)), Some(reason), None),
        RolloutCommand::Resume { id, reason } => (format!("{}/resume", enc(&id)), reason, None),
        RolloutCommand::Rollback { id, reason } => {
            (format!("{}/rollback", enc(&id)), Some(reason), None)
        }
        RolloutCommand::Exclude { id, token_id, reason } => {
            (format!("{}/exclude", enc(&id)), Some(reason), Some(token_id))
        }
        RolloutCommand::Include { id, token_id, reason } => {
            (format!("{}/include", enc(&id)), reason, Some(token_id))
        }
        RolloutCommand::CloseItem { id, item: what, reason } => {
            item = Some(what);
            (format!("{}/close-item", enc(&id)), reason, None)
        }
        RolloutCommand::Success { id } => {
            let path = format!("/api/v1/rollouts/{}/success", enc(&id));
            answer(remote.json, &c.get::<SuccessReport>(&path).await?, print_success);
            return Ok(ExitCode::SUCCESS);
        }
    };
    let rb = c.request(Method::POST, &format!("/api/v1/rollouts/{path}")).json(&Command {
        reason,
        token,
        item,
    });
    answer(remote.json, &c.call::<Rollout>(rb).await?, print_rollout);
    Ok(ExitCode::SUCCESS)
}

/// `rollout success`: one line per target.
fn print_success(s: &SuccessReport) {
    if s.targets.is_empty() {
        println!("{}: its plan sets no success target (success_metrics with a target)", s.rollout);
    }
    for t in &s.targets {
        let interval = t
            .interval
            .as_ref()
            .map(|(low, high)| format!(" [{}, {}]", float(*low), float(*high)))
            .unwrap_or_default();
        println!(
            "{:<9} {} {} ({}) by {}: {}{}",
            t.status.as_str(),
            t.metric,
            t.target,
            t.cohort,
            t.deadline.format("%Y-%m-%d"),
            t.evidence,
            interval
        );
    }
}

/// `rollout contributions`: one block per token, its cells below.
fn print_contributions(c: &Contributions) {
    if c.tokens.is_empty() {
        println!("no events have been counted for {} yet", c.id);
    }
    for t in &c.tokens {
        let who = match (&t.principal, &t.kind) {
            (Some(p), Some(k)) => format!("{p} ({})", k.as_str()),
            _ if t.token.is_empty() => "counted before contributions were kept per token".into(),
            _ => "unknown token".into(),
        };
        let mut marks = Vec::new();
        if t.revoked {
            marks.push("revoked");
        }
        if t.excluded {
            marks.push("EXCLUDED from verdicts");
        }
        let marks =
            if marks.is_empty() { String::new() } else { format!("  [{}]", marks.join(", ")) };
        println!(
            "{}  {who}  last {}{marks}",
            or_dash(Some(&t.token).filter(|s| !s.is_empty())),
            time(&t.last_at)
        );
        for cell in &t.cells {
            println!(
                "  wave {:<3} {:<10} {:<14} n={}",
                cell.wave,
                cell.arm,
                cell.metric,
                float(cell.n)
            );
        }
    }
}

/// One rollout in a line, with its reason and blackout below.
fn print_rollout(r: &Rollout) {
    let phase = r.phase.map(|p| format!(" ({p})")).unwrap_or_default();
    println!(
        "{}  {}{phase}  wave {}/{} at {}  flag {} in {}  plan {} v{}  requested by {}",
        r.id,
        r.state,
        r.wave,
        r.waves,
        or_dash(r.exposure.as_deref()),
        r.flag,
        r.environment,
        r.plan,
        r.plan_version,
        r.requester
    );
    if let Some(reason) = &r.reason {
        println!("  reason: {reason}");
    }
    if let Some(b) = &r.blackout {
        println!("  held by blackout window {b}");
    }
    for e in &r.excluded_tokens {
        println!("  excluded token {} (by {} at {}: {})", e.token, e.by, time(&e.at), e.reason);
    }
}

/// `rollout status`: the rollout, its latest verdicts, the current wave's latency and signals.
/// The components of the SBOM in `file` (CycloneDX or SPDX JSON) as a CycloneDX document with
/// only what the vulnerability check reads (name, version, package URL), so a large SBOM fits
/// a request.
fn sbom_components(file: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = read_text(file)?;
    let doc: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Failure::Input(format!("--sbom {}: not JSON: {e}", file.display())))?;
    let sbom = wavegate_rollout::vulns::parse_sbom(&doc)
        .map_err(|e| Failure::Input(format!("--sbom {}: {e}", file.display())))?;
    Ok(serde_json::json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "metadata": {"properties": [{"name": "wavegate:source-format", "value": sbom.format}]},
        "components": sbom.components,
    }))
}

fn print_status(r: &Rollout) {
    print_rollout(r);
    if let Some(name) = &r.release_run {
        println!("  member of release {name} (wavegate release status {name})");
    }
    if let Some(a) = &r.artifact {
        println!(
            "  artifact signed by key {} ({} key), verified at start: {}",
            a.key_id, a.key_source, a.trusted_comment
        );
    }
    for vd in r.verdicts.iter().flatten() {
        let explanation = or_dash(vd.explanation());
        println!("  wave {} {:<16} {:<12} {explanation}", vd.wave, vd.name, vd.verdict);
    }
    for l in r.latency.iter().flatten() {
        let q = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.1}"));
        println!(
            "  latency {:<10} n={} p50={} p95={} p99={} ms",
            l.arm,
            l.count,
            q(l.p50),
            q(l.p95),
            q(l.p99)
        );
    }
    for sig in r.signals.iter().flatten() {
        println!(
            "  signal {:<10} {:<12} n={} mean={:.4}",
            sig.arm,
            sig.metric,
            float(sig.n),
            sig.mean
        );
    }
}

/// One stored verdict, recomputed (`rollout explain`; its `--json` lists these).
#[derive(Debug, Serialize)]
struct Explained<'a> {
    at: DateTime<Utc>,
    wave: i64,
    name: &'a str,
    stored: &'a str,
    recomputed: String,
    reproduced: bool,
    numbers: String,
}

/// `rollout explain`: recomputes each stored guardrail verdict with the same code the
/// controller ran, from the stored inputs, and reports whether it reproduces.
async fn explain(
    c: &Client,
    remote: &Remote,
    id: &str,
    wave: Option<i64>,
) -> anyhow::Result<ExitCode> {
    let mut path = format!("/api/v1/rollouts/{}/verdicts", enc(id));
    if let Some(w) = wave {
        path.push_str(&format!("?wave={w}"));
    }
    let v: RolloutVerdicts = c.get(&path).await?.body;
    let guardrails = v.guardrail_specs()?;
    let out: Vec<Explained<'_>> =
        v.verdicts.iter().filter_map(|vd| recompute(vd, &guardrails, v.srm_alpha)).collect();
    let mismatches = out.iter().filter(|e| !e.reproduced).count();
    if remote.json {
        print_json(
            &serde_json::json!({"id": id, "state": v.state, "verdicts": out, "mismatches": mismatches}),
        );
    } else {
        for e in &out {
            let mark = if e.reproduced { "reproduced" } else { "DOES NOT REPRODUCE" };
            println!("{}  wave {}  {:<14} {:<12} {mark}", time(&e.at), e.wave, e.name, e.stored);
            println!("    {}", e.numbers);
        }
        println!("{} verdict(s), {} not reproduced; rollout is {}", out.len(), mismatches, v.state);
    }
    Ok(if mismatches == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// A stored verdict judged again from its stored inputs (`None`: not a sample-ratio check
/// nor one of the plan's guardrails).
fn recompute<'a>(
    vd: &'a Verdict,
    guardrails: &[GuardrailSpec],
    srm_alpha: f64,
) -> Option<Explained<'a>> {
    let (recomputed, numbers) = if vd.kind == "srm" {
        let (t, ctl, share) =
            vd.srm_report().map_or((0.0, 0.0, 0.0), |r| (r.treatment, r.control, r.expected_share));
        let again = srm(t, ctl, share, srm_alpha);
        let verdict = if again.mismatch { "mismatch" } else { "ok" };
        (
            verdict.to_owned(),
            format!(
                "treatment {t} vs control {ctl}, planned share {}, log LR {:.3} (threshold {:.3})",
                again.expected_share,
                again.log_lr,
                (1.0 / srm_alpha).ln()
            ),
        )
    } else {
        let g = guardrails.iter().find(|g| g.name == vd.name)?;
        let (t, ctl): (Moments, Moments) =
            vd.guardrail_report().map_or_else(Default::default, |r| (r.treatment, r.control));
        let again = judge(g, &t, &ctl);
        let f = |x: Option<f64>| x.map_or("-".to_owned(), |x| format!("{x:.5}"));
        (
            again.verdict.as_str().to_owned(),
            format!(
                "treatment n={} mean={:.5}, control n={} mean={:.5}; harm estimate {} in [{}, {}] (α={}); SPRT log Λ = {} (fail at ≥ {}); pass if upper < {} → {}",
                again.treatment.n,
                again.treatment.mean(),
                again.control.n,
                again.control.mean(),
                f(again.estimate),
                f(again.lower),
                f(again.upper),
                again.alpha,
                f(again.log_lr),
                f(again.threshold),
                again.tolerance,
                again.explanation
            ),
        )
    };
    Some(Explained {
        at: vd.at,
        wave: vd.wave,
        name: &vd.name,
        stored: &vd.verdict,
        reproduced: recomputed == vd.verdict,
        recomputed,
        numbers,
    })
}

/// `rollout watch`: redraws the rollout's state until it ends (exit 0 when it completes,
/// 1 when it is rolled back or aborted). With `--json`, prints one status object per change.
async fn watch(c: &Client, remote: &Remote, id: &str, interval: &str) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    let every = crate::input::parse_tick(interval)
        .map_err(|e| Failure::Input(e.replace("--tick", "--interval")))?;
    let tty = std::io::stdout().is_terminal() && !remote.json;
    let mut last = String::new();
    loop {
        let a = c.get::<Rollout>(&format!("/api/v1/rollouts/{}", enc(id))).await?;
        let view = if remote.json { serde_json::to_string(&a.raw)? } else { render(&a.body) };
        if view != last {
            let mut out = std::io::stdout().lock();
            if tty {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "{view}")?;
            out.flush()?;
            last = view;
        }
        match a.body.state {
            RolloutState::Completed => return Ok(ExitCode::SUCCESS),
            RolloutState::RolledBack | RolloutState::Aborted => return Ok(ExitCode::from(1)),
            RolloutState::Running | RolloutState::Paused => tokio::time::sleep(every).await,
        }
    }
}

/// The watch view: where the rollout is, an exposure bar, the current wave's verdicts.
fn render(r: &Rollout) -> String {
    let pct = r.exposure_percent().unwrap_or(0.0);
    let filled = ((pct / 100.0) * 40.0).round() as usize;
    let bar = format!(
        "[{}{}] {}",
        "#".repeat(filled),
        "-".repeat(40 - filled.min(40)),
        or_dash(r.exposure.as_deref())
    );
    let phase = r.phase.map(|p| format!(" ({p})")).unwrap_or_default();
    let mut lines = vec![
        format!(
            "rollout {}  plan {} v{}  flag {} in {}",
            r.id, r.plan, r.plan_version, r.flag, r.environment
        ),
        format!("state {}{phase}  wave {}/{}  {bar}", r.state, r.wave, r.waves),
    ];
    if let Some(reason) = &r.reason {
        lines.push(format!("reason: {reason}"));
    }
    if let Some(b) = &r.blackout {
        lines.push(format!("held by blackout {b}"));
    }
    if r.phase == Some(Phase::AwaitingApproval) {
        lines.push(format!(
            "waiting for {} approval(s); have {}",
            r.approvals_needed,
            r.approvals.len()
        ));
    }
    for vd in r.current_verdicts() {
        let progress = vd
            .guardrail_report()
            .map(|g| format!(" n={}/{}", g.treatment.n, g.control.n))
            .unwrap_or_default();
        lines.push(format!(
            "  {:<16} {:<12}{progress}  {}",
            vd.name,
            vd.verdict,
            vd.explanation().unwrap_or("")
        ));
    }
    lines.join("\n")
}
