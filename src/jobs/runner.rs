//! The runner of one node: the registry of job kinds, the claim-and-run pass, the two loops
//! (jobs; node-local tasks) and graceful shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use actix_web::rt::task::JoinHandle;
use actix_web::rt::time::{sleep, timeout};
use chrono::{DateTime, Utc};
use futures_util::future::{join_all, select};
use tokio::sync::{Notify, watch};

use super::schedule::{self, Next};
use super::{Handler, Job, JobContext, JobOutcome, NewJob};
use crate::clock::Clock;
use crate::config::JobSettings;
use crate::db::jobs::{self as store, JobRow, Lease};
use crate::db::{Database, DbError};

/// A registered job kind.
struct Kind {
    handler: Handler,
    /// Recurring: the period, and whether its row is known to exist.
    every: Option<(Duration, AtomicBool)>,
    /// Runs for long (waits on a server): the job loop does not wait for it before its next
    /// claim.
    long: bool,
}

/// Work on this node's own memory, run every `every` by the local loop (and once more at
/// shutdown when marked so). Its future runs on the server's runtime; blocking work inside it
/// belongs on the blocking pool.
pub struct LocalTask {
    name: &'static str,
    every: Duration,
    at_shutdown: bool,
    run: Box<dyn Fn() -> Pin<Box<dyn Future<Output = ()>>>>,
}

impl LocalTask {
    pub fn new<F, Fut>(name: &'static str, every: Duration, run: F) -> Self
    where
        F: Fn() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        Self {
            name,
            every,
            at_shutdown: false,
            run: Box::new(move || Box::pin(run())),
        }
    }

    /// Also run once during graceful shutdown, after the jobs have stopped.
    pub fn at_shutdown(self) -> Self {
        Self {
            at_shutdown: true,
            ..self
        }
    }
}

/// The running loops: jobs, then local tasks.
type Loops = (Option<JoinHandle<()>>, Option<JoinHandle<()>>);

/// One node's job runner. Build it with [`Runner::new`], register kinds, then [`Runner::start`]
/// its loops; [`Runner::shutdown`] stops them.
pub struct Runner {
    db: Database,
    clock: Arc<dyn Clock>,
    settings: JobSettings,
    node_id: Arc<str>,
    kinds: RwLock<HashMap<String, Arc<Kind>>>,
    stop: watch::Sender<bool>,
    wake: Notify,
    loops: Mutex<Loops>,
}

impl Runner {
    pub fn new(db: Database, clock: Arc<dyn Clock>, settings: &JobSettings) -> Arc<Self> {
        Arc::new(Self {
            db,
            clock,
            node_id: Arc::from(settings.node_id.as_str()),
            settings: settings.clone(),
            kinds: RwLock::default(),
            stop: watch::Sender::new(false),
            wake: Notify::new(),
            loops: Mutex::default(),
        })
    }

    /// The owner name of this runner's leases.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The kinds registered on this node, sorted.
    pub fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self
            .kinds
            .read()
            .map(|k| k.keys().cloned().collect())
            .unwrap_or_default();
        kinds.sort();
        kinds
    }

    /// Runs jobs of `kind` with `handler` (replacing an earlier handler of the kind). Only
    /// kinds registered on a node are claimed by it, so a node that does not know a kind
    /// (an older version during an upgrade) leaves its jobs to the others.
    pub fn register<F>(&self, kind: &str, handler: F)
    where
        F: Fn(&JobContext, &Job) -> JobOutcome + Send + Sync + 'static,
    {
        self.insert_kind(kind, Arc::new(handler), None, false);
    }

    /// Like [`Runner::register`], for a kind whose runs wait for long (an IMAP IDLE, up to
    /// half the lease): the job loop runs them beside its passes instead of waiting for them,
    /// so other jobs are not held up; [`Runner::run_due`] (tests) still waits for them. The
    /// handler should end early when [`JobContext::stopping`] turns true.
    pub fn register_long<F>(&self, kind: &str, handler: F)
    where
        F: Fn(&JobContext, &Job) -> JobOutcome + Send + Sync + 'static,
    {
        self.insert_kind(kind, Arc::new(handler), None, true);
    }

    /// Registers a recurring job: one row for the kind (its singleton key), first due `every`
    /// after it is created, then `every` after each run, whatever the outcome.
    pub fn recurring<F>(&self, kind: &str, every: Duration, handler: F)
    where
        F: Fn(&JobContext, &Job) -> JobOutcome + Send + Sync + 'static,
    {
        self.insert_kind(kind, Arc::new(handler), Some(every), false);
    }

    /// [`Runner::recurring`] for a kind whose runs take long (a backup): run beside the
    /// passes, as with [`Runner::register_long`].
    pub fn recurring_long<F>(&self, kind: &str, every: Duration, handler: F)
    where
        F: Fn(&JobContext, &Job) -> JobOutcome + Send + Sync + 'static,
    {
        self.insert_kind(kind, Arc::new(handler), Some(every), true);
    }

    fn insert_kind(&self, kind: &str, handler: Handler, every: Option<Duration>, long: bool) {
        let kind_entry = Kind {
            handler,
            every: every.map(|every| (every, AtomicBool::new(false))),
            long,
        };
        let mut kinds = self.kinds.write().unwrap_or_else(|p| p.into_inner());
        kinds.insert(kind.to_owned(), Arc::new(kind_entry));
    }

    fn kind(&self, kind: &str) -> Option<Arc<Kind>> {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds.get(kind).cloned()
    }

    fn kind_names(&self) -> Vec<String> {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds.keys().cloned().collect()
    }

    /// Makes sure every recurring kind has its row (blocking; called at start-up and by each
    /// pass for kinds registered later). A new row is first due one period after `now`.
    pub fn seed_recurring_blocking(&self, now: DateTime<Utc>) -> Result<(), DbError> {
        let kinds: Vec<(String, Arc<Kind>)> = {
            let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
            kinds.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
        };
        for (name, kind) in kinds {
            let Some((every, seeded)) = &kind.every else {
                continue;
            };
            if seeded.load(Ordering::Acquire) {
                continue;
            }
            let mut job = NewJob::new(name.as_str(), serde_json::Value::Null, now);
            job.run_at = schedule::later(now, *every);
            self.db.write_blocking(|conn| {
                store::ensure_singleton(conn, &job).map_err(DbError::from)
            })?;
            seeded.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn needs_seeding(&self) -> bool {
        let kinds = self.kinds.read().unwrap_or_else(|p| p.into_inner());
        kinds.values().any(|kind| {
            kind.every
                .as_ref()
                .is_some_and(|(_, seeded)| !seeded.load(Ordering::Acquire))
        })
    }

    /// Asks the job loop for a pass now rather than at its next tick (e.g. after enqueueing
    /// work that should not wait).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Runs every job due at `now` once: claims batches of due jobs of the registered kinds
    /// under this node's lease and runs each batch concurrently on the blocking pool, until
    /// none is due. A retried job is due again at the earliest a second later, so the pass
    /// ends. Returns how many jobs ran. Errors are logged (an unreachable database ends the
    /// pass; the next one tries again).
    pub async fn run_due(self: &Arc<Self>, now: DateTime<Utc>) -> usize {
        self.pass(now, false).await
    }

    /// [`Runner::run_due`]; with `detach_long`, jobs of long kinds run on their own task.
    async fn pass(self: &Arc<Self>, now: DateTime<Utc>, detach_long: bool) -> usize {
        if self.needs_seeding() {
            let runner = self.clone();
            let seeded =
                actix_web::rt::task::spawn_blocking(move || runner.seed_recurring_blocking(now))
                    .await;
            if let Ok(Err(error)) = seeded {
                log::warn!("recurring jobs not set up, will retry: {error}");
            }
        }
        let mut ran = 0;
        let started = std::time::Instant::now();
        while !*self.stop.borrow() {
            // A pass working through a backlog takes time: each claim's lease starts when it
            // is taken, not when the pass began (else late claims could hold leases that have
            // already run out, and another node would take jobs still running).
            let taken = now + chrono::Duration::from_std(started.elapsed()).unwrap_or_default();
            let batch = match self.claim(now, taken).await {
                Ok(batch) if batch.is_empty() => break,
                Ok(batch) => batch,
                Err(error) => {
                    log::warn!("jobs not claimed, will retry: {error}");
                    break;
                }
            };
            ran += batch.len();
            let (long, batch): (Vec<JobRow>, Vec<JobRow>) = batch
                .into_iter()
                .partition(|row| detach_long && self.kind(&row.kind).is_some_and(|kind| kind.long));
            for row in long {
                let runner = self.clone();
                actix_web::rt::spawn(async move { runner.run_one(row, now).await });
            }
            join_all(batch.into_iter().map(|row| self.run_one(row, now))).await;
        }
        ran
    }

    /// Claims jobs due at `now` under a lease that starts at `taken`.
    async fn claim(
        &self,
        now: DateTime<Utc>,
        taken: DateTime<Utc>,
    ) -> Result<Vec<JobRow>, DbError> {
        let kinds = self.kind_names();
        let owner = self.node_id.clone();
        let until = schedule::lease_until(taken, self.settings.lease);
        let limit = i64::from(self.settings.batch_size);
        self.db
            .write(move |conn| {
                Ok(store::claim(
                    conn,
                    &kinds,
                    &owner,
                    now.into(),
                    until.into(),
                    limit,
                )?)
            })
            .await
    }

    /// One attempt of a claimed job: its handler, then the outcome written back as long as
    /// the lease is still ours — all on the blocking pool.
    async fn run_one(&self, row: JobRow, now: DateTime<Utc>) {
        let Some(kind) = self.kind(&row.kind) else {
            return;
        };
        let context = JobContext {
            db: self.db.clone(),
            now,
            clock: self.clock.clone(),
            node_id: self.node_id.clone(),
            stopping: self.stop.subscribe(),
        };
        let clock = self.clock.clone();
        let ran = actix_web::rt::task::spawn_blocking(move || {
            let job = Job::from(&row);
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (kind.handler)(&context, &job)
            }))
            .unwrap_or_else(|_| JobOutcome::Retry {
                after: None,
                error: "the handler panicked".to_owned(),
            });
            let finished_at = now.max(clock.now());
            let every = kind.every.as_ref().map(|(every, _)| *every);
            let next = schedule::next_step(
                &outcome,
                row.attempts,
                row.max_attempts,
                every,
                finished_at,
                rand::random::<f64>(),
            );
            finish(&context, &row, next, finished_at);
            outcome == JobOutcome::Continue
        })
        .await;
        match ran {
            // Due again at once: pass again instead of waiting for the tick (when passes
            // start on their own: tests drive them).
            Ok(true) if self.settings.wake_on_enqueue => self.wake(),
            Ok(true) => {}
            Ok(false) => {}
            Err(error) => log::warn!("job task failed: {error}"),
        }
    }

    /// Starts the job loop and the loop of this node's local tasks on the current runtime.
    pub fn start(self: &Arc<Self>, local: Vec<LocalTask>) {
        let jobs = actix_web::rt::spawn(self.clone().job_loop());
        let tasks = actix_web::rt::spawn(self.clone().local_loop(local));
        *self.loops.lock().unwrap_or_else(|p| p.into_inner()) = (Some(jobs), Some(tasks));
    }

    /// Passes at every tick, when woken, and when a write of this node enqueued a due job
    /// (`Database::job_enqueued`; commits during a pass leave one permit, so they cost one
    /// more claim, not one each).
    async fn job_loop(self: Arc<Self>) {
        let mut stop = self.stop.subscribe();
        loop {
            {
                let tick = pin!(sleep(self.settings.tick));
                let woken = pin!(self.wake.notified());
                let enqueued = pin!(async {
                    if self.settings.wake_on_enqueue {
                        self.db.job_enqueued().await;
                    } else {
                        std::future::pending::<()>().await;
                    }
                });
                select(select(tick, woken), select(enqueued, pin!(stop.changed()))).await;
            }
            if *stop.borrow() {
                break;
            }
            self.pass(self.clock.now(), true).await;
        }
    }

    async fn local_loop(self: Arc<Self>, tasks: Vec<LocalTask>) {
        let mut stop = self.stop.subscribe();
        let mut last_run = vec![Instant::now(); tasks.len()];
        loop {
            select(pin!(sleep(self.settings.tick)), pin!(stop.changed())).await;
            if *stop.borrow() {
                break;
            }
            for (task, last_run) in tasks.iter().zip(last_run.iter_mut()) {
                if last_run.elapsed() >= task.every {
                    *last_run = Instant::now();
                    log::debug!("local task {}", task.name);
                    (task.run)().await;
                }
            }
        }
        for task in tasks.iter().filter(|task| task.at_shutdown) {
            (task.run)().await;
        }
    }

    /// Graceful shutdown: no more claims; the running batch may finish within the
    /// configured grace; then every lease this node still holds is released (those jobs are
    /// due for the other nodes at once), and the local tasks marked for it run a last time.
    pub async fn shutdown(&self) {
        self.stop.send_replace(true);
        let (jobs, tasks) = {
            let mut loops = self.loops.lock().unwrap_or_else(|p| p.into_inner());
            (loops.0.take(), loops.1.take())
        };
        if let Some(mut jobs) = jobs
            && timeout(self.settings.shutdown_grace, &mut jobs)
                .await
                .is_err()
        {
            jobs.abort();
            log::warn!("jobs still running at shutdown; their leases are released");
        }
        let owner = self.node_id.clone();
        let released = self
            .db
            .write(move |conn| Ok::<_, DbError>(store::release_all(conn, &owner)?))
            .await;
        match released {
            Ok(0) => {}
            Ok(count) => log::info!("released the leases of {count} unfinished jobs"),
            Err(error) => log::warn!("job leases not released (they expire): {error}"),
        }
        if let Some(tasks) = tasks {
            let _ = tasks.await;
        }
    }
}

/// Writes an attempt's outcome, provided the lease is still ours: a node whose lease expired
/// and was taken over finishes nothing (the other node's attempt decides).
fn finish(context: &JobContext, row: &JobRow, next: Next, at: DateTime<Utc>) {
    let lease = Lease {
        id: row.id,
        owner: &context.node_id,
        attempt: row.attempts,
    };
    let written = context.db.write_blocking(|conn| {
        Ok::<_, DbError>(match &next {
            Next::Delete => store::delete_held(conn, &lease)?,
            Next::Reschedule {
                run_at,
                reset_attempts,
                error,
            } => store::reschedule_held(
                conn,
                &lease,
                (*run_at).into(),
                *reset_attempts,
                error.as_deref(),
            )?,
            Next::Fail { error } => store::fail_held(conn, &lease, at.into(), error)?,
            Next::Nothing => true,
        })
    });
    match written {
        Ok(true) => {
            if let Next::Fail { error } = &next {
                log::warn!("job {} ({}) failed for good: {error}", row.id, row.kind);
            }
        }
        Ok(false) => log::warn!(
            "job {} ({}): the lease was taken over, this node's outcome is dropped",
            row.id,
            row.kind
        ),
        Err(error) => log::warn!(
            "job {} ({}): outcome not written, the lease will expire: {error}",
            row.id,
            row.kind
        ),
    }
}
