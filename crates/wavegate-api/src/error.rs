//! The error body of every failed admin-API request, and the OFREP error body.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Machine-readable error codes of the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 400: the body is not JSON/YAML, or does not fit the expected shape.
    BadRequest,
    /// 422: the content parses but is invalid (unknown variant, bad regex…).
    Invalid,
    /// 401: no token was given, or it is unknown or revoked.
    Unauthorized,
    /// 403: the token may not do this (wrong kind or environment).
    Forbidden,
    /// 404: the thing named does not exist.
    NotFound,
    /// 409: the change conflicts with the current state.
    Conflict,
    /// 413: the body is too large.
    PayloadTooLarge,
    /// 415: the body's `Content-Type` is not one the route reads.
    UnsupportedMediaType,
    /// 429: the token holds as many open streams (`/api/v1/stream`, `/ofrep/v1/events`) as
    /// one token may on that server; one must close first.
    TooManyStreams,
    /// 429: the token posted more events than it may per second (`serve --events-per-token`);
    /// `Retry-After` says when to send again.
    RateLimited,
    /// 500: something failed on the server's side (details only in its log).
    Internal,
    /// 503: the storage cannot be written or reached right now (a full disk, a read-only
    /// database, an outage); the message says which. Retry later.
    StorageUnavailable,
    /// 502: the identity provider cannot be reached or answered nonsense (sign-in only).
    ProviderUnavailable,
}

impl ErrorCode {
    /// Its name in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Invalid => "invalid",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::TooManyStreams => "too_many_streams",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Internal => "internal",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::ProviderUnavailable => "provider_unavailable",
        }
    }
}

/// `{code, message, field?}`: what every admin-API failure answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What is wrong, for people.
    pub message: String,
    /// Where in the input, when known: a dotted path (`flags.x.variants`) or
    /// `line L, column C`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// An OFREP error: `{errorCode, errorDetails, key?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OfrepErrorBody {
    /// `FLAG_NOT_FOUND`, `PARSE_ERROR`, `TARGETING_KEY_MISSING`, `INVALID_CONTEXT`, `GENERAL`.
    #[serde(rename = "errorCode")]
    pub error_code: String,
    /// What is wrong, for people.
    #[serde(rename = "errorDetails")]
    pub error_details: String,
    /// The flag, for single-flag evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// An Unleash API error (`/api/client/…`, `/api/frontend/…`): `{error, message}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnleashErrorBody {
    /// The HTTP status's reason phrase (`Bad Request`, `Not Found`…).
    pub error: String,
    /// What is wrong, for the SDK's log.
    pub message: String,
}
