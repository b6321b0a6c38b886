//! Admission to the password-hashing pool: a bounded queue shared fairly between tenants.
//!
//! Every password check takes a slot for as long as it waits for and runs on the pool. When all
//! slots are taken the check is refused at once (503 with `Retry-After`) instead of queueing
//! without bound; and no lane (one tenant, the operator, or requests naming no known tenant) may
//! hold more than half of the slots, so one tenant's login flood leaves room for the others.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::domain::ids::TenantId;

/// Whose password check a slot is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HashLane {
    Tenant(TenantId),
    /// The platform operator.
    Platform,
    /// A login naming an unknown tenant or a malformed username: they share one lane, so
    /// made-up tenant names cannot open lanes of their own.
    Unresolved,
}

/// Seconds a refused caller is told to wait: a check takes tens of milliseconds, so slots
/// free up quickly.
pub const RETRY_AFTER_SECONDS: u64 = 1;

/// Why no slot was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Every slot is taken.
    Full,
    /// This lane holds its share already.
    LaneFull,
}

#[derive(Debug, Default)]
struct Slots {
    taken: usize,
    per_lane: HashMap<HashLane, usize>,
}

/// The slot counter. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Admission {
    capacity: usize,
    lane_share: usize,
    slots: Arc<Mutex<Slots>>,
}

impl Admission {
    /// `capacity` slots in all; a lane gets at most half of them (at least one).
    pub fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            capacity,
            lane_share: (capacity / 2).max(1),
            slots: Arc::default(),
        }
    }

    fn slots(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A slot for `lane`, held until the returned permit is dropped.
    pub fn try_admit(&self, lane: HashLane) -> Result<Permit, Refused> {
        let mut slots = self.slots();
        if slots.taken >= self.capacity {
            return Err(Refused::Full);
        }
        let held = slots.per_lane.entry(lane).or_default();
        if *held >= self.lane_share {
            return Err(Refused::LaneFull);
        }
        *held += 1;
        slots.taken += 1;
        Ok(Permit {
            admission: self.clone(),
            lane,
        })
    }

    /// Slots taken now (for tests and diagnostics).
    pub fn taken(&self) -> usize {
        self.slots().taken
    }
}

/// A taken slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Permit {
    admission: Admission,
    lane: HashLane,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut slots = self.admission.slots();
        slots.taken = slots.taken.saturating_sub(1);
        if let Some(held) = slots.per_lane.get_mut(&self.lane) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                slots.per_lane.remove(&self.lane);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> HashLane {
        HashLane::Tenant(TenantId(uuid::Uuid::from_u128(n)))
    }

    #[test]
    fn one_tenant_gets_at_most_half_and_leaves_room_for_the_others() {
        let admission = Admission::new(8);
        let flood: Vec<Permit> = (0..4)
            .map(|_| admission.try_admit(tenant(1)).unwrap())
            .collect();
        assert_eq!(
            admission.try_admit(tenant(1)).unwrap_err(),
            Refused::LaneFull
        );
        let other: Vec<Permit> = (0..4)
            .map(|_| admission.try_admit(tenant(2)).unwrap())
            .collect();
        assert_eq!(admission.taken(), 8);
        assert_eq!(
            admission.try_admit(HashLane::Platform).unwrap_err(),
            Refused::Full
        );
        drop(other);
        assert!(admission.try_admit(HashLane::Platform).is_ok());
        drop(flood);
        assert_eq!(admission.taken(), 0);
    }

    #[test]
    fn slots_come_back_when_permits_drop() {
        let admission = Admission::new(2);
        let first = admission.try_admit(HashLane::Unresolved).unwrap();
        assert_eq!(
            admission.try_admit(HashLane::Unresolved).unwrap_err(),
            Refused::LaneFull
        );
        let operator = admission.try_admit(HashLane::Platform).unwrap();
        assert_eq!(admission.try_admit(tenant(3)).unwrap_err(), Refused::Full);
        drop(first);
        assert!(admission.try_admit(HashLane::Unresolved).is_ok());
        drop(operator);
        assert_eq!(admission.taken(), 0);
    }

    #[test]
    fn a_queue_of_one_still_admits_one() {
        let admission = Admission::new(1);
        let permit = admission.try_admit(tenant(1)).unwrap();
        assert_eq!(admission.try_admit(tenant(2)).unwrap_err(), Refused::Full);
        drop(permit);
        assert!(admission.try_admit(tenant(2)).is_ok());
    }
}
