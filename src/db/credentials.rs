//! Refresh tokens and API keys: secrets stored only as SHA-256 hashes.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{api_keys, refresh_tokens};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{ApiKeyId, EntityId, RefreshTokenId, TenantId, UserId};

#[derive(Debug, Clone, Queryable)]
pub struct RefreshTokenRow {
    pub tenant_id: TenantId,
    pub id: RefreshTokenId,
    pub family_id: EntityId,
    pub subject_id: EntityId,
    pub token_hash: String,
    pub expires_at: Timestamp,
    pub used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// When the login that began the family happened; the family's absolute lifetime runs
    /// from here.
    pub family_started_at: Timestamp,
}

pub struct NewRefreshToken<'a> {
    pub id: RefreshTokenId,
    pub family_id: EntityId,
    pub subject_id: EntityId,
    pub token_hash: &'a str,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub family_started_at: Timestamp,
}

pub fn insert_refresh_token(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewRefreshToken<'_>,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::tenant_id.eq(scope.tenant_id()),
            refresh_tokens::id.eq(new.id),
            refresh_tokens::family_id.eq(new.family_id),
            refresh_tokens::subject_id.eq(new.subject_id),
            refresh_tokens::token_hash.eq(new.token_hash),
            refresh_tokens::expires_at.eq(new.expires_at),
            refresh_tokens::created_at.eq(new.created_at),
            refresh_tokens::family_started_at.eq(new.family_started_at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn find_refresh_token(
    conn: &mut DbConnection,
    scope: &TenantScope,
    token_hash: &str,
) -> QueryResult<Option<RefreshTokenRow>> {
    refresh_tokens::table
        .filter(refresh_tokens::tenant_id.eq(scope.tenant_id()))
        .filter(refresh_tokens::token_hash.eq(token_hash))
        .first(conn)
        .optional()
}

/// Marks a token spent, if it still was unspent; `false` when another request spent it first.
pub fn spend_refresh_token(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: RefreshTokenId,
    now: Timestamp,
) -> QueryResult<bool> {
    let updated = diesel::update(
        refresh_tokens::table
            .find((scope.tenant_id(), id))
            .filter(refresh_tokens::used_at.is_null())
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::used_at.eq(Some(now)))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn revoke_family(
    conn: &mut DbConnection,
    scope: &TenantScope,
    family_id: EntityId,
    now: Timestamp,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::tenant_id.eq(scope.tenant_id()))
            .filter(refresh_tokens::family_id.eq(family_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)
}

/// Revokes every refresh token of a subject (password change, deactivation).
pub fn revoke_subject(
    conn: &mut DbConnection,
    scope: &TenantScope,
    subject_id: EntityId,
    now: Timestamp,
) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::tenant_id.eq(scope.tenant_id()))
            .filter(refresh_tokens::subject_id.eq(subject_id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(Some(now)))
    .execute(conn)
}

#[derive(Debug, Clone, Queryable)]
pub struct ApiKeyRow {
    pub tenant_id: TenantId,
    pub id: ApiKeyId,
    pub name: String,
    pub roles: String,
    pub secret_hash: String,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    /// After this instant the key is refused; `None`: it does not expire.
    pub expires_at: Option<Timestamp>,
}

pub struct NewApiKey<'a> {
    pub id: ApiKeyId,
    pub name: &'a str,
    pub roles: &'a str,
    pub secret_hash: &'a str,
    pub created_by: UserId,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
}

pub fn insert_api_key(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewApiKey<'_>,
) -> QueryResult<ApiKeyRow> {
    diesel::insert_into(api_keys::table)
        .values((
            api_keys::tenant_id.eq(scope.tenant_id()),
            api_keys::id.eq(new.id),
            api_keys::name.eq(new.name),
            api_keys::roles.eq(new.roles),
            api_keys::secret_hash.eq(new.secret_hash),
            api_keys::created_by.eq(new.created_by),
            api_keys::created_at.eq(new.created_at),
            api_keys::expires_at.eq(new.expires_at),
        ))
        .get_result(conn)
}

/// A key that has not been revoked (it may have expired, or its creator may be inactive).
pub fn find_api_key(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ApiKeyId,
) -> QueryResult<Option<ApiKeyRow>> {
    api_keys::table
        .find((scope.tenant_id(), id))
        .filter(api_keys::revoked_at.is_null())
        .first(conn)
        .optional()
}

/// What a request's credential check reads of an API key, in one statement: the key (if it
/// is not revoked and its tenant exists and is active) and its creator's row, if there is
/// one (whether the creator is active is the caller's to judge).
pub fn api_key_for_principal(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ApiKeyId,
) -> QueryResult<Option<(ApiKeyRow, Option<super::users::UserRow>)>> {
    use super::schema::{tenants, users};
    api_keys::table
        .inner_join(
            tenants::table.on(tenants::id
                .eq(api_keys::tenant_id)
                .and(tenants::active.eq(true))),
        )
        .left_join(
            users::table.on(users::tenant_id
                .eq(api_keys::tenant_id)
                .and(users::id.eq(api_keys::created_by))),
        )
        .filter(api_keys::tenant_id.eq(scope.tenant_id()))
        .filter(api_keys::id.eq(id))
        .filter(api_keys::revoked_at.is_null())
        .select((api_keys::all_columns, users::all_columns.nullable()))
        .first(conn)
        .optional()
}

pub fn list_api_keys(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<ApiKeyId>,
    limit: i64,
) -> QueryResult<Vec<ApiKeyRow>> {
    let mut query = api_keys::table
        .filter(api_keys::tenant_id.eq(scope.tenant_id()))
        .filter(api_keys::revoked_at.is_null())
        .order(api_keys::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(api_keys::id.gt(after));
    }
    query.load(conn)
}

pub fn revoke_api_key(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ApiKeyId,
    now: Timestamp,
) -> QueryResult<bool> {
    let updated = diesel::update(
        api_keys::table
            .find((scope.tenant_id(), id))
            .filter(api_keys::revoked_at.is_null()),
    )
    .set(api_keys::revoked_at.eq(Some(now)))
    .execute(conn)?;
    Ok(updated == 1)
}

pub fn touch_api_key(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ApiKeyId,
    now: Timestamp,
) -> QueryResult<()> {
    diesel::update(api_keys::table.find((scope.tenant_id(), id)))
        .set(api_keys::last_used_at.eq(Some(now)))
        .execute(conn)?;
    Ok(())
}
