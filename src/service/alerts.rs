//! Failure mail to the operator (`STAGEFLOW_ALERT_EMAIL`), #15 point 5: each node watches
//! what it can see — the database answering, the virus scanner answering, jobs waiting far
//! past their time — and mails when a check fails and when it recovers (once per change, not
//! on every look). A webhook subscription disabled for failing deliveries is mailed through
//! the `ops.alert` job, enqueued in the transaction that disables it. docs/mail.md, "Failure
//! mail to the operator".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::db::jobs::NewJob;
use crate::db::{self, Database, DbConnection};
use crate::mailer::{Mailer, OutgoingMail, SendError};
use crate::scanner::Scanner;
use crate::service::error::ServiceError;

/// The job kind that mails one alert.
pub const ALERT: &str = "ops.alert";
/// A job due longer than this is a backlog.
pub const BACKLOG_AFTER_MINUTES: i64 = 10;

/// What a check saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    Ok,
    Failing(String),
}

/// What changed since the last look: `(check, now failing?, detail)`.
pub fn changes(
    before: &BTreeMap<&'static str, bool>,
    now: &[(&'static str, Health)],
) -> Vec<(&'static str, bool, String)> {
    now.iter()
        .filter_map(|(check, health)| {
            let failing = matches!(health, Health::Failing(_));
            // A check seen for the first time reports only a failure.
            let was = before.get(check).copied().unwrap_or(false);
            (was != failing).then(|| {
                let detail = match health {
                    Health::Failing(why) => why.clone(),
                    Health::Ok => String::new(),
                };
                (*check, failing, detail)
            })
        })
        .collect()
}

/// The subject and text of an alert.
fn alert_mail(node: &str, check: &str, failing: bool, detail: &str) -> (String, String) {
    let what = match check {
        "database" => "the database",
        "scanner" => "the virus scanner (clamd)",
        "jobs" => "the job queue",
        other => other,
    };
    if failing {
        (
            format!("[Stageflow] {node}: {what} is failing"),
            format!(
                "Node {node} reports a failure of {what}:\n\n{detail}\n\nYou will get another mail \
                 when it recovers.\n"
            ),
        )
    } else {
        (
            format!("[Stageflow] {node}: {what} recovered"),
            format!("Node {node} reports that {what} works again.\n"),
        )
    }
}

/// The per-node watcher: the checks' last state and how to mail.
pub struct Monitor {
    mailer: Arc<Mailer>,
    to: Vec<String>,
    node: String,
    scanner: Option<Scanner>,
    last: Mutex<BTreeMap<&'static str, bool>>,
}

impl Monitor {
    /// `None` without SMTP or without alert addresses.
    pub fn new(
        mailer: Option<Arc<Mailer>>,
        to: &[String],
        node: &str,
        scanner: Option<Scanner>,
    ) -> Option<Arc<Self>> {
        let mailer = mailer.filter(|_| !to.is_empty())?;
        Some(Arc::new(Self {
            mailer,
            to: to.to_vec(),
            node: node.to_owned(),
            scanner,
            last: Mutex::new(BTreeMap::new()),
        }))
    }

    /// One look at every check, mailing what changed; blocking (run it on the blocking pool).
    /// A mail that cannot be sent leaves the state as it was, so the next look tries again.
    pub fn check(&self, db: &Database, now: DateTime<Utc>) -> usize {
        let mut seen = vec![("database", database(db))];
        if seen[0].1 == Health::Ok {
            seen.push(("jobs", backlog(db, now)));
        }
        if let Some(scanner) = &self.scanner {
            let health = match scanner.ping() {
                Ok(()) => Health::Ok,
                Err(e) => Health::Failing(e.to_string()),
            };
            seen.push(("scanner", health));
        }
        let before = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        let mut sent = 0;
        for (check, failing, detail) in changes(&before, &seen) {
            let (subject, text) = alert_mail(&self.node, check, failing, &detail);
            let id = format!(
                "alert.{check}.{}.{}@{}",
                now.timestamp_micros(),
                u8::from(failing),
                self.mailer.message_id_domain()
            );
            if self.send(subject, text, id).is_ok() {
                if let Ok(mut last) = self.last.lock() {
                    last.insert(check, failing);
                }
                sent += 1;
            }
        }
        sent
    }

    fn send(&self, subject: String, text: String, message_id: String) -> Result<(), SendError> {
        let mail = OutgoingMail {
            to: self.to.iter().map(|a| (None, a.clone())).collect(),
            subject,
            text,
            message_id,
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: true,
        };
        self.mailer.send(&mail).inspect_err(|e| {
            log::warn!("operator alert not sent: {e}");
        })
    }

    /// Mails one queued alert (the `ops.alert` job).
    pub fn send_queued(&self, payload: &Value, job_id: &str) -> Result<(), SendError> {
        let subject = payload["subject"].as_str().unwrap_or("[Stageflow] alert");
        let text = payload["text"].as_str().unwrap_or_default();
        let id = format!("alert.{job_id}@{}", self.mailer.message_id_domain());
        self.send(subject.to_owned(), text.to_owned(), id)
    }
}

fn database(db: &Database) -> Health {
    match db
        .write_blocking(|conn| Ok::<_, ServiceError>(crate::service::health::schema_pending(conn)?))
    {
        Ok(_) => Health::Ok,
        Err(e) => Health::Failing(e.to_string()),
    }
}

fn backlog(db: &Database, now: DateTime<Utc>) -> Health {
    let before = now - Duration::minutes(BACKLOG_AFTER_MINUTES);
    match db
        .write_blocking(|conn| Ok::<_, ServiceError>(db::jobs::waiting_since(conn, before.into())?))
    {
        Ok(0) => Health::Ok,
        Ok(n) => Health::Failing(format!(
            "{n} jobs have been due for more than {BACKLOG_AFTER_MINUTES} minutes (webhook \
             deliveries, mail, notifications wait): are the nodes running and the job runner \
             keeping up?"
        )),
        Err(e) => Health::Failing(e.to_string()),
    }
}

/// Queues an alert mail in the caller's transaction (it goes out only if that commits).
pub fn enqueue(
    conn: &mut DbConnection,
    subject: &str,
    text: &str,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let mut job = NewJob::new(ALERT, json!({"subject": subject, "text": text}), now);
    job.max_attempts = 30;
    db::jobs::enqueue(conn, &job)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_mailed_and_a_first_look_reports_only_failures() {
        let mut last = BTreeMap::new();
        let ok = [("database", Health::Ok), ("scanner", Health::Ok)];
        assert!(changes(&last, &ok).is_empty());
        let down = [
            ("database", Health::Ok),
            ("scanner", Health::Failing("refused".to_owned())),
        ];
        assert_eq!(
            changes(&last, &down),
            [("scanner", true, "refused".to_owned())]
        );
        last.insert("scanner", true);
        assert!(changes(&last, &down).is_empty(), "no repeat while failing");
        assert_eq!(changes(&last, &ok), [("scanner", false, String::new())]);
    }

    #[test]
    fn alert_mails_name_the_node_and_the_check() {
        let (subject, text) = alert_mail("node-a", "scanner", true, "connection refused");
        assert_eq!(
            subject,
            "[Stageflow] node-a: the virus scanner (clamd) is failing"
        );
        assert!(text.contains("connection refused"));
        let (subject, _) = alert_mail("node-a", "jobs", false, "");
        assert_eq!(subject, "[Stageflow] node-a: the job queue recovered");
    }
}
