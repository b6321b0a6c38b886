//! One run of a channel's IMAP poller (the `mail.imap` job): connect, LOGIN, SELECT, take in
//! every message above the last UID through intake, mark it (`\Seen`, or `\Deleted` and
//! EXPUNGE), store the UID; then IDLE when the server offers it and the channel wants it, and
//! take in what arrives. At-least-once: a message is flagged and its UID stored only after
//! intake recorded it; one taken in twice is recognised by its Message-ID (intake records the
//! copy as `ignored`). docs/mail.md, "IMAP setup".

use std::fmt::Debug;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::{Client, Session};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use futures_util::future::{Either, select};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

use super::imap::password;
use super::intake::{self, IntakeEnv};
use crate::auth::TenantScope;
use crate::config::ImapSettings;
use crate::db::Database;
use crate::db::mail::{self as rows, ChannelRow, ImapState};
use crate::domain::ids::MailChannelId;
use crate::domain::mail_channel::{AfterIntake, ImapConfig, ImapSecurity};
use crate::service::error::ServiceError;

/// `imap_state.last_error` is cut to this many characters.
const MAX_ERROR_CHARS: usize = 500;

/// What a run asks of the job runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunEnd {
    /// The channel no longer polls (deleted, disabled, IMAP removed): the job ends.
    Gone,
    /// Run again after this wait.
    Again(Duration),
    /// It failed (kept as the channel's `last_error` too): retry with back-off.
    Failed(String),
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Debug {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Debug> Io for T {}
type Imap = Session<Box<dyn Io>>;

/// A failure of the run, said without secrets.
struct Failure(String);

impl From<async_imap::error::Error> for Failure {
    fn from(e: async_imap::error::Error) -> Self {
        Failure(format!("IMAP: {e}"))
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure(format!("connection: {e}"))
    }
}

impl From<ServiceError> for Failure {
    fn from(e: ServiceError) -> Self {
        Failure(format!("intake: {e}"))
    }
}

impl From<diesel::result::Error> for Failure {
    fn from(e: diesel::result::Error) -> Self {
        Failure(format!("database: {e}"))
    }
}

/// What one run works with.
pub struct Poll<'a> {
    pub db: &'a Database,
    pub env: &'a IntakeEnv<'a>,
    pub settings: ImapSettings,
    pub scope: TenantScope,
    pub channel: MailChannelId,
    pub now: DateTime<Utc>,
    /// True once the node shuts down: IDLE stops.
    pub stopping: watch::Receiver<bool>,
}

/// One run of the poller of a channel, on a runtime of its own (it runs on the job runner's
/// blocking pool).
pub fn run(poll: &Poll<'_>) -> RunEnd {
    let row = poll.db.write_blocking(|conn| {
        Ok::<_, ServiceError>(rows::find_channel(conn, &poll.scope, poll.channel)?)
    });
    let row = match row {
        Ok(Some(row)) if row.enabled && row.imap.is_some() => row,
        Ok(_) => return RunEnd::Gone,
        Err(e) => return RunEnd::Failed(format!("database: {e}")),
    };
    let config = match super::imap::ImapInput::of_row(&row) {
        Ok(Some(input)) => input.config,
        Ok(None) => return RunEnd::Gone,
        Err(e) => return RunEnd::Failed(e.to_string()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let runtime = match runtime {
        Ok(runtime) => runtime,
        Err(e) => return RunEnd::Failed(format!("no runtime for the IMAP poll: {e}")),
    };
    let mut state = ImapState::of(&row);
    // Set again by this run if it fails, or when it leaves a message in the mailbox.
    state.last_error = None;
    let secret = password(poll.env.master, &row).unwrap_or_default();
    let outcome = runtime.block_on(session(poll, &row, &config, &secret, &mut state));
    state.polled_at = Some(poll.now.into());
    let end = match outcome {
        Ok(end) => end,
        Err(Failure(error)) => {
            // The server may echo what it was sent; the password never leaves this function.
            let error = if secret.is_empty() {
                error
            } else {
                error.replace(&secret, "********")
            };
            state.last_error = Some(error.chars().take(MAX_ERROR_CHARS).collect());
            RunEnd::Failed(error)
        }
    };
    let written = poll.db.write_blocking(|conn| {
        Ok::<_, ServiceError>(rows::set_imap_state(
            conn,
            &poll.scope,
            poll.channel,
            &state,
        )?)
    });
    if let Err(e) = written {
        log::warn!("IMAP state of channel {} not written: {e}", poll.channel);
    }
    end
}

/// Connects, takes in what is new, IDLEs if it may, and says when to run again.
async fn session(
    poll: &Poll<'_>,
    row: &ChannelRow,
    config: &ImapConfig,
    secret: &str,
    state: &mut ImapState,
) -> Result<RunEnd, Failure> {
    let deadline = poll.settings.timeout;
    let client = within(deadline, connect(config)).await??;
    let mut imap = match within(deadline, client.login(&config.username, secret)).await? {
        Ok(session) => session,
        Err((e, _)) => return Err(Failure(format!("LOGIN refused: {e}"))),
    };
    let mailbox = within(deadline, imap.select(&config.folder)).await??;
    let validity = mailbox.uid_validity.map(i64::from);
    if state.uidvalidity != validity {
        // A new mailbox, or the server renumbered it: start over (copies are recognised by
        // their Message-ID).
        state.uidvalidity = validity;
        state.last_uid = 0;
    }
    take_in(poll, row, config, &mut imap, state).await?;
    let idle = config.idle
        && within(deadline, imap.capabilities())
            .await??
            .has_str("IDLE");
    if !idle {
        let _ = within(deadline, imap.logout()).await;
        return Ok(RunEnd::Again(poll.settings.poll));
    }
    idle_then_take_in(poll, row, config, imap, state).await
}

/// IDLE until the server pushes news, the IDLE time is up or the node stops; take in what
/// arrived; ask to run again a second later.
async fn idle_then_take_in(
    poll: &Poll<'_>,
    row: &ChannelRow,
    config: &ImapConfig,
    imap: Imap,
    state: &mut ImapState,
) -> Result<RunEnd, Failure> {
    let deadline = poll.settings.timeout;
    let unsolicited = imap.unsolicited_responses.clone();
    let mut handle = imap.idle();
    within(deadline, handle.init()).await??;
    // New mail announced since the last search (while taking in, or before IDLE began) is
    // not pushed again: take it in now.
    let pushed = if !unsolicited.is_empty() {
        Some(IdleResponse::ManualInterrupt)
    } else {
        let (wait, interrupt) = handle.wait_with_timeout(poll.settings.idle);
        let mut stopping = poll.stopping.clone();
        let stop = async move {
            let _ = stopping.wait_for(|stop| *stop).await;
        };
        match select(pin!(wait), pin!(stop)).await {
            Either::Left((response, _)) => Some(response?),
            Either::Right(_) => {
                drop(interrupt);
                None
            }
        }
    };
    let Some(response) = pushed else {
        return Ok(RunEnd::Again(Duration::from_secs(1)));
    };
    let mut imap = within(deadline, handle.done()).await??;
    if matches!(
        response,
        IdleResponse::NewData(_) | IdleResponse::ManualInterrupt
    ) {
        take_in(poll, row, config, &mut imap, state).await?;
    }
    let _ = within(deadline, imap.logout()).await;
    Ok(RunEnd::Again(Duration::from_secs(1)))
}

async fn within<F: std::future::Future>(limit: Duration, work: F) -> Result<F::Output, Failure> {
    tokio::time::timeout(limit, work)
        .await
        .map_err(|_| Failure(format!("no answer within {} s", limit.as_secs())))
}

/// A client past the server's greeting (and STARTTLS), ready to LOGIN.
async fn connect(config: &ImapConfig) -> Result<Client<Box<dyn Io>>, Failure> {
    let tcp = tokio::net::TcpStream::connect((config.host.as_str(), config.port)).await?;
    let stream: Box<dyn Io> = match config.security {
        ImapSecurity::None => Box::new(tcp),
        ImapSecurity::Tls => Box::new(tls(config, tcp).await?),
        ImapSecurity::Starttls => {
            let mut plain = Client::new(tcp);
            greeting(&mut plain).await?;
            plain.run_command_and_check_ok("STARTTLS", None).await?;
            let tls = tls(config, plain.into_inner()).await?;
            return Ok(Client::new(Box::new(tls)));
        }
    };
    let mut client = Client::new(stream);
    greeting(&mut client).await?;
    Ok(client)
}

async fn greeting<T: AsyncRead + AsyncWrite + Unpin + Send + Debug>(
    client: &mut Client<T>,
) -> Result<(), Failure> {
    match client.read_response().await? {
        Some(_) => Ok(()),
        None => Err(Failure("the server closed the connection".to_owned())),
    }
}

/// TLS over `tcp`, the server certificate checked against the Mozilla roots and the host.
async fn tls(
    config: &ImapConfig,
    tcp: tokio::net::TcpStream,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, Failure> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Failure(format!("TLS: {e}")))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name = rustls_pki_types::ServerName::try_from(config.host.clone())
        .map_err(|e| Failure(format!("TLS: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    Ok(connector.connect(name, tcp).await?)
}

/// Every message above the last UID, oldest first, through intake; each one is flagged and
/// its UID stored once intake has recorded it.
async fn take_in(
    poll: &Poll<'_>,
    row: &ChannelRow,
    config: &ImapConfig,
    imap: &mut Imap,
    state: &mut ImapState,
) -> Result<(), Failure> {
    let deadline = poll.settings.timeout;
    // What the server announced so far is covered by this search.
    while imap.unsolicited_responses.try_recv().is_ok() {}
    let first = state.last_uid + 1;
    let query = format!("UID {first}:* NOT DELETED");
    let found = within(deadline, imap.uid_search(&query)).await??;
    let mut uids: Vec<u32> = found
        .into_iter()
        .filter(|uid| i64::from(*uid) >= first)
        .collect();
    uids.sort_unstable();
    let limit = u64::try_from(row.max_message_bytes).unwrap_or(0);
    let mut deleted = false;
    for uid in uids {
        let (size, raw) = fetch(imap, uid, limit, deadline).await?;
        let raw = match raw {
            Some(raw) => raw,
            None => {
                // Intake takes nothing above the channel's limit (the HTTP way answers 413):
                // the message stays in the mailbox, unflagged, for a person to see to.
                state.last_error = Some(format!(
                    "message UID {uid} ({size} bytes) is larger than the channel takes \
                     ({limit} bytes); left in the mailbox"
                ));
                store_uid(poll, state, uid)?;
                continue;
            }
        };
        intake::receive(poll.db, poll.env, poll.scope, poll.channel, raw, poll.now)?;
        store_uid(poll, state, uid)?;
        let flag = match config.after_intake {
            AfterIntake::MarkSeen => "+FLAGS.SILENT (\\Seen)",
            AfterIntake::Delete => "+FLAGS.SILENT (\\Deleted)",
        };
        let mut stored = within(deadline, imap.uid_store(uid.to_string(), flag)).await??;
        while let Some(result) = stored.next().await {
            result?;
        }
        drop(stored);
        deleted |= config.after_intake == AfterIntake::Delete;
    }
    if deleted {
        let expunged = within(deadline, imap.expunge()).await??;
        let mut expunged = pin!(expunged);
        while let Some(result) = expunged.next().await {
            result?;
        }
    }
    Ok(())
}

/// The message's size and, when within `limit`, its bytes (`BODY.PEEK[]`: fetching does not
/// flag it seen).
async fn fetch(
    imap: &mut Imap,
    uid: u32,
    limit: u64,
    deadline: Duration,
) -> Result<(u64, Option<Vec<u8>>), Failure> {
    let mut size = 0;
    {
        let mut sizes = within(
            deadline,
            imap.uid_fetch(uid.to_string(), "(UID RFC822.SIZE)"),
        )
        .await??;
        while let Some(fetched) = sizes.next().await {
            let fetched = fetched?;
            if fetched.uid == Some(uid) {
                size = u64::from(fetched.size.unwrap_or(0));
            }
        }
    }
    if size > limit {
        return Ok((size, None));
    }
    let mut body = None;
    let mut bodies = within(
        deadline,
        imap.uid_fetch(uid.to_string(), "(UID BODY.PEEK[])"),
    )
    .await??;
    while let Some(fetched) = bodies.next().await {
        let fetched = fetched?;
        if fetched.uid == Some(uid) {
            body = fetched.body().map(<[u8]>::to_vec);
        }
    }
    match body {
        Some(body) => Ok((size, Some(body))),
        None => Err(Failure(format!("message UID {uid} came without a body"))),
    }
}

fn store_uid(poll: &Poll<'_>, state: &mut ImapState, uid: u32) -> Result<(), Failure> {
    state.last_uid = state.last_uid.max(i64::from(uid));
    let snapshot = state.clone();
    poll.db.write_blocking(|conn| {
        Ok::<_, ServiceError>(rows::set_imap_state(
            conn,
            &poll.scope,
            poll.channel,
            &snapshot,
        )?)
    })?;
    Ok(())
}
