//! Notification mail: what a rule reacts to, whom it mails, and the text of the mail in
//! Japanese or English (pure; `service::notifications` loads, decides visibility and sends).

use serde_json::Value;

use crate::domain::closed_set::closed_set;
use crate::domain::event::EventType;

closed_set! {
    /// What a rule reacts to (and what a user may opt out of).
    pub enum NotificationKind {
        /// A ticket was created.
        Created = "created",
        /// A ticket moved to another state (a rule may name the state).
        Transitioned = "transitioned",
        /// A public comment was added (internal comments never notify).
        Commented = "commented",
        /// The assignee or group changed.
        Assigned = "assigned",
    }
}

impl NotificationKind {
    /// The kind of a ticket event, if it is one that notifies.
    pub fn of(event: EventType) -> Option<Self> {
        match event {
            EventType::TicketCreated => Some(Self::Created),
            EventType::TicketTransitioned => Some(Self::Transitioned),
            EventType::TicketCommented => Some(Self::Commented),
            EventType::TicketAssigned => Some(Self::Assigned),
            _ => None,
        }
    }
}

closed_set! {
    /// Whom a rule mails, besides its fixed addresses.
    pub enum RecipientRole {
        /// The ticket's requester.
        Requester = "requester",
        /// The ticket's watchers.
        Watchers = "watchers",
        /// The ticket's assignee.
        Assignee = "assignee",
        /// The members of the ticket's group.
        Group = "group",
    }
}

closed_set! {
    /// The language of a rule's mails.
    pub enum Language {
        Ja = "ja",
        En = "en",
    }
}

/// Longest text of one field value in a mail.
const MAX_VALUE_CHARS: usize = 500;
/// Longest comment quoted in a mail.
const MAX_COMMENT_CHARS: usize = 4_000;

/// What one mail says: everything already restricted to what its recipient may see.
#[derive(Debug, Clone)]
pub struct Rendering<'a> {
    pub kind: NotificationKind,
    pub language: Language,
    /// The ticket's key, e.g. `INC-42` (the subject carries it in brackets so that replies
    /// thread back).
    pub key: &'a str,
    pub title: &'a str,
    /// The state's label in the mail's language.
    pub state: &'a str,
    /// Who made the change.
    pub actor: &'a str,
    /// Field labels and values the recipient may see, in the template's order.
    pub fields: Vec<(String, Value)>,
    /// The comment of a `commented` notification.
    pub comment: Option<&'a str>,
}

/// The subject and the plain-text body of a notification.
pub fn render(r: &Rendering<'_>) -> (String, String) {
    let ja = r.language == Language::Ja;
    let what = match (r.kind, ja) {
        (NotificationKind::Created, true) => "受付".to_owned(),
        (NotificationKind::Created, false) => "created".to_owned(),
        (NotificationKind::Transitioned, true) => format!("状態変更：{}", r.state),
        (NotificationKind::Transitioned, false) => format!("now {}", r.state),
        (NotificationKind::Commented, true) => "コメント".to_owned(),
        (NotificationKind::Commented, false) => "new comment".to_owned(),
        (NotificationKind::Assigned, true) => "担当変更".to_owned(),
        (NotificationKind::Assigned, false) => "assigned".to_owned(),
    };
    let subject = format!("[{}] {} ({what})", r.key, one_line(r.title));
    let mut body = String::new();
    let headline = match (r.kind, ja) {
        (NotificationKind::Created, true) => "を受け付けました。",
        (NotificationKind::Created, false) => " was created.",
        (NotificationKind::Transitioned, true) => "の状態が変わりました。",
        (NotificationKind::Transitioned, false) => " moved to another state.",
        (NotificationKind::Commented, true) => "にコメントが追加されました。",
        (NotificationKind::Commented, false) => " has a new comment.",
        (NotificationKind::Assigned, true) => "の担当が変わりました。",
        (NotificationKind::Assigned, false) => " was assigned.",
    };
    let ticket = if ja {
        format!("{}「{}」", r.key, one_line(r.title))
    } else {
        format!("{} \"{}\"", r.key, one_line(r.title))
    };
    body.push_str(&format!("{ticket}{headline}\n"));
    let (state, by) = if ja {
        ("状態", "更新者")
    } else {
        ("State", "By")
    };
    body.push_str(&format!("{state}: {}\n{by}: {}\n", r.state, r.actor));
    if let Some(comment) = r.comment {
        body.push_str(if ja {
            "\n--- コメント ---\n"
        } else {
            "\n--- Comment ---\n"
        });
        body.push_str(&clip(comment, MAX_COMMENT_CHARS));
        body.push('\n');
    }
    let shown: Vec<(String, String)> = r
        .fields
        .iter()
        .filter_map(|(label, value)| text_of(value, ja).map(|t| (label.clone(), t)))
        .collect();
    if !shown.is_empty() {
        body.push_str(if ja {
            "\n--- 項目 ---\n"
        } else {
            "\n--- Fields ---\n"
        });
        for (label, text) in shown {
            body.push_str(&format!("{label}: {}\n", clip(&text, MAX_VALUE_CHARS)));
        }
    }
    body.push_str(if ja {
        "\nこのメールに返信すると、チケットへのコメントとして登録されます。\n"
    } else {
        "\nReply to this mail to add a comment to the ticket.\n"
    });
    (subject, body)
}

/// A value as mail text; `None` for an empty one.
fn text_of(value: &Value, ja: bool) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(
            match (b, ja) {
                (true, true) => "はい",
                (false, true) => "いいえ",
                (true, false) => "yes",
                (false, false) => "no",
            }
            .to_owned(),
        ),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if items.is_empty() => None,
        Value::Array(items) => Some(
            items
                .iter()
                .filter_map(|v| text_of(v, ja))
                .collect::<Vec<_>>()
                .join(", "),
        ),
        Value::Object(_) => Some(value.to_string()),
    }
}

/// A title on one line (a subject cannot carry line breaks).
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut clipped: String = text.chars().take(max).collect();
        clipped.push('…');
        clipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(kind: NotificationKind, language: Language) -> Rendering<'static> {
        Rendering {
            kind,
            language,
            key: "INC-42",
            title: "メールが\n送信できない",
            state: "対応中",
            actor: "佐藤",
            fields: vec![
                ("優先度".to_owned(), json!("高")),
                ("影響".to_owned(), Value::Null),
                ("対象".to_owned(), json!(["メール", "VPN"])),
                ("再現".to_owned(), json!(true)),
            ],
            comment: Some("確認中です"),
        }
    }

    #[test]
    fn the_subject_carries_the_key_for_threading_and_one_line() {
        let (subject, body) = render(&sample(NotificationKind::Transitioned, Language::Ja));
        assert_eq!(subject, "[INC-42] メールが 送信できない (状態変更：対応中)");
        assert!(body.starts_with("INC-42「メールが 送信できない」の状態が変わりました。\n"));
        assert!(body.contains("優先度: 高\n"));
        assert!(body.contains("対象: メール, VPN\n"));
        assert!(body.contains("再現: はい\n"));
        assert!(!body.contains("影響"), "empty values are left out: {body}");
        assert!(body.contains("--- コメント ---\n確認中です\n"));
        let (subject, body) = render(&sample(NotificationKind::Created, Language::En));
        assert_eq!(subject, "[INC-42] メールが 送信できない (created)");
        assert!(body.contains("State: 対応中\nBy: 佐藤\n"));
        assert!(body.contains("再現: yes\n"));
    }

    #[test]
    fn every_notifying_event_has_a_kind() {
        for kind in NotificationKind::ALL {
            let event = EventType::ALL
                .iter()
                .find(|e| NotificationKind::of(**e) == Some(*kind));
            assert!(event.is_some(), "{kind:?}");
        }
        assert_eq!(NotificationKind::of(EventType::TicketLinked), None);
    }

    #[test]
    fn long_values_are_clipped() {
        let mut r = sample(NotificationKind::Commented, Language::En);
        let long = "x".repeat(MAX_VALUE_CHARS + 10);
        r.fields = vec![("Notes".to_owned(), json!(long))];
        let (_, body) = render(&r);
        assert!(body.contains(&format!("Notes: {}…\n", "x".repeat(MAX_VALUE_CHARS))));
    }
}
