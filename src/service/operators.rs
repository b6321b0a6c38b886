//! `stageflow operator reset-password`: recovering a lost platform-operator password from the
//! command line, against the configured database.

use chrono::{DateTime, Utc};

use crate::auth::password::{PasswordHasher, random_token};
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::{Database, DbError};
use crate::domain::credentials::{CredentialError, NewPassword, Username};

/// Why a reset did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error("username {0}")]
    Username(CredentialError),
    #[error("new password {0}")]
    Password(CredentialError),
    #[error("no platform operator named '{0}'")]
    NoSuchOperator(String),
    #[error("cannot hash the password: {0}")]
    Hash(String),
    #[error(transparent)]
    Database(#[from] DbError),
}

impl From<diesel::result::Error> for ResetError {
    fn from(error: diesel::result::Error) -> Self {
        Self::Database(error.into())
    }
}

/// The new password: given (checked against the password policy) or generated.
pub enum NewOperatorPassword {
    Given(String),
    Generate,
}

/// Sets a new password for the operator `username` (canonicalised as at login), clears its
/// lock-out, revokes its refresh tokens (every session ends) and records it in the platform
/// audit log. Returns the password that was set, so a generated one can be shown once.
pub fn reset_operator_password(
    db: &Database,
    config: &Config,
    username: &str,
    password: NewOperatorPassword,
    now: DateTime<Utc>,
) -> Result<String, ResetError> {
    let username = Username::parse(username).map_err(ResetError::Username)?;
    let password = match password {
        NewOperatorPassword::Given(raw) => {
            NewPassword::parse(&raw, username.as_str(), config.password_min_chars)
                .map_err(ResetError::Password)?
        }
        NewOperatorPassword::Generate => generate(username.as_str(), config.password_min_chars)?,
    };
    let hash = PasswordHasher::new(config.argon2)
        .and_then(|hasher| hasher.hash_blocking(password.expose()))
        .map_err(ResetError::Hash)?;
    let actor = Actor {
        kind: "operator",
        id: None,
        name: "stageflow operator reset-password (command line)".to_owned(),
        client_addr: None,
    };
    let reset = db.write_blocking(|conn| {
        crate::auth::recovery::reset_operator_password(conn, username.as_str(), &hash, &actor, now)
    })?;
    match reset {
        Some(_) => Ok(password.expose().to_owned()),
        None => Err(ResetError::NoSuchOperator(username.to_string())),
    }
}

/// A random password long enough for the policy that does not contain the username (a short
/// username can occur in random text by chance, so a few draws may be needed).
fn generate(username: &str, min_chars: usize) -> Result<NewPassword, ResetError> {
    let bytes = min_chars.max(24) * 3 / 4 + 1;
    let mut last = CredentialError::PasswordEmpty;
    for _ in 0..64 {
        match NewPassword::parse(&random_token(bytes), username, min_chars) {
            Ok(password) => return Ok(password),
            Err(error) => last = error,
        }
    }
    Err(ResetError::Password(last))
}
