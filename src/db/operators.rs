//! Platform operator accounts (platform-owned: no tenant).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::operators;
use super::types::Timestamp;
pub use super::users::LoginState;
use crate::domain::ids::OperatorId;

#[derive(Debug, Clone, Queryable)]
pub struct OperatorRow {
    pub id: OperatorId,
    pub username: String,
    pub password_hash: String,
    pub display_name: String,
    pub active: bool,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub failed_logins: i32,
    pub failure_window_at: Option<Timestamp>,
    pub locked_until: Option<Timestamp>,
}

impl OperatorRow {
    pub fn login_state(&self) -> LoginState {
        LoginState {
            failed_logins: self.failed_logins,
            failure_window_at: self.failure_window_at,
            locked_until: self.locked_until,
        }
    }
}

#[derive(Debug, Insertable)]
#[diesel(table_name = operators)]
pub struct NewOperator<'a> {
    pub id: OperatorId,
    pub username: &'a str,
    pub password_hash: &'a str,
    pub display_name: &'a str,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    operators::table.count().get_result(conn)
}

pub fn insert(conn: &mut DbConnection, new: &NewOperator<'_>) -> QueryResult<OperatorRow> {
    diesel::insert_into(operators::table)
        .values(new)
        .get_result(conn)
}

pub fn find_by_username(
    conn: &mut DbConnection,
    username: &str,
) -> QueryResult<Option<OperatorRow>> {
    operators::table
        .filter(operators::username.eq(username))
        .first(conn)
        .optional()
}

/// The operator with `id` if it exists and is active.
pub fn find_active(conn: &mut DbConnection, id: OperatorId) -> QueryResult<Option<OperatorRow>> {
    operators::table
        .filter(operators::id.eq(id))
        .filter(operators::active.eq(true))
        .first(conn)
        .optional()
}

/// The operator, read after locking its row until the transaction ends (see
/// `users::find_for_login`).
pub fn find_for_login(conn: &mut DbConnection, id: OperatorId) -> QueryResult<Option<OperatorRow>> {
    if super::backend_of(conn) == super::Backend::Postgres {
        diesel::sql_query("SELECT 1 FROM operators WHERE id = $1 FOR UPDATE")
            .bind::<super::types::DbUuid, _>(id)
            .execute(conn)?;
    }
    operators::table.find(id).first(conn).optional()
}

/// Records the outcome of a password check for the lock-out rule.
pub fn set_login_state(
    conn: &mut DbConnection,
    id: OperatorId,
    state: &LoginState,
) -> QueryResult<usize> {
    diesel::update(operators::table.find(id))
        .set((
            operators::failed_logins.eq(state.failed_logins),
            operators::failure_window_at.eq(state.failure_window_at),
            operators::locked_until.eq(state.locked_until),
        ))
        .execute(conn)
}

pub fn set_password(
    conn: &mut DbConnection,
    id: OperatorId,
    password_hash: &str,
    now: Timestamp,
) -> QueryResult<usize> {
    diesel::update(operators::table.find(id))
        .set((
            operators::password_hash.eq(password_hash),
            operators::version.eq(operators::version + 1),
            operators::updated_at.eq(now),
        ))
        .execute(conn)
}

/// `stageflow operator reset-password`: a new password, and the lock-out state cleared (the
/// operator's lock otherwise only expires).
pub fn reset_password(
    conn: &mut DbConnection,
    id: OperatorId,
    password_hash: &str,
    now: Timestamp,
) -> QueryResult<usize> {
    diesel::update(operators::table.find(id))
        .set((
            operators::password_hash.eq(password_hash),
            operators::failed_logins.eq(0),
            operators::failure_window_at.eq(None::<Timestamp>),
            operators::locked_until.eq(None::<Timestamp>),
            operators::version.eq(operators::version + 1),
            operators::updated_at.eq(now),
        ))
        .execute(conn)
}
