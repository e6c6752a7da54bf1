//! Notifications: webhook targets per audience hear of rollout events (approval requested,
//! promoted, paused, rolled back, escalated, completed).
//!
//! **Off the controller's path.** The controller never sends anything: it commits its
//! decision and audit entry, and this module's own task reads the audit log after the fact.
//! It queues one delivery per entry and interested target (rendered then, with the rollout's
//! facts, and kept in the delivery log), and sends due deliveries each on its own task with a
//! timeout, so a slow or dead receiver delays nothing but its own retries. Failed attempts are
//! retried with exponential backoff up to a limit; every attempt is recorded.
//!
//! Only the replica that leads the controller runs the notifier, so replicas do not send
//! twice; queueing is idempotent per (entry, target), so a takeover resumes where the last
//! leader stopped. Delivery is at least once: a receiver may see a retry of a message whose
//! first answer was lost.

pub mod render;
pub mod spec;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::Mutex;
use wavegate_store::{Delivery, DeliveryState, NewDelivery, StoreResult};

use crate::state::AppState;
use spec::{Event, TargetSpec, event_of};

/// How the notifier paces itself.
#[derive(Debug, Clone)]
pub struct NotifyConfig {
    /// The first retry's delay; each later one doubles it (capped at [`MAX_BACKOFF`]).
    pub retry_base: Duration,
    /// Attempts before a delivery is marked failed.
    pub max_attempts: u32,
    /// How long one attempt may take.
    pub timeout: Duration,
    /// How often due retries are looked for when nothing else wakes the notifier.
    pub poll: Duration,
}

impl Default for NotifyConfig {
    fn default() -> NotifyConfig {
        NotifyConfig {
            retry_base: Duration::from_secs(2),
            max_attempts: 6,
            timeout: Duration::from_secs(10),
            poll: Duration::from_secs(1),
        }
    }
}

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// The delay before attempt `attempts + 1`, after `attempts` failed ones.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    let factor = 2u32.saturating_pow(attempts.saturating_sub(1));
    base.saturating_mul(factor).min(MAX_BACKOFF)
}

/// Runs until `shutdown`: while this replica leads, queues deliveries for new audit entries
/// and sends the due ones.
pub async fn run(state: AppState, shutdown: tokio::sync::watch::Receiver<bool>) {
    let mut shutdown = shutdown;
    let mut feed = state.streams.feed.subscribe();
    let in_flight: Arc<Mutex<HashSet<i64>>> = Arc::default();
    loop {
        if state.leadership.leading.load(std::sync::atomic::Ordering::Relaxed) {
            if let Err(e) = enqueue_new(&state).await {
                tracing::warn!(error = %e, "could not queue notifications");
            }
            if let Err(e) = send_due(&state, &in_flight).await {
                tracing::warn!(error = %e, "could not read due notifications");
            }
        }
        tokio::select! {
            r = feed.recv() => {
                if matches!(r, Err(tokio::sync::broadcast::error::RecvError::Closed)) {
                    return;
                }
            }
            () = tokio::time::sleep(state.outbound.notify.poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Queues deliveries for the audit entries after the notifier's cursor.
pub async fn enqueue_new(state: &AppState) -> StoreResult<usize> {
    let mut queued = 0;
    loop {
        let cursor = state.store.notify_cursor().await?;
        let page = state.store.audit(cursor, 500).await?;
        let Some(last) = page.last().map(|r| r.entry.seq) else { return Ok(queued) };
        let targets: Vec<(String, i64, TargetSpec)> = state
            .store
            .notify_targets()
            .await?
            .into_iter()
            .filter_map(|t| match serde_json::from_value::<TargetSpec>(t.spec) {
                Ok(spec) => Some((t.name, t.since_seq, spec)),
                Err(e) => {
                    tracing::warn!(target = %t.name, error = %e, "unreadable notification target");
                    None
                }
            })
            .collect();
        let mut rows = Vec::new();
        for row in &page {
            let Some(event) = event_of(&row.action) else { continue };
            let interested: Vec<_> =
                targets.iter().filter(|(_, since, _)| row.entry.seq > *since).collect();
            if interested.is_empty() {
                continue;
            }
            if let Some(key) = row.target.strip_prefix("setting:") {
                let Some(h) = state.store.get(wavegate_store::Kind::Setting, key).await? else {
                    continue;
                };
                let Ok(cr) = serde_json::from_value::<wavegate_api::changes::ChangeRequest>(h.spec)
                else {
                    continue;
                };
                let entry = crate::runtime::feed::audit_json(row);
                for (name, _, target) in &interested {
                    let Some(env) = cr.environments.iter().find(|e| target.wants(event, e)) else {
                        continue;
                    };
                    // A champion hears only of the cohorts addressed to them.
                    if !target.addressed(None) {
                        continue;
                    }
                    let ctx = render::change_context(event, target.audience, &entry, &cr);
                    let at = (row.entry.seq, cr.id.as_str(), env.as_str());
                    rows.extend(delivery(state, name, target, event, &ctx, at));
                }
                continue;
            }
            let Some(id) = row.target.strip_prefix("rollout:") else { continue };
            let Some(stored) = state.store.rollout(id).await? else { continue };
            let Ok(r) = serde_json::from_value::<wavegate_rollout::machine::Rollout>(stored.doc)
            else {
                continue;
            };
            let entry = crate::runtime::feed::audit_json(row);
            let url = state
                .outbound
                .public_url
                .as_deref()
                .map(|base| format!("{}/#/rollouts/{id}", base.trim_end_matches('/')));
            let notify = entry["details"]["notify"].as_array().map(Vec::as_slice);
            // "You said → we did": what feedback fixed, told with a promotion or completion.
            let digest = if matches!(event, Event::Promoted | Event::Completed)
                && interested
                    .iter()
                    .any(|(_, _, t)| t.wants(Event::YouSaidWeDid, &r.plan.environment))
            {
                you_said_we_did(state, &r).await?
            } else {
                Vec::new()
            };
            for (name, _, target) in &interested {
                if target.wants(Event::YouSaidWeDid, &r.plan.environment)
                    && target.addressed(None)
                    && !digest.is_empty()
                {
                    let event = Event::YouSaidWeDid;
                    let mut ctx =
                        render::context(event, target.audience, &entry, &r, url.as_deref());
                    ctx["fixed"] = Value::Array(digest.clone());
                    let at = (row.entry.seq, id, r.plan.environment.as_str());
                    rows.extend(delivery(state, name, target, event, &ctx, at));
                }
            }
            for (name, _, target) in interested {
                if !target.wants(event, &r.plan.environment) || !target.addressed(notify) {
                    continue;
                }
                let ctx = render::context(event, target.audience, &entry, &r, url.as_deref());
                let at = (row.entry.seq, id, r.plan.environment.as_str());
                rows.extend(delivery(state, name, target, event, &ctx, at));
            }
        }
        queued += rows.len();
        state.store.enqueue_deliveries(last, &rows).await?;
        if !rows.is_empty() {
            state.metrics.notifications_queued.inc_by(rows.len() as u64);
        }
    }
}

/// The delivery of `event` to target `name` for the audit entry, rollout and environment `at`:
/// its text rendered from `ctx` (the audience's default wording if the target's own template
/// fails); None when there is nothing to say to this audience.
fn delivery(
    state: &AppState,
    name: &str,
    target: &TargetSpec,
    event: Event,
    ctx: &Value,
    (audit_seq, rollout, environment): (i64, &str, &str),
) -> Option<NewDelivery> {
    let text = render::text(target, event, ctx).unwrap_or_else(|e| {
        tracing::warn!(target = %name, error = %e, "notification template failed; sending the default");
        let mut plain = target.clone();
        plain.templates.clear();
        render::text(&plain, event, ctx).unwrap_or_default()
    });
    // A PagerDuty target hears only what opens or closes an alert.
    let paged =
        target.format != spec::Format::Pagerduty || render::pagerduty_action(event).is_some();
    if text.is_empty() || !paged {
        return None;
    }
    Some(NewDelivery {
        audit_seq,
        target: name.to_owned(),
        audience: target.audience.as_str().into(),
        event: event.as_str().into(),
        rollout: rollout.to_owned(),
        environment: environment.to_owned(),
        payload: render::payload(target, event, &text, ctx, audit_seq),
        at: state.clock.now(),
    })
}

/// The release's feedback items marked fixed, oldest first, as the digest lists them: what was
/// said, what was done, and what fixed it.
async fn you_said_we_did(
    state: &AppState,
    r: &wavegate_rollout::machine::Rollout,
) -> StoreResult<Vec<Value>> {
    Ok(crate::service::people::release_feedback(state, &r.plan.release)
        .await?
        .into_iter()
        .filter(|f| f.status == "fixed")
        .map(|f| {
            serde_json::json!({"id": f.id, "text": f.body, "category": f.category,
                "resolution": f.resolution, "fixed_in": f.fixed_in, "closed_at": f.closed_at})
        })
        .collect())
}

/// Queues `checkpoint` for every notification target that names the `checkpoint` event
/// (none hears it by default); returns how many. Keyed by the checkpoint's sequence number, so
/// the same checkpoint is never queued twice for a target.
pub async fn enqueue_checkpoint(
    state: &AppState,
    checkpoint: &crate::checkpoint::Checkpoint,
) -> StoreResult<usize> {
    let event = wavegate_api::notify::NotifyEvent::Checkpoint;
    let ctx = serde_json::json!({ "checkpoint": checkpoint });
    let mut rows = Vec::new();
    for t in state.store.notify_targets().await? {
        let Ok(target) = serde_json::from_value::<TargetSpec>(t.spec) else { continue };
        if target.withheld || !target.events.contains(&event) {
            continue;
        }
        rows.extend(delivery(state, &t.name, &target, event, &ctx, (checkpoint.seq, "", "")));
    }
    // The cursor only moves forward (the store keeps the greater), so 0 leaves it as it is.
    state.store.enqueue_deliveries(0, &rows).await?;
    if !rows.is_empty() {
        state.metrics.notifications_queued.inc_by(rows.len() as u64);
    }
    Ok(rows.len())
}

/// Starts a task for each due delivery not already being sent.
///
/// The in-flight set stays locked from reading the due list until every new task is
/// registered, and a task leaves the set only after recording its attempt. Otherwise a list
/// read while an attempt was still running could start that delivery again as soon as the
/// attempt finished, with its old attempt count.
async fn send_due(state: &AppState, in_flight: &Arc<Mutex<HashSet<i64>>>) -> StoreResult<()> {
    let mut running = in_flight.lock().await;
    let due = state.store.due_deliveries(state.clock.now(), 64).await?;
    for d in due {
        if !running.insert(d.id) {
            continue;
        }
        let state = state.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let id = d.id;
            if let Err(e) = attempt(&state, d).await {
                tracing::warn!(delivery = id, error = %e, "could not record a notification attempt");
            }
            in_flight.lock().await.remove(&id);
        });
    }
    Ok(())
}

/// Makes one attempt at `d` and records its outcome.
async fn attempt(state: &AppState, d: Delivery) -> StoreResult<()> {
    let (url, mut secret, withheld, paged) =
        match state.store.notify_targets().await?.into_iter().find(|t| t.name == d.queued.target) {
            Some(t) => (
                t.spec["url"].as_str().unwrap_or_default().to_owned(),
                t.spec["secret"].as_str().map(str::to_owned),
                t.spec["withheld"] == true,
                t.spec["format"] == "pagerduty",
            ),
            None => (String::new(), None, false, false),
        };
    // PagerDuty's routing key is the target's secret: put in the body as it is sent (never in
    // the stored payload), and no signature header (PagerDuty reads none).
    let mut payload = d.queued.payload.clone();
    if paged {
        payload["routing_key"] = Value::String(secret.take().unwrap_or_default());
    }
    let attempts = d.state.attempts + 1;
    // Neither a removed target, a withheld one nor one the outbound policy refuses will be
    // sendable by a retry (the policy holds for this server's life).
    let unsendable = match state.outbound.guard.url(&url) {
        Err(e) if !url.is_empty() && !withheld => Some(e.to_string()),
        _ => None,
    };
    let hopeless = url.is_empty() || withheld || unsendable.is_some();
    let result = if url.is_empty() {
        Err((None, "the target was removed".to_owned()))
    } else if withheld {
        Err((None, WITHHELD.to_owned()))
    } else if let Some(why) = unsendable {
        Err((None, why))
    } else {
        post(state, &url, secret.as_deref(), &payload, &d.queued.event, d.id).await
    };
    let now = state.clock.now();
    let cfg = &state.outbound.notify;
    let (status, last_error, http_status, next_at) = match result {
        Ok(code) => {
            state.metrics.notifications_sent.inc();
            ("delivered", None, Some(code), now)
        }
        Err((code, error)) => {
            let gave_up = hopeless || attempts >= i64::from(cfg.max_attempts);
            if gave_up {
                state.metrics.notifications_failed.inc();
                tracing::warn!(delivery = d.id, target = %d.queued.target, %error, attempts, "notification failed; giving up");
            } else {
                tracing::info!(delivery = d.id, target = %d.queued.target, %error, attempts, "notification failed; will retry");
            }
            let wait = backoff(cfg.retry_base, u32::try_from(attempts).unwrap_or(u32::MAX));
            let next = now + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::zero());
            (if gave_up { "failed" } else { "pending" }, Some(error), code, next)
        }
    };
    state
        .store
        .record_attempt(
            d.id,
            &DeliveryState {
                status: status.into(),
                attempts,
                last_error,
                http_status,
                next_at,
                at: now,
            },
        )
        .await
}

/// Why nothing is sent to a target restored from a backup taken without secrets.
pub const WITHHELD: &str = "the target was restored from a backup without secrets: its URL and \
    signing secret were left out; set them again (wavegate notify set) to send to it";

/// The `X-Wavegate-Signature` value for `body` sent at `timestamp` (Unix seconds).
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())
        .expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The most of a receiver's refusal read, in bytes (only an excerpt is kept).
const READ_BYTES: usize = 4 * 1024;

/// POSTs `payload` to `url` (signed when there is a `secret`) through the outbound policy;
/// `Ok(status)` on 2xx, else the status (if any) and the error, quoting what the receiver said
/// ([`crate::outbound::reply`]).
pub async fn post(
    state: &AppState,
    url: &str,
    secret: Option<&str>,
    payload: &Value,
    event: &str,
    delivery: i64,
) -> Result<i64, (Option<i64>, String)> {
    let body = serde_json::to_vec(payload).map_err(|e| (None, e.to_string()))?;
    let request = state
        .outbound
        .guard
        .request(reqwest::Method::POST, url)
        .map_err(|e| (None, e.to_string()))?;
    let mut request = request
        .timeout(state.outbound.notify.timeout)
        .header("user-agent", concat!("wavegate/", env!("CARGO_PKG_VERSION")))
        .header("content-type", "application/json")
        .header("x-wavegate-event", event)
        .header("x-wavegate-delivery", delivery.to_string());
    if let Some(secret) = secret {
        let timestamp = state.clock.now().timestamp();
        request = request
            .header("x-wavegate-timestamp", timestamp.to_string())
            .header("x-wavegate-signature", signature(secret, timestamp, &body));
    }
    let request = request.body(body);
    match request.send().await {
        Ok(resp) => {
            let code = i64::from(resp.status().as_u16());
            if resp.status().is_success() {
                Ok(code)
            } else {
                let (body, _) = crate::outbound::read_capped(resp, READ_BYTES).await;
                Err((Some(code), format!("HTTP {code}: {}", crate::outbound::reply::quote(&body))))
            }
        }
        Err(e) if e.is_timeout() => {
            Err((None, format!("no answer within {:?}", state.outbound.notify.timeout)))
        }
        Err(e) => {
            Err((None, format!("could not reach the receiver: {}", crate::outbound::failure(&e))))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let b = Duration::from_secs(2);
        let waits: Vec<_> = (1..=5).map(|a| backoff(b, a).as_secs()).collect();
        assert_eq!(waits, [2, 4, 8, 16, 32]);
        assert_eq!(backoff(b, 40), MAX_BACKOFF);
    }
}
