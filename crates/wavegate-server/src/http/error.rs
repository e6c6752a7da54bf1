//! [`ApiError`]: every admin-API failure as a status and a JSON `{code, message, field?}`.
//! Details of 5xx errors are logged by the handler that saw them, never sent to the client.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use wavegate_core::{FlagFileError, SpecError};
use wavegate_store::StoreError;

pub use wavegate_api::error::ErrorCode;

/// An error answered to an API client.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Machine-readable code.
    pub code: ErrorCode,
    /// What is wrong, for people.
    pub message: String,
    /// Where in the input, when known (a dotted path or `line L, column C`).
    pub field: Option<String>,
    /// Seconds to wait before sending again (`Retry-After`), for a 429.
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct Body<'a> {
    code: ErrorCode,
    message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl ApiError {
    fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), field: None, retry_after: None }
    }
    /// 400 bad request.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, message)
    }
    /// 422 invalid content at `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, ErrorCode::Invalid, message)
        }
    }
    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }
    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }
    /// 404.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }
    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }
    /// 415: the route does not read this `Content-Type`.
    pub fn unsupported_media_type(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, ErrorCode::UnsupportedMediaType, message)
    }
    /// 429: the token holds as many open streams as it may.
    pub fn too_many_streams(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::TooManyStreams, message)
    }
    /// 429: the token posted more than it may; send again after `seconds`.
    pub fn rate_limited(message: impl Into<String>, seconds: u64) -> ApiError {
        ApiError {
            retry_after: Some(seconds),
            ..ApiError::new(StatusCode::TOO_MANY_REQUESTS, ErrorCode::RateLimited, message)
        }
    }
    /// 502: the identity provider failed (its address and answer are the operator's own
    /// configuration, so the message names them).
    pub fn provider_unavailable(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_GATEWAY, ErrorCode::ProviderUnavailable, message)
    }
    /// 500; the detail goes to the log only.
    pub fn internal(detail: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; see the server log",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Body { code: self.code, message: &self.message, field: self.field.as_deref() };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(s) = self.retry_after {
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, s.into());
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(msg) => ApiError::conflict(msg),
            StoreError::Invalid(msg) => ApiError::bad_request(msg),
            StoreError::Unavailable(reason) => {
                tracing::warn!(%reason, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StorageUnavailable,
                    format!("storage unavailable: {reason}"),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::service::ServiceError> for ApiError {
    fn from(e: crate::service::ServiceError) -> ApiError {
        use crate::service::ServiceError as S;
        match e {
            S::NotFound(m) => ApiError::not_found(m),
            S::Invalid { field, message } => ApiError::invalid(field, message),
            S::Malformed { field, message } => ApiError { field, ..ApiError::bad_request(message) },
            S::Forbidden(m) => ApiError::forbidden(m),
            S::Conflict(m) => ApiError::conflict(m),
            S::Store(e) => e.into(),
            S::Internal(detail) => ApiError::internal(detail),
        }
    }
}

impl From<SpecError> for ApiError {
    fn from(e: SpecError) -> ApiError {
        ApiError::invalid(e.path.clone(), e.to_string())
    }
}

impl From<FlagFileError> for ApiError {
    fn from(e: FlagFileError) -> ApiError {
        match &e {
            FlagFileError::Syntax { line: Some(l), column, .. } => ApiError {
                field: Some(match column {
                    Some(c) => format!("line {l}, column {c}"),
                    None => format!("line {l}"),
                }),
                ..ApiError::bad_request(e.to_string())
            },
            FlagFileError::Invalid(spec) => spec.clone().into(),
            FlagFileError::TooLarge(_) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::PayloadTooLarge,
                e.to_string(),
            ),
            _ => ApiError::bad_request(e.to_string()),
        }
    }
}

/// Result alias for handlers.
pub type ApiResult<T> = Result<T, ApiError>;
