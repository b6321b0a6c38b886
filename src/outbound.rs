//! One outbound HTTP POST (a webhook delivery), safe against server-side request forgery.
//!
//! A subscriber chooses the URL, so the request must not become a way into our own network:
//! only `http`/`https` without credentials; the host is resolved once and refused when any
//! address is not public (private, loopback, link-local, CGNAT, documentation, multicast, …)
//! unless the policy allows private targets; the connection then goes to exactly the vetted
//! addresses (the client's resolver is pinned to them, so a second DNS answer — rebinding —
//! is never asked for) while the URL's host still gives the `Host` header and TLS SNI. No
//! redirect is followed (a 3xx is just its status), no proxy is used, the response body is read
//! only up to a cap, and the whole exchange has one deadline.
//!
//! Blocking: call it from a blocking thread (the job runner's blocking pool), never from an
//! async task. A leaf module: it names nothing of the crate but `domain`.

use std::collections::HashMap;
use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use reqwest::Url;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER, USER_AGENT};

use crate::domain::network::IpNetwork;

/// Bytes of the response body kept in [`OutboundResult::response_excerpt`].
pub const EXCERPT_BYTES: usize = 1024;
/// The `user-agent` of every outbound request.
pub const USER_AGENT_VALUE: &str = "Stageflow-Webhooks/1";

/// What to send: a JSON body POSTed to `url` with extra headers (e.g. the `webhook-*` ones).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRequest {
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The limits one request runs under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboundPolicy {
    /// Allow private, loopback and link-local targets (tests, on-premises receivers).
    pub allow_private: bool,
    /// The deadline of the whole exchange: resolution, connection, request and response.
    pub timeout: Duration,
    /// The most response-body bytes read; the rest is left unread.
    pub max_response_bytes: usize,
}

impl Default for OutboundPolicy {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
        }
    }
}

/// Why a request got no (usable) answer. `Display` is short and safe to show to the tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OutboundError {
    /// The URL or its addresses break the rules; nothing was sent.
    #[error("refused: {reason}")]
    Refused { reason: String },
    #[error("timed out")]
    Timeout,
    #[error("connection failed")]
    Connect,
    #[error("TLS handshake failed")]
    Tls,
    #[error("request failed")]
    Other,
}

/// What happened. `status` is set whenever a response head arrived (with `error` then `None`);
/// what the status means (success, retry, give up) is the caller's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundResult {
    pub status: Option<u16>,
    pub latency: Duration,
    /// At most [`EXCERPT_BYTES`] bytes of the body, as UTF-8 (invalid bytes replaced).
    pub response_excerpt: String,
    /// From a `Retry-After` header, in seconds or as an HTTP date (a past date gives zero).
    pub retry_after: Option<Duration>,
    pub error: Option<OutboundError>,
}

/// POSTs the request under the policy. Never panics; every failure is in the result.
pub fn post(request: &OutboundRequest, policy: &OutboundPolicy) -> OutboundResult {
    let started = Instant::now();
    let outcome = vet(&request.url, policy).and_then(|target| send(request, policy, target));
    let latency = started.elapsed();
    match outcome {
        Ok(answer) => OutboundResult {
            status: Some(answer.status),
            latency,
            response_excerpt: excerpt(&answer.body),
            retry_after: answer.retry_after,
            error: None,
        },
        Err(error) => OutboundResult {
            status: None,
            latency,
            response_excerpt: String::new(),
            retry_after: None,
            error: Some(error),
        },
    }
}

/// A URL that passed the rules, with the addresses to connect to.
struct Target {
    url: Url,
    /// Set for a host name: the vetted addresses the client must use for it.
    pinned: Option<(String, Vec<SocketAddr>)>,
    deadline: Instant,
}

struct Answer {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

fn refused(reason: &str) -> OutboundError {
    OutboundError::Refused {
        reason: reason.to_owned(),
    }
}

/// Checks the URL and resolves its host once, refusing non-public addresses unless allowed.
fn vet(raw: &str, policy: &OutboundPolicy) -> Result<Target, OutboundError> {
    let deadline = Instant::now() + policy.timeout;
    let url = Url::parse(raw).map_err(|_| refused("not a valid URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(refused("only http and https URLs are allowed"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refused("credentials in the URL are not allowed"));
    }
    let port = url
        .port_or_known_default()
        .ok_or_else(|| refused("the URL has no port"))?;
    let (addresses, pinned_host) = match url.host() {
        Some(url::Host::Ipv4(ip)) => (vec![SocketAddr::new(IpAddr::V4(ip), port)], None),
        Some(url::Host::Ipv6(ip)) => (vec![SocketAddr::new(IpAddr::V6(ip), port)], None),
        Some(url::Host::Domain(name)) => (resolve(name, port, deadline)?, Some(name.to_owned())),
        None => return Err(refused("the URL has no host")),
    };
    if addresses.is_empty() {
        return Err(OutboundError::Connect);
    }
    if !policy.allow_private && addresses.iter().any(|a| !is_public(a.ip())) {
        return Err(refused("the address is private, loopback or reserved"));
    }
    Ok(Target {
        url,
        pinned: pinned_host.map(|host| (host, addresses)),
        deadline,
    })
}

/// The system resolver has no timeout of its own, so it runs on a helper thread that is
/// abandoned (and finishes on its own) when the deadline passes first.
fn resolve(host: &str, port: u16, deadline: Instant) -> Result<Vec<SocketAddr>, OutboundError> {
    let (sender, receiver) = mpsc::channel();
    let query = (host.to_owned(), port);
    std::thread::Builder::new()
        .name("outbound-dns".to_owned())
        .spawn(move || {
            let answer = query.to_socket_addrs().map(Iterator::collect::<Vec<_>>);
            let _ = sender.send(answer);
        })
        .map_err(|_| OutboundError::Other)?;
    let wait = deadline.saturating_duration_since(Instant::now());
    match receiver.recv_timeout(wait) {
        Ok(Ok(addresses)) => Ok(addresses),
        Ok(Err(_)) => Err(OutboundError::Connect),
        Err(mpsc::RecvTimeoutError::Timeout) => Err(OutboundError::Timeout),
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(OutboundError::Other),
    }
}

fn send(
    request: &OutboundRequest,
    policy: &OutboundPolicy,
    target: Target,
) -> Result<Answer, OutboundError> {
    let remaining = target.deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(OutboundError::Timeout);
    }
    let client = client_for(target.pinned)?;
    let mut response = client
        .post(target.url)
        .timeout(remaining)
        .headers(headers(&request.headers)?)
        .body(request.body.clone())
        .send()
        .map_err(|error| classify(&error))?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| parse_retry_after(value, SystemTime::now()));
    let mut body = Vec::new();
    let cap = u64::try_from(policy.max_response_bytes).unwrap_or(u64::MAX);
    // The status is the answer; a body that breaks off or runs past the deadline only
    // shortens the excerpt.
    let _ = (&mut response).take(cap).read_to_end(&mut body);
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}

/// A client's pinning: the host name and its vetted addresses, or none for an IP literal.
type Pinning = Option<(String, Vec<SocketAddr>)>;

/// Clients kept at most; past that the cache starts afresh (a receiver whose DNS answer
/// keeps changing must not grow it without bound).
const MAX_CLIENTS: usize = 64;

/// The client for one pinning, built once and then reused: building one costs a TLS
/// configuration and a runtime thread, and a reused client keeps its connections alive, which
/// is what makes more than a few hundred deliveries a second possible (docs/PERFORMANCE.md,
/// "Webhooks"). Reuse keeps the guarantees: a client is only ever used for requests whose
/// host resolved to exactly its pinned addresses (a new answer is a new client), so its
/// pooled connections go to vetted addresses only; it follows no redirect and uses no proxy.
/// The deadline is set per request.
fn client_for(pinning: Pinning) -> Result<reqwest::blocking::Client, OutboundError> {
    static CLIENTS: OnceLock<Mutex<HashMap<Pinning, reqwest::blocking::Client>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Mutex::default);
    if let Some(client) = lock(clients).get(&pinning) {
        return Ok(client.clone());
    }
    let mut builder = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if let Some((host, addresses)) = &pinning {
        builder = builder.resolve_to_addrs(host, addresses);
    }
    let client = builder.build().map_err(|_| OutboundError::Other)?;
    let stale = {
        let mut clients = lock(clients);
        let stale = if clients.len() >= MAX_CLIENTS {
            std::mem::take(&mut *clients)
        } else {
            HashMap::new()
        };
        clients.insert(pinning, client.clone());
        stale
    };
    // Dropped outside the lock: dropping a client waits for its runtime thread to end.
    drop(stale);
    Ok(client)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// Our two fixed headers, then the caller's (which may replace them).
fn headers(extra: &[(String, String)]) -> Result<HeaderMap, OutboundError> {
    let mut map = HeaderMap::new();
    map.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    map.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    for (name, value) in extra {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| OutboundError::Other)?;
        let value = HeaderValue::from_str(value).map_err(|_| OutboundError::Other)?;
        map.insert(name, value);
    }
    Ok(map)
}

/// Sorts a client error into the small set the delivery log shows.
fn classify(error: &reqwest::Error) -> OutboundError {
    if error.is_timeout() {
        return OutboundError::Timeout;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(current) = source {
        if current.is::<rustls::Error>() {
            return OutboundError::Tls;
        }
        // io::Error's own `source` skips the error it wraps, so look inside it too.
        if let Some(io) = current.downcast_ref::<std::io::Error>() {
            if io
                .get_ref()
                .is_some_and(|inner| inner.is::<rustls::Error>())
            {
                return OutboundError::Tls;
            }
            if io.kind() == std::io::ErrorKind::TimedOut {
                return OutboundError::Timeout;
            }
        }
        source = current.source();
    }
    if error.is_connect() {
        OutboundError::Connect
    } else {
        OutboundError::Other
    }
}

/// `Retry-After: <seconds>` or `Retry-After: <HTTP-date>` (RFC 9110 §10.2.3).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The first [`EXCERPT_BYTES`] bytes as text, cut on a character boundary.
fn excerpt(body: &[u8]) -> String {
    let head = &body[..body.len().min(EXCERPT_BYTES)];
    let mut text = String::from_utf8_lossy(head).into_owned();
    if text.len() > EXCERPT_BYTES {
        let mut end = EXCERPT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Networks that are not the public internet (IANA special-purpose registries). IPv6 forms
/// that embed an IPv4 address (mapped, NAT64, 6to4) are judged by that address instead.
const NON_PUBLIC: &[&str] = &[
    "0.0.0.0/8",       // "this network", unspecified
    "10.0.0.0/8",      // private
    "100.64.0.0/10",   // carrier-grade NAT
    "127.0.0.0/8",     // loopback
    "169.254.0.0/16",  // link-local, cloud metadata
    "172.16.0.0/12",   // private
    "192.0.0.0/24",    // IETF protocol assignments
    "192.0.2.0/24",    // documentation
    "192.88.99.0/24",  // 6to4 relay anycast
    "192.168.0.0/16",  // private
    "198.18.0.0/15",   // benchmarking
    "198.51.100.0/24", // documentation
    "203.0.113.0/24",  // documentation
    "224.0.0.0/4",     // multicast
    "240.0.0.0/4",     // reserved, broadcast
    "::/96",           // unspecified, loopback, IPv4-compatible
    "100::/64",        // discard
    "2001::/23",       // IETF protocol assignments (Teredo, ORCHID, …)
    "2001:db8::/32",   // documentation
    "fc00::/7",        // unique local
    "fe80::/10",       // link-local
    "fec0::/10",       // site-local (deprecated)
    "ff00::/8",        // multicast
];

fn non_public() -> &'static [IpNetwork] {
    static NETWORKS: OnceLock<Vec<IpNetwork>> = OnceLock::new();
    NETWORKS.get_or_init(|| {
        NON_PUBLIC
            .iter()
            .filter_map(|raw| IpNetwork::parse(raw).ok())
            .collect()
    })
}

/// Whether an address is on the public internet (and so a webhook may go there by default).
pub fn is_public(ip: IpAddr) -> bool {
    if let IpAddr::V6(v6) = ip
        && let Some(v4) = embedded_ipv4(v6)
    {
        return is_public(IpAddr::V4(v4));
    }
    !non_public().iter().any(|network| network.contains(ip))
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:0:0/96`), NAT64 (`64:ff9b::/96`) or 6to4
/// (`2002::/16`) address.
fn embedded_ipv4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = ip.segments();
    let bits = u128::from(ip);
    let low = Ipv4Addr::from(u32::try_from(bits & 0xffff_ffff).ok()?);
    if let Some(mapped) = ip.to_ipv4_mapped() {
        Some(mapped)
    } else if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(low)
    } else if segments[0] == 0x2002 {
        let high = u32::try_from((bits >> 80) & 0xffff_ffff).ok()?;
        Some(Ipv4Addr::from(high))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::sync::{Arc, Mutex};

    /// How the test receiver answers.
    #[derive(Clone, Copy)]
    enum Reply {
        Fixed(&'static str),
        /// Never answers; waits until the client gives up and closes.
        Silent,
        /// Announces a huge body, sends 8 KiB of it and waits for the client to close.
        Endless,
    }

    /// A local HTTP receiver recording every request it reads (head and body as text).
    fn receiver(reply: Reply) -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let seen = Arc::clone(&seen);
                std::thread::spawn(move || answer(stream, reply, &seen));
            }
        });
        (address, log)
    }

    fn answer(mut stream: TcpStream, reply: Reply, seen: &Mutex<Vec<String>>) {
        let mut request = Vec::new();
        let mut chunk = [0u8; 4096];
        let mut expected = None;
        while expected.is_none_or(|total| request.len() < total) {
            let Ok(read) = stream.read(&mut chunk) else {
                return;
            };
            if read == 0 {
                return;
            }
            request.extend_from_slice(&chunk[..read]);
            let text = String::from_utf8_lossy(&request).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                expected = Some(end + 4 + length);
            }
        }
        seen.lock()
            .unwrap()
            .push(String::from_utf8_lossy(&request).into_owned());
        match reply {
            Reply::Fixed(text) => {
                let _ = stream.write_all(text.as_bytes());
            }
            Reply::Silent => {}
            Reply::Endless => {
                let head = "HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n";
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&[b'x'; 8192]);
            }
        }
        // Hold the connection until the client closes it.
        let _ = stream.read(&mut chunk);
    }

    fn request(url: String) -> OutboundRequest {
        OutboundRequest {
            url,
            headers: vec![("webhook-id".to_owned(), "evt_1".to_owned())],
            body: br#"{"type":"ping"}"#.to_vec(),
        }
    }

    fn local() -> OutboundPolicy {
        OutboundPolicy {
            allow_private: true,
            timeout: Duration::from_secs(5),
            max_response_bytes: 4096,
        }
    }

    #[test]
    fn a_200_is_recorded_with_our_headers_and_body_sent() {
        let (address, log) = receiver(Reply::Fixed(
            "HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\naccepted",
        ));
        let result = post(&request(format!("http://{address}/hook")), &local());
        assert_eq!(result.error, None);
        assert_eq!(result.status, Some(200));
        assert_eq!(result.response_excerpt, "accepted");
        assert_eq!(result.retry_after, None);
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1);
        let sent = log[0].to_lowercase();
        assert!(sent.starts_with("post /hook http/1.1\r\n"), "{sent}");
        assert!(
            sent.contains("content-type: application/json\r\n"),
            "{sent}"
        );
        assert!(
            sent.contains("user-agent: stageflow-webhooks/1\r\n"),
            "{sent}"
        );
        assert!(sent.contains("webhook-id: evt_1\r\n"), "{sent}");
        assert!(sent.contains(&format!("host: {address}\r\n")), "{sent}");
        assert!(sent.ends_with(r#"{"type":"ping"}"#), "{sent}");
    }

    #[test]
    fn a_host_name_is_resolved_once_and_sent_as_host() {
        let (address, log) = receiver(Reply::Fixed("HTTP/1.1 204 No Content\r\n\r\n"));
        let url = format!("http://localhost:{}/", address.port());
        let result = post(&request(url), &local());
        assert_eq!(result.status, Some(204), "{:?}", result.error);
        let sent = log.lock().unwrap()[0].to_lowercase();
        assert!(sent.contains(&format!("host: localhost:{}\r\n", address.port())));
    }

    #[test]
    fn a_500_and_a_429_with_retry_after_are_statuses() {
        let (address, _) = receiver(Reply::Fixed(
            "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\n\r\noops",
        ));
        let result = post(&request(format!("http://{address}/")), &local());
        assert_eq!((result.status, result.error), (Some(500), None));
        assert_eq!(result.response_excerpt, "oops");

        let (address, _) = receiver(Reply::Fixed(
            "HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 0\r\n\r\n",
        ));
        let result = post(&request(format!("http://{address}/")), &local());
        assert_eq!(result.status, Some(429));
        assert_eq!(result.retry_after, Some(Duration::from_secs(7)));
    }

    #[test]
    fn a_redirect_is_not_followed() {
        let (address, log) = receiver(Reply::Fixed(
            "HTTP/1.1 302 Found\r\nlocation: /elsewhere\r\ncontent-length: 0\r\n\r\n",
        ));
        let result = post(&request(format!("http://{address}/")), &local());
        assert_eq!((result.status, result.error), (Some(302), None));
        assert_eq!(log.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_silent_receiver_times_out() {
        let (address, _) = receiver(Reply::Silent);
        let policy = OutboundPolicy {
            timeout: Duration::from_millis(300),
            ..local()
        };
        let result = post(&request(format!("http://{address}/")), &policy);
        assert_eq!(result.status, None);
        assert_eq!(result.error, Some(OutboundError::Timeout));
        assert!(result.latency >= Duration::from_millis(300));
        assert_eq!(
            result.error.map(|e| e.to_string()).as_deref(),
            Some("timed out")
        );
    }

    #[test]
    fn the_body_read_stops_at_the_cap() {
        // The receiver promises 100 MB and sends 8 KiB: a client reading past the 4 KiB cap
        // would wait for the rest until the 30 s deadline.
        let (address, _) = receiver(Reply::Endless);
        let policy = OutboundPolicy {
            timeout: Duration::from_secs(30),
            ..local()
        };
        let result = post(&request(format!("http://{address}/")), &policy);
        assert_eq!((result.status, result.error), (Some(200), None));
        assert_eq!(result.response_excerpt, "x".repeat(EXCERPT_BYTES));
        assert!(
            result.latency < Duration::from_secs(15),
            "{:?}",
            result.latency
        );
    }

    #[test]
    fn a_closed_port_is_a_connect_error() {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let result = post(&request(format!("http://127.0.0.1:{port}/")), &local());
        assert_eq!(result.error, Some(OutboundError::Connect));
    }

    #[test]
    fn loopback_is_refused_without_a_connection_unless_allowed() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let policy = OutboundPolicy {
            allow_private: false,
            ..local()
        };
        for url in [
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/"),
        ] {
            let result = post(&request(url.clone()), &policy);
            assert!(
                matches!(result.error, Some(OutboundError::Refused { .. })),
                "{url}: {result:?}"
            );
            assert_eq!(result.status, None);
        }
        assert_eq!(
            listener.accept().map(|_| ()).unwrap_err().kind(),
            std::io::ErrorKind::WouldBlock
        );
        let (address, _) = receiver(Reply::Fixed("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"));
        let allowed = post(&request(format!("http://{address}/")), &local());
        assert_eq!(allowed.status, Some(200));
    }

    #[test]
    fn forbidden_urls_are_refused_before_connecting() {
        let policy = OutboundPolicy::default();
        for url in [
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://100.64.1.1/",
            "http://user:pw@example.com/",
            "http://user@example.com/",
            "ftp://x/",
            "file:///etc/passwd",
            "not a url",
        ] {
            let result = post(&request(url.to_owned()), &policy);
            let Some(OutboundError::Refused { reason }) = &result.error else {
                panic!("{url} was not refused: {result:?}");
            };
            assert!(!reason.is_empty());
            assert!(result.latency < Duration::from_secs(1), "{url}");
        }
    }

    #[test]
    fn only_public_addresses_are_public() {
        assert_eq!(non_public().len(), NON_PUBLIC.len());
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(public.parse().unwrap()), "{public}");
        }
        for private in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "127.0.0.1",
            "169.254.169.254",
            "172.31.255.255",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "2001:db8::1",
            "fd00::1",
            "fe80::1",
            "ff02::1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }

    #[test]
    fn retry_after_takes_seconds_or_a_date() {
        let at = httpdate::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        let before = at - Duration::from_secs(30);
        assert_eq!(
            parse_retry_after(" 120 ", before),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", before),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", at + Duration::from_secs(5)),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", before), None);
        assert_eq!(parse_retry_after("-1", before), None);
    }

    #[test]
    fn the_excerpt_is_short_valid_text() {
        let accents = "é".repeat(600);
        let text = excerpt(accents.as_bytes());
        assert!(text.len() <= EXCERPT_BYTES && text.len() >= EXCERPT_BYTES - 3);
        assert!(text.chars().all(|c| c == 'é' || c == '\u{fffd}'));
        let garbage = excerpt(&[0xff; 4000]);
        assert!(garbage.len() <= EXCERPT_BYTES);
        assert!(garbage.chars().all(|c| c == '\u{fffd}'));
        assert_eq!(excerpt(b"short"), "short");
    }

    #[test]
    fn errors_display_short_safe_messages() {
        assert_eq!(
            refused("only http and https URLs are allowed").to_string(),
            "refused: only http and https URLs are allowed"
        );
        assert_eq!(OutboundError::Connect.to_string(), "connection failed");
        assert_eq!(OutboundError::Tls.to_string(), "TLS handshake failed");
    }
}
