//! Platform-wide settings shared by every node of a cluster. Never secrets: a copy of the
//! database must not be able to act for the platform (signing keys are sealed, `db::signing_keys`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::platform_settings;
use super::types::Timestamp;

pub fn get(conn: &mut DbConnection, key: &str) -> QueryResult<Option<String>> {
    platform_settings::table
        .filter(platform_settings::key.eq(key))
        .select(platform_settings::value)
        .first(conn)
        .optional()
}

/// Returns the stored value of `key`, storing `proposed` first if there is none. When several
/// nodes start at once, the first insert wins and every node reads the same value. Must run
/// outside a transaction (a failed insert would abort a PostgreSQL transaction).
pub fn get_or_insert(
    conn: &mut DbConnection,
    key: &str,
    proposed: &str,
    now: Timestamp,
) -> QueryResult<String> {
    if let Some(value) = get(conn, key)? {
        return Ok(value);
    }
    let inserted = diesel::insert_into(platform_settings::table)
        .values((
            platform_settings::key.eq(key),
            platform_settings::value.eq(proposed),
            platform_settings::created_at.eq(now),
        ))
        .execute(conn);
    match inserted {
        Ok(_) => Ok(proposed.to_owned()),
        Err(e) if super::is_unique_violation(&e) => {
            get(conn, key)?.ok_or(diesel::result::Error::NotFound)
        }
        Err(e) => Err(e),
    }
}
