//! Request extractors that need the running server: the authenticated [`Principal`].
//! Authentication itself is `crate::auth::authenticate`; this only reads the credential from
//! the request, hands it over with what auth needs, and counts the tenant's API call.

use std::future::Future;
use std::pin::Pin;

use actix_web::HttpMessage as _;
use actix_web::http::{Method, header};
use actix_web::{FromRequest, HttpRequest, web};

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::{self, ApiKeyPrincipal, Caller, Principal, UserPrincipal};

/// The bearer credential of a request, if it has one in the right form.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then(|| credential.to_owned())
}

/// The address of the client: the TCP peer, or — when the peer is a trusted proxy
/// (`STAGEFLOW_TRUSTED_PROXIES`) — the right-most `X-Forwarded-For` entry that is not itself
/// a trusted proxy. A client's own `X-Forwarded-For` is never believed.
pub fn client_addr(req: &HttpRequest) -> Option<String> {
    let peer = req.peer_addr()?.ip();
    let Some(state) = req.app_data::<web::Data<AppState>>() else {
        return Some(peer.to_string());
    };
    let proxies = &state.config.trusted_proxies;
    if proxies.is_empty() {
        return Some(peer.to_string());
    }
    let forwarded = req
        .headers()
        .get_all("x-forwarded-for")
        .map(|value| value.to_str().unwrap_or("-"));
    Some(proxies.client_address(peer, forwarded).to_string())
}

/// Where a heavy read of this request may be served (`db::replica`): the caller's own recent
/// writes must show, and `Cache-Control: no-cache` asks for the primary.
pub fn read_route(req: &HttpRequest) -> crate::db::replica::ReadRoute {
    let fresh = req
        .headers()
        .get_all(header::CACHE_CONTROL)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|directive| {
            let directive = directive.trim();
            directive.eq_ignore_ascii_case("no-cache")
                || directive.eq_ignore_ascii_case("max-age=0")
        });
    let reader = req
        .extensions()
        .get::<RequestPrincipal>()
        .map(|p| (p.scope, p.id));
    crate::db::replica::ReadRoute { fresh, reader }
}

/// The tenant of the request's credential, once authenticated (response middleware reads it:
/// the maintenance header).
#[derive(Debug, Clone, Copy)]
pub struct RequestTenant(pub crate::domain::ids::TenantId);

/// The tenant user or API key of the request's credential, once authenticated (response
/// middleware reads it: the write mark of a read replica, `db::replica`).
#[derive(Debug, Clone, Copy)]
pub struct RequestPrincipal {
    pub scope: crate::auth::TenantScope,
    pub id: uuid::Uuid,
}

/// Marks a request answered a second time because its caller changed
/// (`api::server::caller_checks`): its caller is checked at once, and its call is not counted
/// again.
#[derive(Debug, Clone, Copy)]
pub struct AnsweredAgain;

/// How the caller of `req` is checked: a read answered the first time may leave the check to
/// its own database work; anything else is checked at once.
fn caller_check(req: &HttpRequest) -> auth::CallerCheck {
    let read = matches!(*req.method(), Method::GET | Method::HEAD);
    if read && req.extensions().get::<AnsweredAgain>().is_none() {
        auth::CallerCheck::Deferred
    } else {
        auth::CallerCheck::Now
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = bearer(req);
        let check = caller_check(req);
        let client_addr = client_addr(req);
        let request = req.clone();
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            let caller = auth::authenticate(&state.auth(), credential, check).await?;
            let member = match &caller {
                Caller::User(UserPrincipal { scope, id, .. }) => Some((*scope, id.0)),
                Caller::ApiKey(ApiKeyPrincipal { scope, id, .. }) => Some((*scope, id.0)),
                Caller::Operator(_) => None,
            };
            if let Some((scope, id)) = member {
                let mut extensions = request.extensions_mut();
                if extensions.get::<AnsweredAgain>().is_none() {
                    state
                        .usage
                        .record_api_call(scope.tenant_id(), state.clock.now());
                }
                extensions.insert(RequestTenant(scope.tenant_id()));
                extensions.insert(RequestPrincipal { scope, id });
            }
            Ok(Principal {
                caller,
                client_addr,
            })
        })
    }
}
