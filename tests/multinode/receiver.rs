//! The webhook receiver: a small HTTP/1.1 server on 127.0.0.1 (a thread per connection,
//! keep-alive) that verifies each delivery's Standard Webhooks signature, records its
//! `webhook-id` with the moment it arrived, and answers 200 — after a delay when asked, to
//! keep deliveries in flight longer.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Res;

#[derive(Default)]
struct Log {
    /// Each `webhook-id` with the moments its deliveries arrived.
    by_id: HashMap<String, Vec<Instant>>,
    total: usize,
    bad_signatures: usize,
}

#[derive(Clone)]
pub struct Receiver {
    log: Arc<Mutex<Log>>,
    secret: Arc<Mutex<Option<String>>>,
    /// Milliseconds each answer waits (after the arrival is recorded).
    delay_ms: Arc<AtomicU64>,
    port: u16,
}

/// What the receiver has seen so far.
pub struct Snapshot {
    pub by_id: HashMap<String, Vec<Instant>>,
    pub total: usize,
    pub bad_signatures: usize,
}

impl Receiver {
    pub fn start() -> Res<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let receiver = Self {
            log: Arc::default(),
            secret: Arc::default(),
            delay_ms: Arc::default(),
            port: listener.local_addr()?.port(),
        };
        let shared = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let shared = shared.clone();
                std::thread::spawn(move || shared.serve(stream));
            }
        });
        Ok(receiver)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// The subscription's secret (`whsec_…`), once it is known: signatures are checked from
    /// then on.
    pub fn set_secret(&self, secret: &str) {
        *self.secret.lock().unwrap_or_else(|p| p.into_inner()) = Some(secret.to_owned());
    }

    pub fn total(&self) -> usize {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).total
    }

    pub fn snapshot(&self) -> Snapshot {
        let log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        Snapshot {
            by_id: log.by_id.clone(),
            total: log.total,
            bad_signatures: log.bad_signatures,
        }
    }

    /// Answers slowly from now on (keeps deliveries in flight longer).
    pub fn set_delay(&self, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::Relaxed);
    }

    /// Requests on one connection until the peer closes it.
    fn serve(&self, stream: TcpStream) {
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        while let Some((headers, body)) = read_request(&mut reader) {
            self.record(&headers, &body);
            let delay = self.delay_ms.load(Ordering::Relaxed);
            if delay > 0 {
                std::thread::sleep(Duration::from_millis(delay));
            }
            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn record(&self, headers: &HashMap<String, String>, body: &[u8]) {
        let header = |name: &str| headers.get(name).map_or("", String::as_str);
        let id = header("webhook-id").to_owned();
        let signed = self
            .secret
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_deref()
            .is_none_or(|secret| {
                verify(
                    secret,
                    &id,
                    header("webhook-timestamp"),
                    header("webhook-signature"),
                    body,
                )
            });
        let mut log = self.log.lock().unwrap_or_else(|p| p.into_inner());
        log.total += 1;
        if !signed {
            log.bad_signatures += 1;
        }
        log.by_id.entry(id).or_default().push(Instant::now());
    }
}

/// The Standard Webhooks library's own signature must be among the ones sent.
fn verify(secret: &str, id: &str, timestamp: &str, signatures: &str, body: &[u8]) -> bool {
    let Ok(webhook) = standardwebhooks::Webhook::new(secret) else {
        return false;
    };
    let Ok(timestamp) = timestamp.parse::<i64>() else {
        return false;
    };
    webhook
        .sign(id, timestamp, body)
        .is_ok_and(|expected| signatures.split(' ').any(|s| s == expected))
}

/// One request: lower-cased headers and the body (`content-length` framing, which is what
/// the server's client sends). `None` at the end of the connection or on garbage.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<(HashMap<String, String>, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = HashMap::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
    }
    let length: usize = headers
        .get("content-length")
        .map_or(Some(0), |v| v.parse().ok())?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some((headers, body))
}
