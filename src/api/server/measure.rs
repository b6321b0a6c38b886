//! Request metrics: every answered request counts once in `stageflow_http_requests_total` and
//! `stageflow_http_request_duration_seconds`, labelled with its route template (never the raw
//! path, so ids do not grow the label set) and status. Outermost, so refusals by other
//! middleware are counted as the client saw them.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

/// The middleware (`middleware::from_fn`).
pub async fn measure(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = req.method().clone();
    // The resource map knows the template before routing has run.
    let route = req.match_pattern();
    let result = next.call(req).await;
    let status = match &result {
        Ok(response) => response.status(),
        Err(error) => error.as_response_error().status_code(),
    };
    crate::metrics::http_request(
        method.as_str(),
        route.as_deref().unwrap_or(crate::metrics::UNMATCHED_ROUTE),
        status.as_u16(),
        started.elapsed(),
    );
    result
}
