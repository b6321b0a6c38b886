//! A check of the request's caller that rides on the request's own database work.
//!
//! A read whose caller came from the node's principal cache (`auth::cache`) has not been
//! checked against the database yet. Instead of a trip through the blocking pool of its own,
//! the check is left here, in a task-local slot the API layer opens around each request, and
//! the request's first [`crate::db::Database`] call runs it on the connection it checked out,
//! before its own work. Until one run has passed, every call runs it (two calls of one handler
//! may race); once one has failed, every later call of the request fails at once with
//! [`DbError::CallerChanged`], so nothing more is read or written for a caller that is no
//! longer what the handler was told. The API layer then answers the request again with the
//! caller read fresh (ADR-34).
//!
//! This module knows nothing of credentials: the check is a closure that `auth` builds.

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::{DbConnection, DbError};

/// Whether the caller still is what the cache said: `Ok(true)` if so.
pub type Verify = dyn Fn(&mut DbConnection) -> Result<bool, DbError> + Send + Sync;

const PENDING: u8 = 0;
const PASSED: u8 = 1;
const FAILED: u8 = 2;

/// Where a request's check stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No database call has run it yet.
    Pending,
    Passed,
    /// The caller changed: the request must be answered again.
    Failed,
}

/// A deferred check of one request's caller.
#[derive(Clone)]
pub struct CallerCheck {
    verify: Arc<Verify>,
    verdict: Arc<AtomicU8>,
}

impl CallerCheck {
    pub fn new(verify: Arc<Verify>) -> Self {
        Self {
            verify,
            verdict: Arc::new(AtomicU8::new(PENDING)),
        }
    }

    pub fn verdict(&self) -> Verdict {
        match self.verdict.load(Ordering::Acquire) {
            PASSED => Verdict::Passed,
            FAILED => Verdict::Failed,
            _ => Verdict::Pending,
        }
    }

    /// Runs the check on `conn` unless it has passed already; [`DbError::CallerChanged`] if it
    /// fails now or failed before.
    pub(super) fn run(&self, conn: &mut DbConnection) -> Result<(), DbError> {
        match self.verdict() {
            Verdict::Passed => return Ok(()),
            Verdict::Failed => return Err(DbError::CallerChanged),
            Verdict::Pending => {}
        }
        let same = (self.verify)(conn)?;
        let verdict = if same { PASSED } else { FAILED };
        // A failure sticks even if a racing call of the same request passed a moment earlier.
        self.verdict.fetch_max(verdict, Ordering::AcqRel);
        if same {
            Ok(())
        } else {
            Err(DbError::CallerChanged)
        }
    }
}

tokio::task_local! {
    static SLOT: RefCell<Option<CallerCheck>>;
}

/// Runs `request` with an empty slot for a deferred check (the API layer, around a request).
pub async fn scope<F: Future>(request: F) -> F::Output {
    SLOT.scope(RefCell::new(None), request).await
}

/// Leaves `check` for the request's database calls. `false` outside [`scope`]: the caller must
/// then be checked at once.
pub fn defer(check: CallerCheck) -> bool {
    SLOT.try_with(|slot| *slot.borrow_mut() = Some(check))
        .is_ok()
}

/// The request's check, if one was deferred.
pub fn current() -> Option<CallerCheck> {
    SLOT.try_with(|slot| slot.borrow().clone()).ok().flatten()
}

/// Empties the slot (before a request is answered again with a caller read fresh).
pub fn clear() {
    let _ = SLOT.try_with(|slot| slot.borrow_mut().take());
}

/// The check a database call must run first: the request's, unless it has passed.
pub(super) fn pending() -> Option<CallerCheck> {
    current().filter(|check| check.verdict() != Verdict::Passed)
}

/// Runs `check` (if any) on `conn`.
pub(super) fn run(check: Option<&CallerCheck>, conn: &mut DbConnection) -> Result<(), DbError> {
    match check {
        Some(check) => check.run(conn),
        None => Ok(()),
    }
}
