//! `POST /v1/traces`: an OTLP/HTTP trace receiver, so that an application instrumented with
//! OpenFeature's OpenTelemetry tracing hook feeds its rollouts' guardrails with no wavegate
//! code: point the OTLP/HTTP exporter at wavegate with a server-sdk token in its
//! `Authorization` header. The handler authorises and decodes; `service::otlp` attributes.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use wavegate_protocols::otlp::{self, DecodeError};

use crate::http::auth::Principal;
use crate::http::error::{ApiError, ApiResult};
use crate::http::events::{reporter_scope, spend_budget};
use crate::http::openapi::{
    BadRequest, Forbidden, RateLimited, TooLargeText, Unauthorized, UnsupportedType, api_routes,
};
use crate::state::AppState;

/// The OTLP routes.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(api_routes!(post_traces))
}

/// Spans in OTLP/HTTP (protobuf or JSON, optionally gzip). A span carrying an OpenFeature
/// evaluation event (`feature_flag.evaluation`, or the older `feature_flag`) of a flag under
/// a live rollout counts as an exposure of the user it names (`feature_flag.context.id`) and
/// an outcome (status ERROR → `error`, duration → `latency_ms`); spans without a user count
/// nowhere, and the answer's `partialSuccess.errorMessage` says how many. Answered after the
/// counted events are committed.
#[utoipa::path(post, path = "/v1/traces", tag = "Events",
    params(("X-Wavegate-Environment" = Option<String>, Header,
        description = "The environment (needed when the token spans several)"),
        ("Content-Encoding" = Option<String>, Header, description = "gzip or identity")),
    request_body(content = Vec<u8>, content_type = "application/x-protobuf",
        description = "An OTLP ExportTraceServiceRequest (or its OTLP/JSON form as application/json)"),
    security(("bearer" = [])),
    responses((status = 200, description = "Committed: an ExportTraceServiceResponse in the \
        request's encoding, its `partialSuccess.errorMessage` saying how many spans did not count",
        content((Object = "application/json"), (Vec<u8> = "application/x-protobuf"))),
        BadRequest, Unauthorized, Forbidden, TooLargeText, UnsupportedType, RateLimited))]
async fn post_traces(
    State(state): State<AppState>,
    p: Principal,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    // Who and where first, so a caller who may not report costs no decoding.
    let env = reporter_scope(&state, &p, &headers, 0)?;
    let value = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let (encoding, spans) =
        otlp::decode(&body, value(header::CONTENT_TYPE), value(header::CONTENT_ENCODING)).map_err(
            |e| match e {
                DecodeError::UnsupportedType => ApiError::unsupported_media_type(e.to_string()),
                other => ApiError::bad_request(other.to_string()),
            },
        )?;
    drop(body);
    // The budget is in events, as for the events API: what the spans make, not the spans.
    let prepared = crate::service::otlp::prepare(&state, &env, &spans);
    drop(spans);
    spend_budget(&state, &p, prepared.event_count() as u64)?;
    let got = prepared.commit(&state, &env, &p.0.id).await?;
    let answer = otlp::success(encoding, 0, &got.warning());
    Ok(([(header::CONTENT_TYPE, encoding.content_type())], answer).into_response())
}
