//! The state every handler reaches through `web::Data<AppState>`: built by `crate::app` at
//! start-up, read by the API layer only (use cases get what they need as arguments).

use std::sync::Arc;

use actix_web::web;

use crate::api::RouteTable;
use crate::auth::password::PasswordHasher;
use crate::auth::token::TokenKeys;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::Database;

/// What every handler can reach, shared by all workers.
pub struct AppState {
    pub config: Config,
    pub db: Database,
    pub clock: Arc<dyn Clock>,
    pub tokens: TokenKeys,
    pub passwords: PasswordHasher,
    pub openapi_json: web::Bytes,
    pub route_table: RouteTable,
    pub usage: crate::usage::UsageMeter,
    /// The last virus-scanner ping, reused by `/readyz` and `/metrics` for a few seconds.
    pub scanner_probe: crate::service::health::ScannerProbe,
    pub limits: crate::auth::limits::RateLimits,
    pub definitions: crate::service::definitions::DefinitionCache,
    /// The callers this node has authenticated, checked again by each request that uses one.
    pub principals: crate::auth::PrincipalCache,
    pub blobs: Arc<dyn crate::storage::BlobStore>,
    /// This node's job runner: register kinds, wake it, run due jobs (tests).
    pub jobs: Arc<crate::jobs::Runner>,
    /// Telling the operator of failing checks (mail when configured, the platform audit log).
    pub alerts: Arc<crate::service::alerts::Monitor>,
    /// Outgoing mail (`None` without SMTP settings).
    pub mailer: Option<Arc<crate::mailer::Mailer>>,
    /// This node's copy of the announced maintenance windows (the `Stageflow-Maintenance`
    /// header).
    pub maintenance: Arc<crate::service::announcements::MaintenanceWindows>,
    /// The last SMTP ping, reused by `/readyz` and the alerts for a while.
    pub smtp_probe: crate::service::health::SmtpProbe,
}

impl AppState {
    /// What authentication and the session use cases borrow from the state.
    pub fn auth(&self) -> crate::auth::AuthContext<'_> {
        crate::auth::AuthContext {
            db: &self.db,
            tokens: &self.tokens,
            passwords: &self.passwords,
            clock: self.clock.as_ref(),
            config: &self.config,
            limits: &self.limits,
            principals: &self.principals,
        }
    }
}
