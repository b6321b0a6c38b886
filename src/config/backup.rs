//! The `STAGEFLOW_BACKUP_*` settings (`crate::backup`, docs/operations.md).

use std::path::PathBuf;
use std::time::Duration;

use super::{ConfigError, bounded};

/// Where backups go, how many generations stay, and how often the job makes one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupSettings {
    /// Generations and the attachment copies they share (`<dir>/generations`, `<dir>/blobs`).
    pub dir: PathBuf,
    /// Generations kept in `dir` (the newest ones).
    pub keep: usize,
    /// The second location each finished generation is copied to; `None`: no copy.
    pub copy_dir: Option<PathBuf>,
    /// Generations kept in `copy_dir`.
    pub copy_keep: usize,
    /// How often the `backup.run` job backs up and verifies; `None`: the job is off.
    pub interval: Option<Duration>,
    /// Where `pg_dump` and `pg_restore` are; `None`: looked up on `PATH`, then in
    /// `/usr/lib/postgresql/<newest>/bin`.
    pub pg_bin_dir: Option<PathBuf>,
}

fn path(raw: Option<String>) -> Option<PathBuf> {
    raw.map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
}

pub(super) fn backup_settings(
    get: &dyn Fn(&str) -> Option<String>,
    data_dir: &std::path::Path,
) -> Result<BackupSettings, ConfigError> {
    let dir = path(get("STAGEFLOW_BACKUP_DIR")).unwrap_or_else(|| data_dir.join("backups"));
    let copy_dir = path(get("STAGEFLOW_BACKUP_COPY_DIR"));
    if copy_dir.as_ref().is_some_and(|c| *c == dir) {
        return Err(ConfigError::new(
            "STAGEFLOW_BACKUP_COPY_DIR",
            "must be another directory than STAGEFLOW_BACKUP_DIR",
        ));
    }
    let hours: u64 = bounded(
        "STAGEFLOW_BACKUP_INTERVAL_HOURS",
        get("STAGEFLOW_BACKUP_INTERVAL_HOURS"),
        24,
        0..=8_760,
    )?;
    Ok(BackupSettings {
        dir,
        keep: bounded(
            "STAGEFLOW_BACKUP_KEEP",
            get("STAGEFLOW_BACKUP_KEEP"),
            1,
            1..=1_000,
        )?,
        copy_dir,
        copy_keep: bounded(
            "STAGEFLOW_BACKUP_COPY_KEEP",
            get("STAGEFLOW_BACKUP_COPY_KEEP"),
            7,
            1..=1_000,
        )?,
        interval: (hours > 0).then(|| Duration::from_secs(hours * 3_600)),
        pg_bin_dir: path(get("STAGEFLOW_PG_BIN_DIR")),
    })
}
