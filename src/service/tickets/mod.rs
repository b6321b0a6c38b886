//! Tickets: create, read, edit, transition, and what hangs off a ticket. Every use case runs
//! in one database transaction; visibility (`Audience`) is applied on every read, and a
//! ticket the caller may not see answers exactly like a missing one (404).

mod attachments;
mod collab;
mod listing;
mod migrate;
mod past;
mod transition;

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use attachments::*;
pub use collab::*;
pub use listing::*;
pub use migrate::*;
pub use past::*;
pub use transition::*;

pub use super::fields::master_items;
use super::fields::{check_references, field_errors, refuse_internal};

use super::definitions::DefinitionCache;
use super::events;
use crate::auth::{Principal, TenantScope};
use crate::db::audit::Actor;
use crate::db::tickets::{
    NewHistory, NewTicket, SOURCE_FIELDS, SOURCE_INTERNAL_FIELDS, TicketChanges, TicketRow,
};
use crate::db::types::{Json, Timestamp};
use crate::db::{self, DbConnection};
use crate::domain::identity::{Role, RoleSet};
use crate::domain::ids::{EntityId, GroupId, OrganizationId, TemplateId, TicketId, UserId};
use crate::domain::index;
use crate::domain::library::Reader;
use crate::domain::template::{
    TemplateDefinition, ValidationContext, check_editable, is_required, is_set, validate_values,
};
use crate::domain::ticket::{self, Audience, HistoryKind};
use crate::service::error::{ConflictKind, FieldError, ServiceError};

/// Roles that see every ticket of the tenant.
pub const STAFF: [Role; 4] = crate::domain::ticket::STAFF_ROLES;
/// Roles that work tickets (everything but reading is theirs).
pub const WORKERS: [Role; 3] = [Role::TenantAdmin, Role::ProcessManager, Role::Agent];
/// Roles that may file tickets.
pub const FILERS: [Role; 5] = [
    Role::TenantAdmin,
    Role::ProcessManager,
    Role::Agent,
    Role::Requester,
    Role::Partner,
];

/// The caller of a ticket use case, resolved once per request.
#[derive(Debug, Clone)]
pub struct TicketCaller {
    pub scope: TenantScope,
    pub audience: Audience,
    pub actor: Actor,
    pub user: Option<UserId>,
    pub organization: Option<OrganizationId>,
    pub roles: Vec<Role>,
    pub groups: Vec<GroupId>,
    pub worker: bool,
}

impl TicketCaller {
    /// Any tenant caller with a role that may look at tickets; 403 for the operator.
    pub fn of(principal: &Principal) -> Result<Self, ServiceError> {
        let all = [
            Role::TenantAdmin,
            Role::ProcessManager,
            Role::Agent,
            Role::Auditor,
            Role::Requester,
            Role::Partner,
        ];
        let scope = principal.require(&all)?;
        let staff = principal.require(&STAFF).is_ok();
        let worker = principal.require(&WORKERS).is_ok();
        let (user, organization, groups) = match principal.user() {
            Ok(u) => (Some(u.id), u.organization_id, u.groups.clone()),
            Err(_) => (None, None, Vec::new()),
        };
        let partner = principal.require(&[Role::Partner]).is_ok();
        let audience = if staff {
            Audience::Staff
        } else {
            Audience::Restricted {
                user,
                organization: if partner { organization } else { None },
            }
        };
        Ok(Self {
            scope,
            audience,
            actor: principal.actor(),
            user,
            organization,
            roles: held_roles(principal),
            groups,
            worker,
        })
    }

    /// 403 unless the caller works tickets (auditors and restricted callers read only).
    pub fn require_worker(&self) -> Result<(), ServiceError> {
        if self.worker {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "This needs one of the roles: tenant_admin, process_manager, agent.".to_owned(),
            ))
        }
    }

    /// 403 for callers who may only read the tickets they see: staff write only as workers
    /// (auditors read); requesters and partners write (fields, comments, attachments,
    /// transitions they are allowed) on the tickets they see.
    pub fn require_writer(&self) -> Result<(), ServiceError> {
        if self.audience.is_staff() {
            self.require_worker()
        } else {
            Ok(())
        }
    }

    pub fn entity(&self) -> EntityId {
        self.actor.id.unwrap_or(EntityId::UNKNOWN)
    }

    /// The caller as library access sees it (which libraries it reads).
    pub fn reader(&self) -> Reader<'_> {
        Reader {
            roles: &self.roles,
            organization: self.organization,
        }
    }
}

/// The tenant roles a principal holds.
pub fn held_roles(principal: &Principal) -> Vec<Role> {
    principal.roles().map(RoleSet::to_vec).unwrap_or_default()
}

/// A ticket with its template key and its (pinned) definition.
#[derive(Debug, Clone)]
pub struct LoadedTicket {
    pub row: TicketRow,
    pub template_key: String,
    pub def: Arc<TemplateDefinition>,
}

impl LoadedTicket {
    pub fn fields(&self) -> Map<String, Value> {
        self.row.fields()
    }

    /// The ticket as its events name it.
    pub(crate) fn summary(&self) -> events::TicketSummary<'_> {
        events::TicketSummary {
            id: self.row.id,
            key: self.row.key(),
            template: &self.template_key,
            title: &self.row.title,
            stage: &self.row.stage,
            state: &self.row.state,
            closed: self.row.closed,
            version: self.row.version,
        }
    }
}

/// Loads a ticket the caller may see; 404 otherwise.
pub fn load(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<LoadedTicket, ServiceError> {
    let (row, template_key) =
        db::tickets::find_ticket(conn, &caller.scope, id)?.ok_or(ServiceError::NotFound)?;
    if !caller.audience.sees(row.requester_id, row.organization_id) {
        return Err(ServiceError::NotFound);
    }
    let def = defs.get(conn, &caller.scope, row.template_id, row.template_version)?;
    Ok(LoadedTicket {
        row,
        template_key,
        def,
    })
}

/// Locks and loads a ticket for a change (see [`db::tickets::lock_ticket`]).
pub fn load_for_update(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<LoadedTicket, ServiceError> {
    db::tickets::lock_ticket(conn, &caller.scope, id)?;
    load(conn, defs, caller, id)
}

/// 422 unless the user exists and is active.
fn check_user(
    conn: &mut DbConnection,
    scope: &TenantScope,
    field: &str,
    id: UserId,
) -> Result<db::users::UserRow, ServiceError> {
    db::users::find(conn, scope, id)?
        .filter(|u| u.active)
        .ok_or_else(|| {
            ServiceError::validation(field, "unknown_reference", "no active user with this id")
        })
}

fn check_group(
    conn: &mut DbConnection,
    scope: &TenantScope,
    field: &str,
    id: GroupId,
) -> Result<(), ServiceError> {
    db::groups::find_group(conn, scope, id)?
        .map(|_| ())
        .ok_or_else(|| {
            ServiceError::validation(field, "unknown_reference", "no group with this id")
        })
}

fn check_organization(
    conn: &mut DbConnection,
    scope: &TenantScope,
    field: &str,
    id: OrganizationId,
) -> Result<(), ServiceError> {
    db::groups::find_organization(conn, scope, id)?
        .map(|_| ())
        .ok_or_else(|| {
            ServiceError::validation(field, "unknown_reference", "no organization with this id")
        })
}

/// What a ticket's values put into the field index and the token index.
fn index_entries(
    def: &TemplateDefinition,
    title: &str,
    fields: &Map<String, Value>,
) -> (BTreeSet<index::IndexedValue>, BTreeSet<(String, i16)>) {
    index::entries(def, title, fields, (SOURCE_FIELDS, SOURCE_INTERNAL_FIELDS))
}

/// Brings the field index and the field tokens of a ticket from its old values (`None` for a
/// new ticket) to its new ones, touching only the entries that differ.
fn reindex(
    conn: &mut DbConnection,
    scope: &TenantScope,
    def: &TemplateDefinition,
    id: TicketId,
    old: Option<(&str, &Map<String, Value>)>,
    new: (&str, &Map<String, Value>),
) -> Result<(), ServiceError> {
    let new = index_entries(def, new.0, new.1);
    let old = match old {
        Some((title, fields)) => index_entries(def, title, fields),
        None => Default::default(),
    };
    db::tickets::reindex(conn, scope, id, &old, &new)?;
    Ok(())
}

/// Writes one change of a ticket: the row (only if it is still at the version the change was
/// decided on; 412 otherwise), its history entries, and the indexes of changed values.
pub(crate) fn apply_change(
    conn: &mut DbConnection,
    scope: &TenantScope,
    loaded: &LoadedTicket,
    old_fields: &Map<String, Value>,
    changes: &TicketChanges<'_>,
    new_fields: &Map<String, Value>,
    history: HistoryBatch<'_>,
) -> Result<(), ServiceError> {
    let (before, def) = (&loaded.row, &*loaded.def);
    if !db::tickets::update_ticket(conn, scope, before.id, changes)? {
        return Err(ServiceError::PreconditionFailed);
    }
    let actor = &history.caller.actor;
    let history_at = history.at;
    let rows = history.write(conn)?;
    let summary = events::TicketSummary {
        id: before.id,
        key: before.key(),
        template: &loaded.template_key,
        title: changes.title,
        stage: changes.stage,
        state: changes.state,
        closed: changes.closed,
        version: changes.version,
    };
    events::ticket_changed(conn, scope, actor, def, &summary, &rows)?;
    let clocks = super::sla::TicketClockInput {
        id: before.id,
        template: &loaded.template_key,
        def,
        fields: new_fields,
        requester: before.requester_id,
    };
    super::sla::refresh(conn, scope, &clocks, history_at.0)?;
    if new_fields != old_fields {
        reindex(
            conn,
            scope,
            def,
            before.id,
            Some((&before.title, old_fields)),
            (changes.title, new_fields),
        )?;
    }
    Ok(())
}

/// Builds history rows for one ticket version, numbering them in order.
pub(crate) struct HistoryBatch<'a> {
    caller: &'a TicketCaller,
    ticket: TicketId,
    template: TemplateId,
    version: i64,
    at: Timestamp,
    rows: Vec<NewHistory>,
}

impl<'a> HistoryBatch<'a> {
    pub(crate) fn new(
        caller: &'a TicketCaller,
        (ticket, template): (TicketId, TemplateId),
        version: i64,
        at: Timestamp,
    ) -> Self {
        Self {
            caller,
            ticket,
            template,
            version,
            at,
            rows: Vec::new(),
        }
    }

    fn push(&mut self, kind: HistoryKind, internal: bool, fill: impl FnOnce(&mut NewHistory)) {
        let mut row = NewHistory {
            tenant_id: self.caller.scope.tenant_id(),
            ticket_id: self.ticket,
            ticket_version: self.version,
            ordinal: i32::try_from(self.rows.len()).unwrap_or(i32::MAX),
            at: self.at,
            actor_kind: self.caller.actor.kind.to_owned(),
            actor_id: self.caller.actor.id,
            actor_name: self.caller.actor.name.clone(),
            kind: kind.as_str().to_owned(),
            transition: None,
            from_state: None,
            to_state: None,
            field: None,
            old_value: None,
            new_value: None,
            internal,
            state_since: None,
            template_id: self.template,
            imported: None,
        };
        fill(&mut row);
        self.rows.push(row);
    }

    /// The creation, with the initial field values (one entry, not one per field); for an
    /// imported ticket, with the import and source row.
    pub(crate) fn created(
        &mut self,
        state: &str,
        fields: &Map<String, Value>,
        imported: Option<&Value>,
    ) {
        self.push(HistoryKind::Created, false, |r| {
            r.to_state = Some(state.to_owned());
            r.new_value = Some(Json(Value::Object(fields.clone())));
            r.imported = imported.map(|v| Json(v.clone()));
        });
    }

    /// A state change: `from` is the state left and when it was entered.
    pub(crate) fn transition(&mut self, key: &str, from: (&str, Timestamp), to: &str) {
        self.push(HistoryKind::Transition, false, |r| {
            r.transition = Some(key.to_owned());
            r.from_state = Some(from.0.to_owned());
            r.to_state = Some(to.to_owned());
            r.state_since = Some(from.1);
        });
    }

    pub(crate) fn field(&mut self, def: &TemplateDefinition, key: &str, old: &Value, new: &Value) {
        let internal = def.field(key).is_some_and(|f| f.internal);
        self.push(HistoryKind::FieldChanged, internal, |r| {
            r.field = Some(key.to_owned());
            r.old_value = Some(Json(old.clone()));
            r.new_value = Some(Json(new.clone()));
        });
    }

    /// A change of a ticket attribute (`assignee`, `group`, `organization`).
    pub(crate) fn attribute<Id: PartialEq + std::fmt::Display>(
        &mut self,
        name: &str,
        old: Option<Id>,
        new: Option<Id>,
    ) {
        if old == new {
            return;
        }
        let text = |v: Option<Id>| v.map_or(Value::Null, |id| Value::String(id.to_string()));
        self.push(HistoryKind::AttributeChanged, false, |r| {
            r.field = Some(name.to_owned());
            r.old_value = Some(Json(text(old)));
            r.new_value = Some(Json(text(new)));
        });
    }

    /// Inserts the rows; returns them for the change's event.
    pub(crate) fn write(self, conn: &mut DbConnection) -> Result<Vec<NewHistory>, ServiceError> {
        db::tickets::insert_history(conn, &self.caller.scope, &self.rows)?;
        Ok(self.rows)
    }
}

/// A request to create a ticket.
#[derive(Debug, Clone, Default)]
pub struct NewTicketRequest {
    pub template: String,
    pub fields: Map<String, Value>,
    pub requester: Option<UserId>,
    pub assignee: Option<UserId>,
    pub group: Option<GroupId>,
    pub organization: Option<OrganizationId>,
    /// Set by a bulk import: where the ticket is placed and what its history says.
    pub imported: Option<Imported>,
}

/// How an imported ticket is created (docs/import-export.md, "Tickets").
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// Any state of the template (the initial one when absent); entered without a
    /// transition, and the history's `created` entry says so.
    pub state: Option<String>,
    /// When it entered that state (when it was closed), if not when it was created.
    pub entered_at: Option<DateTime<Utc>>,
    /// The import and source row, kept on the `created` history entry.
    pub source: Value,
}

/// Creates a ticket from the template's published version, in its initial state.
pub fn create(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    request: &NewTicketRequest,
    now: DateTime<Utc>,
) -> Result<LoadedTicket, ServiceError> {
    let scope = &caller.scope;
    if !caller.roles.iter().any(|r| FILERS.contains(r)) {
        return Err(ServiceError::Forbidden(
            "Auditors read tickets; they do not file them.".to_owned(),
        ));
    }
    if !caller.worker
        && (request.assignee.is_some()
            || request.group.is_some()
            || request.organization.is_some()
            || request.requester.is_some_and(|r| Some(r) != caller.user))
    {
        return Err(ServiceError::Forbidden(
            "Only agents set the requester, assignee, group or organization of a ticket."
                .to_owned(),
        ));
    }
    let template =
        db::templates::find_template(conn, scope, &request.template)?.ok_or_else(|| {
            ServiceError::validation("template", "unknown", "no template with this key")
        })?;
    if template.archived {
        return Err(ServiceError::validation(
            "template",
            "archived",
            "the template is archived; it takes no new tickets",
        ));
    }
    let Some(number) = template.published_version else {
        return Err(ServiceError::validation(
            "template",
            "not_published",
            "the template has no published version yet",
        ));
    };
    let def = defs.get(conn, scope, template.id, number)?;
    create_from(
        conn,
        caller,
        &template.id,
        number,
        def,
        request,
        now,
        &template.key,
    )
}

#[expect(
    clippy::too_many_arguments,
    reason = "one use case, shared with child tickets"
)]
pub(crate) fn create_from(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    template_id: &TemplateId,
    number: i32,
    def: Arc<TemplateDefinition>,
    request: &NewTicketRequest,
    now: DateTime<Utc>,
    template_key: &str,
) -> Result<LoadedTicket, ServiceError> {
    let scope = &caller.scope;
    let placed = request.imported.as_ref().and_then(|i| i.state.as_deref());
    let Some((stage, initial)) = def
        .states()
        .find(|(_, s)| placed.map_or(s.initial, |key| s.key == key))
    else {
        if placed.is_some() {
            return Err(ServiceError::validation(
                "state",
                "unknown",
                "the template has no state with this key",
            ));
        }
        return Err(ServiceError::Internal(
            "published template without an initial state".into(),
        ));
    };
    let entered_at = request
        .imported
        .as_ref()
        .and_then(|i| i.entered_at)
        .filter(|at| *at >= now)
        .map_or(now, |at| at);
    refuse_internal(
        &*def,
        caller.audience.is_staff(),
        &request.fields,
        "template",
    )?;
    let masters = master_items(conn, scope, &def, request.fields.keys())?;
    let mut fields = request.fields.clone();
    fields.retain(|_, v| is_set(Some(v)));
    validate_values(
        &*def,
        &fields,
        ValidationContext {
            state: Some(&initial.key),
            masters: &masters,
            check_required: true,
            previous: None,
        },
    )
    .map_err(field_errors)?;
    check_references(conn, scope, &*def, &fields, &caller.reader())?;
    // (requester, their organization): the caller's own are known from the credential.
    let requester = match request.requester {
        Some(id) => {
            let user = check_user(conn, scope, "requester", id)?;
            Some((user.id, user.organization_id))
        }
        None => caller.user.map(|id| (id, caller.organization)),
    };
    if let Some(id) = request.assignee {
        check_user(conn, scope, "assignee", id)?;
    }
    if let Some(id) = request.group {
        check_group(conn, scope, "group", id)?;
    }
    if let Some(id) = request.organization {
        check_organization(conn, scope, "organization", id)?;
    }
    let organization = request
        .organization
        .or_else(|| requester.and_then(|(_, org)| org));
    let id = TicketId::new_at(now);
    let title = ticket::title_of(&def, &fields);
    let stored = Value::Object(fields.clone());
    db::tickets::insert_ticket(
        conn,
        scope,
        &NewTicket {
            id,
            template_id: *template_id,
            template_version: number,
            key_prefix: &def.key_prefix,
            number: db::tickets::UNNUMBERED,
            title: &title,
            stage: &stage.key,
            state: &initial.key,
            closed: initial.terminal,
            requester_id: requester.map(|(id, _)| id),
            assignee_id: request.assignee,
            group_id: request.group,
            organization_id: organization,
            fields: &stored,
            created_by: caller.entity(),
            now: now.into(),
            state_entered_at: entered_at.into(),
        },
    )?;
    reindex(conn, scope, &def, id, None, (&title, &fields))?;
    let mut history = HistoryBatch::new(caller, (id, *template_id), 1, now.into());
    history.created(
        &initial.key,
        &fields,
        request.imported.as_ref().map(|i| &i.source),
    );
    history.attribute("assignee", None, request.assignee);
    history.attribute("group", None, request.group);
    history.attribute("organization", None, organization);
    let history = history.write(conn)?;
    let clocks = super::sla::TicketClockInput {
        id,
        template: template_key,
        def: &def,
        fields: &fields,
        requester: requester.map(|(id, _)| id),
    };
    super::sla::refresh(conn, scope, &clocks, now)?;
    // The number last: taking it locks the template's counter until the commit, so every
    // other write of this creation happens before, outside that lock.
    let ticket_number = db::tickets::take_number(conn, scope, *template_id, id)?;
    let summary = events::TicketSummary {
        id,
        key: format!("{}-{ticket_number}", def.key_prefix),
        template: template_key,
        title: &title,
        stage: &stage.key,
        state: &initial.key,
        closed: initial.terminal,
        version: 1,
    };
    events::ticket_changed(conn, scope, &caller.actor, &def, &summary, &history)?;
    // The row as inserted (no need to read it back).
    let row = TicketRow {
        tenant_id: scope.tenant_id(),
        id,
        template_id: *template_id,
        template_version: number,
        key_prefix: def.key_prefix.clone(),
        number: ticket_number,
        title,
        stage: stage.key.clone(),
        state: initial.key.clone(),
        closed: initial.terminal,
        requester_id: requester.map(|(id, _)| id),
        assignee_id: request.assignee,
        group_id: request.group,
        organization_id: organization,
        fields: Json(stored),
        created_by: caller.entity(),
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
        state_entered_at: entered_at.into(),
    };
    Ok(LoadedTicket {
        row,
        template_key: template_key.to_owned(),
        def,
    })
}

/// A partial edit: only the keys present change; `null` clears.
#[derive(Debug, Clone, Default)]
pub struct TicketPatch {
    pub fields: Map<String, Value>,
    pub assignee: Option<Option<UserId>>,
    pub group: Option<Option<GroupId>>,
    pub organization: Option<Option<OrganizationId>>,
}

/// Edits fields writable in the current state (and, for workers, the assignment).
pub fn update(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    expected_version: Option<i64>,
    patch: &TicketPatch,
    now: DateTime<Utc>,
) -> Result<LoadedTicket, ServiceError> {
    let scope = &caller.scope;
    let current = load_for_update(conn, defs, caller, id)?;
    let restricted = !caller.audience.is_staff();
    if restricted
        && (patch.assignee.is_some() || patch.group.is_some() || patch.organization.is_some())
    {
        return Err(ServiceError::Forbidden(
            "Only agents change the assignee, group or organization of a ticket.".to_owned(),
        ));
    }
    caller.require_writer()?;
    crate::service::error::check_version(expected_version, current.row.version)?;
    let def = current.def.clone();
    if current.row.closed && !patch.fields.is_empty() {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::TicketClosed,
            detail: "The ticket is in a terminal state; its fields no longer change.".to_owned(),
        });
    }
    refuse_internal(&*def, caller.audience.is_staff(), &patch.fields, "template")?;
    let old = current.fields();
    let changed: Vec<&str> = patch
        .fields
        .iter()
        .filter(|(k, v)| old.get(*k).unwrap_or(&Value::Null) != *v)
        .map(|(k, _)| k.as_str())
        .collect();
    check_editable(&*def, &current.row.state, changed.iter().copied()).map_err(field_errors)?;
    let masters = master_items(conn, scope, &def, patch.fields.keys())?;
    validate_values(
        &*def,
        &patch.fields,
        ValidationContext {
            state: Some(&current.row.state),
            masters: &masters,
            check_required: false,
            previous: Some(&old),
        },
    )
    .map_err(field_errors)?;
    let cleared: Vec<FieldError> = patch
        .fields
        .iter()
        .filter(|(k, v)| {
            !is_set(Some(v))
                && def
                    .field(k)
                    .is_some_and(|f| is_required(&*def, f, Some(&current.row.state)))
        })
        .map(|(k, _)| FieldError::new(format!("fields.{k}"), "required", "must be set"))
        .collect();
    if !cleared.is_empty() {
        return Err(ServiceError::Validation(cleared));
    }
    check_references(conn, scope, &*def, &patch.fields, &caller.reader())?;
    let assignee = match patch.assignee {
        Some(Some(u)) => {
            check_user(conn, scope, "assignee", u)?;
            Some(u)
        }
        Some(None) => None,
        None => current.row.assignee_id,
    };
    let group = match patch.group {
        Some(Some(g)) => {
            check_group(conn, scope, "group", g)?;
            Some(g)
        }
        Some(None) => None,
        None => current.row.group_id,
    };
    let organization = match patch.organization {
        Some(Some(o)) => {
            check_organization(conn, scope, "organization", o)?;
            Some(o)
        }
        Some(None) => None,
        None => current.row.organization_id,
    };
    let mut fields = old.clone();
    for (k, v) in &patch.fields {
        if is_set(Some(v)) {
            fields.insert(k.clone(), v.clone());
        } else {
            fields.remove(k);
        }
    }
    let nothing_changed = fields == old
        && assignee == current.row.assignee_id
        && group == current.row.group_id
        && organization == current.row.organization_id;
    if nothing_changed {
        return Ok(current);
    }
    let version = current.row.version + 1;
    let mut history = HistoryBatch::new(caller, (id, current.row.template_id), version, now.into());
    for f in &def.fields {
        let before = old.get(&f.key).unwrap_or(&Value::Null);
        let after = fields.get(&f.key).unwrap_or(&Value::Null);
        if before != after {
            history.field(&def, &f.key, before, after);
        }
    }
    history.attribute("assignee", current.row.assignee_id, assignee);
    history.attribute("group", current.row.group_id, group);
    history.attribute("organization", current.row.organization_id, organization);
    let title = ticket::title_of(&def, &fields);
    let changes = TicketChanges {
        template_version: current.row.template_version,
        title: &title,
        stage: &current.row.stage,
        state: &current.row.state,
        closed: current.row.closed,
        assignee_id: assignee,
        group_id: group,
        organization_id: organization,
        fields: Json(Value::Object(fields.clone())),
        version,
        updated_at: now.into(),
        state_entered_at: None,
    };
    apply_change(conn, scope, &current, &old, &changes, &fields, history)?;
    load(conn, defs, caller, id)
}

/// The audit-free summary of a ticket change for events.
pub(crate) fn event_payload(ticket: &LoadedTicket) -> Value {
    json!({
        "ticket_id": ticket.row.id,
        "key": ticket.row.key(),
        "template": ticket.template_key,
        "state": ticket.row.state,
    })
}
