//! `wavegate plan lint|apply|list|get` (`lint` is local).

use std::process::ExitCode;

use serde_json::json;
use wavegate_api::plans::{PlanApplied, PlanHead};
use wavegate_rollout::lint::{Severity, has_errors, lint};

use crate::cli::{PlanCommand, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::{Column, Table, answer, print_json};

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
            let a = c.post_yaml::<PlanApplied>("/api/v1/plans", text, &reason).await?;
            answer(remote.json, &a, |p| {
                let what = if p.changed { "stored as version" } else { "unchanged at version" };
                println!("plan {}: {what} {}", p.name, p.version);
                for w in &p.warnings {
                    println!("  warning[{}]: {}", w.code, w.message);
                }
            });
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::List => {
            let c = Client::authenticated(remote)?;
            answer(remote.json, &c.get::<Vec<PlanHead>>("/api/v1/plans").await?, |list| {
                let mut table =
                    Table::new(vec![Column::left("", 32), Column::left("", 5), Column::last("")]);
                for p in list {
                    let (flag, env) = match p.outline() {
                        Ok(o) => (o.flag, o.environment),
                        Err(_) => ("-".to_owned(), "-".to_owned()),
                    };
                    table.row([
                        p.name.clone(),
                        format!("v{}", p.version),
                        format!("flag {flag} in {env}"),
                    ]);
                }
                table.print();
            });
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::Get { name } => {
            let c = Client::authenticated(remote)?;
            let a = c.get::<PlanHead>(&format!("/api/v1/plans/{}", enc(&name))).await?;
            print_json(if remote.json { &a.raw } else { &a.body.spec });
            Ok(ExitCode::SUCCESS)
        }
    }
}
