//! Templates and their versions.

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{template_versions, templates, tenants};
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{AccountId, EntityId, TemplateId, TenantId};

pub const DRAFT: &str = "draft";
pub const PUBLISHED: &str = "published";

#[derive(Debug, Clone, Queryable)]
pub struct TemplateRow {
    pub tenant_id: TenantId,
    pub id: TemplateId,
    pub key: String,
    pub name_ja: String,
    pub name_en: String,
    pub latest_version: i32,
    pub published_version: Option<i32>,
    pub archived: bool,
    pub catalog_key: Option<String>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The number of the last ticket created from the template.
    pub ticket_seq: i64,
}

#[derive(Debug, Clone, Queryable)]
pub struct VersionRow {
    pub tenant_id: TenantId,
    pub template_id: TemplateId,
    pub number: i32,
    pub status: String,
    pub definition: Json,
    pub created_by: EntityId,
    pub published_by: Option<EntityId>,
    pub published_at: Option<Timestamp>,
    pub version: i64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

pub struct NewTemplate<'a> {
    pub id: TemplateId,
    pub key: &'a str,
    pub name_ja: &'a str,
    pub name_en: &'a str,
    pub catalog_key: Option<&'a str>,
    pub now: Timestamp,
}

pub fn insert_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewTemplate<'_>,
) -> QueryResult<TemplateRow> {
    diesel::insert_into(templates::table)
        .values((
            templates::tenant_id.eq(scope.tenant_id()),
            templates::id.eq(new.id),
            templates::key.eq(new.key),
            templates::name_ja.eq(new.name_ja),
            templates::name_en.eq(new.name_en),
            templates::latest_version.eq(1),
            templates::catalog_key.eq(new.catalog_key),
            templates::created_at.eq(new.now),
            templates::updated_at.eq(new.now),
        ))
        .get_result(conn)
}

pub fn insert_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    number: i32,
    definition: &serde_json::Value,
    created_by: EntityId,
    now: Timestamp,
) -> QueryResult<VersionRow> {
    diesel::insert_into(template_versions::table)
        .values((
            template_versions::tenant_id.eq(scope.tenant_id()),
            template_versions::template_id.eq(template),
            template_versions::number.eq(number),
            template_versions::status.eq(DRAFT),
            template_versions::definition.eq(Json(definition.clone())),
            template_versions::created_by.eq(created_by),
            template_versions::created_at.eq(now),
            template_versions::updated_at.eq(now),
        ))
        .get_result(conn)
}

pub fn find_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> QueryResult<Option<TemplateRow>> {
    templates::table
        .filter(templates::tenant_id.eq(scope.tenant_id()))
        .filter(templates::key.eq(key))
        .first(conn)
        .optional()
}

pub fn list_templates(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<TemplateId>,
    limit: i64,
) -> QueryResult<Vec<TemplateRow>> {
    let mut query = templates::table
        .filter(templates::tenant_id.eq(scope.tenant_id()))
        .order(templates::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(after) = after {
        query = query.filter(templates::id.gt(after));
    }
    query.load(conn)
}

pub fn find_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    number: i32,
) -> QueryResult<Option<VersionRow>> {
    template_versions::table
        .find((scope.tenant_id(), template, number))
        .first(conn)
        .optional()
}

/// The numbers of a template's published versions (the ones tickets can be on).
pub fn published_numbers(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
) -> QueryResult<Vec<i32>> {
    template_versions::table
        .filter(template_versions::tenant_id.eq(scope.tenant_id()))
        .filter(template_versions::template_id.eq(template))
        .filter(template_versions::published_at.is_not_null())
        .order(template_versions::number.asc())
        .select(template_versions::number)
        .load(conn)
}

pub fn list_versions(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
) -> QueryResult<Vec<VersionRow>> {
    template_versions::table
        .filter(template_versions::tenant_id.eq(scope.tenant_id()))
        .filter(template_versions::template_id.eq(template))
        .order(template_versions::number.asc())
        .load(conn)
}

/// Replaces a draft's definition; `None` when the version is not (or no longer) a draft.
pub fn update_draft(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    number: i32,
    definition: &serde_json::Value,
    now: Timestamp,
) -> QueryResult<Option<VersionRow>> {
    diesel::update(
        template_versions::table
            .find((scope.tenant_id(), template, number))
            .filter(template_versions::status.eq(DRAFT)),
    )
    .set((
        template_versions::definition.eq(Json(definition.clone())),
        template_versions::version.eq(template_versions::version + 1),
        template_versions::updated_at.eq(now),
    ))
    .get_result(conn)
    .optional()
}

pub fn publish_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    number: i32,
    by: EntityId,
    now: Timestamp,
) -> QueryResult<VersionRow> {
    diesel::update(template_versions::table.find((scope.tenant_id(), template, number)))
        .set((
            template_versions::status.eq(PUBLISHED),
            template_versions::published_by.eq(Some(by)),
            template_versions::published_at.eq(Some(now)),
            template_versions::version.eq(template_versions::version + 1),
            template_versions::updated_at.eq(now),
        ))
        .get_result(conn)
}

#[derive(Debug, Default, AsChangeset)]
#[diesel(table_name = templates)]
pub struct TemplateChanges {
    pub name_ja: Option<String>,
    pub name_en: Option<String>,
    pub latest_version: Option<i32>,
    pub published_version: Option<Option<i32>>,
    pub archived: Option<bool>,
}

pub fn update_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: TemplateId,
    changes: &TemplateChanges,
    now: Timestamp,
) -> QueryResult<TemplateRow> {
    diesel::update(templates::table.find((scope.tenant_id(), id)))
        .set((
            changes,
            templates::version.eq(templates::version + 1),
            templates::updated_at.eq(now),
        ))
        .get_result(conn)
}

pub fn delete_template(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: TemplateId,
) -> QueryResult<()> {
    diesel::delete(
        template_versions::table
            .filter(template_versions::tenant_id.eq(scope.tenant_id()))
            .filter(template_versions::template_id.eq(id)),
    )
    .execute(conn)?;
    diesel::delete(templates::table.find((scope.tenant_id(), id))).execute(conn)?;
    Ok(())
}

/// Processes of an account: templates with at least one published version, in live tenants.
pub fn count_processes(conn: &mut DbConnection, account: AccountId) -> QueryResult<i64> {
    templates::table
        .inner_join(tenants::table.on(tenants::id.eq(templates::tenant_id)))
        .filter(tenants::account_id.eq(account))
        .filter(tenants::active.eq(true))
        .filter(templates::published_version.is_not_null())
        .count()
        .get_result(conn)
}

/// Keys of the tenant's templates (for the linter's reference checks).
pub fn keys(conn: &mut DbConnection, scope: &TenantScope) -> QueryResult<Vec<String>> {
    templates::table
        .filter(templates::tenant_id.eq(scope.tenant_id()))
        .select(templates::key)
        .load(conn)
}

/// Processes of one tenant: its templates with a published version.
pub fn count_processes_of_tenant(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<i64> {
    templates::table
        .filter(templates::tenant_id.eq(tenant))
        .filter(templates::published_version.is_not_null())
        .count()
        .get_result(conn)
}

/// Every template's key by id (the tenant's).
pub fn keys_by_id(
    conn: &mut DbConnection,
    scope: &TenantScope,
) -> QueryResult<Vec<(TemplateId, String)>> {
    templates::table
        .filter(templates::tenant_id.eq(scope.tenant_id()))
        .select((templates::id, templates::key))
        .load(conn)
}
