//! `wavegate plan lint|apply|list|get` (`lint` is local).

use std::process::ExitCode;

use reqwest::Method;
use serde_json::json;
use wavegate_rollout::lint::{Severity, has_errors, lint};

use crate::cli::{PlanCommand, Remote};
use crate::client::{Client, enc, with_reason};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{Column, Table, print_json, s};

/// Runs `wavegate plan …`.
pub async fn run(cmd: PlanCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Lint { file, traffic } => {
            if traffic.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
                return Err(Failure::Input(
                    "--traffic must be a positive number of requests per second".into(),
                )
                .into());
            }
            let text = read_text(&file)?;
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
            crate::client::need_token(remote)?;
            let text = read_text(&file)?;
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
            let c = Client::authenticated(remote)?;
            let v = c.get("/api/v1/plans").await?;
            if remote.json {
                print_json(&v);
            } else {
                let mut table =
                    Table::new(vec![Column::left("", 32), Column::left("", 5), Column::last("")]);
                for p in v.as_array().into_iter().flatten() {
                    table.row([
                        s(&p["name"]),
                        format!("v{}", s(&p["version"])),
                        format!(
                            "flag {} in {}",
                            s(&p["spec"]["flag"]),
                            s(&p["spec"]["environment"])
                        ),
                    ]);
                }
                table.print();
            }
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::Get { name } => {
            let c = Client::authenticated(remote)?;
            let v = c.get(&format!("/api/v1/plans/{}", enc(&name))).await?;
            print_json(if remote.json { &v } else { &v["spec"] });
            Ok(ExitCode::SUCCESS)
        }
    }
}
