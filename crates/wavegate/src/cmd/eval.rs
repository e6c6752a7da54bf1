//! `wavegate eval`: one flag evaluated over OFREP, as an SDK would.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::Value;
use wavegate_api::ofrep::{Evaluation, EvaluationRequest};

use crate::cli::EvalArgs;
use crate::client::{Client, enc, need_token};
use crate::failure::Failure;
use crate::output::answer;

/// Runs `wavegate eval`.
pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    need_token(&args.remote)?;
    let context: Value = serde_json::from_str(&args.context)
        .map_err(|e| Failure::Input(format!("--context is not valid JSON: {e}")))?;
    let Value::Object(context) = context else {
        return Err(Failure::Input("--context must be a JSON object".into()).into());
    };
    let c = Client::new(&args.remote)?;
    let mut rb = c
        .request(Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", enc(&args.flag)))
        .json(&EvaluationRequest { context });
    if let Some(env) = &args.env {
        rb = rb.header("x-wavegate-environment", env.as_str());
    }
    answer(args.remote.json, &c.call::<Evaluation>(rb).await?, |e| {
        let rule = e.metadata.rule.as_deref().map(|r| format!(" rule={r}")).unwrap_or_default();
        println!("{} = {} (variant {}, reason {}{rule})", e.key, e.value, e.variant, e.reason);
    });
    Ok(ExitCode::SUCCESS)
}
