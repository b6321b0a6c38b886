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
use crate::db::tickets::{TicketChanges, TicketRow};
use crate::db::types::Json;
use crate::db::{self, Database, DbConnection};
use crate::domain::ids::{TemplateId, TicketId};
use crate::domain::template::{TemplateDefinition, ValidationContext, validate_values};
use crate::domain::ticket::{self, HistoryKind};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

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

/// Runs (or dry-runs) a migration at `now`.
pub fn migrate(
    db: &Database,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &MigrationRequest,
    now: DateTime<Utc>,
) -> Result<MigrationResult, ServiceError> {
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
                    Err(reason) => {
                        result.blocked_count += 1;
                        if result.blocked.len() < MAX_LISTED {
                            result.blocked.push((row.id, row.key(), reason));
                        }
                    }
                    Ok((state, fields)) => {
                        if !request.dry_run
                            && !move_one(conn, caller, &plan, row, (&state, &fields), now)?
                        {
                            result.blocked_count += 1;
                            if result.blocked.len() < MAX_LISTED {
                                result.blocked.push((
                                    row.id,
                                    row.key(),
                                    "changed while the migration ran; run it again".to_owned(),
                                ));
                            }
                            continue;
                        }
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
    if !request.dry_run {
        db.write_blocking(|conn| {
            super::super::audit(
                conn,
                &caller.scope,
                &caller.actor,
                "template.migrated",
                ("template", plan.template),
                json!({"template": request.template, "from_version": request.from_version,
                    "to_version": plan.to_version, "moved": result.moved,
                    "blocked": result.blocked_count}),
                now.into(),
            )
        })?;
    }
    Ok(result)
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
    };
    if !db::tickets::update_ticket(conn, scope, row.id, &changes)? {
        return Ok(false);
    }
    let mut history = HistoryBatch::new(caller, row.id, version, now.into());
    history.push(HistoryKind::Migrated, false, |h| {
        h.from_state = Some(row.state.clone());
        h.to_state = Some(state.to_owned());
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
