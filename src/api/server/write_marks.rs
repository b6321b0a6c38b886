//! With a read replica: after a tenant user's or API key's successful write, record the
//! primary's WAL position for that caller before the response leaves, so its next heavy read on
//! any node sees the write (`db::replica`, docs/DEPLOYMENT.md "Primary and read replicas").

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;

use crate::api::extract::RequestPrincipal;
use crate::api::state::AppState;

/// The middleware (`middleware::from_fn`), innermost: it sees the handler's own status. Safe
/// methods and failed requests write nothing to mark; without a replica it does nothing.
pub async fn mark_writes(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .filter(|state| state.db.replica().is_some())
        .cloned();
    let unsafe_method = !req.method().is_safe();
    let response = next.call(req).await?;
    if let Some(state) = state
        && unsafe_method
        && response.status().is_success()
    {
        let principal = response
            .request()
            .extensions()
            .get::<RequestPrincipal>()
            .copied();
        if let Some(principal) = principal {
            state.db.mark_write(principal.scope, principal.id).await;
        }
    }
    Ok(response)
}
