//! A real Dovecot IMAP server for the IMAP poller's tests, and a small raw IMAP client (over a
//! `TcpStream`) that plays the sending side: it APPENDs messages and reads flags back.
//!
//! One private Dovecot serves the whole test binary (scripts/local-dovecot.sh); each test
//! works in a folder of its own, so tests run in parallel. `STAGEFLOW_TEST_DOVECOT`
//! (`127.0.0.1:<port>`, as CI exports it) names a running one; without it, the script is run
//! when dovecot is installed, and otherwise the tests print a notice and return early.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::{Once, OnceLock};
use std::time::Duration;

pub const DOVECOT_ENV: &str = "STAGEFLOW_TEST_DOVECOT";
/// The test user of scripts/local-dovecot.sh.
pub const USER: &str = "stageflow";
pub const PASSWORD: &str = "imap-test-password";

/// Where the test Dovecot listens, or `None` (with a notice) when there is none.
pub fn server() -> Option<(String, u16)> {
    static ADDRESS: OnceLock<Option<String>> = OnceLock::new();
    let address = ADDRESS.get_or_init(|| {
        if let Some(set) = std::env::var(DOVECOT_ENV).ok().filter(|v| !v.is_empty()) {
            return Some(set);
        }
        let installed = ["/usr/sbin/dovecot", "/usr/local/sbin/dovecot"]
            .iter()
            .any(|p| std::path::Path::new(p).is_file());
        if !installed {
            return None;
        }
        let script = format!("{}/scripts/local-dovecot.sh", env!("CARGO_MANIFEST_DIR"));
        let out = std::process::Command::new("bash")
            .arg(script)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "local-dovecot.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
    });
    let Some(address) = address else {
        static NOTICE: Once = Once::new();
        NOTICE.call_once(|| {
            eprintln!(
                "dovecot is not installed and {DOVECOT_ENV} is unset: the IMAP tests are skipped \
                 (bash scripts/local-dovecot.sh installs and starts one)"
            );
        });
        return None;
    };
    let (host, port) = address.rsplit_once(':').unwrap();
    Some((host.to_owned(), port.parse().unwrap()))
}

/// A logged-in raw IMAP connection as the test user.
pub struct Mailbox {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    tag: u32,
}

impl Mailbox {
    pub fn open(host: &str, port: u16) -> Self {
        let stream = TcpStream::connect((host, port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut mailbox = Self {
            reader: BufReader::new(stream.try_clone().unwrap()),
            writer: stream,
            tag: 0,
        };
        let mut greeting = String::new();
        mailbox.reader.read_line(&mut greeting).unwrap();
        assert!(greeting.starts_with("* OK"), "{greeting}");
        mailbox.command(&format!("LOGIN {USER} {PASSWORD}"));
        mailbox
    }

    /// Sends a command and returns its untagged lines; panics unless it ends OK.
    pub fn command(&mut self, command: &str) -> Vec<String> {
        let tag = self.send(command);
        self.finish(&tag)
    }

    fn send(&mut self, command: &str) -> String {
        self.tag += 1;
        let tag = format!("T{}", self.tag);
        write!(self.writer, "{tag} {command}\r\n").unwrap();
        tag
    }

    fn finish(&mut self, tag: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            assert!(self.reader.read_line(&mut line).unwrap() > 0, "closed");
            if let Some(rest) = line.strip_prefix(&format!("{tag} ")) {
                assert!(rest.starts_with("OK"), "{tag}: {line} after {lines:?}");
                return lines;
            }
            lines.push(line.trim_end().to_owned());
        }
    }

    /// A fresh folder of this name (deleted first if it exists).
    pub fn fresh_folder(&mut self, folder: &str) {
        // Deleting the selected folder would end this session.
        self.command("EXAMINE INBOX");
        let tag = self.send(&format!("DELETE {folder}"));
        let mut line = String::new();
        while !line.starts_with(&format!("{tag} ")) {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
        }
        self.command(&format!("CREATE {folder}"));
    }

    /// Appends a message (as a literal) to the folder.
    pub fn append(&mut self, folder: &str, raw: &[u8]) {
        let tag = self.send(&format!("APPEND {folder} {{{}}}", raw.len()));
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        assert!(line.starts_with('+'), "{line}");
        self.writer.write_all(raw).unwrap();
        self.writer.write_all(b"\r\n").unwrap();
        self.finish(&tag);
    }

    /// (UID, flags) of every message in the folder.
    pub fn flags(&mut self, folder: &str) -> Vec<(u32, String)> {
        self.command(&format!("EXAMINE {folder}"));
        let lines = self.command("UID FETCH 1:* (FLAGS)");
        // Untagged FETCH lines without a UID are flag changes announced on their own.
        let flags: std::collections::BTreeMap<u32, String> = lines
            .iter()
            .filter(|l| l.contains("FETCH") && l.contains("UID ") && l.contains("FLAGS ("))
            .map(|l| {
                let uid = l.split("UID ").nth(1).unwrap();
                let uid: u32 = uid
                    .split(|c: char| !c.is_ascii_digit())
                    .next()
                    .unwrap()
                    .parse()
                    .unwrap();
                let flags = l.split("FLAGS (").nth(1).unwrap();
                (uid, flags.split(')').next().unwrap().to_owned())
            })
            .collect();
        flags.into_iter().collect()
    }
}
