//! Readiness of the node: the database answers and its schema is the one this binary expects.

use crate::db::{self, DbConnection, DbError};

/// Whether migrations this binary knows are still pending; an error when the database does not
/// answer.
pub fn schema_pending(conn: &mut DbConnection) -> Result<bool, DbError> {
    use diesel::r2d2::R2D2Connection;
    conn.ping().map_err(DbError::from)?;
    db::migrations::has_pending(conn)
}
