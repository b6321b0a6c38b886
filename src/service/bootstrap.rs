//! First-start provisioning of the platform.

use chrono::{DateTime, Utc};

use crate::auth::password::{PasswordHasher, random_token};
use crate::config::Config;
use crate::db::{self, DbConnection, DbError};
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

/// The secret access tokens are signed with: `STAGEFLOW_JWT_SECRET` when set, else the one
/// generated at the first start and kept in `platform_settings` (the first node to start
/// stores it; the others read it).
pub fn jwt_secret(
    conn: &mut DbConnection,
    config: &Config,
    now: DateTime<Utc>,
) -> Result<String, ServiceError> {
    match &config.jwt_secret {
        Some(secret) => Ok(secret.clone()),
        None => Ok(db::settings::get_or_insert(
            conn,
            db::settings::JWT_SECRET,
            &random_token(48),
            now.into(),
        )
        .map_err(DbError::from)?),
    }
}
