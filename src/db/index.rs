//! The field index and the search tokens of tickets and library records, and how a list query
//! joins them: one implementation for both, parameterised by the tables of each ([`TICKETS`],
//! [`RECORDS`]).
//!
//! Both owners keep `*_field_values (tenant, [library,] field, value, owner, internal)` and
//! `*_tokens (tenant, [library,] token, owner, source)`, keyed by primary key in that order.
//! Rows are written and deleted by a diff of the owner's old and new entries, and a list
//! condition on them is either looked up (`IN (SELECT owner …)`) or probed per listed row
//! (`EXISTS (…)`), see [`conditions`]. The SQL is written here once as text with bound values
//! ([`Sql`]); diesel supplies each backend's placeholders.

use std::collections::BTreeSet;
use std::marker::PhantomData;

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Bool, SmallInt, Text};
use uuid::Uuid;

use super::types::DbUuid;
use super::{Backend, DbConnection, MultiBackend};
use crate::domain::index::IndexedValue;

/// Rows per multi-row statement: SQLite allows 32,766 bound parameters, PostgreSQL 65,535.
pub const MAX_ROWS_PER_STATEMENT: usize = 1000;

/// The index tables of one kind of owner.
#[derive(Debug)]
pub struct IndexTables {
    /// The listed table's id column, as a list query names it.
    pub owner_id: &'static str,
    pub field_values: &'static str,
    pub tokens: &'static str,
    /// The owner's id column in both index tables.
    pub owner_column: &'static str,
    /// A column that scopes every index row beyond the tenant (a record's library).
    pub partition: Option<&'static str>,
    /// Token sources that requesters and partners may match.
    pub public_sources: &'static [i16],
}

/// Tickets: `ticket_field_values`, `ticket_tokens` (sources in `db::tickets`).
pub const TICKETS: IndexTables = IndexTables {
    owner_id: "tickets.id",
    field_values: "ticket_field_values",
    tokens: "ticket_tokens",
    owner_column: "ticket_id",
    partition: None,
    public_sources: &[0, 2],
};

/// Library records: `library_field_values`, `library_tokens`, each row in its library.
pub const RECORDS: IndexTables = IndexTables {
    owner_id: "library_records.id",
    field_values: "library_field_values",
    tokens: "library_tokens",
    owner_column: "record_id",
    partition: Some("library_id"),
    public_sources: &[0],
};

/// Where index rows live: the tenant, and the partition value when the tables have one.
#[derive(Debug, Clone, Copy)]
pub struct IndexScope {
    pub tenant: Uuid,
    pub partition: Option<Uuid>,
}

/// The field index and token entries of one owner.
pub type Entries = (BTreeSet<IndexedValue>, BTreeSet<(String, i16)>);

/// Brings an owner's index rows from its `old` entries to its `new` ones, touching only the
/// rows that differ (deleted by primary key, inserted in multi-row statements).
pub fn reindex(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    owner: Uuid,
    old: &Entries,
    new: &Entries,
) -> QueryResult<()> {
    let gone: Vec<_> = old.0.difference(&new.0).cloned().collect();
    let added: Vec<_> = new.0.difference(&old.0).cloned().collect();
    delete_field_values(conn, tables, scope, owner, &gone)?;
    insert_field_values(conn, tables, scope, owner, &added)?;
    let gone: Vec<_> = old.1.difference(&new.1).cloned().collect();
    let added: Vec<_> = new.1.difference(&old.1).cloned().collect();
    delete_tokens(conn, tables, scope, owner, &gone)?;
    insert_tokens(conn, tables, scope, owner, &added)
}

/// `tenant_id = ? [AND <partition> = ?]` of the table `table`.
fn scoped(table: &str, tables: &IndexTables, scope: IndexScope) -> Sql<Bool> {
    let sql = Sql::new(&format!("{table}.tenant_id = ")).uuid(scope.tenant);
    match (tables.partition, scope.partition) {
        (Some(column), Some(value)) => sql.sql(&format!(" AND {table}.{column} = ")).uuid(value),
        _ => sql,
    }
}

/// Removes field index rows of an owner (the rows of its old values), by primary key.
fn delete_field_values(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    owner: Uuid,
    values: &[IndexedValue],
) -> QueryResult<()> {
    let table = tables.field_values;
    let fields: BTreeSet<&str> = values.iter().map(|v| v.field.as_str()).collect();
    for field in fields {
        let of_field: Vec<&str> = values
            .iter()
            .filter(|v| v.field == field)
            .map(|v| v.value.as_str())
            .collect();
        for chunk in of_field.chunks(MAX_ROWS_PER_STATEMENT) {
            Sql::<()>::new(&format!("DELETE FROM {table} WHERE "))
                .append(scoped(table, tables, scope))
                .sql(&format!(" AND {table}.field = "))
                .text(field)
                .sql(&format!(" AND {table}.value "))
                .any_text(chunk)
                .sql(&format!(" AND {table}.{} = ", tables.owner_column))
                .uuid(owner)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// `INSERT INTO <table> (tenant_id, [partition,] <columns>) VALUES …` for `rows` rows, each
/// row's own values written by `row`.
fn insert_rows<R>(
    tables: &IndexTables,
    scope: IndexScope,
    table: &str,
    columns: &str,
    rows: &[R],
    row: impl Fn(Sql<()>, &R) -> Sql<()>,
) -> Sql<()> {
    let partition = match (tables.partition, scope.partition) {
        (Some(column), Some(value)) => Some((column, value)),
        _ => None,
    };
    let head = match partition {
        Some((column, _)) => {
            format!("INSERT INTO {table} (tenant_id, {column}, {columns}) VALUES ")
        }
        None => format!("INSERT INTO {table} (tenant_id, {columns}) VALUES "),
    };
    let mut sql = Sql::new(&head);
    for (i, r) in rows.iter().enumerate() {
        sql = sql.sql(if i == 0 { "(" } else { ", (" }).uuid(scope.tenant);
        if let Some((_, value)) = partition {
            sql = sql.sql(", ").uuid(value);
        }
        sql = row(sql.sql(", "), r).sql(")");
    }
    sql
}

/// Writes field index rows of an owner (its new values).
fn insert_field_values(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    owner: Uuid,
    values: &[IndexedValue],
) -> QueryResult<()> {
    let columns = format!("field, value, {}, internal", tables.owner_column);
    for chunk in values.chunks(MAX_ROWS_PER_STATEMENT) {
        insert_rows(
            tables,
            scope,
            tables.field_values,
            &columns,
            chunk,
            |sql, v| {
                sql.text(&v.field)
                    .sql(", ")
                    .text(&v.value)
                    .sql(", ")
                    .uuid(owner)
                    .sql(", ")
                    .bool(v.internal)
            },
        )
        .execute(conn)?;
    }
    Ok(())
}

/// Removes tokens of an owner (those of its old text), by primary key.
fn delete_tokens(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    owner: Uuid,
    tokens: &[(String, i16)],
) -> QueryResult<()> {
    let table = tables.tokens;
    let sources: BTreeSet<i16> = tokens.iter().map(|(_, s)| *s).collect();
    for source in sources {
        let of_source: Vec<&str> = tokens
            .iter()
            .filter(|(_, s)| *s == source)
            .map(|(t, _)| t.as_str())
            .collect();
        for chunk in of_source.chunks(MAX_ROWS_PER_STATEMENT) {
            Sql::<()>::new(&format!("DELETE FROM {table} WHERE "))
                .append(scoped(table, tables, scope))
                .sql(&format!(" AND {table}.token "))
                .any_text(chunk)
                .sql(&format!(" AND {table}.{} = ", tables.owner_column))
                .uuid(owner)
                .sql(&format!(" AND {table}.source = "))
                .small(source)
                .execute(conn)?;
        }
    }
    Ok(())
}

/// Adds tokens of an owner; a token already present (a comment repeating a word) is kept
/// once.
pub fn insert_tokens(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    owner: Uuid,
    tokens: &[(String, i16)],
) -> QueryResult<()> {
    let columns = format!("token, {}, source", tables.owner_column);
    for chunk in tokens.chunks(MAX_ROWS_PER_STATEMENT) {
        insert_rows(
            tables,
            scope,
            tables.tokens,
            &columns,
            chunk,
            |sql, (token, source)| {
                sql.text(token)
                    .sql(", ")
                    .uuid(owner)
                    .sql(", ")
                    .small(*source)
            },
        )
        .sql(" ON CONFLICT DO NOTHING")
        .execute(conn)?;
    }
    Ok(())
}

/// The index conditions of a list query.
#[derive(Debug, Clone, Copy)]
pub struct IndexFilter<'a> {
    /// Field key → stored forms, any of which matches.
    pub fields: &'a [(String, Vec<String>)],
    /// Rows one of whose fields (`.0`) holds the value `.1`.
    pub references: Option<(&'a [String], &'a str)>,
    /// Every token must be present.
    pub tokens: &'a [String],
    /// Whether internal fields and their words may match (staff).
    pub internal: bool,
    /// SQLite: matches of a condition from which it is probed per listed row rather than
    /// looked up (`STAGEFLOW_LIST_PROBE_THRESHOLD`).
    pub probe_threshold: i64,
}

/// How a field or word condition is joined to the scan of the listed table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// `id IN (SELECT owner …)`: driven by the index rows (few matches).
    Lookup,
    /// `EXISTS (SELECT … WHERE owner = <listed>.id)`: probed per row in list order, and stops
    /// when the page is full (many matches).
    Probe,
}

/// The conditions a list query adds for `filter`, in order: fields, references, words.
///
/// PostgreSQL's planner chooses well by itself from its statistics (a merge of two ordered
/// index scans), so every condition stays a lookup there. SQLite would materialize the whole
/// match list of an `IN (SELECT …)` before reading a page — tens of milliseconds for a value
/// that 100,000 tickets hold — so a condition with many matches (counted on its index, up to
/// `probe_threshold`) is probed per row instead, which stops as soon as the page is full.
pub fn conditions(
    conn: &mut DbConnection,
    tables: &IndexTables,
    scope: IndexScope,
    filter: &IndexFilter<'_>,
) -> QueryResult<Vec<Sql<Bool>>> {
    let postgres = super::backend_of(conn) == Backend::Postgres;
    let threshold = filter.probe_threshold.max(1);
    let mut join = |matches: Sql<Bool>| -> QueryResult<Join> {
        if postgres {
            return Ok(Join::Lookup);
        }
        let count: i64 = Sql::<BigInt>::new("SELECT COUNT(*) FROM (SELECT 1 ")
            .append(matches)
            .sql(" LIMIT ")
            .big(threshold)
            .sql(") AS m")
            .get_result(conn)?;
        Ok(if count >= threshold {
            Join::Probe
        } else {
            Join::Lookup
        })
    };
    let mut out = Vec::new();
    let table = tables.field_values;
    for (field, values) in filter.fields {
        let matches = || {
            from_where(table, tables, scope)
                .sql(&format!(" AND {table}.field = "))
                .text(field)
                .sql(&format!(" AND {table}.value "))
                .any_text(values)
        };
        let how = join(matches())?;
        out.push(restricted(tables, matches(), how, filter.internal, false));
    }
    if let Some((fields, value)) = filter.references {
        let matches = from_where(table, tables, scope)
            .sql(&format!(" AND {table}.field "))
            .any_text(fields)
            .sql(&format!(" AND {table}.value = "))
            .text(value);
        out.push(restricted(
            tables,
            matches,
            Join::Lookup,
            filter.internal,
            false,
        ));
    }
    let table = tables.tokens;
    for token in filter.tokens {
        let matches = || {
            from_where(table, tables, scope)
                .sql(&format!(" AND {table}.token = "))
                .text(token)
        };
        let how = join(matches())?;
        out.push(restricted(tables, matches(), how, filter.internal, true));
    }
    Ok(out)
}

/// `FROM <table> WHERE <scope>`.
fn from_where(table: &str, tables: &IndexTables, scope: IndexScope) -> Sql<Bool> {
    Sql::new(&format!("FROM {table} WHERE ")).append(scoped(table, tables, scope))
}

/// The condition on the listed row for index rows `matches` (a `FROM … WHERE …`), left to
/// public rows unless `internal`: a field row by its `internal` flag, a token by its source.
fn restricted(
    tables: &IndexTables,
    matches: Sql<Bool>,
    how: Join,
    internal: bool,
    token: bool,
) -> Sql<Bool> {
    let owner = tables.owner_column;
    let table = if token {
        tables.tokens
    } else {
        tables.field_values
    };
    let mut matches = matches;
    if !internal && token {
        matches = matches
            .sql(&format!(" AND {table}.source "))
            .any_small(tables.public_sources);
    } else if !internal {
        matches = matches
            .sql(&format!(" AND {table}.internal = "))
            .bool(false);
    }
    match how {
        Join::Probe => Sql::new("EXISTS (SELECT 1 ")
            .append(matches)
            .sql(&format!(" AND {table}.{owner} = {})", tables.owner_id)),
        Join::Lookup => Sql::new(&format!("{} IN (SELECT {table}.{owner} ", tables.owner_id))
            .append(matches)
            .sql(")"),
    }
}

/// One bound value of a [`Sql`].
#[derive(Debug, Clone)]
enum Value {
    Uuid(Uuid),
    Text(String),
    SmallInt(i16),
    BigInt(i64),
    Bool(bool),
}

#[derive(Debug, Clone)]
enum Part {
    Sql(String),
    Bind(Value),
}

/// SQL text with its bound values in order, whose placeholders each backend writes in its
/// own form (`$1`, `?`). `ST` is its SQL type: `Bool` for a condition that a diesel query can
/// filter on, `BigInt` for a count, `()` for a statement.
#[derive(Debug, Clone)]
pub struct Sql<ST> {
    parts: Vec<Part>,
    sql_type: PhantomData<ST>,
}

impl<ST> Sql<ST> {
    fn new(sql: &str) -> Self {
        Self {
            parts: vec![Part::Sql(sql.to_owned())],
            sql_type: PhantomData,
        }
    }

    fn sql(mut self, sql: &str) -> Self {
        self.parts.push(Part::Sql(sql.to_owned()));
        self
    }

    fn bind(mut self, value: Value) -> Self {
        self.parts.push(Part::Bind(value));
        self
    }

    fn append<T>(mut self, other: Sql<T>) -> Self {
        self.parts.extend(other.parts);
        self
    }

    fn uuid(self, v: Uuid) -> Self {
        self.bind(Value::Uuid(v))
    }

    fn text(self, v: &str) -> Self {
        self.bind(Value::Text(v.to_owned()))
    }

    fn small(self, v: i16) -> Self {
        self.bind(Value::SmallInt(v))
    }

    fn big(self, v: i64) -> Self {
        self.bind(Value::BigInt(v))
    }

    fn bool(self, v: bool) -> Self {
        self.bind(Value::Bool(v))
    }

    /// `= ?` for one value (so that PostgreSQL sees the value when planning), `IN (?, …)`
    /// for several.
    fn any(self, values: impl ExactSizeIterator<Item = Value>) -> Self {
        if values.len() == 0 {
            // Matches nothing, on both backends (PostgreSQL rejects `IN ()`).
            return self.sql("IS NULL AND 1 = 0");
        }
        if values.len() == 1 {
            return values.fold(self.sql("= "), Self::bind);
        }
        let mut sql = self.sql("IN (");
        for (i, value) in values.enumerate() {
            sql = if i == 0 { sql } else { sql.sql(", ") }.bind(value);
        }
        sql.sql(")")
    }

    fn any_text<S: AsRef<str>>(self, values: &[S]) -> Self {
        self.any(values.iter().map(|v| Value::Text(v.as_ref().to_owned())))
    }

    fn any_small(self, values: &[i16]) -> Self {
        self.any(values.iter().map(|v| Value::SmallInt(*v)))
    }
}

impl<ST> QueryFragment<MultiBackend> for Sql<ST> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, MultiBackend>) -> QueryResult<()> {
        for part in &self.parts {
            match part {
                Part::Sql(sql) => out.push_sql(sql),
                Part::Bind(Value::Uuid(v)) => out.push_bind_param::<DbUuid, _>(v)?,
                Part::Bind(Value::Text(v)) => out.push_bind_param::<Text, _>(v)?,
                Part::Bind(Value::SmallInt(v)) => out.push_bind_param::<SmallInt, _>(v)?,
                Part::Bind(Value::BigInt(v)) => out.push_bind_param::<BigInt, _>(v)?,
                Part::Bind(Value::Bool(v)) => out.push_bind_param::<Bool, _>(v)?,
            }
        }
        Ok(())
    }
}

impl<ST> QueryId for Sql<ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<ST> RunQueryDsl<DbConnection> for Sql<ST> {}

impl Query for Sql<BigInt> {
    type SqlType = BigInt;
}

impl Expression for Sql<Bool> {
    type SqlType = Bool;
}

impl<QS> AppearsOnTable<QS> for Sql<Bool> {}

impl<QS> SelectableExpression<QS> for Sql<Bool> {}

impl<GB> ValidGrouping<GB> for Sql<Bool> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}
