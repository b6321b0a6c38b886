//! Runs moving a template's tickets from one version to another (`service::tickets::migrate`).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::template_migrations;
use super::types::{Json, Timestamp};
use crate::auth::TenantScope;
use crate::domain::ids::{EntityId, MigrationId, TemplateId, TenantId, TicketId};

#[derive(Debug, Clone, Queryable, Insertable, AsChangeset)]
#[diesel(table_name = template_migrations, treat_none_as_null = true)]
pub struct MigrationRow {
    pub tenant_id: TenantId,
    pub id: MigrationId,
    pub template_id: TemplateId,
    pub from_version: i32,
    pub to_version: i32,
    pub mapping: Json,
    pub filed_by: Timestamp,
    pub status: String,
    pub after_ticket: Option<TicketId>,
    pub tickets: i64,
    pub moved: i64,
    pub blocked_count: i64,
    pub moves: Json,
    pub blocked: Json,
    pub fields_dropped: Json,
    pub actor_kind: String,
    pub actor_id: Option<EntityId>,
    pub actor_name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}

pub fn insert(conn: &mut DbConnection, row: &MigrationRow) -> QueryResult<()> {
    diesel::insert_into(template_migrations::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    id: MigrationId,
) -> QueryResult<Option<MigrationRow>> {
    template_migrations::table
        .filter(template_migrations::tenant_id.eq(scope.tenant_id()))
        .filter(template_migrations::template_id.eq(template))
        .filter(template_migrations::id.eq(id))
        .first(conn)
        .optional()
}

/// The run, locked until the transaction ends (PostgreSQL; SQLite has one writer): two
/// workers on one run (the request and the job) take turns, each from where the other left.
pub fn lock(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MigrationId,
) -> QueryResult<Option<MigrationRow>> {
    let query = template_migrations::table
        .filter(template_migrations::tenant_id.eq(scope.tenant_id()))
        .filter(template_migrations::id.eq(id));
    match conn {
        DbConnection::Postgres(pg) => query.for_update().first(pg).optional(),
        DbConnection::Sqlite(_) => query.first(conn).optional(),
    }
}

pub fn update(conn: &mut DbConnection, row: &MigrationRow) -> QueryResult<()> {
    diesel::update(
        template_migrations::table
            .filter(template_migrations::tenant_id.eq(row.tenant_id))
            .filter(template_migrations::id.eq(row.id)),
    )
    .set(row)
    .execute(conn)?;
    Ok(())
}

/// A page of a template's runs, newest first.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: TemplateId,
    before: Option<MigrationId>,
    limit: i64,
) -> QueryResult<Vec<MigrationRow>> {
    let mut query = template_migrations::table
        .filter(template_migrations::tenant_id.eq(scope.tenant_id()))
        .filter(template_migrations::template_id.eq(template))
        .order(template_migrations::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(before) = before {
        query = query.filter(template_migrations::id.lt(before));
    }
    query.load(conn)
}
