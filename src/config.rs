//! Every setting of the server, read once from the environment.
//!
//! Each variable is documented in `.env.example` and `docs/configuration.md`. A bad value stops
//! the program with one line naming the variable; nothing here falls back silently on a typo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::DatabaseUrl;

mod backup;
pub mod settings;
mod smtp;

pub use backup::BackupSettings;

/// Where the embedded database lives when `DATABASE_URL` is unset.
pub const DEFAULT_SQLITE_PATH: &str = "./data/stageflow.db";
/// Where attachment content goes when `STAGEFLOW_DATA_DIR` is unset.
pub const DEFAULT_DATA_DIR: &str = "./data";

/// A configuration value that could not be used, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("{variable}: {message}")]
pub struct ConfigError {
    pub variable: &'static str,
    pub message: String,
}

impl ConfigError {
    fn new(variable: &'static str, message: impl Into<String>) -> Self {
        Self {
            variable,
            message: message.into(),
        }
    }
}

/// Cost parameters of argon2id password hashing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Argon2Params {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for Argon2Params {
    /// OWASP's first recommended argon2id configuration (19 MiB, 2 passes, 1 lane).
    fn default() -> Self {
        Self {
            memory_kib: 19_456,
            iterations: 2,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Config {
    pub database_url: DatabaseUrl,
    pub listen: SocketAddr,
    /// The key that seals the signing keys stored in the database (never stored there).
    pub master_key: MasterKeySource,
    pub operator_username: String,
    /// `None` means: generate one on first start and print it once to the log.
    pub operator_password: Option<String>,
    pub access_token_ttl: Duration,
    pub max_body_bytes: usize,
    pub db_pool_size: u32,
    pub db_connect_timeout: Duration,
    /// The read replica (`DATABASE_READ_URL`, PostgreSQL only), if any.
    pub replica: Option<crate::db::replica::ReplicaSettings>,
    pub workers: usize,
    pub shutdown_timeout: Duration,
    pub argon2: Argon2Params,
    pub password_min_chars: usize,
    pub lockout_threshold: i32,
    pub lockout_window: Duration,
    pub lockout_duration: Duration,
    pub refresh_token_ttl: Duration,
    /// Token requests allowed per client address and minute (and as a burst).
    pub login_rate_per_minute: u32,
    pub usage_flush_interval: Duration,
    /// Where attachment content is stored (by content hash).
    pub data_dir: std::path::PathBuf,
    pub max_attachment_bytes: u64,
    /// How often the collector removes attachment content no row references.
    pub blob_gc_interval: Duration,
    /// Events older than this are deleted (`service::retention`).
    pub event_retention: Duration,
    /// Audit entries older than this are deleted (`service::retention`).
    pub audit_retention: Duration,
    /// How long a stored `Idempotency-Key` response replays; then it is deleted.
    pub idempotency_retention: Duration,
    /// How often the `sla.watch` job looks for at-risk and breached SLA clocks.
    pub sla_watch_interval: Duration,
    /// How long `POST /templates/{key}/migrations` works on a run itself before it answers
    /// 202 and leaves the rest to the `templates.migrate` job.
    pub migration_inline: Duration,
    /// Content and temp uploads untouched for less than this are never collected (see
    /// `service::tickets::collect_blobs`).
    pub blob_gc_grace: Duration,
    /// SQLite ticket lists: a filter or word with at least this many matches is probed per
    /// ticket instead of looked up (see `db::tickets::join_strategy`).
    pub list_probe_threshold: i64,
    /// Token requests allowed per account (tenant and username) and minute; also refresh,
    /// logout and password-change requests per signed-in principal.
    pub account_rate_per_minute: u32,
    /// Refresh, logout and password-change requests allowed per client address and minute.
    pub session_rate_per_minute: u32,
    /// Proxies whose `X-Forwarded-For` names the client address.
    pub trusted_proxies: crate::domain::network::TrustedProxies,
    /// Password checks admitted to the hashing pool at once (running or waiting); one tenant
    /// may hold at most half of them.
    pub hash_queue_size: usize,
    /// How long a login's refresh-token family may be renewed, from the login on.
    pub refresh_family_max_age: Duration,
    /// `Some` when the server terminates TLS itself (`STAGEFLOW_TLS_CERT`/`STAGEFLOW_TLS_KEY`).
    pub tls: Option<TlsFiles>,
    /// Browser origins allowed to call the API cross-origin (`STAGEFLOW_CORS_ORIGINS`); empty
    /// turns CORS off.
    pub cors_origins: Vec<String>,
    /// The bearer token `GET /metrics` demands (`STAGEFLOW_METRICS_TOKEN`); `None`: open.
    pub metrics_token: Option<String>,
    /// The job runner (`crate::jobs`).
    pub jobs: JobSettings,
    /// Backups (`crate::backup`).
    pub backup: BackupSettings,
    /// Webhook delivery (`crate::jobs::webhooks`).
    pub webhooks: WebhookSettings,
    /// The virus scanner (`STAGEFLOW_CLAMD`); `None` when unset — mail intake then refuses to
    /// run, since nothing may be filed unscanned.
    pub clamd: Option<ScannerSettings>,
    /// Outgoing mail (`crate::mailer`); `None` when `STAGEFLOW_SMTP_HOST` is unset.
    pub smtp: Option<crate::mailer::SmtpSettings>,
    /// Where failure mail goes (`STAGEFLOW_ALERT_EMAIL`, lower-cased); empty: nowhere.
    pub alert_to: Vec<String>,
    /// How long a check must keep failing before the operator is told
    /// (`STAGEFLOW_ALERT_AFTER_SECONDS`).
    pub alert_after: Duration,
    /// The notice period of a maintenance announcement below which publishing warns
    /// (`STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS`).
    pub announcement_notice_days: u32,
    /// Log files (`STAGEFLOW_LOG_DIR` and their retention).
    pub log: LogSettings,
    /// When the attachment disk is low or full (`STAGEFLOW_DISK_*`).
    pub disk: DiskLimits,
    /// The IMAP poller's timing (`service::mail::imap`).
    pub imap: ImapSettings,
}

/// When the attachment disk counts as low (degraded) and as full (down).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskLimits {
    /// Below this many free bytes: down.
    pub min_free_bytes: u64,
    /// Below this many free bytes: degraded.
    pub low_free_bytes: u64,
}

/// Where a server also writes its log (`STAGEFLOW_LOG_DIR`) and for how long (`crate::logging`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// `None`: stderr only.
    pub dir: Option<PathBuf>,
    /// Days `access.log` files are kept.
    pub access_days: u32,
    /// Days `stageflow.log` files are kept.
    pub app_days: u32,
}

/// How the IMAP poller of a mail channel waits (docs/mail.md, "IMAP setup").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImapSettings {
    /// The longest IDLE of one run; at most half the job lease, so that a run (IDLE, then
    /// taking in what arrived) ends inside its lease.
    pub idle: Duration,
    /// Without IDLE, the wait between two polls.
    pub poll: Duration,
    /// The deadline of connecting, TLS and each IMAP command.
    pub timeout: Duration,
}

/// How to reach clamd (docs/mail.md, "clamd setup").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannerSettings {
    pub address: crate::scanner::ScannerAddress,
    /// The deadline of one scan (connection, content and verdict).
    pub timeout: Duration,
    /// The largest content sent for scanning; at most clamd's `StreamMaxLength`.
    pub max_bytes: usize,
}

impl ScannerSettings {
    /// A client for these settings.
    pub fn scanner(&self) -> crate::scanner::Scanner {
        crate::scanner::Scanner::new(self.address.clone(), self.timeout, self.max_bytes)
    }
}

/// clamd's `StreamMaxLength` as docs/mail.md and scripts/local-clamd.sh configure it (25M).
pub const DEFAULT_CLAMD_MAX_BYTES: usize = 25 * 1024 * 1024;

/// How webhook deliveries go out (docs/integration.md, "Webhooks").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebhookSettings {
    /// Deliver to private, loopback and link-local addresses too (on-premises receivers,
    /// tests); off by default (SSRF).
    pub allow_private: bool,
    /// The deadline of one delivery attempt.
    pub timeout: Duration,
    /// A subscription whose deliveries fail this long without a success is disabled.
    pub disable_after: Duration,
    /// How long a subscription's delivery job keeps looking for new deliveries after it has
    /// sent everything (new ones then go out without a job claim; ADR-25).
    pub linger: Duration,
    /// Deliveries of one subscription in flight at once (of different subjects).
    pub concurrency: usize,
}

/// How this node's job runner claims and runs jobs (docs/ARCHITECTURE.md, "Jobs").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobSettings {
    /// How often the runner looks for due jobs and node-local work.
    pub tick: Duration,
    /// Jobs claimed at most per claim.
    pub batch_size: u32,
    /// How long a claim holds a job; a node that has not finished it by then loses it.
    pub lease: Duration,
    /// This node's name in `jobs.lease_owner`; unique per running process.
    pub node_id: String,
    /// On shutdown, how long running jobs may finish before their leases are released.
    pub shutdown_grace: Duration,
    /// Run a pass as soon as a write of this node that enqueued a due job commits, rather
    /// than at the next tick. Not a setting (always on when served): tests that drive the
    /// passes themselves turn it off.
    pub wake_on_enqueue: bool,
}

/// The PEM files of the built-in TLS listener; they are read and checked at start
/// (`api::tls`), so a bad file stops the server before it serves anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf certificate (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

pub const TLS_CERT_VARIABLE: &str = "STAGEFLOW_TLS_CERT";
pub const TLS_KEY_VARIABLE: &str = "STAGEFLOW_TLS_KEY";

impl Config {
    /// Reads the configuration from the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `lookup`, so tests can configure without the process
    /// environment. An empty value counts as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());

        let database_url = match get("DATABASE_URL") {
            Some(url) => {
                DatabaseUrl::parse(&url).map_err(|m| ConfigError::new("DATABASE_URL", m))?
            }
            None => DatabaseUrl::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH)),
        };
        let listen = parse_or("STAGEFLOW_LISTEN", get("STAGEFLOW_LISTEN"), || {
            SocketAddr::from(([127, 0, 0, 1], 8080))
        })?;
        if get("STAGEFLOW_JWT_SECRET").is_some() {
            return Err(ConfigError::new(
                "STAGEFLOW_JWT_SECRET",
                "is no longer accepted: access tokens are signed with Ed25519 keys kept in the \
                 database, sealed under the master key (STAGEFLOW_MASTER_KEY or \
                 STAGEFLOW_MASTER_KEY_FILE); remove the variable",
            ));
        }
        let operator_username = crate::domain::credentials::Username::parse(
            &get("STAGEFLOW_OPERATOR_USERNAME").unwrap_or_else(|| "operator".to_owned()),
        )
        .map_err(|e| ConfigError::new("STAGEFLOW_OPERATOR_USERNAME", e.to_string()))?
        .to_string();
        let operator_password = get("STAGEFLOW_OPERATOR_PASSWORD");
        if let Some(password) = &operator_password {
            crate::domain::credentials::NewPassword::parse(
                password,
                &operator_username,
                crate::domain::credentials::MIN_PASSWORD_CHARS,
            )
            .map_err(|e| ConfigError::new("STAGEFLOW_OPERATOR_PASSWORD", e.to_string()))?;
        }
        let access_token_ttl = Duration::from_secs(bounded(
            "STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS",
            get("STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS"),
            900,
            30..=86_400,
        )?);
        let max_body_bytes = bounded(
            "STAGEFLOW_MAX_BODY_BYTES",
            get("STAGEFLOW_MAX_BODY_BYTES"),
            1_048_576,
            1_024..=1_073_741_824,
        )?;
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // Two connections per core: more only adds database processes competing for the same
        // cores — on 2 cores, 16 connections raised the p99 of a simple read from 6 ms to
        // 150–900 ms under 16 clients (docs/PERFORMANCE.md).
        let default_pool = u32::try_from((2 * cores).max(4)).unwrap_or(4);
        let db_pool_size = bounded(
            "STAGEFLOW_DB_POOL_SIZE",
            get("STAGEFLOW_DB_POOL_SIZE"),
            default_pool,
            1..=512,
        )?;
        let db_connect_timeout = Duration::from_secs(bounded(
            "STAGEFLOW_DB_CONNECT_TIMEOUT_SECONDS",
            get("STAGEFLOW_DB_CONNECT_TIMEOUT_SECONDS"),
            10,
            1..=300,
        )?);
        let replica = replica_settings(&get, &database_url)?;
        let workers = bounded(
            "STAGEFLOW_WORKERS",
            get("STAGEFLOW_WORKERS"),
            cores,
            1..=256,
        )?;
        let shutdown_timeout = Duration::from_secs(bounded(
            "STAGEFLOW_SHUTDOWN_TIMEOUT_SECONDS",
            get("STAGEFLOW_SHUTDOWN_TIMEOUT_SECONDS"),
            30,
            0..=3_600,
        )?);
        let defaults = Argon2Params::default();
        let argon2 = Argon2Params {
            memory_kib: bounded(
                "STAGEFLOW_ARGON2_MEMORY_KIB",
                get("STAGEFLOW_ARGON2_MEMORY_KIB"),
                defaults.memory_kib,
                8..=4_194_304,
            )?,
            iterations: bounded(
                "STAGEFLOW_ARGON2_ITERATIONS",
                get("STAGEFLOW_ARGON2_ITERATIONS"),
                defaults.iterations,
                1..=64,
            )?,
            parallelism: bounded(
                "STAGEFLOW_ARGON2_PARALLELISM",
                get("STAGEFLOW_ARGON2_PARALLELISM"),
                defaults.parallelism,
                1..=64,
            )?,
        };

        let password_min_chars = bounded(
            "STAGEFLOW_PASSWORD_MIN_LENGTH",
            get("STAGEFLOW_PASSWORD_MIN_LENGTH"),
            crate::domain::credentials::MIN_PASSWORD_CHARS,
            8..=256,
        )?;
        let lockout_threshold = bounded(
            "STAGEFLOW_LOCKOUT_THRESHOLD",
            get("STAGEFLOW_LOCKOUT_THRESHOLD"),
            5,
            1..=1_000,
        )?;
        let lockout_window = Duration::from_secs(bounded(
            "STAGEFLOW_LOCKOUT_WINDOW_SECONDS",
            get("STAGEFLOW_LOCKOUT_WINDOW_SECONDS"),
            900,
            1..=86_400,
        )?);
        let lockout_duration = Duration::from_secs(bounded(
            "STAGEFLOW_LOCKOUT_DURATION_SECONDS",
            get("STAGEFLOW_LOCKOUT_DURATION_SECONDS"),
            900,
            1..=604_800,
        )?);
        let refresh_token_ttl = Duration::from_secs(bounded(
            "STAGEFLOW_REFRESH_TOKEN_TTL_SECONDS",
            get("STAGEFLOW_REFRESH_TOKEN_TTL_SECONDS"),
            2_592_000,
            60..=31_536_000,
        )?);
        let login_rate_per_minute = bounded(
            "STAGEFLOW_LOGIN_RATE_PER_MINUTE",
            get("STAGEFLOW_LOGIN_RATE_PER_MINUTE"),
            60,
            1..=1_000_000,
        )?;
        let usage_flush_interval = Duration::from_secs(bounded(
            "STAGEFLOW_USAGE_FLUSH_SECONDS",
            get("STAGEFLOW_USAGE_FLUSH_SECONDS"),
            60,
            1..=3_600,
        )?);
        let data_dir = match get("STAGEFLOW_DATA_DIR") {
            Some(dir) if !dir.trim().is_empty() => std::path::PathBuf::from(dir.trim()),
            _ => std::path::PathBuf::from(DEFAULT_DATA_DIR),
        };
        let master_key = master_key_source(
            get("STAGEFLOW_MASTER_KEY"),
            get("STAGEFLOW_MASTER_KEY_FILE"),
            &data_dir,
        )?;
        let max_attachment_bytes = bounded(
            "STAGEFLOW_MAX_ATTACHMENT_BYTES",
            get("STAGEFLOW_MAX_ATTACHMENT_BYTES"),
            26_214_400,
            1..=10_737_418_240,
        )?;
        let blob_gc_interval = Duration::from_secs(bounded(
            "STAGEFLOW_BLOB_GC_SECONDS",
            get("STAGEFLOW_BLOB_GC_SECONDS"),
            3_600,
            60..=604_800,
        )?);
        let migration_inline = Duration::from_secs(bounded(
            "STAGEFLOW_MIGRATION_INLINE_SECONDS",
            get("STAGEFLOW_MIGRATION_INLINE_SECONDS"),
            5,
            0..=60,
        )?);
        let sla_watch_interval = Duration::from_secs(bounded(
            "STAGEFLOW_SLA_WATCH_SECONDS",
            get("STAGEFLOW_SLA_WATCH_SECONDS"),
            30,
            5..=3_600,
        )?);
        let event_retention = Duration::from_secs(
            86_400
                * bounded(
                    "STAGEFLOW_EVENT_RETENTION_DAYS",
                    get("STAGEFLOW_EVENT_RETENTION_DAYS"),
                    90,
                    1..=3_650,
                )?,
        );
        let audit_retention = Duration::from_secs(
            86_400
                * bounded(
                    "STAGEFLOW_AUDIT_RETENTION_DAYS",
                    get("STAGEFLOW_AUDIT_RETENTION_DAYS"),
                    365,
                    1..=36_500,
                )?,
        );
        let idempotency_retention = Duration::from_secs(
            3_600
                * bounded(
                    "STAGEFLOW_IDEMPOTENCY_RETENTION_HOURS",
                    get("STAGEFLOW_IDEMPOTENCY_RETENTION_HOURS"),
                    24,
                    1..=720,
                )?,
        );
        let blob_gc_grace = Duration::from_secs(bounded(
            "STAGEFLOW_BLOB_GC_GRACE_SECONDS",
            get("STAGEFLOW_BLOB_GC_GRACE_SECONDS"),
            86_400,
            600..=2_592_000,
        )?);

        let list_probe_threshold = bounded(
            "STAGEFLOW_LIST_PROBE_THRESHOLD",
            get("STAGEFLOW_LIST_PROBE_THRESHOLD"),
            2000,
            1..=1_000_000,
        )?;

        let session = session_settings(&get)?;
        let jobs = job_settings(&get)?;
        let backup = backup::backup_settings(&get, &data_dir)?;
        let webhooks = webhook_settings(&get)?;
        let clamd = scanner_settings(&get)?;
        let smtp = smtp::smtp_settings(&get)?;
        let alert_to = smtp::alert_addresses(&get)?;
        let alert_after = Duration::from_secs(bounded(
            "STAGEFLOW_ALERT_AFTER_SECONDS",
            get("STAGEFLOW_ALERT_AFTER_SECONDS"),
            300,
            0..=86_400,
        )?);
        let log = LogSettings {
            dir: get("STAGEFLOW_LOG_DIR").map(|d| PathBuf::from(d.trim())),
            access_days: bounded(
                "STAGEFLOW_ACCESS_LOG_RETENTION_DAYS",
                get("STAGEFLOW_ACCESS_LOG_RETENTION_DAYS"),
                7,
                1..=3_650,
            )?,
            app_days: bounded(
                "STAGEFLOW_APP_LOG_RETENTION_DAYS",
                get("STAGEFLOW_APP_LOG_RETENTION_DAYS"),
                14,
                1..=3_650,
            )?,
        };
        let announcement_notice_days = bounded(
            "STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS",
            get("STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS"),
            30,
            0..=365,
        )?;
        let disk = DiskLimits {
            min_free_bytes: bounded(
                "STAGEFLOW_DISK_MIN_FREE_MB",
                get("STAGEFLOW_DISK_MIN_FREE_MB"),
                512u64,
                0..=1 << 30,
            )? << 20,
            low_free_bytes: bounded(
                "STAGEFLOW_DISK_LOW_FREE_MB",
                get("STAGEFLOW_DISK_LOW_FREE_MB"),
                2_048u64,
                0..=1 << 30,
            )? << 20,
        };
        let imap = imap_settings(&get, jobs.lease)?;

        let cors_origins = match get("STAGEFLOW_CORS_ORIGINS") {
            Some(raw) => {
                parse_origins(&raw).map_err(|m| ConfigError::new("STAGEFLOW_CORS_ORIGINS", m))?
            }
            None => Vec::new(),
        };
        let metrics_token = get("STAGEFLOW_METRICS_TOKEN")
            .map(|raw| parse_metrics_token(&raw))
            .transpose()
            .map_err(|m| ConfigError::new("STAGEFLOW_METRICS_TOKEN", m))?;
        let tls = match (get(TLS_CERT_VARIABLE), get(TLS_KEY_VARIABLE)) {
            (None, None) => None,
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert: PathBuf::from(cert.trim()),
                key: PathBuf::from(key.trim()),
            }),
            (Some(_), None) => {
                return Err(ConfigError::new(
                    TLS_KEY_VARIABLE,
                    "must be set too when STAGEFLOW_TLS_CERT is set",
                ));
            }
            (None, Some(_)) => {
                return Err(ConfigError::new(
                    TLS_CERT_VARIABLE,
                    "must be set too when STAGEFLOW_TLS_KEY is set",
                ));
            }
        };

        Ok(Self {
            jobs,
            backup,
            webhooks,
            clamd,
            smtp,
            alert_to,
            alert_after,
            announcement_notice_days,
            log,
            disk,
            imap,
            tls,
            cors_origins,
            metrics_token,
            account_rate_per_minute: session.account_rate_per_minute,
            session_rate_per_minute: session.session_rate_per_minute,
            trusted_proxies: session.trusted_proxies,
            hash_queue_size: session.hash_queue_size,
            refresh_family_max_age: session.refresh_family_max_age,
            list_probe_threshold,
            data_dir,
            max_attachment_bytes,
            blob_gc_interval,
            event_retention,
            audit_retention,
            idempotency_retention,
            sla_watch_interval,
            migration_inline,
            blob_gc_grace,
            database_url,
            listen,
            master_key,
            operator_username,
            operator_password,
            access_token_ttl,
            max_body_bytes,
            db_pool_size,
            db_connect_timeout,
            replica,
            workers,
            shutdown_timeout,
            argon2,
            password_min_chars,
            lockout_threshold,
            lockout_window,
            lockout_duration,
            refresh_token_ttl,
            login_rate_per_minute,
            usage_flush_interval,
        })
    }
}

/// The settings of issue 12's session limits, read apart to keep `from_lookup` readable.
struct SessionSettings {
    account_rate_per_minute: u32,
    session_rate_per_minute: u32,
    trusted_proxies: crate::domain::network::TrustedProxies,
    hash_queue_size: usize,
    refresh_family_max_age: Duration,
}

fn session_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<SessionSettings, ConfigError> {
    let trusted_proxies = match get("STAGEFLOW_TRUSTED_PROXIES") {
        Some(raw) => crate::domain::network::TrustedProxies::parse(&raw)
            .map_err(|m| ConfigError::new("STAGEFLOW_TRUSTED_PROXIES", m))?,
        None => Default::default(),
    };
    Ok(SessionSettings {
        account_rate_per_minute: bounded(
            "STAGEFLOW_ACCOUNT_RATE_PER_MINUTE",
            get("STAGEFLOW_ACCOUNT_RATE_PER_MINUTE"),
            10,
            1..=1_000_000,
        )?,
        session_rate_per_minute: bounded(
            "STAGEFLOW_SESSION_RATE_PER_MINUTE",
            get("STAGEFLOW_SESSION_RATE_PER_MINUTE"),
            60,
            1..=1_000_000,
        )?,
        trusted_proxies,
        hash_queue_size: bounded(
            "STAGEFLOW_HASH_QUEUE_SIZE",
            get("STAGEFLOW_HASH_QUEUE_SIZE"),
            64,
            2..=100_000,
        )?,
        refresh_family_max_age: Duration::from_secs(bounded(
            "STAGEFLOW_REFRESH_FAMILY_MAX_AGE_SECONDS",
            get("STAGEFLOW_REFRESH_FAMILY_MAX_AGE_SECONDS"),
            2_592_000,
            60..=31_536_000,
        )?),
    })
}

fn webhook_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<WebhookSettings, ConfigError> {
    let allow_private = match get("STAGEFLOW_WEBHOOK_ALLOW_PRIVATE").as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            return Err(ConfigError::new(
                "STAGEFLOW_WEBHOOK_ALLOW_PRIVATE",
                "must be true or false",
            ));
        }
    };
    Ok(WebhookSettings {
        allow_private,
        timeout: Duration::from_secs(bounded(
            "STAGEFLOW_WEBHOOK_TIMEOUT_SECONDS",
            get("STAGEFLOW_WEBHOOK_TIMEOUT_SECONDS"),
            10,
            1..=60,
        )?),
        disable_after: Duration::from_secs(
            86_400
                * bounded(
                    "STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS",
                    get("STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS"),
                    3,
                    1..=90,
                )?,
        ),
        linger: Duration::from_millis(bounded(
            "STAGEFLOW_WEBHOOK_LINGER_MILLIS",
            get("STAGEFLOW_WEBHOOK_LINGER_MILLIS"),
            2_000,
            0..=20_000,
        )?),
        concurrency: bounded(
            "STAGEFLOW_WEBHOOK_CONCURRENCY",
            get("STAGEFLOW_WEBHOOK_CONCURRENCY"),
            8,
            1..=64,
        )?,
    })
}

fn scanner_settings(
    get: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<ScannerSettings>, ConfigError> {
    // Read even when STAGEFLOW_CLAMD is unset, so a bad value is reported either way.
    let timeout = Duration::from_secs(bounded(
        "STAGEFLOW_CLAMD_TIMEOUT_SECONDS",
        get("STAGEFLOW_CLAMD_TIMEOUT_SECONDS"),
        30,
        1..=3_600,
    )?);
    // clamd accepts at most 4 GiB (StreamMaxLength).
    let max_bytes = bounded(
        "STAGEFLOW_CLAMD_MAX_BYTES",
        get("STAGEFLOW_CLAMD_MAX_BYTES"),
        DEFAULT_CLAMD_MAX_BYTES,
        1_024..=4_294_967_295,
    )?;
    let Some(raw) = get("STAGEFLOW_CLAMD") else {
        return Ok(None);
    };
    let address = raw
        .parse()
        .map_err(|m| ConfigError::new("STAGEFLOW_CLAMD", m))?;
    Ok(Some(ScannerSettings {
        address,
        timeout,
        max_bytes,
    }))
}

/// The IMAP poller's timing; an IDLE longer than half the job lease is refused (the run
/// would outlive its lease and another node would poll the mailbox too).
fn imap_settings(
    get: &dyn Fn(&str) -> Option<String>,
    lease: Duration,
) -> Result<ImapSettings, ConfigError> {
    const IDLE: &str = "STAGEFLOW_IMAP_IDLE_SECONDS";
    let most = (lease.as_secs() / 2).max(1);
    let idle = match get(IDLE) {
        None => DEFAULT_IMAP_IDLE_SECONDS.min(most),
        raw @ Some(_) => bounded(IDLE, raw, DEFAULT_IMAP_IDLE_SECONDS, 1..=86_400)?,
    };
    if idle > most {
        return Err(ConfigError::new(
            IDLE,
            format!(
                "must be at most half of STAGEFLOW_JOBS_LEASE_SECONDS ({most} s with a lease of {} s)",
                lease.as_secs()
            ),
        ));
    }
    Ok(ImapSettings {
        idle: Duration::from_secs(idle),
        poll: Duration::from_secs(bounded(
            "STAGEFLOW_IMAP_POLL_SECONDS",
            get("STAGEFLOW_IMAP_POLL_SECONDS"),
            60,
            1..=86_400,
        )?),
        timeout: Duration::from_secs(bounded(
            "STAGEFLOW_IMAP_TIMEOUT_SECONDS",
            get("STAGEFLOW_IMAP_TIMEOUT_SECONDS"),
            30,
            1..=600,
        )?),
    })
}

/// The longest IDLE of one poller run unless set (or half the job lease if shorter).
pub const DEFAULT_IMAP_IDLE_SECONDS: u64 = 300;

fn job_settings(get: &dyn Fn(&str) -> Option<String>) -> Result<JobSettings, ConfigError> {
    let node_id = match get("STAGEFLOW_JOBS_NODE_ID") {
        Some(raw) => {
            let id = raw.trim();
            let valid = id.len() <= 128 && id.chars().all(|c| c.is_ascii_graphic());
            if !valid {
                return Err(ConfigError::new(
                    "STAGEFLOW_JOBS_NODE_ID",
                    "must be 1–128 printable ASCII characters without spaces",
                ));
            }
            id.to_owned()
        }
        None => default_node_id(),
    };
    Ok(JobSettings {
        tick: Duration::from_millis(bounded(
            "STAGEFLOW_JOBS_TICK_MILLIS",
            get("STAGEFLOW_JOBS_TICK_MILLIS"),
            1_000,
            10..=3_600_000,
        )?),
        batch_size: bounded(
            "STAGEFLOW_JOBS_BATCH_SIZE",
            get("STAGEFLOW_JOBS_BATCH_SIZE"),
            16,
            1..=1_000,
        )?,
        lease: Duration::from_secs(bounded(
            "STAGEFLOW_JOBS_LEASE_SECONDS",
            get("STAGEFLOW_JOBS_LEASE_SECONDS"),
            60,
            5..=86_400,
        )?),
        node_id,
        shutdown_grace: Duration::from_secs(bounded(
            "STAGEFLOW_JOBS_SHUTDOWN_GRACE_SECONDS",
            get("STAGEFLOW_JOBS_SHUTDOWN_GRACE_SECONDS"),
            10,
            0..=3_600,
        )?),
        wake_on_enqueue: true,
    })
}

/// `<hostname>-<pid>-<random>`: readable in the `jobs` table, and unique even for two
/// processes of one host or a restarted process that got its old pid back.
fn default_node_id() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .map(|name| {
            name.trim()
                .chars()
                .filter(char::is_ascii_graphic)
                .take(64)
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "node".to_owned());
    format!(
        "{host}-{}-{:08x}",
        std::process::id(),
        rand::random::<u32>()
    )
}

/// A comma-separated list of browser origins: `scheme://host[:port]` with `http` or `https`,
/// no path, no trailing slash (what browsers send in `Origin`). Blank entries are skipped.
/// A metrics token: 16–256 visible ASCII characters (what fits a header as it is, and is not
/// guessed).
fn parse_metrics_token(raw: &str) -> Result<String, String> {
    let token = raw.trim();
    if !(16..=256).contains(&token.len()) || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("must be 16 to 256 visible ASCII characters (no spaces)".to_owned());
    }
    Ok(token.to_owned())
}

fn parse_origins(raw: &str) -> Result<Vec<String>, String> {
    let mut origins = Vec::new();
    for origin in raw.split(',').map(str::trim).filter(|o| !o.is_empty()) {
        let rest = origin
            .strip_prefix("https://")
            .or_else(|| origin.strip_prefix("http://"))
            .ok_or_else(|| format!("{origin}: an origin starts with https:// or http://"))?;
        let host_ok = !rest.is_empty()
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !host_ok {
            return Err(format!(
                "{origin}: an origin is scheme://host[:port], without path or trailing slash"
            ));
        }
        origins.push(origin.to_owned());
    }
    Ok(origins)
}

/// Where the master key comes from. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `STAGEFLOW_MASTER_KEY`: 32 bytes.
    Inline([u8; MASTER_KEY_BYTES]),
    /// `STAGEFLOW_MASTER_KEY_FILE`, by default `<data dir>/master.key`: the base64 of 32 bytes;
    /// `default` when the path was not configured (the file is then created on first start).
    File { path: PathBuf, default: bool },
}

/// The length of the master key (a 256-bit AEAD key).
pub const MASTER_KEY_BYTES: usize = 32;

impl std::fmt::Debug for MasterKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Inline(_) => f.write_str("Inline(<redacted>)"),
            Self::File { path, default } => f
                .debug_struct("File")
                .field("path", path)
                .field("default", default)
                .finish(),
        }
    }
}

/// Decodes a master key written as base64 (standard or URL-safe alphabet, padding optional).
pub fn decode_master_key(text: &str) -> Result<[u8; MASTER_KEY_BYTES], String> {
    use base64::Engine;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    let text = text.trim();
    let bytes = STANDARD
        .decode(text)
        .or_else(|_| URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')))
        .map_err(|_| "is not base64".to_owned())?;
    <[u8; MASTER_KEY_BYTES]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "must be {MASTER_KEY_BYTES} bytes (base64), not {} bytes",
            bytes.len()
        )
    })
}

fn master_key_source(
    inline: Option<String>,
    file: Option<String>,
    data_dir: &std::path::Path,
) -> Result<MasterKeySource, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(ConfigError::new(
            "STAGEFLOW_MASTER_KEY_FILE",
            "set either STAGEFLOW_MASTER_KEY or STAGEFLOW_MASTER_KEY_FILE, not both",
        )),
        (Some(text), None) => decode_master_key(&text)
            .map(MasterKeySource::Inline)
            .map_err(|m| ConfigError::new("STAGEFLOW_MASTER_KEY", m)),
        (None, Some(path)) => Ok(MasterKeySource::File {
            path: PathBuf::from(path.trim()),
            default: false,
        }),
        (None, None) => Ok(MasterKeySource::File {
            path: data_dir.join("master.key"),
            default: true,
        }),
    }
}

fn parse_or<T: std::str::FromStr>(
    variable: &'static str,
    raw: Option<String>,
    default: impl FnOnce() -> T,
) -> Result<T, ConfigError>
where
    T::Err: std::fmt::Display,
{
    match raw {
        None => Ok(default()),
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|e| ConfigError::new(variable, format!("cannot parse {raw:?}: {e}"))),
    }
}

/// The read replica's settings: none without `DATABASE_READ_URL`; it and the primary must both
/// be PostgreSQL (a streaming standby of `DATABASE_URL`).
fn replica_settings(
    get: &impl Fn(&str) -> Option<String>,
    primary: &DatabaseUrl,
) -> Result<Option<crate::db::replica::ReplicaSettings>, ConfigError> {
    let max_lag = Duration::from_millis(bounded(
        "STAGEFLOW_REPLICA_MAX_LAG_MS",
        get("STAGEFLOW_REPLICA_MAX_LAG_MS"),
        5_000,
        0..=3_600_000,
    )?);
    let read_your_writes = Duration::from_secs(bounded(
        "STAGEFLOW_READ_YOUR_WRITES_SECONDS",
        get("STAGEFLOW_READ_YOUR_WRITES_SECONDS"),
        30,
        0..=3_600,
    )?);
    let check_every = Duration::from_millis(bounded(
        "STAGEFLOW_REPLICA_CHECK_MILLIS",
        get("STAGEFLOW_REPLICA_CHECK_MILLIS"),
        1_000,
        50..=60_000,
    )?);
    let Some(raw) = get("DATABASE_READ_URL") else {
        return Ok(None);
    };
    let url = DatabaseUrl::parse(&raw).map_err(|m| ConfigError::new("DATABASE_READ_URL", m))?;
    if url.backend() != crate::db::Backend::Postgres {
        return Err(ConfigError::new(
            "DATABASE_READ_URL",
            "must be a PostgreSQL URL (postgres://…): a read replica is a PostgreSQL streaming \
             standby",
        ));
    }
    if primary.backend() != crate::db::Backend::Postgres {
        return Err(ConfigError::new(
            "DATABASE_READ_URL",
            "needs DATABASE_URL on PostgreSQL: the embedded SQLite database has no replicas",
        ));
    }
    Ok(Some(crate::db::replica::ReplicaSettings {
        url,
        max_lag,
        read_your_writes,
        check_every,
    }))
}

fn bounded<T>(
    variable: &'static str,
    raw: Option<String>,
    default: T,
    range: std::ops::RangeInclusive<T>,
) -> Result<T, ConfigError>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display + Copy,
    T::Err: std::fmt::Display,
{
    let value = parse_or(variable, raw, || default)?;
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(ConfigError::new(
            variable,
            format!(
                "{value} is outside the allowed range {}..={}",
                range.start(),
                range.end()
            ),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn cors_origins_are_exact_origins() {
        assert!(config(&[]).unwrap().cors_origins.is_empty());
        let set = config(&[(
            "STAGEFLOW_CORS_ORIGINS",
            "https://desk.example.jp, http://localhost:5173,",
        )])
        .unwrap();
        assert_eq!(
            set.cors_origins,
            ["https://desk.example.jp", "http://localhost:5173"]
        );
        for bad in [
            "desk.example.jp",
            "https://desk.example.jp/",
            "https://a/b",
            "*",
            "ftp://x",
        ] {
            let error = config(&[("STAGEFLOW_CORS_ORIGINS", bad)]).unwrap_err();
            assert_eq!(error.variable, "STAGEFLOW_CORS_ORIGINS", "{bad}");
        }
    }

    #[test]
    fn imap_idle_stays_within_half_the_job_lease() {
        let defaults = config(&[]).unwrap().imap;
        // The default lease is 60 s: the default IDLE (300 s) is cut to 30 s.
        assert_eq!(defaults.idle, Duration::from_secs(30));
        assert_eq!(defaults.poll, Duration::from_secs(60));
        let long = config(&[("STAGEFLOW_JOBS_LEASE_SECONDS", "900")])
            .unwrap()
            .imap;
        assert_eq!(long.idle, Duration::from_secs(300));
        let err = config(&[("STAGEFLOW_IMAP_IDLE_SECONDS", "31")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_IMAP_IDLE_SECONDS");
        assert!(err.message.contains("half of STAGEFLOW_JOBS_LEASE_SECONDS"));
        let ok = config(&[
            ("STAGEFLOW_IMAP_IDLE_SECONDS", "120"),
            ("STAGEFLOW_JOBS_LEASE_SECONDS", "240"),
            ("STAGEFLOW_IMAP_POLL_SECONDS", "15"),
        ])
        .unwrap()
        .imap;
        assert_eq!(
            (ok.idle, ok.poll),
            (Duration::from_secs(120), Duration::from_secs(15))
        );
    }

    #[test]
    fn clamd_settings() {
        assert_eq!(config(&[]).unwrap().clamd, None);
        let set = config(&[("STAGEFLOW_CLAMD", "unix:/run/clamav/clamd.ctl")])
            .unwrap()
            .clamd
            .unwrap();
        assert_eq!(set.address.to_string(), "unix:/run/clamav/clamd.ctl");
        assert_eq!(set.timeout, Duration::from_secs(30));
        assert_eq!(set.max_bytes, 26_214_400);
        let tcp = config(&[
            ("STAGEFLOW_CLAMD", "127.0.0.1:3310"),
            ("STAGEFLOW_CLAMD_TIMEOUT_SECONDS", "5"),
            ("STAGEFLOW_CLAMD_MAX_BYTES", "1048576"),
        ])
        .unwrap()
        .clamd
        .unwrap();
        assert_eq!(
            (tcp.address.to_string(), tcp.timeout, tcp.max_bytes),
            (
                "tcp://127.0.0.1:3310".to_owned(),
                Duration::from_secs(5),
                1_048_576
            )
        );
        for (variable, bad) in [
            ("STAGEFLOW_CLAMD", "clamd.ctl"),
            ("STAGEFLOW_CLAMD_TIMEOUT_SECONDS", "0"),
            ("STAGEFLOW_CLAMD_MAX_BYTES", "5000000000"),
        ] {
            assert_eq!(config(&[(variable, bad)]).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn job_runner_settings() {
        let defaults = config(&[]).unwrap().jobs;
        assert_eq!(defaults.tick, Duration::from_secs(1));
        assert_eq!(defaults.lease, Duration::from_secs(60));
        assert_eq!(defaults.batch_size, 16);
        assert_eq!(defaults.shutdown_grace, Duration::from_secs(10));
        assert!(
            defaults
                .node_id
                .contains(&format!("-{}-", std::process::id()))
        );
        assert_ne!(defaults.node_id, config(&[]).unwrap().jobs.node_id);
        let set = config(&[
            ("STAGEFLOW_JOBS_NODE_ID", " node-a "),
            ("STAGEFLOW_JOBS_TICK_MILLIS", "250"),
        ])
        .unwrap()
        .jobs;
        assert_eq!(
            (set.node_id.as_str(), set.tick),
            ("node-a", Duration::from_millis(250))
        );
        for (variable, bad) in [
            ("STAGEFLOW_JOBS_NODE_ID", "node a"),
            ("STAGEFLOW_JOBS_NODE_ID", &"n".repeat(129)),
            ("STAGEFLOW_JOBS_LEASE_SECONDS", "1"),
            ("STAGEFLOW_JOBS_TICK_MILLIS", "0"),
        ] {
            assert_eq!(config(&[(variable, bad)]).unwrap_err().variable, variable);
        }
    }

    #[test]
    fn defaults_need_no_variable() {
        let config = config(&[]).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
        );
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.operator_username, "operator");
        assert_eq!(
            config.master_key,
            MasterKeySource::File {
                path: PathBuf::from(DEFAULT_DATA_DIR).join("master.key"),
                default: true
            }
        );
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = config(&[("STAGEFLOW_LISTEN", "not-an-address")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_LISTEN");
        let err = config(&[("STAGEFLOW_DB_POOL_SIZE", "0")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_DB_POOL_SIZE");
        let err = config(&[(
            "STAGEFLOW_JWT_SECRET",
            "a-long-enough-secret-of-earlier-versions-0123",
        )])
        .unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_JWT_SECRET");
        assert!(err.message.contains("STAGEFLOW_MASTER_KEY"));
        let err = config(&[("STAGEFLOW_MASTER_KEY", "c2hvcnQ=")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_MASTER_KEY");
        let err = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        // A read replica is a PostgreSQL standby of a PostgreSQL primary.
        let err = config(&[("DATABASE_READ_URL", "postgres://replica/db")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_READ_URL");
        assert!(err.message.contains("SQLite"), "{}", err.message);
        let err = config(&[
            ("DATABASE_URL", "postgres://primary/db"),
            ("DATABASE_READ_URL", "/var/lib/replica.db"),
        ])
        .unwrap_err();
        assert_eq!(err.variable, "DATABASE_READ_URL");
        let err = config(&[("STAGEFLOW_REPLICA_CHECK_MILLIS", "10")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_REPLICA_CHECK_MILLIS");
        let replica = config(&[
            ("DATABASE_URL", "postgres://primary/db"),
            ("DATABASE_READ_URL", "postgres://replica/db"),
            ("STAGEFLOW_REPLICA_MAX_LAG_MS", "250"),
        ])
        .unwrap()
        .replica
        .unwrap();
        assert_eq!(replica.max_lag, Duration::from_millis(250));
        assert_eq!(replica.read_your_writes, Duration::from_secs(30));
        assert!(config(&[]).unwrap().replica.is_none());
        let err = config(&[("STAGEFLOW_OPERATOR_PASSWORD", "short")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_OPERATOR_PASSWORD");
        let err = config(&[("STAGEFLOW_TRUSTED_PROXIES", "10.0.0.1,proxy")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_TRUSTED_PROXIES");
        let err = config(&[("STAGEFLOW_HASH_QUEUE_SIZE", "1")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_HASH_QUEUE_SIZE");
    }

    #[test]
    fn session_limits_have_defaults_and_parse() {
        let defaults = config(&[]).unwrap();
        assert!(defaults.trusted_proxies.is_empty());
        assert_eq!(defaults.account_rate_per_minute, 10);
        assert_eq!(
            defaults.refresh_family_max_age,
            Duration::from_secs(2_592_000)
        );
        let set = config(&[("STAGEFLOW_TRUSTED_PROXIES", "10.0.0.0/8, ::1")]).unwrap();
        assert!(set.trusted_proxies.contains("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn master_key_comes_inline_or_from_a_file() {
        let key = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
        let inline = config(&[("STAGEFLOW_MASTER_KEY", key)]).unwrap();
        let expected: [u8; 32] = std::array::from_fn(|i| i as u8);
        assert_eq!(inline.master_key, MasterKeySource::Inline(expected));
        assert!(!format!("{inline:?}").contains(key));
        let file = config(&[("STAGEFLOW_MASTER_KEY_FILE", "/run/secrets/sf")]).unwrap();
        assert_eq!(
            file.master_key,
            MasterKeySource::File {
                path: PathBuf::from("/run/secrets/sf"),
                default: false
            }
        );
        let both = config(&[
            ("STAGEFLOW_MASTER_KEY", key),
            ("STAGEFLOW_MASTER_KEY_FILE", "/x"),
        ])
        .unwrap_err();
        assert_eq!(both.variable, "STAGEFLOW_MASTER_KEY_FILE");
    }

    #[test]
    fn tls_needs_both_files() {
        assert!(config(&[]).unwrap().tls.is_none());
        let err = config(&[("STAGEFLOW_TLS_CERT", "/etc/sf/cert.pem")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_TLS_KEY");
        let err = config(&[("STAGEFLOW_TLS_KEY", "/etc/sf/key.pem")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_TLS_CERT");
        let both = config(&[
            ("STAGEFLOW_TLS_CERT", "/etc/sf/cert.pem"),
            ("STAGEFLOW_TLS_KEY", "/etc/sf/key.pem"),
        ])
        .unwrap();
        assert_eq!(
            both.tls,
            Some(TlsFiles {
                cert: PathBuf::from("/etc/sf/cert.pem"),
                key: PathBuf::from("/etc/sf/key.pem"),
            })
        );
    }

    #[test]
    fn empty_value_counts_as_unset() {
        let config = config(&[("DATABASE_URL", ""), ("STAGEFLOW_LISTEN", " ")]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
    }
}
