//! Citus readiness (issue #20 point 3): the PostgreSQL schema, freshly migrated, can be
//! distributed by tenant with Citus — every tenant-owned table hash-distributed by `tenant_id`
//! in one co-location group, the platform's tables as reference tables — and the DDL that does
//! it is committed as `docs/citus.sql`.
//!
//! Citus is not installed here, so readiness is a check of the catalog against the rules Citus
//! enforces when a table is distributed (docs.citusdata.com, "Creating and Modifying
//! Distributed Objects (DDL)" and "Common Error Messages"). Regenerate the DDL with
//! `STAGEFLOW_UPDATE_CITUS=1 cargo test --test api citus`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use diesel::connection::SimpleConnection;
use diesel::sql_types::{Bool, Nullable, Text};
use diesel::{Connection, PgConnection, QueryableByName, RunQueryDsl};
use stageflow::db::{Database, DatabaseUrl, migrations};

use crate::helpers::{TestDb, postgres_admin_url};
use crate::schema::PLATFORM_TABLES;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/citus.sql");

/// Platform tables kept on the coordinator as Citus local tables instead of reference tables,
/// with the reason (a line of SQL comment in the DDL). A reference table is replicated to every
/// node and Citus writes it with a two-phase commit on all of them (Citus docs, "Table Types:
/// Reference Tables"); these are queues and logs written all day across tenants and joined with
/// no tenant's table, so they stay where the writes are (Citus docs,
/// "citus_add_local_table_to_metadata": the data stays on the coordinator, the metadata makes
/// it readable from any node and lets it keep its foreign keys to reference tables).
const COORDINATOR_LOCAL_TABLES: &[(&str, &str)] = &[
    (
        "backup_runs",
        "a row per backup run and per check, written by the node that ran it; read by the operator API and /metrics only",
    ),
    (
        "jobs",
        "the job queue: every node claims, leases and finishes rows (FOR NO KEY UPDATE SKIP LOCKED) all day",
    ),
    (
        "tenant_exports",
        "export requests and their progress, written by the export job; outlives its tenant, joined with no tenant table",
    ),
];

fn is_platform(table: &str) -> bool {
    PLATFORM_TABLES.contains(&table)
}

// ---------------------------------------------------------------------------------------------
// The catalog, as the rules need it (schema `public`, without diesel's migration table).

#[derive(QueryableByName)]
struct TableRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    /// `None`: no `tenant_id` column; otherwise whether it is NOT NULL.
    #[diesel(sql_type = Nullable<Bool>)]
    tenant_id_not_null: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    primary_key: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    primary_key_columns: Option<String>,
    #[diesel(sql_type = Bool)]
    tenant_id_in_primary_key: bool,
}

#[derive(QueryableByName)]
struct UniqueRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    index_name: String,
    #[diesel(sql_type = Bool)]
    is_constraint: bool,
    /// The key columns, an expression where the index has one.
    #[diesel(sql_type = Text)]
    key_columns: String,
    #[diesel(sql_type = Nullable<Text>)]
    predicate: Option<String>,
    /// `tenant_id` is one of the key columns (an INCLUDE column or an expression does not
    /// count: Citus needs the plain distribution column in the key).
    #[diesel(sql_type = Bool)]
    has_tenant_id: bool,
}

#[derive(QueryableByName)]
struct ForeignKeyRow {
    #[diesel(sql_type = Text)]
    constraint_name: String,
    #[diesel(sql_type = Text)]
    from_table: String,
    #[diesel(sql_type = Text)]
    from_columns: String,
    #[diesel(sql_type = Text)]
    to_table: String,
    #[diesel(sql_type = Text)]
    to_columns: String,
    /// Some referencing `tenant_id` maps to the referenced `tenant_id`.
    #[diesel(sql_type = Bool)]
    tenant_id_matched: bool,
}

#[derive(QueryableByName)]
struct IdentityRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    generated: String,
    #[diesel(sql_type = Text)]
    sequence_name: String,
}

#[derive(QueryableByName)]
struct DefaultRow {
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
    #[diesel(sql_type = Text)]
    expression: String,
}

#[derive(QueryableByName)]
struct OwnedSequenceRow {
    #[diesel(sql_type = Text)]
    sequence_name: String,
    #[diesel(sql_type = Text)]
    table_name: String,
    #[diesel(sql_type = Text)]
    column_name: String,
}

/// The tables of `public` (ordinary and partitioned; not partitions, which follow their
/// parent), and the relation filter every other query uses.
const TABLES: &str = "\
    SELECT c.relname::text AS table_name, \
           a.attnotnull AS tenant_id_not_null, \
           pk.conname::text AS primary_key, \
           (SELECT string_agg(pa.attname, ', ' ORDER BY k.ord) \
              FROM unnest(pk.conkey) WITH ORDINALITY AS k(attnum, ord) \
              JOIN pg_attribute pa ON pa.attrelid = c.oid AND pa.attnum = k.attnum) \
               AS primary_key_columns, \
           coalesce(a.attnum = ANY (pk.conkey), false) AS tenant_id_in_primary_key \
      FROM pg_class c \
      JOIN pg_namespace n ON n.oid = c.relnamespace \
      LEFT JOIN pg_attribute a \
        ON a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped \
      LEFT JOIN pg_constraint pk ON pk.conrelid = c.oid AND pk.contype = 'p' \
     WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition \
       AND c.relname <> '__diesel_schema_migrations' \
     ORDER BY 1";

/// Unique indexes other than primary keys (those are the first rule's), with the constraint
/// that owns one (UNIQUE, EXCLUDE) if any; partial and expression indexes included.
const UNIQUE_INDEXES: &str = "\
    SELECT t.relname::text AS table_name, i.relname::text AS index_name, \
           EXISTS (SELECT 1 FROM pg_constraint k \
                    WHERE k.conindid = ix.indexrelid AND k.conrelid = ix.indrelid \
                      AND k.contype IN ('u', 'x')) AS is_constraint, \
           (SELECT string_agg(pg_get_indexdef(ix.indexrelid, k.n, true), ', ' ORDER BY k.n) \
              FROM generate_series(1, ix.indnkeyatts::int) AS k(n)) AS key_columns, \
           pg_get_expr(ix.indpred, ix.indrelid, true) AS predicate, \
           EXISTS (SELECT 1 \
                     FROM unnest(ix.indkey) WITH ORDINALITY AS k(attnum, ord) \
                     JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum \
                    WHERE k.ord <= ix.indnkeyatts AND a.attname = 'tenant_id') AS has_tenant_id \
      FROM pg_index ix \
      JOIN pg_class i ON i.oid = ix.indexrelid \
      JOIN pg_class t ON t.oid = ix.indrelid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
     WHERE n.nspname = 'public' AND t.relkind IN ('r', 'p') \
       AND t.relname <> '__diesel_schema_migrations' \
       AND ix.indisunique AND NOT ix.indisprimary \
     ORDER BY 1, 2";

/// Foreign keys between tables of `public`, with their column lists in key order.
const FOREIGN_KEYS: &str = "\
    SELECT k.conname::text AS constraint_name, \
           f.relname::text AS from_table, \
           (SELECT string_agg(a.attname, ', ' ORDER BY c.ord) \
              FROM unnest(k.conkey) WITH ORDINALITY AS c(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = c.attnum) \
               AS from_columns, \
           r.relname::text AS to_table, \
           (SELECT string_agg(a.attname, ', ' ORDER BY c.ord) \
              FROM unnest(k.confkey) WITH ORDINALITY AS c(attnum, ord) \
              JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = c.attnum) \
               AS to_columns, \
           EXISTS (SELECT 1 \
                     FROM unnest(k.conkey, k.confkey) AS p(from_attnum, to_attnum) \
                     JOIN pg_attribute fa \
                       ON fa.attrelid = k.conrelid AND fa.attnum = p.from_attnum \
                     JOIN pg_attribute ta \
                       ON ta.attrelid = k.confrelid AND ta.attnum = p.to_attnum \
                    WHERE fa.attname = 'tenant_id' AND ta.attname = 'tenant_id') \
               AS tenant_id_matched \
      FROM pg_constraint k \
      JOIN pg_class f ON f.oid = k.conrelid \
      JOIN pg_class r ON r.oid = k.confrelid \
      JOIN pg_namespace fn ON fn.oid = f.relnamespace \
      JOIN pg_namespace rn ON rn.oid = r.relnamespace \
     WHERE k.contype = 'f' AND fn.nspname = 'public' AND rn.nspname = 'public' \
       AND k.conparentid = 0 \
     ORDER BY 2, 1";

const IDENTITY_COLUMNS: &str = "\
    SELECT t.relname::text AS table_name, a.attname::text AS column_name, \
           CASE a.attidentity WHEN 'a' THEN 'GENERATED ALWAYS' ELSE 'GENERATED BY DEFAULT' END \
               AS generated, \
           coalesce(pg_get_serial_sequence(format('%I.%I', n.nspname, t.relname), a.attname), \
                    '?') AS sequence_name \
      FROM pg_attribute a \
      JOIN pg_class t ON t.oid = a.attrelid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
     WHERE n.nspname = 'public' AND t.relkind IN ('r', 'p') AND NOT t.relispartition \
       AND a.attidentity <> '' AND NOT a.attisdropped \
     ORDER BY 1, 2";

const NEXTVAL_DEFAULTS: &str = "\
    SELECT t.relname::text AS table_name, a.attname::text AS column_name, \
           pg_get_expr(d.adbin, d.adrelid) AS expression \
      FROM pg_attrdef d \
      JOIN pg_class t ON t.oid = d.adrelid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
      JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum \
     WHERE n.nspname = 'public' AND t.relkind IN ('r', 'p') AND NOT t.relispartition \
       AND NOT a.attisdropped AND pg_get_expr(d.adbin, d.adrelid) ~* 'nextval\\s*\\(' \
     ORDER BY 1, 2";

/// Sequences owned by a column (OWNED BY, serial, identity) that the two queries above do not
/// already name: not an identity column, no `nextval` default.
const OWNED_SEQUENCES: &str = "\
    SELECT s.relname::text AS sequence_name, t.relname::text AS table_name, \
           a.attname::text AS column_name \
      FROM pg_depend d \
      JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S' \
      JOIN pg_class t ON t.oid = d.refobjid \
      JOIN pg_namespace n ON n.oid = t.relnamespace \
      JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid \
     WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass \
       AND d.deptype IN ('a', 'i') AND n.nspname = 'public' AND a.attidentity = '' \
       AND NOT EXISTS (SELECT 1 FROM pg_attrdef ad \
                        WHERE ad.adrelid = t.oid AND ad.adnum = a.attnum \
                          AND pg_get_expr(ad.adbin, ad.adrelid) ~* 'nextval\\s*\\(') \
     ORDER BY 2, 3, 1";

struct Catalog {
    tables: Vec<TableRow>,
    unique_indexes: Vec<UniqueRow>,
    foreign_keys: Vec<ForeignKeyRow>,
    identity_columns: Vec<IdentityRow>,
    nextval_defaults: Vec<DefaultRow>,
    owned_sequences: Vec<OwnedSequenceRow>,
}

impl Catalog {
    fn read(conn: &mut PgConnection) -> Self {
        Self {
            tables: diesel::sql_query(TABLES).load(conn).unwrap(),
            unique_indexes: diesel::sql_query(UNIQUE_INDEXES).load(conn).unwrap(),
            foreign_keys: diesel::sql_query(FOREIGN_KEYS).load(conn).unwrap(),
            identity_columns: diesel::sql_query(IDENTITY_COLUMNS).load(conn).unwrap(),
            nextval_defaults: diesel::sql_query(NEXTVAL_DEFAULTS).load(conn).unwrap(),
            owned_sequences: diesel::sql_query(OWNED_SEQUENCES).load(conn).unwrap(),
        }
    }

    fn table_names(&self) -> BTreeSet<String> {
        self.tables.iter().map(|t| t.table_name.clone()).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// The rules, one function each.

/// Rule 1. A tenant-owned table (any table not in `PLATFORM_TABLES`) has a NOT NULL `tenant_id`
/// and `tenant_id` in its primary key. It is hash-distributed by `tenant_id`: Citus routes each
/// row by that column and refuses a row without it ("cannot perform an INSERT with NULL in the
/// partition column"), and a primary key is a uniqueness constraint, which Citus can enforce
/// only when it includes the distribution column (each shard checks its own rows).
fn tenant_key_violations(catalog: &Catalog, out: &mut Vec<String>) {
    for t in catalog
        .tables
        .iter()
        .filter(|t| !is_platform(&t.table_name))
    {
        let name = &t.table_name;
        match t.tenant_id_not_null {
            None => out.push(format!(
                "table {name}: tenant-owned but has no tenant_id column"
            )),
            Some(false) => out.push(format!(
                "table {name}: tenant_id is nullable (Citus rejects NULL in the distribution column)"
            )),
            Some(true) => {}
        }
        match (&t.primary_key, &t.primary_key_columns) {
            (Some(pk), columns) if !t.tenant_id_in_primary_key => out.push(format!(
                "table {name}: primary key {pk} ({}) does not include tenant_id",
                columns.as_deref().unwrap_or_default()
            )),
            (None, _) => out.push(format!("table {name}: tenant-owned but has no primary key")),
            _ => {}
        }
    }
}

/// Rule 2. Every UNIQUE constraint and unique index of a tenant-owned table — partial and
/// expression indexes too — has `tenant_id` among its key columns. Citus enforces uniqueness
/// only within a shard, so it refuses a unique index whose key lacks the distribution column
/// ("creating unique indexes on non-partition columns is currently unsupported").
fn unique_violations(catalog: &Catalog, out: &mut Vec<String>) {
    for u in &catalog.unique_indexes {
        if is_platform(&u.table_name) || u.has_tenant_id {
            continue;
        }
        let kind = if u.is_constraint {
            "unique constraint"
        } else {
            "unique index"
        };
        let partial = u
            .predicate
            .as_ref()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        out.push(format!(
            "{kind} {} on {} ({}){partial} does not include tenant_id",
            u.index_name, u.table_name, u.key_columns
        ));
    }
}

/// Rule 3. A foreign key between two tenant-owned tables maps the referencing `tenant_id` to
/// the referenced `tenant_id`. Citus checks a foreign key inside a shard: it supports one between
/// co-located distributed tables only when the key includes the distribution column on both
/// sides, so that both rows are in the same shard group.
fn tenant_foreign_key_violations(catalog: &Catalog, out: &mut Vec<String>) {
    for k in &catalog.foreign_keys {
        if is_platform(&k.from_table) || is_platform(&k.to_table) || k.tenant_id_matched {
            continue;
        }
        out.push(format!(
            "foreign key {} on {} ({}) -> {} ({}) does not map tenant_id to tenant_id",
            k.constraint_name, k.from_table, k.from_columns, k.to_table, k.to_columns
        ));
    }
}

/// Rule 4. No foreign key goes from a platform table to a tenant-owned table. Platform tables
/// become reference (or coordinator-local) tables, and Citus does not support a foreign key from
/// a reference table to a distributed table: the referenced row may be on any node.
fn platform_foreign_key_violations(catalog: &Catalog, out: &mut Vec<String>) {
    for k in &catalog.foreign_keys {
        if is_platform(&k.from_table) && !is_platform(&k.to_table) {
            out.push(format!(
                "foreign key {} on platform table {} ({}) -> tenant-owned table {} ({}): \
                 a reference table cannot reference a distributed table",
                k.constraint_name, k.from_table, k.from_columns, k.to_table, k.to_columns
            ));
        }
    }
}

/// Rule 5. No tenant-owned table takes values from a sequence: no identity column, no
/// `nextval(...)` default (serial), no sequence owned by one of its columns. A sequence is one
/// counter for every tenant: under Citus each node hands out its own range (values unique but
/// not ordered across nodes, and failing on worker inserts below BIGINT — Citus docs, "SQL
/// Support and Workarounds"), so an order or a density read from it breaks once tenants live
/// on different nodes or a shard moves, and it cannot travel with a tenant.
fn sequence_violations(catalog: &Catalog, out: &mut Vec<String>) {
    const SHARED: &str = "one sequence numbers every tenant's rows";
    for c in &catalog.identity_columns {
        if !is_platform(&c.table_name) {
            out.push(format!(
                "column {}.{} is an identity column ({}, sequence {}): {SHARED}",
                c.table_name, c.column_name, c.generated, c.sequence_name
            ));
        }
    }
    for c in &catalog.nextval_defaults {
        if !is_platform(&c.table_name) {
            out.push(format!(
                "column {}.{} defaults to {}: {SHARED}",
                c.table_name, c.column_name, c.expression
            ));
        }
    }
    for s in &catalog.owned_sequences {
        if !is_platform(&s.table_name) {
            out.push(format!(
                "sequence {} is owned by {}.{}: {SHARED}",
                s.sequence_name, s.table_name, s.column_name
            ));
        }
    }
}

/// What keeps the schema of `conn` (schema `public`) from being distributed by tenant with
/// Citus, one line per violation, naming the table, constraint, index or column; empty when it
/// is ready. The rules are the functions above, in this order.
pub(crate) fn citus_violations(conn: &mut PgConnection) -> Vec<String> {
    let catalog = Catalog::read(conn);
    let mut out = Vec::new();
    tenant_key_violations(&catalog, &mut out);
    unique_violations(&catalog, &mut out);
    tenant_foreign_key_violations(&catalog, &mut out);
    platform_foreign_key_violations(&catalog, &mut out);
    sequence_violations(&catalog, &mut out);
    out
}

// ---------------------------------------------------------------------------------------------
// The DDL.

/// `tables` in layers: first those that reference none of `tables`, then those that reference
/// only the first layer, and so on (`edges`: referencing, referenced; edges leaving `tables`
/// and self-references do not count); `first` before everything, names alphabetical within a
/// layer. So each table comes after the tables its foreign keys name.
fn dependency_order(
    tables: &BTreeSet<String>,
    edges: &BTreeSet<(String, String)>,
    first: Option<&str>,
) -> Vec<String> {
    let mut needs: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (from, to) in edges {
        if from != to
            && tables.contains(to)
            && let Some(n) = needs.get_mut(from.as_str())
        {
            n.insert(to.as_str());
        }
    }
    let mut ordered: Vec<String> = Vec::new();
    if let Some(first) = first {
        assert!(
            needs.remove(first).is_some_and(|n| n.is_empty()),
            "{first} must be one of the tables and reference none of the others to come first"
        );
        ordered.push(first.to_owned());
    }
    let mut placed: BTreeSet<&str> = first.into_iter().collect();
    while !needs.is_empty() {
        let layer: Vec<&str> = needs
            .iter()
            .filter(|(_, n)| n.iter().all(|t| placed.contains(t)))
            .map(|(t, _)| *t)
            .collect();
        assert!(
            !layer.is_empty(),
            "foreign keys form a cycle between {:?}",
            needs.keys().collect::<Vec<_>>()
        );
        for table in layer {
            needs.remove(table);
            placed.insert(table);
            ordered.push(table.to_owned());
        }
    }
    ordered
}

/// The co-location anchor: the tenant-owned table distributed first, which every other one is
/// co-located with. It must reference no other tenant-owned table (those must exist first);
/// among those, the one the most tenant-owned tables depend on, directly or through others;
/// ties alphabetical.
fn anchor(tenant_tables: &BTreeSet<String>, edges: &BTreeSet<(String, String)>) -> String {
    let inner: Vec<(&str, &str)> = edges
        .iter()
        .filter(|(f, t)| f != t && tenant_tables.contains(f) && tenant_tables.contains(t))
        .map(|(f, t)| (f.as_str(), t.as_str()))
        .collect();
    let dependents = |root: &str| {
        let mut seen = BTreeSet::from([root]);
        let mut todo = vec![root];
        while let Some(t) = todo.pop() {
            for (from, _) in inner.iter().filter(|(_, to)| *to == t) {
                if seen.insert(from) {
                    todo.push(from);
                }
            }
        }
        seen.len() - 1
    };
    let roots = tenant_tables
        .iter()
        .filter(|t| !inner.iter().any(|(from, _)| from == t));
    // `max_by_key` keeps the last of equals: walk the names backwards so ties go to the first.
    roots
        .rev()
        .max_by_key(|t| dependents(t))
        .cloned()
        .unwrap_or_else(|| panic!("no tenant-owned table references no other"))
}

/// The Citus DDL for the schema of `conn`: reference tables, then distributed tables, then
/// coordinator-local tables, each block in foreign-key dependency order.
pub(crate) fn citus_ddl(conn: &mut PgConnection) -> String {
    let catalog = Catalog::read(conn);
    let tables = catalog.table_names();
    let edges: BTreeSet<(String, String)> = catalog
        .foreign_keys
        .iter()
        .map(|k| (k.from_table.clone(), k.to_table.clone()))
        .collect();
    let local: BTreeSet<String> = COORDINATOR_LOCAL_TABLES
        .iter()
        .map(|(t, _)| (*t).to_owned())
        .collect();
    for table in &local {
        assert!(
            is_platform(table) && tables.contains(table),
            "coordinator-local table {table} is not a platform table of the schema"
        );
    }
    let reference: BTreeSet<String> = tables
        .iter()
        .filter(|t| is_platform(t) && !local.contains(*t))
        .cloned()
        .collect();
    let distributed: BTreeSet<String> =
        tables.iter().filter(|t| !is_platform(t)).cloned().collect();
    for (from, to) in &edges {
        assert!(
            !(distributed.contains(from) && local.contains(to)),
            "{from} (distributed) references {to} (coordinator-local): Citus does not support it"
        );
    }
    let anchor = anchor(&distributed, &edges);
    let violations = citus_violations(conn);

    let mut sql = String::new();
    let mut line = |text: &str| {
        sql.push_str(text);
        sql.push('\n');
    };
    line("-- Citus distribution of the Stageflow schema (issue #20): every tenant-owned table is");
    line("-- hash-distributed by tenant_id in one co-location group, the platform's tables are");
    line("-- reference tables, and its queues and logs stay on the coordinator. Run it on the");
    line("-- coordinator after the migrations, top to bottom (a table comes after the tables its");
    line("-- foreign keys name). Coordinator-local tables need the coordinator in the metadata:");
    line("--   SELECT citus_set_coordinator_host('<coordinator host>');");
    line("--");
    line("-- Generated by tests/api/citus.rs from a freshly migrated database; do not edit.");
    line("-- Regenerate with: STAGEFLOW_UPDATE_CITUS=1 cargo test --test api citus");
    if !violations.is_empty() {
        line("--");
        line(
            "-- NOT READY: the schema check (tests/api/citus.rs) reports what Citus would refuse:",
        );
        for v in &violations {
            line(&format!("--   {v}"));
        }
    }
    line("");
    line("-- Reference tables: the platform's own tables, replicated to every node.");
    for t in dependency_order(&reference, &edges, None) {
        line(&format!("SELECT create_reference_table('{t}');"));
    }
    line("");
    line(&format!(
        "-- Distributed tables: everything a tenant owns, by tenant_id, co-located with {anchor}"
    ));
    line("-- (the table most others depend on), so a tenant's rows of every table share a node.");
    for t in dependency_order(&distributed, &edges, Some(&anchor)) {
        if t == anchor {
            line(&format!(
                "SELECT create_distributed_table('{t}', 'tenant_id');"
            ));
        } else {
            line(&format!(
                "SELECT create_distributed_table('{t}', 'tenant_id', colocate_with => '{anchor}');"
            ));
        }
    }
    line("");
    line("-- Coordinator-local tables: platform queues and logs written across tenants. A");
    line("-- reference table would copy each of their writes to every node in a two-phase commit;");
    line("-- these stay on the coordinator, in the Citus metadata so that any node can read them");
    line("-- and they keep their foreign keys to reference tables.");
    let reasons: BTreeMap<&str, &str> = COORDINATOR_LOCAL_TABLES.iter().copied().collect();
    for t in dependency_order(&local, &edges, None) {
        line(&format!(
            "-- {t}: {}",
            reasons.get(t.as_str()).unwrap_or(&"")
        ));
        line(&format!("SELECT citus_add_local_table_to_metadata('{t}');"));
    }
    sql
}

// ---------------------------------------------------------------------------------------------
// Tests (PostgreSQL only).

/// A fresh database on the configured PostgreSQL server with every migration applied, and a
/// connection to it; `None` (with a note) when no server is configured.
fn migrated_postgres(test: &str) -> Option<(TestDb, PgConnection)> {
    let Some(admin_url) = postgres_admin_url() else {
        let _ = writeln!(
            std::io::stderr(),
            "note: {test} needs PostgreSQL; skipped (set {})",
            crate::helpers::POSTGRES_ENV
        );
        return None;
    };
    let db = TestDb::create_postgres(&admin_url);
    let database = Database::open(&db.url(), 1, std::time::Duration::from_secs(10)).unwrap();
    migrations::run_pending(&mut database.get().unwrap()).unwrap();
    let DatabaseUrl::Postgres(url) = db.url() else {
        unreachable!("a PostgreSQL test database has a PostgreSQL URL")
    };
    let conn = PgConnection::establish(&url).unwrap();
    Some((db, conn))
}

#[test]
fn schema_is_ready_for_citus() {
    let Some((_db, mut conn)) = migrated_postgres("the Citus readiness check") else {
        return;
    };
    let violations = citus_violations(&mut conn);
    for v in &violations {
        eprintln!("citus: {v}");
    }
    assert!(
        violations.is_empty(),
        "Citus could not distribute the schema as docs/citus.sql says:\n{}",
        violations.join("\n")
    );
}

/// Runs `ddl` and returns the violations it adds to those of `conn` before.
fn added_by(conn: &mut PgConnection, ddl: &str) -> Vec<String> {
    let before = citus_violations(conn);
    conn.batch_execute(ddl).unwrap();
    let added: Vec<String> = citus_violations(conn)
        .into_iter()
        .filter(|v| !before.contains(v))
        .collect();
    for v in &added {
        eprintln!("citus probe: {v}");
    }
    added
}

#[test]
fn citus_check_catches_a_unique_constraint_without_tenant_id() {
    let Some((_db, mut conn)) = migrated_postgres("the Citus readiness probe") else {
        return;
    };
    assert_eq!(
        added_by(&mut conn, "CREATE UNIQUE INDEX citus_probe ON tickets (id)"),
        ["unique index citus_probe on tickets (id) does not include tenant_id"]
    );
    assert_eq!(
        added_by(
            &mut conn,
            "CREATE UNIQUE INDEX citus_probe_partial ON tickets (lower(title)) WHERE NOT closed"
        ),
        [
            "unique index citus_probe_partial on tickets (lower(title)) WHERE NOT closed \
             does not include tenant_id"
        ]
    );
    // A foreign key through the probe's unique index, and one that maps tenant_id to an id.
    assert_eq!(
        added_by(
            &mut conn,
            "ALTER TABLE ticket_watchers ADD COLUMN citus_probe_ticket UUID; \
             ALTER TABLE ticket_watchers ADD CONSTRAINT citus_probe_fkey \
                 FOREIGN KEY (citus_probe_ticket) REFERENCES tickets (id); \
             ALTER TABLE ticket_comments ADD CONSTRAINT citus_probe_swapped_fkey \
                 FOREIGN KEY (ticket_id, tenant_id) REFERENCES tickets (tenant_id, id)"
        ),
        [
            "foreign key citus_probe_swapped_fkey on ticket_comments (ticket_id, tenant_id) -> \
             tickets (tenant_id, id) does not map tenant_id to tenant_id",
            "foreign key citus_probe_fkey on ticket_watchers (citus_probe_ticket) -> tickets (id) \
             does not map tenant_id to tenant_id",
        ]
    );
    assert_eq!(
        added_by(
            &mut conn,
            "ALTER TABLE tenant_exports ADD COLUMN citus_probe_ticket UUID; \
             ALTER TABLE tenant_exports ADD CONSTRAINT citus_probe_platform_fkey \
                 FOREIGN KEY (exported_tenant, citus_probe_ticket) \
                 REFERENCES tickets (tenant_id, id)"
        ),
        [
            "foreign key citus_probe_platform_fkey on platform table tenant_exports \
             (exported_tenant, citus_probe_ticket) -> tenant-owned table tickets (tenant_id, id): \
             a reference table cannot reference a distributed table"
        ]
    );
    assert_eq!(
        added_by(
            &mut conn,
            "ALTER TABLE tickets ADD COLUMN citus_probe_serial serial; \
             ALTER TABLE ticket_comments ADD COLUMN citus_probe_identity BIGINT \
                 GENERATED BY DEFAULT AS IDENTITY; \
             CREATE SEQUENCE citus_probe_seq OWNED BY ticket_links.kind"
        ),
        [
            "column ticket_comments.citus_probe_identity is an identity column (GENERATED BY \
             DEFAULT, sequence public.ticket_comments_citus_probe_identity_seq): one sequence \
             numbers every tenant's rows",
            "column tickets.citus_probe_serial defaults to \
             nextval('tickets_citus_probe_serial_seq'::regclass): one sequence numbers every \
             tenant's rows",
            "sequence citus_probe_seq is owned by ticket_links.kind: one sequence numbers every \
             tenant's rows",
        ]
    );
    assert_eq!(
        added_by(
            &mut conn,
            "CREATE TABLE citus_probe_notes (id UUID PRIMARY KEY, tenant_id UUID, body TEXT)"
        ),
        [
            "table citus_probe_notes: tenant_id is nullable (Citus rejects NULL in the \
             distribution column)",
            "table citus_probe_notes: primary key citus_probe_notes_pkey (id) does not include \
             tenant_id",
        ]
    );
}

#[test]
fn committed_citus_ddl_matches_the_schema() {
    let Some((_db, mut conn)) = migrated_postgres("the Citus DDL drift check") else {
        return;
    };
    let generated = citus_ddl(&mut conn);
    if std::env::var("STAGEFLOW_UPDATE_CITUS").is_ok_and(|v| v == "1") {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(COMMITTED).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/citus.sql is out of date with the schema.\nRegenerate it with:\n    \
         STAGEFLOW_UPDATE_CITUS=1 cargo test --test api citus\nand commit the result."
    );
}
