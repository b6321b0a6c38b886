use proptest::prelude::*;

use super::parse::sanitize_filename;
use super::*;

const LIMITS: MailLimits = MailLimits {
    max_message_bytes: 1 << 20,
    max_attachments: 20,
};
const OWN_DOMAIN: &str = "stageflow.test";
const EICAR: &[u8] = br"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*";

macro_rules! fixture {
    ($name:literal) => {
        include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/mail/",
            $name
        ))
    };
}

fn parsed(raw: &[u8]) -> ParsedMail {
    match parse(raw, &LIMITS) {
        Ok(mail) => mail,
        Err(e) => unreachable!("fixture refused: {e}"),
    }
}

fn mailbox(address: &str, name: Option<&str>) -> Mailbox {
    Mailbox {
        address: address.to_owned(),
        name: name.map(str::to_owned),
    }
}

/// A minimal message with the given extra header lines.
fn with_headers(extra: &str) -> Vec<u8> {
    format!(
        "From: someone@example.com\r\nTo: support@stageflow.test\r\nSubject: hello\r\n\
         Message-ID: <m1@example.com>\r\n{extra}\r\nbody\r\n"
    )
    .into_bytes()
}

#[test]
fn iso_2022_jp_plain_text() {
    let mail = parsed(fixture!("iso2022jp.eml"));
    assert_eq!(mail.subject, "件名：ネットワーク障害のご連絡");
    assert_eq!(
        mail.text,
        "お世話になっております。\n株式会社サンプルの山田です。\n\n\
         本日9時頃より、大阪拠点のネットワークに接続できません。\nご確認をお願いいたします。\n"
    );
    assert_eq!(
        mail.from,
        Some(mailbox("yamada@example.co.jp", Some("山田 太郎")))
    );
    assert_eq!(mail.to, vec![mailbox("support@stageflow.test", None)]);
    assert_eq!(
        mail.message_id.as_deref(),
        Some("20261116091201.A1B2C3@example.co.jp")
    );
    assert!(mail.attachments.is_empty());
    assert_eq!(mail.automation, None);
    assert_eq!(classify(&mail, OWN_DOMAIN), Intake::New);
}

#[test]
fn shift_jis_quoted_printable() {
    let mail = parsed(fixture!("sjis_qp.eml"));
    assert_eq!(mail.subject, "【至急】サーバー停止について");
    assert_eq!(
        mail.text,
        "サポートご担当者様\n\n販売管理サーバーが停止しています。\n復旧見込みをご連絡ください。\n"
    );
    assert_eq!(
        mail.from,
        Some(mailbox("suzuki@example.jp", Some("Suzuki")))
    );
    assert_eq!(
        mail.cc,
        vec![mailbox("is@example.jp", Some("情報システム部"))]
    );
    assert_eq!(classify(&mail, OWN_DOMAIN), Intake::New);
}

#[test]
fn euc_jp_body() {
    let mail = parsed(fixture!("eucjp.eml"));
    assert_eq!(mail.subject, "パスワード再設定の依頼");
    assert_eq!(
        mail.text,
        "お疲れさまです。経理部の佐藤です。\n会計システムのパスワードを再設定してください。\n"
    );
    assert_eq!(
        mail.from.map(|m| m.address).as_deref(),
        Some("sato@example.ne.jp")
    );
}

#[test]
fn utf8_alternative_with_inline_image() {
    let mail = parsed(fixture!("utf8_alternative.eml"));
    assert_eq!(mail.subject, "VPN接続エラー（コード 809）");
    assert_eq!(
        mail.text,
        "VPNに接続するとエラー809が表示されます。\nWindows 11 です。\n"
    );
    assert_eq!(
        mail.to,
        vec![
            mailbox("support@stageflow.test", Some("Support")),
            mailbox("ops@stageflow.test", None)
        ]
    );
    let names: Vec<_> = mail
        .attachments
        .iter()
        .map(|a| (a.filename.as_str(), a.content_type.as_str()))
        .collect();
    assert_eq!(names, vec![("screenshot.png", "image/png")]);
    assert!(
        mail.attachments
            .iter()
            .all(|a| a.content.starts_with(b"\x89PNG"))
    );
}

#[test]
fn html_only_mail_is_reduced_to_text() {
    let mail = parsed(fixture!("html_only.eml"));
    assert_eq!(mail.subject, "プリンターが印刷できません");
    assert!(
        mail.text.contains("3階の複合機で印刷ができません。"),
        "{}",
        mail.text
    );
    assert!(mail.text.contains("エラー表示：E-202"), "{}", mail.text);
    assert!(
        !mail.text.contains('<') && !mail.text.contains("color"),
        "{}",
        mail.text
    );
    assert!(mail.attachments.is_empty());
}

#[test]
fn japanese_attachment_names_rfc2047_and_rfc2231() {
    let mail = parsed(fixture!("attachments.eml"));
    assert_eq!(mail.subject, "障害報告書の送付");
    // The line end before a boundary belongs to the boundary (RFC 2046 5.1.1).
    assert_eq!(mail.text, "障害報告書と構成図を添付します。");
    let names: Vec<_> = mail
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, vec!["障害報告書.pdf", "構成図_大阪拠点.pdf"]);
    for attachment in &mail.attachments {
        assert_eq!(attachment.content_type, "application/pdf");
        assert!(attachment.content.starts_with(b"%PDF-1.4\n"));
    }
}

#[test]
fn reply_threads_by_headers_and_key() {
    let mail = parsed(fixture!("reply.eml"));
    assert_eq!(mail.subject, "Re: [INC-42] ネットワーク障害のご連絡");
    assert_eq!(mail.in_reply_to, vec!["0192f0c4-notify-2@stageflow.test"]);
    assert_eq!(mail.references.len(), 3);
    assert_eq!(
        classify(&mail, OWN_DOMAIN),
        Intake::Reply {
            message_ids: vec![
                "0192f0c4-notify-2@stageflow.test".to_owned(),
                "0192f0c4-notify-1@stageflow.test".to_owned(),
                "20261116091201.A1B2C3@example.co.jp".to_owned(),
            ],
            key: Some(("INC".to_owned(), 42)),
        }
    );
}

#[test]
fn auto_reply_is_ignored() {
    let mail = parsed(fixture!("auto_reply.eml"));
    assert_eq!(mail.automation, Some(Automation::AutoReply));
    assert_eq!(
        classify(&mail, OWN_DOMAIN),
        Intake::Ignore(Automation::AutoReply)
    );
}

#[test]
fn bounce_is_ignored() {
    let mail = parsed(fixture!("bounce.eml"));
    assert_eq!(mail.automation, Some(Automation::Bounce));
    assert_eq!(
        classify(&mail, OWN_DOMAIN),
        Intake::Ignore(Automation::Bounce)
    );
}

#[test]
fn eicar_attachment_is_handed_over_byte_for_byte() {
    let mail = parsed(fixture!("eicar.eml"));
    assert_eq!(mail.subject, "請求書");
    assert_eq!(mail.text, "請求書を添付します。\n");
    assert_eq!(mail.attachments.len(), 1);
    let attachment = &mail.attachments[0];
    assert_eq!(attachment.filename, "eicar.com.txt");
    assert_eq!(attachment.content_type, "text/plain");
    assert_eq!(attachment.content, EICAR);
}

#[test]
fn limits_and_refusals() {
    let raw = fixture!("attachments.eml");
    let small = MailLimits {
        max_message_bytes: raw.len() - 1,
        ..LIMITS
    };
    assert_eq!(
        parse(raw, &small),
        Err(MailError::TooLarge {
            limit: raw.len() - 1
        })
    );
    let exact = MailLimits {
        max_message_bytes: raw.len(),
        max_attachments: 2,
    };
    assert!(parse(raw, &exact).is_ok());
    let one = MailLimits {
        max_attachments: 1,
        ..LIMITS
    };
    assert_eq!(
        parse(raw, &one),
        Err(MailError::TooManyAttachments { limit: 1 })
    );
    assert_eq!(parse(b"", &LIMITS), Err(MailError::Unparseable));
    let anonymous = b"To: support@stageflow.test\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(parse(anonymous, &LIMITS), Err(MailError::NoSender));
    let unaddressable = b"From: Someone <not-an-address>\r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(parse(unaddressable, &LIMITS), Err(MailError::NoSender));
    let sender_only = b"Sender: Bob@Example.COM \r\nSubject: hi\r\n\r\nbody\r\n";
    assert_eq!(
        parsed(sender_only).from,
        Some(mailbox("bob@example.com", None))
    );
    assert_eq!(
        MailError::TooLarge { limit: 10 }.to_string(),
        "the message is larger than the limit of 10 bytes"
    );
}

#[test]
fn automation_headers() {
    let cases = [
        (
            "Auto-Submitted: auto-generated",
            Some(Automation::AutoReply),
        ),
        ("auto-submitted: No (manual)", None),
        ("Precedence: bulk", Some(Automation::Bulk)),
        ("Precedence: Junk", Some(Automation::Bulk)),
        ("Precedence: list", Some(Automation::Bulk)),
        ("Precedence: first-class", None),
        ("X-Auto-Response-Suppress: All", Some(Automation::AutoReply)),
        ("X-Autoreply: yes", Some(Automation::AutoReply)),
        ("X-Autorespond: vacation", Some(Automation::AutoReply)),
        ("List-Id: <ops.example.com>", Some(Automation::Bulk)),
        (
            "List-Unsubscribe: <mailto:leave@example.com>",
            Some(Automation::Bulk),
        ),
        (
            "Auto-Submitted: auto-replied\r\nPrecedence: bulk",
            Some(Automation::AutoReply),
        ),
        ("X-Mailer: Outlook", None),
    ];
    for (headers, expected) in cases {
        let mail = parsed(&with_headers(headers));
        assert_eq!(mail.automation, expected, "{headers}");
    }
}

#[test]
fn bounces_by_sender() {
    let postmaster =
        b"Return-Path: <>\r\nFrom: postmaster@mx.example.com\r\nSubject: x\r\n\r\nb\r\n";
    assert_eq!(parsed(postmaster).automation, Some(Automation::Bounce));
    let human_postmaster =
        b"Return-Path: <pm@example.com>\r\nFrom: postmaster@example.com\r\n\r\nb\r\n";
    assert_eq!(parsed(human_postmaster).automation, None);
    let daemon = b"From: Mailer-Daemon@mx.example.com\r\nSubject: x\r\n\r\nb\r\n";
    assert_eq!(parsed(daemon).automation, Some(Automation::Bounce));
    let no_from = b"Return-Path: <>\r\nContent-Type: multipart/report; report-type=delivery-status; boundary=x\r\n\r\n--x--\r\n";
    let mail = parsed(no_from);
    assert_eq!(
        (mail.from, mail.automation),
        (None, Some(Automation::Bounce))
    );
}

#[test]
fn own_message_ids_looping_back_are_ignored() {
    let mut mail = parsed(&with_headers(""));
    mail.message_id = Some(new_message_id("0192f0c4-notify-7", "Stageflow.Test"));
    assert_eq!(
        mail.message_id.as_deref(),
        Some("0192f0c4-notify-7@Stageflow.Test")
    );
    assert_eq!(
        classify(&mail, OWN_DOMAIN),
        Intake::Ignore(Automation::AutoReply)
    );
    mail.message_id = Some("x@mail.stageflow.test".to_owned());
    assert_eq!(classify(&mail, OWN_DOMAIN), Intake::New);
    assert_eq!(classify(&mail, ""), Intake::New);
}

#[test]
fn reply_ids_are_deduplicated_newest_first() {
    let raw = with_headers("In-Reply-To: <c@x>\r\nReferences: <a@x> <b@x>\r\n <c@x>");
    let mail = parsed(&raw);
    let ids = vec!["c@x".to_owned(), "b@x".to_owned(), "a@x".to_owned()];
    assert_eq!(
        classify(&mail, OWN_DOMAIN),
        Intake::Reply {
            message_ids: ids,
            key: None
        }
    );
}

#[test]
fn ticket_keys_in_subjects() {
    let key = |s: &str| ticket_key_in_subject(s);
    let inc42 = Some(("INC".to_owned(), 42));
    assert_eq!(key("[INC-42] printer"), inc42);
    assert_eq!(key("Re: 【INC-42】 プリンター"), inc42);
    assert_eq!(key("RE:[inc-42]"), inc42);
    assert_eq!(key("Fw: ［ＩＮＣ－４２］ 全角"), inc42);
    assert_eq!(
        key("[Ext] [CHG-7] and [INC-42]"),
        Some(("CHG".to_owned(), 7))
    );
    assert_eq!(key("[ABCDEFGHIJ-1]"), Some(("ABCDEFGHIJ".to_owned(), 1)));
    assert_eq!(key("[ABCDEFGHIJK-1]"), None);
    assert_eq!(key("[INC-42】"), None);
    assert_eq!(key("[INC-]"), None);
    assert_eq!(key("[-42]"), None);
    assert_eq!(key("[INC42]"), None);
    assert_eq!(key("[INC-4a]"), None);
    assert_eq!(key("[INC-99999999999999999999]"), None);
    assert_eq!(key("INC-42"), None);
    assert_eq!(key(""), None);
}

#[test]
fn filenames_are_sanitized() {
    assert_eq!(
        sanitize_filename("../../etc/passwd").as_deref(),
        Some("_.._etc_passwd")
    );
    assert_eq!(
        sanitize_filename("a\\b\u{0}c\r\n.txt").as_deref(),
        Some("a_bc.txt")
    );
    assert_eq!(sanitize_filename(" .. ").as_deref(), None);
    assert_eq!(sanitize_filename("\u{7}").as_deref(), None);
    assert_eq!(sanitize_filename("/").as_deref(), None);
    assert_eq!(sanitize_filename("./..\\").as_deref(), None);
    let long = format!("{}.pdf", "報".repeat(300));
    let short = sanitize_filename(&long).unwrap_or_default();
    assert_eq!(short.chars().count(), 200);
    assert!(short.ends_with("報.pdf"));
    let long_ext = format!("a.{}", "x".repeat(300));
    assert_eq!(
        sanitize_filename(&long_ext).map(|n| n.chars().count()),
        Some(200)
    );
}

#[test]
fn unnamed_attachments_are_numbered() {
    let raw = b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
        --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n\
        --b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment\r\n\r\nxyz\r\n\
        --b\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename=\"/\"\r\n\r\nzz\r\n--b--\r\n";
    let mail = parsed(raw);
    let names: Vec<_> = mail
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, vec!["attachment-1", "attachment-2"]);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(raw in proptest::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(mail) = parse(&raw, &LIMITS) {
            let _ = classify(&mail, OWN_DOMAIN);
        }
    }

    #[test]
    fn mail_shaped_input_never_panics(
        headers in proptest::collection::vec("[A-Za-z-]{1,20}: [ -~\\t]{0,60}", 0..12),
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        // From comes last: mail-parser reads the last occurrence of a header.
        let mut raw: Vec<u8> = headers.iter().flat_map(|h| format!("{h}\r\n").into_bytes()).collect();
        raw.extend_from_slice(b"From: a@example.com\r\n\r\n");
        raw.extend_from_slice(&body);
        let mail = parse(&raw, &LIMITS);
        let refused_wrongly = matches!(mail, Err(MailError::NoSender | MailError::TooLarge { .. }));
        prop_assert!(!refused_wrongly, "{:?}", mail);
        if let Ok(mail) = mail {
            let _ = classify(&mail, OWN_DOMAIN);
            let _ = ticket_key_in_subject(&mail.subject);
        }
    }

    #[test]
    fn ticket_keys_never_panic(subject in "\\PC{0,80}") {
        let _ = ticket_key_in_subject(&subject);
    }
}
