//! Content storage for ticket attachments, kept outside the database.
//!
//! Attachment bytes would bloat the database, its backups and its replication stream, so only a
//! reference lives in a row and the content lives here. Content is addressed by its SHA-256:
//!
//! ```text
//! <root>/tmp/<random>.part            uploads in progress
//! <root>/<aa>/<bb>/<64 hex digits>    finished content; aa, bb = the first two hash bytes
//! ```
//!
//! - Addressing by hash deduplicates for free (the same file attached to many tickets is stored
//!   once), makes a stored file immutable (a name can never point at other bytes), and lets a
//!   backup or a consistency check verify every file against its own name.
//! - The two shard levels keep any one directory to a few thousand entries even with millions of
//!   files, which is where many filesystems and tools start to slow down.
//! - An upload is streamed into `tmp/` (same filesystem as its destination, so the final
//!   `rename` is atomic) and fsynced: it is then *staged* (complete, hashed, still invisible).
//!   Only [`StagedBlob::commit`] renames it into place, which the attachment use case does once
//!   the database has accepted the row (rights, storage cap). A reader therefore sees either
//!   nothing or the whole content, never a partial file, even across a crash; a refused,
//!   broken-off or failed upload leaves nothing, because the temp file is removed when its
//!   writer or staged blob is dropped.
//! - Removing content is the garbage collector's job (`service::tickets::collect_blobs`),
//!   which consults the database: with deduplication a file may be referenced by several
//!   rows. The store offers it the two halves it needs — content untouched for a grace period,
//!   and a removal that re-checks the age under the lock that commits take — and removes stale
//!   leftovers in `tmp/` (a crash mid-upload). A commit refreshes the content's mtime, so
//!   content an upload is about to reference is never "untouched for the grace period".
//!
//! Everything sits behind [`BlobStore`] so that an object store (S3 and the like, where a
//! multipart upload plays the role of the temp file) can be added without touching callers.
//! The I/O is blocking `std::fs`; callers run it on a blocking thread pool.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// Subdirectory of the root holding uploads in progress. Not two hex digits, so it can never
/// collide with a shard directory.
const TMP_DIR: &str = "tmp";

/// Chunks from an HTTP body are often small; buffering turns them into fewer, larger writes.
const WRITE_BUFFER: usize = 64 * 1024;

/// Why a storage operation failed. The text is for logs only; clients get a generic error.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// More than `limit` bytes were written; the partial upload has been discarded.
    #[error("content exceeds the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    /// No content with that hash, or the argument is not a well-formed hash.
    #[error("content not found")]
    NotFound,
    #[error("storage I/O error: {0}")]
    Io(#[from] io::Error),
}

/// Where finished content can be found again: its hash and its length in bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BlobRef {
    /// SHA-256 of the content, 64 lowercase hex digits.
    pub sha256: String,
    pub size: u64,
}

/// Where the attachment content of a node lives: `<STAGEFLOW_DATA_DIR>/attachments`.
pub fn attachments_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("attachments")
}

/// A content-addressed store of immutable byte strings.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Begins a streamed upload that refuses to grow beyond `limit` bytes.
    fn writer(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StorageError>;

    /// Reads content back. Anything that is not 64 lowercase hex digits is [`StorageError::NotFound`],
    /// so a caller-supplied string can never name a path outside the store.
    fn open(&self, sha256_hex: &str) -> Result<Box<dyn Read + Send>, StorageError>;

    /// Whether content with this hash is stored; `false` for a malformed hash.
    fn exists(&self, sha256_hex: &str) -> bool;

    /// Up to `limit` hashes of content last placed or referenced again before `before`: the
    /// candidates of the garbage collector, which asks the database which are still referenced.
    fn stale_contents(&self, before: SystemTime, limit: usize)
    -> Result<Vec<String>, StorageError>;

    /// Removes content unless it was placed or referenced again at or after `before`. The check
    /// and the removal hold the lock [`StagedBlob::commit`] takes, so an upload committing the
    /// same content either refreshes it first (and it stays) or finds it gone (and places its
    /// own copy). True if removed.
    fn remove_if_stale(&self, sha256_hex: &str, before: SystemTime) -> Result<bool, StorageError>;

    /// Removes uploads in progress untouched since `before` (left behind by a crash); returns
    /// how many.
    fn remove_stale_uploads(&self, before: SystemTime) -> Result<usize, StorageError>;
}

/// One upload in progress. Dropping it without [`stage`](BlobWriter::stage) discards the data.
pub trait BlobWriter: Send + fmt::Debug {
    /// Appends a chunk. Fails with [`StorageError::TooLarge`] as soon as the total would exceed
    /// the limit; the partial data is discarded then and every later call fails the same way.
    fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError>;

    /// Makes the upload durable and names its hash, without making it visible: the content
    /// stays a temporary file until [`StagedBlob::commit`], and dropping the staged blob
    /// removes it.
    fn stage(self: Box<Self>) -> Result<Box<dyn StagedBlob>, StorageError>;

    /// [`stage`](BlobWriter::stage) and [`commit`](StagedBlob::commit) in one go.
    fn finish(self: Box<Self>) -> Result<BlobRef, StorageError> {
        self.stage()?.commit()
    }
}

/// A complete, durable upload that is not yet visible under its hash.
pub trait StagedBlob: Send + fmt::Debug {
    fn blob(&self) -> &BlobRef;

    /// Makes the content visible under its hash (atomically) and marks it as just referenced,
    /// so that the garbage collector's grace period starts again. If identical content is
    /// already stored, the new copy is dropped and the existing one is used.
    fn commit(self: Box<Self>) -> Result<BlobRef, StorageError>;
}

/// [`BlobStore`] on a local (or mounted) filesystem.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
    /// Held while content is placed or refreshed, and while the collector checks and removes
    /// it: one process's uploads and collector never interleave on one hash.
    placing: Arc<Mutex<()>>,
}

impl FsBlobStore {
    /// Uses `root` as the store, creating it and its temp directory if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(root.join(TMP_DIR))?;
        Ok(Self {
            root,
            placing: Arc::default(),
        })
    }

    /// The store's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn content_path(&self, sha256_hex: &str) -> Option<PathBuf> {
        content_path(&self.root, sha256_hex)
    }
}

impl BlobStore for FsBlobStore {
    fn writer(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StorageError> {
        // 128 random bits make a collision between concurrent uploads (even from several
        // processes sharing the directory) practically impossible; `create_new` turns the
        // impossible case into an error instead of two uploads sharing one file.
        let tmp_path = self
            .root
            .join(TMP_DIR)
            .join(format!("{:032x}.part", rand::random::<u128>()));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp_path)?;
        Ok(Box::new(FsBlobWriter {
            root: self.root.clone(),
            placing: Arc::clone(&self.placing),
            tmp: TempFile::new(tmp_path),
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            hasher: Sha256::new(),
            size: 0,
            limit,
        }))
    }

    fn open(&self, sha256_hex: &str) -> Result<Box<dyn Read + Send>, StorageError> {
        let path = self
            .content_path(sha256_hex)
            .ok_or(StorageError::NotFound)?;
        match File::open(path) {
            Ok(file) => Ok(Box::new(file)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(StorageError::NotFound),
            Err(e) => Err(e.into()),
        }
    }

    fn exists(&self, sha256_hex: &str) -> bool {
        self.content_path(sha256_hex)
            .is_some_and(|path| path.is_file())
    }

    fn stale_contents(
        &self,
        before: SystemTime,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        let mut found = Vec::new();
        for aa in shard_dirs(&self.root)? {
            for bb in shard_dirs(&aa)? {
                for entry in fs::read_dir(&bb)? {
                    if found.len() >= limit {
                        return Ok(found);
                    }
                    let entry = entry?;
                    let name = entry.file_name().to_string_lossy().into_owned();
                    if is_sha256_hex(&name) && modified_before(&entry.path(), before)? {
                        found.push(name);
                    }
                }
            }
        }
        Ok(found)
    }

    fn remove_if_stale(&self, sha256_hex: &str, before: SystemTime) -> Result<bool, StorageError> {
        let path = self
            .content_path(sha256_hex)
            .ok_or(StorageError::NotFound)?;
        let _placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
        if !modified_before(&path, before)? {
            return Ok(false);
        }
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    fn remove_stale_uploads(&self, before: SystemTime) -> Result<usize, StorageError> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join(TMP_DIR))? {
            let path = entry?.path();
            if path.is_file() && modified_before(&path, before)? {
                match fs::remove_file(&path) {
                    Ok(()) => removed += 1,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(removed)
    }
}

/// The two-hex-digit subdirectories of `dir` (never `tmp/`).
fn shard_dirs(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let is_shard = name.len() == 2
            && name
                .to_str()
                .is_some_and(|n| n.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        if is_shard && entry.file_type()?.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Whether `path` was last modified before `before`; `false` when it is gone.
fn modified_before(path: &Path, before: SystemTime) -> io::Result<bool> {
    match fs::metadata(path) {
        Ok(meta) => Ok(meta.modified()? < before),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// A temporary file that is removed when it goes away, unless it was moved into place.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
    /// Whether `path` still has to be removed.
    exists: bool,
}

impl TempFile {
    fn new(path: PathBuf) -> Self {
        Self { path, exists: true }
    }

    /// The file is no longer this guard's to remove (renamed into place or handed over).
    fn release(&mut self) -> PathBuf {
        self.exists = false;
        self.path.clone()
    }

    fn remove(&mut self) {
        if !self.exists {
            return;
        }
        self.exists = false;
        if let Err(e) = fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            // Not fatal: an orphan in tmp/ is never referenced, and the collector removes it.
            log::warn!("could not remove temp upload {}: {e}", self.path.display());
        }
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        self.remove();
    }
}

struct FsBlobWriter {
    root: PathBuf,
    placing: Arc<Mutex<()>>,
    tmp: TempFile,
    /// `None` once the upload was refused as too large, or handed over by `stage`.
    file: Option<BufWriter<File>>,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl fmt::Debug for FsBlobWriter {
    // The hasher state and the buffered bytes are noise in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobWriter")
            .field("tmp_path", &self.tmp.path)
            .field("size", &self.size)
            .field("limit", &self.limit)
            .field("open", &self.file.is_some())
            .finish()
    }
}

impl FsBlobWriter {
    /// Throws the upload away: unwritten buffer, file handle and temp file.
    fn discard(&mut self) {
        if let Some(writer) = self.file.take() {
            // `into_parts` drops the buffer without flushing it into a file about to be deleted.
            drop(writer.into_parts());
        }
        self.tmp.remove();
    }

    fn too_large(&self) -> StorageError {
        StorageError::TooLarge { limit: self.limit }
    }
}

impl BlobWriter for FsBlobWriter {
    fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError> {
        let Some(file) = self.file.as_mut() else {
            return Err(self.too_large());
        };
        let new_size = u64::try_from(chunk.len())
            .ok()
            .and_then(|len| self.size.checked_add(len))
            .filter(|&total| total <= self.limit);
        let Some(new_size) = new_size else {
            self.discard();
            return Err(self.too_large());
        };
        if let Err(e) = file.write_all(chunk) {
            // A half-written chunk would make the content disagree with the hash.
            self.discard();
            return Err(e.into());
        }
        self.hasher.update(chunk);
        self.size = new_size;
        Ok(())
    }

    fn stage(mut self: Box<Self>) -> Result<Box<dyn StagedBlob>, StorageError> {
        let writer = self.file.take().ok_or_else(|| self.too_large())?;
        let file = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        // Durable before visible: after a crash the name must never point at missing bytes.
        file.sync_all()?;
        drop(file);
        let sha256 = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        // From here the staged blob owns the temp file (and removes it if dropped).
        let tmp = TempFile::new(self.tmp.release());
        Ok(Box::new(FsStagedBlob {
            root: self.root.clone(),
            placing: Arc::clone(&self.placing),
            tmp,
            blob: BlobRef {
                sha256,
                size: self.size,
            },
        }))
    }
}

impl Drop for FsBlobWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

#[derive(Debug)]
struct FsStagedBlob {
    root: PathBuf,
    placing: Arc<Mutex<()>>,
    tmp: TempFile,
    blob: BlobRef,
}

impl StagedBlob for FsStagedBlob {
    fn blob(&self) -> &BlobRef {
        &self.blob
    }

    fn commit(mut self: Box<Self>) -> Result<BlobRef, StorageError> {
        let target = content_path(&self.root, &self.blob.sha256)
            .ok_or_else(|| io::Error::other("SHA-256 digest did not format as 64 hex digits"))?;
        // On error, dropping `self` removes the temp file.
        self.place(&target)?;
        Ok(self.blob.clone())
    }
}

impl FsStagedBlob {
    /// Moves the temp file to `target`, unless identical content is already there; either
    /// way the content's mtime becomes now (see [`BlobStore::remove_if_stale`]).
    fn place(&mut self, target: &Path) -> Result<(), StorageError> {
        let shard = target
            .parent()
            .ok_or_else(|| io::Error::other("content path has no parent directory"))?;
        let shard_existed = shard.is_dir();
        if !shard_existed {
            fs::create_dir_all(shard)?;
        }
        {
            let _placing = self.placing.lock().unwrap_or_else(|p| p.into_inner());
            // Same hash and same length: the same content (the name is the hash of what was
            // renamed there). A different length means a damaged copy, which the rename
            // replaces.
            match fs::metadata(target) {
                Ok(existing) if existing.is_file() && existing.len() == self.blob.size => {
                    touch(target)?;
                    self.tmp.remove();
                    return Ok(());
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            // Another process sharing the directory may win the race to this rename;
            // replacing its file with identical bytes is harmless.
            fs::rename(&self.tmp.path, target)?;
            self.tmp.release();
            touch(target)?;
        }
        // The rename is durable only once the directory entries are.
        sync_dir(shard)?;
        if !shard_existed {
            let mut dir = shard;
            while let Some(parent) = dir.parent() {
                sync_dir(parent)?;
                if parent == self.root {
                    break;
                }
                dir = parent;
            }
        }
        Ok(())
    }
}

/// Sets a file's modification time to now.
fn touch(path: &Path) -> io::Result<()> {
    OpenOptions::new()
        .append(true)
        .open(path)?
        .set_modified(SystemTime::now())
}

/// `<root>/<aa>/<bb>/<hash>`, or `None` unless `sha256_hex` is a well-formed hash.
pub(crate) fn content_path(root: &Path, sha256_hex: &str) -> Option<PathBuf> {
    if !is_sha256_hex(sha256_hex) {
        return None;
    }
    let aa = sha256_hex.get(..2)?;
    let bb = sha256_hex.get(2..4)?;
    Some(root.join(aa).join(bb).join(sha256_hex))
}

/// Exactly 64 lowercase hex digits: the only strings that may become part of a path.
fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file; NTFS journals the rename itself.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABC_SHA256: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn store() -> (tempfile::TempDir, FsBlobStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = FsBlobStore::open(dir.path().join("blobs")).unwrap();
        (dir, store)
    }

    fn put(store: &FsBlobStore, chunks: &[&[u8]]) -> BlobRef {
        let mut writer = store.writer(1024).unwrap();
        for chunk in chunks {
            writer.write(chunk).unwrap();
        }
        writer.finish().unwrap()
    }

    fn read_all(store: &FsBlobStore, sha256: &str) -> Vec<u8> {
        let mut content = Vec::new();
        store
            .open(sha256)
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        content
    }

    fn tmp_entries(store: &FsBlobStore) -> usize {
        fs::read_dir(store.root().join(TMP_DIR)).unwrap().count()
    }

    /// Every file below the root except the temp directory.
    fn content_files(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                if path.file_name() != Some(TMP_DIR.as_ref()) {
                    content_files(&path, out);
                }
            } else {
                out.push(path);
            }
        }
    }

    #[test]
    fn open_creates_root_and_tmp_and_can_be_repeated() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("a").join("b");
        FsBlobStore::open(&root).unwrap();
        assert!(root.join(TMP_DIR).is_dir());
        FsBlobStore::open(&root).unwrap();
    }

    #[test]
    fn round_trip_in_chunks() {
        let (_dir, store) = store();
        let blob = put(&store, &[b"hello, ", b"", b"world"]);
        assert_eq!(blob.size, 12);
        assert_eq!(read_all(&store, &blob.sha256), b"hello, world");
        assert!(store.exists(&blob.sha256));
        assert_eq!(tmp_entries(&store), 0);
    }

    #[test]
    fn known_hashes_and_layout() {
        let (_dir, store) = store();
        let blob = put(&store, &[b"a", b"bc"]);
        assert_eq!(
            blob,
            BlobRef {
                sha256: ABC_SHA256.to_owned(),
                size: 3
            }
        );
        assert!(
            store
                .root()
                .join("ba")
                .join("78")
                .join(ABC_SHA256)
                .is_file()
        );

        let empty = put(&store, &[]);
        assert_eq!(empty.sha256, EMPTY_SHA256);
        assert_eq!(empty.size, 0);
        assert!(read_all(&store, EMPTY_SHA256).is_empty());
    }

    #[test]
    fn identical_content_is_stored_once() {
        let (_dir, store) = store();
        let first = put(&store, &[b"same bytes"]);
        let second = put(&store, &[b"same ", b"bytes"]);
        assert_eq!(first, second);

        let mut files = Vec::new();
        content_files(store.root(), &mut files);
        assert_eq!(
            files,
            vec![content_path(store.root(), &first.sha256).unwrap()]
        );
        assert_eq!(tmp_entries(&store), 0);
    }

    #[test]
    fn damaged_copy_is_replaced() {
        let (_dir, store) = store();
        let blob = put(&store, &[b"abc"]);
        fs::write(content_path(store.root(), &blob.sha256).unwrap(), b"ab").unwrap();
        put(&store, &[b"abc"]);
        assert_eq!(read_all(&store, ABC_SHA256), b"abc");
    }

    #[test]
    fn exactly_the_limit_is_accepted() {
        let (_dir, store) = store();
        let mut writer = store.writer(3).unwrap();
        writer.write(b"ab").unwrap();
        writer.write(b"c").unwrap();
        assert_eq!(writer.finish().unwrap().sha256, ABC_SHA256);
    }

    #[test]
    fn one_byte_over_the_limit_is_refused_and_discarded() {
        let (_dir, store) = store();
        let mut writer = store.writer(3).unwrap();
        writer.write(b"ab").unwrap();
        assert!(matches!(
            writer.write(b"cd"),
            Err(StorageError::TooLarge { limit: 3 })
        ));
        // Refused at once, not at `finish`: the temp file is already gone.
        assert_eq!(tmp_entries(&store), 0);
        assert!(matches!(
            writer.write(b""),
            Err(StorageError::TooLarge { limit: 3 })
        ));
        assert!(matches!(
            writer.finish(),
            Err(StorageError::TooLarge { limit: 3 })
        ));

        let mut files = Vec::new();
        content_files(store.root(), &mut files);
        assert!(files.is_empty());
    }

    #[test]
    fn zero_limit_refuses_any_byte() {
        let (_dir, store) = store();
        let mut writer = store.writer(0).unwrap();
        assert!(matches!(
            writer.write(b"x"),
            Err(StorageError::TooLarge { limit: 0 })
        ));
        assert_eq!(tmp_entries(&store), 0);
    }

    #[test]
    fn dropped_writer_leaves_nothing_behind() {
        let (_dir, store) = store();
        let mut writer = store.writer(1024).unwrap();
        writer.write(b"never finished").unwrap();
        assert_eq!(tmp_entries(&store), 1);
        drop(writer);
        assert_eq!(tmp_entries(&store), 0);

        let mut files = Vec::new();
        content_files(store.root(), &mut files);
        assert!(files.is_empty());
    }

    fn set_mtime(path: &Path, at: SystemTime) {
        OpenOptions::new()
            .append(true)
            .open(path)
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    fn hours_ago(hours: u64) -> SystemTime {
        SystemTime::now() - std::time::Duration::from_secs(hours * 3600)
    }

    #[test]
    fn staged_content_is_invisible_until_committed_and_dropping_it_leaves_nothing() {
        let (_dir, store) = store();
        let mut writer = store.writer(1024).unwrap();
        writer.write(b"abc").unwrap();
        let staged = writer.stage().unwrap();
        assert_eq!(staged.blob().sha256, ABC_SHA256);
        assert!(!store.exists(ABC_SHA256));
        assert_eq!(tmp_entries(&store), 1);
        drop(staged);
        assert_eq!(tmp_entries(&store), 0);
        assert!(!store.exists(ABC_SHA256));

        let mut writer = store.writer(1024).unwrap();
        writer.write(b"abc").unwrap();
        let blob = writer.stage().unwrap().commit().unwrap();
        assert_eq!(blob.size, 3);
        assert_eq!(read_all(&store, ABC_SHA256), b"abc");
        assert_eq!(tmp_entries(&store), 0);
    }

    #[test]
    fn committing_present_content_refreshes_it_for_the_collector() {
        let (_dir, store) = store();
        put(&store, &[b"abc"]);
        let path = content_path(store.root(), ABC_SHA256).unwrap();
        set_mtime(&path, hours_ago(48));
        assert_eq!(
            store.stale_contents(hours_ago(24), 10).unwrap(),
            vec![ABC_SHA256.to_owned()]
        );
        put(&store, &[b"abc"]);
        assert!(store.stale_contents(hours_ago(24), 10).unwrap().is_empty());
        assert!(!store.remove_if_stale(ABC_SHA256, hours_ago(24)).unwrap());
        assert!(store.exists(ABC_SHA256));
    }

    #[test]
    fn only_content_untouched_since_the_cut_off_is_removed() {
        let (_dir, store) = store();
        let old = put(&store, &[b"old"]);
        let fresh = put(&store, &[b"fresh"]);
        set_mtime(
            &content_path(store.root(), &old.sha256).unwrap(),
            hours_ago(48),
        );
        assert_eq!(
            store.stale_contents(hours_ago(24), 10).unwrap(),
            vec![old.sha256.clone()]
        );
        assert!(store.stale_contents(hours_ago(24), 0).unwrap().is_empty());
        assert!(!store.remove_if_stale(&fresh.sha256, hours_ago(24)).unwrap());
        assert!(store.remove_if_stale(&old.sha256, hours_ago(24)).unwrap());
        assert!(!store.remove_if_stale(&old.sha256, hours_ago(24)).unwrap());
        assert!(!store.exists(&old.sha256));
        assert!(store.exists(&fresh.sha256));
        // Content removed under an upload is placed again by its commit.
        assert_eq!(put(&store, &[b"old"]), old);
        assert!(store.exists(&old.sha256));
    }

    #[test]
    fn stale_temp_uploads_are_removed_and_live_ones_kept() {
        let (_dir, store) = store();
        let mut live = store.writer(1024).unwrap();
        live.write(b"in progress").unwrap();
        let crashed = store.root().join(TMP_DIR).join("0123.part");
        fs::write(&crashed, b"left by a crash").unwrap();
        set_mtime(&crashed, hours_ago(48));
        assert_eq!(store.remove_stale_uploads(hours_ago(24)).unwrap(), 1);
        assert!(!crashed.exists());
        assert_eq!(tmp_entries(&store), 1);
        assert_eq!(live.finish().unwrap().size, 11);
    }

    #[test]
    fn malformed_hashes_are_not_found() {
        let (_dir, store) = store();
        put(&store, &[b"abc"]);
        let traversal = format!("../../../../etc/passwd{}", "0".repeat(42));
        assert_eq!(traversal.len(), 64);
        for bad in [
            "../etc/passwd",
            traversal.as_str(),
            &ABC_SHA256.to_uppercase(),
            &ABC_SHA256[..63],
            &format!("{ABC_SHA256}0"),
            "",
            "ba",
        ] {
            assert!(
                matches!(store.open(bad), Err(StorageError::NotFound)),
                "{bad:?} must be NotFound"
            );
            assert!(!store.exists(bad), "{bad:?} must not exist");
        }
    }

    #[test]
    fn missing_content_is_not_found() {
        let (_dir, store) = store();
        assert!(matches!(
            store.open(ABC_SHA256),
            Err(StorageError::NotFound)
        ));
        assert!(!store.exists(ABC_SHA256));
    }

    #[test]
    fn writers_are_usable_as_trait_objects_across_threads() {
        let (_dir, store) = store();
        let store: std::sync::Arc<dyn BlobStore> = std::sync::Arc::new(store);
        let handle = {
            let store = std::sync::Arc::clone(&store);
            std::thread::spawn(move || {
                let mut writer = store.writer(16).unwrap();
                writer.write(b"abc").unwrap();
                writer.finish().unwrap()
            })
        };
        assert_eq!(handle.join().unwrap().sha256, ABC_SHA256);
        assert!(store.exists(ABC_SHA256));
    }
}
