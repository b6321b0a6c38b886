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
//!   `rename` is atomic), fsynced, and only then renamed into place. A reader therefore sees
//!   either nothing or the whole content, never a partial file, even across a crash.
//!   `tmp/` may hold leftovers after a crash; they are never referenced and are safe to delete
//!   when no upload is running.
//! - Deleting content is deliberately not offered here: with deduplication a file may be
//!   referenced by several rows, so removal belongs to a garbage collector that consults the
//!   database.
//!
//! Everything sits behind [`BlobStore`] so that an object store (S3 and the like, where a
//! multipart upload plays the role of the temp file) can be added without touching callers.
//! The I/O is blocking `std::fs`; callers run it on a blocking thread pool.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

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

/// A content-addressed store of immutable byte strings.
pub trait BlobStore: Send + Sync + fmt::Debug {
    /// Begins a streamed upload that refuses to grow beyond `limit` bytes.
    fn writer(&self, limit: u64) -> Result<Box<dyn BlobWriter>, StorageError>;

    /// Reads content back. Anything that is not 64 lowercase hex digits is [`StorageError::NotFound`],
    /// so a caller-supplied string can never name a path outside the store.
    fn open(&self, sha256_hex: &str) -> Result<Box<dyn Read + Send>, StorageError>;

    /// Whether content with this hash is stored; `false` for a malformed hash.
    fn exists(&self, sha256_hex: &str) -> bool;
}

/// One upload in progress. Dropping it without [`finish`](BlobWriter::finish) discards the data.
pub trait BlobWriter: Send + fmt::Debug {
    /// Appends a chunk. Fails with [`StorageError::TooLarge`] as soon as the total would exceed
    /// the limit; the partial data is discarded then and every later call fails the same way.
    fn write(&mut self, chunk: &[u8]) -> Result<(), StorageError>;

    /// Makes the content durable and visible under its hash. If identical content is already
    /// stored, the new copy is dropped and the existing one is referenced.
    fn finish(self: Box<Self>) -> Result<BlobRef, StorageError>;
}

/// [`BlobStore`] on a local (or mounted) filesystem.
#[derive(Debug, Clone)]
pub struct FsBlobStore {
    root: PathBuf,
}

impl FsBlobStore {
    /// Uses `root` as the store, creating it and its temp directory if needed.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, StorageError> {
        let root = root.into();
        fs::create_dir_all(root.join(TMP_DIR))?;
        Ok(Self { root })
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
            tmp_path,
            file: Some(BufWriter::with_capacity(WRITE_BUFFER, file)),
            tmp_exists: true,
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
}

struct FsBlobWriter {
    root: PathBuf,
    tmp_path: PathBuf,
    /// `None` once the upload was refused as too large, or handed over by `finish`.
    file: Option<BufWriter<File>>,
    /// Whether `tmp_path` still has to be removed when the writer goes away.
    tmp_exists: bool,
    hasher: Sha256,
    size: u64,
    limit: u64,
}

impl fmt::Debug for FsBlobWriter {
    // The hasher state and the buffered bytes are noise in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobWriter")
            .field("tmp_path", &self.tmp_path)
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
        self.remove_tmp();
    }

    fn remove_tmp(&mut self) {
        if !self.tmp_exists {
            return;
        }
        self.tmp_exists = false;
        if let Err(e) = fs::remove_file(&self.tmp_path)
            && e.kind() != io::ErrorKind::NotFound
        {
            // Not fatal: an orphan in tmp/ is never referenced and only costs space.
            log::warn!(
                "could not remove temp upload {}: {e}",
                self.tmp_path.display()
            );
        }
    }

    fn too_large(&self) -> StorageError {
        StorageError::TooLarge { limit: self.limit }
    }

    /// Moves the fsynced temp file to `target`, unless identical content is already there.
    fn place(&mut self, target: &Path, size: u64) -> Result<(), StorageError> {
        let shard = target
            .parent()
            .ok_or_else(|| io::Error::other("content path has no parent directory"))?;
        let shard_existed = shard.is_dir();
        if !shard_existed {
            fs::create_dir_all(shard)?;
        }

        // Same hash and same length: the same content (the name is the hash of what was
        // renamed there). A different length means a damaged copy, which the rename replaces.
        match fs::metadata(target) {
            Ok(existing) if existing.is_file() && existing.len() == size => {
                self.remove_tmp();
                return Ok(());
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }

        // A concurrent upload of the same content may win the race to this rename; replacing
        // its file with identical bytes is harmless.
        fs::rename(&self.tmp_path, target)?;
        self.tmp_exists = false;

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

    fn finish(mut self: Box<Self>) -> Result<BlobRef, StorageError> {
        let writer = self.file.take().ok_or_else(|| self.too_large())?;
        let file = writer
            .into_inner()
            .map_err(io::IntoInnerError::into_error)?;
        // Durable before visible: after a crash the name must never point at missing bytes.
        file.sync_all()?;
        drop(file);

        let sha256 = format!("{:x}", std::mem::take(&mut self.hasher).finalize());
        let target = content_path(&self.root, &sha256)
            .ok_or_else(|| io::Error::other("SHA-256 digest did not format as 64 hex digits"))?;
        // On error, `Drop` removes the temp file.
        self.place(&target, self.size)?;
        Ok(BlobRef {
            sha256,
            size: self.size,
        })
    }
}

impl Drop for FsBlobWriter {
    fn drop(&mut self) {
        self.discard();
    }
}

/// `<root>/<aa>/<bb>/<hash>`, or `None` unless `sha256_hex` is a well-formed hash.
fn content_path(root: &Path, sha256_hex: &str) -> Option<PathBuf> {
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
