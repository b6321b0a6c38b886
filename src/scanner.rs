//! Virus scanning with a ClamAV daemon (clamd) over its Unix or TCP socket.
//!
//! One connection per command, in clamd's NUL-terminated `z` form: `zPING`, `zVERSION` and
//! `zINSTREAM`, which streams the content in chunks (a 4-byte big-endian length, the bytes,
//! a zero length to end) so clamd never needs access to our files. Every exchange runs under
//! one deadline (connection, writes and the reply), and content larger than `max_bytes` is
//! refused before a connection is opened; clamd's own `StreamMaxLength` refusal means the same.
//!
//! Errors say whether to try again later ([`ScanError::is_transient`]): an unreachable,
//! slow or confused scanner is an operational state (the message waits), a too-large message
//! is a property of the message. Their text names no socket path or address.
//!
//! Blocking: call it from a blocking thread, never from an async task. A leaf module: it names
//! nothing of the crate.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The largest chunk of an INSTREAM (clamd reads chunks of any size; 64 KiB keeps the
/// buffers small).
pub const CHUNK_BYTES: usize = 64 * 1024;
/// Bytes of a reply read at most (a verdict line is short; a longer one is a protocol error).
const MAX_REPLY_BYTES: usize = 4 * 1024;

/// Where clamd listens: `unix:/run/clamav/clamd.ctl` (or a bare absolute path), or
/// `tcp://127.0.0.1:3310` (or `tcp:127.0.0.1:3310`, or `127.0.0.1:3310`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScannerAddress {
    Unix(PathBuf),
    Tcp(String),
}

impl FromStr for ScannerAddress {
    type Err = String;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        let raw = raw.trim();
        if let Some(path) = raw.strip_prefix("unix:") {
            return unix_path(path);
        }
        if raw.starts_with('/') {
            return unix_path(raw);
        }
        let host_port = raw
            .strip_prefix("tcp://")
            .or_else(|| raw.strip_prefix("tcp:"))
            .unwrap_or(raw);
        let valid = host_port
            .rsplit_once(':')
            .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok());
        if valid && !host_port.contains('/') {
            Ok(Self::Tcp(host_port.to_owned()))
        } else {
            Err(format!(
                "{raw:?} is neither unix:/absolute/path nor tcp://host:port"
            ))
        }
    }
}

fn unix_path(path: &str) -> Result<ScannerAddress, String> {
    if path.starts_with('/') {
        Ok(ScannerAddress::Unix(PathBuf::from(path)))
    } else {
        Err(format!("the socket path {path:?} must be absolute"))
    }
}

impl fmt::Display for ScannerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unix(path) => write!(f, "unix:{}", path.display()),
            Self::Tcp(host_port) => write!(f, "tcp://{host_port}"),
        }
    }
}

/// What clamd found in the content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Clean,
    /// `signature` as clamd names it (signatures from a local database carry the suffix
    /// `.UNOFFICIAL`, e.g. `Eicar-Test-Signature.UNOFFICIAL`).
    Infected {
        signature: String,
    },
}

/// Why a scan gave no verdict. The text is safe to log and to store: no paths, no addresses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScanError {
    #[error("the virus scanner is unreachable: {0}")]
    Unreachable(String),
    #[error("the virus scanner did not answer in time")]
    Timeout,
    #[error("the content is larger than the virus scanner accepts ({limit} bytes)")]
    TooLarge { limit: usize },
    #[error("the virus scanner answered unexpectedly: {0}")]
    Protocol(String),
}

impl ScanError {
    /// Whether the same content may scan fine later (keep it pending and retry): true for a
    /// scanner that is down, slow or confused; false for content over the size limit.
    pub fn is_transient(&self) -> bool {
        !matches!(self, Self::TooLarge { .. })
    }
}

/// Scans this process ran, by outcome (the `/metrics` counters): one per INSTREAM asked for,
/// refused-as-too-large included under `error`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScanCounts {
    pub clean: u64,
    pub infected: u64,
    pub error: u64,
}

// Process-wide, as Prometheus counters are: every `Scanner` value of the node adds to them.
static SCANS_CLEAN: AtomicU64 = AtomicU64::new(0);
static SCANS_INFECTED: AtomicU64 = AtomicU64::new(0);
static SCANS_ERROR: AtomicU64 = AtomicU64::new(0);

/// The scans of this process so far.
pub fn scan_counts() -> ScanCounts {
    ScanCounts {
        clean: SCANS_CLEAN.load(Ordering::Relaxed),
        infected: SCANS_INFECTED.load(Ordering::Relaxed),
        error: SCANS_ERROR.load(Ordering::Relaxed),
    }
}

fn count(result: &Result<Verdict, ScanError>) {
    let counter = match result {
        Ok(Verdict::Clean) => &SCANS_CLEAN,
        Ok(Verdict::Infected { .. }) => &SCANS_INFECTED,
        Err(_) => &SCANS_ERROR,
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

/// A clamd client. Cheap to clone; holds no connection between calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scanner {
    address: ScannerAddress,
    timeout: Duration,
    max_bytes: usize,
}

impl Scanner {
    /// `timeout` bounds each call as a whole; `max_bytes` should not exceed clamd's
    /// `StreamMaxLength` (larger content is refused here without a connection).
    pub fn new(address: ScannerAddress, timeout: Duration, max_bytes: usize) -> Self {
        Self {
            address,
            timeout,
            max_bytes,
        }
    }

    pub fn address(&self) -> &ScannerAddress {
        &self.address
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// `zPING`: Ok when clamd answers `PONG`.
    pub fn ping(&self) -> Result<(), ScanError> {
        let reply = self.command(b"zPING\0")?;
        if reply == "PONG" {
            Ok(())
        } else {
            Err(ScanError::Protocol(excerpt(&reply)))
        }
    }

    /// `zVERSION`: clamd's version line, e.g. `ClamAV 1.4.6/27000/Fri Nov 27 08:00:00 2026`.
    pub fn version(&self) -> Result<String, ScanError> {
        let reply = self.command(b"zVERSION\0")?;
        if reply.starts_with("ClamAV ") {
            Ok(reply)
        } else {
            Err(ScanError::Protocol(excerpt(&reply)))
        }
    }

    /// `zINSTREAM`: scans `content` and returns clamd's verdict.
    pub fn scan(&self, content: &[u8]) -> Result<Verdict, ScanError> {
        let result = self.instream(content);
        count(&result);
        result
    }

    fn instream(&self, content: &[u8]) -> Result<Verdict, ScanError> {
        if content.len() > self.max_bytes {
            return Err(ScanError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let deadline = Instant::now() + self.timeout;
        let mut connection = Connection::open(&self.address, deadline)?;
        let sent = stream_content(&mut connection, content, deadline);
        // clamd answers and closes as soon as the stream exceeds its limit, so a failed write
        // may still have a reply waiting: read it before reporting the write error.
        let reply = match (sent, read_reply(&mut connection, deadline)) {
            (_, Ok(reply)) => reply,
            (Err(error), Err(_)) | (Ok(()), Err(error)) => return Err(error),
        };
        self.verdict(&reply)
    }

    fn verdict(&self, reply: &str) -> Result<Verdict, ScanError> {
        if reply.contains("size limit exceeded") {
            return Err(ScanError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let Some(result) = reply.strip_prefix("stream: ") else {
            return Err(ScanError::Protocol(excerpt(reply)));
        };
        if result == "OK" {
            return Ok(Verdict::Clean);
        }
        match result.strip_suffix(" FOUND") {
            Some(signature) if !signature.is_empty() => Ok(Verdict::Infected {
                signature: signature.to_owned(),
            }),
            _ => Err(ScanError::Protocol(excerpt(reply))),
        }
    }

    fn command(&self, command: &[u8]) -> Result<String, ScanError> {
        let deadline = Instant::now() + self.timeout;
        let mut connection = Connection::open(&self.address, deadline)?;
        connection.write_all_by(command, deadline)?;
        read_reply(&mut connection, deadline)
    }
}

fn stream_content(
    connection: &mut Connection,
    content: &[u8],
    deadline: Instant,
) -> Result<(), ScanError> {
    connection.write_all_by(b"zINSTREAM\0", deadline)?;
    let mut frame = Vec::with_capacity(4 + CHUNK_BYTES.min(content.len()));
    for chunk in content.chunks(CHUNK_BYTES) {
        frame.clear();
        // A chunk is at most CHUNK_BYTES, so its length always fits the 4-byte prefix.
        frame.extend_from_slice(&u32::try_from(chunk.len()).unwrap_or(u32::MAX).to_be_bytes());
        frame.extend_from_slice(chunk);
        connection.write_all_by(&frame, deadline)?;
    }
    connection.write_all_by(&0_u32.to_be_bytes(), deadline)
}

/// Reads one NUL-terminated reply (or up to the end of the stream) and trims it.
fn read_reply(connection: &mut Connection, deadline: Instant) -> Result<String, ScanError> {
    let mut reply = Vec::with_capacity(64);
    let mut buffer = [0_u8; 512];
    loop {
        connection.set_timeouts(deadline)?;
        let read = connection.read(&mut buffer).map_err(io_error)?;
        if read == 0 {
            break;
        }
        reply.extend_from_slice(&buffer[..read]);
        if let Some(end) = reply.iter().position(|&b| b == 0) {
            reply.truncate(end);
            break;
        }
        if reply.len() > MAX_REPLY_BYTES {
            return Err(ScanError::Protocol("the reply is too long".to_owned()));
        }
    }
    if reply.is_empty() {
        return Err(ScanError::Protocol(
            "the connection closed without a reply".to_owned(),
        ));
    }
    Ok(String::from_utf8_lossy(&reply).trim().to_owned())
}

/// A reply for an error message: one line, at most 200 characters.
fn excerpt(reply: &str) -> String {
    reply
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(200)
        .collect()
}

/// Maps an I/O error on an open connection: a timeout is [`ScanError::Timeout`], anything
/// else (reset, broken pipe) means the scanner went away.
fn io_error(error: io::Error) -> ScanError {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ScanError::Timeout,
        _ => ScanError::Unreachable(error.kind().to_string()),
    }
}

enum Connection {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Connection {
    fn open(address: &ScannerAddress, deadline: Instant) -> Result<Self, ScanError> {
        // The error text is the error kind only: the OS message of a failed connect can name
        // the socket path.
        let unreachable = |error: io::Error| match error.kind() {
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => ScanError::Timeout,
            kind => ScanError::Unreachable(kind.to_string()),
        };
        match address {
            ScannerAddress::Unix(path) => UnixStream::connect(path)
                .map(Self::Unix)
                .map_err(unreachable),
            ScannerAddress::Tcp(host_port) => {
                let addresses = host_port
                    .to_socket_addrs()
                    .map_err(|_| ScanError::Unreachable("the host does not resolve".into()))?;
                let mut last = ScanError::Unreachable("the host has no address".to_owned());
                for address in addresses {
                    let remaining = remaining(deadline)?;
                    match TcpStream::connect_timeout(&address, remaining) {
                        Ok(stream) => {
                            stream.set_nodelay(true).map_err(unreachable)?;
                            return Ok(Self::Tcp(stream));
                        }
                        Err(error) => last = unreachable(error),
                    }
                }
                Err(last)
            }
        }
    }

    /// Bounds the next read or write by what is left of the deadline.
    fn set_timeouts(&self, deadline: Instant) -> Result<(), ScanError> {
        let left = Some(remaining(deadline)?);
        let set = match self {
            Self::Unix(stream) => stream
                .set_read_timeout(left)
                .and_then(|()| stream.set_write_timeout(left)),
            Self::Tcp(stream) => stream
                .set_read_timeout(left)
                .and_then(|()| stream.set_write_timeout(left)),
        };
        set.map_err(io_error)
    }

    fn write_all_by(&mut self, bytes: &[u8], deadline: Instant) -> Result<(), ScanError> {
        self.set_timeouts(deadline)?;
        let written = match self {
            Self::Unix(stream) => stream.write_all(bytes),
            Self::Tcp(stream) => stream.write_all(bytes),
        };
        written.map_err(io_error)
    }

    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        match self {
            Self::Unix(stream) => stream.read(buffer),
            Self::Tcp(stream) => stream.read(buffer),
        }
    }
}

/// What is left of the deadline; none left is a timeout (a zero timeout would mean "block").
fn remaining(deadline: Instant) -> Result<Duration, ScanError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(ScanError::Timeout)
    } else {
        Ok(left)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_parse_and_display_round_trips() {
        let cases = [
            ("unix:/run/clamav/clamd.ctl", "unix:/run/clamav/clamd.ctl"),
            ("/tmp/clamd.sock", "unix:/tmp/clamd.sock"),
            ("tcp://127.0.0.1:3310", "tcp://127.0.0.1:3310"),
            ("127.0.0.1:3310", "tcp://127.0.0.1:3310"),
            ("tcp:127.0.0.1:3310", "tcp://127.0.0.1:3310"),
            ("clamd.internal:3310", "tcp://clamd.internal:3310"),
            ("tcp://[::1]:3310", "tcp://[::1]:3310"),
        ];
        for (raw, shown) in cases {
            let address: ScannerAddress = raw.parse().unwrap();
            assert_eq!(address.to_string(), shown, "{raw}");
            assert_eq!(shown.parse::<ScannerAddress>().unwrap(), address, "{raw}");
        }
        assert_eq!(
            "unix:/run/clamav/clamd.ctl".parse::<ScannerAddress>(),
            Ok(ScannerAddress::Unix(PathBuf::from("/run/clamav/clamd.ctl")))
        );
        for bad in [
            "",
            "unix:clamd.ctl",
            "clamd.ctl",
            "tcp://127.0.0.1",
            "127.0.0.1:port",
            ":3310",
            "tcp://host:3310/x",
            "127.0.0.1:70000",
        ] {
            assert!(bad.parse::<ScannerAddress>().is_err(), "{bad:?}");
        }
    }

    fn scanner() -> Scanner {
        Scanner::new(
            ScannerAddress::Tcp("127.0.0.1:1".to_owned()),
            Duration::from_secs(1),
            100,
        )
    }

    #[test]
    fn replies_map_to_verdicts_and_errors() {
        let scanner = scanner();
        assert_eq!(scanner.verdict("stream: OK"), Ok(Verdict::Clean));
        assert_eq!(
            scanner.verdict("stream: Eicar-Test-Signature.UNOFFICIAL FOUND"),
            Ok(Verdict::Infected {
                signature: "Eicar-Test-Signature.UNOFFICIAL".to_owned()
            })
        );
        assert_eq!(
            scanner.verdict("INSTREAM size limit exceeded. ERROR"),
            Err(ScanError::TooLarge { limit: 100 })
        );
        for bad in [
            "stream: Can't allocate memory ERROR",
            "stream:  FOUND",
            "PONG",
        ] {
            assert!(
                matches!(scanner.verdict(bad), Err(ScanError::Protocol(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn too_large_is_refused_without_a_connection_and_is_not_transient() {
        let before = scan_counts().error;
        let error = scanner().scan(&[0; 101]).unwrap_err();
        assert_eq!(error, ScanError::TooLarge { limit: 100 });
        // Counted as an error (other tests of this process may count too: at least one).
        assert!(scan_counts().error > before);
        assert!(!error.is_transient());
        assert!(ScanError::Timeout.is_transient());
        assert!(ScanError::Unreachable("x".into()).is_transient());
        assert!(ScanError::Protocol("x".into()).is_transient());
    }
}
