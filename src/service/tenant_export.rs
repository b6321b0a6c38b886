//! Tenant export, import and erasure (#17 point 6, docs/operations.md "Tenant export, import
//! and erasure"): the operator asks for an export (`POST /api/v1/tenants/{id}/exports`), the
//! `tenant.export` job writes one archive of every row and attachment of the tenant from one
//! consistent snapshot; `stageflow tenant import ARCHIVE` recreates the tenant in another
//! instance; `DELETE /api/v1/tenants/{id}` is refused until an export is done and then erases
//! every row and unshared attachment of the tenant, checks that none is left, and audits it.
//!
//! The archive (`.tar.gz`): `manifest.json` (format, its version, the schema version, the
//! backend, the tenant, rows per table, attachments), `platform/{plans,accounts,tenants}.json`
//! (the rows the tenant hangs from), `tables/<table>.jsonl` (one JSON object per row, in a
//! stable order), `catalog/<template key>.json` (each template in the catalog format, for
//! `POST /api/v1/templates/import` anywhere) and `attachments/<sha256>`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::db::jobs::NewJob;
use crate::db::tenant_data::{self, NOT_EXPORTED, Table};
use crate::db::tenant_exports::{self as rows, DONE, FAILED, PENDING, TenantExportRow};
use crate::db::{self, Backend, Database, DbConnection};
use crate::domain::ids::{TenantExportId, TenantId};
use crate::service::error::{ConflictKind, ServiceError};
use crate::storage::BlobStore;

/// The job that writes an export.
pub const EXPORT: &str = "tenant.export";
/// The archive's `format`.
pub const FORMAT: &str = "stageflow-tenant-export";
/// The version of the archive's layout.
pub const FORMAT_VERSION: u32 = 1;

/// What `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    /// The newest migration of the exporting instance: an import needs the same.
    pub schema_version: String,
    /// `sqlite` or `postgres`: rows are kept as that backend stores them.
    pub backend: String,
    pub tenant_id: TenantId,
    pub slug: String,
    pub exported_at: DateTime<Utc>,
    /// Rows per exported table (tables without rows included, at 0).
    pub tables: BTreeMap<String, usize>,
    /// Attachment content (SHA-256 hex) in `attachments/`.
    pub attachments: Vec<String>,
}

/// Where the exports are kept: `<data dir>/exports`.
pub fn export_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("exports")
}

/// Records a request for an export and queues its job (operator only; 404 for a tenant that
/// does not exist).
pub fn request(
    conn: &mut DbConnection,
    principal: &Principal,
    tenant: TenantId,
    now: DateTime<Utc>,
) -> Result<TenantExportRow, ServiceError> {
    principal.operator()?;
    let found = db::platform::find_tenant(conn, tenant)?.ok_or(ServiceError::NotFound)?;
    let row = TenantExportRow {
        id: TenantExportId::new_at(now),
        exported_tenant: tenant,
        slug: found.slug.clone(),
        status: PENDING.to_owned(),
        requested_at: now.into(),
        finished_at: None,
        file_name: None,
        size_bytes: None,
        sha256: None,
        row_count: None,
        attachments: None,
        error: None,
    };
    rows::insert(conn, &row)?;
    let mut job = NewJob::new(EXPORT, json!({"export": row.id}), now);
    job.max_attempts = 3;
    db::jobs::enqueue(conn, &job)?;
    super::audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "tenant.export_requested",
        ("tenant", tenant),
        json!({"slug": found.slug, "export_id": row.id}),
        now.into(),
    )?;
    Ok(row)
}

/// One export of a tenant, or its list (operator only).
pub fn get(
    conn: &mut DbConnection,
    principal: &Principal,
    tenant: TenantId,
    id: TenantExportId,
) -> Result<TenantExportRow, ServiceError> {
    principal.operator()?;
    rows::find(conn, tenant, id)?.ok_or(ServiceError::NotFound)
}

pub fn list(
    conn: &mut DbConnection,
    principal: &Principal,
    tenant: TenantId,
    before: Option<TenantExportId>,
    limit: i64,
) -> Result<Vec<TenantExportRow>, ServiceError> {
    principal.operator()?;
    Ok(rows::list(conn, tenant, before, limit)?)
}

/// Everything of one tenant read from one snapshot.
struct Snapshot {
    schema_version: String,
    platform: [(String, String); 3],
    tables: Vec<(Table, Vec<String>)>,
    attachments: BTreeSet<String>,
    /// Each template in the catalog format (with the masters and libraries it uses), by key.
    catalog: Vec<(String, String)>,
}

fn snapshot(conn: &mut DbConnection, tenant: TenantId) -> Result<Snapshot, ServiceError> {
    db::read_snapshot(conn, |conn| {
        let platform = tenant_data::platform_rows(conn, tenant)?.ok_or(ServiceError::NotFound)?;
        let mut tables = Vec::new();
        let mut attachments = BTreeSet::new();
        for table in tenant_data::tenant_tables(conn)? {
            if NOT_EXPORTED.contains(&table.name.as_str()) {
                continue;
            }
            let dumped = tenant_data::dump(conn, &table, tenant)?;
            if table.name == "ticket_attachments" {
                for row in &dumped {
                    let value: serde_json::Value =
                        serde_json::from_str(row).map_err(ServiceError::internal)?;
                    if let Some(hash) = value["sha256"].as_str() {
                        attachments.insert(hash.to_owned());
                    }
                }
            }
            tables.push((table, dumped));
        }
        let scope = crate::auth::job_scope(tenant);
        let mut catalog = Vec::new();
        for key in db::templates::keys(conn, &scope)? {
            let entry = super::templates::export(conn, &scope, &key, None)?;
            catalog.push((
                key,
                serde_json::to_string_pretty(&entry).map_err(ServiceError::internal)?,
            ));
        }
        Ok(Snapshot {
            schema_version: tenant_data::schema_version(conn)?,
            platform,
            tables,
            attachments,
            catalog,
        })
    })
}

/// Runs a requested export (the job): reads the snapshot, writes the archive under `dir` (as
/// `.partial`, renamed when complete) and records the outcome.
pub fn run(
    db: &Database,
    blobs: &dyn BlobStore,
    dir: &Path,
    id: TenantExportId,
    now: DateTime<Utc>,
) -> Result<TenantExportRow, ServiceError> {
    let mut conn = db.get()?;
    let row = rows::find_by_id(&mut conn, id)?.ok_or(ServiceError::NotFound)?;
    if row.status != PENDING {
        return Ok(row);
    }
    let written = snapshot(&mut conn, row.exported_tenant)
        .and_then(|snap| write_archive(&snap, db.backend(), &row, blobs, dir, now));
    let mut done = row.clone();
    done.finished_at = Some(now.into());
    match written {
        Ok(archive) => {
            done.status = DONE.to_owned();
            done.file_name = Some(archive.file_name);
            done.size_bytes = Some(archive.size);
            done.sha256 = Some(archive.sha256);
            done.row_count = Some(archive.rows);
            done.attachments = Some(archive.attachments);
        }
        Err(error) => {
            log::warn!("tenant export {} failed: {error}", row.id);
            done.status = FAILED.to_owned();
            done.error = Some("the archive could not be written; see the node's log".to_owned());
        }
    }
    rows::finish(&mut conn, &done)?;
    Ok(done)
}

struct Written {
    file_name: String,
    size: i64,
    sha256: String,
    rows: i64,
    attachments: i64,
}

fn io(error: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(format!("export archive: {error}"))
}

fn append(
    tar: &mut tar::Builder<impl Write>,
    path: &str,
    data: &[u8],
    at: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut header = tar::Header::new_gnu();
    header.set_size(data.len() as u64);
    header.set_mode(0o600);
    header.set_mtime(u64::try_from(at.timestamp()).unwrap_or(0));
    header.set_cksum();
    tar.append_data(&mut header, path, data).map_err(io)
}

fn write_archive(
    snap: &Snapshot,
    backend: Backend,
    row: &TenantExportRow,
    blobs: &dyn BlobStore,
    dir: &Path,
    now: DateTime<Utc>,
) -> Result<Written, ServiceError> {
    std::fs::create_dir_all(dir).map_err(io)?;
    let file_name = format!("{}-{}.tar.gz", row.slug, row.id);
    let partial = dir.join(format!("{file_name}.partial"));
    let file = std::fs::File::create(&partial).map_err(io)?;
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    let manifest = Manifest {
        format: FORMAT.to_owned(),
        format_version: FORMAT_VERSION,
        schema_version: snap.schema_version.clone(),
        backend: match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
        .to_owned(),
        tenant_id: row.exported_tenant,
        slug: row.slug.clone(),
        exported_at: now,
        tables: snap
            .tables
            .iter()
            .map(|(t, rows)| (t.name.clone(), rows.len()))
            .collect(),
        attachments: snap.attachments.iter().cloned().collect(),
    };
    let text = serde_json::to_vec_pretty(&manifest).map_err(io)?;
    append(&mut tar, "manifest.json", &text, now)?;
    for (table, json) in &snap.platform {
        append(
            &mut tar,
            &format!("platform/{table}.json"),
            json.as_bytes(),
            now,
        )?;
    }
    let mut count = 0i64;
    for (table, lines) in &snap.tables {
        let mut body = String::new();
        for line in lines {
            body.push_str(line);
            body.push('\n');
        }
        count += i64::try_from(lines.len()).unwrap_or(i64::MAX);
        append(
            &mut tar,
            &format!("tables/{}.jsonl", table.name),
            body.as_bytes(),
            now,
        )?;
    }
    for (key, entry) in &snap.catalog {
        append(
            &mut tar,
            &format!("catalog/{key}.json"),
            entry.as_bytes(),
            now,
        )?;
    }
    for hash in &snap.attachments {
        let mut content = Vec::new();
        blobs
            .open(hash)
            .map_err(io)?
            .read_to_end(&mut content)
            .map_err(io)?;
        append(&mut tar, &format!("attachments/{hash}"), &content, now)?;
    }
    let gz = tar.into_inner().map_err(io)?;
    let file = gz.finish().map_err(io)?;
    file.sync_all().map_err(io)?;
    drop(file);
    let final_path = dir.join(&file_name);
    std::fs::rename(&partial, &final_path).map_err(io)?;
    let bytes = std::fs::read(&final_path).map_err(io)?;
    Ok(Written {
        file_name,
        size: i64::try_from(bytes.len()).unwrap_or(i64::MAX),
        sha256: hex_digest(&bytes),
        rows: count,
        attachments: i64::try_from(snap.attachments.len()).unwrap_or(i64::MAX),
    })
}

fn hex_digest(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The archive of a finished export.
pub fn archive_path(dir: &Path, row: &TenantExportRow) -> Option<PathBuf> {
    (row.status == DONE)
        .then(|| row.file_name.as_ref().map(|f| dir.join(f)))
        .flatten()
}

/// What an archive holds, read whole (exports are for data return, not for bulk transfer).
pub struct Archive {
    pub manifest: Manifest,
    pub platform: Vec<(String, String)>,
    pub tables: BTreeMap<String, Vec<String>>,
    pub attachments: BTreeMap<String, Vec<u8>>,
}

/// Reads an archive and checks it against its manifest.
pub fn read_archive(path: &Path) -> Result<Archive, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    let mut manifest = None;
    let mut platform = Vec::new();
    let mut tables = BTreeMap::new();
    let mut attachments = BTreeMap::new();
    for entry in tar
        .entries()
        .map_err(|e| format!("not an export archive: {e}"))?
    {
        let mut entry = entry.map_err(|e| format!("a damaged archive: {e}"))?;
        let name = entry
            .path()
            .map_err(|e| e.to_string())?
            .to_string_lossy()
            .into_owned();
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| format!("a damaged archive: {e}"))?;
        if name == "manifest.json" {
            manifest = Some(
                serde_json::from_slice::<Manifest>(&data)
                    .map_err(|e| format!("manifest.json: {e}"))?,
            );
        } else if let Some(table) = name
            .strip_prefix("platform/")
            .and_then(|n| n.strip_suffix(".json"))
        {
            platform.push((
                table.to_owned(),
                String::from_utf8_lossy(&data).into_owned(),
            ));
        } else if let Some(table) = name
            .strip_prefix("tables/")
            .and_then(|n| n.strip_suffix(".jsonl"))
        {
            let lines = String::from_utf8(data)
                .map_err(|_| format!("{name} is not UTF-8"))?
                .lines()
                .map(str::to_owned)
                .collect();
            tables.insert(table.to_owned(), lines);
        } else if let Some(hash) = name.strip_prefix("attachments/") {
            if hex_digest(&data) != hash {
                return Err(format!("attachment {hash} does not match its hash"));
            }
            attachments.insert(hash.to_owned(), data);
        }
    }
    let manifest = manifest.ok_or("no manifest.json: not a Stageflow tenant export")?;
    if manifest.format != FORMAT || manifest.format_version != FORMAT_VERSION {
        return Err(format!(
            "format {} version {} is not {FORMAT} version {FORMAT_VERSION}",
            manifest.format, manifest.format_version
        ));
    }
    for (table, expected) in &manifest.tables {
        let found = tables.get(table).map_or(0, Vec::len);
        if found != *expected {
            return Err(format!(
                "{table}: {found} rows, the manifest says {expected}"
            ));
        }
    }
    for hash in &manifest.attachments {
        if !attachments.contains_key(hash) {
            return Err(format!("attachment {hash} is missing"));
        }
    }
    Ok(Archive {
        manifest,
        platform,
        tables,
        attachments,
    })
}

/// What an import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    pub tenant: TenantId,
    pub slug: String,
    pub rows: usize,
    pub attachments: usize,
}

/// Why an import stopped (nothing of the tenant was written).
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{0}")]
    Refused(String),
    #[error("database: {0}")]
    Database(String),
}

impl From<db::DbError> for ImportError {
    fn from(e: db::DbError) -> Self {
        Self::Database(e.to_string())
    }
}

impl From<diesel::result::Error> for ImportError {
    fn from(e: diesel::result::Error) -> Self {
        Self::Database(e.to_string())
    }
}

/// Recreates the tenant of `archive` in this instance: same backend, same schema version, no
/// tenant with its id or slug yet. The attachments are stored first, then every row in one
/// transaction (nothing is left behind when it fails).
pub fn import(
    db: &Database,
    blobs: &dyn BlobStore,
    archive: &Archive,
    progress: &crate::progress::Progress,
) -> Result<Imported, ImportError> {
    let manifest = &archive.manifest;
    let backend = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    if manifest.backend != backend {
        return Err(ImportError::Refused(format!(
            "the export was made on {} and rows are kept as that backend stores them; import \
             it into a Stageflow on {}",
            manifest.backend, manifest.backend
        )));
    }
    for (hash, content) in &archive.attachments {
        let stored = blobs.writer(u64::MAX).and_then(|mut writer| {
            writer.write(content)?;
            writer.finish()
        });
        stored.map_err(|e| ImportError::Refused(format!("attachment {hash}: {e}")))?;
    }
    let tenant = manifest.tenant_id;
    db.write_blocking(|conn| {
        let version = tenant_data::schema_version(conn)?;
        if version != manifest.schema_version {
            return Err(ImportError::Refused(format!(
                "the export has schema version {}, this instance {version}: import it into a \
                 Stageflow of the exporting version",
                manifest.schema_version
            )));
        }
        if db::platform::find_tenant_by_slug(conn, &manifest.slug)?.is_some()
            || db::platform::find_tenant(conn, tenant)?.is_some()
        {
            return Err(ImportError::Refused(format!(
                "a tenant {} already exists here",
                manifest.slug
            )));
        }
        for name in ["plans", "accounts", "tenants"] {
            if let Some((_, row)) = archive.platform.iter().find(|(t, _)| t == name) {
                tenant_data::load_platform_row(conn, name, row)
                    .map_err(|e| ImportError::Database(format!("{name}: {e}")))?;
            }
        }
        let mut rows = 0;
        for table in tenant_data::tenant_tables(conn)? {
            for line in archive.tables.get(&table.name).into_iter().flatten() {
                tenant_data::load(conn, &table, line)
                    .map_err(|e| ImportError::Database(format!("{}: {e}", table.name)))?;
                rows += 1;
                progress.inc(1);
            }
        }
        tenant_data::settle_import(conn, tenant)?;
        Ok(rows)
    })
    .map(|rows| Imported {
        tenant,
        slug: manifest.slug.clone(),
        rows,
        attachments: archive.attachments.len(),
    })
}

/// What erasing a tenant removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erased {
    pub rows: usize,
    /// Attachment content no other tenant references, to remove from the store once the
    /// transaction has committed.
    pub contents: Vec<String>,
}

/// Erases a tenant (operator only): refused with 409 `/problems/export-required` until an
/// export of it is done; then every row of every tenant table goes, children first, the
/// tenant's row last, a count checks that nothing is left, and the platform audit log
/// records it — in one transaction.
pub fn erase(
    conn: &mut DbConnection,
    principal: &Principal,
    tenant: TenantId,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<Erased, ServiceError> {
    principal.operator()?;
    let current = db::platform::find_tenant(conn, tenant)?.ok_or(ServiceError::NotFound)?;
    crate::service::error::check_version(expected, current.version)?;
    if !rows::has_done(conn, tenant)? {
        return Err(ServiceError::conflict(
            ConflictKind::ExportRequired,
            "Export the tenant first (POST /api/v1/tenants/{tenant_id}/exports) and wait until \
             the export is done: deleting erases every row and attachment of the tenant.",
        ));
    }
    let tables = tenant_data::tenant_tables(conn)?;
    let own = tenant_data::attachment_contents(conn, tenant)?;
    let erased =
        tenant_data::erase(conn, &tables, tenant)? + tenant_data::erase_tenant_row(conn, tenant)?;
    for table in &tables {
        let left = tenant_data::count(conn, table, tenant)?;
        if left != 0 {
            return Err(ServiceError::Internal(format!(
                "{left} rows of {} left after erasing tenant {tenant}",
                table.name
            )));
        }
    }
    let shared = tenant_data::referenced_contents(conn, &own)?;
    let contents: Vec<String> = own.into_iter().filter(|h| !shared.contains(h)).collect();
    super::audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "tenant.deleted",
        ("tenant", tenant),
        json!({"slug": current.slug, "rows": erased, "attachments": contents.len(),
               "tables": tables.len()}),
        now.into(),
    )?;
    Ok(Erased {
        rows: erased,
        contents,
    })
}

/// Removes erased content from the store (after the erasure committed); how many went.
pub fn remove_contents(blobs: &dyn BlobStore, contents: &[String]) -> usize {
    // Content placed again after this instant (an upload of the same bytes meanwhile) stays.
    let before = std::time::SystemTime::now();
    contents
        .iter()
        .filter(|hash| blobs.remove_if_stale(hash, before).unwrap_or(false))
        .count()
}
