//! Bulk import (#19, docs/import-export.md): a CSV or JSON Lines file, or JSON rows, mapped
//! column by column onto tickets of a template, records of a library, users or master items,
//! each row applied through the same use case (and field checks) as the API, in its own
//! savepoint, with an outcome per row.
//!
//! Small imports run in the request ([`run_inline`]); larger ones are stored in `imports`
//! with their decoded source and run by the `import.run` job in batches, each batch one
//! transaction that also records its rows' outcomes and where the next batch starts, so a
//! crash or a restart resumes after the last committed batch ([`run_batches`]).

mod cells;
mod targets;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::auth::{Principal, TenantScope};
use crate::db::imports::{self as store, Counts, ImportRow, ImportRowOutcome};
use crate::db::jobs::NewJob;
use crate::db::types::Json;
use crate::db::{self, Database, DbConnection};
use crate::domain::error::FieldError;
use crate::domain::ids::{EntityId, ImportId, UserId};
use crate::domain::import::{ImportMode, ImportTarget, SourceFormat, SourceRow};
use crate::domain::tabular::TextEncoding;
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

pub use cells::Lookups;

/// The job that runs a stored import.
pub const RUN: &str = "import.run";

/// Rows per transaction of a stored import.
pub const BATCH_ROWS: usize = 250;

/// How one column is read.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnMap {
    /// What the column fills (`field.<key>`, a field key, `key`, `state`, `username`, …);
    /// `None`: the column is ignored.
    pub to: Option<String>,
    /// Cell text → the value to use instead (`"特大"` → `"xl"`), before any other reading.
    #[serde(default)]
    pub translate: BTreeMap<String, Value>,
    /// A chrono format for date and datetime cells (`%Y/%m/%d`); without one, the usual
    /// spellings are recognised.
    #[serde(default)]
    pub date_format: Option<String>,
}

/// What an import does, as the caller asked for it (kept with a stored import).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportSpec {
    pub target: ImportTarget,
    /// The template (tickets), library (records) or master (items).
    pub target_key: Option<String>,
    pub mode: ImportMode,
    /// The mapped name (after `mapping`) that identifies an existing row in `upsert` and
    /// `update`; each target has a default.
    pub key: Option<String>,
    /// Column name → how it is read; columns not named are matched by name.
    pub mapping: BTreeMap<String, ColumnMap>,
    /// Values for names no column fills (or whose cell is empty).
    pub defaults: Map<String, Value>,
    pub format: SourceFormat,
    pub encoding: Option<TextEncoding>,
    /// The user the rows are written as (the caller, or an API key's creator).
    pub acting_user: Option<UserId>,
}

/// The outcome of one row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowResult {
    pub row: i64,
    pub line: i64,
    /// `created`, `updated`, `unchanged` or `failed`; a dry run says what a real run would do.
    pub outcome: &'static str,
    /// The id of what the row created or matched (a ticket, record, user id, or item code).
    pub id: Option<String>,
    /// The ticket key, record title, username or item code.
    pub key: Option<String>,
    pub errors: Vec<RowError>,
}

/// Why a row failed, located.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowError {
    /// The column the value came from (absent for a row-level problem).
    pub column: Option<String>,
    /// The path the API reports (`fields.impact`, `username`, …).
    pub field: String,
    pub code: String,
    pub message: String,
}

impl RowResult {
    fn failed(row: &SourceRow, errors: Vec<RowError>) -> Self {
        Self {
            row: row.number,
            line: row.line,
            outcome: FAILED,
            id: None,
            key: None,
            errors,
        }
    }
}

pub const CREATED: &str = "created";
pub const UPDATED: &str = "updated";
pub const UNCHANGED: &str = "unchanged";
pub const FAILED: &str = "failed";

/// A whole run's result.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RunSummary {
    pub counts: CountsView,
    pub rows: Vec<RowResult>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CountsView {
    pub total: i64,
    pub created: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub failed: i64,
}

impl CountsView {
    fn add(&mut self, outcome: &str) {
        self.total += 1;
        match outcome {
            CREATED => self.created += 1,
            UPDATED => self.updated += 1,
            UNCHANGED => self.unchanged += 1,
            _ => self.failed += 1,
        }
    }
}

/// The names a file's columns fill, and the columns nothing reads.
#[derive(Debug, Clone)]
pub struct ColumnPlan {
    /// Column → name.
    pub mapped: Vec<(String, String)>,
    pub ignored: Vec<String>,
    /// Name → the value used when no cell gives one.
    pub defaults: BTreeMap<String, Value>,
    /// The name that matches existing rows (`upsert`, `update`).
    pub key: Option<String>,
    /// The target's fields (tickets and records).
    pub fields: Vec<crate::domain::template::FieldDef>,
}

/// Who imports, checked for the target before anything is read.
pub fn check_caller(principal: &Principal, spec: &ImportSpec) -> Result<(), ServiceError> {
    targets::check_caller(principal, spec)
}

/// Everything a run needs besides the connection.
pub struct RunContext<'a> {
    pub defs: &'a DefinitionCache,
    pub principal: &'a Principal,
    pub spec: &'a ImportSpec,
    pub now: DateTime<Utc>,
    /// The stored import the rows belong to (their history says so); none in a dry run.
    pub import: Option<ImportId>,
}

/// Which names the columns fill (also checks the target exists and is importable).
pub fn plan_columns(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    spec: &ImportSpec,
    columns: &[String],
) -> Result<ColumnPlan, ServiceError> {
    targets::plan_columns(conn, defs, scope, spec, columns)
}

/// The columns of the rows, in order of first appearance.
pub fn columns_of(rows: &[SourceRow]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for row in rows {
        for (c, _) in &row.cells {
            if !out.iter().any(|o| o.as_str() == &**c) {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// Applies rows in the caller's transaction, each in its own savepoint: a failing row rolls
/// back only itself. A database failure that is not the row's fault ends the run.
pub fn apply_rows(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    lookups: &mut Lookups,
    rows: &[SourceRow],
) -> Result<Vec<RowResult>, ServiceError> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let applied = diesel::Connection::transaction::<_, ServiceError, _>(conn, |c| {
            targets::apply_row(c, cx, plan, lookups, row)
        });
        let result = match applied {
            Ok(result) => result,
            Err(error) => match row_errors(&error, plan) {
                Some(errors) => RowResult::failed(row, errors),
                None => return Err(error),
            },
        };
        out.push(result);
    }
    Ok(out)
}

/// A use case's refusal as row errors (`None`: not the row's fault, the run stops).
fn row_errors(error: &ServiceError, plan: &ColumnPlan) -> Option<Vec<RowError>> {
    let column_of = |field: &str| {
        let name = field.strip_prefix("fields.").map_or_else(
            || field.to_owned(),
            |k| format!("field.{}", k.split('.').next().unwrap_or(k)),
        );
        plan.mapped
            .iter()
            .find(|(_, to)| *to == name)
            .map(|(c, _)| c.clone())
    };
    let one = |code: &str, message: String| {
        Some(vec![RowError {
            column: None,
            field: "row".to_owned(),
            code: code.to_owned(),
            message,
        }])
    };
    match error {
        ServiceError::Validation(errors) => Some(
            errors
                .iter()
                .map(|e: &FieldError| RowError {
                    column: column_of(&e.field),
                    field: e.field.clone(),
                    code: e.code.clone(),
                    message: e.message.clone(),
                })
                .collect(),
        ),
        ServiceError::NotFound => one("not_found", "nothing with this key exists".to_owned()),
        ServiceError::Forbidden(detail) => one("forbidden", detail.clone()),
        ServiceError::Conflict { detail, .. } => one("conflict", detail.clone()),
        ServiceError::QuotaExceeded { cap, limit } => one(
            "quota_exceeded",
            format!("the plan's {cap} ({limit}) is reached"),
        ),
        ServiceError::PreconditionFailed => one(
            "conflict",
            "changed by someone else during the import".to_owned(),
        ),
        _ => None,
    }
}

/// Runs every row now: in a dry run inside a savepoint that is always rolled back.
pub fn run_inline(
    conn: &mut DbConnection,
    cx: &RunContext<'_>,
    plan: &ColumnPlan,
    rows: &[SourceRow],
    dry_run: bool,
) -> Result<RunSummary, ServiceError> {
    let scope = cx.principal.audit_scope();
    let mut lookups = Lookups::load(conn, &scope, cx.spec)?;
    let results = if dry_run {
        crate::service::rolled_back(conn, |c| apply_rows(c, cx, plan, &mut lookups, rows))?
    } else {
        apply_rows(conn, cx, plan, &mut lookups, rows)?
    };
    let mut counts = CountsView::default();
    for r in &results {
        counts.add(r.outcome);
    }
    Ok(RunSummary {
        counts,
        rows: results,
    })
}

/// A stored import as first written.
pub struct NewImport<'a> {
    pub spec: &'a ImportSpec,
    pub source: String,
    pub total_rows: i64,
    pub created_by: EntityId,
}

/// Stores an import, done (`summary` given: it ran in this transaction) or queued for the
/// job.
pub fn store_import(
    conn: &mut DbConnection,
    scope: &TenantScope,
    new: &NewImport<'_>,
    summary: Option<&RunSummary>,
    now: DateTime<Utc>,
) -> Result<ImportRow, ServiceError> {
    store_import_with_id(conn, scope, ImportId::new_at(now), new, summary, now)
}

/// [`store_import`] under an id chosen before the rows ran (their history names it).
pub fn store_import_with_id(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    new: &NewImport<'_>,
    summary: Option<&RunSummary>,
    now: DateTime<Utc>,
) -> Result<ImportRow, ServiceError> {
    let spec = serde_json::to_value(new.spec)
        .map_err(|e| ServiceError::Internal(format!("import spec: {e}")))?;
    let row = ImportRow {
        tenant_id: scope.tenant_id(),
        id,
        target: new.spec.target.as_str().to_owned(),
        target_key: new.spec.target_key.clone(),
        mode: new.spec.mode.as_str().to_owned(),
        spec: Json(spec),
        format: new.spec.format.as_str().to_owned(),
        encoding: new
            .spec
            .encoding
            .map_or("utf-8", TextEncoding::as_str)
            .to_owned(),
        status: if summary.is_some() {
            store::DONE
        } else {
            store::QUEUED
        }
        .to_owned(),
        source: if summary.is_some() {
            String::new()
        } else {
            new.source.clone()
        },
        total_rows: new.total_rows,
        next_row: if summary.is_some() { new.total_rows } else { 0 },
        created_count: 0,
        updated_count: 0,
        unchanged_count: 0,
        failed_count: 0,
        error: None,
        created_by: new.created_by,
        created_at: now.into(),
        started_at: summary.map(|_| now.into()),
        finished_at: summary.map(|_| now.into()),
        updated_at: now.into(),
    };
    store::insert(conn, scope, &row)?;
    match summary {
        Some(summary) => {
            let outcomes = outcome_rows(scope, id, &summary.rows);
            let counts = counts_of(&summary.rows);
            store::record_batch(
                conn,
                scope,
                id,
                &outcomes,
                counts,
                (new.total_rows, None),
                now.into(),
            )?;
        }
        None => {
            let mut job = NewJob::new(RUN, serde_json::json!({ "import": id }), now);
            job.tenant = Some(scope.tenant_id());
            db::jobs::enqueue(conn, &job)?;
        }
    }
    store::find(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

fn counts_of(rows: &[RowResult]) -> Counts {
    let mut counts = Counts::default();
    for r in rows {
        match r.outcome {
            CREATED => counts.created += 1,
            UPDATED => counts.updated += 1,
            UNCHANGED => counts.unchanged += 1,
            _ => counts.failed += 1,
        }
    }
    counts
}

fn outcome_rows(scope: &TenantScope, id: ImportId, rows: &[RowResult]) -> Vec<ImportRowOutcome> {
    rows.iter()
        .map(|r| ImportRowOutcome {
            tenant_id: scope.tenant_id(),
            import_id: id,
            row_number: r.row,
            line: r.line,
            outcome: r.outcome.to_owned(),
            subject_id: r.id.clone(),
            subject_key: r.key.clone(),
            errors: Json(serde_json::to_value(&r.errors).unwrap_or(Value::Array(Vec::new()))),
        })
        .collect()
}

/// One stored import.
pub fn get(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
) -> Result<ImportRow, ServiceError> {
    store::find(conn, scope, id)?.ok_or(ServiceError::NotFound)
}

/// The tenant's imports, newest first.
pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    before: Option<ImportId>,
    limit: i64,
) -> Result<Vec<ImportRow>, ServiceError> {
    Ok(store::list(conn, scope, before, limit)?)
}

/// A page of a stored import's row outcomes.
pub fn outcomes(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: ImportId,
    after: Option<i64>,
    failed_only: bool,
    limit: i64,
) -> Result<Vec<ImportRowOutcome>, ServiceError> {
    get(conn, scope, id)?;
    Ok(store::outcomes(conn, scope, id, after, failed_only, limit)?)
}

/// Reads a stored import's rows back from its decoded source.
pub fn parse_source(
    spec: &ImportSpec,
    source: &str,
    max_rows: usize,
) -> Result<Vec<SourceRow>, crate::domain::import::SourceError> {
    match spec.format {
        SourceFormat::Csv => crate::domain::import::read_csv(source, max_rows),
        SourceFormat::Jsonl => crate::domain::import::read_jsonl(source, max_rows),
        SourceFormat::Json => crate::domain::import::read_json_array(source, max_rows),
    }
}

/// What a job turn did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Rows are left: run again.
    More,
    /// Finished (or nothing to do: done, failed, gone, or another runner moved on).
    Finished,
}

/// One turn of the `import.run` job: batches of [`BATCH_ROWS`] rows while `keep_going`, each
/// batch one transaction that locks the import, checks no other runner moved it on, applies
/// the rows and records their outcomes and the next row.
pub fn run_batches(
    db: &Database,
    defs: &DefinitionCache,
    tenant: crate::domain::ids::TenantId,
    id: ImportId,
    clock: &dyn crate::clock::Clock,
    keep_going: &dyn Fn() -> bool,
) -> Result<Turn, ServiceError> {
    let scope = crate::auth::job_scope(tenant);
    let Some(row) =
        db.read_blocking(|conn| Ok::<_, ServiceError>(store::find(conn, &scope, id)?))?
    else {
        return Ok(Turn::Finished);
    };
    if row.status == store::DONE || row.status == store::FAILED {
        return Ok(Turn::Finished);
    }
    let spec: ImportSpec = serde_json::from_value(row.spec.0.clone())
        .map_err(|e| ServiceError::Internal(format!("stored import spec: {e}")))?;
    let fail = |message: String| -> Result<Turn, ServiceError> {
        let now = clock.now();
        db.write_blocking(|conn| {
            store::finish(conn, &scope, id, store::FAILED, Some(&message), now.into())
                .map_err(ServiceError::from)
        })?;
        Ok(Turn::Finished)
    };
    let rows = match parse_source(&spec, &row.source, usize::MAX) {
        Ok(rows) => rows,
        Err(e) => return fail(format!("the stored file cannot be read: {e}")),
    };
    let principal = match db.read_blocking(|conn| {
        let user = spec.acting_user.ok_or(ServiceError::NotFound)?;
        Ok::<_, ServiceError>(crate::auth::acting_user(conn, &scope, user)?)
    }) {
        Ok(Some(p)) => p,
        Ok(None) | Err(ServiceError::NotFound) => {
            return fail("the importing user is no longer active".to_owned());
        }
        Err(e) => return Err(e),
    };
    let columns = columns_of(&rows);
    let plan = db.read_blocking(|conn| plan_columns(conn, defs, &scope, &spec, &columns));
    let plan = match plan {
        Ok(plan) => plan,
        Err(e @ (ServiceError::Validation(_) | ServiceError::NotFound)) => {
            return fail(format!("the target cannot take the file any more: {e}"));
        }
        Err(e) => return Err(e),
    };
    let mut next = usize::try_from(row.next_row).unwrap_or(usize::MAX);
    let mut lookups = db.read_blocking(|conn| Lookups::load(conn, &scope, &spec))?;
    while next < rows.len() {
        let end = (next + BATCH_ROWS).min(rows.len());
        let batch = &rows[next..end];
        let now = clock.now();
        let expected = i64::try_from(next).unwrap_or(i64::MAX);
        let moved = db.write_blocking(|conn| {
            let Some((next_row, status)) = store::lock_position(conn, &scope, id)? else {
                return Ok::<_, ServiceError>(false);
            };
            if next_row != expected || status == store::DONE || status == store::FAILED {
                return Ok(false);
            }
            store::start(conn, &scope, id, now.into())?;
            let cx = RunContext {
                defs,
                principal: &principal,
                spec: &spec,
                now,
                import: Some(id),
            };
            let results = apply_rows(conn, &cx, &plan, &mut lookups, batch)?;
            let finished = (end == rows.len()).then(|| now.into());
            store::record_batch(
                conn,
                &scope,
                id,
                &outcome_rows(&scope, id, &results),
                counts_of(&results),
                (i64::try_from(end).unwrap_or(i64::MAX), finished),
                now.into(),
            )?;
            Ok(true)
        })?;
        if !moved {
            return Ok(Turn::Finished);
        }
        next = end;
        if !keep_going() && next < rows.len() {
            return Ok(Turn::More);
        }
    }
    if rows.is_empty() {
        let now = clock.now();
        db.write_blocking(|conn| {
            store::finish(conn, &scope, id, store::DONE, None, now.into())
                .map_err(ServiceError::from)
        })?;
    }
    Ok(Turn::Finished)
}

/// The user a stored import's job writes as: the caller, or an API key's creator (the key's
/// own roles were checked when the import was accepted).
pub fn acting_user(
    conn: &mut DbConnection,
    principal: &Principal,
) -> Result<Option<UserId>, ServiceError> {
    if let Ok(user) = principal.user() {
        return Ok(Some(user.id));
    }
    let scope = principal.audit_scope();
    match principal.actor().id {
        Some(id) => {
            Ok(
                db::credentials::find_api_key(conn, &scope, crate::domain::ids::ApiKeyId(id.0))?
                    .map(|k| k.created_by),
            )
        }
        None => Ok(None),
    }
}

/// Data rows of one import when the plan sets none.
pub const DEFAULT_MAX_ROWS: usize = 100_000;
/// Bytes of one import's file when the plan sets none.
pub const DEFAULT_MAX_BYTES: usize = 32 * 1024 * 1024;

/// The caps on one import, from the tenant's plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImportCaps {
    pub rows: usize,
    pub bytes: usize,
}

/// The tenant's plan's caps on one import (`max_import_rows`, `max_import_bytes`), or the
/// defaults where the plan sets none.
pub fn caps(conn: &mut DbConnection, scope: &TenantScope) -> Result<ImportCaps, ServiceError> {
    let tenant =
        db::platform::find_tenant(conn, scope.tenant_id())?.ok_or(ServiceError::NotFound)?;
    let plan = db::platform::plan_of_account(conn, tenant.account_id)?;
    let cap = |value: Option<i64>, default: usize| {
        value
            .and_then(|v| usize::try_from(v).ok())
            .unwrap_or(default)
    };
    Ok(ImportCaps {
        rows: cap(
            plan.as_ref().and_then(|p| p.max_import_rows),
            DEFAULT_MAX_ROWS,
        ),
        bytes: cap(
            plan.as_ref().and_then(|p| p.max_import_bytes),
            DEFAULT_MAX_BYTES,
        ),
    })
}
