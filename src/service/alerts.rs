//! Telling the operator of failures, #15 point 5 and #17 point 4: each node watches what it
//! can see — the database, the virus scanner, the SMTP server, the attachment disk (the
//! dependencies `/readyz` reports) and jobs waiting far past their time — and once a check
//! has kept failing for `STAGEFLOW_ALERT_AFTER_SECONDS` it mails `STAGEFLOW_ALERT_EMAIL` (when
//! set) and records `ops.dependency_down` in the platform audit log; the recovery of a check
//! it told of is told the same way (`ops.dependency_recovered`). A webhook subscription
//! disabled for failing deliveries is mailed through the `ops.alert` job, enqueued in the
//! transaction that disables it. docs/operations.md, "Health and failure notification".

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::db::audit::{Actor, Event};
use crate::db::jobs::NewJob;
use crate::db::{self, Database, DbConnection};
use crate::mailer::{Mailer, OutgoingMail, SendError};
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

/// One check's record on this node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct CheckState {
    /// Since when it has been failing without a break; `None`: it works.
    failing_since: Option<DateTime<Utc>>,
    /// Whether its failure was told (so its recovery is told too).
    told: bool,
}

/// What to tell after a look: `(check, failing?, detail)`, given each check's record, what
/// it saw now, and how long a failure must last before it is told.
fn to_tell(
    states: &mut BTreeMap<&'static str, CheckState>,
    now_seen: &[(&'static str, Health)],
    now: DateTime<Utc>,
    after: Duration,
) -> Vec<(&'static str, bool, String)> {
    let mut tell = Vec::new();
    for (check, health) in now_seen {
        let state = states.entry(check).or_default();
        match health {
            Health::Failing(why) => {
                let since = *state.failing_since.get_or_insert(now);
                if !state.told && now - since >= after {
                    tell.push((*check, true, why.clone()));
                }
            }
            Health::Ok => {
                if state.told {
                    tell.push((*check, false, String::new()));
                }
                *state = CheckState::default();
            }
        }
    }
    tell
}

/// The subject and text of an alert.
fn alert_mail(node: &str, check: &str, failing: bool, detail: &str) -> (String, String) {
    let what = match check {
        "database" => "the database",
        "scanner" => "the virus scanner (clamd)",
        "smtp" => "the SMTP server",
        "disk" => "the attachment disk",
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

/// The per-node watcher: the checks' records and where to tell.
pub struct Monitor {
    /// The mailer and the addresses; `None` without SMTP or `STAGEFLOW_ALERT_EMAIL` (the
    /// audit log is still written).
    mail: Option<(Arc<Mailer>, Vec<String>)>,
    node: String,
    after: Duration,
    states: Mutex<BTreeMap<&'static str, CheckState>>,
}

impl Monitor {
    pub fn new(
        mailer: Option<Arc<Mailer>>,
        to: &[String],
        node: &str,
        after: std::time::Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            mail: mailer.filter(|_| !to.is_empty()).map(|m| (m, to.to_vec())),
            node: node.to_owned(),
            after: Duration::from_std(after).unwrap_or(Duration::MAX),
            states: Mutex::new(BTreeMap::new()),
        })
    }

    /// One look: `seen` are the dependency checks the caller made (as `/readyz` shows them);
    /// the database and the job backlog are checked here. Blocking (run it on the blocking
    /// pool). Returns how many failures and recoveries were told. When telling fails (the
    /// database or the mail is down), the record stays untold and the next look tries again.
    pub fn check(
        &self,
        db: &Database,
        now: DateTime<Utc>,
        mut seen: Vec<(&'static str, Health)>,
    ) -> usize {
        let database = database(db);
        let database_ok = database == Health::Ok;
        seen.insert(0, ("database", database));
        if database_ok {
            seen.push(("jobs", backlog(db, now)));
        }
        let tell = {
            let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
            to_tell(&mut states, &seen, now, self.after)
        };
        let mut told = 0;
        for (check, failing, detail) in tell {
            let recorded = self.record(db, check, failing, &detail, now);
            let mailed = self.mail(check, failing, &detail, now);
            if recorded || mailed {
                told += 1;
            }
            // Told once at least one way works; without either, the next look tries again.
            if (recorded || mailed) && failing {
                let mut states = self.states.lock().unwrap_or_else(|p| p.into_inner());
                states.entry(check).or_default().told = true;
            }
        }
        told
    }

    /// The platform audit entry of a failure or recovery; whether it was written.
    fn record(
        &self,
        db: &Database,
        check: &str,
        failing: bool,
        detail: &str,
        now: DateTime<Utc>,
    ) -> bool {
        let actor = Actor::system(format!("node {}", self.node));
        let details = json!({"node": self.node, "dependency": check, "detail": detail});
        let event = Event {
            action: if failing {
                "ops.dependency_down"
            } else {
                "ops.dependency_recovered"
            },
            target_kind: "dependency",
            target_id: Some(check.to_owned()),
            details,
        };
        db.write_blocking(|conn| {
            db::audit::record(
                conn,
                &crate::auth::platform_log_scope(),
                &actor,
                event,
                now.into(),
            )
            .map_err(ServiceError::from)
        })
        .inspect_err(|e| log::warn!("operator alert not recorded: {e}"))
        .is_ok()
    }

    /// The alert mail; whether it was sent (false without mail settings).
    fn mail(&self, check: &str, failing: bool, detail: &str, now: DateTime<Utc>) -> bool {
        let Some((mailer, _)) = &self.mail else {
            return false;
        };
        let (subject, text) = alert_mail(&self.node, check, failing, detail);
        let id = format!(
            "alert.{check}.{}.{}@{}",
            now.timestamp_micros(),
            u8::from(failing),
            mailer.message_id_domain()
        );
        self.send(subject, text, id).is_ok()
    }

    fn send(&self, subject: String, text: String, message_id: String) -> Result<(), SendError> {
        let Some((mailer, to)) = &self.mail else {
            return Ok(());
        };
        let mail = OutgoingMail {
            to: to.iter().map(|a| (None, a.clone())).collect(),
            subject,
            text,
            message_id,
            in_reply_to: None,
            references: Vec::new(),
            auto_submitted: true,
        };
        mailer.send(&mail).inspect_err(|e| {
            log::warn!("operator alert not sent: {e}");
        })
    }

    /// Mails one queued alert (the `ops.alert` job); done at once without mail settings.
    pub fn send_queued(&self, payload: &Value, job_id: &str) -> Result<(), SendError> {
        let Some((mailer, _)) = &self.mail else {
            return Ok(());
        };
        let subject = payload["subject"].as_str().unwrap_or("[Stageflow] alert");
        let text = payload["text"].as_str().unwrap_or_default();
        let id = format!("alert.{job_id}@{}", mailer.message_id_domain());
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
    fn a_failure_is_told_once_it_lasted_and_its_recovery_once() {
        let t0 = DateTime::parse_from_rfc3339("2026-11-29T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let after = Duration::minutes(5);
        let mut states = BTreeMap::new();
        let ok = [("database", Health::Ok), ("scanner", Health::Ok)];
        assert!(to_tell(&mut states, &ok, t0, after).is_empty());
        let down = [
            ("database", Health::Ok),
            ("scanner", Health::Failing("refused".to_owned())),
        ];
        assert!(
            to_tell(&mut states, &down, t0, after).is_empty(),
            "too soon"
        );
        let later = t0 + after;
        assert_eq!(
            to_tell(&mut states, &down, later, after),
            [("scanner", true, "refused".to_owned())]
        );
        states.get_mut("scanner").unwrap().told = true;
        assert!(
            to_tell(&mut states, &down, later, after).is_empty(),
            "no repeat"
        );
        assert_eq!(
            to_tell(&mut states, &ok, later, after),
            [("scanner", false, String::new())]
        );
        // A blip shorter than the wait is never told, nor its end.
        assert!(to_tell(&mut states, &down, later, after).is_empty());
        assert!(to_tell(&mut states, &ok, later + Duration::minutes(1), after).is_empty());
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
