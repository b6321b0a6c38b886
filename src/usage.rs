//! Usage metering for billing without a database write per request: API calls are counted in
//! memory per tenant and month and flushed to `usage_counters` periodically and at shutdown. A
//! node that dies loses at most one flush interval of API-call counts.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use crate::db::{self, Database, DbError};
use crate::domain::ids::TenantId;

/// The billing month of an instant, `YYYY-MM` in UTC.
pub fn month_of(at: DateTime<Utc>) -> String {
    at.format("%Y-%m").to_string()
}

/// The instants a billing month (`YYYY-MM`, UTC) starts and the next one starts; `None` for
/// anything else.
pub fn month_bounds(month: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if month.len() != 7 {
        return None;
    }
    let first = chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").ok()?;
    let next = first.checked_add_months(chrono::Months::new(1))?;
    Some((
        first.and_time(chrono::NaiveTime::MIN).and_utc(),
        next.and_time(chrono::NaiveTime::MIN).and_utc(),
    ))
}

#[derive(Default)]
pub struct UsageMeter {
    pending: Mutex<HashMap<(TenantId, String), i64>>,
}

impl UsageMeter {
    pub fn record_api_call(&self, tenant: TenantId, at: DateTime<Utc>) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        *pending.entry((tenant, month_of(at))).or_insert(0) += 1;
    }

    /// Calls counted on this node and not yet flushed.
    pub fn pending(&self, tenant: TenantId, month: &str) -> i64 {
        let pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        pending
            .get(&(tenant, month.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// Writes the pending counts to the database (blocking), one transaction per tenant (no
    /// transaction spans tenants: under Citus each stays on its tenant's node). Counts that
    /// fail to write are put back, to be tried again at the next flush; the last failure is
    /// returned.
    pub fn flush(&self, db: &Database) -> Result<(), DbError> {
        let mut by_tenant: std::collections::BTreeMap<TenantId, Vec<(String, i64)>> =
            Default::default();
        {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for ((tenant, month), calls) in pending.drain() {
                by_tenant.entry(tenant).or_default().push((month, calls));
            }
        }
        let mut outcome = Ok(());
        for (tenant, counts) in by_tenant {
            let written = db.write_blocking(|conn| {
                for (month, calls) in &counts {
                    db::usage::add_api_calls(conn, tenant, month, *calls)?;
                }
                Ok::<_, DbError>(())
            });
            if let Err(error) = written {
                let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
                for (month, calls) in counts {
                    *pending.entry((tenant, month)).or_insert(0) += calls;
                }
                outcome = Err(error);
            }
        }
        outcome
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_tenant_and_month() {
        let meter = UsageMeter::default();
        let tenant = TenantId(uuid::Uuid::nil());
        let april = DateTime::parse_from_rfc3339("2026-04-30T23:59:59Z")
            .unwrap()
            .with_timezone(&Utc);
        let may = DateTime::parse_from_rfc3339("2026-05-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        meter.record_api_call(tenant, april);
        meter.record_api_call(tenant, april);
        meter.record_api_call(tenant, may);
        assert_eq!(meter.pending(tenant, "2026-04"), 2);
        assert_eq!(meter.pending(tenant, "2026-05"), 1);
    }

    #[test]
    fn month_bounds_cover_exactly_the_month() {
        let (from, to) = month_bounds("2026-12").unwrap();
        assert_eq!(from.to_rfc3339(), "2026-12-01T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2027-01-01T00:00:00+00:00");
        assert_eq!(month_of(from), "2026-12");
        for bad in ["2026-13", "2026-1", "26-01", "2026-01-01", ""] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }
}
