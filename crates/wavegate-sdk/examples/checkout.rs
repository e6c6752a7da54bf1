//! A service that asks wavegate which checkout to show, locally, and reports what happened.
//!
//! ```sh
//! export WAVEGATE_URL=http://127.0.0.1:8470 WAVEGATE_TOKEN=wg_…   # a server-sdk token for prod
//! cargo run -p wavegate-sdk --example checkout -- new-checkout prod 1000
//! ```
//!
//! It evaluates the flag for that many users with the same `wavegate-core` evaluation the
//! server runs, reports an exposure and an outcome for each in batches, prints the split, and
//! keeps a snapshot in `./wavegate-snapshot.json`, so a second run works with the server down.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use wavegate_sdk::{Builder, Context, Outcome};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let flag = args.next().unwrap_or_else(|| "new-checkout".into());
    let environment = args.next().unwrap_or_else(|| "prod".into());
    let users: usize = args.next().map(|n| n.parse()).transpose()?.unwrap_or(1000);
    let url = std::env::var("WAVEGATE_URL").unwrap_or_else(|_| "http://127.0.0.1:8470".into());
    let token =
        std::env::var("WAVEGATE_TOKEN").map_err(|_| "set WAVEGATE_TOKEN to a server-sdk token")?;

    let client =
        Builder::new(url, token, &environment).snapshot_path("wavegate-snapshot.json").start()?;
    let source = client.wait_ready(Duration::from_secs(5)).await?;
    println!("configuration from {source:?}; {} flags", client.flag_keys().len());

    let started = Instant::now();
    let mut split: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..users {
        let ctx = Context::with_key(format!("user-{i}"));
        let Some(e) = client.evaluate(&flag, &ctx) else {
            return Err(format!("flag {flag:?} is not served in {environment}").into());
        };
        *split.entry(e.variant.clone()).or_default() += 1;
        client.exposure_of(&flag, &e, &ctx);
        let outcome = Outcome { error: Some(false), latency_ms: Some(20.0), ..Outcome::default() };
        client.outcome_of(&flag, &e, &ctx, &outcome);
    }
    let per_eval = started.elapsed() / u32::try_from(users.max(1))?;
    for (variant, n) in &split {
        println!("{variant:>12}: {n:>7} ({:.1}%)", 100.0 * *n as f64 / users as f64);
    }
    println!("{per_eval:?} per evaluation and report, including the event queue");
    match client.flush().await {
        Ok(n) => println!("reported {n} events"),
        Err(e) => println!("events not reported (they stay queued in memory only): {e}"),
    }
    client.close().await;
    Ok(())
}
