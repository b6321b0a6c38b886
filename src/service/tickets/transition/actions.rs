//! One function per kind of planned action. Each one changes the ticket's next version
//! ([`Draft`]) or adds what it made to [`Produced`]; its writes (child tickets, links,
//! events, library records) join the transition's transaction, and its failure rolls the
//! whole transition back.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use super::{Draft, Firing, Produced};
use crate::db::tickets::{LINK_PARENT, LinkRow};
use crate::db::{self, DbConnection};
use crate::domain::ids::{LinkId, RecordId};
use crate::domain::template::{
    Assignee, MappedValue, PlannedAction, TemplateDefinition, TransitionPlan, convert_literal,
    convert_mapped,
};
use crate::domain::ticket::Audience;
use crate::service::error::{ConflictKind, ServiceError};
use crate::service::libraries::{ActionTarget, LibraryWrite, write_from_transition};
use crate::service::tickets::{
    LoadedTicket, NewTicketRequest, TicketCaller, create_from, event_payload,
};

fn action_failed(detail: String) -> ServiceError {
    ServiceError::conflict(ConflictKind::ActionFailed, detail)
}

/// `set_field`: the plan's field changes (a null value clears the field), each with its
/// history row, in field order.
pub(super) fn set_fields(draft: &mut Draft<'_>, def: &TemplateDefinition, plan: &TransitionPlan) {
    for change in &plan.field_changes {
        if change.new.is_null() {
            draft.fields.remove(&change.field);
        } else {
            draft
                .fields
                .insert(change.field.clone(), change.new.clone());
        }
        draft
            .history
            .field(def, &change.field, &change.old, &change.new);
    }
}

/// Runs one planned action (`set_field` is not one: it is part of the plan's field changes).
pub(super) fn perform(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    action: &PlannedAction,
    draft: &mut Draft<'_>,
    produced: &mut Produced,
) -> Result<(), ServiceError> {
    match action {
        PlannedAction::Assign { assignee } => assign(conn, firing, assignee, draft)?,
        PlannedAction::CreateChildTicket { template, fields } => {
            let child = create_child_ticket(conn, firing, template, fields)?;
            produced.children.push(child);
        }
        PlannedAction::Notify { event } => produced.events.push(notify(firing, event)),
        PlannedAction::LibraryUpsert {
            library,
            record,
            record_field,
            fields,
        } => {
            let record_field = record_field.as_deref();
            let write =
                library_upsert(conn, firing, draft, library, *record, record_field, fields)?;
            produced.library_writes.push(write);
        }
        PlannedAction::LibraryUpdate {
            library,
            record,
            fields,
        } => {
            let write = library_update(conn, firing, library, *record, fields)?;
            produced.library_writes.push(write);
        }
    }
    Ok(())
}

/// `assign`: to an active user, or to a group by id or by key, of the tenant; 409 when
/// there is none.
fn assign(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    target: &Assignee,
    draft: &mut Draft<'_>,
) -> Result<(), ServiceError> {
    let scope = &firing.cx.caller.scope;
    match target {
        Assignee::User { id: user } => {
            db::users::find(conn, scope, *user)?
                .filter(|u| u.active)
                .ok_or_else(|| action_failed(format!("assign: no active user {user}")))?;
            draft.assignee = Some(*user);
        }
        Assignee::Group { id: group } => {
            db::groups::find_group(conn, scope, *group)?
                .ok_or_else(|| action_failed(format!("assign: no group {group}")))?;
            draft.group = Some(*group);
        }
        Assignee::GroupKey { key } => {
            let found = db::groups::find_group_by_name(conn, scope, key)?
                .ok_or_else(|| action_failed(format!("assign: the tenant has no group '{key}'")))?;
            draft.group = Some(found.id);
        }
    }
    Ok(())
}

/// `notify`: the event's payload (as the transition's result lists it); the event itself is
/// written once the ticket has its new state (`record`).
fn notify(firing: &Firing<'_>, event: &str) -> Value {
    let mut payload = event_payload(firing.ticket());
    if let Some(map) = payload.as_object_mut() {
        map.insert("event".to_owned(), json!(event));
        map.insert("transition".to_owned(), json!(firing.plan.transition));
        map.insert("to_state".to_owned(), json!(firing.plan.to));
    }
    payload
}

/// `library_upsert`: the record in `record` (the action's `record_field` as it was), else the
/// one this ticket created before, else a new one; a record the ticket did not name yet is
/// then linked in `record_field`.
fn library_upsert(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    draft: &mut Draft<'_>,
    library: &str,
    record: Option<RecordId>,
    record_field: Option<&str>,
    mapped: &BTreeMap<String, MappedValue>,
) -> Result<LibraryWrite, ServiceError> {
    let target = ActionTarget::Upsert { record };
    let mut write = write_from_transition(conn, &firing.writer(), library, target, mapped)?;
    if record.is_none()
        && let Some(field) = record_field
    {
        link_record(draft, &firing.ticket().def, field, &mut write);
    }
    Ok(write)
}

/// `library_update`: exactly the named record.
fn library_update(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    library: &str,
    record: RecordId,
    mapped: &BTreeMap<String, MappedValue>,
) -> Result<LibraryWrite, ServiceError> {
    let target = ActionTarget::Update { record };
    write_from_transition(conn, &firing.writer(), library, target, mapped)
}

/// Writes the id of the record a `library_upsert` wrote into the ticket's `field` (a record
/// the upsert created, or found as this ticket's earlier one).
fn link_record(
    draft: &mut Draft<'_>,
    def: &TemplateDefinition,
    field: &str,
    write: &mut LibraryWrite,
) {
    let new = Value::String(write.record.id.to_string());
    let old = draft.fields.insert(field.to_owned(), new.clone());
    draft
        .history
        .field(def, field, &old.unwrap_or(Value::Null), &new);
    write.record_field = Some(field.to_owned());
}

/// `create_child_ticket`: the child ticket, created from the mapped values and linked as a
/// child of this one. The child is created with the workflow's authority (the parent's
/// requester and organization), whoever fired the transition; its validation errors are 422
/// located under `create_child_ticket.<template>.`.
fn create_child_ticket(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    template_key: &str,
    mapped: &BTreeMap<String, MappedValue>,
) -> Result<LoadedTicket, ServiceError> {
    let (caller, now) = (firing.cx.caller, firing.cx.now);
    let scope = &caller.scope;
    let failed = |why: &str| action_failed(format!("create_child_ticket '{template_key}': {why}"));
    let template = db::templates::find_template(conn, scope, template_key)?
        .ok_or_else(|| failed("the tenant has no such template"))?;
    let number = template
        .published_version
        .filter(|_| !template.archived)
        .ok_or_else(|| failed("the template is not published"))?;
    let def = firing
        .cx
        .definitions
        .get(conn, scope, template.id, number)?;
    let parent = &firing.ticket().row;
    let request = NewTicketRequest {
        template: template_key.to_owned(),
        fields: child_fields(&def, mapped, failed)?,
        requester: parent.requester_id,
        assignee: None,
        group: None,
        organization: parent.organization_id,
        imported: None,
    };
    let workflow = TicketCaller {
        audience: Audience::Staff,
        worker: true,
        ..caller.clone()
    };
    let child = create_from(
        conn,
        &workflow,
        &template.id,
        number,
        def,
        &request,
        now,
        &template.key,
    )
    .map_err(|e| locate_child_errors(e, template_key))?;
    link_child(conn, firing, &child)?;
    Ok(child)
}

/// Links a child ticket to the ticket that created it.
fn link_child(
    conn: &mut DbConnection,
    firing: &Firing<'_>,
    child: &LoadedTicket,
) -> Result<(), ServiceError> {
    let (caller, now) = (firing.cx.caller, firing.cx.now);
    db::tickets::insert_link(
        conn,
        &caller.scope,
        &LinkRow {
            tenant_id: caller.scope.tenant_id(),
            id: LinkId::new_at(now),
            source_id: firing.ticket().row.id,
            target_id: child.row.id,
            kind: LINK_PARENT.to_owned(),
            created_by: caller.entity(),
            created_at: now.into(),
        },
    )?;
    Ok(())
}

/// The child's values: each mapped value converted for its target field (a null is left
/// out); 409 for a field the child template lacks or a value that does not fit it.
fn child_fields(
    def: &TemplateDefinition,
    mapped: &BTreeMap<String, MappedValue>,
    failed: impl Fn(&str) -> ServiceError,
) -> Result<Map<String, Value>, ServiceError> {
    let mut fields = Map::new();
    for (target, value) in mapped {
        let field = def
            .field(target)
            .ok_or_else(|| failed(&format!("the template has no field '{target}'")))?;
        let converted = match value {
            MappedValue::Copied { value, source_type } => {
                convert_mapped(field.kind, *source_type, value)
            }
            MappedValue::Literal { text } => convert_literal(field.kind, text),
        }
        .ok_or_else(|| failed(&format!("the value for '{target}' does not fit its type")))?;
        if !converted.is_null() {
            fields.insert(target.clone(), converted);
        }
    }
    Ok(fields)
}

/// Locates the child's validation errors under `create_child_ticket.<template>.`.
fn locate_child_errors(error: ServiceError, template_key: &str) -> ServiceError {
    match error {
        ServiceError::Validation(errors) => ServiceError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    e.field = format!("create_child_ticket.{template_key}.{}", e.field);
                    e
                })
                .collect(),
        ),
        other => other,
    }
}
