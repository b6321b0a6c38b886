//! Fuzzes mail intake with arbitrary bytes: parsing (MIME, charsets, encoded words),
//! automation detection, the intake decision and the subject key must never panic, whatever
//! an MTA, a mail gateway or an IMAP server hands over.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stageflow::domain::mail::{MailLimits, classify, parse, ticket_key_in_subject};

const LIMITS: MailLimits = MailLimits { max_message_bytes: 1 << 20, max_attachments: 100 };

fuzz_target!(|data: &[u8]| {
    let Ok(mail) = parse(data, &LIMITS) else {
        return;
    };
    let _ = classify(&mail, "stageflow.test");
    let _ = ticket_key_in_subject(&mail.subject);
});
