//! Progress of long command-line work (backup, verify, restore, tenant import, benchmark
//! seeding): a bar (indicatif) when stderr is a terminal, otherwise a plain log line at most
//! every few seconds and one at the end — so a terminal shows a bar and a log file or CI
//! output gets readable lines. Work run by a server's jobs reports nothing ([`Progress::hidden`]).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often a plain line is logged at most.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// One piece of work of `total` steps.
#[derive(Debug)]
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    /// `None`: hidden.
    label: Option<String>,
    total: AtomicU64,
    done: AtomicU64,
    last_line: Mutex<Instant>,
}

impl Progress {
    /// Shows the progress of `label` (`total` steps) on stderr.
    pub fn start(label: &str, total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{msg} [{bar:30}] {pos}/{len} ({elapsed}, {eta} left)",
            ) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_message(label.to_owned());
            bar
        });
        Self {
            bar,
            label: Some(label.to_owned()),
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// Reports nothing (a server's job).
    pub fn hidden() -> Self {
        Self {
            bar: None,
            label: None,
            total: AtomicU64::new(0),
            done: AtomicU64::new(0),
            last_line: Mutex::new(Instant::now()),
        }
    }

    /// The work turned out to have `total` steps (counted once it began); done steps start
    /// again from zero.
    pub fn restart(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        self.done.store(0, Ordering::Relaxed);
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(0);
        }
    }

    /// `n` more steps done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        if let Some(bar) = &self.bar {
            bar.inc(n);
            return;
        }
        let Some(label) = &self.label else {
            return;
        };
        if let Ok(mut last) = self.last_line.lock()
            && last.elapsed() >= LOG_EVERY
        {
            *last = Instant::now();
            log::info!("{label}: {done} of {}", self.total.load(Ordering::Relaxed));
        }
    }

    /// The work is done (the bar is cleared; a plain line says so).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        if let Some(label) = &self.label {
            log::info!(
                "{label}: {} of {} done",
                self.done.load(Ordering::Relaxed),
                self.total.load(Ordering::Relaxed)
            );
        }
    }
}
