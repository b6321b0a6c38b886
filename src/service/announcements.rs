//! Maintenance announcements (#17 point 5, docs/operations.md "Maintenance announcements"):
//! the operator publishes a notice of a maintenance window to every tenant or some; each
//! targeted tenant gets an `announcement.published` event (and its admins a mail when asked);
//! tenants read the notices meant for them; during the window the API says so in a header.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::json;

use crate::auth::{Principal, TenantScope};
use crate::db::announcements::{self as rows, AnnouncementRow, ListFilter};
use crate::db::jobs::NewJob;
use crate::db::{self, DbConnection};
use crate::domain::event::{EventAudience, EventType, SubjectType};
use crate::domain::ids::{AnnouncementId, EntityId, TenantId};
use crate::service::error::{FieldError, ServiceError, check_version};

/// The job that mails an announcement to the admins of its tenants.
pub const MAIL: &str = "announcement.mail";
/// Most tenants one announcement lists (more: announce to every tenant).
pub const MAX_TARGETS: usize = 1_000;

/// What the operator publishes.
#[derive(Debug, Clone)]
pub struct NewAnnouncement {
    pub title: String,
    pub body: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `None`: every tenant.
    pub tenants: Option<Vec<TenantId>>,
    pub mail_admins: bool,
}

/// A published announcement, its targets, and what its publication warned of.
#[derive(Debug, Clone)]
pub struct Published {
    pub row: AnnouncementRow,
    pub targets: Vec<TenantId>,
    pub warnings: Vec<FieldError>,
}

/// Publishes: checks the window and the tenants, writes it, an event per targeted tenant,
/// the platform audit entry and, when asked, the mail job — in one transaction. A notice
/// period shorter than `notice` is allowed (an urgent window) and warned of.
pub fn publish(
    conn: &mut DbConnection,
    principal: &Principal,
    input: NewAnnouncement,
    notice: TimeDelta,
    now: DateTime<Utc>,
) -> Result<Published, ServiceError> {
    let operator = principal.operator()?.id();
    let mut errors = Vec::new();
    if input.ends_at <= input.starts_at {
        errors.push(FieldError::new(
            "ends_at",
            "before_start",
            "The window must end after it starts.",
        ));
    }
    if input.ends_at <= now {
        errors.push(FieldError::new(
            "ends_at",
            "in_the_past",
            "The window is already over.",
        ));
    }
    let mut targets = input.tenants.clone().unwrap_or_default();
    targets.sort();
    targets.dedup();
    if input.tenants.is_some() {
        if targets.is_empty() {
            errors.push(FieldError::new(
                "tenants",
                "empty",
                "List at least one tenant, or leave `tenants` out to announce to every tenant.",
            ));
        }
        if targets.len() > MAX_TARGETS {
            errors.push(FieldError::new(
                "tenants",
                "too_long",
                format!("At most {MAX_TARGETS} tenants; leave `tenants` out for all."),
            ));
        }
    }
    if errors.is_empty() && !targets.is_empty() {
        let found = rows::existing_tenants(conn, &targets)?;
        for (n, tenant) in input.tenants.iter().flatten().enumerate() {
            if !found.contains(tenant) {
                errors.push(FieldError::new(
                    format!("tenants[{n}]"),
                    "unknown",
                    "No such tenant.",
                ));
            }
        }
    }
    if !errors.is_empty() {
        return Err(ServiceError::Validation(errors));
    }
    let mut warnings = Vec::new();
    let given = input.starts_at - now;
    if given < notice {
        warnings.push(FieldError::new(
            "starts_at",
            "short_notice",
            format!(
                "The window starts in {}, less than the notice period of {} days \
                 (STAGEFLOW_ANNOUNCEMENT_NOTICE_DAYS).",
                describe(given),
                notice.num_days()
            ),
        ));
    }
    let row = AnnouncementRow {
        id: AnnouncementId::new_at(now),
        title: input.title,
        body: input.body,
        starts_at: input.starts_at.into(),
        ends_at: input.ends_at.into(),
        all_tenants: input.tenants.is_none(),
        mail_admins: input.mail_admins,
        published_at: now.into(),
        published_by: operator,
        withdrawn_at: None,
        version: 1,
    };
    rows::insert(conn, &row, &targets)?;
    let reached = if row.all_tenants {
        rows::all_active_tenants(conn)?
    } else {
        targets.clone()
    };
    for tenant in &reached {
        announce_to(conn, *tenant, &row, EventType::AnnouncementPublished, now)?;
    }
    super::audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "announcement.published",
        ("announcement", row.id),
        json!({"title": row.title, "starts_at": row.starts_at, "ends_at": row.ends_at,
               "tenants": if row.all_tenants { json!("all") } else { json!(targets) },
               "mail_admins": row.mail_admins,
               "warnings": warnings.iter().map(|w| &w.code).collect::<Vec<_>>()}),
        now.into(),
    )?;
    if row.mail_admins {
        for tenant in &reached {
            let mut job = NewJob::new(MAIL, json!({"announcement": row.id}), now);
            job.tenant = Some(*tenant);
            db::jobs::enqueue(conn, &job)?;
        }
    }
    Ok(Published {
        row,
        targets,
        warnings,
    })
}

/// "3 days 4 hours", "45 minutes", "no time" (a window already started).
fn describe(span: TimeDelta) -> String {
    if span <= TimeDelta::zero() {
        return "no time (it has started)".to_owned();
    }
    let (days, hours, minutes) = (
        span.num_days(),
        span.num_hours() % 24,
        span.num_minutes() % 60,
    );
    match (days, hours) {
        (0, 0) => format!("{minutes} minutes"),
        (0, h) => format!("{h} hours {minutes} minutes"),
        (d, h) => format!("{d} days {h} hours"),
    }
}

/// The event of one tenant (its admins read it; webhooks subscribed to it fire).
fn announce_to(
    conn: &mut DbConnection,
    tenant: TenantId,
    row: &AnnouncementRow,
    event_type: EventType,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let scope = crate::auth::job_scope(tenant);
    let actor = crate::db::audit::Actor::system("platform operator");
    super::events::emit(
        conn,
        &scope,
        &actor,
        now,
        super::events::Emit {
            event_type,
            subject_type: SubjectType::Announcement,
            subject_id: EntityId(row.id.0),
            ticket: None,
            container: None,
            audience: EventAudience::Admin,
            payload: json!({"announcement": {
                "id": row.id, "title": row.title, "body": row.body,
                "starts_at": row.starts_at, "ends_at": row.ends_at,
                "withdrawn": row.withdrawn_at.is_some()}}),
            restricted: None,
        },
    )
}

/// One announcement: any for the operator; for a tenant caller only one meant for its
/// tenant (404 otherwise, as for anything of another tenant).
pub fn get(
    conn: &mut DbConnection,
    principal: &Principal,
    id: AnnouncementId,
) -> Result<(AnnouncementRow, Vec<TenantId>), ServiceError> {
    let row = rows::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    match reader(principal)? {
        None => {
            let targets = rows::targets(conn, id)?;
            Ok((row, targets))
        }
        Some(scope) if rows::targets_tenant(conn, &scope, &row)? => Ok((row, Vec::new())),
        Some(_) => Err(ServiceError::NotFound),
    }
}

/// A page, newest first: every announcement for the operator, the caller's tenant's for a
/// tenant caller (targets shown to the operator only).
pub fn list(
    conn: &mut DbConnection,
    principal: &Principal,
    filter: ListFilter,
    before: Option<AnnouncementId>,
    limit: i64,
) -> Result<Vec<(AnnouncementRow, Vec<TenantId>)>, ServiceError> {
    let scope = reader(principal)?;
    let page = rows::list(conn, scope.as_ref(), filter, before, limit)?;
    page.into_iter()
        .map(|row| {
            let targets = match scope {
                None => rows::targets(conn, row.id)?,
                Some(_) => Vec::new(),
            };
            Ok((row, targets))
        })
        .collect()
}

/// `None` for the operator (reads all), the tenant scope for any tenant caller.
fn reader(principal: &Principal) -> Result<Option<TenantScope>, ServiceError> {
    if principal.operator().is_ok() {
        return Ok(None);
    }
    Ok(Some(principal.audit_scope()))
}

/// Withdraws an announcement (the window is called off): its tenants get
/// `announcement.withdrawn`; the header stops. Operator only.
pub fn withdraw(
    conn: &mut DbConnection,
    principal: &Principal,
    id: AnnouncementId,
    expected: Option<i64>,
    now: DateTime<Utc>,
) -> Result<AnnouncementRow, ServiceError> {
    principal.operator()?;
    let row = rows::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    check_version(expected, i64::from(row.version))?;
    if row.withdrawn_at.is_some() {
        return Err(ServiceError::conflict(
            crate::service::error::ConflictKind::AlreadyWithdrawn,
            "The announcement was already withdrawn.",
        ));
    }
    if !rows::withdraw(conn, id, row.version, now.into())? {
        return Err(ServiceError::PreconditionFailed);
    }
    let row = rows::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    let reached = if row.all_tenants {
        rows::all_active_tenants(conn)?
    } else {
        rows::targets(conn, id)?
    };
    for tenant in reached {
        announce_to(conn, tenant, &row, EventType::AnnouncementWithdrawn, now)?;
    }
    super::audit(
        conn,
        &principal.audit_scope(),
        &principal.actor(),
        "announcement.withdrawn",
        ("announcement", row.id),
        json!({"title": row.title}),
        now.into(),
    )?;
    Ok(row)
}

/// Why an announcement mail was not sent.
#[derive(Debug)]
pub enum MailFailure {
    /// Try again later (the SMTP server or the database did not answer).
    Transient(String),
    /// It never will be (the mail cannot be built).
    Permanent(String),
}

/// Mails one tenant's active admins (those with an address) the announcement, one mail to
/// all of them; blocking. Nothing to send (withdrawn since, no admin with an address) is done.
pub fn mail_admins(
    db: &db::Database,
    mailer: &crate::mailer::Mailer,
    tenant: TenantId,
    id: AnnouncementId,
    now: DateTime<Utc>,
) -> Result<usize, MailFailure> {
    let scope = crate::auth::job_scope(tenant);
    let read = || -> Result<_, ServiceError> {
        let mut conn = db.get()?;
        let Some(row) = rows::find(&mut conn, id)? else {
            return Ok(None);
        };
        let filter = db::users::UserFilter {
            active: Some(true),
            organization_id: None,
            role: Some(
                crate::domain::identity::Role::TenantAdmin
                    .as_str()
                    .to_owned(),
            ),
        };
        let admins = db::users::list(&mut conn, &scope, &filter, None, 500)?;
        Ok(Some((row, admins)))
    };
    let found = read().map_err(|e| MailFailure::Transient(e.to_string()))?;
    let Some((row, admins)) = found else {
        return Ok(0);
    };
    let to: Vec<(Option<String>, String)> = admins
        .into_iter()
        .filter_map(|u| u.email.map(|e| (Some(u.display_name), e)))
        .collect();
    if row.withdrawn_at.is_some() || row.ends_at.0 <= now || to.is_empty() {
        return Ok(0);
    }
    let count = to.len();
    let mail = crate::mailer::OutgoingMail {
        to,
        subject: format!("[Stageflow] Maintenance: {}", row.title),
        text: format!(
            "{}\n\nWindow: {} to {} (UTC)\n\n{}\n\nThis notice is also at GET /api/v1/announcements/{}.\n",
            row.title,
            row.starts_at.0.format("%Y-%m-%d %H:%M"),
            row.ends_at.0.format("%Y-%m-%d %H:%M"),
            row.body,
            row.id
        ),
        message_id: format!(
            "announcement.{}.{}@{}",
            row.id,
            tenant,
            mailer.message_id_domain()
        ),
        in_reply_to: None,
        references: Vec::new(),
        auto_submitted: true,
    };
    match mailer.send(&mail) {
        Ok(()) => Ok(count),
        Err(e) if e.is_transient() => Err(MailFailure::Transient(e.to_string())),
        Err(e) => Err(MailFailure::Permanent(e.to_string())),
    }
}

/// One announced window as the maintenance header needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub id: AnnouncementId,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    /// `None`: every tenant.
    pub tenants: Option<Vec<TenantId>>,
}

/// This node's copy of the windows not yet over, for the `Stageflow-Maintenance` header: read
/// from the database at start, every [`WINDOWS_RELOAD_EVERY`] and after this node publishes
/// or withdraws, so no request waits for the database.
#[derive(Debug, Default)]
pub struct MaintenanceWindows {
    windows: std::sync::RwLock<Vec<Window>>,
}

/// How often each node reloads the windows (another node's announcement shows within this).
pub const WINDOWS_RELOAD_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

impl MaintenanceWindows {
    /// Reads the windows not over at `now`.
    pub fn reload(&self, conn: &mut DbConnection, now: DateTime<Utc>) -> Result<(), ServiceError> {
        let windows = rows::open_windows(conn, now.into())?
            .into_iter()
            .map(|(row, targets)| Window {
                id: row.id,
                starts_at: row.starts_at.0,
                ends_at: row.ends_at.0,
                tenants: (!row.all_tenants).then_some(targets),
            })
            .collect();
        *self.windows.write().unwrap_or_else(|p| p.into_inner()) = windows;
        Ok(())
    }

    /// The windows in progress at `now` for a request of `tenant` (`None`: no tenant, which
    /// sees the windows for every tenant only), by start, then end.
    pub fn active(&self, tenant: Option<TenantId>, now: DateTime<Utc>) -> Vec<Window> {
        let windows = self.windows.read().unwrap_or_else(|p| p.into_inner());
        windows
            .iter()
            .filter(|w| w.starts_at <= now && now < w.ends_at)
            .filter(|w| match (&w.tenants, tenant) {
                (None, _) => true,
                (Some(listed), Some(tenant)) => listed.contains(&tenant),
                (Some(_), None) => false,
            })
            .cloned()
            .collect()
    }
}
