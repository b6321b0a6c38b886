//! A draft's states, transitions and fields changed one at a time (for template editors).
//! Each change is applied to the draft's stored definition and saved through
//! [`templates::update_draft`], so it is version-checked, linted and audited like a whole PUT.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::error::{ConflictKind, ServiceError};
use super::templates::{self, check, find, find_version};
use crate::auth::{Principal, TenantScope};
use crate::db::DbConnection;
use crate::db::templates::VersionRow;
use crate::domain::error::FieldError;
use crate::domain::template::LintReport;
use crate::domain::template::items::{self, ItemError, ItemKind};

/// One change to a draft's items.
#[derive(Debug, Clone)]
pub enum ItemChange {
    Add(Value),
    /// A JSON merge patch for the item with this key.
    Patch(String, Value),
    Remove(String),
}

/// What a change left: the item as it now is (`None` after a removal), the saved draft and
/// its lint report.
pub struct ChangedItem {
    pub item: Option<Value>,
    pub version: VersionRow,
    pub report: LintReport,
}

/// Every item of `kind` in version `number`, and the version's ETag.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    number: i32,
    kind: ItemKind,
) -> Result<(Vec<Value>, i64), ServiceError> {
    let template = find(conn, scope, key)?;
    let version = find_version(conn, scope, &template, number)?;
    Ok((items::list(&version.definition.0, kind), version.version))
}

/// One item of version `number`, and the version's ETag.
pub fn get(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    number: i32,
    kind: ItemKind,
    item_key: &str,
) -> Result<(Value, i64), ServiceError> {
    let template = find(conn, scope, key)?;
    let version = find_version(conn, scope, &template, number)?;
    let item = items::get(&version.definition.0, kind, item_key).ok_or(ServiceError::NotFound)?;
    Ok((item, version.version))
}

/// Applies `change` to draft `number` (409 on a published version, 412 when `expected` is
/// not the draft's version). Removing a state or field that something still refers to is 409
/// `/problems/definition-item-in-use` naming each place; anything else is saved, and the lint
/// report says what the draft still lacks.
#[allow(clippy::too_many_arguments)]
pub fn change(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    number: i32,
    expected: Option<i64>,
    kind: ItemKind,
    change: ItemChange,
    now: DateTime<Utc>,
) -> Result<ChangedItem, ServiceError> {
    let template = find(conn, scope, key)?;
    let current = find_version(conn, scope, &template, number)?;
    let old = current.definition.0;
    let mut definition = old.clone();
    let item = match &change {
        ItemChange::Add(item) => Some(items::add(&mut definition, kind, item.clone())),
        ItemChange::Patch(item_key, patch) => {
            Some(items::patch(&mut definition, kind, item_key, patch))
        }
        ItemChange::Remove(item_key) => {
            items::remove(&mut definition, kind, item_key).map_err(|e| item_error(kind, e))?;
            check_unused(conn, scope, key, kind, item_key, &old, &definition)?;
            None
        }
    }
    .transpose()
    .map_err(|e| item_error(kind, e))?;
    let (version, report) = templates::update_draft(
        conn,
        principal,
        scope,
        key,
        number,
        expected,
        &definition,
        now,
    )?;
    Ok(ChangedItem {
        item,
        version,
        report,
    })
}

fn item_error(kind: ItemKind, error: ItemError) -> ServiceError {
    match error {
        ItemError::NotFound => ServiceError::NotFound,
        ItemError::Duplicate(key) => {
            ServiceError::duplicate(format!("The draft already has a {} {key}.", kind.noun()))
        }
        ItemError::Invalid {
            field,
            code,
            message,
        } => ServiceError::Validation(vec![FieldError::new(field, code, message)]),
    }
}

/// Refuses a removal that leaves references to the removed item: the dangling-reference
/// errors the linter finds after the removal that it did not find before.
fn check_unused(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    kind: ItemKind,
    item_key: &str,
    old: &Value,
    new: &Value,
) -> Result<(), ServiceError> {
    let Some(code) = kind.dangling_code() else {
        return Ok(());
    };
    let (_, before) = check(conn, scope, key, old)?;
    let (_, after) = check(conn, scope, key, new)?;
    // Pointers may shift when an item leaves an array; the code and message do not.
    let mut known: HashMap<(&str, &str), usize> = HashMap::new();
    for issue in before.errors.iter().filter(|i| i.code == code) {
        *known
            .entry((issue.code, issue.message.as_str()))
            .or_default() += 1;
    }
    let mut places = Vec::new();
    for issue in after.errors.iter().filter(|i| i.code == code) {
        match known.get_mut(&(issue.code, issue.message.as_str())) {
            Some(count) if *count > 0 => *count -= 1,
            _ => places.push(issue.pointer.clone()),
        }
    }
    if places.is_empty() {
        return Ok(());
    }
    Err(ServiceError::Conflict {
        kind: ConflictKind::DefinitionItemInUse,
        detail: format!(
            "The {} {item_key} is still used at {}; change those first.",
            kind.noun(),
            places.join(", ")
        ),
    })
}
