//! Backups (#17 point 1): generations of the database and the attachment content it
//! references, checked by restoring them, kept in two places with rotation. docs/operations.md.
//!
//! ```text
//! <dir>/generations/<id>/manifest.json          written last: a generation without one is
//! <dir>/generations/<id>/database.sqlite.gz     unfinished (SQLite: a VACUUM INTO copy, gzip)
//! <dir>/generations/<id>/database.pgdump        (PostgreSQL: pg_dump, custom format)
//! <dir>/generations/<id>.partial/               a generation being written
//! <dir>/blobs/<aa>/<bb>/<sha256>                attachment content, shared by generations
//! ```
//!
//! - The id is the start instant to the millisecond (`20261129T093000.250Z`), so names sort
//!   by age.
//! - Attachment content is addressed by its hash, so a generation copies only the content
//!   the previous ones lack (incremental), and rotation removes what no kept generation
//!   lists.
//! - The manifest records the row count of every table and the schema version as read from
//!   the copy itself, and a SHA-256 of every file: `verify` re-hashes the files, restores the
//!   copy into a scratch database, runs the integrity check and compares every count.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::db::backup as database;
pub use crate::db::backup::{BackupError, Inventory, PgTools};
use crate::progress::Progress;

use crate::config::{BackupSettings, Config};
use crate::db::DatabaseUrl;

/// The manifest's format; a later format is refused rather than misread.
pub const FORMAT: u32 = 1;
const MANIFEST: &str = "manifest.json";
const SQLITE_FILE: &str = "database.sqlite.gz";
const POSTGRES_FILE: &str = "database.pgdump";
const PARTIAL: &str = ".partial";

/// A file of a generation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Attachment content a generation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobEntry {
    pub sha256: String,
    pub bytes: u64,
}

/// What a generation holds (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// `sqlite` or `postgres`.
    pub backend: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    pub stageflow_version: String,
    pub schema_version: String,
    pub database: FileEntry,
    pub tables: BTreeMap<String, i64>,
    pub attachments: Vec<BlobEntry>,
}

impl Manifest {
    pub fn attachment_bytes(&self) -> u64 {
        self.attachments.iter().map(|b| b.bytes).sum()
    }

    pub fn rows(&self) -> i64 {
        self.tables.values().sum()
    }
}

/// What `verify` found.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    pub manifest: Manifest,
    /// Attachment content re-hashed.
    pub attachments: usize,
}

/// One of the two places generations are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// `STAGEFLOW_BACKUP_DIR`.
    Local,
    /// `STAGEFLOW_BACKUP_COPY_DIR`.
    Copy,
}

impl BackupSettings {
    /// The directory of a location; `None` for an unconfigured copy.
    pub fn root(&self, location: Location) -> Option<&Path> {
        match location {
            Location::Local => Some(&self.dir),
            Location::Copy => self.copy_dir.as_deref(),
        }
    }
}

fn generations_dir(root: &Path) -> PathBuf {
    root.join("generations")
}

fn blobs_dir(root: &Path) -> PathBuf {
    root.join("blobs")
}

fn attachments_root(config: &Config) -> PathBuf {
    crate::storage::attachments_dir(&config.data_dir)
}

/// Names the path an I/O error happened at.
trait At<T> {
    fn at(self, path: &Path) -> io::Result<T>;
}

impl<T> At<T> for io::Result<T> {
    fn at(self, path: &Path) -> io::Result<T> {
        self.map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
    }
}

/// SHA-256 and length of a file.
fn hash_file(path: &Path) -> io::Result<(String, u64)> {
    let mut reader = BufReader::new(File::open(path).at(path)?);
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 64 * 1024];
    let mut bytes = 0;
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        bytes += n as u64;
    }
    Ok((format!("{:x}", hasher.finalize()), bytes))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Copies `from` to `to` through a temp file beside it, synced, then renamed into place.
fn copy_atomically(from: &Path, to: &Path) -> io::Result<()> {
    let parent = to.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(parent).at(parent)?;
    let temp = to.with_extension("copying");
    {
        let mut out = File::create(&temp).at(&temp)?;
        io::copy(&mut File::open(from).at(from)?, &mut out).at(to)?;
        out.sync_all().at(&temp)?;
    }
    fs::rename(&temp, to).at(to)?;
    sync_dir(parent)
}

/// Copies the content listed into a content-addressed directory unless it is there already.
fn copy_blobs(from_root: &Path, to_root: &Path, blobs: &[BlobEntry]) -> Result<(), BackupError> {
    for blob in blobs {
        let (Some(from), Some(to)) = (
            crate::storage::content_path(from_root, &blob.sha256),
            crate::storage::content_path(to_root, &blob.sha256),
        ) else {
            return Err(BackupError::Invalid(format!(
                "{:?} is not a content hash",
                blob.sha256
            )));
        };
        if !to.exists() {
            copy_atomically(&from, &to)?;
        }
    }
    Ok(())
}

/// The finished generations of a location, oldest first.
pub fn list(settings: &BackupSettings, location: Location) -> Result<Vec<Manifest>, BackupError> {
    let Some(root) = settings.root(location) else {
        return Ok(Vec::new());
    };
    let dir = generations_dir(root);
    let mut out = Vec::new();
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e.into()),
    };
    for entry in entries {
        let path = entry?.path();
        let manifest = path.join(MANIFEST);
        if !entry_name(&path).ends_with(PARTIAL) && manifest.is_file() {
            out.push(read_manifest(&manifest)?);
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn read_manifest(path: &Path) -> Result<Manifest, BackupError> {
    let text = fs::read_to_string(path).at(path)?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| BackupError::Invalid(format!("{}: {e}", path.display())))?;
    if manifest.format != FORMAT {
        return Err(BackupError::Invalid(format!(
            "{}: format {} (this Stageflow reads {FORMAT})",
            path.display(),
            manifest.format
        )));
    }
    Ok(manifest)
}

/// Makes a generation in `STAGEFLOW_BACKUP_DIR`, copies it to `STAGEFLOW_BACKUP_COPY_DIR`
/// when one is set, and rotates both. Safe while the server runs.
pub fn create(
    config: &Config,
    now: DateTime<Utc>,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    let settings = &config.backup;
    let root = &settings.dir;
    let generations = generations_dir(root);
    fs::create_dir_all(&generations)?;
    remove_partials(&generations)?;
    let mut id = now.format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let mut n = 1;
    while generations.join(&id).exists() {
        n += 1;
        id = format!("{}-{n}", now.format("%Y%m%dT%H%M%S%.3fZ"));
    }
    let partial = generations.join(format!("{id}{PARTIAL}"));
    fs::create_dir_all(&partial)?;
    let made = write_generation(config, (root, &partial), &id, now, progress);
    let manifest = match made {
        Ok(manifest) => manifest,
        Err(e) => {
            let _ = fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    let done = generations.join(&id);
    fs::rename(&partial, &done)?;
    sync_dir(&generations)?;
    rotate(root, settings.keep)?;
    if let Some(copy) = &settings.copy_dir {
        copy_generation(root, copy, &manifest)?;
        rotate(copy, settings.copy_keep)?;
    }
    Ok(manifest)
}

fn remove_partials(generations: &Path) -> Result<(), BackupError> {
    for entry in fs::read_dir(generations)? {
        let path = entry?.path();
        if path.to_string_lossy().ends_with(PARTIAL) {
            fs::remove_dir_all(&path)?;
        }
    }
    Ok(())
}

/// The database copy and the attachment content into `dir`, then the manifest.
fn write_generation(
    config: &Config,
    (root, dir): (&Path, &Path),
    id: &str,
    started_at: DateTime<Utc>,
    progress: &Progress,
) -> Result<Manifest, BackupError> {
    let timer = std::time::Instant::now();
    let (backend, file, inventory) = match &config.database_url {
        DatabaseUrl::Sqlite(live) => {
            let copy = dir.join("database.sqlite");
            let inventory = database::sqlite_snapshot(live, &copy)?;
            let packed = dir.join(SQLITE_FILE);
            {
                let mut out = flate2::write::GzEncoder::new(
                    BufWriter::new(File::create(&packed)?),
                    flate2::Compression::default(),
                );
                io::copy(&mut File::open(&copy)?, &mut out)?;
                out.finish()?
                    .into_inner()
                    .map_err(|e| e.into_error())?
                    .sync_all()?;
            }
            fs::remove_file(&copy)?;
            ("sqlite", packed, inventory)
        }
        DatabaseUrl::Postgres(url) => {
            let tools = PgTools::locate(config.backup.pg_bin_dir.as_deref())?;
            let dump = dir.join(POSTGRES_FILE);
            let inventory = database::postgres_snapshot(url, &tools, &dump)?;
            File::open(&dump)?.sync_all()?;
            ("postgres", dump, inventory)
        }
    };
    let (sha256, bytes) = hash_file(&file)?;
    let store = attachments_root(config);
    let mut attachments = Vec::new();
    progress.restart(inventory.attachments.len() as u64);
    for hash in &inventory.attachments {
        progress.inc(1);
        let path = crate::storage::content_path(&store, hash)
            .ok_or_else(|| BackupError::Invalid(format!("{hash:?} is not a content hash")))?;
        let bytes = fs::metadata(&path)
            .map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("attachment content {hash} is missing: {e}"),
                )
            })?
            .len();
        attachments.push(BlobEntry {
            sha256: hash.clone(),
            bytes,
        });
    }
    copy_blobs(&store, &blobs_dir(root), &attachments)?;
    let manifest = Manifest {
        format: FORMAT,
        id: id.to_owned(),
        backend: backend.to_owned(),
        started_at,
        finished_at: started_at + chrono::Duration::from_std(timer.elapsed()).unwrap_or_default(),
        stageflow_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: inventory.schema_version,
        database: FileEntry {
            name: file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            bytes,
            sha256,
        },
        tables: inventory.tables,
        attachments,
    };
    write_manifest(dir, &manifest)?;
    Ok(manifest)
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST);
    let mut file = File::create(&path)?;
    let text =
        serde_json::to_vec_pretty(manifest).map_err(|e| BackupError::Invalid(e.to_string()))?;
    file.write_all(&text)?;
    file.sync_all()?;
    sync_dir(dir)?;
    Ok(())
}

/// Copies a finished generation and its attachment content to another location.
fn copy_generation(from: &Path, to: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    copy_blobs(&blobs_dir(from), &blobs_dir(to), &manifest.attachments)?;
    let generations = generations_dir(to);
    fs::create_dir_all(&generations)?;
    remove_partials(&generations)?;
    let partial = generations.join(format!("{}{PARTIAL}", manifest.id));
    fs::create_dir_all(&partial)?;
    let source = generations_dir(from).join(&manifest.id);
    for name in [manifest.database.name.as_str(), MANIFEST] {
        copy_atomically(&source.join(name), &partial.join(name))?;
    }
    let done = generations.join(&manifest.id);
    if done.exists() {
        fs::remove_dir_all(&done)?;
    }
    fs::rename(&partial, &done)?;
    sync_dir(&generations)?;
    Ok(())
}

/// Keeps the newest `keep` generations of a location and the content they list.
fn rotate(root: &Path, keep: usize) -> Result<(), BackupError> {
    let generations = generations_dir(root);
    let mut ids: Vec<String> = Vec::new();
    for entry in fs::read_dir(&generations).at(&generations)? {
        let path = entry?.path();
        if !entry_name(&path).ends_with(PARTIAL) && path.join(MANIFEST).is_file() {
            ids.push(entry_name(&path));
        }
    }
    ids.sort();
    let excess = ids.len().saturating_sub(keep);
    for id in &ids[..excess] {
        fs::remove_dir_all(generations.join(id))?;
    }
    let mut wanted = BTreeSet::new();
    for id in &ids[excess..] {
        for blob in read_manifest(&generations.join(id).join(MANIFEST))?.attachments {
            wanted.insert(blob.sha256);
        }
    }
    remove_unlisted_blobs(&blobs_dir(root), &wanted)
}

fn entry_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn remove_unlisted_blobs(blobs: &Path, wanted: &BTreeSet<String>) -> Result<(), BackupError> {
    let Ok(shards) = fs::read_dir(blobs) else {
        return Ok(());
    };
    for aa in shards {
        let aa = aa?.path();
        if !aa.is_dir() {
            continue;
        }
        for bb in fs::read_dir(&aa)? {
            let bb = bb?.path();
            if !bb.is_dir() {
                continue;
            }
            for file in fs::read_dir(&bb)? {
                let file = file?.path();
                if !wanted.contains(&entry_name(&file)) {
                    fs::remove_file(&file)?;
                }
            }
        }
    }
    Ok(())
}

/// The generation `id` of a location, or its newest.
fn find(
    settings: &BackupSettings,
    location: Location,
    id: Option<&str>,
) -> Result<(PathBuf, Manifest), BackupError> {
    let root = settings.root(location).ok_or_else(|| {
        BackupError::NoGeneration("STAGEFLOW_BACKUP_COPY_DIR (not set)".to_owned())
    })?;
    let all = list(settings, location)?;
    let manifest = match id {
        Some(id) => all
            .into_iter()
            .find(|m| m.id == id)
            .ok_or_else(|| BackupError::NoSuchGeneration(id.to_owned()))?,
        None => all
            .into_iter()
            .next_back()
            .ok_or_else(|| BackupError::NoGeneration(root.display().to_string()))?,
    };
    Ok((root.to_path_buf(), manifest))
}

/// Checks a generation: every file against its hash, then the database copy restored into a
/// scratch database (SQLite: a temp file and its integrity check; PostgreSQL: a scratch
/// database on the configured server, dropped afterwards) against the manifest's schema
/// version and row counts, and every attachment the copy references against the manifest.
pub fn verify(
    config: &Config,
    location: Location,
    id: Option<&str>,
    progress: &Progress,
) -> Result<Verified, BackupError> {
    let (root, manifest) = find(&config.backup, location, id)?;
    let dir = generations_dir(&root).join(&manifest.id);
    let file = dir.join(&manifest.database.name);
    let (sha256, bytes) = hash_file(&file)?;
    if (sha256.as_str(), bytes) != (manifest.database.sha256.as_str(), manifest.database.bytes) {
        return Err(BackupError::Invalid(format!(
            "{} does not match its checksum",
            manifest.database.name
        )));
    }
    progress.restart(manifest.attachments.len() as u64);
    for blob in &manifest.attachments {
        progress.inc(1);
        let path =
            crate::storage::content_path(&blobs_dir(&root), &blob.sha256).ok_or_else(|| {
                BackupError::Invalid(format!("{:?} is not a content hash", blob.sha256))
            })?;
        let found = hash_file(&path).map_err(|e| {
            BackupError::Invalid(format!(
                "attachment content {} is missing: {e}",
                blob.sha256
            ))
        })?;
        if found != (blob.sha256.clone(), blob.bytes) {
            return Err(BackupError::Invalid(format!(
                "attachment content {} does not match its checksum",
                blob.sha256
            )));
        }
    }
    let restored = restore_scratch(config, &manifest, &file)?;
    if restored.schema_version != manifest.schema_version {
        return Err(BackupError::Invalid(format!(
            "the copy's schema version is {:?}, the manifest says {:?}",
            restored.schema_version, manifest.schema_version
        )));
    }
    if restored.tables != manifest.tables {
        let differing: Vec<String> = manifest
            .tables
            .iter()
            .filter(|(t, n)| restored.tables.get(*t) != Some(*n))
            .map(|(t, n)| format!("{t}: {n} listed, {:?} restored", restored.tables.get(t)))
            .collect();
        return Err(BackupError::Invalid(format!(
            "row counts differ: {}",
            differing.join(", ")
        )));
    }
    let listed: BTreeSet<&String> = manifest.attachments.iter().map(|b| &b.sha256).collect();
    if let Some(missing) = restored.attachments.iter().find(|h| !listed.contains(h)) {
        return Err(BackupError::Invalid(format!(
            "the copy references attachment content {missing} the backup lacks"
        )));
    }
    Ok(Verified {
        attachments: manifest.attachments.len(),
        manifest,
    })
}

/// Unpacks a SQLite copy into `to`.
fn unpack_sqlite(file: &Path, to: &Path) -> Result<(), BackupError> {
    let mut input = flate2::read::GzDecoder::new(BufReader::new(File::open(file)?));
    let mut out = File::create(to)?;
    io::copy(&mut input, &mut out)
        .map_err(|e| BackupError::Invalid(format!("{} cannot be unpacked: {e}", file.display())))?;
    out.sync_all()?;
    Ok(())
}

fn restore_scratch(
    config: &Config,
    manifest: &Manifest,
    file: &Path,
) -> Result<Inventory, BackupError> {
    match (manifest.backend.as_str(), &config.database_url) {
        ("sqlite", _) => {
            let scratch = tempfile::tempdir()?;
            let path = scratch.path().join("verify.sqlite");
            unpack_sqlite(file, &path)?;
            database::sqlite_check(&path)
        }
        ("postgres", DatabaseUrl::Postgres(url)) => {
            let tools = PgTools::locate(config.backup.pg_bin_dir.as_deref())?;
            database::postgres_check(url, &tools, file)
        }
        (backend, _) => Err(BackupError::Invalid(format!(
            "a {backend} backup needs a {backend} DATABASE_URL to be checked"
        ))),
    }
}

/// What a restore did, or would do.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub manifest: Manifest,
    /// The rows the database held before (what a dry run would replace).
    pub replaced: BTreeMap<String, i64>,
    /// Attachment content copied back into the store (or, on a dry run, missing from it).
    pub attachments_copied: usize,
    pub dry_run: bool,
}

/// Replaces the configured database with a generation (after verifying it) and copies back
/// the attachment content the store lacks. Every server on the database must be stopped
/// first. With `dry_run`, only verifies and reports what would be replaced.
pub fn restore(
    config: &Config,
    location: Location,
    id: &str,
    dry_run: bool,
    progress: &Progress,
) -> Result<Restored, BackupError> {
    let Verified { manifest, .. } = verify(config, location, Some(id), progress)?;
    let (root, _) = find(&config.backup, location, Some(id))?;
    let file = generations_dir(&root)
        .join(&manifest.id)
        .join(&manifest.database.name);
    let replaced = current_rows(config)?;
    let store = attachments_root(config);
    let missing: Vec<BlobEntry> = manifest
        .attachments
        .iter()
        .filter(|b| crate::storage::content_path(&store, &b.sha256).is_some_and(|p| !p.exists()))
        .cloned()
        .collect();
    if !dry_run {
        match (&config.database_url, manifest.backend.as_str()) {
            (DatabaseUrl::Sqlite(live), "sqlite") => {
                let parent = live.parent().unwrap_or(Path::new("."));
                fs::create_dir_all(parent)?;
                let temp = live.with_extension("restoring");
                unpack_sqlite(&file, &temp)?;
                for suffix in ["-wal", "-shm"] {
                    let side = PathBuf::from(format!("{}{suffix}", live.display()));
                    if side.exists() {
                        fs::remove_file(side)?;
                    }
                }
                fs::rename(&temp, live)?;
                sync_dir(parent)?;
            }
            (DatabaseUrl::Postgres(url), "postgres") => {
                let tools = PgTools::locate(config.backup.pg_bin_dir.as_deref())?;
                database::postgres_restore(url, &tools, &file)?;
            }
            (_, backend) => {
                return Err(BackupError::Invalid(format!(
                    "a {backend} backup restores only into a {backend} database"
                )));
            }
        }
        copy_blobs(&blobs_dir(&root), &store, &missing)?;
    }
    Ok(Restored {
        manifest,
        replaced,
        attachments_copied: missing.len(),
        dry_run,
    })
}

/// Rows per table of the configured database now (empty when it does not exist yet).
fn current_rows(config: &Config) -> Result<BTreeMap<String, i64>, BackupError> {
    use diesel::Connection as _;
    match &config.database_url {
        DatabaseUrl::Sqlite(path) if !path.exists() => Ok(BTreeMap::new()),
        DatabaseUrl::Sqlite(path) => {
            let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())
                .map_err(|e| BackupError::Database(e.to_string()))?;
            Ok(database::sqlite_inventory(&mut conn)
                .map(|i| i.tables)
                .unwrap_or_default())
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = diesel::PgConnection::establish(url)
                .map_err(|e| BackupError::Database(e.to_string()))?;
            Ok(database::postgres_inventory(&mut conn)
                .map(|i| i.tables)
                .unwrap_or_default())
        }
    }
}

/// A backup run as recorded, and the check of its generation.
#[derive(Debug)]
pub struct Recorded {
    pub run: crate::db::backup::BackupRunRow,
    /// The generation, when the backup succeeded.
    pub manifest: Option<Manifest>,
    /// The backup's failure, else the check's (if it failed).
    pub error: Option<BackupError>,
}

/// Backs up, verifies the new generation, and records both in `backup_runs` (a failure too):
/// what the `backup.run` job and `stageflow backup` do.
pub fn run_and_record(
    db: &crate::db::Database,
    config: &Config,
    now: DateTime<Utc>,
    made_by: &str,
    progress: &Progress,
) -> Result<Recorded, crate::db::DbError> {
    use crate::db::backup::BackupRunRow;
    let timer = std::time::Instant::now();
    let created = create(config, now, progress);
    let finished_at = now + chrono::Duration::from_std(timer.elapsed()).unwrap_or_default();
    let mut run = BackupRunRow {
        id: crate::domain::ids::BackupRunId(uuid::Uuid::now_v7()),
        generation: None,
        started_at: now.into(),
        finished_at: finished_at.into(),
        status: "failed".to_owned(),
        error: None,
        database_bytes: 0,
        row_count: 0,
        attachments: 0,
        attachment_bytes: 0,
        copied: false,
        verified_at: None,
        verified: None,
        verify_error: None,
        made_by: made_by.to_owned(),
    };
    let (manifest, mut error) = match created {
        Ok(manifest) => {
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            run.generation = Some(manifest.id.clone());
            run.status = "ok".to_owned();
            run.database_bytes = count(manifest.database.bytes);
            run.row_count = manifest.rows();
            run.attachments = count(manifest.attachments.len() as u64);
            run.attachment_bytes = count(manifest.attachment_bytes());
            run.copied = config.backup.copy_dir.is_some();
            (Some(manifest), None)
        }
        Err(e) => {
            run.error = Some(e.to_string());
            (None, Some(e))
        }
    };
    db.write_blocking(|conn| -> Result<(), crate::db::DbError> {
        Ok(crate::db::backup::insert_run(conn, &run)?)
    })?;
    if let Some(manifest) = &manifest {
        let checked = verify(config, Location::Local, Some(&manifest.id), progress);
        let at = finished_at + chrono::Duration::from_std(timer.elapsed()).unwrap_or_default();
        let failure = checked.err();
        let text = failure.as_ref().map(ToString::to_string);
        db.write_blocking(|conn| -> Result<(), crate::db::DbError> {
            Ok(crate::db::backup::record_verify(
                conn,
                run.id,
                at.into(),
                text.as_deref(),
            )?)
        })?;
        run.verified_at = Some(at.into());
        run.verified = Some(failure.is_none());
        run.verify_error = text;
        error = failure;
    }
    Ok(Recorded {
        run,
        manifest,
        error,
    })
}

/// Recorded runs, newest first.
pub fn runs(
    conn: &mut crate::db::DbConnection,
    before: Option<crate::domain::ids::BackupRunId>,
    limit: i64,
) -> Result<Vec<crate::db::backup::BackupRunRow>, super::error::ServiceError> {
    Ok(crate::db::backup::list_runs(conn, before, limit)?)
}

/// The newest successful run.
pub fn last_success(
    conn: &mut crate::db::DbConnection,
) -> Result<Option<crate::db::backup::BackupRunRow>, super::error::ServiceError> {
    Ok(crate::db::backup::last_success(conn)?)
}
