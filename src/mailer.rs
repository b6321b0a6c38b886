//! Outgoing mail over SMTP (lettre): one message built with the threading headers and sent
//! through a pooled, blocking transport.
//!
//! Blocking by design, like `outbound`: the job runner calls [`Mailer::send`] on its blocking
//! pool. One [`Mailer`] keeps its SMTP connections open between sends (lettre's pool), so a
//! burst of notifications does not pay the TCP, TLS and EHLO set-up per mail
//! (docs/PERFORMANCE.md, "Outgoing mail").
//!
//! Errors are split the way a retry needs: a 5xx answer will be the same next time
//! ([`SendError::Permanent`]), anything else — a 4xx answer, a refused or lost connection, a
//! timeout, a TLS failure — may pass ([`SendError::Transient`]).

use std::str::FromStr;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::{PoolConfig, SmtpTransport};
use lettre::{Address, Transport};

/// How the connection to the SMTP server is secured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// Plain SMTP (a relay on the same host or network only).
    None,
    /// Plain connect, then `STARTTLS`, required: a server that does not offer it is an error.
    StartTls,
    /// TLS from the first byte (SMTPS, usually port 465).
    Tls,
}

impl FromStr for SmtpSecurity {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "none" => Ok(Self::None),
            "starttls" => Ok(Self::StartTls),
            "tls" => Ok(Self::Tls),
            other => Err(format!("`{other}` is not one of none, starttls, tls")),
        }
    }
}

impl SmtpSecurity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::StartTls => "starttls",
            Self::Tls => "tls",
        }
    }
}

/// Where and how mail goes out (`STAGEFLOW_SMTP_*`, docs/mail.md).
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub security: SmtpSecurity,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The `From` of every mail, e.g. `Stageflow <noreply@example.com>`.
    pub from: String,
    /// The deadline of connecting and of each SMTP command.
    pub timeout: Duration,
    /// The right-hand side of the Message-IDs Stageflow makes.
    pub message_id_domain: String,
}

impl std::fmt::Debug for SmtpSettings {
    /// The password is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .field("from", &self.from)
            .field("timeout", &self.timeout)
            .field("message_id_domain", &self.message_id_domain)
            .finish()
    }
}

/// One mail to send: plain UTF-8 text, threading headers, ids without angle brackets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMail {
    /// Display name (any script; RFC 2047-encoded on the wire) and address.
    pub to: Vec<(Option<String>, String)>,
    /// Any script; RFC 2047-encoded on the wire.
    pub subject: String,
    pub text: String,
    pub message_id: String,
    pub in_reply_to: Option<String>,
    pub references: Vec<String>,
    /// Adds `Auto-Submitted: auto-generated` (RFC 3834), so that well-behaved auto-responders
    /// do not answer and our own intake recognises the mail.
    pub auto_submitted: bool,
}

/// Why a mail was not sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// May pass on a later attempt: a 4xx answer, no connection, a timeout, TLS.
    #[error("temporary SMTP failure: {0}")]
    Transient(String),
    /// Will not pass as it is: a 5xx answer, or a mail or setting that cannot be expressed.
    #[error("permanent SMTP failure: {0}")]
    Permanent(String),
}

impl SendError {
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Transient(_))
    }
}

/// An SMTP client with its connection pool; cheap to share (`Arc`) across job threads.
pub struct Mailer {
    transport: SmtpTransport,
    from: Mailbox,
    message_id_domain: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("from", &self.from.to_string())
            .field("message_id_domain", &self.message_id_domain)
            .finish_non_exhaustive()
    }
}

/// Connections the pool keeps open at most (one per concurrently sending job thread).
const POOL_MAX_SIZE: u32 = 8;
/// An idle pooled connection is closed after this (servers drop idle clients after ~5 min).
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

impl Mailer {
    /// Checks the settings and builds the transport; connects lazily, on the first send.
    /// The server's certificate must chain to the Mozilla roots.
    pub fn new(settings: SmtpSettings) -> Result<Self, SendError> {
        Self::trusting(settings, None)
    }

    /// Like [`Mailer::new`], also trusting the PEM certificate `root` (a private CA or a
    /// test's self-signed certificate).
    pub fn trusting(settings: SmtpSettings, root: Option<&[u8]>) -> Result<Self, SendError> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|e| SendError::Permanent(format!("the From address: {e}")))?;
        let tls = match settings.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters(&settings.host, root)?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters(&settings.host, root)?),
        };
        let hello = ClientId::Domain(settings.message_id_domain.clone());
        let mut builder = SmtpTransport::builder_dangerous(settings.host.as_str())
            .port(settings.port)
            .tls(tls)
            .hello_name(hello)
            .timeout(Some(settings.timeout))
            .pool_config(
                PoolConfig::new()
                    .max_size(POOL_MAX_SIZE)
                    .idle_timeout(POOL_IDLE_TIMEOUT),
            );
        if let Some(username) = settings.username {
            let password = settings.password.unwrap_or_default();
            builder = builder.credentials(Credentials::new(username, password));
        }
        Ok(Self {
            transport: builder.build(),
            from,
            message_id_domain: settings.message_id_domain,
        })
    }

    /// Sends one mail (one SMTP transaction to all its recipients), reusing a pooled
    /// connection when one is open.
    pub fn send(&self, mail: &OutgoingMail) -> Result<(), SendError> {
        let message = self.build(mail)?;
        self.transport.send(&message).map(|_| ()).map_err(classify)
    }

    /// Connects to the server and greets it (EHLO, STARTTLS or TLS and AUTH as configured,
    /// then NOOP): what a send would need, without sending.
    pub fn ping(&self) -> Result<(), SendError> {
        match self.transport.test_connection() {
            Ok(true) => Ok(()),
            Ok(false) => Err(SendError::Transient(
                "the SMTP server did not answer NOOP".to_owned(),
            )),
            Err(error) => Err(classify(error)),
        }
    }

    /// The domain of the Message-IDs this mailer's mails carry.
    pub fn message_id_domain(&self) -> &str {
        &self.message_id_domain
    }

    fn build(&self, mail: &OutgoingMail) -> Result<Message, SendError> {
        if mail.to.is_empty() {
            return Err(SendError::Permanent("the mail has no recipient".to_owned()));
        }
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(mail.subject.clone())
            .message_id(Some(angle(&mail.message_id)?));
        for (name, address) in &mail.to {
            let address: Address = address
                .parse()
                .map_err(|e| SendError::Permanent(format!("recipient `{address}`: {e}")))?;
            builder = builder.to(Mailbox::new(name.clone(), address));
        }
        if let Some(parent) = &mail.in_reply_to {
            builder = builder.in_reply_to(angle(parent)?);
        }
        if !mail.references.is_empty() {
            let references = mail
                .references
                .iter()
                .map(|id| angle(id))
                .collect::<Result<Vec<_>, _>>()?;
            builder = builder.references(references.join(" "));
        }
        if mail.auto_submitted {
            let name = HeaderName::new_from_ascii("Auto-Submitted".to_owned())
                .map_err(|e| SendError::Permanent(e.to_string()))?;
            builder = builder.raw_header(HeaderValue::new(name, "auto-generated".to_owned()));
        }
        builder
            .header(ContentType::TEXT_PLAIN)
            .body(mail.text.clone())
            .map_err(|e| SendError::Permanent(format!("the message: {e}")))
    }
}

/// The domain of a `From` mailbox (`Stageflow <noreply@example.com>` → `example.com`): the
/// default Message-ID domain, and the check that the setting parses.
pub fn mailbox_domain(mailbox: &str) -> Result<String, String> {
    let mailbox: Mailbox = mailbox.parse().map_err(|e| format!("{e}"))?;
    Ok(mailbox.email.domain().to_owned())
}

fn tls_parameters(host: &str, root: Option<&[u8]>) -> Result<TlsParameters, SendError> {
    let fail = |e: lettre::transport::smtp::Error| {
        SendError::Permanent(format!("TLS set-up for `{host}`: {e}"))
    };
    let mut builder = TlsParameters::builder(host.to_owned());
    if let Some(pem) = root {
        builder = builder.add_root_certificate(Certificate::from_pem(pem).map_err(fail)?);
    }
    builder.build_rustls().map_err(fail)
}

/// `<id>` for a header, refusing what would break the header (brackets, spaces, controls).
fn angle(id: &str) -> Result<String, SendError> {
    let valid = !id.is_empty()
        && id.is_ascii()
        && !id
            .chars()
            .any(|c| c.is_ascii_control() || c.is_ascii_whitespace() || matches!(c, '<' | '>'));
    if valid {
        Ok(format!("<{id}>"))
    } else {
        Err(SendError::Permanent(format!("`{id}` is not a message id")))
    }
}

/// 5xx answers are permanent; everything else (4xx, connection, timeout, TLS) may pass.
fn classify(error: lettre::transport::smtp::Error) -> SendError {
    if error.is_permanent() {
        SendError::Permanent(error.to_string())
    } else {
        SendError::Transient(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mailer() -> Mailer {
        Mailer::new(SmtpSettings {
            host: "127.0.0.1".to_owned(),
            port: 2525,
            security: SmtpSecurity::None,
            username: None,
            password: Some("hunter2-secret".to_owned()),
            from: "Stageflow <noreply@example.com>".to_owned(),
            timeout: Duration::from_secs(5),
            message_id_domain: "example.com".to_owned(),
        })
        .unwrap()
    }

    fn mail() -> OutgoingMail {
        OutgoingMail {
            to: vec![(Some("山田 太郎".to_owned()), "taro@example.jp".to_owned())],
            subject: "【INC-42】ネットワーク障害のご連絡".to_owned(),
            text: "本文".to_owned(),
            message_id: "a1@example.com".to_owned(),
            in_reply_to: Some("p0@example.com".to_owned()),
            references: vec!["r0@example.com".to_owned(), "p0@example.com".to_owned()],
            auto_submitted: true,
        }
    }

    #[test]
    fn security_parses_its_three_spellings() {
        assert_eq!("none".parse(), Ok(SmtpSecurity::None));
        assert_eq!("STARTTLS".parse(), Ok(SmtpSecurity::StartTls));
        assert_eq!(" tls ".parse(), Ok(SmtpSecurity::Tls));
        assert!("ssl".parse::<SmtpSecurity>().is_err());
    }

    #[test]
    fn headers_carry_threading_and_loop_prevention() {
        let raw = String::from_utf8(mailer().build(&mail()).unwrap().formatted()).unwrap();
        assert!(raw.contains("Message-ID: <a1@example.com>\r\n"), "{raw}");
        assert!(raw.contains("In-Reply-To: <p0@example.com>\r\n"), "{raw}");
        assert!(
            raw.contains("References: <r0@example.com> <p0@example.com>\r\n"),
            "{raw}"
        );
        assert!(raw.contains("Auto-Submitted: auto-generated\r\n"), "{raw}");
        assert!(raw.contains("Subject: =?utf-8?"), "{raw}");
        assert!(raw.is_ascii());
    }

    #[test]
    fn bad_ids_and_addresses_are_permanent() {
        let mut bad = mail();
        bad.message_id = "a>\r\nBcc: x@evil.example".to_owned();
        assert!(matches!(mailer().build(&bad), Err(SendError::Permanent(_))));
        let mut bad = mail();
        bad.to = vec![(None, "not an address".to_owned())];
        assert!(matches!(mailer().build(&bad), Err(SendError::Permanent(_))));
        let mut bad = mail();
        bad.to.clear();
        assert!(matches!(mailer().build(&bad), Err(SendError::Permanent(_))));
    }

    #[test]
    fn debug_never_shows_the_password() {
        let settings = SmtpSettings {
            host: "h".to_owned(),
            port: 1,
            security: SmtpSecurity::Tls,
            username: Some("u".to_owned()),
            password: Some("hunter2-secret".to_owned()),
            from: "a@b.c".to_owned(),
            timeout: Duration::from_secs(1),
            message_id_domain: "b.c".to_owned(),
        };
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
