//! Answering a read again when its caller changed. A GET or HEAD whose caller this node
//! remembers starts without a database trip for the credential; the request's own first
//! database call checks the caller (`auth::CallerCheck::Deferred`, ADR-34). This middleware
//! opens the room for that check around each request and looks at the verdict when the
//! handler is done:
//!
//! - passed: the answer stands;
//! - never run (the handler touched no database): it is run now, one trip, as before;
//! - failed (deactivated, suspended, revoked, or roles, groups or names changed): the first
//!   answer is dropped and the request is routed and answered again, its caller read at once —
//!   a 401 for a caller who is gone, the right answer for one whose rights changed.
//!
//! Innermost, so the other middleware see one request and one answer.

use std::future::{Ready, ready};
use std::rc::Rc;

use actix_web::HttpMessage as _;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::web;
use futures_util::future::LocalBoxFuture;

use crate::api::error::ApiError;
use crate::api::extract::AnsweredAgain;
use crate::api::state::AppState;
use crate::db::DbError;
use crate::db::caller_check::Verdict;

/// The middleware (`App::wrap`).
pub struct CallerChecks;

impl<S, B> Transform<S, ServiceRequest> for CallerChecks
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Transform = CallerChecksService<S>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(CallerChecksService {
            service: Rc::new(service),
        }))
    }
}

pub struct CallerChecksService<S> {
    service: Rc<S>,
}

impl<S, B> Service<ServiceRequest> for CallerChecksService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: 'static,
{
    type Response = ServiceResponse<B>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<'static, Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        Box::pin(crate::auth::with_caller_check(async move {
            let state = req.app_data::<web::Data<AppState>>().cloned();
            let response = service.call(req).await?;
            let verdict = match crate::auth::deferred_check() {
                None => return Ok(response),
                Some(Verdict::Pending) => run_now(state).await?,
                Some(verdict) => verdict,
            };
            crate::metrics::deferred_caller_check(verdict == Verdict::Passed);
            if verdict == Verdict::Passed {
                return Ok(response);
            }
            crate::auth::forget_deferred_check();
            // The first answer goes before routing again, which needs the request unshared.
            let (request, first_answer) = response.into_parts();
            drop(first_answer);
            let mut again = ServiceRequest::from_request(request);
            again.match_info_mut().reset();
            again.extensions_mut().insert(AnsweredAgain);
            service.call(again).await
        }))
    }
}

/// Runs a check no database call of the handler ran: any database call runs it first.
async fn run_now(state: Option<web::Data<AppState>>) -> Result<Verdict, actix_web::Error> {
    let Some(state) = state else {
        return Err(ApiError::internal("application state missing").into());
    };
    match state.db.read(|_| Ok::<_, DbError>(())).await {
        Ok(()) => Ok(Verdict::Passed),
        Err(DbError::CallerChanged) => Ok(Verdict::Failed),
        Err(error) => Err(ApiError::from(error).into()),
    }
}
