//! The stream task: follows `GET /api/v1/stream` for one environment, applies each event,
//! recompiles, swaps, and saves the snapshot file; reconnects with backoff and resumes with
//! `Last-Event-ID`.

use std::sync::Arc;

use wavegate_core::sse::SseParser;

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
        let wait = s
            .reconnect_base
            .saturating_mul(2u32.saturating_pow(failures.min(16)))
            .min(s.reconnect_max);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// One connection: `Ok(true)` when it delivered something before ending.
async fn follow(inner: &Arc<Inner>) -> Result<bool, String> {
    let s = &inner.settings;
    let url = format!("{}/api/v1/stream?environment={}", s.url, enc(&s.environment));
    let mut req = inner.http.get(&url).bearer_auth(&s.token).header("accept", "text/event-stream");
    let resume = {
        let compiled = inner.compiled.load();
        let source = inner.lock_state().source;
        if source == Source::None { None } else { compiled.specs.last_event_id }
    };
    if let Some(id) = resume {
        req = req.header("last-event-id", id.to_string());
    }
    let mut resp = tokio::time::timeout(s.idle_timeout, req.send())
        .await
        .map_err(|_| format!("{url}: no answer within {:?}", s.idle_timeout))?
        .map_err(|e| format!("{url}: {}", root(&e)))?;
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
            Ok(Err(e)) => return Err(format!("stream broke: {}", root(&e))),
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

fn root(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
