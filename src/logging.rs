//! The process's log: env_logger's filter and format on stderr, as always, and for a server
//! with `STAGEFLOW_LOG_DIR` the same records in two files rotated daily by `file-rotate` —
//! `access.log` (the access log: one line per request) kept `STAGEFLOW_ACCESS_LOG_RETENTION_DAYS`,
//! `stageflow.log` (everything else) kept `STAGEFLOW_APP_LOG_RETENTION_DAYS` (docs/operations.md,
//! "Retention").

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use file_rotate::compression::Compression;
use file_rotate::suffix::{AppendTimestamp, FileLimit};
use file_rotate::{ContentLimit, FileRotate, TimeFrequency};

use crate::config::LogSettings;

/// The target of actix-web's access log lines.
const ACCESS_TARGET: &str = "actix_web::middleware::logger";

type Sink = Mutex<FileRotate<AppendTimestamp>>;

/// The two files, once a server has opened them.
struct Files {
    access: Sink,
    app: Sink,
}

static FILES: OnceLock<Files> = OnceLock::new();

/// Writes to stderr through env_logger, and to the files once [`write_files`] opened them.
struct Dispatch {
    stderr: env_logger::Logger,
}

impl log::Log for Dispatch {
    fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
        self.stderr.enabled(metadata)
    }

    fn log(&self, record: &log::Record<'_>) {
        if !self.stderr.matches(record) {
            return;
        }
        self.stderr.log(record);
        let Some(files) = FILES.get() else {
            return;
        };
        let sink = if record.target() == ACCESS_TARGET {
            &files.access
        } else {
            &files.app
        };
        let line = format!(
            "{} {:<5} {}: {}\n",
            chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            record.level(),
            record.target(),
            record.args()
        );
        if let Ok(mut file) = sink.lock() {
            // A full disk must not take the server down: the line is still on stderr.
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn flush(&self) {
        self.stderr.flush();
        if let Some(files) = FILES.get() {
            for sink in [&files.access, &files.app] {
                if let Ok(mut file) = sink.lock() {
                    let _ = file.flush();
                }
            }
        }
    }
}

/// Installs the process's logger: `filters` in env_logger syntax (`RUST_LOG`), on stderr.
pub fn init(filters: &str) {
    let stderr =
        env_logger::Builder::from_env(env_logger::Env::new().write_style("RUST_LOG_STYLE"))
            .parse_filters(filters)
            .build();
    let level = stderr.filter();
    if log::set_boxed_logger(Box::new(Dispatch { stderr })).is_ok() {
        log::set_max_level(level);
    }
}

fn rotating(path: &Path, days: u32) -> Sink {
    Mutex::new(FileRotate::new(
        path,
        AppendTimestamp::with_format(
            "%Y-%m-%d",
            FileLimit::Age(chrono::Duration::days(i64::from(days))),
            file_rotate::suffix::DateFrom::DateYesterday,
        ),
        ContentLimit::Time(TimeFrequency::Daily),
        Compression::None,
        None,
    ))
}

/// Also writes the log to `settings.dir` (a server calls it once, before serving); nothing
/// without a directory. An unusable directory is an error for the caller to report.
pub fn write_files(settings: &LogSettings) -> Result<(), String> {
    let Some(dir) = &settings.dir else {
        return Ok(());
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| format!("cannot create the log directory {}: {e}", dir.display()))?;
    let files = Files {
        access: rotating(&dir.join("access.log"), settings.access_days),
        app: rotating(&dir.join("stageflow.log"), settings.app_days),
    };
    let _ = FILES.set(files);
    Ok(())
}
