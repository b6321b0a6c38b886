//! Masters: create with items, edit, delete; add and edit items. Every change is audited and
//! bumps the master's version.

use chrono::{DateTime, Utc};
use serde_json::json;

use super::{audit, unique_or};
use crate::auth::{Principal, TenantScope};
use crate::db::masters::{ItemChanges, ItemRow, MasterChanges, MasterRow, NewItem, NewMaster};
use crate::db::{self, DbConnection};
use crate::domain::ids::MasterId;
use crate::domain::master::{ItemCode, Labels, MAX_ITEMS, MasterKey, check_hierarchy};
use crate::service::error::ServiceError;
use crate::service::error::{ConflictKind, check_version};

pub struct ItemInput {
    pub code: ItemCode,
    pub label: Labels,
    pub order: Option<i32>,
    pub active: bool,
    pub parent: Option<ItemCode>,
}

pub struct MasterInput {
    pub key: MasterKey,
    pub name: Labels,
    pub description: String,
    pub items: Vec<ItemInput>,
}

fn hierarchy_error(error: crate::domain::master::HierarchyError) -> ServiceError {
    ServiceError::validation("items", "hierarchy", error.to_string())
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<MasterRow, ServiceError> {
    db::masters::find_master(conn, scope, key)?.ok_or(ServiceError::NotFound)
}

pub fn create_master(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    input: &MasterInput,
    now: DateTime<Utc>,
) -> Result<(MasterRow, Vec<ItemRow>), ServiceError> {
    check_hierarchy(
        input
            .items
            .iter()
            .map(|i| (i.code.as_str(), i.parent.as_ref().map(ItemCode::as_str))),
    )
    .map_err(hierarchy_error)?;
    if db::masters::find_master(conn, scope, input.key.as_str())?.is_some() {
        return Err(ServiceError::duplicate("The master key is already taken."));
    }
    let master = db::masters::insert_master(
        conn,
        scope,
        &NewMaster {
            id: MasterId::new_at(now),
            key: input.key.as_str(),
            name_ja: &input.name.ja,
            name_en: &input.name.en,
            description: &input.description,
            now: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The master key"))?;
    let items: Vec<NewItem<'_>> = input
        .items
        .iter()
        .enumerate()
        .map(|(index, item)| NewItem {
            code: item.code.as_str(),
            label_ja: &item.label.ja,
            label_en: &item.label.en,
            sort_order: item.order.unwrap_or_else(|| {
                i32::try_from(index + 1)
                    .unwrap_or(i32::MAX)
                    .saturating_mul(10)
            }),
            active: item.active,
            parent_code: item.parent.as_ref().map(ItemCode::as_str),
        })
        .collect();
    db::masters::insert_items(conn, scope, master.id, &items, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "master.created",
        ("master", &master.key),
        json!({"items": items.len()}),
        now.into(),
    )?;
    let rows = db::masters::items(conn, scope, master.id, false)?;
    Ok((master, rows))
}

pub fn update_master(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    expected_version: Option<i64>,
    changes: MasterChanges,
    now: DateTime<Utc>,
) -> Result<(MasterRow, Vec<ItemRow>), ServiceError> {
    let current = find(conn, scope, key)?;
    check_version(expected_version, current.version)?;
    let master = db::masters::update_master(conn, scope, current.id, &changes, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "master.updated",
        ("master", key),
        json!({}),
        now.into(),
    )?;
    let items = db::masters::items(conn, scope, master.id, false)?;
    Ok((master, items))
}

pub fn delete_master(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let current = find(conn, scope, key)?;
    check_version(expected_version, current.version)?;
    if let Some(template) = super::templates::template_using_master(conn, scope, key)? {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::MasterInUse,
            detail: format!(
                "The template {template} uses this master; deactivate its items instead, or \
                 change the template first."
            ),
        });
    }
    if let Some(library) = super::libraries::library_using_master(conn, scope, key)? {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::MasterInUse,
            detail: format!(
                "The library {library} uses this master; deactivate its items instead, or \
                 change the library first."
            ),
        });
    }
    db::masters::delete_master(conn, scope, current.id)?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "master.deleted",
        ("master", key),
        json!({}),
        now.into(),
    )
}

pub fn add_item(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    item: &ItemInput,
    now: DateTime<Utc>,
) -> Result<ItemRow, ServiceError> {
    let master = find(conn, scope, key)?;
    let existing = db::masters::items(conn, scope, master.id, false)?;
    if existing.iter().any(|i| i.code == item.code.as_str()) {
        return Err(ServiceError::duplicate(
            "The item code is already taken in this master.",
        ));
    }
    if existing.len() >= MAX_ITEMS {
        return Err(ServiceError::validation(
            "code",
            "too_many",
            format!("a master holds at most {MAX_ITEMS} items"),
        ));
    }
    check_hierarchy(
        existing
            .iter()
            .map(|i| (i.code.as_str(), i.parent_code.as_deref()))
            .chain([(
                item.code.as_str(),
                item.parent.as_ref().map(ItemCode::as_str),
            )]),
    )
    .map_err(|e| ServiceError::validation("parent", "hierarchy", e.to_string()))?;
    let order = item.order.unwrap_or_else(|| {
        existing
            .iter()
            .map(|i| i.sort_order)
            .max()
            .unwrap_or(0)
            .saturating_add(10)
    });
    db::masters::insert_items(
        conn,
        scope,
        master.id,
        &[NewItem {
            code: item.code.as_str(),
            label_ja: &item.label.ja,
            label_en: &item.label.en,
            sort_order: order,
            active: item.active,
            parent_code: item.parent.as_ref().map(ItemCode::as_str),
        }],
        now.into(),
    )?;
    db::masters::touch_master(conn, scope, master.id, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "master.item_added",
        ("master", key),
        json!({"code": item.code.as_str()}),
        now.into(),
    )?;
    db::masters::find_item(conn, scope, master.id, item.code.as_str())?
        .ok_or(ServiceError::NotFound)
}

/// Edits an item. Deactivating keeps it (and every value using it) valid; only new values must
/// use active items.
#[expect(clippy::too_many_arguments, reason = "one use case, all inputs needed")]
pub fn update_item(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    code: &str,
    expected_version: Option<i64>,
    changes: ItemChanges,
    now: DateTime<Utc>,
) -> Result<ItemRow, ServiceError> {
    let master = find(conn, scope, key)?;
    let current =
        db::masters::find_item(conn, scope, master.id, code)?.ok_or(ServiceError::NotFound)?;
    check_version(expected_version, current.version)?;
    if let Some(parent) = &changes.parent_code {
        let existing = db::masters::items(conn, scope, master.id, false)?;
        check_hierarchy(existing.iter().map(|i| {
            let parent_of = if i.code == code {
                parent.as_deref()
            } else {
                i.parent_code.as_deref()
            };
            (i.code.as_str(), parent_of)
        }))
        .map_err(|e| ServiceError::validation("parent", "hierarchy", e.to_string()))?;
    }
    let item = db::masters::update_item(conn, scope, master.id, code, &changes, now.into())?;
    db::masters::touch_master(conn, scope, master.id, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "master.item_updated",
        ("master", key),
        json!({"code": code, "active": item.active}),
        now.into(),
    )?;
    Ok(item)
}

// Reads.

pub fn list_masters(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<MasterId>,
    limit: i64,
) -> Result<Vec<MasterRow>, ServiceError> {
    Ok(db::masters::list_masters(conn, scope, after, limit)?)
}

/// A master with all its items (inactive ones included).
pub fn get_with_items(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<(MasterRow, Vec<ItemRow>), ServiceError> {
    let master = find(conn, scope, key)?;
    let items = db::masters::items(conn, scope, master.id, false)?;
    Ok((master, items))
}

/// The items of a master, only the active ones when `active_only`.
pub fn list_items(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    active_only: bool,
) -> Result<Vec<ItemRow>, ServiceError> {
    let master = find(conn, scope, key)?;
    Ok(db::masters::items(conn, scope, master.id, active_only)?)
}
