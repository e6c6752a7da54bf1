//! `wavegate eval`: one flag evaluated over OFREP, as an SDK would.

use std::process::ExitCode;

use reqwest::Method;
use serde_json::{Value, json};

use crate::cli::EvalArgs;
use crate::client::{Client, enc, need_token};
use crate::failure::Failure;
use crate::output::{print_json, s};

/// Runs `wavegate eval`.
pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    need_token(&args.remote)?;
    let context: Value = serde_json::from_str(&args.context)
        .map_err(|e| Failure::Input(format!("--context is not valid JSON: {e}")))?;
    if !context.is_object() {
        return Err(Failure::Input("--context must be a JSON object".into()).into());
    }
    let c = Client::new(&args.remote)?;
    let mut rb = c
        .request(Method::POST, &format!("/ofrep/v1/evaluate/flags/{}", enc(&args.flag)))
        .json(&json!({"context": context}));
    if let Some(env) = &args.env {
        rb = rb.header("x-wavegate-environment", env.as_str());
    }
    let (_, v) = c.send(rb).await?;
    if args.remote.json {
        print_json(&v);
    } else {
        let rule = v["metadata"]["rule"].as_str().map(|r| format!(" rule={r}")).unwrap_or_default();
        println!(
            "{} = {} (variant {}, reason {}{rule})",
            s(&v["key"]),
            v["value"],
            s(&v["variant"]),
            s(&v["reason"])
        );
    }
    Ok(ExitCode::SUCCESS)
}
