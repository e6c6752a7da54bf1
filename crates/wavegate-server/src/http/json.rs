//! [`JsonBody`]: a JSON extractor whose rejections say what is wrong and where, as an [`ApiError`].

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use crate::http::error::ApiError;

/// Like `axum::Json`, but any content type is accepted and errors are [`ApiError`]s that name
/// the line, column and (for unknown or mistyped fields) the field.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// Turns a body-read failure (usually: too large) into an [`ApiError`].
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError {
            status: e.status(),
            code: crate::http::error::ErrorCode::PayloadTooLarge,
            message: "request body is too large".into(),
            field: None,
            retry_after: None,
        }
    } else {
        ApiError::bad_request(format!("could not read the request body: {e}"))
    }
}

/// Parses JSON bytes into `T` with a located error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if std::str::from_utf8(bytes).is_err() {
        return Err(ApiError::bad_request("request body is not valid UTF-8"));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("request body is empty; expected a JSON object"));
    }
    serde_json::from_slice(bytes).map_err(|e| {
        let at = format!("line {}, column {}", e.line(), e.column());
        let kind = match e.classify() {
            serde_json::error::Category::Data => "invalid request body",
            _ => "malformed JSON",
        };
        ApiError { field: Some(at.clone()), ..ApiError::bad_request(format!("{kind}: {e}")) }
    })
}

/// Defines an extractor that wraps an axum one and rejects with a JSON [`ApiError`] whose
/// message starts with `what` and says what is wrong.
macro_rules! api_extractor {
    ($(#[$doc:meta])* $name:ident wraps $inner:ident ($($bound:tt)*), $what:literal) => {
        $(#[$doc])*
        #[derive(Debug)]
        pub struct $name<T>(pub T);

        impl<T, S> axum::extract::FromRequestParts<S> for $name<T>
        where
            T: DeserializeOwned + $($bound)*,
            S: Send + Sync,
        {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut axum::http::request::Parts,
                state: &S,
            ) -> Result<Self, Self::Rejection> {
                axum::extract::$inner::<T>::from_request_parts(parts, state)
                    .await
                    .map(|v| $name(v.0))
                    .map_err(|e| ApiError::bad_request(format!(concat!($what, ": {}"), e.body_text())))
            }
        }
    };
}

api_extractor!(
    /// Like `axum::extract::Path`, rejecting with a JSON [`ApiError`] that says which segment
    /// is wrong.
    ApiPath wraps Path (Send), "invalid path"
);
api_extractor!(
    /// Like `axum::extract::Query`, rejecting with a JSON [`ApiError`] that names the parameter.
    ApiQuery wraps Query (Sized), "invalid query string"
);
