//! `wavegate plan …` and `wavegate rollout …`.

use std::io::Read;
use std::process::ExitCode;

use anyhow::Context as _;
use reqwest::Method;
use serde_json::{Value, json};
use wavegate_core::text::percent_encode as enc;
use wavegate_rollout::lint::{Severity, has_errors, lint};

use crate::cli::{
    DrillArgs, FreezeCommand, PlanCommand, Remote, ReportCommand, RolloutCommand, ScorecardCommand,
};
use crate::client::Client;
use crate::commands::{Failure, need_token, print_json, s, with_reason};

fn read_file(file: &std::path::Path) -> anyhow::Result<String> {
    if file.as_os_str() == "-" {
        let mut t = String::new();
        std::io::stdin().read_to_string(&mut t).context("Failed to read standard input")?;
        return Ok(t);
    }
    std::fs::read_to_string(file)
        .map_err(|e| Failure::Input(format!("could not read {}: {e}", file.display())).into())
}

pub async fn plan(cmd: PlanCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Lint { file, traffic } => {
            if traffic.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
                return Err(Failure::Input(
                    "--traffic must be a positive number of requests per second".into(),
                )
                .into());
            }
            let text = read_file(&file)?;
            let (plan, mut findings) = lint(&text);
            let forecasts = plan
                .as_ref()
                .map(|p| wavegate_rollout::forecast::forecast(p, traffic))
                .unwrap_or_default();
            if let Some(p) = &plan {
                findings.extend(wavegate_rollout::lint::forecast_findings(p, &forecasts));
            }
            if remote.json {
                print_json(
                    &json!({"file": file.display().to_string(), "ok": !has_errors(&findings), "plan": plan.map(|p| p.name), "findings": findings, "forecast": forecasts}),
                );
            } else {
                for f in &findings {
                    let at = match (f.line, f.column) {
                        (Some(l), Some(c)) => format!("{}:{l}:{c}", file.display()),
                        (Some(l), None) => format!("{}:{l}", file.display()),
                        _ => file.display().to_string(),
                    };
                    let sev = if f.severity == Severity::Error { "error" } else { "warning" };
                    println!("{at}: {sev}[{}]: {}", f.code, f.message);
                }
                if !forecasts.is_empty() {
                    println!(
                        "forecast (Wald SPRT expected sample sizes; the always-valid test needs somewhat more):"
                    );
                    let t = |x: Option<f64>| {
                        x.map_or("-".to_owned(), |s| {
                            wavegate_rollout::duration::Span::from_secs(s.ceil() as u64).to_string()
                        })
                    };
                    let n =
                        |x: Option<f64>| x.map_or("-".to_owned(), |s| format!("{:.0}", s.ceil()));
                    for f in &forecasts {
                        match &f.note {
                            Some(note) => println!("  wave {} {:<16} {note}", f.wave, f.guardrail),
                            None => println!(
                                "  wave {} {:<16} fail at design effect ≈ {} ({} treatment samples); pass without effect ≈ {} ({} samples)",
                                f.wave,
                                f.guardrail,
                                t(f.to_fail_secs),
                                n(f.fail_samples),
                                t(f.to_pass_secs),
                                n(f.pass_samples)
                            ),
                        }
                    }
                }
                let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
                println!(
                    "{}: {errors} error(s), {} warning(s)",
                    file.display(),
                    findings.len() - errors
                );
            }
            Ok(if has_errors(&findings) { ExitCode::from(1) } else { ExitCode::SUCCESS })
        }
        PlanCommand::Apply { file, reason } => {
            need_token(remote)?;
            let text = read_file(&file)?;
            let (_, findings) = lint(&text);
            if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
                let at =
                    e.line.map(|l| format!(":{l}:{}", e.column.unwrap_or(0))).unwrap_or_default();
                return Err(Failure::Input(format!(
                    "{}{at}: {} (run `wavegate plan lint` for all findings)",
                    file.display(),
                    e.message
                ))
                .into());
            }
            let c = Client::new(remote)?;
            let rb = c
                .request(Method::POST, "/api/v1/plans")
                .header("content-type", "application/yaml")
                .body(text);
            let (_, v) = c.send(with_reason(rb, &reason)).await?;
            if remote.json {
                print_json(&v);
            } else {
                let what = if v["changed"] == json!(true) {
                    "stored as version"
                } else {
                    "unchanged at version"
                };
                println!("plan {}: {what} {}", s(&v["name"]), s(&v["version"]));
                for w in v["warnings"].as_array().into_iter().flatten() {
                    println!("  warning[{}]: {}", s(&w["code"]), s(&w["message"]));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::List => {
            need_token(remote)?;
            let c = Client::new(remote)?;
            let v = c.get("/api/v1/plans").await?;
            if remote.json {
                print_json(&v);
            } else {
                for p in v.as_array().into_iter().flatten() {
                    println!(
                        "{:<32} v{:<4} flag {} in {}",
                        s(&p["name"]),
                        s(&p["version"]),
                        s(&p["spec"]["flag"]),
                        s(&p["spec"]["environment"])
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::Get { name } => {
            need_token(remote)?;
            let c = Client::new(remote)?;
            let v = c.get(&format!("/api/v1/plans/{}", enc(&name))).await?;
            print_json(if remote.json { &v } else { &v["spec"] });
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_rollout(v: &Value) {
    let phase = v["phase"].as_str().map(|p| format!(" ({p})")).unwrap_or_default();
    println!(
        "{}  {}{}  wave {}/{} at {}  flag {} in {}  plan {} v{}  requested by {}",
        s(&v["id"]),
        s(&v["state"]),
        phase,
        s(&v["wave"]),
        s(&v["waves"]),
        s(&v["exposure"]),
        s(&v["flag"]),
        s(&v["environment"]),
        s(&v["plan"]),
        s(&v["plan_version"]),
        s(&v["requester"])
    );
    if let Some(r) = v["reason"].as_str() {
        println!("  reason: {r}");
    }
    if let Some(b) = v["blackout"].as_str() {
        println!("  held by blackout window {b}");
    }
}

pub async fn rollout(cmd: RolloutCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    let (path, body) = match cmd {
        RolloutCommand::Start { plan, reason, artifact, at } => {
            let mut body = json!({"plan": plan, "reason": reason});
            if let Some(path) = artifact {
                body["artifact_sha256"] = json!(file_sha256(&path)?);
            }
            if let Some(at) = &at {
                body["start_at"] = json!(at);
            }
            let (_, v) = c.send(c.request(Method::POST, "/api/v1/rollouts").json(&body)).await?;
            if at.is_some() {
                if remote.json {
                    print_json(&v);
                } else {
                    println!("scheduled: {plan} starts at {}", s(&v["scheduled"]["start_at"]));
                }
                return Ok(ExitCode::SUCCESS);
            }
            if remote.json {
                print_json(&v)
            } else {
                print!("started ");
                print_rollout(&v)
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Status { id } => {
            let v = c.get(&format!("/api/v1/rollouts/{}", enc(&id))).await?;
            if remote.json {
                print_json(&v);
            } else {
                print_rollout(&v);
                for vd in v["verdicts"].as_array().into_iter().flatten() {
                    let r = &vd["report"];
                    println!(
                        "  wave {} {:<16} {:<12} {}",
                        s(&vd["wave"]),
                        s(&vd["name"]),
                        s(&vd["verdict"]),
                        s(&r["explanation"])
                    );
                }
                for l in v["latency"].as_array().into_iter().flatten() {
                    let q = |k: &str| l[k].as_f64().map_or("-".to_owned(), |x| format!("{x:.1}"));
                    println!(
                        "  latency {:<10} n={} p50={} p95={} p99={} ms",
                        s(&l["arm"]),
                        s(&l["count"]),
                        q("p50"),
                        q("p95"),
                        q("p99")
                    );
                }
                for sig in v["signals"].as_array().into_iter().flatten() {
                    println!(
                        "  signal {:<10} {:<12} n={} mean={:.4}",
                        s(&sig["arm"]),
                        s(&sig["metric"]),
                        s(&sig["n"]),
                        sig["mean"].as_f64().unwrap_or(0.0)
                    );
                }
            }
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
            let v = c.get(&format!("/api/v1/rollouts?{}", q.join("&"))).await?;
            if remote.json {
                print_json(&v);
            } else {
                for r in v.as_array().into_iter().flatten() {
                    print_rollout(r);
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        RolloutCommand::Approve { id, reason } => {
            (format!("{}/approve", enc(&id)), json!({"reason": reason}))
        }
        RolloutCommand::Reject { id, reason } => {
            (format!("{}/reject", enc(&id)), json!({"reason": reason}))
        }
        RolloutCommand::Pause { id, reason } => {
            (format!("{}/pause", enc(&id)), json!({"reason": reason}))
        }
        RolloutCommand::Resume { id, reason } => {
            (format!("{}/resume", enc(&id)), json!({"reason": reason}))
        }
        RolloutCommand::Rollback { id, reason } => {
            (format!("{}/rollback", enc(&id)), json!({"reason": reason}))
        }
    };
    let (_, v) =
        c.send(c.request(Method::POST, &format!("/api/v1/rollouts/{path}")).json(&body)).await?;
    if remote.json {
        print_json(&v)
    } else {
        print_rollout(&v)
    }
    Ok(ExitCode::SUCCESS)
}

fn span(secs: i64) -> String {
    wavegate_rollout::duration::Span::from_secs(secs.max(0) as u64).to_string()
}

pub async fn drill(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let plan_text = read_file(&args.plan)?;
    let (plan, findings) = lint(&plan_text);
    if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
        return Err(Failure::Input(format!(
            "{}: {} (run `wavegate plan lint`)",
            args.plan.display(),
            e.message
        ))
        .into());
    }
    let plan = plan.ok_or_else(|| Failure::Input("plan does not parse".into()))?;
    let scenario_text = read_file(&args.scenario)?;
    let scenario: wavegate_rollout::drill::Scenario =
        wavegate_core::flagfile::parse_yaml(&scenario_text)
            .map_err(|e| Failure::Input(format!("{}: {e}", args.scenario.display())))?;
    let report = wavegate_rollout::drill::run(&plan, &scenario)
        .map_err(|e| Failure::Input(format!("{}: {e}", args.scenario.display())))?;
    let report_json = serde_json::to_value(&report)?;
    if args.remote.json {
        print_json(&report_json);
    } else {
        println!("drill {:?} against plan {:?}", report.scenario, plan.name);
        for e in &report.timeline {
            let seen = if e.seen.is_empty() { String::new() } else { format!("   [{}]", e.seen) };
            println!("  +{:<9} wave {}  {}{seen}", span(e.t), e.wave, e.event);
        }
        let reason = report.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        println!(
            "result: {}{reason}; expected {}: {}",
            report.outcome,
            report.expected,
            if report.passed { "PASS" } else { "FAIL" }
        );
        println!(
            "{} ticks, {} simulated, {} simulated requests",
            report.ticks,
            span(report.simulated_seconds),
            report.requests
        );
    }
    if args.record {
        need_token(&args.remote)?;
        let c = Client::new(&args.remote)?;
        let body = json!({"plan": serde_json::to_value(&plan)?, "report": report_json});
        let (_, v) = c
            .send(
                c.request(Method::POST, &format!("/api/v1/plans/{}/drills", enc(&plan.name)))
                    .json(&body),
            )
            .await?;
        if !args.remote.json {
            println!(
                "recorded as drill {} of plan {} version {}",
                s(&v["id"]),
                s(&v["plan"]),
                s(&v["plan_version"])
            );
        }
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// SHA-256 of a file, streamed.
fn file_sha256(path: &std::path::Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path)
        .map_err(|e| Failure::Input(format!("could not open {}: {e}", path.display())))?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = f.read(&mut buf).with_context(|| format!("Failed to read {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// `rollout explain`: recomputes each stored guardrail verdict with the same code the
/// controller ran, from the stored inputs, and reports whether it reproduces.
async fn explain(
    c: &Client,
    remote: &Remote,
    id: &str,
    wave: Option<i64>,
) -> anyhow::Result<ExitCode> {
    use wavegate_rollout::plan::GuardrailSpec;
    use wavegate_rollout::stats::{Moments, judge, srm};
    let mut path = format!("/api/v1/rollouts/{}/verdicts", enc(id));
    if let Some(w) = wave {
        path.push_str(&format!("?wave={w}"));
    }
    let v = c.get(&path).await?;
    let guardrails: Vec<GuardrailSpec> = serde_json::from_value(v["guardrails"].clone())?;
    let srm_alpha = v["srm_alpha"].as_f64().unwrap_or(0.001);
    let mut out = Vec::new();
    let mut mismatches = 0;
    for vd in v["verdicts"].as_array().into_iter().flatten() {
        let report = &vd["report"];
        let (recomputed, numbers) = if vd["kind"] == "srm" {
            let t = report["treatment"].as_f64().unwrap_or(0.0);
            let ctl = report["control"].as_f64().unwrap_or(0.0);
            let again = srm(t, ctl, report["expected_share"].as_f64().unwrap_or(0.0), srm_alpha);
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
            let Some(g) = guardrails.iter().find(|g| Some(g.name.as_str()) == vd["name"].as_str())
            else {
                continue;
            };
            let m =
                |x: &Value| -> Moments { serde_json::from_value(x.clone()).unwrap_or_default() };
            let again = judge(g, &m(&report["treatment"]), &m(&report["control"]));
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
        let reproduced = recomputed == vd["verdict"].as_str().unwrap_or("");
        if !reproduced {
            mismatches += 1;
        }
        out.push(json!({"at": vd["at"], "wave": vd["wave"], "name": vd["name"], "stored": vd["verdict"], "recomputed": recomputed, "reproduced": reproduced, "numbers": numbers}));
    }
    if remote.json {
        print_json(
            &json!({"id": id, "state": v["state"], "verdicts": out, "mismatches": mismatches}),
        );
    } else {
        for e in &out {
            let mark =
                if e["reproduced"] == json!(true) { "reproduced" } else { "DOES NOT REPRODUCE" };
            println!(
                "{}  wave {}  {:<14} {:<12} {mark}",
                s(&e["at"]),
                s(&e["wave"]),
                s(&e["name"]),
                s(&e["stored"])
            );
            println!("    {}", s(&e["numbers"]));
        }
        println!(
            "{} verdict(s), {} not reproduced; rollout is {}",
            out.len(),
            mismatches,
            s(&v["state"])
        );
    }
    Ok(if mismatches == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// `rollout watch`: redraws the rollout's state until it ends (exit 0 when it completes,
/// 1 when it is rolled back or aborted). With `--json`, prints one status object per change.
async fn watch(c: &Client, remote: &Remote, id: &str, interval: &str) -> anyhow::Result<ExitCode> {
    use std::io::{IsTerminal, Write};
    let every = crate::commands::parse_tick(interval)
        .map_err(|e| Failure::Input(e.replace("--tick", "--interval")))?;
    let tty = std::io::stdout().is_terminal() && !remote.json;
    let mut last = String::new();
    loop {
        let v = c.get(&format!("/api/v1/rollouts/{}", enc(id))).await?;
        let view = if remote.json { serde_json::to_string(&v)? } else { render(&v) };
        if view != last {
            let mut out = std::io::stdout().lock();
            if tty {
                write!(out, "\x1b[2J\x1b[H")?;
            }
            writeln!(out, "{view}")?;
            out.flush()?;
            last = view;
        }
        match v["state"].as_str() {
            Some("completed") => return Ok(ExitCode::SUCCESS),
            Some("rolled_back") | Some("aborted") => return Ok(ExitCode::from(1)),
            _ => tokio::time::sleep(every).await,
        }
    }
}

fn render(v: &Value) -> String {
    let pct: f64 =
        v["exposure"].as_str().and_then(|e| e.trim_end_matches('%').parse().ok()).unwrap_or(0.0);
    let filled = ((pct / 100.0) * 40.0).round() as usize;
    let bar = format!(
        "[{}{}] {}",
        "#".repeat(filled),
        "-".repeat(40 - filled.min(40)),
        s(&v["exposure"])
    );
    let mut lines = vec![
        format!(
            "rollout {}  plan {} v{}  flag {} in {}",
            s(&v["id"]),
            s(&v["plan"]),
            s(&v["plan_version"]),
            s(&v["flag"]),
            s(&v["environment"])
        ),
        format!(
            "state {}{}  wave {}/{}  {bar}",
            s(&v["state"]),
            v["phase"].as_str().map(|p| format!(" ({p})")).unwrap_or_default(),
            s(&v["wave"]),
            s(&v["waves"])
        ),
    ];
    if let Some(r) = v["reason"].as_str() {
        lines.push(format!("reason: {r}"));
    }
    if let Some(b) = v["blackout"].as_str() {
        lines.push(format!("held by blackout {b}"));
    }
    if v["phase"] == "awaiting_approval" {
        lines.push(format!(
            "waiting for {} approval(s); have {}",
            s(&v["approvals_needed"]),
            v["approvals"].as_array().map_or(0, |a| a.len())
        ));
    }
    for vd in v["verdicts"].as_array().into_iter().flatten().filter(|vd| vd["wave"] == v["wave"]) {
        let r = &vd["report"];
        let progress = match (r["treatment"]["n"].as_f64(), r["control"]["n"].as_f64()) {
            (Some(t), Some(c)) => format!(" n={t}/{c}"),
            _ => String::new(),
        };
        lines.push(format!(
            "  {:<16} {:<12}{progress}  {}",
            s(&vd["name"]),
            s(&vd["verdict"]),
            r["explanation"].as_str().unwrap_or("")
        ));
    }
    lines.join("\n")
}

/// `wavegate scorecard show|set`.
pub async fn scorecard(cmd: ScorecardCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    let card = match &cmd {
        ScorecardCommand::Show { plan } => {
            c.get(&format!("/api/v1/plans/{}/scorecard", enc(plan))).await?
        }
        ScorecardCommand::Set { plan, item, status, note } => {
            let rb = c
                .request(
                    Method::PUT,
                    &format!("/api/v1/plans/{}/scorecard/{}", enc(plan), enc(item)),
                )
                .json(&json!({"status": status, "note": note}));
            c.send(rb).await?.1
        }
    };
    if remote.json {
        print_json(&card);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<20} {:<8} {:<10} {:<5} EVIDENCE / REASON", "ITEM", "STATUS", "BY", "AUTO");
    for i in card["items"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<8} {:<10} {:<5} {}",
            s(&i["key"]),
            s(&i["status"]),
            i["by"].as_str().unwrap_or("-"),
            if i["automatic"] == Value::Bool(true) { "yes" } else { "" },
            i["note"].as_str().unwrap_or(i["title"].as_str().unwrap_or(""))
        );
    }
    let verdict = if card["go"] == Value::Bool(true) { "GO" } else { "NO-GO" };
    let mode = if card["declared"] == Value::Bool(true) {
        "declared: gates start and promotions"
    } else {
        "not declared: warnings only"
    };
    println!(
        "{verdict}: {} of {} items not green (no-go at {}); {mode}",
        s(&card["not_green"]),
        card["items"].as_array().map_or(0, Vec::len),
        s(&card["max_red"])
    );
    Ok(ExitCode::SUCCESS)
}

/// `wavegate freeze on|off|status`.
pub async fn freeze(cmd: FreezeCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    let v = match &cmd {
        FreezeCommand::On { reason } => {
            c.send(c.request(Method::PUT, "/api/v1/freeze").json(&json!({"reason": reason})))
                .await?
                .1
        }
        FreezeCommand::Off { reason } => {
            c.send(with_reason(c.request(Method::DELETE, "/api/v1/freeze"), reason)).await?.1
        }
        FreezeCommand::Status => c.get("/api/v1/freeze").await?,
    };
    if remote.json {
        print_json(&v);
    } else if v["active"] == Value::Bool(true) {
        println!("FROZEN since {} by {}: {}", s(&v["at"]), s(&v["by"]), s(&v["reason"]));
        println!("Every rollout holds; pause and rollback still work; no rollout starts.");
    } else {
        println!("No freeze: rollouts proceed.");
    }
    Ok(ExitCode::SUCCESS)
}

/// `wavegate report dora`.
pub async fn report(cmd: ReportCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    let (since, until, by, environment, format) = match cmd {
        ReportCommand::Dora { since, until, by, environment, format } => {
            (since, until, by, environment, format)
        }
        ReportCommand::Rollout { id, format } => {
            let format = if remote.json { "json" } else { format.as_str() };
            let path = format!("/api/v1/rollouts/{}/report?format={format}", enc(&id));
            match c.send(c.request(Method::GET, &path)).await?.1 {
                Value::String(text) => print!("{text}"),
                other => print_json(&other),
            }
            return Ok(ExitCode::SUCCESS);
        }
        ReportCommand::Adoption { id, window, format, environment, all } => {
            return adoption_report(&c, remote, id, &window, &format, environment, all).await;
        }
        ReportCommand::Feedback { release, format } => {
            let format = if remote.json { "json" } else { format.as_str() };
            let path = format!("/api/v1/feedback/digest?release={}&format={format}", enc(&release));
            match c.send(c.request(Method::GET, &path)).await?.1 {
                Value::String(text) => print!("{text}"),
                other => print_json(&other),
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    let format = if remote.json { "json".to_owned() } else { format };
    let mut query = vec![("since", since), ("by", by), ("format", format)];
    query.extend(until.map(|u| ("until", u)));
    query.extend(environment.map(|e| ("environment", e)));
    let qs: Vec<String> = query.iter().map(|(k, v)| format!("{k}={}", enc(v))).collect();
    let path = format!("/api/v1/reports/dora?{}", qs.join("&"));
    let (_, body) = c.send(c.request(Method::GET, &path)).await?;
    match body {
        Value::String(text) => print!("{text}"),
        other => print_json(&other),
    }
    Ok(ExitCode::SUCCESS)
}

/// `wavegate report adoption [ID]`.
async fn adoption_report(
    c: &Client,
    remote: &Remote,
    id: Option<String>,
    window: &str,
    format: &str,
    environment: Option<String>,
    all: bool,
) -> anyhow::Result<ExitCode> {
    if let Some(id) = id {
        let format = if remote.json { "json" } else { format };
        let path =
            format!("/api/v1/rollouts/{}/adoption?window={window}&format={format}", enc(&id));
        match c.send(c.request(Method::GET, &path)).await?.1 {
            Value::String(text) => print!("{text}"),
            other => print_json(&other),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let mut path = format!("/api/v1/reports/adoption?window={window}&all={all}");
    if let Some(e) = environment {
        path.push_str(&format!("&environment={}", enc(&e)));
    }
    let (_, body) = c.send(c.request(Method::GET, &path)).await?;
    if remote.json {
        print_json(&body);
        return Ok(ExitCode::SUCCESS);
    }
    let rollouts = body["rollouts"].as_array().cloned().unwrap_or_default();
    if rollouts.is_empty() {
        println!("No rollout is tracking adoption (a plan opts in with an `adoption:` section).");
        return Ok(ExitCode::SUCCESS);
    }
    let pct = |r: &Value| match r["rate"].as_f64() {
        Some(p) => format!("{:.1}% of {}", p * 100.0, r["exposed"]),
        None => "-".into(),
    };
    println!(
        "{:<26} {:<8} {:<22} {:<16} {:<16} {:<16} LAGGING ({window}d)",
        "ROLLOUT", "ENV", "RELEASE", "30 DAYS", "60 DAYS", "90 DAYS"
    );
    for r in &rollouts {
        let lagging: Vec<String> = r["lagging"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| format!("{}={}", s(&l["attribute"]), s(&l["value"])))
            .collect();
        println!(
            "{:<26} {:<8} {:<22} {:<16} {:<16} {:<16} {}",
            s(&r["rollout"]),
            s(&r["environment"]),
            s(&r["release"]),
            pct(&r["overall"][0]),
            pct(&r["overall"][1]),
            pct(&r["overall"][2]),
            if lagging.is_empty() { "-".into() } else { lagging.join(", ") }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `wavegate calendar`.
pub async fn calendar(days: i64, ics: bool, remote: &Remote) -> anyhow::Result<ExitCode> {
    need_token(remote)?;
    let c = Client::new(remote)?;
    let format = if ics { "ics" } else { "json" };
    let (_, body) = c
        .send(c.request(Method::GET, &format!("/api/v1/calendar?days={days}&format={format}")))
        .await?;
    if ics {
        print!("{}", body.as_str().unwrap_or_default());
        return Ok(ExitCode::SUCCESS);
    }
    if remote.json {
        print_json(&body);
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<22} {:<22} {:<9} {:<8} WHAT", "START", "END", "KIND", "ENV");
    for e in body["entries"].as_array().into_iter().flatten() {
        println!(
            "{:<22} {:<22} {:<9} {:<8} {}",
            s(&e["start"]),
            s(&e["end"]),
            s(&e["kind"]),
            e["environment"].as_str().unwrap_or("-"),
            s(&e["title"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
