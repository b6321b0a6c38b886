//! Masters (code lists) and their items.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{master_items, masters};
use super::types::Timestamp;
use crate::auth::TenantScope;
use crate::domain::ids::{MasterId, TenantId};

#[derive(Debug, Clone, Queryable)]
pub struct MasterRow {
    pub tenant_id: TenantId,
    pub id: MasterId,
    pub key: String,
    pub name_ja: String,
    pub name_en: String,
    pub description: String,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Debug, Clone, Queryable)]
pub struct ItemRow {
    pub tenant_id: TenantId,
    pub master_id: MasterId,
    pub code: String,
    pub label_ja: String,
    pub label_en: String,
    pub sort_order: i32,
    pub active: bool,
    pub parent_code: Option<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub struct NewMaster<'a> {
    pub id: MasterId,
    pub key: &'a str,
    pub name_ja: &'a str,
    pub name_en: &'a str,
    pub description: &'a str,
    pub now: Timestamp,
}

pub struct NewItem<'a> {
    pub code: &'a str,
    pub label_ja: &'a str,
    pub label_en: &'a str,
    pub sort_order: i32,
    pub active: bool,
    pub parent_code: Option<&'a str>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = masters)]
pub struct MasterChanges {
    pub name_ja: Option<String>,
    pub name_en: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = master_items)]
pub struct ItemChanges {
    pub label_ja: Option<String>,
    pub label_en: Option<String>,
    pub sort_order: Option<i32>,
    pub active: Option<bool>,
    pub parent_code: Option<Option<String>>,
}

pub fn insert_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewMaster<'_>,
) -> QueryResult<MasterRow> {
    diesel::insert_into(masters::table)
        .values((
            masters::tenant_id.eq(scope.tenant_id()),
            masters::id.eq(new.id),
            masters::key.eq(new.key),
            masters::name_ja.eq(new.name_ja),
            masters::name_en.eq(new.name_en),
            masters::description.eq(new.description),
            masters::created_at.eq(new.now),
            masters::updated_at.eq(new.now),
        ))
        .get_result(conn)
}

/// Inserts items one by one (multi-row inserts do not compile through `MultiConnection`).
pub fn insert_items(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: MasterId,
    items: &[NewItem<'_>],
    now: Timestamp,
) -> QueryResult<()> {
    for item in items {
        diesel::insert_into(master_items::table)
            .values((
                master_items::tenant_id.eq(scope.tenant_id()),
                master_items::master_id.eq(master),
                master_items::code.eq(item.code),
                master_items::label_ja.eq(item.label_ja),
                master_items::label_en.eq(item.label_en),
                master_items::sort_order.eq(item.sort_order),
                master_items::active.eq(item.active),
                master_items::parent_code.eq(item.parent_code),
                master_items::created_at.eq(now),
                master_items::updated_at.eq(now),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn find_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> QueryResult<Option<MasterRow>> {
    masters::table
        .filter(masters::tenant_id.eq(scope.tenant_id()))
        .filter(masters::key.eq(key))
        .first(conn)
        .optional()
}

pub fn list_masters(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<MasterId>,
    limit: i64,
) -> QueryResult<Vec<MasterRow>> {
    let mut query = masters::table
        .filter(masters::tenant_id.eq(scope.tenant_id()))
        .order(masters::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(masters::id.gt(after));
    }
    query.load(conn)
}

pub fn update_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MasterId,
    changes: &MasterChanges,
    now: Timestamp,
) -> QueryResult<MasterRow> {
    diesel::update(masters::table.find((scope.tenant_id(), id)))
        .set((
            changes,
            masters::version.eq(masters::version + 1),
            masters::updated_at.eq(now),
        ))
        .get_result(conn)
}

/// Bumps a master's version (its items changed), so its ETag changes.
pub fn touch_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MasterId,
    now: Timestamp,
) -> QueryResult<()> {
    diesel::update(masters::table.find((scope.tenant_id(), id)))
        .set((
            masters::version.eq(masters::version + 1),
            masters::updated_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn delete_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MasterId,
) -> QueryResult<()> {
    diesel::delete(
        master_items::table
            .filter(master_items::tenant_id.eq(scope.tenant_id()))
            .filter(master_items::master_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(masters::table.find((scope.tenant_id(), id))).execute(conn)?;
    Ok(())
}

/// Items in display order (order, then code).
pub fn items(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: MasterId,
    active_only: bool,
) -> QueryResult<Vec<ItemRow>> {
    let mut query = master_items::table
        .filter(master_items::tenant_id.eq(scope.tenant_id()))
        .filter(master_items::master_id.eq(master))
        .order((master_items::sort_order.asc(), master_items::code.asc()))
        .into_boxed();
    if active_only {
        query = query.filter(master_items::active.eq(true));
    }
    query.load(conn)
}

/// Active item codes of the named masters, as (master key, code) pairs, in one query.
pub fn active_codes(
    conn: &mut DbConnection,
    scope: &TenantScope,
    keys: &[&str],
) -> QueryResult<Vec<(String, String)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    master_items::table
        .inner_join(
            masters::table.on(masters::tenant_id
                .eq(master_items::tenant_id)
                .and(masters::id.eq(master_items::master_id))),
        )
        .filter(master_items::tenant_id.eq(scope.tenant_id()))
        .filter(masters::key.eq_any(keys))
        .filter(master_items::active.eq(true))
        .select((masters::key, master_items::code))
        .load(conn)
}

pub fn find_item(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: MasterId,
    code: &str,
) -> QueryResult<Option<ItemRow>> {
    master_items::table
        .find((scope.tenant_id(), master, code))
        .first(conn)
        .optional()
}

pub fn update_item(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: MasterId,
    code: &str,
    changes: &ItemChanges,
    now: Timestamp,
) -> QueryResult<ItemRow> {
    diesel::update(master_items::table.find((scope.tenant_id(), master, code)))
        .set((
            changes,
            master_items::version.eq(master_items::version + 1),
            master_items::updated_at.eq(now),
        ))
        .get_result(conn)
}
