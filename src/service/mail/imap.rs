//! A mail channel's IMAP poller: its configuration (checked, the password sealed under the
//! master key), its job (`mail.imap`, one per channel) and its state. The poll itself is
//! `imap_poll.rs`. docs/mail.md, "IMAP setup".

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::auth::TenantScope;
use crate::auth::keys::MasterKey;
use crate::db::DbConnection;
use crate::db::jobs::{self as jobs, NewJob};
use crate::db::mail::ChannelRow;
use crate::db::types::Json;
use crate::domain::ids::MailChannelId;
use crate::domain::mail_channel::{ImapConfig, ImapSecurity, is_loopback_host, valid_host};
use crate::service::error::ServiceError;

/// The job kind of a channel's poller.
pub const KIND: &str = "mail.imap";
/// Attempts before the poller gives up after failures in a row (a successful run starts the
/// count again): with the back-off capped at an hour, about a year of failures.
pub const ATTEMPTS: i32 = 10_000;
/// Longest username, password and folder name, in characters.
pub const MAX_CHARS: usize = 255;
/// Longest password, in characters.
pub const MAX_PASSWORD_CHARS: usize = 1_024;

/// The IMAP part of a channel as a tenant admin writes it: the configuration and, when
/// given, a new password (write-only).
#[derive(Debug, Clone)]
pub struct ImapInput {
    pub config: ImapConfig,
    /// `None`: keep the stored one (allowed only for the same host and username).
    pub password: Option<String>,
    /// The port as written, checked into `config.port`.
    pub port: i64,
}

impl ImapInput {
    pub fn of_row(row: &ChannelRow) -> Result<Option<Self>, ServiceError> {
        let Some(Json(value)) = &row.imap else {
            return Ok(None);
        };
        let config: ImapConfig = serde_json::from_value(value.clone())
            .map_err(|e| ServiceError::internal(format!("stored IMAP settings: {e}")))?;
        Ok(Some(Self {
            port: i64::from(config.port),
            config,
            password: None,
        }))
    }
}

fn invalid(field: &str, code: &str, message: &str) -> ServiceError {
    ServiceError::validation(&format!("imap/{field}"), code, message)
}

fn text_ok(value: &str, most: usize) -> bool {
    !value.is_empty() && value.chars().count() <= most && !value.chars().any(char::is_control)
}

/// Every check of the IMAP part on its own.
pub fn check(input: &mut ImapInput) -> Result<(), ServiceError> {
    let config = &mut input.config;
    config.host = config.host.trim().to_ascii_lowercase();
    if !valid_host(&config.host) {
        return Err(invalid("host", "invalid", "a host name or IP address"));
    }
    config.port = u16::try_from(input.port)
        .ok()
        .filter(|p| *p > 0)
        .ok_or_else(|| invalid("port", "out_of_range", "between 1 and 65535"))?;
    if config.security == ImapSecurity::None && !is_loopback_host(&config.host) {
        return Err(invalid(
            "security",
            "insecure",
            "`none` (no TLS) only for a server on a loopback address; use `tls` or `starttls`",
        ));
    }
    if !text_ok(&config.username, MAX_CHARS) {
        return Err(invalid(
            "username",
            "invalid",
            "1–255 characters, no control characters",
        ));
    }
    if !text_ok(&config.folder, MAX_CHARS) {
        return Err(invalid(
            "folder",
            "invalid",
            "1–255 characters, no control characters",
        ));
    }
    if let Some(password) = &input.password
        && !text_ok(password, MAX_PASSWORD_CHARS)
    {
        return Err(invalid(
            "password",
            "invalid",
            "1–1024 characters, no control characters",
        ));
    }
    Ok(())
}

/// The additional data the master key binds a channel's IMAP password to.
fn password_kid(id: MailChannelId) -> String {
    format!("mail-channel:{id}:imap-password")
}

/// The channel's IMAP password, opened.
pub fn password(master: &MasterKey, row: &ChannelRow) -> Result<String, ServiceError> {
    let sealed = row
        .imap_password
        .as_deref()
        .ok_or_else(|| ServiceError::internal("no IMAP password is stored"))?;
    let bytes = master
        .open(&password_kid(row.id), sealed)
        .map_err(|e| ServiceError::internal(format!("IMAP password: {e}")))?;
    String::from_utf8(bytes).map_err(|_| ServiceError::internal("IMAP password is not UTF-8"))
}

/// Writes the IMAP part into the row to store: the configuration, the password sealed (or
/// the stored one kept), and the poll state started again when the mailbox changed.
pub fn store(
    master: &MasterKey,
    row: &mut ChannelRow,
    before: Option<&ImapConfig>,
    imap: Option<&ImapInput>,
) -> Result<(), ServiceError> {
    let Some(imap) = imap else {
        row.imap = None;
        row.imap_password = None;
        reset_state(row);
        return Ok(());
    };
    let same_account = before.is_some_and(|b| {
        b.host.eq_ignore_ascii_case(&imap.config.host) && b.username == imap.config.username
    });
    match &imap.password {
        Some(password) => {
            let sealed = master
                .seal(&password_kid(row.id), password.as_bytes())
                .map_err(|e| ServiceError::internal(format!("IMAP password: {e}")))?;
            row.imap_password = Some(sealed);
        }
        None if same_account && row.imap_password.is_some() => {}
        None => {
            return Err(invalid(
                "password",
                "required",
                "give the password (it is kept only for the same host and username)",
            ));
        }
    }
    if !before.is_some_and(|b| b.same_mailbox(&imap.config)) {
        reset_state(row);
    }
    row.imap = Some(Json(json!(imap.config)));
    Ok(())
}

fn reset_state(row: &mut ChannelRow) {
    row.imap_uidvalidity = None;
    row.imap_last_uid = 0;
    row.imap_last_error = None;
}

/// Makes sure a channel that polls has its job, due now (in the caller's transaction); a
/// job that had failed for good is revived. A channel that does not poll (no IMAP part, or
/// disabled) needs nothing: its job ends by itself at its next run.
pub fn schedule(
    conn: &mut DbConnection,
    scope: &TenantScope,
    row: &ChannelRow,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if row.imap.is_none() || !row.enabled {
        return Ok(());
    }
    let job = NewJob {
        kind: KIND.to_owned(),
        tenant: Some(scope.tenant_id()),
        payload: json!({"channel_id": row.id}),
        run_at: now,
        max_attempts: ATTEMPTS,
        created_at: now,
    };
    jobs::ensure_keyed_revived(conn, &job, &job_key(row.id))?;
    Ok(())
}

/// The singleton key of a channel's poller job.
pub fn job_key(channel: MailChannelId) -> String {
    format!("{KIND}:{channel}")
}
