//! Credentials → [`Principal`]. This module is the only place that turns a request's credential
//! into an identity (and, with tenants, into the `TenantScope` every tenant query starts from).

pub mod password;
pub mod token;

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};

use crate::app::AppState;
use crate::db;
use crate::domain::credentials::{Password, Username};
use crate::error::ApiError;
use crate::ids::OperatorId;
use token::{IssuedToken, SubjectKind};

/// Role name carried by platform operator tokens.
pub const PLATFORM_OPERATOR_ROLE: &str = "platform_operator";

/// The authenticated caller of a request.
#[derive(Debug, Clone)]
pub enum Principal {
    /// The platform operator: manages plans, accounts and tenants; belongs to no tenant.
    Operator {
        id: OperatorId,
        username: String,
        display_name: String,
    },
}

impl Principal {
    pub fn roles(&self) -> Vec<String> {
        match self {
            Self::Operator { .. } => vec![PLATFORM_OPERATOR_ROLE.to_owned()],
        }
    }
}

/// The bearer credential of a request, if it has one in the right form.
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, credential) = value.split_once(' ')?;
    let credential = credential.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !credential.is_empty()).then(|| credential.to_owned())
}

async fn authenticate(
    state: web::Data<AppState>,
    credential: Option<String>,
) -> Result<Principal, ApiError> {
    let credential = credential.ok_or(ApiError::Unauthorized)?;
    let claims = state
        .tokens
        .verify(&credential, state.clock.now())
        .ok_or(ApiError::Unauthorized)?;
    match claims.kind {
        SubjectKind::Operator => {
            let id = OperatorId(claims.sub);
            // Checked on every request so that a deactivated account stops at once.
            let operator = state
                .db
                .read(move |conn| db::operators::find_active(conn, id).map_err(ApiError::from))
                .await?
                .ok_or(ApiError::Unauthorized)?;
            Ok(Principal::Operator {
                id,
                username: operator.username,
                display_name: operator.display_name,
            })
        }
        SubjectKind::User => Err(ApiError::Unauthorized),
    }
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let credential = bearer(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| ApiError::internal("application state missing"))?;
            authenticate(state, credential).await
        })
    }
}

/// Checks a username and password and issues an access token. Every refusal is the same
/// [`ApiError::Unauthorized`], reached after the same amount of hashing work.
pub async fn login(
    state: &AppState,
    tenant: Option<&str>,
    username: &str,
    password: &str,
) -> Result<IssuedToken, ApiError> {
    // A name or password that could never have been stored is simply a failed login.
    let (Ok(username), Ok(password)) = (Username::parse(username), Password::parse(password))
    else {
        return Err(ApiError::Unauthorized);
    };
    if tenant.is_some() {
        // Tenant accounts arrive with the identity issue; until then no tenant exists.
        state
            .passwords
            .verify(password.expose().to_owned(), None)
            .await?;
        return Err(ApiError::Unauthorized);
    }
    let lookup = username.as_str().to_owned();
    let operator = state
        .db
        .read(move |conn| db::operators::find_by_username(conn, &lookup).map_err(ApiError::from))
        .await?
        .filter(|operator| operator.active);
    let stored = operator.as_ref().map(|o| o.password_hash.clone());
    let accepted = state
        .passwords
        .verify(password.expose().to_owned(), stored)
        .await?;
    match operator {
        Some(operator) if accepted => state
            .tokens
            .issue(
                SubjectKind::Operator,
                operator.id.0,
                None,
                vec![PLATFORM_OPERATOR_ROLE.to_owned()],
                state.clock.now(),
            )
            .map_err(ApiError::internal),
        _ => Err(ApiError::Unauthorized),
    }
}
