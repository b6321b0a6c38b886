//! Multi-node webhook delivery, proven: two `stageflow serve` processes (the release binary)
//! on one PostgreSQL database share the job runner; ticket creations are spread over both; a
//! real HTTP receiver in this process records every delivery's `webhook-id` (and checks its
//! signature with the Standard Webhooks library).
//!
//! Round 1 (normal operation): every event after the subscription was made is delivered,
//! none twice, and the delivery log shows them all `delivered`.
//! Round 2 (kill): a second batch, one node SIGKILLed while deliveries are in flight (the
//! receiver answers slowly then); the other node takes the killed node's jobs over once their
//! leases expire. Every event of both rounds is delivered; a duplicate is allowed only for a
//! delivery that had arrived before the kill (in flight: sent, not yet recorded), carries a
//! real event id and arrives exactly twice.
//!
//!   cargo build --release --bin stageflow
//!   STAGEFLOW_TEST_POSTGRES_URL=postgres:///postgres?host=/var/run/postgresql \
//!     cargo test --test multinode                                    # 1,000 events a round
//!   ... STAGEFLOW_MULTINODE_EVENTS=10000 cargo test --test multinode  # by hand
//!
//! Round 3 (SLA, breach announced once): a policy of one hour to resolve (at risk at 50 %)
//! covers every ticket of the template (the earlier rounds' too) and more are filed; the last
//! real-time node is killed and two nodes start two hours ahead
//! (libfaketime: `LD_PRELOAD`, `FAKETIME=+2h`, monotonic time left real), both running the
//! `sla.watch` job every 5 s. Every ticket must get exactly one `ticket.sla_at_risk` and one
//! `ticket.sla_breached` event in the feed, also after several more watch passes of both.
//!
//! Settings: `STAGEFLOW_MULTINODE_BINARY` (default `<target dir>/release/stageflow`),
//! `STAGEFLOW_MULTINODE_EVENTS` (ticket creations a round, 1,000), `STAGEFLOW_MULTINODE_CLIENTS`
//! (8), `STAGEFLOW_MULTINODE_DRAIN_SECONDS` (how long a round may take to deliver, 120),
//! `STAGEFLOW_MULTINODE_SLA_TICKETS` (200), `STAGEFLOW_FAKETIME_LIB` (default
//! `/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1`, Debian's `faketime` package).
//! Not part of plain `cargo test` (`test = false`); `.ci/run` runs it. Exits non-zero on any
//! lost delivery, unexpected duplicate, bad signature or delivery not `delivered`.

mod api;
mod load;
mod node;
mod receiver;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::api::{Api, PASSWORD, TENANT, Tenant};
use crate::load::Load;
use crate::node::{Cluster, LEASE_SECONDS};
use crate::receiver::{Receiver, Snapshot};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// A subscription's delivery job writes its attempts once per batch of at most this many
/// (`jobs::webhooks`): with one subscription, at most this many deliveries are sent and not
/// yet recorded when a node is killed, so at most this many can be sent twice.
const BATCH_SIZE: usize = 250;
/// How slowly the receiver answers in the kill round.
const SLOW_ANSWER: Duration = Duration::from_millis(50);
/// Problems printed (all are counted).
const SHOWN_PROBLEMS: usize = 20;
/// The SLA round's watch period (the smallest the server accepts) and how many more periods
/// it waits, once every announcement is there, for a duplicate to show.
const SLA_WATCH_SECONDS: u64 = 5;
const SLA_EXTRA_PASSES: u32 = 3;

struct Settings {
    binary: PathBuf,
    postgres: String,
    events: usize,
    clients: usize,
    drain: Duration,
    sla_tickets: usize,
    faketime: PathBuf,
}

fn setting<T: std::str::FromStr>(name: &str, default: T) -> Res<T> {
    match std::env::var(name).ok().filter(|v| !v.trim().is_empty()) {
        Some(raw) => raw
            .trim()
            .parse()
            .map_err(|_| format!("{name}: cannot parse {raw:?}").into()),
        None => Ok(default),
    }
}

impl Settings {
    fn from_env() -> Res<Self> {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
        let binary: PathBuf = setting(
            "STAGEFLOW_MULTINODE_BINARY",
            target.join("release/stageflow"),
        )?;
        if !binary.is_file() {
            return Err(format!(
                "{} does not exist: build it with `cargo build --release --bin stageflow` or \
                 name another with STAGEFLOW_MULTINODE_BINARY",
                binary.display()
            )
            .into());
        }
        let postgres = std::env::var("STAGEFLOW_TEST_POSTGRES_URL")
            .ok()
            .filter(|v| !v.is_empty())
            .ok_or("several nodes need PostgreSQL: set STAGEFLOW_TEST_POSTGRES_URL")?;
        Ok(Self {
            binary: binary.canonicalize()?,
            postgres,
            events: setting("STAGEFLOW_MULTINODE_EVENTS", 1_000)?,
            clients: setting("STAGEFLOW_MULTINODE_CLIENTS", 8)?,
            drain: Duration::from_secs(setting("STAGEFLOW_MULTINODE_DRAIN_SECONDS", 120)?),
            sla_tickets: setting("STAGEFLOW_MULTINODE_SLA_TICKETS", 200)?,
            faketime: setting(
                "STAGEFLOW_FAKETIME_LIB",
                PathBuf::from("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"),
            )?,
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("multinode harness: FAILED, {problems} problems (see above)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("multinode harness: could not run: {error}");
            ExitCode::FAILURE
        }
    }
}

/// What the rounds share.
struct Ctx {
    s: Settings,
    cluster: Cluster,
    receiver: Receiver,
    tenant: Tenant,
    /// Every event the subscription must deliver, so far.
    expected: HashSet<String>,
    cursor: Option<String>,
}

async fn run() -> Res<usize> {
    let s = Settings::from_env()?;
    println!(
        "multinode harness: 2 nodes on PostgreSQL, {} creations a round, {} clients, \
         job lease {LEASE_SECONDS} s, binary {}",
        s.events,
        s.clients,
        s.binary.display()
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut cluster = Cluster::new(s.binary.clone(), s.postgres.clone())?;
    cluster.start(&client, "node-a").await?;
    cluster.start(&client, "node-b").await?;
    let receiver = Receiver::start()?;
    let tenant = api::set_up(&client, &cluster.base_urls()[0], &receiver).await?;
    let cursor = tenant.feed_start.clone();
    let mut ctx = Ctx {
        s,
        cluster,
        receiver,
        tenant,
        expected: HashSet::new(),
        cursor,
    };
    let mut problems = round_normal(&mut ctx).await?;
    problems += round_kill(&mut ctx).await?;
    problems += round_sla(&mut ctx, &client).await?;
    println!("multinode harness: problems {problems}");
    Ok(problems)
}

/// Reads the feed on from the last cursor (through a node that is up) and adds its events
/// to the expected ones; returns how many were new.
async fn read_feed(ctx: &mut Ctx, admin: &Api) -> Res<usize> {
    let (ids, cursor) = admin.events_after(ctx.cursor.as_deref()).await?;
    ctx.cursor = cursor;
    let new = ids.len();
    ctx.expected.extend(ids);
    Ok(new)
}

/// Waits until the receiver has every expected event, then until the delivery log shows no
/// delivery pending. Returns the time the first wait took, or `None` if it ran out.
async fn drain(ctx: &Ctx, admin: &Api, started: Instant) -> Res<Option<Duration>> {
    let deadline = started + ctx.s.drain;
    let received = loop {
        let snap = ctx.receiver.snapshot();
        if ctx.expected.iter().all(|id| snap.by_id.contains_key(id)) {
            break started.elapsed();
        }
        if Instant::now() > deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    loop {
        let log = admin.deliveries(&ctx.tenant.webhook_id).await?;
        if log.iter().all(|(_, status)| status != "pending") || Instant::now() > deadline {
            return Ok(Some(received));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn round_normal(ctx: &mut Ctx) -> Res<usize> {
    let admin = ctx.tenant.admin.clone();
    let started = Instant::now();
    let load = Load::new(&ctx.tenant.agent, &ctx.cluster.base_urls(), 1, ctx.s.events);
    load.clone().run(ctx.s.clients).await;
    let created_in = started.elapsed();
    let events = read_feed(ctx, &admin).await?;
    let drained = drain(ctx, &admin, started).await?;
    let mut problems = Vec::new();
    let snap = ctx.receiver.snapshot();
    let twice: Vec<&String> = snap
        .by_id
        .iter()
        .filter(|(_, a)| a.len() > 1)
        .map(|(id, _)| id)
        .collect();
    for id in &twice {
        problems.push(format!(
            "{id} delivered {} times without a kill",
            snap.by_id[*id].len()
        ));
    }
    check_common(ctx, &admin, &snap, drained, &mut problems).await?;
    let figures = Figures {
        created_in,
        drained,
        events,
        duplicates: twice.len(),
    };
    report(
        ctx,
        "round 1 (normal operation)",
        &load,
        &figures,
        &snap,
        &problems,
    );
    Ok(problems.len())
}

async fn round_kill(ctx: &mut Ctx) -> Res<usize> {
    let admin = ctx.tenant.admin.clone();
    let before = ctx.receiver.total();
    ctx.receiver.set_delay(SLOW_ANSWER);
    let started = Instant::now();
    let load = Load::new(&ctx.tenant.agent, &ctx.cluster.base_urls(), 2, ctx.s.events);
    let running = tokio::spawn(load.clone().run(ctx.s.clients));
    // Kill once a third of the batch has arrived: deliveries of both nodes are in flight.
    let kill_at = before + ctx.s.events / 3;
    while ctx.receiver.total() < kill_at && Instant::now() < started + ctx.s.drain {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed_at = Instant::now();
    ctx.cluster.nodes[1].kill().await?;
    let dead_at = Instant::now();
    let killed_after = killed_at - started;
    running.await?;
    let created_in = started.elapsed();
    ctx.receiver.set_delay(Duration::ZERO);
    let survivor = admin.on(&ctx.cluster.nodes[0].base_url());
    let events = read_feed(ctx, &survivor).await?;
    let drained = drain(ctx, &survivor, started).await?;
    let mut problems = Vec::new();
    let snap = ctx.receiver.snapshot();
    let mut twice = 0;
    for (id, arrivals) in snap.by_id.iter().filter(|(_, a)| a.len() > 1) {
        twice += 1;
        let in_flight = arrivals.len() == 2 && arrivals[0] <= dead_at && arrivals[1] > killed_at;
        if !ctx.expected.contains(id) || !in_flight {
            problems.push(format!(
                "{id} delivered {} times, not a delivery in flight at the kill (arrivals at {:?} \
                 from the start, kill at {killed_after:?})",
                arrivals.len(),
                arrivals
                    .iter()
                    .map(|a| a.saturating_duration_since(started))
                    .collect::<Vec<_>>()
            ));
        }
    }
    if twice > BATCH_SIZE {
        problems.push(format!(
            "{twice} duplicates: more than one batch ({BATCH_SIZE}) was in flight"
        ));
    }
    check_common(ctx, &survivor, &snap, drained, &mut problems).await?;
    println!(
        "round 2: node-b SIGKILLed {:.2} s after the batch started ({kill_at} deliveries \
         received by then)",
        killed_after.as_secs_f64()
    );
    let figures = Figures {
        created_in,
        drained,
        events,
        duplicates: twice,
    };
    report(ctx, "round 2 (kill)", &load, &figures, &snap, &problems);
    Ok(problems.len())
}

/// Round 3: SLA breaches announced once by two processes (see the top of the file).
async fn round_sla(ctx: &mut Ctx, client: &reqwest::Client) -> Res<usize> {
    if !ctx.s.faketime.is_file() {
        return Err(format!(
            "{} does not exist: install Debian's faketime package or name the library with \
             STAGEFLOW_FAKETIME_LIB",
            ctx.s.faketime.display()
        )
        .into());
    }
    let node_a = ctx.cluster.nodes[0].base_url();
    let pm = Api::login(client, &node_a, Some(TENANT), "pm", PASSWORD).await?;
    pm.must_post(
        "/api/v1/sla-policies",
        json!({"template": "mn", "name": "one hour", "resolution_minutes": 60,
            "at_risk_percent": 50}),
    )
    .await?;
    let agent = ctx.tenant.agent.on(&node_a);
    for n in 0..ctx.s.sla_tickets {
        agent
            .must_post(
                "/api/v1/tickets",
                json!({"template": "mn", "fields": {"title": format!("SLA {n}")}}),
            )
            .await?;
    }
    // The policy covers the earlier rounds' tickets too (replayed by the `sla.replay` job):
    // every ticket of the template is due.
    let tickets: HashSet<String> = agent.ticket_ids("mn").await?.into_iter().collect();
    ctx.cluster.nodes[0].kill().await?;
    let ahead = [
        ("LD_PRELOAD", ctx.s.faketime.display().to_string()),
        ("FAKETIME", "+2h".to_owned()),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1".to_owned()),
        ("STAGEFLOW_SLA_WATCH_SECONDS", SLA_WATCH_SECONDS.to_string()),
    ];
    let started = Instant::now();
    ctx.cluster.start_with(client, "node-c", &ahead).await?;
    ctx.cluster.start_with(client, "node-d", &ahead).await?;
    // Tokens of the real clock have expired two hours ahead: a new session.
    let node_c = ctx.cluster.nodes[2].base_url();
    let admin = Api::login(client, &node_c, Some(TENANT), "admin", PASSWORD).await?;
    let kinds = ["ticket.sla_at_risk", "ticket.sla_breached"];
    let deadline = started + ctx.s.drain;
    let mut all_there = None;
    loop {
        let mut complete = true;
        for kind in kinds {
            complete &= admin.events_of_type(kind).await?.len() >= tickets.len();
        }
        if complete && all_there.is_none() {
            all_there = Some(started.elapsed());
        }
        let waited = all_there.is_some_and(|at| {
            started.elapsed() > at + Duration::from_secs(SLA_WATCH_SECONDS) * SLA_EXTRA_PASSES
        });
        if waited || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut problems = Vec::new();
    let mut counts = Vec::new();
    for kind in kinds {
        let events = admin.events_of_type(kind).await?;
        let mut per_ticket: HashMap<String, usize> = HashMap::new();
        for e in &events {
            let id = e["subject"]["id"].as_str().unwrap_or_default().to_owned();
            *per_ticket.entry(id).or_insert(0) += 1;
        }
        for (id, n) in &per_ticket {
            if !tickets.contains(id) {
                problems.push(format!(
                    "{kind} for {id}, which is no ticket of the template"
                ));
            } else if *n != 1 {
                problems.push(format!("{kind} announced {n} times for ticket {id}"));
            }
        }
        let missing = tickets
            .iter()
            .filter(|t| !per_ticket.contains_key(*t))
            .count();
        if missing > 0 {
            problems.push(format!("{kind} missing for {missing} tickets"));
        }
        counts.push(format!("{kind} {}", events.len()));
    }
    println!(
        "round 3 (SLA): {} tickets (this round's and the earlier ones) on a one-hour policy; \
         node-a killed; node-c and node-d two \
         hours ahead, watching every {SLA_WATCH_SECONDS} s; every announcement there after \
         {}; then {SLA_EXTRA_PASSES} more watch periods; events: {}; problems {}",
        tickets.len(),
        all_there.map_or("never".to_owned(), |d| format!("{:.2} s", d.as_secs_f64())),
        counts.join(", "),
        problems.len()
    );
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        println!("  PROBLEM: {problem}");
    }
    if !problems.is_empty() {
        println!("{}", ctx.cluster.log_tails());
    }
    Ok(problems.len())
}

/// Every expected event arrived; nothing arrived that is not an event; every signature
/// verified; one delivery row per event, all `delivered`.
async fn check_common(
    ctx: &Ctx,
    admin: &Api,
    snap: &Snapshot,
    drained: Option<Duration>,
    problems: &mut Vec<String>,
) -> Res<()> {
    if drained.is_none() {
        let lost = ctx
            .expected
            .iter()
            .filter(|id| !snap.by_id.contains_key(*id))
            .count();
        problems.push(format!(
            "{lost} events not delivered within {:?}",
            ctx.s.drain
        ));
    }
    for id in snap.by_id.keys().filter(|id| !ctx.expected.contains(*id)) {
        problems.push(format!(
            "a delivery with webhook-id {id}, which is no event of the feed"
        ));
    }
    if snap.bad_signatures > 0 {
        problems.push(format!(
            "{} deliveries with a bad signature",
            snap.bad_signatures
        ));
    }
    let log = admin.deliveries(&ctx.tenant.webhook_id).await?;
    let mut per_event: HashMap<&str, usize> = HashMap::new();
    for (event, _) in &log {
        *per_event.entry(event.as_str()).or_insert(0) += 1;
    }
    if log.len() != ctx.expected.len() || per_event.values().any(|n| *n != 1) {
        problems.push(format!(
            "the delivery log has {} rows for {} distinct events; {} events expected",
            log.len(),
            per_event.len(),
            ctx.expected.len()
        ));
    }
    let statuses = api::by_status(&log);
    if statuses.keys().any(|s| s != "delivered") {
        problems.push(format!("delivery log not all delivered: {statuses:?}"));
    }
    Ok(())
}

/// A round's figures.
struct Figures {
    created_in: Duration,
    /// Until the receiver had every event, from the round's start.
    drained: Option<Duration>,
    /// Events the round added to the feed.
    events: usize,
    duplicates: usize,
}

fn report(ctx: &Ctx, name: &str, load: &Load, f: &Figures, snap: &Snapshot, problems: &[String]) {
    use std::sync::atomic::Ordering::Relaxed;
    let drain = f.drained.map_or("not drained".to_owned(), |d| {
        format!("{:.2} s", d.as_secs_f64())
    });
    let rate = f
        .drained
        .map_or(0.0, |d| f.events as f64 / d.as_secs_f64().max(0.001));
    println!(
        "{name}: creations {} (refused {}, resent to the other node {}) in {:.2} s; events {} \
         (all rounds {}); all delivered {drain} after the round started ({rate:.0} events/s); \
         deliveries received, all rounds: {} ({} distinct), duplicates {}; problems {}",
        load.created.load(Relaxed),
        load.refused.load(Relaxed),
        load.moved.load(Relaxed),
        f.created_in.as_secs_f64(),
        f.events,
        ctx.expected.len(),
        snap.total,
        snap.by_id.len(),
        f.duplicates,
        problems.len()
    );
    for problem in problems.iter().take(SHOWN_PROBLEMS) {
        println!("  PROBLEM: {problem}");
    }
    if !problems.is_empty() {
        println!("{}", ctx.cluster.log_tails());
    }
}
