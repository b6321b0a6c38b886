//! The two migration sets describe one schema, and every tenant-owned table is keyed by tenant.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use diesel::sql_types::{Bool, Integer, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl, SqliteConnection};
use stageflow::db::{Database, DatabaseUrl, migrations};

use crate::helpers::{TestDb, postgres_admin_url};

/// Tables owned by the platform rather than by a tenant: the only ones without `tenant_id`.
pub(crate) const PLATFORM_TABLES: &[&str] = &[
    "accounts",
    "announcements",
    "backup_runs",
    "jobs",
    "operators",
    "plans",
    "platform_settings",
    "signing_keys",
    "tenant_exports",
    "tenants",
];

#[derive(Debug, Default, PartialEq, Eq)]
struct Table {
    /// column → NOT NULL
    columns: BTreeMap<String, bool>,
    primary_key: Vec<String>,
    /// (unique, columns, name of an explicitly created index)
    indexes: BTreeSet<(bool, Vec<String>, Option<String>)>,
}

type Schema = BTreeMap<String, Table>;

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    notnull: i32,
    #[diesel(sql_type = Integer)]
    pk: i32,
}

#[derive(QueryableByName)]
struct SqliteIndex {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Integer)]
    unique: i32,
    #[diesel(sql_type = Text)]
    origin: String,
}

fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let tables: Vec<Name> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name <> '__diesel_schema_migrations' ORDER BY name",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::new();
    for Name { name: table } in tables {
        let mut t = Table::default();
        let mut columns: Vec<SqliteColumn> =
            diesel::sql_query("SELECT name, \"notnull\", pk FROM pragma_table_info(?)")
                .bind::<Text, _>(&table)
                .load(conn)
                .unwrap();
        columns.sort_by_key(|c| c.pk);
        for c in &columns {
            t.columns.insert(c.name.clone(), c.notnull == 1);
            if c.pk > 0 {
                t.primary_key.push(c.name.clone());
            }
        }
        let indexes: Vec<SqliteIndex> =
            diesel::sql_query("SELECT name, \"unique\", origin FROM pragma_index_list(?)")
                .bind::<Text, _>(&table)
                .load(conn)
                .unwrap();
        for index in indexes {
            let cols: Vec<Name> =
                diesel::sql_query("SELECT name FROM pragma_index_info(?) ORDER BY seqno")
                    .bind::<Text, _>(&index.name)
                    .load(conn)
                    .unwrap();
            let explicit = (index.origin == "c").then(|| index.name.clone());
            t.indexes.insert((
                index.unique == 1,
                cols.into_iter().map(|c| c.name).collect(),
                explicit,
            ));
        }
        schema.insert(table, t);
    }
    schema
}

#[derive(QueryableByName)]
struct PgColumn {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Bool)]
    not_null: bool,
}

#[derive(QueryableByName)]
struct PgIndex {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Bool)]
    is_unique: bool,
    #[diesel(sql_type = Bool)]
    is_primary: bool,
    #[diesel(sql_type = Bool)]
    is_constraint: bool,
    #[diesel(sql_type = Text)]
    columns: String,
}

fn pg_schema(conn: &mut PgConnection) -> Schema {
    let columns: Vec<PgColumn> = diesel::sql_query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name, \
                (c.is_nullable = 'NO') AS not_null \
         FROM information_schema.columns c \
         JOIN information_schema.tables t \
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
         WHERE c.table_schema = 'public' AND t.table_type = 'BASE TABLE' \
           AND c.table_name <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    let mut schema = Schema::new();
    for c in columns {
        schema
            .entry(c.table_name)
            .or_default()
            .columns
            .insert(c.column_name, c.not_null);
    }
    let indexes: Vec<PgIndex> = diesel::sql_query(
        "SELECT t.relname::text AS table_name, i.relname::text AS index_name, \
                ix.indisunique AS is_unique, ix.indisprimary AS is_primary, \
                EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = ix.indexrelid) \
                    AS is_constraint, \
                (SELECT string_agg(a.attname, ',' ORDER BY k.ord) \
                   FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                   JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum) AS columns \
         FROM pg_index ix \
         JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = 'public' AND t.relname <> '__diesel_schema_migrations'",
    )
    .load(conn)
    .unwrap();
    for index in indexes {
        let table = schema.entry(index.table_name).or_default();
        let cols: Vec<String> = index.columns.split(',').map(str::to_owned).collect();
        if index.is_primary {
            table.primary_key = cols.clone();
        }
        let explicit = (!index.is_constraint).then_some(index.index_name);
        table.indexes.insert((index.is_unique, cols, explicit));
    }
    schema
}

/// Applies the real migrations through the server's own code, then reads the schema back.
fn migrated_schema(db: &TestDb) -> Schema {
    let database = Database::open(&db.url(), 1, std::time::Duration::from_secs(10)).unwrap();
    migrations::run_pending(&mut database.get().unwrap()).unwrap();
    match db.url() {
        DatabaseUrl::Postgres(url) => pg_schema(&mut PgConnection::establish(&url).unwrap()),
        DatabaseUrl::Sqlite(path) => {
            sqlite_schema(&mut SqliteConnection::establish(&path.to_string_lossy()).unwrap())
        }
    }
}

#[test]
fn both_migration_sets_give_the_same_schema() {
    let Some(admin_url) = postgres_admin_url() else {
        let _ = writeln!(
            std::io::stderr(),
            "note: schema parity needs PostgreSQL; skipped (set {})",
            crate::helpers::POSTGRES_ENV
        );
        return;
    };
    let sqlite = migrated_schema(&TestDb::create_sqlite());
    let postgres = migrated_schema(&TestDb::create_postgres(&admin_url));
    assert!(!sqlite.is_empty());
    let tables = |s: &Schema| s.keys().cloned().collect::<Vec<_>>();
    assert_eq!(
        tables(&sqlite),
        tables(&postgres),
        "the backends have different tables"
    );
    for (name, table) in &sqlite {
        assert_eq!(
            Some(table),
            postgres.get(name),
            "table {name} differs (left: SQLite)"
        );
    }
}

#[test]
fn every_tenant_owned_table_has_tenant_id_in_its_primary_key() {
    let schema = migrated_schema(&TestDb::create());
    for platform_table in PLATFORM_TABLES {
        assert!(
            schema.contains_key(*platform_table),
            "{platform_table} is gone; update the list"
        );
    }
    for (name, table) in &schema {
        if PLATFORM_TABLES.contains(&name.as_str()) {
            continue;
        }
        assert!(
            table.columns.get("tenant_id") == Some(&true),
            "tenant-owned table {name} lacks a NOT NULL tenant_id column"
        );
        assert!(
            table.primary_key.iter().any(|c| c == "tenant_id"),
            "tenant-owned table {name} does not have tenant_id in its primary key"
        );
    }
}
