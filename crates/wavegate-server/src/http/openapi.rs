//! The OpenAPI document, generated: every route the server serves is registered through a
//! `utoipa_axum` [`OpenApiRouter`] from a handler annotated with `#[utoipa::path]`, whose
//! schemas are the `wavegate-api` types it answers with. [`routes`] gives the router and the
//! document from the same registrations, so a route cannot be served undocumented; the
//! evaluation protocols (`wavegate-protocols`) are described alongside, checked against their
//! route table.
//!
//! Errors are documented per operation with the shared responses below, each the
//! `{code, message, field?}` body ([`wavegate_api::error::ErrorBody`]) that [`super::error`]
//! answers.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, InfoBuilder, OpenApi, Ref, RefOr, ResponseBuilder, Tag, response::Response,
};
use utoipa::{IntoResponses, PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use wavegate_api::error::{ErrorBody, OfrepErrorBody};

use crate::state::AppState;

thread_local! {
    /// Whether [`api_routes!`] builds the documentation (inside [`document`]) or only the routing.
    static DOCUMENTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the routes being registered on this thread are for [`document`].
pub(crate) fn documenting() -> bool {
    DOCUMENTING.with(std::cell::Cell::get)
}

/// `utoipa_axum::routes!` that builds each operation's documentation (its parameters,
/// responses and schemas) only inside [`document`]: serving needs just each handler's path and
/// methods. Building every operation at start-up cost a few MiB of heap and of the binary's
/// pages that a server never used again; the document is built on its first request instead.
/// The same registrations feed both, so a route still cannot be served undocumented.
macro_rules! api_routes {
    ($($handler:ident)::+ $(, $($tail:ident)::+)* $(,)?) => {
        if $crate::http::openapi::documenting() {
            utoipa_axum::routes!($($handler)::+ $(, $($tail)::+)*)
        } else {
            #[allow(unused_imports)]
            use utoipa_axum::PathItemExt as _;
            let mut paths = utoipa::openapi::path::Paths::new();
            let router = axum::routing::MethodRouter::new();
            let router = $crate::http::openapi::api_routes!(@serve paths router $($handler)::+);
            $(let router = $crate::http::openapi::api_routes!(@serve paths router $($tail)::+);)*
            (Vec::new(), paths, router)
        }
    };
    (@serve $paths:ident $router:ident $($handler:ident)::+) => {{
        let path = <$crate::http::openapi::api_routes!(@doc [] $($handler)::+) as utoipa::Path>::path();
        let methods =
            <$crate::http::openapi::api_routes!(@doc [] $($handler)::+) as utoipa::Path>::methods();
        let router = methods.iter().fold($router, |router, method| {
            router.on(method.to_method_filter(), $($handler)::+)
        });
        $paths.add_path_operation(&path, methods, utoipa::openapi::path::Operation::new());
        router
    }};
    // The `#[utoipa::path]` item of a handler: `a::b::put` → `a::b::__path_put`.
    (@doc [$($prefix:ident)*] $last:ident) => {
        utoipa_axum::paste! { $($prefix::)* [<__path_ $last>] }
    };
    (@doc [$($prefix:ident)*] $head:ident :: $($rest:ident)::+) => {
        $crate::http::openapi::api_routes!(@doc [$($prefix)* $head] $($rest)::+)
    };
}
pub(crate) use api_routes;

/// Defines unit types whose [`IntoResponses`] is one error status answering [`ErrorBody`].
macro_rules! error_responses {
    ($($(#[$doc:meta])* $name:ident = $status:literal, $description:literal;)*) => {$(
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name;

        impl IntoResponses for $name {
            fn responses() -> BTreeMap<String, RefOr<Response>> {
                error($status, $description)
            }
        }
    )*};
}

fn error(status: u16, description: &str) -> BTreeMap<String, RefOr<Response>> {
    BTreeMap::from([(status.to_string(), body(description, &ErrorBody::name()))])
}

/// A response with a JSON body of the component `schema`.
fn body(description: &str, schema: &str) -> RefOr<Response> {
    let content = ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build();
    let response = ResponseBuilder::new().description(description);
    response.content("application/json", content).build().into()
}

/// A response without a body.
fn empty(description: &str) -> RefOr<Response> {
    ResponseBuilder::new().description(description).build().into()
}

error_responses! {
    /// 400 with the error body.
    BadRequest = 400, "The request cannot be read: malformed JSON or YAML, a field of the wrong type or unknown, a bad path segment, query parameter or header (`code: bad_request`; `field` says where when known).";
    /// 401 with the error body.
    Unauthorized = 401, "No token, or an unknown or revoked one (`code: unauthorized`). Send `Authorization: Bearer <token>`.";
    /// 403 with the error body.
    Forbidden = 403, "The token may not do this: the wrong kind of token, or one not scoped to the environments concerned (`code: forbidden`).";
    /// 404 with the error body.
    NotFound = 404, "What the path names does not exist (`code: not_found`).";
    /// 409 with the error body.
    Conflict = 409, "The change conflicts with the current state (`code: conflict`): a live rollout holds it, a version did not match, or it already exists.";
    /// 413 with the error body.
    TooLarge = 413, "The body is larger than 1 MiB (`code: payload_too_large`).";
    /// 415 with the error body.
    UnsupportedType = 415, "The body's `Content-Type` is not one this route reads (`code: unsupported_media_type`).";
    /// 422 with the error body.
    Invalid = 422, "The content parses but is invalid (`code: invalid`); `field` names the part.";
    /// 502 with the error body.
    ProviderUnavailable = 502, "The identity provider could not be reached or answered nonsense (`code: provider_unavailable`); the message says which.";
    /// 429 with the error body.
    TooManyStreams = 429, "The token holds as many open streams on this server as one token may (`serve --max-streams-per-token`, default 100; `code: too_many_streams`): close one first, or give each client its own token.";
    /// 429 with the error body and `Retry-After`.
    RateLimited = 429, "The token posted more events than it may per second (`serve --events-per-token`, default 20000, held for ten seconds' worth; `code: rate_limited`): send the batch again after the `Retry-After` seconds.";
}

/// The `X-Wavegate-Reason` header a change may carry.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Header)]
pub struct ReasonHeader {
    /// Why the change is made (recorded in its audit entry).
    #[serde(rename = "X-Wavegate-Reason")]
    pub reason: Option<String>,
}

/// 413 as plain text: routes that read the raw body (flag files, plans, rollout commands) are
/// refused by the body limit before they can answer the error body.
#[derive(Debug)]
pub struct TooLargeText;

impl IntoResponses for TooLargeText {
    fn responses() -> BTreeMap<String, RefOr<Response>> {
        let content = ContentBuilder::new().schema(Some(String::schema()));
        let response = ResponseBuilder::new()
            .description("The body is larger than 1 MiB (answered as plain text).")
            .content("text/plain", content.build());
        BTreeMap::from([("413".to_owned(), response.build().into())])
    }
}

/// Every route of the server with its documentation (the evaluation protocols' routes are
/// merged by [`crate::app`] from `wavegate-protocols`; [`document`] describes them).
pub fn routes() -> OpenApiRouter<AppState> {
    use crate::http::*;
    OpenApiRouter::new()
        .routes(api_routes!(healthz))
        .routes(api_routes!(readyz))
        .routes(api_routes!(metrics_text))
        .routes(api_routes!(openapi_json))
        .merge(config::router())
        .merge(tokens::router())
        .merge(signin::router())
        .merge(changes::router())
        .merge(audit::router())
        .merge(rollouts::router())
        .merge(events::router())
        .merge(stream::router())
        .merge(notify::router())
        .merge(scorecard::router())
        .merge(waivers::router())
        .merge(releases::router())
        .merge(freeze::router())
        .merge(reports::router())
        .merge(adoption::router())
        .merge(people::router())
        .merge(gates::router())
        .merge(schedule::router())
        .merge(dashboard::router())
        .merge(ofrep_events::router())
        .merge(otlp::router())
}

const DESCRIPTION: &str = "wavegate: feature flags and guarded progressive rollouts.

Tokens go in `Authorization: Bearer <token>` (or `X-API-Key`), never in URLs. Every failure of \
the admin API answers `{code, message, field?}`; each operation lists the statuses it answers. \
Any route may also answer 400 for a path with `.`, `..`, `//` or encoded separators (refused \
before routing), 405 for a method it does not serve, 408 after 30 seconds, 500 with \
`code: internal` when the server fails, and 503 with `code: storage_unavailable` while the \
storage cannot take writes (a full disk, a read-only database, a database that does not \
answer; the message says which, and `/readyz` says so too).

OFREP (`/ofrep/v1/…`) and Unleash's client and frontend APIs (`/api/client/…`, \
`/api/frontend/…`) follow their own specifications (https://openfeature.dev/specification/appendix-c \
and https://docs.getunleash.io/reference/api/unleash); they are listed here with the statuses \
wavegate answers.";

/// The whole document: the operations of [`routes`] and the protocols, the error body, the
/// bearer scheme and the tags.
pub fn document() -> OpenApi {
    /// Resets [`DOCUMENTING`] however [`routes`] returns.
    struct Documenting;
    impl Drop for Documenting {
        fn drop(&mut self) {
            DOCUMENTING.with(|d| d.set(false));
        }
    }
    DOCUMENTING.with(|d| d.set(true));
    let documenting = Documenting;
    let mut doc = routes().into_openapi();
    drop(documenting);
    doc.merge(protocols::documented());
    doc.info = InfoBuilder::new()
        .title("wavegate")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(DESCRIPTION))
        .build();
    let components = doc.components.get_or_insert_with(Default::default);
    for (name, schema) in [
        (ErrorBody::name(), ErrorBody::schema()),
        (OfrepErrorBody::name(), OfrepErrorBody::schema()),
    ] {
        components.schemas.insert(name.into_owned(), schema);
    }
    let mut schemas = Vec::new();
    ErrorBody::schemas(&mut schemas);
    components.schemas.extend(schemas);
    components
        .add_security_scheme("bearer", SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)));
    doc.tags = Some(
        TAGS.iter()
            .map(|(name, description)| {
                let mut tag = Tag::new(*name);
                tag.description = Some((*description).to_owned());
                tag
            })
            .collect(),
    );
    doc
}

/// The tags operations are grouped by, in the order a reader meets them.
const TAGS: &[(&str, &str)] = &[
    ("Meta", "Health, readiness, metrics and this document."),
    ("Environments", "The promotion path: dev, staging, prod…"),
    (
        "Flags",
        "Flags as code: heads, versions, diffs, reverts, archiving, and applying a flag file.",
    ),
    ("Segments", "Named sets of contexts, versioned like flags."),
    ("Tokens", "API tokens (secrets shown once) and who a token is."),
    ("Audit", "The hash-chained audit log, its verification, and backups."),
    ("Plans", "Rollout plans, their versions and recorded drills."),
    ("Rollouts", "Starting rollouts, reading them, and people's commands."),
    ("Events", "Exposures and outcomes from SDKs."),
    ("Stream", "Server-sent events for SDKs, relays and the dashboard."),
    (
        "Reports",
        "DORA metrics, the release calendar, pilot feedback, adoption, post-rollout reports.",
    ),
    ("Governance", "The go/no-go scorecard, the global freeze and scheduled starts."),
    (
        "Releases",
        "Coordinated releases: several plans in order, at one pace, under one failure policy.",
    ),
    ("Notifications", "Webhook targets worded per audience, and the delivery log."),
    ("Dashboard", "The embedded single-page app and its charts."),
    ("OFREP", "OpenFeature Remote Evaluation Protocol."),
    ("Unleash", "Unleash's client and frontend APIs, for Unleash SDKs."),
];

/// `GET /healthz`: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "Meta",
    responses((status = 200, description = "`ok`", content_type = "text/plain", body = String)))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: 200 while the storage takes writes, else 503 with the reason (evaluation
/// keeps serving from memory either way).
#[utoipa::path(get, path = "/readyz", tag = "Meta",
    responses(
        (status = 200, description = "`ready`, then a `warning: …` line for each problem with the \
            audit record (an entry that does not verify, a head row refused because it no longer \
            matches its entry)", content_type = "text/plain", body = String),
        (status = 503, description = "`not ready: storage unavailable: <reason>` (a full disk, a \
            read-only database, a database that does not answer)", content_type = "text/plain", body = String),
    ))]
async fn readyz(
    axum::extract::State(state): axum::extract::State<crate::state::Health>,
) -> axum::response::Response {
    use axum::http::StatusCode;
    let answer = state.storage.check(&*state.store).await;
    state.metrics.storage_writable.set(i64::from(answer.is_ok()));
    match answer {
        Ok(()) => {
            // Damage to the record does not stop serving (refused rows serve their last
            // verified version), but it is named here.
            let mut body = String::from("ready\n");
            for problem in state.record.problems() {
                body.push_str(&format!("warning: {problem}\n"));
            }
            (StatusCode::OK, body).into_response()
        }
        Err(reason) => {
            (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: storage unavailable: {reason}\n"))
                .into_response()
        }
    }
}

/// The routes of `/metrics`' own listener ([`crate::metrics_app`]).
pub fn metrics_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(api_routes!(healthz))
        .routes(api_routes!(readyz))
        .routes(api_routes!(metrics_text))
}

/// `GET /metrics`: Prometheus' text format. With `serve --metrics-token-file` it needs that
/// token; with `serve --metrics-listen` it is served there, and the main listener answers 404.
#[utoipa::path(get, path = "/metrics", tag = "Meta",
    description = "Metrics in Prometheus' text format (they name every flag key, never values \
        or rules). When the server was started with `--metrics-token-file`, it needs that token \
        as `Authorization: Bearer <token>` (401 otherwise); with `--metrics-listen` it is served \
        only on that address.",
    security((), ("bearer" = [])),
    responses((status = 200, description = "Metrics in Prometheus' text format", content_type = "text/plain", body = String),
        Unauthorized))]
async fn metrics_text(
    axum::extract::State(state): axum::extract::State<crate::state::Health>,
    axum::extract::State(access): axum::extract::State<std::sync::Arc<crate::access::Access>>,
    own_listener: Option<axum::Extension<crate::metrics::OwnListener>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if access.metrics_elsewhere && own_listener.is_none() {
        return crate::http::error::ApiError::not_found("no such route; see /api/v1/openapi.json")
            .into_response();
    }
    if let Err(e) = access.check_metrics(&headers) {
        return e.into_response();
    }
    let writable = state.storage.check(&*state.store).await.is_ok();
    state.metrics.storage_writable.set(i64::from(writable));
    state.metrics.audit(state.record.chain_ok(), &state.record.refused());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
        .into_response()
}

/// The document as served, built once. Building it peaks at several MiB of heap (utoipa's
/// operations and maps, cloned as the routes are assembled), all freed once it is text: that
/// memory goes back to the system rather than staying resident for the server's life.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    let text = serde_json::to_string(&document()).expect("the OpenAPI document serialises");
    crate::memory::release();
    text
});

/// `GET /api/v1/openapi.json`: this document.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "Meta",
    responses((status = 200, description = "This OpenAPI document", content_type = "application/json", body = Object)))]
async fn openapi_json() -> axum::response::Response {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT.as_str()).into_response()
}

/// The evaluation protocols' operations (served by `wavegate-protocols`' router, which the
/// server and the edge relay share), described here from their route table: [`documented`]
/// refuses to build a document that misses one of the routes or describes one that is not
/// served.
mod protocols {
    use std::collections::BTreeMap;

    use utoipa::openapi::{RefOr, response::Response};
    use utoipa::{IntoResponses, OpenApi as _, ToSchema};
    use wavegate_api::error::{OfrepErrorBody, UnleashErrorBody};
    use wavegate_api::ofrep::{BulkEvaluation, Evaluation, EvaluationRequest};

    use super::{body, empty};

    /// The operations, one item per route and method (the items are only documentation: the
    /// protocols' own handlers serve these routes).
    #[derive(utoipa::OpenApi)]
    #[openapi(
        paths(
            ofrep_one,
            ofrep_bulk,
            client_features,
            client_feature,
            client_register,
            client_metrics,
            frontend,
            frontend_post,
            frontend_all,
            frontend_all_post,
            frontend_feature,
            frontend_register,
            frontend_metrics
        ),
        components(schemas(UnleashErrorBody))
    )]
    struct Protocols;

    /// The protocols' operations, checked against `wavegate_protocols::route_table`.
    pub(super) fn documented() -> utoipa::openapi::OpenApi {
        let doc = Protocols::openapi();
        let mut served: Vec<(String, String)> = wavegate_protocols::route_table()
            .into_iter()
            .flat_map(|(path, methods)| {
                methods.iter().map(move |m| (m.as_str().to_lowercase(), path.to_owned()))
            })
            .collect();
        let mut described: Vec<(String, String)> = doc
            .paths
            .paths
            .iter()
            .flat_map(|(path, item)| {
                let item = serde_json::to_value(item).unwrap_or_default();
                let methods: Vec<String> =
                    item.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default();
                methods.into_iter().map(move |m| (m, path.clone()))
            })
            .collect();
        served.sort();
        described.sort();
        assert_eq!(served, described, "the protocols' routes and their description differ");
        doc
    }

    /// OFREP refuses a token with a bare status.
    struct OfrepDenied;

    impl IntoResponses for OfrepDenied {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            BTreeMap::from([
                ("401".to_owned(), empty("No token, or an unknown one (no body)")),
                ("403".to_owned(), empty("The token may not evaluate here (no body)")),
            ])
        }
    }

    /// The Unleash APIs refuse a token with `{error, message}`.
    struct UnleashDenied;

    impl IntoResponses for UnleashDenied {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let schema = UnleashErrorBody::name();
            BTreeMap::from([
                ("401".to_owned(), body("No token, or an unknown one", &schema)),
                ("403".to_owned(), body("The token may not use this API here", &schema)),
            ])
        }
    }

    /// A bad request to the Unleash APIs: a body, context or filter that does not read, or a
    /// token spanning several environments without one named.
    struct UnleashBadRequest;

    impl IntoResponses for UnleashBadRequest {
        fn responses() -> BTreeMap<String, RefOr<Response>> {
            let why = "A body, context or filter that does not read, or no environment named";
            BTreeMap::from([("400".to_owned(), body(why, &UnleashErrorBody::name()))])
        }
    }

    /// OFREP: one flag for a context. Errors are OFREP's `{errorCode, errorDetails, key}`.
    #[utoipa::path(post, path = "/ofrep/v1/evaluate/flags/{key}", tag = "OFREP",
        params(("key" = String, Path, description = "The flag's key"),
            ("X-Wavegate-Environment" = Option<String>, Header,
                description = "The environment, when the token spans several")),
        request_body = EvaluationRequest,
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The evaluation", body = Evaluation),
            (status = 400, description = "PARSE_ERROR, INVALID_CONTEXT, TARGETING_KEY_MISSING \
                or GENERAL", body = OfrepErrorBody),
            OfrepDenied,
            (status = 404, description = "FLAG_NOT_FOUND", body = OfrepErrorBody),
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn ofrep_one() {}

    /// OFREP: every flag of the environment for a context, with an `ETag`.
    #[utoipa::path(post, path = "/ofrep/v1/evaluate/flags", tag = "OFREP",
        params(("If-None-Match" = Option<String>, Header,
                description = "The `ETag` of an earlier answer for the same context"),
            ("X-Wavegate-Environment" = Option<String>, Header,
                description = "The environment, when the token spans several")),
        request_body = EvaluationRequest,
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The evaluations", body = BulkEvaluation),
            (status = 304, description = "Unchanged since the `ETag` sent"),
            (status = 400, description = "PARSE_ERROR, INVALID_CONTEXT or GENERAL",
                body = OfrepErrorBody),
            OfrepDenied,
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn ofrep_bulk() {}

    /// Unleash client API: the features document (rules for local evaluation; server-sdk and
    /// admin tokens).
    #[utoipa::path(get, path = "/api/client/features", tag = "Unleash",
        params(("If-None-Match" = Option<String>, Header, description = "An earlier `ETag`")),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "Unleash's features document", body = Object),
            (status = 304, description = "Unchanged since the `ETag` sent"),
            UnleashBadRequest, UnleashDenied,
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn client_features() {}

    /// Unleash client API: one feature.
    #[utoipa::path(get, path = "/api/client/features/{name}", tag = "Unleash",
        params(("name" = String, Path, description = "The feature (flag)")),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The feature", body = Object),
            UnleashBadRequest, UnleashDenied,
            (status = 404, description = "No such feature", body = UnleashErrorBody),
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn client_feature() {}

    /// Unleash client API: an SDK registers.
    #[utoipa::path(post, path = "/api/client/register", tag = "Unleash",
        request_body(content = Object, description = "Unleash's registration"),
        security(("bearer" = [])),
        responses((status = 202, description = "Taken"), UnleashBadRequest, UnleashDenied))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn client_register() {}

    /// Unleash client API: an SDK's toggle counts, which feed the exposures of live rollouts.
    #[utoipa::path(post, path = "/api/client/metrics", tag = "Unleash",
        request_body(content = Object, description = "Unleash's metrics report"),
        security(("bearer" = [])),
        responses(
            (status = 202, description = "Counted"),
            UnleashBadRequest, UnleashDenied,
            (status = 503, description = "Not counted now; send again", body = UnleashErrorBody),
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn client_metrics() {}

    /// Documents one method of one of the frontend API's toggle lists.
    macro_rules! toggles {
        ($name:ident, $method:ident, $path:tt, $which:tt) => {
            #[utoipa::path($method, path = $path, tag = "Unleash",
                summary = concat!("Unleash frontend API: ", $which), security(("bearer" = [])),
                responses((status = 200, description = "`{toggles: […]}`, with an `ETag` of its bytes", body = Object),
                    (status = 304, description = "Unchanged since the `ETag` sent (`If-None-Match`)"),
                    UnleashBadRequest, UnleashDenied))]
            #[allow(dead_code)] // Documentation only (see the module).
            async fn $name() {}
        };
    }

    toggles!(frontend, get, "/api/frontend", "the toggles on for the query string's context");
    toggles!(frontend_post, post, "/api/frontend", "the toggles on for the context sent");
    toggles!(frontend_all, get, "/api/frontend/all", "every toggle for the query's context");
    toggles!(frontend_all_post, post, "/api/frontend/all", "every toggle for the context sent");

    /// Unleash frontend API: one toggle, if it is on for the context.
    #[utoipa::path(get, path = "/api/frontend/features/{name}", tag = "Unleash",
        params(("name" = String, Path, description = "The feature (flag)")),
        security(("bearer" = [])),
        responses(
            (status = 200, description = "The toggle, with an `ETag` of its bytes", body = Object),
            (status = 304, description = "Unchanged since the `ETag` sent (`If-None-Match`)"),
            UnleashBadRequest, UnleashDenied,
            (status = 404, description = "No such feature, or off for this context",
                body = UnleashErrorBody),
        ))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn frontend_feature() {}

    /// Unleash frontend API: a frontend SDK registers (accepted, not recorded).
    #[utoipa::path(post, path = "/api/frontend/client/register", tag = "Unleash",
        request_body(content = Object), security(("bearer" = [])),
        responses((status = 202, description = "Accepted"), UnleashBadRequest, UnleashDenied))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn frontend_register() {}

    /// Unleash frontend API: a frontend SDK's metrics (accepted, not recorded).
    #[utoipa::path(post, path = "/api/frontend/client/metrics", tag = "Unleash",
        request_body(content = Object), security(("bearer" = [])),
        responses((status = 202, description = "Accepted"), UnleashBadRequest, UnleashDenied))]
    #[allow(dead_code)] // Documentation only (see the module).
    async fn frontend_metrics() {}
}
