//! `wavegate drill`: rehearses a plan in simulated time against a scenario (local), and with
//! `--record` stores the run as evidence for the matching stored plan version.

use std::process::ExitCode;

use reqwest::Method;
use wavegate_api::plans::{DrillRecorded, RecordDrill};
use wavegate_rollout::lint::{Severity, lint};

use crate::cli::DrillArgs;
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::read_text;
use crate::output::print_json;

/// Runs `wavegate drill` (exit 1 when the drill fails).
pub async fn run(args: DrillArgs) -> anyhow::Result<ExitCode> {
    let plan_text = crate::input::read_plan(&args.plan)?.text;
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
    let scenario_text = read_text(&args.scenario)?;
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
        let c = Client::authenticated(&args.remote)?;
        let body = RecordDrill { plan: serde_json::to_value(&plan)?, report: report_json };
        let path = format!("/api/v1/plans/{}/drills", enc(&plan.name));
        let d: DrillRecorded = c.call(c.request(Method::POST, &path).json(&body)).await?.body;
        if !args.remote.json {
            println!("recorded as drill {} of plan {} version {}", d.id, d.plan, d.plan_version);
        }
    }
    Ok(if report.passed { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

fn span(secs: i64) -> String {
    wavegate_rollout::duration::Span::from_secs(secs.max(0) as u64).to_string()
}
