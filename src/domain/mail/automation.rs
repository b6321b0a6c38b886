//! Recognising machine-sent mail from its headers (RFC 3834, RFC 3464, RFC 2369, vendor
//! conventions), so that auto-replies, bounces and list mail never file tickets.

use mail_parser::{Message, MimeHeaders};

use super::Automation;

/// Vendor headers of automatic answers (Exchange, various vacation responders).
const AUTO_REPLY_HEADERS: [&str; 3] = ["X-Auto-Response-Suppress", "X-Autoreply", "X-Autorespond"];
const LIST_HEADERS: [&str; 2] = ["List-Id", "List-Unsubscribe"];

/// The most specific reason a message is machine-sent: a bounce before an auto-reply (bounces
/// usually carry `Auto-Submitted` too), an auto-reply before bulk.
pub(super) fn detect(message: &Message<'_>) -> Option<Automation> {
    if is_bounce(message) {
        Some(Automation::Bounce)
    } else if is_auto_reply(message) {
        Some(Automation::AutoReply)
    } else if is_bulk(message) {
        Some(Automation::Bulk)
    } else {
        None
    }
}

fn raw<'m>(message: &'m Message<'_>, name: &'m str) -> Option<&'m str> {
    message.header_raw(name).map(str::trim)
}

/// The token of a header value before any `;` parameter or comment, lower-cased.
fn token(value: &str) -> String {
    value
        .split([';', '('])
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_auto_reply(message: &Message<'_>) -> bool {
    let submitted = raw(message, "Auto-Submitted").is_some_and(|v| token(v) != "no");
    let precedence = raw(message, "Precedence").is_some_and(|v| token(v) == "auto_reply");
    submitted
        || precedence
        || AUTO_REPLY_HEADERS
            .iter()
            .any(|name| message.header_raw(*name).is_some())
}

fn is_bulk(message: &Message<'_>) -> bool {
    raw(message, "Precedence")
        .is_some_and(|v| matches!(token(v).as_str(), "bulk" | "junk" | "list"))
        || LIST_HEADERS
            .iter()
            .any(|name| message.header_raw(*name).is_some())
}

/// A delivery status report, or mail from a mail system: `MAILER-DAEMON` as the sender, or
/// `postmaster` with the null Return-Path every bounce travels under (RFC 5321 4.5.5).
fn is_bounce(message: &Message<'_>) -> bool {
    let report = message.content_type().is_some_and(|ct| {
        ct.ctype().eq_ignore_ascii_case("multipart")
            && ct
                .subtype()
                .is_some_and(|s| s.eq_ignore_ascii_case("report"))
            && ct
                .attribute("report-type")
                .is_some_and(|t| t.eq_ignore_ascii_case("delivery-status"))
    });
    if report {
        return true;
    }
    let null_path = raw(message, "Return-Path").is_some_and(|v| v.is_empty() || v == "<>");
    let senders = [message.from(), message.sender()];
    senders
        .into_iter()
        .flatten()
        .flat_map(|a| a.iter())
        .any(|addr| {
            let local = addr
                .address
                .as_deref()
                .and_then(|a| a.split('@').next())
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            local == "mailer-daemon" || (null_path && local == "postmaster")
        })
}
