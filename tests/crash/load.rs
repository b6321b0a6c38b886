//! The write load: several clients, each writing its own tickets, transitions, comments and
//! library records until the server dies under them. Every write is entered in the client's
//! ledger as acknowledged (a 2xx arrived) or in flight (no response: it may or may not have
//! been applied); refusals are counted apart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::api::Api;

/// A ticket a client filed. `id` is `None` while the create is in flight at the kill.
pub struct TicketRec {
    pub word: String,
    pub body: Value,
    pub id: Option<String>,
    pub key: Option<String>,
    /// Transitions acknowledged: 0 = new, 1 = in_progress, 2 = done.
    pub acked_rank: usize,
    pub transition_in_flight: bool,
}

pub struct CommentRec {
    pub ticket_id: String,
    pub idempotency_key: String,
    pub body: Value,
    pub id: Option<String>,
}

pub struct RecordRec {
    pub word: String,
    pub body: Value,
    pub id: Option<String>,
    /// The last acknowledged version and its `body` field.
    pub acked_version: i64,
    pub acked_text: String,
    pub update_in_flight: bool,
}

#[derive(Default)]
pub struct Ledger {
    pub tickets: Vec<TicketRec>,
    pub comments: Vec<CommentRec>,
    pub records: Vec<RecordRec>,
    pub acked_transitions: usize,
    pub acked_updates: usize,
    pub refused: Vec<String>,
}

impl Ledger {
    pub fn acknowledged(&self) -> usize {
        self.tickets.iter().filter(|t| t.id.is_some()).count()
            + self.comments.iter().filter(|c| c.id.is_some()).count()
            + self.records.iter().filter(|r| r.id.is_some()).count()
            + self.acked_transitions
            + self.acked_updates
    }

    pub fn in_flight(&self) -> usize {
        self.tickets
            .iter()
            .filter(|t| t.id.is_none() || t.transition_in_flight)
            .count()
            + self.comments.iter().filter(|c| c.id.is_none()).count()
            + self
                .records
                .iter()
                .filter(|r| r.id.is_none() || r.update_in_flight)
                .count()
    }

    /// The acknowledged writes by kind, for the round's line.
    pub fn breakdown(&self) -> String {
        format!(
            "tickets {}, transitions {}, comments {}, records {}, record updates {}",
            self.tickets.iter().filter(|t| t.id.is_some()).count(),
            self.acked_transitions,
            self.comments.iter().filter(|c| c.id.is_some()).count(),
            self.records.iter().filter(|r| r.id.is_some()).count(),
            self.acked_updates
        )
    }

    pub fn merge(&mut self, other: Ledger) {
        self.tickets.extend(other.tickets);
        self.comments.extend(other.comments);
        self.records.extend(other.records);
        self.acked_transitions += other.acked_transitions;
        self.acked_updates += other.acked_updates;
        self.refused.extend(other.refused);
    }
}

/// The word that names a round's writes (`q=round<N>` lists them all).
pub fn round_word(round: u32) -> String {
    format!("round{round}")
}

pub struct Client {
    pub api: Api,
    pub round: u32,
    pub index: usize,
    pub rng: StdRng,
    pub ledger: Ledger,
    serial: usize,
}

/// What one request came to.
enum Outcome {
    Acked(crate::api::Reply),
    Refused,
    InFlight,
}

impl Client {
    pub fn new(api: Api, round: u32, index: usize, seed: u64) -> Self {
        Self {
            api,
            round,
            index,
            rng: StdRng::seed_from_u64(seed),
            ledger: Ledger::default(),
            serial: 0,
        }
    }

    /// Writes until the server stops answering or `stop` is set.
    pub async fn run(mut self, stop: Arc<AtomicBool>) -> Ledger {
        while !stop.load(Ordering::Relaxed) {
            let roll: f64 = self.rng.random();
            let alive = if roll < 0.3 || self.ledger.tickets.is_empty() {
                self.create_ticket().await
            } else if roll < 0.55 {
                self.transition().await
            } else if roll < 0.75 {
                self.comment().await
            } else if roll < 0.87 || self.ledger.records.is_empty() {
                self.create_record().await
            } else {
                self.update_record().await
            };
            if !alive {
                break;
            }
        }
        self.ledger
    }

    fn word(&mut self, kind: &str) -> String {
        self.serial += 1;
        format!("{kind}r{}c{}n{}", self.round, self.index, self.serial)
    }

    fn outcome(&mut self, what: &str, sent: Result<crate::api::Reply, reqwest::Error>) -> Outcome {
        match sent {
            Ok(reply) if reply.ok() => Outcome::Acked(reply),
            Ok(reply) => {
                self.ledger
                    .refused
                    .push(format!("{what}: {} {}", reply.status, reply.text));
                Outcome::Refused
            }
            Err(_) => Outcome::InFlight,
        }
    }

    async fn create_ticket(&mut self) -> bool {
        let word = self.word("t");
        let body = json!({"template": "crash", "fields": {
            "title": format!("crash {word} {}", round_word(self.round)), "ref": word}});
        let sent = self.api.post("/api/v1/tickets", &body, Some(&word)).await;
        let mut record = TicketRec {
            word,
            body,
            id: None,
            key: None,
            acked_rank: 0,
            transition_in_flight: false,
        };
        let alive = match self.outcome("create ticket", sent) {
            Outcome::Acked(reply) => {
                record.id = reply.id();
                record.key = reply.body["key"].as_str().map(str::to_owned);
                true
            }
            Outcome::Refused => return true,
            Outcome::InFlight => false,
        };
        self.ledger.tickets.push(record);
        alive
    }

    /// The next transition of one of this client's acknowledged tickets.
    async fn transition(&mut self) -> bool {
        let open: Vec<usize> = (0..self.ledger.tickets.len())
            .filter(|&i| {
                let t = &self.ledger.tickets[i];
                t.id.is_some() && t.acked_rank < 2 && !t.transition_in_flight
            })
            .collect();
        if open.is_empty() {
            return self.create_ticket().await;
        }
        let i = open[self.rng.random_range(0..open.len())];
        let (id, rank) = {
            let t = &self.ledger.tickets[i];
            (t.id.clone().unwrap_or_default(), t.acked_rank)
        };
        let name = if rank == 0 { "start" } else { "finish" };
        let sent = self
            .api
            .post(
                &format!("/api/v1/tickets/{id}/transitions"),
                &json!({"transition": name}),
                None,
            )
            .await;
        match self.outcome("transition", sent) {
            Outcome::Acked(_) => {
                self.ledger.tickets[i].acked_rank += 1;
                self.ledger.acked_transitions += 1;
                true
            }
            Outcome::Refused => true,
            Outcome::InFlight => {
                self.ledger.tickets[i].transition_in_flight = true;
                false
            }
        }
    }

    async fn comment(&mut self) -> bool {
        let known: Vec<String> = self
            .ledger
            .tickets
            .iter()
            .filter_map(|t| t.id.clone())
            .collect();
        if known.is_empty() {
            return self.create_ticket().await;
        }
        let ticket_id = known[self.rng.random_range(0..known.len())].clone();
        let key = self.word("c");
        let body = json!({"body": format!("comment {key}"), "internal": false});
        let sent = self
            .api
            .post(
                &format!("/api/v1/tickets/{ticket_id}/comments"),
                &body,
                Some(&key),
            )
            .await;
        let mut record = CommentRec {
            ticket_id,
            idempotency_key: key,
            body,
            id: None,
        };
        let alive = match self.outcome("comment", sent) {
            Outcome::Acked(reply) => {
                record.id = reply.id();
                true
            }
            Outcome::Refused => return true,
            Outcome::InFlight => false,
        };
        self.ledger.comments.push(record);
        alive
    }

    async fn create_record(&mut self) -> bool {
        let word = self.word("l");
        let text = format!("{word} v1");
        let body = json!({"fields": {"title": format!("note {word}"), "body": text}});
        let sent = self
            .api
            .post("/api/v1/libraries/notes/records", &body, Some(&word))
            .await;
        let mut record = RecordRec {
            word,
            body,
            id: None,
            acked_version: 0,
            acked_text: text,
            update_in_flight: false,
        };
        let alive = match self.outcome("create record", sent) {
            Outcome::Acked(reply) => {
                record.id = reply.id();
                record.acked_version = reply.body["version"].as_i64().unwrap_or(0);
                true
            }
            Outcome::Refused => return true,
            Outcome::InFlight => false,
        };
        self.ledger.records.push(record);
        alive
    }

    /// A new version of one of this client's acknowledged records, guarded by `If-Match`.
    async fn update_record(&mut self) -> bool {
        let known: Vec<usize> = (0..self.ledger.records.len())
            .filter(|&i| {
                self.ledger.records[i].id.is_some() && !self.ledger.records[i].update_in_flight
            })
            .collect();
        if known.is_empty() {
            return self.create_record().await;
        }
        let i = known[self.rng.random_range(0..known.len())];
        let (id, version, word) = {
            let r = &self.ledger.records[i];
            (
                r.id.clone().unwrap_or_default(),
                r.acked_version,
                r.word.clone(),
            )
        };
        let text = format!("{word} v{}", version + 1);
        let sent = self
            .api
            .send(
                reqwest::Method::PATCH,
                &format!("/api/v1/libraries/notes/records/{id}"),
                Some(&json!({"fields": {"body": text}})),
                &[("If-Match", format!("\"{version}\""))],
            )
            .await;
        match self.outcome("update record", sent) {
            Outcome::Acked(reply) => {
                let r = &mut self.ledger.records[i];
                r.acked_version = reply.body["version"].as_i64().unwrap_or(0);
                r.acked_text = text;
                self.ledger.acked_updates += 1;
                true
            }
            Outcome::Refused => true,
            Outcome::InFlight => {
                self.ledger.records[i].update_in_flight = true;
                false
            }
        }
    }
}
