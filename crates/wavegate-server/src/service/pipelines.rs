//! Release pipelines: a plan with `auto_start` starts by itself once its release (the same name
//! and version) has completed — its watch, if any, ended — in every environment of its
//! `promotion_path`. The controller's tick starts it through `rollouts::start`, every start
//! check included, as the person who started the release's rollout in the path's first
//! environment (so they still may not approve it here), offering the artifact that rollout
//! verified. Each plan is tried once per release version: the outcome (started, or refused with
//! the reason, for a person to start it by hand) is the setting `pipeline.<plan>` and its audit
//! entry.

use serde_json::json;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::PlanSpec;
use wavegate_store::{Kind, Put, RolloutRow};

use crate::service::rollouts::{ArtifactOffer, StartRequest};
use crate::service::{ServiceResult, Who, decode, rollouts};
use crate::state::AppState;

/// The outcomes are the settings `pipeline.<plan>`.
pub const PREFIX: &str = "pipeline.";

/// Starts every plan whose pipeline is due (called by the controller's tick).
pub async fn run_due(state: &AppState) -> ServiceResult<()> {
    let mut waiting = Vec::new();
    for head in state.heads(Kind::Plan, false).await? {
        let Ok(plan) = decode::<PlanSpec>("plan", &head.spec) else { continue };
        if plan.auto_start && !plan.promotion_path.is_empty() {
            waiting.push(plan);
        }
    }
    if waiting.is_empty() {
        return Ok(());
    }
    // Plans already tried for their current release wait for nothing: left out before the
    // rollouts (all of them, ended ones too) are read.
    let tried: std::collections::HashMap<String, String> = state
        .heads(Kind::Setting, false)
        .await?
        .into_iter()
        .filter_map(|h| {
            let plan = h.key.strip_prefix(PREFIX)?.to_owned();
            Some((plan, h.spec["release"].as_str()?.to_owned()))
        })
        .collect();
    waiting.retain(|p| tried.get(&p.name) != Some(&p.release.label()));
    if waiting.is_empty() {
        return Ok(());
    }
    let rows = state.store.rollouts(false).await?;
    let decoded: Vec<(&RolloutRow, Rollout)> = rows
        .iter()
        .filter_map(|row| Some((row, decode::<Rollout>("rollout", &row.doc).ok()?)))
        .collect();
    for plan in waiting {
        let release = plan.release.label();
        let of_release = |r: &Rollout| r.plan.release.label() == release;
        // Already rolled out (or rolling out) here: a person started it, or the pipeline did.
        if decoded.iter().any(|(row, r)| row.environment == plan.environment && of_release(r)) {
            continue;
        }
        // The earliest completed rollout of the release in each environment of the path.
        let mut before = Vec::new();
        for env in &plan.promotion_path {
            let done = decoded
                .iter()
                .filter(|(row, r)| {
                    row.environment == *env && row.state == "completed" && of_release(r)
                })
                .min_by_key(|(row, _)| row.created_at);
            match done {
                Some(found) => before.push(found),
                None => break,
            }
        }
        if before.len() < plan.promotion_path.len() {
            continue;
        }
        let key = format!("{PREFIX}{}", plan.name);
        let (first_row, first) = before[0];
        let after: Vec<&str> = before.iter().map(|(row, _)| row.id.as_str()).collect();
        // The artifact the path's last environment verified, offered again.
        let artifact = before
            .last()
            .and_then(|(_, r)| r.artifact.as_ref())
            .map(|a| ArtifactOffer {
                // Offered only where this plan pins a digest to check it against.
                sha256: a.sha256.clone().filter(|_| plan.release.artifact_sha256.is_some()),
                blake2b: a.signature.as_ref().map(|_| a.blake2b.clone()),
                signature: a.signature.clone(),
                sbom: None,
            })
            .unwrap_or_default();
        let who = Who {
            name: first.requester.clone(),
            via: Some(format!("release pipeline after {}", first_row.id)),
        };
        let last_env = plan.promotion_path.last().map(String::as_str).unwrap_or_default();
        let req = StartRequest {
            plan: plan.name.clone(),
            reason: Some(format!("{release} completed in {last_env}; started by its pipeline")),
            artifact,
            release: None,
        };
        let (verb, outcome) = match rollouts::start(state, &who, req).await {
            Ok((row, _)) => {
                tracing::info!(plan = %plan.name, rollout = %row.id, "release pipeline started the next environment");
                ("pipeline_started", json!({"rollout": row.id}))
            }
            Err(e) => {
                let error = crate::http::error::ApiError::from(e).message;
                tracing::warn!(plan = %plan.name, %error, "release pipeline could not start the next environment");
                ("pipeline_refused", json!({"error": error}))
            }
        };
        let details = json!({"plan": plan.name, "environment": plan.environment,
            "release": release, "after": after, "requester": first.requester, "outcome": outcome});
        let put = Put {
            kind: Kind::Setting,
            key,
            spec: details.clone(),
            archived: false,
            expected_version: None,
            action: Some(verb.into()),
            details,
        };
        state.store.apply(&[put], &state.change(&Who::own("controller"), None)).await?;
    }
    Ok(())
}
