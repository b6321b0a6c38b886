//! Crash durability, proven: starts the release binary, drives a write load from several
//! clients (ticket creates, transitions with an action, comments, library record creates and
//! updates), kills the server with SIGKILL at a random moment, starts it again on the same
//! database and checks that every write acknowledged with a 2xx is present and complete, that
//! no transition is half applied, and that idempotency keys replay — round after round.
//!
//!   cargo build --release --bin stageflow
//!   cargo test --test crash                                  # SQLite, 3 rounds
//!   STAGEFLOW_TEST_POSTGRES_URL=postgres:///postgres?host=/var/run/postgresql \
//!     STAGEFLOW_CRASH_ROUNDS=20 cargo test --test crash       # PostgreSQL, 20 rounds
//!
//! Settings: `STAGEFLOW_CRASH_BINARY` (default `<target dir>/release/stageflow`),
//! `STAGEFLOW_CRASH_ROUNDS` (3), `STAGEFLOW_CRASH_CLIENTS` (4), `STAGEFLOW_CRASH_SEED` (from
//! the clock; printed, so a run's kill moments can be repeated). Not part of plain
//! `cargo test` (`test = false` in Cargo.toml); `.ci/run` runs it on both backends. Exits
//! non-zero on any lost or incomplete write. Only 127.0.0.1 is contacted.
//! `STAGEFLOW_CRASH_SABOTAGE=rollback` (SQLite) puts back a copy of the database taken before
//! each round's load after the kill: the run must then fail, showing that the checks see loss.

mod api;
mod load;
mod server;
mod verify;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::load::{Client, Ledger};
use crate::server::Server;

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The kill comes this long after the load starts (milliseconds, uniformly drawn).
const KILL_AFTER_MS: std::ops::RangeInclusive<u64> = 150..=1500;
/// Problems printed per round (all are counted).
const SHOWN_PROBLEMS: usize = 20;

struct Settings {
    binary: PathBuf,
    rounds: u32,
    clients: usize,
    seed: u64,
    postgres: Option<String>,
    /// `STAGEFLOW_CRASH_SABOTAGE=rollback`: lose each round's writes on purpose (SQLite), to
    /// see the checks catch it.
    sabotage: bool,
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
        let binary = setting("STAGEFLOW_CRASH_BINARY", target.join("release/stageflow"))?;
        if !binary.is_file() {
            return Err(format!(
                "{} does not exist: build it with `cargo build --release --bin stageflow` or \
                 name another with STAGEFLOW_CRASH_BINARY",
                binary.display()
            )
            .into());
        }
        // The server runs in its own directory: a relative path would not find it there.
        let binary = binary.canonicalize()?;
        let clock_seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Ok(Self {
            binary,
            rounds: setting("STAGEFLOW_CRASH_ROUNDS", 3)?,
            clients: setting("STAGEFLOW_CRASH_CLIENTS", 4)?,
            seed: setting("STAGEFLOW_CRASH_SEED", clock_seed)?,
            postgres: std::env::var("STAGEFLOW_TEST_POSTGRES_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            sabotage: match std::env::var("STAGEFLOW_CRASH_SABOTAGE").as_deref() {
                Ok("rollback") => true,
                Ok("") | Err(_) => false,
                Ok(other) => {
                    return Err(
                        format!("STAGEFLOW_CRASH_SABOTAGE: {other:?} is not `rollback`").into(),
                    );
                }
            },
        })
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(0) => ExitCode::SUCCESS,
        Ok(problems) => {
            eprintln!("crash harness: FAILED, {problems} problems (see above)");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("crash harness: could not run: {error}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Totals {
    acknowledged: usize,
    checked: usize,
    in_flight: usize,
    refused: usize,
    problems: usize,
}

/// Runs every round; returns the number of problems found.
async fn run() -> Res<usize> {
    let s = Settings::from_env()?;
    let backend = if s.postgres.is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    println!(
        "crash harness: {backend}, {} rounds, {} clients, binary {}, seed {} \
         (STAGEFLOW_CRASH_SEED={} repeats the kill moments)",
        s.rounds,
        s.clients,
        s.binary.display(),
        s.seed,
        s.seed
    );
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()?;
    let mut server = Server::new(s.binary.clone(), s.postgres.clone())?;
    server.start(&client).await?;
    api::set_up(&client, &server.base_url()).await?;
    let mut rng = StdRng::seed_from_u64(s.seed);
    let mut totals = Totals::default();
    let started = Instant::now();
    for round in 1..=s.rounds {
        one_round(&s, &client, &mut server, &mut rng, round, &mut totals).await?;
    }
    server.kill().await?;
    println!(
        "crash harness: {backend}, {} rounds in {:.1} s: writes acknowledged {}, checked {}, \
         in flight at kills {}, refused {}, problems {}",
        s.rounds,
        started.elapsed().as_secs_f64(),
        totals.acknowledged,
        totals.checked,
        totals.in_flight,
        totals.refused,
        totals.problems
    );
    Ok(totals.problems)
}

/// Load, kill at a random moment, restart, check; prints the round's line.
async fn one_round(
    s: &Settings,
    client: &reqwest::Client,
    server: &mut Server,
    rng: &mut StdRng,
    round: u32,
    totals: &mut Totals,
) -> Res<()> {
    let round_started = Instant::now();
    let base = server.base_url();
    let agent = api::agent(client, &base).await?;
    if s.sabotage {
        server.snapshot()?;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let tasks: Vec<_> = (0..s.clients)
        .map(|i| {
            let load = Client::new(agent.clone(), round, i, rng.random());
            tokio::spawn(load.run(stop.clone()))
        })
        .collect();
    let kill_after = rng.random_range(KILL_AFTER_MS);
    tokio::time::sleep(Duration::from_millis(kill_after)).await;
    server.kill().await?;
    stop.store(true, Ordering::Relaxed);
    let mut ledger = Ledger::default();
    for task in tasks {
        ledger.merge(task.await?);
    }
    if s.sabotage {
        server.restore_snapshot()?;
    }
    server.start(client).await?;
    let agent = api::agent(client, &base).await?;
    let (acknowledged, in_flight) = (ledger.acknowledged(), ledger.in_flight());
    let findings = verify::round(&agent, round, &mut ledger)
        .await
        .map_err(|e| {
            format!(
                "round {round}: verification stopped: {e}\n{}",
                server.log_tail()
            )
        })?;
    println!(
        "round {round}/{}: killed after {kill_after} ms; writes acknowledged {acknowledged} ({}), \
         in flight at the kill {in_flight} (creates settled by retry with their keys: {}), \
         refused {}; writes checked {}; problems found {} ({:.1} s)",
        s.rounds,
        ledger.breakdown(),
        findings.in_flight_resolved,
        ledger.refused.len(),
        findings.checked,
        findings.problems.len(),
        round_started.elapsed().as_secs_f64()
    );
    for refusal in ledger.refused.iter().take(5) {
        println!("  refused: {refusal}");
    }
    for problem in findings.problems.iter().take(SHOWN_PROBLEMS) {
        let shown: String = problem.chars().take(240).collect();
        println!("  PROBLEM: {shown}");
    }
    totals.acknowledged += acknowledged;
    totals.checked += findings.checked;
    totals.in_flight += in_flight;
    totals.refused += ledger.refused.len();
    totals.problems += findings.problems.len();
    Ok(())
}
