//! Incoming mail: parsing a raw RFC 5322 message into UTF-8 parts (`parse`), recognising
//! machine-sent mail (`Automation`), and the intake decision before any storage lookup
//! (`classify`). Pure: the caller brings the bytes, the limits and its own Message-ID domain.
//!
//! Decoding (MIME, RFC 2047 words, RFC 2231 parameters, ISO-2022-JP, Shift_JIS, EUC-JP, …) is
//! mail-parser's with its `full_encoding` feature; what is ours is the shape handed to the
//! intake use case and the rules on top of it.

mod automation;
mod intake;
mod parse;
mod subject;
#[cfg(test)]
mod tests;

pub use intake::{Intake, classify, new_message_id};
pub use parse::parse;
pub use subject::ticket_key_in_subject;

/// Limits of one channel, checked before and while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MailLimits {
    /// The raw message, headers included.
    pub max_message_bytes: usize,
    pub max_attachments: usize,
}

/// One address of a header: the address lower-cased and trimmed, the display name decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub address: String,
    pub name: Option<String>,
}

/// One attachment, inline images included; never the text or HTML body parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailAttachment {
    /// Decoded UTF-8, without path separators or control characters, at most 200 characters;
    /// `attachment-N` (N counting from 1) when the message names none.
    pub filename: String,
    /// `type/subtype`, lower case.
    pub content_type: String,
    /// Transfer-decoded bytes (a text part: its text as UTF-8).
    pub content: Vec<u8>,
}

/// Why a message is machine-sent; such mail never files a ticket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Automation {
    /// Out-of-office and other automatic answers (RFC 3834 `Auto-Submitted`, vendor headers),
    /// and our own mail looping back.
    AutoReply,
    /// A delivery status notification (RFC 3464) or a MAILER-DAEMON message.
    Bounce,
    /// Lists and bulk senders (`Precedence`, `List-Id`, `List-Unsubscribe`).
    Bulk,
}

/// A parsed message, everything decoded to UTF-8.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedMail {
    /// Without the angle brackets, as in the header.
    pub message_id: Option<String>,
    /// Without angle brackets, in header order.
    pub in_reply_to: Vec<String>,
    /// Without angle brackets, in header order (oldest first, as RFC 5322 writes them).
    pub references: Vec<String>,
    /// `From` (else `Sender`); `None` only for machine-sent mail (`automation` is set), since
    /// `parse` refuses other mail without a sender.
    pub from: Option<Mailbox>,
    pub reply_to: Option<Mailbox>,
    pub to: Vec<Mailbox>,
    pub cc: Vec<Mailbox>,
    /// Decoded; `""` when absent.
    pub subject: String,
    /// The text bodies joined, line ends `\n`; HTML-only mail reduced to text.
    pub text: String,
    pub attachments: Vec<MailAttachment>,
    pub automation: Option<Automation>,
}

/// Why a message cannot be taken in. The messages are fit for an API `detail`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailError {
    #[error("the message is larger than the limit of {limit} bytes")]
    TooLarge { limit: usize },
    #[error("the message could not be parsed as an internet message (no header found)")]
    Unparseable,
    #[error("the message has no sender address (From)")]
    NoSender,
    #[error("the message has more than {limit} attachments")]
    TooManyAttachments { limit: usize },
}
