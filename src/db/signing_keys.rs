//! Access-token signing keys, a platform table: the public half in the clear, the private half
//! sealed under the master key (see `auth::keys`), which the database never holds.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::signing_keys;
use super::types::Timestamp;

#[derive(Debug, Clone, Queryable)]
pub struct SigningKeyRow {
    pub kid: String,
    pub algorithm: String,
    /// The raw public key, base64url without padding (the JWK `x`).
    pub public_key: String,
    /// The sealed private key: base64 of nonce and ciphertext.
    pub private_key: String,
    pub created_at: Timestamp,
    /// When a newer key took over signing; the key still verifies for a while after.
    pub retired_at: Option<Timestamp>,
}

pub struct NewSigningKey<'a> {
    pub kid: &'a str,
    pub algorithm: &'a str,
    pub public_key: &'a str,
    pub private_key: &'a str,
    pub created_at: Timestamp,
}

pub fn insert(conn: &mut DbConnection, new: &NewSigningKey<'_>) -> QueryResult<SigningKeyRow> {
    diesel::insert_into(signing_keys::table)
        .values((
            signing_keys::kid.eq(new.kid),
            signing_keys::algorithm.eq(new.algorithm),
            signing_keys::public_key.eq(new.public_key),
            signing_keys::private_key.eq(new.private_key),
            signing_keys::created_at.eq(new.created_at),
        ))
        .get_result(conn)
}

/// Every stored key, newest first.
pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<SigningKeyRow>> {
    signing_keys::table
        .order((signing_keys::created_at.desc(), signing_keys::kid.desc()))
        .load(conn)
}

/// Marks every current key except `keep` as retired at `now`.
pub fn retire_others(conn: &mut DbConnection, keep: &str, now: Timestamp) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::retired_at.is_null())
            .filter(signing_keys::kid.ne(keep)),
    )
    .set(signing_keys::retired_at.eq(Some(now)))
    .execute(conn)
}

/// Deletes the keys retired before `before` (no token they signed can still be valid).
pub fn prune(conn: &mut DbConnection, before: Timestamp) -> QueryResult<usize> {
    diesel::delete(signing_keys::table.filter(signing_keys::retired_at.lt(before))).execute(conn)
}
