//! What a mail channel is configured with and what becomes of a message (pure types; the
//! use cases are `service::mail`).

use serde::{Deserialize, Serialize};

use crate::domain::closed_set::closed_set;
use crate::domain::ids::OrganizationId;

closed_set! {
    /// What intake does with mail from an address no active user of the tenant has.
    pub enum UnknownSenders {
        /// Create a requester user for the address (in the organization its domain maps to)
        /// and file the ticket as that user.
        CreateRequester = "create_requester",
        /// Record the message as `refused`; nothing is filed.
        Refuse = "refuse",
    }
}

closed_set! {
    /// What became of a message.
    pub enum MessageStatus {
        /// Waiting for the virus scanner (it was unreachable); retried by the job runner.
        Pending = "pending",
        /// A new ticket was filed from it.
        Filed = "filed",
        /// It became a comment on the ticket it replies to.
        Commented = "commented",
        /// Machine-sent (auto-reply, bounce, bulk, our own mail looping back) or over the
        /// sender's rate: recorded, nothing filed.
        Ignored = "ignored",
        /// Refused by the channel's rules (unknown sender, disabled channel, too many
        /// attachments, no sender): recorded, nothing filed.
        Refused = "refused",
        /// The scanner found malware: kept sealed, readable by tenant admins only.
        Quarantined = "quarantined",
        /// Clean, but filing failed (for example a required field the channel does not
        /// fill): kept, readable by tenant admins, to be fixed and taken in again.
        Failed = "failed",
        /// A notification Stageflow sent (direction `out`; `sender` holds the recipient).
        Sent = "sent",
    }
}

impl MessageStatus {
    /// Whether the message's raw bytes are still kept in its row.
    pub fn keeps_raw(self) -> bool {
        matches!(
            self,
            MessageStatus::Pending | MessageStatus::Quarantined | MessageStatus::Failed
        )
    }
}

/// A reply from the requester in one of `from` fires `transition`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyTransition {
    /// State keys of the template.
    pub from: Vec<String>,
    /// The transition key fired from those states.
    pub transition: String,
}

/// Mail from this domain (lower-cased, without `@`) is filed for this organization; an
/// unknown sender from it becomes a requester of the organization.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DomainOrganization {
    pub domain: String,
    pub organization_id: OrganizationId,
}

closed_set! {
    /// How the IMAP poller secures its connection.
    pub enum ImapSecurity {
        /// TLS from the first byte (IMAPS, port 993).
        Tls = "tls",
        /// Plain connection upgraded by STARTTLS before LOGIN; required, not opportunistic.
        Starttls = "starttls",
        /// No TLS: only for a server on a loopback address (tests, a local Dovecot).
        None = "none",
    }
}

closed_set! {
    /// What the IMAP poller does with a message once intake has recorded it.
    pub enum AfterIntake {
        /// Flag it `\Seen` and leave it in the folder.
        MarkSeen = "mark_seen",
        /// Flag it `\Deleted` and expunge it.
        Delete = "delete",
    }
}

/// A channel's IMAP poller, as stored (the password apart, sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImapConfig {
    pub host: String,
    pub port: u16,
    pub security: ImapSecurity,
    pub username: String,
    pub folder: String,
    pub after_intake: AfterIntake,
    pub idle: bool,
}

impl ImapConfig {
    /// Whether a change from `self` to `other` points at another mailbox, so the UIDs taken
    /// in so far mean nothing there.
    pub fn same_mailbox(&self, other: &ImapConfig) -> bool {
        self.host.eq_ignore_ascii_case(&other.host)
            && self.port == other.port
            && self.username == other.username
            && self.folder == other.folder
    }
}

/// Whether `host` is a loopback address or `localhost` (where `security: none` is allowed).
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A plausible host name or address: 1–253 characters, no spaces, controls or URL syntax.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 253
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]".contains(c))
}

/// Longest address (RFC 5321's path limit).
pub const MAX_ADDRESS_BYTES: usize = 254;

/// A plausible mail address, lower-cased: one `@`, a local part and a domain with a dot,
/// no spaces or angle brackets. `None` when it is not one.
pub fn normalize_address(raw: &str) -> Option<String> {
    let address = raw.trim().to_lowercase();
    if address.is_empty() || address.len() > MAX_ADDRESS_BYTES {
        return None;
    }
    let (local, domain) = address.split_once('@')?;
    let bad = |c: char| c.is_whitespace() || c.is_control() || "<>()[]\\,;:\"@".contains(c);
    if local.is_empty() || domain.is_empty() || local.chars().any(|c| c.is_whitespace()) {
        return None;
    }
    if local
        .chars()
        .any(|c| c.is_control() || "<>\\,;:\"".contains(c))
        || domain.chars().any(bad)
    {
        return None;
    }
    if !domain.contains('.') || domain.starts_with('.') || domain.ends_with('.') {
        return None;
    }
    Some(address)
}

/// The domain of a normalized address.
pub fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_normalized_or_refused() {
        assert_eq!(
            normalize_address(" Support@Example.CO.JP "),
            Some("support@example.co.jp".to_owned())
        );
        for bad in [
            "",
            "no-at",
            "@example.com",
            "a@",
            "a@b",
            "a b@example.com",
            "a@ex ample.com",
            "<a@example.com>",
            "a@@example.com",
        ] {
            assert_eq!(normalize_address(bad), None, "{bad:?}");
        }
        assert_eq!(domain_of("a@example.co.jp"), "example.co.jp");
    }

    #[test]
    fn loopback_hosts_and_valid_hosts() {
        for host in ["localhost", "127.0.0.1", "127.3.2.1", "::1", "[::1]"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["imap.example.jp", "10.0.0.1", "localhost.example.jp"] {
            assert!(!is_loopback_host(host), "{host}");
        }
        assert!(valid_host("imap.example.co.jp") && valid_host("[::1]"));
        assert!(!valid_host("") && !valid_host("a b") && !valid_host("imap://x"));
    }

    #[test]
    fn only_waiting_quarantined_and_failed_messages_keep_their_bytes() {
        let kept: Vec<_> = MessageStatus::ALL
            .iter()
            .filter(|s| s.keeps_raw())
            .map(|s| s.as_str())
            .collect();
        assert_eq!(kept, ["pending", "quarantined", "failed"]);
    }
}
