//! Builds the HTTP application: state, middleware, routes, and the server around them.

mod caller_checks;
mod headers;
mod measure;
pub mod tls;
mod write_marks;

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::middleware::{Condition, ErrorHandlers, Logger};
use actix_web::{App, HttpRequest, HttpResponse, dev::Server, web};
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::api::{self, RouteTable, problems};
use crate::auth::password::PasswordHasher;
use crate::clock::Clock;
use crate::config::Config;
use crate::db::{Database, DbError};
use crate::jobs::{LocalTask, Runner};
use crate::service::bootstrap;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Setup(String),
    #[error("{0}")]
    Service(#[from] crate::service::error::ServiceError),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::auth::keys::KeyError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

/// A server bound to its port, ready to run.
pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    /// Opens and migrates the database, makes sure the platform has its signing keys and its
    /// operator, and binds the listener. Blocking work runs on the blocking pool.
    pub async fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.listen).map_err(|source| StartError::Listen {
            address: config.listen.to_string(),
            source,
        })?;
        Self::build_with_listener(config, clock, listener).await
    }

    pub async fn build_with_listener(
        config: Config,
        clock: Arc<dyn Clock>,
        listener: TcpListener,
    ) -> Result<Self, StartError> {
        // Unusable TLS files stop the start before the database is touched.
        let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
        let state = actix_web::rt::task::spawn_blocking(move || prepare_state(config, clock))
            .await
            .map_err(|e| StartError::Setup(e.to_string()))??;
        let state = web::Data::new(state);
        api::announcements::reload_windows(&state).await;
        let port = listener
            .local_addr()
            .map_err(|e| StartError::Setup(e.to_string()))?
            .port();
        let config = &state.config;
        let server_state = state.clone();
        let server = actix_web::HttpServer::new(move || build_app(server_state.clone()))
            .workers(config.workers)
            .shutdown_timeout(config.shutdown_timeout.as_secs());
        let server = match tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls),
            None => server.listen(listener),
        }
        .map_err(|e| StartError::Setup(e.to_string()))?
        .run();
        Ok(Self {
            port,
            server,
            state,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests (graceful shutdown) and
    /// stops the job runner: running jobs finish within the grace or are released, and the
    /// usage counters are flushed a last time.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.state.jobs.start(local_tasks(&self.state));
        let served = self.server.await;
        self.state.jobs.shutdown().await;
        served
    }
}

/// The background work on this node's own memory, run by the job runner's local loop
/// (docs/ARCHITECTURE.md, "Jobs"): every node flushes its own API-call counts, reloads its
/// key ring and trims its rate-limit tables.
fn local_tasks(state: &web::Data<AppState>) -> Vec<LocalTask> {
    let every = state.config.usage_flush_interval;
    let flush = state.clone();
    let keys = state.clone();
    let limits = state.clone();
    let alerts = state.clone();
    let windows = state.clone();
    let mut tasks = vec![
        LocalTask::new("usage flush", every, move || {
            let state = flush.clone();
            async move { flush_usage(&state).await }
        })
        .at_shutdown(),
        LocalTask::new("signing-key reload", every, move || {
            let state = keys.clone();
            async move { crate::auth::reload_signing_keys(&state.auth()).await }
        }),
        LocalTask::new("rate-limit trim", every, move || {
            limits.limits.retain_recent();
            async {}
        }),
        LocalTask::new(
            "maintenance windows reload",
            crate::service::announcements::WINDOWS_RELOAD_EVERY,
            move || {
                let state = windows.clone();
                async move { api::announcements::reload_windows(&state).await }
            },
        ),
        LocalTask::new("operator alerts", ALERT_CHECK_EVERY, move || {
            let state = alerts.clone();
            async move {
                check_alerts(&state).await;
            }
        }),
    ];
    if let Some(replica) = state.db.replica().cloned() {
        let every = replica.settings().check_every;
        tasks.push(LocalTask::new("read replica check", every, move || {
            let replica = replica.clone();
            async move {
                let _ = actix_web::rt::task::spawn_blocking(move || replica.check()).await;
            }
        }));
    }
    tasks
}

/// How often each node looks at what the operator's failure mail reports.
const ALERT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

/// One look of the failure monitor: the dependencies as `/readyz` sees them, then the
/// database and the job backlog; returns how many failures and recoveries it told.
pub async fn check_alerts(state: &web::Data<AppState>) -> usize {
    use crate::service::alerts::Health;
    use crate::service::health::Dependency;
    let checks = api::ops::dependency_checks(state).await;
    let seen = [
        ("scanner", Dependency::from(&checks.scanner)),
        ("smtp", checks.smtp),
        ("disk", checks.disk.0),
    ]
    .into_iter()
    .filter_map(|(check, state)| match state {
        Dependency::Down(why) => Some((check, Health::Failing(why))),
        Dependency::Up | Dependency::Degraded(_) => Some((check, Health::Ok)),
        Dependency::NotConfigured => None,
    })
    .collect();
    let (monitor, db, now) = (state.alerts.clone(), state.db.clone(), state.clock.now());
    web::block(move || monitor.check(&db, now, seen))
        .await
        .unwrap_or_default()
}

/// Writes the pending usage counts; a failure is logged and the counts wait for the next try.
pub async fn flush_usage(state: &web::Data<AppState>) {
    let state = state.clone();
    let flushed = actix_web::rt::task::spawn_blocking(move || state.usage.flush(&state.db)).await;
    match flushed {
        Ok(Ok(())) => {}
        Ok(Err(error)) => log::warn!("usage counters not flushed, will retry: {error}"),
        Err(error) => log::warn!("usage flush task failed: {error}"),
    }
}

/// One pass of the collector with the cut-off given (tests move it instead of waiting).
pub async fn collect_blobs_before(
    state: &web::Data<AppState>,
    before: std::time::SystemTime,
) -> Result<crate::service::tickets::BlobCollection, crate::service::error::ServiceError> {
    let store = state.blobs.clone();
    state
        .db
        .read(move |conn| crate::service::tickets::collect_blobs(conn, store.as_ref(), before))
        .await
}

/// The blocking part of start-up.
fn prepare_state(config: Config, clock: Arc<dyn Clock>) -> Result<AppState, StartError> {
    let (db, applied) = Database::open_and_migrate(&config)?;
    for version in &applied {
        log::info!("applied migration {version}");
    }
    let passwords = PasswordHasher::new(config.argon2)
        .map_err(StartError::Setup)?
        .with_queue(config.hash_queue_size);
    let mut conn = db.get()?;
    let tokens = bootstrap::signing_keys(&mut conn, &config, clock.now())?;
    bootstrap::ensure_operator(&mut conn, &config, &passwords, clock.now())?;
    drop(conn);
    let doc = api::openapi();
    let openapi_json = web::Bytes::from(
        api::openapi_document()
            .and_then(|published| serde_json::to_vec(&published))
            .map_err(|e| StartError::Setup(e.to_string()))?,
    );
    let limits = crate::auth::limits::RateLimits::new(&config).map_err(StartError::Setup)?;
    let blobs: Arc<dyn crate::storage::BlobStore> = Arc::new(
        crate::storage::FsBlobStore::open(crate::storage::attachments_dir(&config.data_dir))
            .map_err(|e| StartError::Setup(format!("cannot prepare the attachment store: {e}")))?,
    );
    let jobs = Runner::new(db.clone(), clock.clone(), &config.jobs);
    crate::jobs::register_housekeeping(&jobs, &config, blobs.clone());
    crate::jobs::register_backups(&jobs, &config);
    crate::jobs::register_tenant_exports(&jobs, &config.data_dir, blobs.clone());
    crate::jobs::register_webhooks(
        &jobs,
        config.webhooks,
        tokens.master().clone(),
        config.jobs.lease,
    );
    crate::jobs::register_mail(
        &jobs,
        crate::service::mail::intake::IntakeSettings::from_config(&config),
        blobs.clone(),
        tokens.master().clone(),
    );
    let mailer = match &config.smtp {
        Some(settings) => Some(Arc::new(
            crate::mailer::Mailer::new(settings.clone())
                .map_err(|e| StartError::Setup(format!("cannot prepare the SMTP client: {e}")))?,
        )),
        None => None,
    };
    let alerts = crate::service::alerts::Monitor::new(
        mailer.clone(),
        &config.alert_to,
        jobs.node_id(),
        config.alert_after,
    );
    crate::jobs::register_notify(&jobs, mailer.clone(), alerts.clone());
    crate::jobs::register_sla(&jobs, config.sla_watch_interval);
    crate::jobs::register_reports(&jobs);
    crate::jobs::register_migrations(&jobs);
    crate::jobs::register_imports(&jobs, config.jobs.lease);
    jobs.seed_recurring_blocking(clock.now())?;
    Ok(AppState {
        jobs,
        alerts,
        mailer,
        maintenance: Default::default(),
        smtp_probe: Default::default(),
        definitions: Default::default(),
        principals: Default::default(),
        blobs,
        usage: crate::usage::UsageMeter::default(),
        scanner_probe: Default::default(),
        limits,
        route_table: RouteTable::from_openapi(&doc),
        config,
        db,
        clock,
        tokens,
        passwords,
        openapi_json,
    })
}

/// One worker's application: middleware, extractor limits, routes and the fallback.
fn build_app(
    state: web::Data<AppState>,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let limit = state.config.max_body_bytes;
    let (app, _doc) = App::new()
        .into_utoipa_app()
        .openapi(api::ApiDoc::openapi())
        .app_data(state.clone())
        .app_data(
            web::JsonConfig::default()
                .limit(limit)
                .error_handler(problems::json_error),
        )
        .app_data(web::PayloadConfig::new(limit))
        .app_data(web::QueryConfig::default().error_handler(problems::query_error))
        .app_data(web::PathConfig::default().error_handler(problems::path_error))
        .configure(api::routes)
        .default_service(web::to(fallback))
        .split_for_parts();
    let document = serde_json::from_slice(&state.openapi_json).unwrap_or_default();
    let app = app.service(api::docs_page::services(document));
    let cors = Condition::new(
        !state.config.cors_origins.is_empty(),
        cors(&state.config.cors_origins),
    );
    app.wrap(caller_checks::CallerChecks)
        .wrap(actix_web::middleware::from_fn(write_marks::mark_writes))
        .wrap(cors)
        .wrap(ErrorHandlers::new().default_handler(problems::ensure_problem))
        .wrap(actix_web::middleware::from_fn(api::request_id::request_id))
        .wrap(Logger::new(
            r#"%a "%r" %s %b %Dms "%{User-Agent}i" %{x-request-id}o"#,
        ))
        .wrap(actix_web::middleware::from_fn(headers::security_headers))
        .wrap(actix_web::middleware::from_fn(headers::maintenance_window))
        .wrap(actix_web::middleware::from_fn(measure::measure))
}

/// Cross-origin access for the configured browser origins (none: the middleware is off). A
/// preflight from any other origin is 400 (a problem document, through `ensure_problem`); a
/// plain request from one is served without CORS headers, so the browser withholds it.
fn cors(origins: &[String]) -> actix_cors::Cors {
    use actix_web::http::header;
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_MATCH,
            header::HeaderName::from_static("idempotency-key"),
            api::request_id::HEADER,
        ])
        .expose_headers([
            header::ETAG,
            header::LOCATION,
            header::RETRY_AFTER,
            header::HeaderName::from_static("idempotent-replayed"),
            header::HeaderName::from_static(headers::MAINTENANCE_HEADER),
            api::request_id::HEADER,
        ])
        .max_age(600);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// No route matched: 405 with `Allow` when the path exists under another method, else 404.
async fn fallback(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    use actix_web::ResponseError;
    match state.route_table.allowed(req.path()) {
        Some(methods) if !methods.is_empty() => ApiError::MethodNotAllowed {
            allow: methods.to_vec(),
        }
        .error_response(),
        _ => ApiError::NotFound.error_response(),
    }
}
