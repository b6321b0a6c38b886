//! Request ids: every response carries `X-Request-Id` — the client's own when it sent a
//! well-formed one, else a new UUID v7 — and every problem document carries it as `instance`,
//! so a report of a failure can be matched to the access-log line and any error-log line of
//! the same request (both print it).

use actix_web::HttpResponse;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;

use crate::api::error::ApiError;

pub const HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id accepted from a client.
pub const MAX_CHARS: usize = 128;

tokio::task_local! {
    /// The id of the request whose handling is running on this task.
    static CURRENT: String;
}

/// The id of the request being handled, for problem documents and log lines.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A client's request id is usable when it is 1–128 letters, digits, `-`, `_`, `.` or `:`
/// (UUIDs, ULIDs, trace ids and the like), so it can go into logs and headers as it is.
pub fn parse(raw: &[u8]) -> Option<String> {
    let ok = (1..=MAX_CHARS).contains(&raw.len())
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'));
    ok.then(|| String::from_utf8_lossy(raw).into_owned())
}

/// The middleware (`middleware::from_fn`). It sits outside the problem rewriting and inside
/// the access log, so both see the id. A malformed client id is refused with 400 before
/// anything runs: echoing it would put the client's bytes into every log line.
pub async fn request_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let id = match req.headers().get(&HEADER) {
        None => uuid::Uuid::now_v7().to_string(),
        Some(raw) => match parse(raw.as_bytes()) {
            Some(id) => id,
            None => {
                let id = uuid::Uuid::now_v7().to_string();
                let refusal = CURRENT.sync_scope(id.clone(), || {
                    HttpResponse::from_error(ApiError::Malformed(format!(
                        "X-Request-Id must be 1 to {MAX_CHARS} letters, digits, '-', '_', '.' \
                         or ':'; send none to get one generated."
                    )))
                });
                let mut response = req.into_response(refusal).map_into_right_body();
                set_header(&mut response, &id);
                return Ok(response);
            }
        },
    };
    let mut response = CURRENT.scope(id.clone(), next.call(req)).await?;
    set_header(&mut response, &id);
    Ok(response.map_into_left_body())
}

fn set_header<B>(response: &mut ServiceResponse<B>, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert(HEADER, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_formed_ids_are_taken_as_they_are() {
        for good in [
            "0190f3c2-7a1b-7c3d-9e8f-0123456789ab",
            "01J9ZQ3K8X",
            "trace:abc.def_1",
            &"a".repeat(MAX_CHARS),
        ] {
            assert_eq!(parse(good.as_bytes()).as_deref(), Some(good));
        }
        for bad in [
            "",
            "has space",
            "new\nline",
            "ünï",
            "a/b",
            &"a".repeat(MAX_CHARS + 1),
        ] {
            assert_eq!(parse(bad.as_bytes()), None, "{bad:?}");
        }
    }
}
