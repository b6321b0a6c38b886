//! Every setting of the server, read once from the environment.
//!
//! Each variable is documented in `.env.example` and `docs/configuration.md`. A bad value stops
//! the program with one line naming the variable; nothing here falls back silently on a typo.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::db::DatabaseUrl;

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
    /// `None` means: use the secret kept in the database, creating it on first start.
    pub jwt_secret: Option<String>,
    pub operator_username: String,
    /// `None` means: generate one on first start and print it once to the log.
    pub operator_password: Option<String>,
    pub access_token_ttl: Duration,
    pub max_body_bytes: usize,
    pub db_pool_size: u32,
    pub db_connect_timeout: Duration,
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
    /// SQLite ticket lists: a filter or word with at least this many matches is probed per
    /// ticket instead of looked up (see `db::tickets::join_strategy`).
    pub list_probe_threshold: i64,
    /// `Some` when the server terminates TLS itself (`STAGEFLOW_TLS_CERT`/`STAGEFLOW_TLS_KEY`).
    pub tls: Option<TlsFiles>,
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
        let jwt_secret = match get("STAGEFLOW_JWT_SECRET") {
            Some(secret) if secret.len() < 32 => {
                return Err(ConfigError::new(
                    "STAGEFLOW_JWT_SECRET",
                    "must be at least 32 bytes long",
                ));
            }
            other => other,
        };
        let operator_username =
            get("STAGEFLOW_OPERATOR_USERNAME").unwrap_or_else(|| "operator".to_owned());
        crate::domain::credentials::Username::parse(&operator_username)
            .map_err(|e| ConfigError::new("STAGEFLOW_OPERATOR_USERNAME", e.to_string()))?;
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
        let max_attachment_bytes = bounded(
            "STAGEFLOW_MAX_ATTACHMENT_BYTES",
            get("STAGEFLOW_MAX_ATTACHMENT_BYTES"),
            26_214_400,
            1..=10_737_418_240,
        )?;

        let list_probe_threshold = bounded(
            "STAGEFLOW_LIST_PROBE_THRESHOLD",
            get("STAGEFLOW_LIST_PROBE_THRESHOLD"),
            2000,
            1..=1_000_000,
        )?;

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
            tls,
            list_probe_threshold,
            data_dir,
            max_attachment_bytes,
            database_url,
            listen,
            jwt_secret,
            operator_username,
            operator_password,
            access_token_ttl,
            max_body_bytes,
            db_pool_size,
            db_connect_timeout,
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
    fn defaults_need_no_variable() {
        let config = config(&[]).unwrap();
        assert_eq!(
            config.database_url,
            DatabaseUrl::Sqlite(PathBuf::from(DEFAULT_SQLITE_PATH))
        );
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.access_token_ttl, Duration::from_secs(900));
        assert_eq!(config.operator_username, "operator");
        assert!(config.jwt_secret.is_none());
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = config(&[("STAGEFLOW_LISTEN", "not-an-address")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_LISTEN");
        let err = config(&[("STAGEFLOW_DB_POOL_SIZE", "0")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_DB_POOL_SIZE");
        let err = config(&[("STAGEFLOW_JWT_SECRET", "short")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_JWT_SECRET");
        let err = config(&[("DATABASE_URL", "mysql://x")]).unwrap_err();
        assert_eq!(err.variable, "DATABASE_URL");
        let err = config(&[("STAGEFLOW_OPERATOR_PASSWORD", "short")]).unwrap_err();
        assert_eq!(err.variable, "STAGEFLOW_OPERATOR_PASSWORD");
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
