//! `wavegate plan lint|apply|list|get|waive|waivers` (`lint` is local).

use std::process::ExitCode;

use serde_json::json;
use wavegate_api::plans::{PlanApplied, PlanHead};
use wavegate_api::waivers::{GrantWaiver, Waiver};
use wavegate_rollout::lint::{Severity, has_errors, lint};

use crate::cli::{PlanCommand, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::read_plan;
use crate::output::{Column, Table, answer, print_json};

/// Runs `wavegate plan …`.
pub async fn run(cmd: PlanCommand, remote: &Remote) -> anyhow::Result<ExitCode> {
    match cmd {
        PlanCommand::Lint { file, traffic, tick, format, resolved } => {
            if traffic.is_some_and(|t| !(t > 0.0 && t.is_finite())) {
                return Err(Failure::Input(
                    "--traffic must be a positive number of requests per second".into(),
                )
                .into());
            }
            let tick = crate::input::parse_tick(&tick).map_err(Failure::Input)?;
            let read = read_plan(&file)?;
            let text = read.text;
            let (plan, mut findings) = lint(&text);
            if read.resolved {
                // Lines of the resolved text are not the file's: name the file only.
                findings.iter_mut().for_each(|f| (f.line, f.column) = (None, None));
            }
            let opts = wavegate_rollout::forecast::Options {
                traffic,
                tick_secs: tick.as_secs_f64(),
                ..Default::default()
            };
            let forecasts = plan
                .as_ref()
                .map(|p| wavegate_rollout::forecast::forecast(p, &opts))
                .unwrap_or_default();
            if let Some(p) = &plan {
                findings.extend(wavegate_rollout::lint::forecast_findings(p, &forecasts));
            }
            let shown = file.display().to_string();
            if format == "sarif" {
                let version = env!("CARGO_PKG_VERSION");
                print_json(&wavegate_rollout::lint::to_sarif(&shown, &findings, version));
            } else if format == "github" {
                print!("{}", wavegate_rollout::lint::to_github_annotations(&shown, &findings));
            } else if remote.json {
                let mut out = json!({"file": file.display().to_string(), "ok": !has_errors(&findings), "plan": plan.map(|p| p.name), "findings": findings, "forecast": forecasts});
                if resolved {
                    let doc: serde_json::Value =
                        wavegate_core::flagfile::parse_yaml(&text).unwrap_or_default();
                    out["resolved"] = doc;
                }
                print_json(&out);
            } else {
                if resolved {
                    println!("# {} as resolved\n{}", file.display(), text.trim_end());
                    println!("# ---");
                }
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
                    print_forecasts(&forecasts, opts.tick_secs, opts.runs);
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
            let read = read_plan(&file)?;
            let text = read.text;
            let (_, findings) = lint(&text);
            if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
                let at = e
                    .line
                    .filter(|_| !read.resolved)
                    .map(|l| format!(":{l}:{}", e.column.unwrap_or(0)))
                    .unwrap_or_default();
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
        PlanCommand::Waive { name, finding, reason, expires, revoke } => {
            let c = Client::authenticated(remote)?;
            let path = format!("/api/v1/plans/{}/waivers/{}", enc(&name), enc(&finding));
            let rb = if revoke {
                c.request(reqwest::Method::DELETE, &path)
            } else {
                let body = GrantWaiver { reason: reason.unwrap_or_default(), expires };
                c.request(reqwest::Method::PUT, &path).json(&body)
            };
            answer(remote.json, &c.call::<Vec<Waiver>>(rb).await?, |list| print_waivers(list));
            Ok(ExitCode::SUCCESS)
        }
        PlanCommand::Waivers { name } => {
            let c = Client::authenticated(remote)?;
            let path = format!("/api/v1/plans/{}/waivers", enc(&name));
            answer(remote.json, &c.get::<Vec<Waiver>>(&path).await?, |list| print_waivers(list));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_waivers(list: &[Waiver]) {
    if list.is_empty() {
        println!("no waivers");
    }
    for w in list {
        let state = if w.expired { "expired" } else { "until" };
        println!(
            "{:<24} {state} {}  by {}: {}",
            w.finding,
            w.expires.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            w.by,
            w.reason
        );
    }
}

/// The forecast table of `plan lint --traffic`: per wave and guardrail, the mean (and 90th
/// percentile) time to a fail verdict at the design effect and to the pass the controller
/// promotes on, and what the always-valid test costs against a fixed-n test.
fn print_forecasts(forecasts: &[wavegate_rollout::forecast::Forecast], tick: f64, runs: usize) {
    println!(
        "forecast (the controller's own test on simulated traffic, {runs} seeded runs, a look every {}; min_sample, burn-in and hold included):",
        secs(tick)
    );
    let n = |x: Option<f64>| x.map_or("-".to_owned(), |s| format!("{:.0}", s.ceil()));
    for f in forecasts {
        let (Some(_), Some(_)) = (f.tick_secs, f.runs) else {
            println!("  wave {} {:<16} {}", f.wave, f.guardrail, f.note.as_deref().unwrap_or(""));
            continue;
        };
        let fail = match (f.to_fail_secs, f.fail_p90_secs) {
            (Some(m), Some(p)) => format!(
                "fail at design effect ≈ {} (p90 {}; {} treatment samples, {:.1}× a fixed-n test's {})",
                secs(m),
                secs(p),
                n(f.fail_samples),
                f.cost_vs_fixed.unwrap_or(f64::NAN),
                n(f.fixed_n_samples)
            ),
            _ => "fail at design effect: not within the horizon".to_owned(),
        };
        let pass = match (f.to_pass_secs, f.pass_p90_secs) {
            (Some(m), Some(p)) => format!(
                "pass without effect ≈ {} (p90 {}; {} treatment samples; set by {})",
                secs(m),
                secs(p),
                n(f.pass_samples),
                f.pass_limited_by.unwrap_or("evidence")
            ),
            _ => "pass without effect: not within the horizon".to_owned(),
        };
        println!("  wave {} {:<16} {fail}; {pass}", f.wave, f.guardrail);
        if let Some(note) = &f.note {
            println!("  wave {} {:<16} note: {note}", f.wave, f.guardrail);
        }
    }
}

/// Seconds as a span (`1m40s`), or milliseconds below one second.
fn secs(s: f64) -> String {
    if s < 1.0 {
        format!("{:.0}ms", s * 1000.0)
    } else {
        wavegate_rollout::duration::Span::from_secs(s.round() as u64).to_string()
    }
}
