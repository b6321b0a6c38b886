//! Every row of one tenant, table by table, for the tenant export, its import into another
//! instance and the erasure of a deleted tenant (docs/operations.md, "Tenant export, import
//! and erasure"). The tables are found in the database's own catalog — every table with a
//! `tenant_id` column — so a table added by a later migration is exported, imported and erased
//! without a change here; they are ordered so that a table comes after the tables its foreign
//! keys name.
//!
//! A row travels as one JSON object keyed by column, as the backend stores it (PostgreSQL's
//! `row_to_json`; on SQLite `json_object`, with BLOB columns as hex): an export is imported
//! into an instance on the same backend.

use std::collections::{BTreeMap, BTreeSet};

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::DbConnection;
use crate::domain::ids::TenantId;

/// Tables with a `tenant_id` that are not the tenant's own data: the job queue (work in
/// flight on this instance), the platform's announcement targets and the read-your-writes
/// marks of a read replica. They are erased with the tenant but not exported.
pub const NOT_EXPORTED: &[&str] = &["jobs", "announcement_tenants", "write_marks"];

/// One tenant table: its name and columns (`true`: a binary column).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub name: String,
    pub columns: Vec<(String, bool)>,
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Column {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
}

#[derive(QueryableByName)]
struct JsonRow {
    #[diesel(sql_type = Text)]
    row: String,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// Every table with a `tenant_id` column, parents before the tables that refer to them.
pub fn tenant_tables(conn: &mut DbConnection) -> QueryResult<Vec<Table>> {
    let mut tables = BTreeMap::new();
    let mut parents: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    match conn {
        DbConnection::Sqlite(lite) => {
            let names: Vec<Name> = diesel::sql_query(
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
                 AND name <> '__diesel_schema_migrations' ORDER BY name",
            )
            .load(lite)?;
            for Name { name } in names {
                let columns: Vec<Column> = diesel::sql_query(format!(
                    "SELECT name, upper(type) AS kind FROM pragma_table_info({})",
                    literal(&name)
                ))
                .load(lite)?;
                if !columns.iter().any(|c| c.name == "tenant_id") {
                    continue;
                }
                let refs: Vec<Name> = diesel::sql_query(format!(
                    "SELECT DISTINCT \"table\" AS name FROM pragma_foreign_key_list({})",
                    literal(&name)
                ))
                .load(lite)?;
                parents.insert(name.clone(), refs.into_iter().map(|r| r.name).collect());
                let columns = columns
                    .into_iter()
                    .map(|c| {
                        let binary = c.kind.contains("BLOB") || c.kind.contains("BINARY");
                        (c.name, binary)
                    })
                    .collect();
                tables.insert(name, columns);
            }
        }
        DbConnection::Postgres(pg) => {
            let names: Vec<Name> = diesel::sql_query(
                "SELECT table_name::text AS name FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND column_name = 'tenant_id' \
                 ORDER BY table_name",
            )
            .load(pg)?;
            for Name { name } in names {
                let columns: Vec<Column> = diesel::sql_query(
                    "SELECT column_name::text AS name, data_type::text AS kind \
                     FROM information_schema.columns \
                     WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                )
                .bind::<Text, _>(&name)
                .load(pg)?;
                let refs: Vec<Name> = diesel::sql_query(
                    "SELECT DISTINCT ccu.table_name::text AS name \
                     FROM information_schema.table_constraints tc \
                     JOIN information_schema.constraint_column_usage ccu \
                       ON tc.constraint_name = ccu.constraint_name \
                      AND tc.constraint_schema = ccu.constraint_schema \
                     WHERE tc.constraint_type = 'FOREIGN KEY' \
                       AND tc.table_schema = current_schema() AND tc.table_name = $1",
                )
                .bind::<Text, _>(&name)
                .load(pg)?;
                parents.insert(name.clone(), refs.into_iter().map(|r| r.name).collect());
                let columns = columns
                    .into_iter()
                    .map(|c| (c.name, c.kind == "bytea"))
                    .collect();
                tables.insert(name, columns);
            }
        }
    }
    // Parents first (a table's own rows may refer to each other: it is its own parent, which
    // does not order it).
    let mut ordered = Vec::new();
    let mut placed = BTreeSet::new();
    while placed.len() < tables.len() {
        let ready: Vec<String> = tables
            .keys()
            .filter(|t| !placed.contains(*t))
            .filter(|t| {
                parents
                    .get(*t)
                    .into_iter()
                    .flatten()
                    .all(|p| p == *t || placed.contains(p) || !tables.contains_key(p))
            })
            .cloned()
            .collect();
        // A cycle between tables (none today) would stop here; take the rest as they are.
        let next = if ready.is_empty() {
            tables
                .keys()
                .filter(|t| !placed.contains(*t))
                .cloned()
                .collect()
        } else {
            ready
        };
        for name in next {
            placed.insert(name.clone());
            let columns = tables.get(&name).cloned().unwrap_or_default();
            ordered.push(Table { name, columns });
        }
    }
    Ok(ordered)
}

/// The tenant's rows of `table` as JSON objects, in a stable order (by their text).
pub fn dump(conn: &mut DbConnection, table: &Table, tenant: TenantId) -> QueryResult<Vec<String>> {
    // Rows in the order of their first column (an id, mostly); the event log in its feed
    // order, which an import keeps while it renumbers the positions (`settle_import`).
    let order = if table.name == "events" {
        "txid, seq"
    } else {
        "1"
    };
    let rows: Vec<JsonRow> = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(format!(
            "SELECT row_to_json(t)::text AS row FROM {} t WHERE tenant_id = $1::uuid \
             ORDER BY {order}",
            quoted(&table.name)
        ))
        .bind::<Text, _>(tenant.to_string())
        .load(pg)?,
        DbConnection::Sqlite(lite) => {
            let pairs: Vec<String> = table
                .columns
                .iter()
                .map(|(column, binary)| {
                    let value = if *binary {
                        format!("hex({})", quoted(column))
                    } else {
                        quoted(column)
                    };
                    format!("{}, {value}", literal(column))
                })
                .collect();
            diesel::sql_query(format!(
                "SELECT json_object({}) AS row FROM {} WHERE tenant_id = ? ORDER BY {order}",
                pairs.join(", "),
                quoted(&table.name)
            ))
            .bind::<Text, _>(tenant.to_string())
            .load(lite)?
        }
    };
    Ok(rows.into_iter().map(|r| r.row).collect())
}

/// Inserts one row `dump` wrote (into an instance on the same backend).
pub fn load(conn: &mut DbConnection, table: &Table, row: &str) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => {
            diesel::sql_query(format!(
                "INSERT INTO {0} OVERRIDING SYSTEM VALUE \
                 SELECT * FROM json_populate_record(NULL::{0}, $1::json)",
                quoted(&table.name)
            ))
            .bind::<Text, _>(row)
            .execute(pg)?;
        }
        DbConnection::Sqlite(lite) => {
            let names: Vec<String> = table.columns.iter().map(|(c, _)| quoted(c)).collect();
            let values: Vec<String> = table
                .columns
                .iter()
                .map(|(column, binary)| {
                    let path = literal(&format!("$.\"{}\"", column.replace('"', "\\\"")));
                    if *binary {
                        format!("unhex(json_extract(?1, {path}))")
                    } else {
                        format!("json_extract(?1, {path})")
                    }
                })
                .collect();
            diesel::sql_query(format!(
                "INSERT INTO {} ({}) SELECT {}",
                quoted(&table.name),
                names.join(", "),
                values.join(", ")
            ))
            .bind::<Text, _>(row)
            .execute(lite)?;
        }
    }
    Ok(())
}

/// After an import on PostgreSQL: the tenant's events take this transaction's id (the
/// source's transaction ids mean nothing here, and a future one would hide the events from
/// the feed), numbered 1, 2, … in their order in the source, since `seq` numbers the events
/// of one transaction. Nothing to do on SQLite (transaction id 0, numbers per tenant).
pub fn settle_import(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<()> {
    let DbConnection::Postgres(pg) = conn else {
        return Ok(());
    };
    // No row of the tenant has this transaction's id yet, so each row moves to a key no
    // other row holds, whatever order the update takes.
    diesel::sql_query(
        "UPDATE events e SET txid = pg_current_xact_id()::text::bigint, seq = r.n \
         FROM (SELECT txid, seq, row_number() OVER (ORDER BY txid, seq) AS n \
               FROM events WHERE tenant_id = $1::uuid) r \
         WHERE e.tenant_id = $1::uuid AND e.txid = r.txid AND e.seq = r.seq",
    )
    .bind::<Text, _>(tenant.to_string())
    .execute(pg)?;
    Ok(())
}

/// Deletes the tenant's rows of every table (children first); returns how many.
pub fn erase(conn: &mut DbConnection, tables: &[Table], tenant: TenantId) -> QueryResult<usize> {
    let mut erased = 0;
    for table in tables.iter().rev() {
        let sql = format!("DELETE FROM {} WHERE tenant_id = ", quoted(&table.name));
        erased += match conn {
            DbConnection::Postgres(pg) => diesel::sql_query(format!("{sql}$1::uuid"))
                .bind::<Text, _>(tenant.to_string())
                .execute(pg)?,
            DbConnection::Sqlite(lite) => diesel::sql_query(format!("{sql}?"))
                .bind::<Text, _>(tenant.to_string())
                .execute(lite)?,
        };
    }
    Ok(erased)
}

/// The tenant's rows in `table`.
pub fn count(conn: &mut DbConnection, table: &Table, tenant: TenantId) -> QueryResult<i64> {
    let sql = format!(
        "SELECT count(*) AS n FROM {} WHERE tenant_id = ",
        quoted(&table.name)
    );
    let found: Count = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(format!("{sql}$1::uuid"))
            .bind::<Text, _>(tenant.to_string())
            .get_result(pg)?,
        DbConnection::Sqlite(lite) => diesel::sql_query(format!("{sql}?"))
            .bind::<Text, _>(tenant.to_string())
            .get_result(lite)?,
    };
    Ok(found.n)
}

/// The platform rows a tenant hangs from — itself, its account, the account's plan — as
/// JSON objects, for the export (`None` when the tenant does not exist).
pub fn platform_rows(
    conn: &mut DbConnection,
    tenant: TenantId,
) -> QueryResult<Option<[(String, String); 3]>> {
    let tenant_row = one_row(conn, "tenants", "id", &tenant.to_string())?;
    let Some(tenant_row) = tenant_row else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_str(&tenant_row).unwrap_or_default();
    let account = value["account_id"].as_str().unwrap_or_default().to_owned();
    let account_row = one_row(conn, "accounts", "id", &account)?.unwrap_or_default();
    let account_value: serde_json::Value = serde_json::from_str(&account_row).unwrap_or_default();
    let plan = account_value["plan_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let plan_row = one_row(conn, "plans", "id", &plan)?.unwrap_or_default();
    Ok(Some([
        ("plans".to_owned(), plan_row),
        ("accounts".to_owned(), account_row),
        ("tenants".to_owned(), tenant_row),
    ]))
}

fn one_row(
    conn: &mut DbConnection,
    table: &str,
    key: &str,
    value: &str,
) -> QueryResult<Option<String>> {
    let rows: Vec<JsonRow> = match conn {
        DbConnection::Postgres(pg) => diesel::sql_query(format!(
            "SELECT row_to_json(t)::text AS row FROM {} t WHERE {}::text = $1",
            quoted(table),
            quoted(key)
        ))
        .bind::<Text, _>(value)
        .load(pg)?,
        DbConnection::Sqlite(lite) => {
            let columns: Vec<Column> = diesel::sql_query(format!(
                "SELECT name, upper(type) AS kind FROM pragma_table_info({})",
                literal(table)
            ))
            .load(lite)?;
            let pairs: Vec<String> = columns
                .iter()
                .map(|c| format!("{}, {}", literal(&c.name), quoted(&c.name)))
                .collect();
            diesel::sql_query(format!(
                "SELECT json_object({}) AS row FROM {} WHERE {} = ?",
                pairs.join(", "),
                quoted(table),
                quoted(key)
            ))
            .bind::<Text, _>(value)
            .load(lite)?
        }
    };
    Ok(rows.into_iter().next().map(|r| r.row))
}

/// Inserts a platform row unless one with its id exists; whether it was inserted.
pub fn load_platform_row(conn: &mut DbConnection, table: &str, row: &str) -> QueryResult<bool> {
    let value: serde_json::Value = serde_json::from_str(row).unwrap_or_default();
    let id = value["id"].as_str().unwrap_or_default().to_owned();
    if one_row(conn, table, "id", &id)?.is_some() {
        return Ok(false);
    }
    let columns: Vec<(String, bool)> = match conn {
        DbConnection::Sqlite(lite) => {
            let columns: Vec<Column> = diesel::sql_query(format!(
                "SELECT name, upper(type) AS kind FROM pragma_table_info({})",
                literal(table)
            ))
            .load(lite)?;
            columns.into_iter().map(|c| (c.name, false)).collect()
        }
        DbConnection::Postgres(_) => Vec::new(),
    };
    load(
        conn,
        &Table {
            name: table.to_owned(),
            columns,
        },
        row,
    )?;
    Ok(true)
}

/// Deletes the tenant's own row (after [`erase`]).
pub fn erase_tenant_row(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<usize> {
    match conn {
        DbConnection::Postgres(pg) => diesel::sql_query("DELETE FROM tenants WHERE id = $1::uuid")
            .bind::<Text, _>(tenant.to_string())
            .execute(pg),
        DbConnection::Sqlite(lite) => diesel::sql_query("DELETE FROM tenants WHERE id = ?")
            .bind::<Text, _>(tenant.to_string())
            .execute(lite),
    }
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = diesel::sql_types::Nullable<Text>)]
    v: Option<String>,
}

/// The newest migration applied.
pub fn schema_version(conn: &mut DbConnection) -> QueryResult<String> {
    let version: Version =
        diesel::sql_query("SELECT max(version) AS v FROM __diesel_schema_migrations")
            .get_result(conn)?;
    Ok(version.v.unwrap_or_default())
}

/// The attachment content (SHA-256 hex) the tenant's attachments reference.
pub fn attachment_contents(conn: &mut DbConnection, tenant: TenantId) -> QueryResult<Vec<String>> {
    use super::schema::ticket_attachments;
    ticket_attachments::table
        .filter(ticket_attachments::tenant_id.eq(tenant))
        .select(ticket_attachments::sha256)
        .distinct()
        .load(conn)
}

/// Which of `hashes` any attachment (of any tenant) still references.
pub fn referenced_contents(
    conn: &mut DbConnection,
    hashes: &[String],
) -> QueryResult<std::collections::HashSet<String>> {
    super::ticket_parts::referenced_contents(conn, hashes)
}
