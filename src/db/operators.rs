//! Platform operator accounts (platform-owned: no tenant).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::operators;
use super::types::Timestamp;
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
