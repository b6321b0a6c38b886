//! Group commit on SQLite (#18 point 2, ADR-35).
//!
//! SQLite has one writer, and with `synchronous = FULL` every commit waits for the disk. A
//! request's write used to take the writer, run, commit and hand the writer on, so every
//! request paid a commit and a hand-over of its own. Now a request's write is a *unit*: it is
//! queued, and whichever request's thread takes the writer next runs every queued unit in one
//! transaction, each in a savepoint of its own, and commits once:
//!
//! - a unit that fails rolls back to its savepoint only; the others still commit;
//! - no unit's result is handed back before the commit that holds it has returned, so an
//!   answered write is as durable as before;
//! - a failed commit fails every unit of the group;
//! - a unit that panics fails alone (rolled back to its savepoint).
//!
//! A thread that takes the writer and finds its unit already committed by an earlier group
//! just hands the writer on. Nothing waits for a group to fill: a group is what queued while
//! the previous one ran, so a lone write commits at once.
//!
//! The writer is a [`Writer`]: the process's one SQLite write connection, held by the mutex
//! that queues its writers. A waiting thread holds no pooled connection, so a group can hold
//! more writes than the pool has connections, and whoever holds the writer never waits for
//! one (a version that had the runner check one out after taking the writer could wait out
//! the pool's timeout for connections that writers queued behind it held).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};

use diesel::Connection;

use diesel::r2d2::R2D2Connection;

use super::{ConnectionManager, DbConnection, DbError, caller_check};

/// SQLite's writer: one connection of its own, opened on first use, for every write of this
/// process. Holding the guard is holding the writer.
pub(super) struct Writer {
    manager: ConnectionManager,
    conn: Option<DbConnection>,
}

impl Writer {
    pub(super) fn new(manager: ConnectionManager) -> Self {
        Self {
            manager,
            conn: None,
        }
    }

    /// Runs `f` on the write connection (opened now if there is none); a connection left
    /// broken (a transaction that could not be ended) or by a panic is closed, and the next
    /// use opens another.
    pub(super) fn with<R>(&mut self, f: impl FnOnce(Result<&mut DbConnection, DbError>) -> R) -> R {
        let mut conn = match self.conn.take() {
            Some(conn) => conn,
            None => match self.manager.connect() {
                Ok(conn) => conn,
                Err(error) => return f(Err(error)),
            },
        };
        // Out of `self` while `f` runs: a panic drops it rather than leaving a connection
        // mid-transaction to the next writer.
        let result = f(Ok(&mut conn));
        if !conn.is_broken() {
            self.conn = Some(conn);
        }
        result
    }
}

/// One request's write, waiting for a group to run it.
pub(super) trait Unit: Send {
    /// Runs the write in a savepoint of the group's transaction; whether it succeeded.
    fn run(&mut self, conn: &mut DbConnection) -> bool;
    /// The group did not commit (or could not start): the write's result is `error`.
    fn fail(&mut self, error: &str);
}

/// Where a unit's result waits for its caller.
pub(super) type Slot<T, E> = Arc<Mutex<Option<Result<T, E>>>>;

/// A write as queued: the work, the request's deferred caller check, and the result slot.
pub(super) struct Pending<T, E, F> {
    work: Option<F>,
    check: Option<caller_check::CallerCheck>,
    slot: Slot<T, E>,
}

impl<T, E, F> Pending<T, E, F> {
    pub(super) fn new(work: F, check: Option<caller_check::CallerCheck>) -> (Self, Slot<T, E>) {
        let slot = Arc::new(Mutex::new(None));
        let pending = Self {
            work: Some(work),
            check,
            slot: Arc::clone(&slot),
        };
        (pending, slot)
    }
}

impl<T, E, F> Unit for Pending<T, E, F>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E> + Send,
    T: Send,
    E: From<DbError> + From<diesel::result::Error> + Send,
{
    fn run(&mut self, conn: &mut DbConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let check = self.check.take();
        let result = conn.transaction::<T, E, _>(|conn| {
            caller_check::run(check.as_ref(), conn)?;
            catch_unwind(AssertUnwindSafe(|| work(conn)))
                .unwrap_or_else(|_| Err(E::from(DbError::Cancelled)))
        });
        let succeeded = result.is_ok();
        *lock(&self.slot) = Some(result);
        succeeded
    }

    fn fail(&mut self, error: &str) {
        *lock(&self.slot) = Some(Err(E::from(DbError::Commit(error.to_owned()))));
    }
}

/// The units waiting for the next group.
#[derive(Default)]
pub(super) struct Queue {
    units: Mutex<Vec<Box<dyn Unit>>>,
}

impl Queue {
    pub(super) fn push(&self, unit: Box<dyn Unit>) {
        lock(&self.units).push(unit);
    }

    /// Everything queued so far, for one group.
    pub(super) fn take(&self) -> Vec<Box<dyn Unit>> {
        std::mem::take(&mut *lock(&self.units))
    }
}

/// The result a unit's caller finds once it holds the writer: `Some` if a group ran it.
pub(super) fn finished<T, E>(slot: &Slot<T, E>) -> Option<Result<T, E>> {
    lock(slot).take()
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}
