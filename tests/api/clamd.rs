//! A private ClamAV daemon for one test: its own directory, socket, configuration and the
//! EICAR test signature (the same `test.hdb` that scripts/local-clamd.sh writes), so a test
//! can stop and restart its scanner without disturbing the others.
//!
//! When `clamd` is not installed, [`ClamdProcess::start_private`] prints a notice and returns
//! `None` (the test returns early) — unless `STAGEFLOW_TEST_CLAMD` is set, as in CI
//! (`STAGEFLOW_TEST_CLAMD=$(bash scripts/local-clamd.sh)`), where a missing clamd fails the test.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Once;
use std::time::{Duration, Instant};

use stageflow::scanner::{ScanError, Scanner, ScannerAddress};

pub const CLAMD_ENV: &str = "STAGEFLOW_TEST_CLAMD";
/// The EICAR anti-virus test file (68 bytes): harmless, detected by every scanner.
pub const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";
/// `test.hdb`: the EICAR file's MD5, size and name.
pub const TEST_SIGNATURES: &str = "44d88612fea8a8f36de82e1278abb02f:68:Eicar-Test-Signature\n";
/// clamd's `StreamMaxLength` here, as in scripts/local-clamd.sh and docs/mail.md.
pub const STREAM_MAX_BYTES: usize = 25 * 1024 * 1024;
/// How long a started clamd may take to answer PING (it loads one signature).
const READY_WITHIN: Duration = Duration::from_secs(60);

pub struct ClamdProcess {
    dir: tempfile::TempDir,
    binary: PathBuf,
    child: Option<Child>,
}

impl ClamdProcess {
    /// A running private clamd, or `None` (with a notice) when clamd is not installed and
    /// `STAGEFLOW_TEST_CLAMD` is unset.
    pub fn start_private() -> Option<Self> {
        let Some(binary) = clamd_binary() else {
            assert!(
                std::env::var_os(CLAMD_ENV).is_none_or(|v| v.is_empty()),
                "{CLAMD_ENV} is set but clamd is not installed (run scripts/local-clamd.sh)"
            );
            announce_missing();
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        write_config(dir.path());
        let mut clamd = Self {
            dir,
            binary,
            child: None,
        };
        clamd.start();
        Some(clamd)
    }

    /// `unix:<dir>/clamd.sock`.
    pub fn address(&self) -> ScannerAddress {
        ScannerAddress::Unix(self.dir.path().join("clamd.sock"))
    }

    /// A client of this clamd: 10 s deadline, clamd's own stream limit.
    pub fn scanner(&self) -> Scanner {
        Scanner::new(self.address(), Duration::from_secs(10), STREAM_MAX_BYTES)
    }

    /// Starts clamd (again) and returns once it answers PING.
    pub fn start(&mut self) {
        assert!(self.child.is_none(), "clamd is already running");
        let child = Command::new(&self.binary)
            .arg(format!(
                "--config-file={}",
                self.dir.path().join("clamd.conf").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.child = Some(child);
        self.wait_ready();
    }

    /// Kills clamd and waits for it to exit.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn wait_ready(&mut self) {
        let scanner = self.scanner();
        let started = Instant::now();
        let mut pause = Duration::from_millis(5);
        loop {
            match scanner.ping() {
                Ok(()) => return,
                Err(ScanError::Unreachable(_)) if started.elapsed() < READY_WITHIN => {}
                Err(error) => panic!("clamd did not become ready: {error}; {}", self.log()),
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("clamd exited with {status}; {}", self.log());
            }
            // Polling a starting daemon: nothing to wait on but its socket.
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("clamd.log")).unwrap_or_default()
    }
}

impl Drop for ClamdProcess {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn clamd_binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default();
    on_path
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")])
        .map(|dir| dir.join("clamd"))
        .find(|candidate| candidate.is_file())
}

/// The same configuration as scripts/local-clamd.sh writes, in the foreground and without TCP.
fn write_config(dir: &Path) {
    std::fs::create_dir(dir.join("db")).unwrap();
    std::fs::write(dir.join("db/test.hdb"), TEST_SIGNATURES).unwrap();
    let d = dir.display();
    let config = format!(
        "Foreground yes\n\
         LocalSocket {d}/clamd.sock\n\
         FixStaleSocket yes\n\
         DatabaseDirectory {d}/db\n\
         StreamMaxLength 25M\n\
         LogSyslog no\n\
         LogFile {d}/clamd.log\n\
         SelfCheck 0\n"
    );
    std::fs::write(dir.join("clamd.conf"), config).unwrap();
}

fn announce_missing() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        eprintln!(
            "NOTE: clamd is not installed; the tests that need a real virus scanner return \
             early. Run scripts/local-clamd.sh (or set {CLAMD_ENV} to make this a failure)."
        );
    });
}
