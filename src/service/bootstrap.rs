//! First-start provisioning of the platform (the operator account, the signing keys) and the
//! signing-key commands.

use chrono::{DateTime, Utc};

use crate::auth::Principal;
use crate::auth::keys::{self, KeyError, MasterKey};
use crate::auth::password::{PasswordHasher, random_token};
use crate::auth::token::{TokenKeys, verify_window};
use crate::config::Config;
use crate::db::audit::Actor;
use crate::db::signing_keys::SigningKeyRow;
use crate::db::{self, Database, DbConnection, DbError};
use crate::domain::ids::OperatorId;
use crate::service::error::ServiceError;

/// Creates the platform operator account when the database has none: from
/// `STAGEFLOW_OPERATOR_USERNAME`/`STAGEFLOW_OPERATOR_PASSWORD`, or with a generated password that
/// is printed once to the log. When several nodes start on an empty database at once, one insert
/// wins and the others find the account present.
pub fn ensure_operator(
    conn: &mut DbConnection,
    config: &Config,
    passwords: &PasswordHasher,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if db::operators::count(conn).map_err(DbError::from)? > 0 {
        return Ok(());
    }
    let (password, generated) = match &config.operator_password {
        Some(password) => (password.clone(), false),
        None => (random_token(18), true),
    };
    let hash = passwords
        .hash_blocking(&password)
        .map_err(ServiceError::Internal)?;
    let inserted = db::operators::insert(
        conn,
        &db::operators::NewOperator {
            id: OperatorId::new_at(now),
            username: &config.operator_username,
            password_hash: &hash,
            display_name: "Platform operator",
            created_at: now.into(),
            updated_at: now.into(),
        },
    );
    match inserted {
        Ok(_) if generated => log::warn!(
            "created the platform operator '{}' with the generated password '{}' — it is shown \
             only this once; set STAGEFLOW_OPERATOR_PASSWORD to choose it instead",
            config.operator_username,
            password
        ),
        Ok(_) => log::info!(
            "created the platform operator '{}' from STAGEFLOW_OPERATOR_PASSWORD",
            config.operator_username
        ),
        Err(e) if db::is_unique_violation(&e) => {}
        Err(e) => return Err(DbError::from(e).into()),
    }
    Ok(())
}

/// The access-token key ring: opens the master key (creating its file on the first start of an
/// empty key table), makes the first signing key when none is stored (when several nodes
/// start on an empty database at once each may make one; the newest signs, all verify), and
/// opens the signer. A master key that cannot open it is an error naming the cause.
pub fn signing_keys(
    conn: &mut DbConnection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<TokenKeys, KeyError> {
    let stored = db::signing_keys::list(conn)?;
    let master = MasterKey::load(&config.master_key, stored.is_empty())?;
    if keys::ensure_signer(conn, &master, now)? {
        log::info!("generated the first access-token signing key");
    }
    let rows = db::signing_keys::list(conn)?;
    TokenKeys::new(master, config.access_token_ttl, &rows, now)
}

/// `stageflow keys rotate`: a new signing key takes over; the previous ones keep verifying
/// until no token they signed can still be valid, and older retired keys are deleted.
/// Running nodes pick the new key up within a minute.
pub fn rotate_signing_key(
    db: &Database,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    let actor = Actor {
        kind: "operator",
        id: None,
        name: "stageflow keys rotate (command line)".to_owned(),
        client_addr: None,
    };
    db.write_blocking(|conn| rotate_in(conn, config, &actor, now))
}

/// `POST /signing-keys`: the same rotation by the platform operator, audited as them. A key
/// problem is internal (logged): the server that answers already runs with these keys.
pub fn rotate_signing_key_as(
    conn: &mut DbConnection,
    config: &Config,
    operator: &Principal,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow, ServiceError> {
    operator.operator()?;
    rotate_in(conn, config, &operator.actor(), now).map_err(|e| match e {
        KeyError::Database(db) => db.into(),
        other => ServiceError::internal(other),
    })
}

fn rotate_in(
    conn: &mut DbConnection,
    config: &Config,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<SigningKeyRow, KeyError> {
    let stored = db::signing_keys::list(conn)?;
    let master = MasterKey::load(&config.master_key, stored.is_empty())?;
    let window = verify_window(config.access_token_ttl);
    keys::rotate(conn, &master, window, actor, now)
}

/// One line of `stageflow keys list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyStatus {
    pub kid: String,
    pub algorithm: String,
    pub created_at: DateTime<Utc>,
    pub state: KeyState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Signs new tokens (the newest current key).
    Signing,
    /// Current but not the signer (another node made a newer key at the same moment).
    Verifying,
    /// Retired; verifies the tokens it signed until then.
    RetiredUntil(DateTime<Utc>),
    /// Retired long enough that nothing it signed is valid; the next rotation deletes it.
    Expired,
}

/// `stageflow keys list`: every stored key, newest first, with what it is used for at `now`.
pub fn list_signing_keys(
    db: &Database,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<Vec<SigningKeyStatus>, KeyError> {
    let rows = db::signing_keys::list(&mut *db.get()?)?;
    let window = verify_window(config.access_token_ttl);
    let mut signer_seen = false;
    Ok(rows
        .into_iter()
        .map(|row| {
            let state = match row.retired_at {
                None if !signer_seen => {
                    signer_seen = true;
                    KeyState::Signing
                }
                None => KeyState::Verifying,
                Some(at) if at.0 + window > now => KeyState::RetiredUntil(at.0 + window),
                Some(_) => KeyState::Expired,
            };
            SigningKeyStatus {
                kid: row.kid,
                algorithm: row.algorithm,
                created_at: row.created_at.0,
                state,
            }
        })
        .collect())
}
