//! Raw bytes → `ParsedMail`.

use mail_parser::{
    Address, HeaderValue, Message, MessageParser, MessagePart, MimeHeaders, PartType,
};

use super::{MailAttachment, MailError, MailLimits, Mailbox, ParsedMail, automation};

const MAX_FILENAME_CHARS: usize = 200;
/// An extension longer than this is not kept when a long filename is shortened.
const MAX_EXTENSION_CHARS: usize = 16;

/// Parses one raw message. Refuses it when larger than the limit (before parsing), when no
/// header can be found, when human mail has no sender, or when it has too many attachments.
pub fn parse(raw: &[u8], limits: &MailLimits) -> Result<ParsedMail, MailError> {
    if raw.len() > limits.max_message_bytes {
        return Err(MailError::TooLarge {
            limit: limits.max_message_bytes,
        });
    }
    let message = MessageParser::default()
        .parse(raw)
        .ok_or(MailError::Unparseable)?;
    if message
        .parts
        .first()
        .is_none_or(|root| root.headers.is_empty())
    {
        return Err(MailError::Unparseable);
    }
    let automation = automation::detect(&message);
    let from = first_mailbox(message.from()).or_else(|| first_mailbox(message.sender()));
    if from.is_none() && automation.is_none() {
        return Err(MailError::NoSender);
    }
    if message.attachments.len() > limits.max_attachments {
        return Err(MailError::TooManyAttachments {
            limit: limits.max_attachments,
        });
    }
    Ok(ParsedMail {
        message_id: message.message_id().and_then(clean_id),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        from,
        reply_to: first_mailbox(message.reply_to()),
        to: mailboxes(message.to()),
        cc: mailboxes(message.cc()),
        subject: message
            .subject()
            .map(str::trim)
            .unwrap_or_default()
            .to_owned(),
        text: body_text(&message),
        attachments: attachments(&message),
        automation,
    })
}

fn clean_id(id: &str) -> Option<String> {
    let id = id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    (!id.is_empty()).then(|| id.to_owned())
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(id) => clean_id(id).into_iter().collect(),
        HeaderValue::TextList(list) => list.iter().filter_map(|id| clean_id(id)).collect(),
        _ => Vec::new(),
    }
}

fn mailboxes(address: Option<&Address<'_>>) -> Vec<Mailbox> {
    address
        .into_iter()
        .flat_map(|a| a.iter())
        .filter_map(|addr| {
            let address = addr.address.as_deref()?.trim().to_lowercase();
            let (local, domain) = address.split_once('@')?;
            if local.is_empty() || domain.is_empty() || address.chars().any(char::is_whitespace) {
                return None;
            }
            let name = addr
                .name
                .as_deref()
                .map(str::trim)
                .filter(|n| !n.is_empty());
            Some(Mailbox {
                address,
                name: name.map(str::to_owned),
            })
        })
        .collect()
}

fn first_mailbox(address: Option<&Address<'_>>) -> Option<Mailbox> {
    mailboxes(address).into_iter().next()
}

/// The text bodies in order, HTML ones reduced to text by mail-parser, line ends `\n`.
fn body_text(message: &Message<'_>) -> String {
    let bodies: Vec<String> = (0..message.text_body_count())
        .filter_map(|pos| message.body_text(pos))
        .map(|text| text.replace("\r\n", "\n"))
        .collect();
    bodies.join("\n")
}

fn attachments(message: &Message<'_>) -> Vec<MailAttachment> {
    message
        .attachments()
        .enumerate()
        .map(|(index, part)| MailAttachment {
            filename: part
                .attachment_name()
                .and_then(sanitize_filename)
                .unwrap_or_else(|| format!("attachment-{}", index + 1)),
            content_type: content_type(part),
            content: part.contents().to_vec(),
        })
        .collect()
}

fn content_type(part: &MessagePart<'_>) -> String {
    match part.content_type() {
        Some(ct) => match ct.subtype() {
            Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
            None => ct.ctype().to_ascii_lowercase(),
        },
        None => match part.body {
            PartType::Text(_) => "text/plain".to_owned(),
            PartType::Html(_) => "text/html".to_owned(),
            PartType::Message(_) => "message/rfc822".to_owned(),
            _ => "application/octet-stream".to_owned(),
        },
    }
}

/// A filename safe to store and to offer for download: path separators become `_`, control
/// characters go, leading dots and surrounding blanks go, at most 200 characters (a long name
/// keeps its extension). `None` when nothing usable is left (only separators and dots).
pub(super) fn sanitize_filename(name: &str) -> Option<String> {
    let cleaned: String = name
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if matches!(c, '/' | '\\') { '_' } else { c })
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.trim_matches(['_', '.']).is_empty() {
        return None;
    }
    let count = cleaned.chars().count();
    if count <= MAX_FILENAME_CHARS {
        return Some(cleaned.to_owned());
    }
    let extension = cleaned
        .rsplit_once('.')
        .map(|(_, ext)| ext)
        .filter(|ext| !ext.is_empty() && ext.chars().count() <= MAX_EXTENSION_CHARS);
    Some(match extension {
        Some(ext) => {
            let keep = MAX_FILENAME_CHARS - ext.chars().count() - 1;
            format!("{}.{ext}", cleaned.chars().take(keep).collect::<String>())
        }
        None => cleaned.chars().take(MAX_FILENAME_CHARS).collect(),
    })
}
