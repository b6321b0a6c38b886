//! Error responses as reusable OpenAPI components, and the glue that makes actix-web's own
//! errors (unknown route, wrong method, unreadable JSON, wrong content type, too large) answer
//! with problem documents too.

use actix_web::body::MessageBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, error};
use utoipa::ToResponse;

use crate::api::error::{ApiError, FieldError, PROBLEM_CONTENT_TYPE, Problem};

/// The request could not be read: unparsable JSON or query string.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/malformed-request", "title": "Bad Request", "status": 400,
        "detail": "The body is not valid JSON: EOF while parsing an object at line 1 column 12"})
)]
pub struct BadRequest(pub Problem);

/// Missing, invalid or expired credentials. The same answer whatever the reason.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/unauthorized", "title": "Unauthorized", "status": 401,
        "detail": "Missing, invalid or expired credentials."})
)]
pub struct Unauthorized(pub Problem);

/// Authenticated, but the caller's roles do not allow this.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/forbidden", "title": "Forbidden", "status": 403,
        "detail": "This needs the role tenant_admin."})
)]
pub struct Forbidden(pub Problem);

/// No such resource — or it belongs to another tenant; the two are indistinguishable.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/not-found", "title": "Not Found", "status": 404,
        "detail": "The requested resource does not exist."})
)]
pub struct NotFound(pub Problem);

/// Conflict with the current state. Types: `/problems/duplicate` (a key or name is taken),
/// `/problems/quota-exceeded` (a plan cap is reached; `cap` and `limit` name it),
/// `/problems/transition-unavailable` (wrong state or a guard that does not hold; the detail
/// says which), `/problems/action-failed` (a transition's action cannot run; nothing was
/// written), `/problems/ticket-closed`, `/problems/too-many-links`, `/problems/draft-exists`,
/// `/problems/version-published`, `/problems/template-published`, `/problems/not-published`,
/// `/problems/master-in-use`, `/problems/calendar-in-use` (an SLA policy uses the calendar),
/// `/problems/already-installed`, `/problems/already-withdrawn` (an announcement),
/// `/problems/export-required` (a tenant is deleted only after a finished export),
/// `/problems/idempotency-key-in-use` (a concurrent request with the same key; retry).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/quota-exceeded", "title": "Conflict", "status": 409,
        "detail": "The account's plan allows max_users = 5, and that is reached; nothing was changed. Raise the plan's cap or free capacity first.",
        "cap": "max_users", "limit": 5})
)]
pub struct Conflict(pub Problem);

/// `If-Match` names a version that is no longer current.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/precondition-failed", "title": "Precondition Failed",
        "status": 412, "detail": "The resource has changed since the version named in If-Match."})
)]
pub struct PreconditionFailed(pub Problem);

/// Too many requests from this client; retry after the `Retry-After` seconds.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying")),
    example = json!({"type": "/problems/rate-limited", "title": "Too Many Requests", "status": 429,
        "detail": "Too many requests; retry after 12 seconds."})
)]
pub struct TooManyRequests(pub Problem);

/// The body exceeds the configured size limit.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/payload-too-large", "title": "Payload Too Large",
        "status": 413, "detail": "The request body exceeds the limit of 1048576 bytes."})
)]
pub struct PayloadTooLarge(pub Problem);

/// The body is not `application/json`.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/unsupported-media-type", "title": "Unsupported Media Type",
        "status": 415, "detail": "Send the body as application/json."})
)]
pub struct UnsupportedMediaType(pub Problem);

/// Well-formed but invalid content; `errors` has one entry per offending field.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/validation", "title": "Unprocessable Entity", "status": 422,
        "detail": "The request content is not valid; see errors.",
        "errors": [{"field": "username", "code": "required", "message": "missing field `username`"}]})
)]
pub struct Unprocessable(pub Problem);

/// The database cannot be reached or is not migrated; retry later.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/unavailable", "title": "Service Unavailable", "status": 503,
        "detail": "The service cannot answer right now; try again shortly."})
)]
pub struct Unavailable(pub Problem);

/// The database cannot be reached, or the password-hashing queue has no room for this request
/// (then `Retry-After` says when to try again).
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    headers(("Retry-After" = u64, description = "Seconds to wait before retrying (when the hashing queue is full)")),
    example = json!({"type": "/problems/unavailable", "title": "Service Unavailable", "status": 503,
        "detail": "The server is busy; retry after 1 seconds."})
)]
pub struct Busy(pub Problem);

/// An unexpected error; details are in the server log, never in the response.
#[derive(ToResponse)]
#[response(
    content_type = "application/problem+json",
    example = json!({"type": "/problems/internal", "title": "Internal Server Error", "status": 500,
        "detail": "An unexpected error occurred; it has been logged."})
)]
pub struct Internal(pub Problem);

/// Maps actix-web's JSON body errors onto problems.
pub fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> error::Error {
    use error::JsonPayloadError as E;
    let api = match err {
        E::ContentType => {
            ApiError::UnsupportedMediaType("Send the body as application/json.".to_owned())
        }
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            ApiError::PayloadTooLarge { limit }
        }
        E::Deserialize(e) => from_serde(&e),
        E::Payload(e) => payload_problem(e),
        other => ApiError::Malformed(format!("The body cannot be read: {other}")),
    };
    api.into()
}

/// A body that is JSON but does not fit the expected shape is unprocessable (422); one that is
/// not JSON at all is malformed (400). serde's messages describe the client's input only.
fn from_serde(e: &serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let message = e.to_string();
            let (field, code) = field_of_serde_message(&message);
            ApiError::Validation(vec![FieldError::new(field, code, message)])
        }
        Category::Syntax | Category::Eof | Category::Io => {
            ApiError::Malformed(format!("The body is not valid JSON: {e}"))
        }
    }
}

/// Picks the field name out of serde's "missing field `x`" / "unknown field `x`" messages.
fn field_of_serde_message(message: &str) -> (String, &'static str) {
    let quoted = || {
        message
            .split('`')
            .nth(1)
            .map(str::to_owned)
            .unwrap_or_else(|| "body".to_owned())
    };
    if message.starts_with("missing field") {
        (quoted(), "required")
    } else if message.starts_with("unknown field") {
        (quoted(), "unknown_field")
    } else {
        ("body".to_owned(), "invalid_type")
    }
}

fn payload_problem(e: error::PayloadError) -> ApiError {
    match e {
        error::PayloadError::Overflow => ApiError::PayloadTooLarge { limit: 0 },
        other => ApiError::Malformed(format!("The body cannot be read: {other}")),
    }
}

/// Maps query-string errors onto problems: a query string that parses but holds a value the
/// parameter does not take (`limit=abc`, `format=xlsx`) is unprocessable (422), as in a body.
pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> error::Error {
    match &err {
        error::QueryPayloadError::Deserialize(e) => {
            ApiError::validation("query", "invalid", e.to_string()).into()
        }
        _ => ApiError::Malformed(format!("The query string is not valid: {err}")).into(),
    }
}

/// A path segment that does not parse (e.g. a malformed id) names no resource: 404.
pub fn path_error(_err: error::PathError, _req: &HttpRequest) -> error::Error {
    ApiError::NotFound.into()
}

/// Last line of defence: an error response that is not yet a problem document (from a part of
/// actix-web not configured above) is rewritten into one with the same status and headers.
pub fn ensure_problem<B: MessageBody + 'static>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_problem = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with(PROBLEM_CONTENT_TYPE));
    if is_problem {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let problem = Problem {
        kind: format!("/problems/http-{}", status.as_u16()),
        title: status.canonical_reason().unwrap_or("Error").to_owned(),
        status: status.as_u16(),
        detail: match res.response().error() {
            Some(_) if status.is_server_error() => {
                "An unexpected error occurred; it has been logged.".to_owned()
            }
            Some(err) => err.to_string(),
            None => status.canonical_reason().unwrap_or("Error").to_owned(),
        },
        errors: Vec::new(),
        cap: None,
        limit: None,
        instance: super::request_id::current(),
    };
    let body = serde_json::to_string(&problem).unwrap_or_default();
    let (req, mut res) = res.into_parts();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(PROBLEM_CONTENT_TYPE),
    );
    res.headers_mut().remove(header::CONTENT_LENGTH);
    let res = res.set_body(body).map_into_boxed_body();
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, res).map_into_right_body(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_name_their_field() {
        assert_eq!(
            field_of_serde_message("missing field `password` at line 1 column 20"),
            ("password".to_owned(), "required")
        );
        assert_eq!(
            field_of_serde_message("unknown field `pasword`, expected one of ..."),
            ("pasword".to_owned(), "unknown_field")
        );
        assert_eq!(
            field_of_serde_message("invalid type: integer `1`, expected a string"),
            ("body".to_owned(), "invalid_type")
        );
    }
}
