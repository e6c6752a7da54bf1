//! `wavegate rollout …`: start (now or `--at`), status, watch, explain, list, and people's
//! commands (approve, reject, pause, resume, rollback).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::{Remote, RolloutCommand};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::file_sha256;
use crate::output::{print_json, s};

/// Runs `wavegate rollout …`.
pub async fn run(cmd: RolloutCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    let c = Client::authenticated(remote)?;
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
    let every = crate::input::parse_tick(interval)
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
