//! Moving running tickets to another template version (#16 point 5): a state mapping and a
//! field mapping; a dry run reports what would move and every ticket that cannot, and why;
//! the real run moves tickets in batches, each batch its own transaction, each ticket with a
//! `migrated` history entry and its event. Tickets filed after the run began are left alone,
//! and running it again carries on where it stopped (moved tickets are no longer on the old
//! version). docs/process-guide.md, "Moving tickets to a new version".

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{HistoryBatch, TicketCaller, index_entries};
use crate::auth::TenantScope;
use crate::db::audit::Actor;
use crate::db::jobs::NewJob;
use crate::db::template_migrations::{self as rows, MigrationRow};
use crate::db::tickets::{TicketChanges, TicketRow};
use crate::db::types::Json;
use crate::db::{self, Database, DbConnection};
use crate::domain::identity::Role;
use crate::domain::ids::{MigrationId, TemplateId, TenantId, TicketId};
use crate::domain::template::{TemplateDefinition, ValidationContext, validate_values};
use crate::domain::ticket::Audience;
use crate::domain::ticket::{self, HistoryKind};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

/// The job that carries a run on.
pub const MIGRATE: &str = "templates.migrate";
/// Tickets one transaction moves.
pub const MIGRATION_BATCH: i64 = 200;
/// Blocked tickets listed in a result (all are counted).
pub const MAX_LISTED: usize = 500;

/// What to move, and how.
#[derive(Debug, Clone)]
pub struct MigrationRequest {
    pub template: String,
    pub from_version: i32,
    /// `None`: the published version.
    pub to_version: Option<i32>,
    /// Old state → new state; a state left out keeps its key (it must exist in the target).
    pub states: BTreeMap<String, String>,
    /// Old field → new field; a field left out keeps its key, or is dropped when the target
    /// has no such field.
    pub fields: BTreeMap<String, String>,
    pub dry_run: bool,
}

/// What a migration did (or would do).
#[derive(Debug, Clone, Default)]
pub struct MigrationResult {
    pub from_version: i32,
    pub to_version: i32,
    /// Tickets on the old version when the run began.
    pub tickets: usize,
    /// Moved (or, in a dry run, movable).
    pub moved: usize,
    /// `(from state, to state)` → tickets.
    pub moves: BTreeMap<(String, String), usize>,
    /// Tickets that cannot move: (id, key, reason); at most [`MAX_LISTED`].
    pub blocked: Vec<(TicketId, String, String)>,
    pub blocked_count: usize,
    /// Fields of the old version the target has no place for (their values are dropped).
    pub fields_dropped: Vec<String>,
}

struct Plan {
    template: TemplateId,
    key: String,
    from: Arc<TemplateDefinition>,
    to: Arc<TemplateDefinition>,
    to_version: i32,
    states: BTreeMap<String, String>,
    fields: BTreeMap<String, String>,
    dropped: BTreeSet<String>,
}

fn invalid(field: &str, code: &str, message: impl Into<String>) -> ServiceError {
    ServiceError::validation(field, code, message)
}

fn plan(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &MigrationRequest,
) -> Result<Plan, ServiceError> {
    let scope = &caller.scope;
    let template = db::templates::find_template(conn, scope, &request.template)?
        .ok_or(ServiceError::NotFound)?;
    let to_version = match request.to_version.or(template.published_version) {
        Some(v) => v,
        None => {
            return Err(invalid(
                "to_version",
                "not_published",
                "the template has no published version",
            ));
        }
    };
    let published = |n: i32, conn: &mut DbConnection| -> Result<bool, ServiceError> {
        Ok(db::templates::find_version(conn, scope, template.id, n)?
            .is_some_and(|v| v.status == "published"))
    };
    if !published(request.from_version, conn)? {
        return Err(invalid(
            "from_version",
            "unknown",
            "no such published version",
        ));
    }
    if !published(to_version, conn)? {
        return Err(invalid(
            "to_version",
            "unknown",
            "no such published version",
        ));
    }
    if to_version == request.from_version {
        return Err(invalid(
            "to_version",
            "same_version",
            "the versions are the same",
        ));
    }
    let from = defs.get(conn, scope, template.id, request.from_version)?;
    let to = defs.get(conn, scope, template.id, to_version)?;
    for (old, new) in &request.states {
        if from.state(old).is_none() {
            return Err(invalid(
                &format!("states/{old}"),
                "unknown",
                "not a state of the old version",
            ));
        }
        if to.state(new).is_none() {
            return Err(invalid(
                &format!("states/{old}"),
                "unknown_target",
                "not a state of the new version",
            ));
        }
    }
    let mut fields = BTreeMap::new();
    let mut dropped = BTreeSet::new();
    for (old, new) in &request.fields {
        if from.field(old).is_none() {
            return Err(invalid(
                &format!("fields/{old}"),
                "unknown",
                "not a field of the old version",
            ));
        }
        if to.field(new).is_none() {
            return Err(invalid(
                &format!("fields/{old}"),
                "unknown_target",
                "not a field of the new version",
            ));
        }
    }
    for field in &from.fields {
        match request.fields.get(&field.key) {
            Some(new) => {
                fields.insert(field.key.clone(), new.clone());
            }
            None if to.field(&field.key).is_some() => {
                fields.insert(field.key.clone(), field.key.clone());
            }
            None => {
                dropped.insert(field.key.clone());
            }
        }
    }
    Ok(Plan {
        template: template.id,
        key: template.key.clone(),
        from,
        to,
        to_version,
        states: request.states.clone(),
        fields,
        dropped,
    })
}

/// Where one ticket goes: (new state, new fields), or why it cannot.
type Placement = Result<(String, Map<String, Value>), String>;

/// Where one ticket would go: (new state, new fields), or why it cannot.
fn place(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    plan: &Plan,
    row: &TicketRow,
) -> Result<Placement, ServiceError> {
    let state = plan.states.get(&row.state).unwrap_or(&row.state).clone();
    if plan.to.state(&state).is_none() {
        return Ok(Err(format!(
            "state `{}` has no counterpart in version {}: map it in `states`",
            row.state, plan.to_version
        )));
    }
    let mut fields = Map::new();
    for (key, value) in row.fields() {
        if let Some(new) = plan.fields.get(&key) {
            fields.insert(new.clone(), value);
        }
    }
    let masters = super::master_items(conn, &caller.scope, &plan.to, fields.keys())?;
    let checked = validate_values(
        &*plan.to,
        &fields,
        ValidationContext {
            state: Some(&state),
            masters: &masters,
            check_required: false,
            previous: Some(&fields),
        },
    );
    if let Err(violations) = checked {
        let first = &violations[0];
        return Ok(Err(format!("{}: {}", first.field, first.message)));
    }
    Ok(Ok((state, fields)))
}

/// Whether a run has finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunStatus {
    Running,
    Done,
}

/// A migration run: what it has done so far (a dry run: what it would do).
#[derive(Debug, Clone)]
pub struct MigrationRun {
    /// `None` for a dry run (nothing is stored).
    pub id: Option<MigrationId>,
    pub status: RunStatus,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub result: MigrationResult,
}

/// Dry-runs a migration, or starts one and works on it for up to `inline` in this call:
/// whatever is left is the `templates.migrate` job's, which is due once `inline` has passed
/// (and carries the run on after a crash). docs/process-guide.md.
pub fn migrate(
    db: &Database,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &MigrationRequest,
    now: DateTime<Utc>,
    inline: std::time::Duration,
) -> Result<MigrationRun, ServiceError> {
    if request.dry_run {
        return dry_run(db, defs, caller, request, now);
    }
    let id = db.write_blocking(|conn| start(conn, defs, caller, request, now, inline))?;
    let tenant = caller.scope.tenant_id();
    let deadline = std::time::Instant::now() + inline;
    while std::time::Instant::now() < deadline {
        if db.write_blocking(|conn| migration_step(conn, defs, tenant, id, now))? {
            break;
        }
    }
    let row = db
        .write_blocking(|conn| -> Result<_, ServiceError> {
            Ok(rows::lock(conn, &caller.scope, id)?)
        })?
        .ok_or_else(|| ServiceError::internal("a migration run went missing"))?;
    run_of(&row)
}

fn dry_run(
    db: &Database,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &MigrationRequest,
    now: DateTime<Utc>,
) -> Result<MigrationRun, ServiceError> {
    let plan = db.write_blocking(|conn| plan(conn, defs, caller, request))?;
    let mut result = MigrationResult {
        from_version: request.from_version,
        to_version: plan.to_version,
        fields_dropped: plan.dropped.iter().cloned().collect(),
        ..MigrationResult::default()
    };
    let mut after: Option<TicketId> = None;
    loop {
        let batch_done = db.write_blocking(|conn| -> Result<Option<TicketId>, ServiceError> {
            let batch = db::tickets::tickets_on_version(
                conn,
                &caller.scope,
                (plan.template, request.from_version),
                now.into(),
                after,
                MIGRATION_BATCH,
            )?;
            for row in &batch {
                result.tickets += 1;
                match place(conn, caller, &plan, row)? {
                    Err(reason) => result.block(row, reason),
                    Ok((state, _)) => {
                        result.moved += 1;
                        *result.moves.entry((row.state.clone(), state)).or_default() += 1;
                    }
                }
            }
            Ok(batch.last().map(|r| r.id))
        })?;
        match batch_done {
            Some(last) => after = Some(last),
            None => break,
        }
    }
    Ok(MigrationRun {
        id: None,
        status: RunStatus::Done,
        started_at: now,
        finished_at: Some(now),
        result,
    })
}

impl MigrationResult {
    fn block(&mut self, row: &TicketRow, reason: String) {
        self.blocked_count += 1;
        if self.blocked.len() < MAX_LISTED {
            self.blocked.push((row.id, row.key(), reason));
        }
    }
}

/// Checks the request and stores the run with its job (due after `inline`).
fn start(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &MigrationRequest,
    now: DateTime<Utc>,
    inline: std::time::Duration,
) -> Result<MigrationId, ServiceError> {
    let plan = plan(conn, defs, caller, request)?;
    let id = MigrationId(uuid::Uuid::now_v7());
    let row = MigrationRow {
        tenant_id: caller.scope.tenant_id(),
        id,
        template_id: plan.template,
        from_version: request.from_version,
        to_version: plan.to_version,
        mapping: Json(json!({"template": plan.key, "states": request.states,
            "fields": request.fields})),
        filed_by: now.into(),
        status: "running".to_owned(),
        after_ticket: None,
        tickets: 0,
        moved: 0,
        blocked_count: 0,
        moves: Json(json!([])),
        blocked: Json(json!([])),
        fields_dropped: Json(json!(plan.dropped)),
        actor_kind: caller.actor.kind.to_owned(),
        actor_id: caller.actor.id,
        actor_name: caller.actor.name.clone(),
        created_at: now.into(),
        updated_at: now.into(),
        finished_at: None,
    };
    rows::insert(conn, &row)?;
    let delay = chrono::Duration::from_std(inline).unwrap_or_default();
    let mut job = NewJob::new(MIGRATE, json!({"migration_id": id}), now + delay);
    job.tenant = Some(caller.scope.tenant_id());
    db::jobs::enqueue(conn, &job)?;
    Ok(id)
}

/// The caller a stored run acts as: its starter, as a staff worker.
fn caller_of(row: &MigrationRow) -> TicketCaller {
    let kind = match row.actor_kind.as_str() {
        "user" => "user",
        "api_key" => "api_key",
        "operator" => "operator",
        _ => "system",
    };
    TicketCaller {
        scope: crate::auth::job_scope(row.tenant_id),
        audience: Audience::Staff,
        actor: Actor {
            kind,
            id: row.actor_id,
            name: row.actor_name.clone(),
            client_addr: None,
        },
        user: None,
        organization: None,
        roles: vec![Role::ProcessManager],
        groups: Vec::new(),
        worker: true,
    }
}

fn request_of(row: &MigrationRow) -> Result<MigrationRequest, ServiceError> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let map = |v: &Value| -> BTreeMap<String, String> {
        v.as_object()
            .map(|o| {
                o.iter()
                    .filter_map(|(k, v)| Some((k.clone(), text(v)?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    let m = &row.mapping.0;
    Ok(MigrationRequest {
        template: text(&m["template"])
            .ok_or_else(|| ServiceError::internal("a migration run without its template"))?,
        from_version: row.from_version,
        to_version: Some(row.to_version),
        states: map(&m["states"]),
        fields: map(&m["fields"]),
        dry_run: false,
    })
}

/// Works on the next batch of a run (one transaction); true once the run is done.
pub fn migration_step(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    tenant: TenantId,
    id: MigrationId,
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let scope = crate::auth::job_scope(tenant);
    let Some(mut row) = rows::lock(conn, &scope, id)? else {
        return Ok(true);
    };
    if row.status == "done" {
        return Ok(true);
    }
    let caller = caller_of(&row);
    let request = request_of(&row)?;
    let plan = plan(conn, defs, &caller, &request)?;
    let batch = db::tickets::tickets_on_version(
        conn,
        &scope,
        (plan.template, row.from_version),
        row.filed_by,
        row.after_ticket,
        MIGRATION_BATCH,
    )?;
    let mut run = run_of(&row)?.result;
    for ticket in &batch {
        run.tickets += 1;
        match place(conn, &caller, &plan, ticket)? {
            Err(reason) => run.block(ticket, reason),
            Ok((state, fields)) => {
                if !move_one(conn, &caller, &plan, ticket, (&state, &fields), now)? {
                    run.block(
                        ticket,
                        "changed while the migration ran; run it again".to_owned(),
                    );
                    continue;
                }
                run.moved += 1;
                *run.moves.entry((ticket.state.clone(), state)).or_default() += 1;
            }
        }
    }
    let done = batch.is_empty();
    row.after_ticket = batch.last().map(|t| t.id).or(row.after_ticket);
    row.tickets = i64::try_from(run.tickets).unwrap_or(i64::MAX);
    row.moved = i64::try_from(run.moved).unwrap_or(i64::MAX);
    row.blocked_count = i64::try_from(run.blocked_count).unwrap_or(i64::MAX);
    row.moves = Json(Value::Array(
        run.moves
            .iter()
            .map(|((from, to), count)| json!({"from_state": from, "to_state": to, "count": count}))
            .collect(),
    ));
    row.blocked = Json(Value::Array(
        run.blocked
            .iter()
            .map(|(ticket, key, reason)| json!({"ticket_id": ticket, "key": key, "reason": reason}))
            .collect(),
    ));
    row.updated_at = now.into();
    if done {
        row.status = "done".to_owned();
        row.finished_at = Some(now.into());
        super::super::audit(
            conn,
            &scope,
            &caller.actor,
            "template.migrated",
            ("template", plan.template),
            json!({"template": request.template, "migration_id": id,
                "from_version": row.from_version, "to_version": row.to_version,
                "moved": run.moved, "blocked": run.blocked_count}),
            now.into(),
        )?;
    }
    rows::update(conn, &row)?;
    Ok(done)
}

/// A stored run as the API shows it.
pub fn run_of(row: &MigrationRow) -> Result<MigrationRun, ServiceError> {
    let count = |n: i64| usize::try_from(n).unwrap_or(0);
    let mut result = MigrationResult {
        from_version: row.from_version,
        to_version: row.to_version,
        tickets: count(row.tickets),
        moved: count(row.moved),
        blocked_count: count(row.blocked_count),
        fields_dropped: serde_json::from_value(row.fields_dropped.0.clone())
            .map_err(ServiceError::internal)?,
        ..MigrationResult::default()
    };
    for m in row.moves.0.as_array().into_iter().flatten() {
        let text = |k: &str| m[k].as_str().unwrap_or_default().to_owned();
        let n = m["count"]
            .as_u64()
            .map_or(0, |n| usize::try_from(n).unwrap_or(0));
        result
            .moves
            .insert((text("from_state"), text("to_state")), n);
    }
    for b in row.blocked.0.as_array().into_iter().flatten() {
        let ticket: TicketId =
            serde_json::from_value(b["ticket_id"].clone()).map_err(ServiceError::internal)?;
        let text = |k: &str| b[k].as_str().unwrap_or_default().to_owned();
        result.blocked.push((ticket, text("key"), text("reason")));
    }
    Ok(MigrationRun {
        id: Some(row.id),
        status: if row.status == "done" {
            RunStatus::Done
        } else {
            RunStatus::Running
        },
        started_at: row.created_at.0,
        finished_at: row.finished_at.map(|t| t.0),
        result,
    })
}

/// One run of a template (404 for none, or another template's).
pub fn find_run(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &str,
    id: MigrationId,
) -> Result<MigrationRun, ServiceError> {
    let template =
        db::templates::find_template(conn, scope, template)?.ok_or(ServiceError::NotFound)?;
    let row = rows::find(conn, scope, template.id, id)?.ok_or(ServiceError::NotFound)?;
    run_of(&row)
}

/// A page of a template's runs, newest first.
pub fn list_runs(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &str,
    before: Option<MigrationId>,
    limit: i64,
) -> Result<Vec<MigrationRun>, ServiceError> {
    let template =
        db::templates::find_template(conn, scope, template)?.ok_or(ServiceError::NotFound)?;
    rows::list(conn, scope, template.id, before, limit)?
        .iter()
        .map(run_of)
        .collect()
}

/// Moves one ticket; false when it changed since it was read.
fn move_one(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    plan: &Plan,
    row: &TicketRow,
    (state, fields): (&str, &Map<String, Value>),
    now: DateTime<Utc>,
) -> Result<bool, ServiceError> {
    let scope = &caller.scope;
    let (stage, target) = plan
        .to
        .states()
        .find(|(_, s)| s.key == state)
        .ok_or_else(|| ServiceError::internal("a migration into an unknown state"))?;
    let title = ticket::title_of(&plan.to, fields);
    let version = row.version + 1;
    let changes = TicketChanges {
        template_version: plan.to_version,
        title: &title,
        stage: &stage.key,
        state,
        closed: target.terminal,
        assignee_id: row.assignee_id,
        group_id: row.group_id,
        organization_id: row.organization_id,
        fields: Json(Value::Object(fields.clone())),
        version,
        updated_at: now.into(),
        state_entered_at: Some(now.into()),
    };
    if !db::tickets::update_ticket(conn, scope, row.id, &changes)? {
        return Ok(false);
    }
    let mut history = HistoryBatch::new(caller, (row.id, row.template_id), version, now.into());
    history.push(HistoryKind::Migrated, false, |h| {
        h.from_state = Some(row.state.clone());
        h.to_state = Some(state.to_owned());
        h.state_since = Some(row.state_entered_at);
        h.old_value = Some(Json(json!({"template_version": row.template_version})));
        let renamed: BTreeMap<&String, &String> =
            plan.fields.iter().filter(|(old, new)| old != new).collect();
        h.new_value = Some(Json(json!({"template_version": plan.to_version,
            "fields_renamed": renamed, "fields_dropped": plan.dropped})));
    });
    let rows = history.write(conn)?;
    let template_key = &plan.key;
    let summary = super::events::TicketSummary {
        id: row.id,
        key: row.key(),
        template: template_key,
        title: &title,
        stage: &stage.key,
        state,
        closed: target.terminal,
        version,
    };
    super::events::ticket_changed(conn, scope, &caller.actor, &plan.to, &summary, &rows)?;
    let old = index_entries(&plan.from, &row.title, &row.fields());
    let new = index_entries(&plan.to, &title, fields);
    db::tickets::reindex(conn, scope, row.id, &old, &new)?;
    let clocks = crate::service::sla::TicketClockInput {
        id: row.id,
        template: template_key,
        def: &plan.to,
        fields,
        requester: row.requester_id,
    };
    crate::service::sla::refresh(conn, scope, &clocks, now)?;
    Ok(true)
}
