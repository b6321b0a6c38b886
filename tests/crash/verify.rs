//! After the restart: every acknowledged write is there and complete, nothing is half
//! applied, and idempotency keys replay. Each failed expectation is one problem line.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Res;
use crate::api::Api;
use crate::load::{CommentRec, Ledger, RecordRec, TicketRec, round_word};

const STATES: [&str; 3] = ["new", "in_progress", "done"];

#[derive(Default)]
pub struct Findings {
    pub checked: usize,
    pub in_flight_resolved: usize,
    pub problems: Vec<String>,
}

impl Findings {
    fn expect(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.problems.push(problem());
        }
    }
}

pub async fn round(api: &Api, round: u32, ledger: &mut Ledger) -> Res<Findings> {
    // A read that fails (a 404 for an acknowledged resource above all) is a problem too.
    let mut f = Findings::default();
    for ticket in &mut ledger.tickets {
        if let Err(e) = check_ticket(api, ticket, &mut f).await {
            f.problems.push(format!("ticket {}: {e}", ticket.word));
        }
    }
    if let Err(e) = check_round_list(api, round, &ledger.tickets, &mut f).await {
        f.problems.push(format!("round {round} list: {e}"));
    }
    for comment in &mut ledger.comments {
        if let Err(e) = check_comment(api, comment, &mut f).await {
            f.problems
                .push(format!("comment {}: {e}", comment.idempotency_key));
        }
    }
    for record in &mut ledger.records {
        if let Err(e) = check_record(api, record, &mut f).await {
            f.problems.push(format!("record {}: {e}", record.word));
        }
    }
    Ok(f)
}

/// Replays an acknowledged create, or settles one that was in flight by sending it again with
/// its key: exactly one resource must result either way. Returns its id.
async fn replay(
    api: &Api,
    path: &str,
    body: &Value,
    key: &str,
    acked_id: Option<&str>,
    f: &mut Findings,
) -> Res<Option<String>> {
    let reply = api.post(path, body, Some(key)).await?;
    f.expect(reply.status == 201, || {
        format!(
            "{path} with key {key} after the restart: {} {}",
            reply.status, reply.text
        )
    });
    match acked_id {
        Some(id) => {
            f.expect(reply.replayed && reply.id().as_deref() == Some(id), || {
                format!(
                    "key {key} did not replay {id}: replayed={} {}",
                    reply.replayed, reply.text
                )
            });
            Ok(Some(id.to_owned()))
        }
        None => {
            f.in_flight_resolved += 1;
            Ok(reply.id())
        }
    }
}

async fn check_ticket(api: &Api, t: &mut TicketRec, f: &mut Findings) -> Res<()> {
    let acked = t.id.clone();
    let Some(id) = replay(
        api,
        "/api/v1/tickets",
        &t.body,
        &t.word,
        acked.as_deref(),
        f,
    )
    .await?
    else {
        return Ok(());
    };
    t.id = Some(id.clone());
    if acked.is_some() {
        f.checked += 1 + t.acked_rank;
    }
    let ticket = api.get(&format!("/api/v1/tickets/{id}")).await?;
    f.expect(
        ticket["fields"]["title"] == t.body["fields"]["title"]
            && ticket["fields"]["ref"] == t.body["fields"]["ref"],
        || format!("ticket {id} lost its fields: {ticket}"),
    );
    if let Some(key) = &t.key {
        f.expect(ticket["key"].as_str() == Some(key), || {
            format!("ticket {id}: key {} not {key}", ticket["key"])
        });
    }
    let state = ticket["state"].as_str().unwrap_or("?").to_owned();
    let rank = STATES
        .iter()
        .position(|s| *s == state)
        .unwrap_or(usize::MAX);
    f.expect(rank != usize::MAX && rank >= t.acked_rank, || {
        format!(
            "ticket {id}: state {state}, but {} transitions were acknowledged",
            t.acked_rank
        )
    });
    f.expect(t.transition_in_flight || rank == t.acked_rank, || {
        format!("ticket {id}: state {state} without an acknowledged or in-flight transition")
    });
    let history = api.all(&format!("/api/v1/tickets/{id}/history")).await?;
    check_history(&id, &ticket, &state, rank, &history, f);
    for index_query in [
        format!("field.ref={}&state={state}", t.word),
        format!("q={}", t.word),
    ] {
        let found = api.all(&format!("/api/v1/tickets?{index_query}")).await?;
        f.expect(
            found.len() == 1 && found[0]["id"].as_str() == Some(&id),
            || format!("ticket {id}: ?{index_query} found {} tickets", found.len()),
        );
    }
    Ok(())
}

/// State, history and the action's field agree: a transition is all there or not at all.
fn check_history(
    id: &str,
    ticket: &Value,
    state: &str,
    rank: usize,
    history: &[Value],
    f: &mut Findings,
) {
    let of_kind = |kind: &str| {
        history
            .iter()
            .filter(|e| e["kind"] == kind)
            .collect::<Vec<_>>()
    };
    f.expect(of_kind("created").len() == 1, || {
        format!("ticket {id}: not one `created` entry")
    });
    let transitions: Vec<&str> = of_kind("transition")
        .iter()
        .filter_map(|e| e["to_state"].as_str())
        .collect();
    f.expect(
        rank < STATES.len() && transitions == STATES[1..=rank.min(2)],
        || format!("ticket {id}: state {state} but transitions in history {transitions:?}"),
    );
    let effort_set = of_kind("field_changed")
        .iter()
        .any(|e| e["field"] == "effort");
    let started = rank >= 1 && rank < STATES.len();
    f.expect(
        effort_set == started && (ticket["fields"]["effort"] == 1) == started,
        || {
            format!(
                "ticket {id}: state {state} but effort {} (history: {effort_set})",
                ticket["fields"]["effort"]
            )
        },
    );
}

/// `q=round<N>` lists each of the round's tickets exactly once and nothing else: no lost
/// ticket, no duplicate from a retried create.
async fn check_round_list(
    api: &Api,
    round: u32,
    tickets: &[TicketRec],
    f: &mut Findings,
) -> Res<()> {
    let listed = api
        .all(&format!("/api/v1/tickets?q={}", round_word(round)))
        .await?;
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for item in &listed {
        *counts
            .entry(item["id"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let known: Vec<&String> = tickets.iter().filter_map(|t| t.id.as_ref()).collect();
    f.expect(
        listed.len() == known.len() && known.iter().all(|id| counts.get(*id) == Some(&1)),
        || {
            format!(
                "round {round}: the list holds {} tickets, the ledger {}",
                listed.len(),
                known.len()
            )
        },
    );
    Ok(())
}

async fn check_comment(api: &Api, c: &mut CommentRec, f: &mut Findings) -> Res<()> {
    let path = format!("/api/v1/tickets/{}/comments", c.ticket_id);
    let acked = c.id.clone();
    let Some(id) = replay(api, &path, &c.body, &c.idempotency_key, acked.as_deref(), f).await?
    else {
        return Ok(());
    };
    if acked.is_some() {
        f.checked += 1;
    }
    let comments = api.all(&path).await?;
    let same_body = comments
        .iter()
        .filter(|x| x["body"] == c.body["body"])
        .count();
    f.expect(
        same_body == 1 && comments.iter().any(|x| x["id"].as_str() == Some(&id)),
        || {
            format!(
                "comment {id} on {}: {same_body} comments with its body",
                c.ticket_id
            )
        },
    );
    Ok(())
}

async fn check_record(api: &Api, r: &mut RecordRec, f: &mut Findings) -> Res<()> {
    let path = "/api/v1/libraries/notes/records";
    let acked = r.id.clone();
    let Some(id) = replay(api, path, &r.body, &r.word, acked.as_deref(), f).await? else {
        return Ok(());
    };
    if acked.is_some() {
        f.checked += usize::try_from(r.acked_version).unwrap_or(1);
    } else {
        r.acked_version = 1;
    }
    let record = api.get(&format!("{path}/{id}")).await?;
    let version = record["version"].as_i64().unwrap_or(0);
    f.expect(
        version >= r.acked_version && (r.update_in_flight || version == r.acked_version),
        || {
            format!(
                "record {id}: version {version}, acknowledged {}",
                r.acked_version
            )
        },
    );
    let history = api.all(&format!("{path}/{id}/history")).await?;
    let versions: Vec<i64> = history
        .iter()
        .filter_map(|v| v["version"].as_i64())
        .collect();
    let mut sorted = versions.clone();
    sorted.sort_unstable();
    f.expect(sorted == (1..=version).collect::<Vec<_>>(), || {
        format!("record {id}: version {version} but history versions {versions:?}")
    });
    if acked.is_some() {
        let at_acked = history
            .iter()
            .find(|v| v["version"].as_i64() == Some(r.acked_version));
        f.expect(
            at_acked.is_some_and(|v| v["fields"]["body"] == r.acked_text.as_str()),
            || {
                format!(
                    "record {id}: version {} does not hold {:?}",
                    r.acked_version, r.acked_text
                )
            },
        );
    }
    let found = api.all(&format!("{path}?q={}", r.word)).await?;
    f.expect(
        found.len() == 1 && found[0]["id"].as_str() == Some(&id),
        || format!("record {id}: ?q={} found {} records", r.word, found.len()),
    );
    Ok(())
}
