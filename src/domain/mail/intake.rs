//! The intake decision before any storage lookup.

use super::subject::ticket_key_in_subject;
use super::{Automation, ParsedMail};

/// What intake does with a parsed message, before it looks anything up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Intake {
    /// Machine-sent, or our own mail looping back: no ticket, no comment.
    Ignore(Automation),
    /// Threads onto an existing ticket if one of `message_ids` is a message of a ticket, else
    /// if `key` names one; the use case files it as new when neither matches.
    Reply {
        /// `In-Reply-To` then `References`, newest first, without duplicates.
        message_ids: Vec<String>,
        key: Option<(String, i64)>,
    },
    New,
}

/// Decides a message: automation → `Ignore`; a Message-ID ending in `@<own_message_id_domain>`
/// (our own notification coming back, e.g. through a forwarding loop) → `Ignore(AutoReply)`;
/// thread headers or a ticket key in the subject → `Reply`; otherwise `New`.
pub fn classify(mail: &ParsedMail, own_message_id_domain: &str) -> Intake {
    if let Some(automation) = mail.automation {
        return Intake::Ignore(automation);
    }
    if is_own(mail.message_id.as_deref(), own_message_id_domain) {
        return Intake::Ignore(Automation::AutoReply);
    }
    let mut message_ids: Vec<String> = Vec::new();
    for id in mail.in_reply_to.iter().chain(mail.references.iter().rev()) {
        if !message_ids.contains(id) {
            message_ids.push(id.clone());
        }
    }
    let key = ticket_key_in_subject(&mail.subject);
    if message_ids.is_empty() && key.is_none() {
        Intake::New
    } else {
        Intake::Reply { message_ids, key }
    }
}

/// The Message-ID of outgoing mail, without brackets: `<unique>@<domain>`.
pub fn new_message_id(unique: &str, domain: &str) -> String {
    format!("{unique}@{domain}")
}

fn is_own(message_id: Option<&str>, domain: &str) -> bool {
    let domain = domain.trim();
    if domain.is_empty() {
        return false;
    }
    message_id
        .and_then(|id| id.rsplit_once('@'))
        .is_some_and(|(_, host)| host.trim().eq_ignore_ascii_case(domain))
}
