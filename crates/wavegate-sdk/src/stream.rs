//! The stream task: follows `GET /api/v1/stream` for one environment, applies each event,
//! recompiles, swaps, and saves the snapshot file; reconnects with jittered backoff and resumes
//! with `Last-Event-ID`.

use std::sync::Arc;
use std::time::Duration;

use wavegate_core::error::root_cause;
use wavegate_core::sse::SseParser;
use wavegate_core::text::{percent_encode, redact_url, redact_urls_in};

use crate::config::Specs;
use crate::{Inner, Source};

/// Runs until shutdown.
pub(crate) async fn run(inner: Arc<Inner>) {
    let mut shutdown = inner.shutdown.subscribe();
    let mut failures: u32 = 0;
    loop {
        let outcome = tokio::select! {
            r = follow(&inner) => r,
            _ = shutdown.changed() => return,
        };
        let made_progress = matches!(outcome, Ok(true));
        {
            let mut st = inner.lock_state();
            if st.connected {
                st.connected = false;
                st.current_at = Some(chrono::Utc::now());
            }
            st.last_error = Some(match &outcome {
                Err(e) => e.clone(),
                Ok(_) => "the server ended the stream".into(),
            });
        }
        if let Err(e) = &outcome {
            tracing::warn!(error = %e, "wavegate stream lost; reconnecting");
        }
        failures = if made_progress { 0 } else { failures.saturating_add(1) };
        let s = &inner.settings;
        let wait = reconnect_delay(s.reconnect_base, s.reconnect_max, failures, rand::random());
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// The wait before reconnecting after `failures` attempts in a row that delivered nothing:
/// "equal jitter" over the capped exponential backoff `cap = min(base · 2^failures, most)`,
/// a delay in `[cap / 2, cap]` placed by `jitter` (uniform over `u64`: 0 gives `cap / 2`,
/// `u64::MAX` gives `cap`).
///
/// Jitter, because a server restart drops every SDK at the same instant: without it they all
/// come back in lockstep, at every step of the backoff. Half the cap stays fixed (rather than
/// AWS's "full jitter" over `[0, cap]`) so that a flapping server is never retried at once.
pub(crate) fn reconnect_delay(
    base: Duration,
    most: Duration,
    failures: u32,
    jitter: u64,
) -> Duration {
    let cap = base.saturating_mul(2u32.saturating_pow(failures.min(16))).min(most);
    let half = cap / 2;
    let span = (cap - half).as_nanos();
    let (jitter, whole) = (u128::from(jitter), u128::from(u64::MAX));
    // Exact unless the span is beyond any sensible setting (then a coarser step is fine).
    let extra = span.checked_mul(jitter).map_or(span / whole * jitter, |p| p / whole);
    // `extra <= span`, and a span beyond u64 nanoseconds (584 years) is not a reconnect delay.
    half + Duration::from_nanos(u64::try_from(extra).unwrap_or(u64::MAX))
}

/// One connection: `Ok(true)` when it delivered something before ending.
async fn follow(inner: &Arc<Inner>) -> Result<bool, String> {
    let s = &inner.settings;
    let url = format!("{}/api/v1/stream?environment={}", s.url, percent_encode(&s.environment));
    let mut req = inner.http.get(&url).bearer_auth(&s.token).header("accept", "text/event-stream");
    let resume = {
        let compiled = inner.compiled.load();
        let source = inner.lock_state().source;
        if source == Source::None { None } else { compiled.specs.last_event_id }
    };
    if let Some(id) = resume {
        req = req.header("last-event-id", id.to_string());
    }
    // What the errors quote (they end up in `status()` and the logs): never credentials.
    let url = redact_url(&url);
    let mut resp = tokio::time::timeout(s.idle_timeout, req.send())
        .await
        .map_err(|_| format!("{url}: no answer within {:?}", s.idle_timeout))?
        .map_err(|e| format!("{url}: {}", redact_urls_in(&root_cause(&e))))?;
    let status = resp.status();
    if !status.is_success() {
        let body = resp.text().await.unwrap_or_default();
        return Err(format!(
            "{url}: HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        ));
    }
    {
        let mut st = inner.lock_state();
        st.connected = true;
        st.last_error = None;
    }
    let mut parser = SseParser::default();
    let mut progressed = false;
    let mut specs: Option<Specs> = None;
    loop {
        let chunk = match tokio::time::timeout(s.idle_timeout, resp.chunk()).await {
            Err(_) => return Err(format!("stream silent for {:?}", s.idle_timeout)),
            Ok(Err(e)) => return Err(format!("stream broke: {}", root_cause(&e))),
            Ok(Ok(None)) => return Ok(progressed),
            Ok(Ok(Some(c))) => c,
        };
        let events = parser.push(&chunk).map_err(|e| e.to_string())?;
        if events.is_empty() {
            continue;
        }
        let working = specs.get_or_insert_with(|| inner.compiled.load().specs.clone());
        let mut changed = false;
        let mut snapshot_seen = false;
        // Flags changed by `flag` events alone; `None` once a snapshot or segment needs all.
        let mut only: Option<Vec<String>> = Some(Vec::new());
        for ev in events {
            let id = ev.id.as_deref().and_then(|i| i.parse::<i64>().ok());
            let data: serde_json::Value = match serde_json::from_str(&ev.data) {
                Ok(v) => v,
                Err(_) => continue,
            };
            match ev.event.as_str() {
                "snapshot" => {
                    working.apply_snapshot(&data, id)?;
                    snapshot_seen = true;
                    changed = true;
                    only = None;
                }
                "flag" | "segment" => {
                    working.apply_head(ev.event == "flag", &data)?;
                    match (&mut only, ev.event.as_str(), data["key"].as_str()) {
                        (Some(keys), "flag", Some(k)) => keys.push(k.to_owned()),
                        _ => only = None,
                    }
                    if id.is_some() {
                        working.last_event_id = id;
                    }
                    changed = true;
                }
                _ => {}
            }
        }
        if changed {
            progressed = true;
            let compiled = match &only {
                Some(keys) => inner.compiled.load().with_flags(working.clone(), keys),
                None => working.compile(),
            };
            // On disk before anyone can see it in memory: a caller told "ready" may rely on
            // the file.
            if let Some(path) = s.snapshot_path.clone() {
                let to_save = compiled.specs.clone();
                let saved = tokio::task::spawn_blocking(move || to_save.save(&path)).await;
                if let Ok(Err(e)) = saved {
                    tracing::warn!(error = %e, "could not save the SDK snapshot");
                }
            }
            inner.compiled.store(Arc::new(compiled));
            {
                let mut st = inner.lock_state();
                if snapshot_seen || st.source != Source::None {
                    st.source = Source::Stream;
                }
                st.current_at = Some(chrono::Utc::now());
            }
            inner.version.send_modify(|v| *v = v.wrapping_add(1));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::stream::reconnect_delay;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn the_delay_stays_within_half_the_cap_and_the_cap() {
        let (base, most) = (250 * MS, 10_000 * MS);
        let jitters = [0, 1, 12_345, u64::MAX / 3, u64::MAX / 2, u64::MAX - 1, u64::MAX];
        for failures in [0, 1, 2, 3, 5, 6, 10, 16, 17, 1000, u32::MAX] {
            let cap = (base * 2u32.pow(failures.min(16))).min(most);
            for jitter in jitters {
                let d = reconnect_delay(base, most, failures, jitter);
                assert!(d >= cap / 2 && d <= cap, "{failures} failures, jitter {jitter}: {d:?}");
            }
            assert_eq!(reconnect_delay(base, most, failures, 0), cap / 2);
            assert_eq!(reconnect_delay(base, most, failures, u64::MAX), cap);
        }
    }

    #[test]
    fn the_cap_doubles_from_base_up_to_most() {
        let top = |failures| reconnect_delay(250 * MS, 10_000 * MS, failures, u64::MAX);
        let caps: Vec<Duration> = (0..8).map(top).collect();
        assert_eq!(
            caps,
            [
                250 * MS,
                500 * MS,
                1000 * MS,
                2000 * MS,
                4000 * MS,
                8000 * MS,
                10_000 * MS,
                10_000 * MS
            ]
        );
    }

    #[test]
    fn different_draws_spread_the_reconnects() {
        let (base, most) = (250 * MS, 10_000 * MS);
        let mid = reconnect_delay(base, most, 2, u64::MAX / 2);
        assert!(mid > 700 * MS && mid < 800 * MS, "half way between 500 ms and 1 s: {mid:?}");
        let mut last = Duration::ZERO;
        for k in 0..=16u64 {
            let d = reconnect_delay(base, most, 2, (u64::MAX / 16).saturating_mul(k));
            assert!(d >= last, "more jitter never waits less");
            last = d;
        }
        assert!(reconnect_delay(base, most, 2, 0) < last, "the draws are not in lockstep");
    }

    #[test]
    fn degenerate_settings_do_not_panic() {
        assert_eq!(reconnect_delay(Duration::ZERO, Duration::ZERO, 5, u64::MAX), Duration::ZERO);
        let huge = Duration::MAX;
        let d = reconnect_delay(huge, huge, u32::MAX, u64::MAX);
        assert!(d >= huge / 2);
        assert_eq!(reconnect_delay(20 * MS, 100 * MS, 0, u64::MAX), 20 * MS);
    }
}
