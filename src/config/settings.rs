//! The command-line face of the configuration: every setting is a global flag with its
//! environment variable (clap `env`), and `stageflow config` prints the effective values.
//!
//! The flags only feed [`Config::from_lookup`], so parsing and validation stay in one place: a
//! flag overrides its variable, an empty value counts as unset, and a bad value is reported
//! naming the variable exactly as before. Adding a setting is one line in [`SETTINGS`].

use std::collections::BTreeMap;

use clap::parser::ValueSource;
use clap::{Arg, ArgMatches, Command};

use super::{Config, MasterKeySource};
use crate::db::DatabaseUrl;

/// One setting: its variable, its flag, one line of help, whether its value is secret, and
/// how to show its effective value (from the parsed configuration, or the raw value).
pub struct Setting {
    pub variable: &'static str,
    pub flag: &'static str,
    pub help: &'static str,
    pub secret: bool,
    show: fn(&Config, Option<&str>) -> String,
}

const fn setting(
    variable: &'static str,
    flag: &'static str,
    help: &'static str,
    show: fn(&Config, Option<&str>) -> String,
) -> Setting {
    Setting {
        variable,
        flag,
        help,
        secret: false,
        show,
    }
}

/// A setting whose value `stageflow config` masks.
const fn secret(
    variable: &'static str,
    flag: &'static str,
    help: &'static str,
    show: fn(&Config, Option<&str>) -> String,
) -> Setting {
    Setting {
        secret: true,
        ..setting(variable, flag, help, show)
    }
}

const MASK: &str = "********";

/// Every setting, in the order of docs/configuration.md (a test keeps the two in step).
#[rustfmt::skip]
pub const SETTINGS: &[Setting] = &[
    secret("DATABASE_URL", "database-url", "postgres://… or postgresql://… (PostgreSQL), sqlite://path or a file path (SQLite)", |c, _| show_database_url(&c.database_url)),
    setting("STAGEFLOW_LISTEN", "listen", "socket address to listen on", |c, _| c.listen.to_string()),
    secret("STAGEFLOW_MASTER_KEY", "master-key", "the master key sealing the signing keys: 32 bytes as base64", |c, _| match c.master_key { MasterKeySource::Inline(_) => MASK.to_owned(), MasterKeySource::File { .. } => String::new() }),
    setting("STAGEFLOW_MASTER_KEY_FILE", "master-key-file", "a file (mode 0600) holding the master key as base64 [default: <data dir>/master.key]", |c, _| match &c.master_key { MasterKeySource::File { path, .. } => path.display().to_string(), MasterKeySource::Inline(_) => String::new() }),
    setting("STAGEFLOW_OPERATOR_USERNAME", "operator-username", "platform operator created on first start", |c, _| c.operator_username.clone()),
    secret("STAGEFLOW_OPERATOR_PASSWORD", "operator-password", "its password [default: generated, printed once to the log]", |c, _| c.operator_password.as_ref().map_or_else(String::new, |_| MASK.to_owned())),
    setting("STAGEFLOW_ACCESS_TOKEN_TTL_SECONDS", "access-token-ttl-seconds", "access-token lifetime, 30–86400", |c, _| c.access_token_ttl.as_secs().to_string()),
    setting("STAGEFLOW_MAX_BODY_BYTES", "max-body-bytes", "largest request body (413 beyond it)", |c, _| c.max_body_bytes.to_string()),
    setting("STAGEFLOW_DB_POOL_SIZE", "db-pool-size", "database connections per node, 1–512 [default: 2 × cores, at least 4]", |c, _| c.db_pool_size.to_string()),
    setting("STAGEFLOW_DB_CONNECT_TIMEOUT_SECONDS", "db-connect-timeout-seconds", "how long a request waits for a pooled connection before 503", |c, _| c.db_connect_timeout.as_secs().to_string()),
    secret("DATABASE_READ_URL", "database-read-url", "PostgreSQL only: a streaming replica of DATABASE_URL that serves lists, searches, exports, statistics and reports [default: unset, every read on the primary]", |c, _| c.replica.as_ref().map(|r| show_database_url(&r.url)).unwrap_or_default()),
    setting("STAGEFLOW_REPLICA_MAX_LAG_MS", "replica-max-lag-ms", "a replica further behind than this is bypassed until it catches up, 0–3600000 ms", |c, _| c.replica.as_ref().map_or(5_000, |r| r.max_lag.as_millis()).to_string()),
    setting("STAGEFLOW_READ_YOUR_WRITES_SECONDS", "read-your-writes-seconds", "after a caller's write, how long its replica reads first check that the replica has replayed it (else the primary answers), 0–3600", |c, _| c.replica.as_ref().map_or(30, |r| r.read_your_writes.as_secs()).to_string()),
    setting("STAGEFLOW_REPLICA_CHECK_MILLIS", "replica-check-millis", "how often the replica's lag is measured, 50–60000 ms", |c, _| c.replica.as_ref().map_or(1_000, |r| r.check_every.as_millis()).to_string()),
    setting("STAGEFLOW_WORKERS", "workers", "HTTP worker threads [default: cores]", |c, _| c.workers.to_string()),
    setting("STAGEFLOW_SHUTDOWN_TIMEOUT_SECONDS", "shutdown-timeout-seconds", "on SIGTERM/SIGINT, how long in-flight requests may finish", |c, _| c.shutdown_timeout.as_secs().to_string()),
    setting("STAGEFLOW_ARGON2_MEMORY_KIB", "argon2-memory-kib", "argon2id memory cost", |c, _| c.argon2.memory_kib.to_string()),
    setting("STAGEFLOW_ARGON2_ITERATIONS", "argon2-iterations", "argon2id time cost", |c, _| c.argon2.iterations.to_string()),
    setting("STAGEFLOW_ARGON2_PARALLELISM", "argon2-parallelism", "argon2id lanes", |c, _| c.argon2.parallelism.to_string()),
    setting("STAGEFLOW_PASSWORD_MIN_LENGTH", "password-min-length", "shortest new password, 8–256 characters", |c, _| c.password_min_chars.to_string()),
    setting("STAGEFLOW_LOCKOUT_THRESHOLD", "lockout-threshold", "failed logins within the window that lock an account", |c, _| c.lockout_threshold.to_string()),
    setting("STAGEFLOW_LOCKOUT_WINDOW_SECONDS", "lockout-window-seconds", "the window for counting failed logins", |c, _| c.lockout_window.as_secs().to_string()),
    setting("STAGEFLOW_LOCKOUT_DURATION_SECONDS", "lockout-duration-seconds", "how long a lock lasts", |c, _| c.lockout_duration.as_secs().to_string()),
    setting("STAGEFLOW_REFRESH_TOKEN_TTL_SECONDS", "refresh-token-ttl-seconds", "refresh-token lifetime", |c, _| c.refresh_token_ttl.as_secs().to_string()),
    setting("STAGEFLOW_REFRESH_FAMILY_MAX_AGE_SECONDS", "refresh-family-max-age-seconds", "absolute lifetime of a login's refresh tokens", |c, _| c.refresh_family_max_age.as_secs().to_string()),
    setting("STAGEFLOW_LOGIN_RATE_PER_MINUTE", "login-rate-per-minute", "token requests per client address and minute", |c, _| c.login_rate_per_minute.to_string()),
    setting("STAGEFLOW_ACCOUNT_RATE_PER_MINUTE", "account-rate-per-minute", "token requests per account and minute; session requests per signed-in account", |c, _| c.account_rate_per_minute.to_string()),
    setting("STAGEFLOW_SESSION_RATE_PER_MINUTE", "session-rate-per-minute", "refresh, logout and password-change requests per client address and minute", |c, _| c.session_rate_per_minute.to_string()),
    setting("STAGEFLOW_HASH_QUEUE_SIZE", "hash-queue-size", "password checks admitted to the hashing pool at once, 2–100000", |c, _| c.hash_queue_size.to_string()),
    setting("STAGEFLOW_TRUSTED_PROXIES", "trusted-proxies", "comma-separated addresses and CIDR networks of trusted reverse proxies [default: none]", |_, raw| raw.unwrap_or_default().trim().to_owned()),
    setting("STAGEFLOW_USAGE_FLUSH_SECONDS", "usage-flush-seconds", "how often API-call counts are written to the database", |c, _| c.usage_flush_interval.as_secs().to_string()),
    setting("STAGEFLOW_DATA_DIR", "data-dir", "where attachment content (and by default the master key) is stored", |c, _| c.data_dir.display().to_string()),
    setting("STAGEFLOW_MAX_ATTACHMENT_BYTES", "max-attachment-bytes", "largest attachment accepted (413 beyond it)", |c, _| c.max_attachment_bytes.to_string()),
    setting("STAGEFLOW_WEBHOOK_ALLOW_PRIVATE", "webhook-allow-private", "deliver webhooks to private, loopback and link-local addresses too (true/false; off: SSRF protection)", |c, _| c.webhooks.allow_private.to_string()),
    setting("STAGEFLOW_WEBHOOK_TIMEOUT_SECONDS", "webhook-timeout-seconds", "the deadline of one webhook delivery attempt, 1–60", |c, _| c.webhooks.timeout.as_secs().to_string()),
    setting("STAGEFLOW_WEBHOOK_DISABLE_AFTER_DAYS", "webhook-disable-after-days", "days of failed deliveries without a success after which a subscription is disabled, 1–90", |c, _| (c.webhooks.disable_after.as_secs() / 86_400).to_string()),
    setting("STAGEFLOW_WEBHOOK_CONCURRENCY", "webhook-concurrency", "deliveries of one webhook subscription in flight at once, each subject's still in event order, 1–64", |c, _| c.webhooks.concurrency.to_string()),
    setting("STAGEFLOW_WEBHOOK_LINGER_MILLIS", "webhook-linger-millis", "how long a subscription's delivery job keeps looking for new deliveries once it has sent everything, 0–20000 ms (0: it ends at once; a new event then starts it again)", |c, _| c.webhooks.linger.as_millis().to_string()),
    setting("STAGEFLOW_CLAMD", "clamd", "the ClamAV daemon scanning mail: unix:/path/clamd.sock, tcp:host:port or tcp://host:port [default: unset, mail intake refuses to run]", |c, _| c.clamd.as_ref().map(|s| s.address.to_string()).unwrap_or_default()),
    setting("STAGEFLOW_CLAMD_TIMEOUT_SECONDS", "clamd-timeout-seconds", "the deadline of one virus scan, 1–3600", |c, _| c.clamd.as_ref().map_or(30, |s| s.timeout.as_secs()).to_string()),
    setting("STAGEFLOW_CLAMD_MAX_BYTES", "clamd-max-bytes", "largest content sent to clamd, at most its StreamMaxLength", |c, _| c.clamd.as_ref().map_or(super::DEFAULT_CLAMD_MAX_BYTES, |s| s.max_bytes).to_string()),
    setting("STAGEFLOW_IMAP_IDLE_SECONDS", "imap-idle-seconds", "the longest IMAP IDLE of one mail poller run, at most half of STAGEFLOW_JOBS_LEASE_SECONDS [default: 300, or half the lease if shorter]", |c, _| c.imap.idle.as_secs().to_string()),
    setting("STAGEFLOW_IMAP_POLL_SECONDS", "imap-poll-seconds", "the wait between two IMAP polls of a mail channel whose server has no IDLE (or idle off), 1–86400", |c, _| c.imap.poll.as_secs().to_string()),
    setting("STAGEFLOW_IMAP_TIMEOUT_SECONDS", "imap-timeout-seconds", "the deadline of connecting to an IMAP server and of each IMAP command, 1–600", |c, _| c.imap.timeout.as_secs().to_string()),
    setting("STAGEFLOW_EVENT_RETENTION_DAYS", "event-retention-days", "days the event log keeps an event, 1–3650", |c, _| (c.event_retention.as_secs() / 86_400).to_string()),
    setting("STAGEFLOW_AUDIT_RETENTION_DAYS", "audit-retention-days", "days the audit log keeps an entry, 1–36500", |c, _| (c.audit_retention.as_secs() / 86_400).to_string()),
    setting("STAGEFLOW_IDEMPOTENCY_RETENTION_HOURS", "idempotency-retention-hours", "hours a stored Idempotency-Key response replays before it is deleted, 1–720", |c, _| (c.idempotency_retention.as_secs() / 3_600).to_string()),
    setting("STAGEFLOW_BACKUP_DIR", "backup-dir", "where backup generations and their attachment copies are kept [default: <STAGEFLOW_DATA_DIR>/backups]", |c, _| c.backup.dir.display().to_string()),
    setting("STAGEFLOW_BACKUP_KEEP", "backup-keep", "backup generations kept in STAGEFLOW_BACKUP_DIR, 1–1000", |c, _| c.backup.keep.to_string()),
    setting("STAGEFLOW_BACKUP_COPY_DIR", "backup-copy-dir", "a second directory each finished backup is copied to [default: unset, no copy]", |c, _| c.backup.copy_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_BACKUP_COPY_KEEP", "backup-copy-keep", "backup generations kept in STAGEFLOW_BACKUP_COPY_DIR, 1–1000", |c, _| c.backup.copy_keep.to_string()),
    setting("STAGEFLOW_BACKUP_INTERVAL_HOURS", "backup-interval-hours", "how often the backup job backs up and verifies, 0 (off)–8760", |c, _| c.backup.interval.map_or(0, |d| d.as_secs() / 3_600).to_string()),
    setting("STAGEFLOW_PG_BIN_DIR", "pg-bin-dir", "PostgreSQL only: the directory of pg_dump and pg_restore [default: PATH, then /usr/lib/postgresql/<newest>/bin]", |c, _| c.backup.pg_bin_dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_DISK_LOW_FREE_MB", "disk-low-free-mb", "free MiB on the data directory's file system below which /readyz reports the disk degraded", |c, _| (c.disk.low_free_bytes >> 20).to_string()),
    setting("STAGEFLOW_DISK_MIN_FREE_MB", "disk-min-free-mb", "free MiB below which the disk is down (the node stays ready: reads go on; the operator is alerted)", |c, _| (c.disk.min_free_bytes >> 20).to_string()),
    setting("STAGEFLOW_MIGRATION_INLINE_SECONDS", "migration-inline-seconds", "how long a template migration request works itself before the job takes over, 0–60", |c, _| c.migration_inline.as_secs().to_string()),
    setting("STAGEFLOW_SLA_WATCH_SECONDS", "sla-watch-seconds", "how often SLA clocks are checked for at-risk and breach events, 5–3600", |c, _| c.sla_watch_interval.as_secs().to_string()),
    setting("STAGEFLOW_BLOB_GC_SECONDS", "blob-gc-seconds", "how often unreferenced attachment content is collected, 60–604800", |c, _| c.blob_gc_interval.as_secs().to_string()),
    setting("STAGEFLOW_BLOB_GC_GRACE_SECONDS", "blob-gc-grace-seconds", "content untouched for less than this is never collected, 600–2592000", |c, _| c.blob_gc_grace.as_secs().to_string()),
    setting("STAGEFLOW_JOBS_TICK_MILLIS", "jobs-tick-millis", "how often the job runner looks for due jobs, 10–3600000 ms", |c, _| c.jobs.tick.as_millis().to_string()),
    setting("STAGEFLOW_JOBS_BATCH_SIZE", "jobs-batch-size", "jobs a node claims at once, 1–1000", |c, _| c.jobs.batch_size.to_string()),
    setting("STAGEFLOW_JOBS_LEASE_SECONDS", "jobs-lease-seconds", "how long a claimed job is held before another node may take it, 5–86400", |c, _| c.jobs.lease.as_secs().to_string()),
    setting("STAGEFLOW_JOBS_NODE_ID", "jobs-node-id", "this node's name as the holder of job leases [default: <hostname>-<pid>-<random>]", |c, _| c.jobs.node_id.clone()),
    setting("STAGEFLOW_JOBS_SHUTDOWN_GRACE_SECONDS", "jobs-shutdown-grace-seconds", "on shutdown, how long running jobs may finish before their leases are released, 0–3600", |c, _| c.jobs.shutdown_grace.as_secs().to_string()),
    setting("STAGEFLOW_LIST_PROBE_THRESHOLD", "list-probe-threshold", "SQLite only: matches from which a ticket-list filter is probed per ticket", |c, _| c.list_probe_threshold.to_string()),
    setting("STAGEFLOW_TLS_CERT", "tls-cert", "PEM certificate chain: with --tls-key the server terminates TLS itself [default: unset]", |c, _| c.tls.as_ref().map(|t| t.cert.display().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_TLS_KEY", "tls-key", "PEM private key of that certificate [default: unset]", |c, _| c.tls.as_ref().map(|t| t.key.display().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_CORS_ORIGINS", "cors-origins", "comma-separated browser origins allowed cross-origin [default: none, CORS off]", |c, _| c.cors_origins.join(",")),
    secret("STAGEFLOW_METRICS_TOKEN", "metrics-token", "a bearer token GET /metrics demands, 16–256 visible characters [default: unset, /metrics is open]", |c, _| c.metrics_token.as_ref().map_or_else(String::new, |_| MASK.to_owned())),
    secret("STAGEFLOW_SMTP_URL", "smtp-url", "the SMTP server as one URL: smtp://[user:password@]host[:port][?tls=required] or smtps://… (instead of --smtp-host, -port, -security, -username and -password) [default: unset]", |_, raw| raw.map_or_else(String::new, |_| MASK.to_owned())),
    setting("STAGEFLOW_SMTP_HOST", "smtp-host", "SMTP server for outgoing mail [default: unset, no mail is sent]", |c, _| c.smtp.as_ref().map(|s| s.host.clone()).unwrap_or_default()),
    setting("STAGEFLOW_SMTP_PORT", "smtp-port", "its port [default: 587; 465 with security tls]", |c, _| c.smtp.as_ref().map(|s| s.port.to_string()).unwrap_or_default()),
    setting("STAGEFLOW_SMTP_SECURITY", "smtp-security", "none, starttls (required) or tls [default: starttls]", |c, _| c.smtp.as_ref().map(|s| s.security.as_str().to_owned()).unwrap_or_default()),
    setting("STAGEFLOW_SMTP_USERNAME", "smtp-username", "SMTP AUTH user name [default: unset, no AUTH]", |c, _| c.smtp.as_ref().and_then(|s| s.username.clone()).unwrap_or_default()),
    secret("STAGEFLOW_SMTP_PASSWORD", "smtp-password", "its password", |c, _| c.smtp.as_ref().and_then(|s| s.password.as_ref()).map_or_else(String::new, |_| MASK.to_owned())),
    setting("STAGEFLOW_SMTP_FROM", "smtp-from", "the From of outgoing mail, e.g. \"Stageflow <noreply@example.com>\" (required with --smtp-host)", |c, _| c.smtp.as_ref().map(|s| s.from.clone()).unwrap_or_default()),
    setting("STAGEFLOW_MAIL_FROM", "mail-from", "another name of --smtp-from", |c, _| c.smtp.as_ref().map(|s| s.from.clone()).unwrap_or_default()),
    setting("STAGEFLOW_ALERT_EMAIL", "alert-email", "comma-separated addresses that get the operator's failure mail (database, scanner, job backlog, disabled webhooks) [default: unset, none]", |c, _| c.alert_to.join(",")),
    setting("STAGEFLOW_ALERT_AFTER_SECONDS", "alert-after-seconds", "how long a check (database, scanner, SMTP, disk, job queue) must keep failing before the operator is mailed and the platform audit log records it, 0–86400", |c, _| c.alert_after.as_secs().to_string()),
    setting("STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS", "announcement-notice-days", "the notice period of a maintenance announcement: publishing one that starts sooner is allowed but warned of, 0–365", |c, _| c.announcement_notice_days.to_string()),
    setting("STAGEFLOW_SMTP_TIMEOUT_SECONDS", "smtp-timeout-seconds", "deadline of connecting and of each SMTP command, 1–600 [default: 30]", |c, _| c.smtp.as_ref().map(|s| s.timeout.as_secs().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_MAIL_DOMAIN", "mail-domain", "the domain of the Message-IDs of outgoing mail [default: the From address's domain]", |c, _| c.smtp.as_ref().map(|s| s.message_id_domain.clone()).unwrap_or_default()),
    setting("STAGEFLOW_LOG_DIR", "log-dir", "a server also writes its log here: access.log and stageflow.log, rotated daily [default: unset, stderr only]", |c, _| c.log.dir.as_ref().map(|d| d.display().to_string()).unwrap_or_default()),
    setting("STAGEFLOW_ACCESS_LOG_RETENTION_DAYS", "access-log-retention-days", "days of access.log files kept, 1–3650", |c, _| c.log.access_days.to_string()),
    setting("STAGEFLOW_APP_LOG_RETENTION_DAYS", "app-log-retention-days", "days of stageflow.log files kept, 1–3650", |c, _| c.log.app_days.to_string()),
    setting("RUST_LOG", "log", "log filter in env_logger syntax [default: info]", |_, raw| raw.unwrap_or("info").trim().to_owned()),
];

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    Env,
    Flag,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Env => "env",
            Self::Flag => "flag",
        }
    }
}

/// The settings given on the command line or in the environment, as clap parsed them.
#[derive(Debug, Clone, Default)]
pub struct SettingArgs {
    given: BTreeMap<&'static str, (String, Source)>,
}

impl SettingArgs {
    /// The raw value of a setting, if given (a blank value counts as not given).
    pub fn raw(&self, variable: &str) -> Option<&str> {
        self.given.get(variable).map(|(value, _)| value.as_str())
    }

    /// Where `variable` came from, if given as a flag or a variable.
    pub fn source(&self, variable: &str) -> Source {
        self.given
            .get(variable)
            .map_or(Source::Default, |(_, source)| *source)
    }

    /// The configuration: flags over variables, read by the one parser. Variables without a
    /// flag (a removed setting that must still be refused) are read from the environment.
    pub fn config(&self) -> Result<Config, super::ConfigError> {
        Config::from_lookup(|name| {
            if SETTINGS.iter().any(|s| s.variable == name) {
                self.raw(name).map(str::to_owned)
            } else {
                std::env::var(name).ok()
            }
        })
    }

    /// The flag a variable was given by, for error messages.
    pub fn flag_of(&self, variable: &str) -> Option<&'static str> {
        match self.source(variable) {
            Source::Flag => SETTINGS
                .iter()
                .find(|s| s.variable == variable)
                .map(|s| s.flag),
            _ => None,
        }
    }

    /// `stageflow config`: one line per setting — variable, source, effective value, with
    /// secrets masked.
    pub fn describe(&self, config: &Config) -> Vec<(&'static str, Source, String)> {
        SETTINGS
            .iter()
            .map(|s| {
                let value = (s.show)(config, self.raw(s.variable));
                (s.variable, self.source(s.variable), value)
            })
            .collect()
    }
}

impl clap::FromArgMatches for SettingArgs {
    fn from_arg_matches(matches: &ArgMatches) -> Result<Self, clap::Error> {
        let mut given = BTreeMap::new();
        for s in SETTINGS {
            let Some(value) = matches.get_one::<String>(s.variable) else {
                continue;
            };
            if value.trim().is_empty() {
                continue;
            }
            let source = match matches.value_source(s.variable) {
                Some(ValueSource::CommandLine) => Source::Flag,
                _ => Source::Env,
            };
            given.insert(s.variable, (value.clone(), source));
        }
        Ok(Self { given })
    }

    fn update_from_arg_matches(&mut self, matches: &ArgMatches) -> Result<(), clap::Error> {
        *self = Self::from_arg_matches(matches)?;
        Ok(())
    }
}

impl clap::Args for SettingArgs {
    fn augment_args(command: Command) -> Command {
        let defaults = Config::from_lookup(|_| None).ok();
        SETTINGS.iter().fold(
            command.next_help_heading("Settings (a flag overrides its environment variable)"),
            |command, s| command.arg(argument(s, defaults.as_ref())),
        )
    }

    fn augment_args_for_update(command: Command) -> Command {
        Self::augment_args(command)
    }
}

fn argument(s: &Setting, defaults: Option<&Config>) -> Arg {
    let default = defaults
        .map(|config| (s.show)(config, None))
        .filter(|value| !value.is_empty() && !s.help.contains("[default:"));
    let help = match default {
        Some(value) => format!("{} [default: {value}]", s.help),
        None => s.help.to_owned(),
    };
    Arg::new(s.variable)
        .long(s.flag)
        .env(s.variable)
        .value_name("VALUE")
        .help(help)
        .global(true)
        // `--help` names the variable but never shows its current value (`[env: X]`).
        .hide_env_values(true)
}

/// A database URL for display: a PostgreSQL password (in the user part or as a `password`
/// parameter) is masked.
fn show_database_url(url: &DatabaseUrl) -> String {
    match url {
        DatabaseUrl::Sqlite(path) => path.display().to_string(),
        DatabaseUrl::Postgres(url) => mask_url_password(url),
    }
}

fn mask_url_password(url: &str) -> String {
    let (head, query) = match url.split_once('?') {
        Some((head, query)) => (head, Some(query)),
        None => (url, None),
    };
    let mut masked = match head.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
            let authority = match authority.rsplit_once('@') {
                Some((userinfo, host)) => match userinfo.split_once(':') {
                    Some((user, _)) => format!("{user}:{MASK}@{host}"),
                    None => authority.to_owned(),
                },
                None => authority.to_owned(),
            };
            format!("{scheme}://{authority}{path}")
        }
        None => head.to_owned(),
    };
    if let Some(query) = query {
        let params: Vec<String> = query
            .split('&')
            .map(|param| match param.split_once('=') {
                Some((name, _)) if name.eq_ignore_ascii_case("password") => {
                    format!("{name}={MASK}")
                }
                _ => param.to_owned(),
            })
            .collect();
        masked.push('?');
        masked.push_str(&params.join("&"));
    }
    masked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_passwords_are_masked() {
        assert_eq!(
            mask_url_password("postgres://sf:s3cr:et@db.example:5432/sf?sslmode=require"),
            "postgres://sf:********@db.example:5432/sf?sslmode=require"
        );
        assert_eq!(
            mask_url_password("postgresql:///sf?host=/run/pg&password=x&user=a"),
            "postgresql:///sf?host=/run/pg&password=********&user=a"
        );
        assert_eq!(
            mask_url_password("postgres://sf@db/sf"),
            "postgres://sf@db/sf"
        );
    }

    /// A setting added to `Config::from_lookup` without its line in `SETTINGS` fails here.
    #[test]
    fn every_variable_the_parser_reads_has_a_flag() {
        let asked = std::cell::RefCell::new(Vec::new());
        Config::from_lookup(|name| {
            asked.borrow_mut().push(name.to_owned());
            None
        })
        .unwrap();
        let asked = asked.into_inner();
        assert!(asked.len() >= 30, "{asked:?}");
        for name in asked {
            assert!(
                name == "STAGEFLOW_JWT_SECRET" || SETTINGS.iter().any(|s| s.variable == name),
                "{name} has no flag in SETTINGS"
            );
        }
    }

    #[test]
    fn every_setting_has_a_distinct_flag_and_variable() {
        let mut flags: Vec<_> = SETTINGS.iter().map(|s| s.flag).collect();
        let mut variables: Vec<_> = SETTINGS.iter().map(|s| s.variable).collect();
        flags.sort_unstable();
        flags.dedup();
        variables.sort_unstable();
        variables.dedup();
        assert_eq!(flags.len(), SETTINGS.len());
        assert_eq!(variables.len(), SETTINGS.len());
    }
}
