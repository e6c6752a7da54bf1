//! Response text from the outside world, withheld from callers who may not read it.
//!
//! What a check's endpoint, a Prometheus or a webhook receiver answered is kept quoted
//! (`⟦…⟧`, [`crate::outbound::reply`]) wherever it is recorded: check evidence and verdicts,
//! readings' errors, audit details, scorecard facts, the delivery log, error messages. Only an
//! admin token for all environments reads those quotes: for every other caller this layer
//! replaces each one with [`crate::outbound::reply::WITHHELD`] in the answers of the routes that
//! can carry them, once, whichever handler built the answer. (The stream's audit events are
//! concealed by [`crate::http::scope::AuditReader`], since a stream is never buffered.)
//!
//! It costs nothing when an answer quotes nothing: the body is looked at for the opening mark
//! before any token is looked up.

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body_util::BodyExt;
use wavegate_store::{TokenKind, TokenRecord};

use crate::outbound::reply;
use crate::state::AppState;

/// Whether `t` may read what responses said: an admin token for all environments.
pub fn reads_responses(t: &TokenRecord) -> bool {
    t.kind == TokenKind::Admin && t.all_envs()
}

/// The routes whose answers can quote a response: rollouts (views, verdicts, reports, commands
/// and a refused start), scorecards, the audit log, notifications (the delivery log, test
/// sends) and schedules (a refused scheduled start). Others (flags, segments…) are left alone,
/// so text that merely looks quoted in a flag is never touched.
fn may_quote(path: &str) -> bool {
    let Some(rest) = path.strip_prefix("/api/v1/") else { return false };
    let first = rest.split('/').next().unwrap_or("");
    match first {
        "rollouts" | "notifications" | "schedules" | "calendar" => true,
        "audit" => rest == "audit",
        "plans" => rest.ends_with("/scorecard") || rest.contains("/scorecard/"),
        _ => false,
    }
}

/// Whether the answer is text this layer can rewrite (not a stream, not an image).
fn textual(resp: &Response) -> Option<bool> {
    let ct = resp.headers().get(header::CONTENT_TYPE)?.to_str().ok()?;
    let json = ct.starts_with("application/json");
    let text = ["text/markdown", "text/html", "text/plain", "text/calendar", "text/csv"]
        .iter()
        .any(|t| ct.starts_with(t));
    (json || text).then_some(json)
}

/// The layer: see the module's documentation.
pub async fn conceal_responses(
    State(state): State<std::sync::Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    if !may_quote(req.uri().path()) {
        return next.run(req).await;
    }
    let secret = crate::http::auth::secret_from_headers(req.headers()).map(str::to_owned);
    let resp = next.run(req).await;
    let Some(json) = textual(&resp) else { return resp };
    let (mut parts, body) = resp.into_parts();
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            tracing::warn!(error = %e, "could not read an answer to conceal responses in");
            return Response::from_parts(parts, Body::empty());
        }
    };
    if !reply::holds_quote(&bytes) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let reader = match secret {
        Some(s) => state.tokens.lookup(&state, &s).await.ok().flatten(),
        None => None,
    };
    if reader.as_ref().is_some_and(reads_responses) {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let concealed = conceal(&bytes, json);
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(concealed))
}

/// `bytes` with every quote withheld: JSON string by string (so a mark in one string never
/// reaches into the next), other text as a whole.
fn conceal(bytes: &Bytes, json: bool) -> Bytes {
    if json && let Ok(mut v) = serde_json::from_slice::<serde_json::Value>(bytes) {
        reply::conceal_json(&mut v);
        if let Ok(out) = serde_json::to_vec(&v) {
            return Bytes::from(out);
        }
    }
    let text = String::from_utf8_lossy(bytes);
    Bytes::from(reply::conceal(&text).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_routes_that_can_quote_a_response_are_rewritten() {
        for path in [
            "/api/v1/rollouts",
            "/api/v1/rollouts/ro_1",
            "/api/v1/rollouts/ro_1/verdicts",
            "/api/v1/rollouts/ro_1/report",
            "/api/v1/audit",
            "/api/v1/notifications/deliveries",
            "/api/v1/notifications/targets/pager/test",
            "/api/v1/plans/p1/scorecard",
            "/api/v1/plans/p1/scorecard/signals",
            "/api/v1/schedules",
        ] {
            assert!(may_quote(path), "{path}");
        }
        for path in [
            "/api/v1/flags/x",
            "/api/v1/plans/p1",
            "/api/v1/audit/verify",
            "/api/v1/events",
            "/api/v1/stream",
            "/api/v1/backup",
            "/ofrep/v1/evaluate/flags",
            "/api/client/features",
        ] {
            assert!(!may_quote(path), "{path}");
        }
    }

    #[test]
    fn json_is_concealed_string_by_string() {
        let body = serde_json::json!({"a": "⟦open", "b": "kept", "c": reply::quote("secret")});
        let out = conceal(&Bytes::from(serde_json::to_vec(&body).unwrap()), true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v, serde_json::json!({"a": reply::WITHHELD, "b": "kept", "c": reply::WITHHELD}));
        let md = conceal(&Bytes::from("- why: HTTP 500 ⟦oops⟧\n"), false);
        assert_eq!(md, Bytes::from(format!("- why: HTTP 500 {}\n", reply::WITHHELD)));
    }
}
