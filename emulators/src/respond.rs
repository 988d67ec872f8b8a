//! Answers both emulators build: JSON, and errors in the Hub's shape.

use axum::body::Body;
use axum::http::header::{self, HeaderValue};
use axum::http::{Response, StatusCode};
use serde::Serialize;

/// A JSON response.
pub fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

/// An error in the Hub's shape: `{"error": message}` plus `X-Error-Message`.
pub fn error_response(status: StatusCode, message: &str) -> Response<Body> {
    let mut response = json_response(status, &serde_json::json!({ "error": message }));
    if let Ok(value) = HeaderValue::from_str(&message.replace(['\r', '\n'], " ")) {
        response.headers_mut().insert("x-error-message", value);
    }
    response
}
