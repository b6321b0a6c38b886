//! Tickets as they were (#16 point 6): a ticket rebuilt from its history at an instant, and
//! its per-state timeline. Visibility is the ticket's today: whoever sees the ticket sees its
//! past, with the same fields left out.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use super::{LoadedTicket, TicketCaller, load};
use crate::db::tickets::HistoryRow;
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::ids::{GroupId, OrganizationId, TicketId, UserId};
use crate::domain::ticket::{self, HistoryKind};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;

/// Every history row of a ticket, internal ones included (the caller redacts).
fn all_history(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<Vec<HistoryRow>, ServiceError> {
    Ok(db::tickets::history(
        conn,
        &caller.scope,
        id,
        true,
        None,
        i64::MAX,
    )?)
}

fn parse_id<T: std::str::FromStr>(value: &Option<Json>) -> Option<T> {
    value
        .as_ref()
        .and_then(|v| v.0.as_str())
        .and_then(|s| s.parse().ok())
}

/// The ticket as it was at `at`, rebuilt from its history: fields, state and stage,
/// assignee, group, organization, title, version and last change. 422 for an instant before
/// the ticket was filed; an instant after the last change reads the ticket as it is.
pub fn as_of(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    at: DateTime<Utc>,
) -> Result<LoadedTicket, ServiceError> {
    let current = load(conn, defs, caller, id)?;
    if at < current.row.created_at.0 {
        return Err(ServiceError::validation(
            "as_of",
            "before_creation",
            format!(
                "the ticket was filed at {}",
                current.row.created_at.0.to_rfc3339()
            ),
        ));
    }
    let mut row = current.row.clone();
    let mut fields = Map::new();
    for entry in all_history(conn, caller, id)?
        .iter()
        .filter(|e| e.at.0 <= at)
    {
        match HistoryKind::parse(&entry.kind) {
            Some(HistoryKind::Created) => {
                if let Some(Json(Value::Object(initial))) = &entry.new_value {
                    fields = initial.clone();
                }
                row.state = entry.to_state.clone().unwrap_or_default();
                row.assignee_id = None;
                row.group_id = None;
                row.organization_id = None;
            }
            Some(HistoryKind::Transition) => {
                row.state = entry.to_state.clone().unwrap_or_default();
            }
            Some(HistoryKind::Migrated) => {
                row.state = entry.to_state.clone().unwrap_or_default();
                let change = entry.new_value.as_ref().map(|v| &v.0);
                let names = |member: &str| change.and_then(|c| c.get(member).cloned());
                if let Some(Value::Array(dropped)) = names("fields_dropped") {
                    for key in dropped.iter().filter_map(Value::as_str) {
                        fields.remove(key);
                    }
                }
                if let Some(Value::Object(renamed)) = names("fields_renamed") {
                    let mut moved = Map::new();
                    for (old, new) in &renamed {
                        if let (Some(value), Some(new)) = (fields.remove(old), new.as_str()) {
                            moved.insert(new.to_owned(), value);
                        }
                    }
                    fields.extend(moved);
                }
            }
            Some(HistoryKind::FieldChanged) => {
                if let Some(key) = &entry.field {
                    match entry.new_value.as_ref().map(|v| &v.0) {
                        None | Some(Value::Null) => {
                            fields.remove(key);
                        }
                        Some(value) => {
                            fields.insert(key.clone(), value.clone());
                        }
                    }
                }
            }
            Some(HistoryKind::AttributeChanged) => match entry.field.as_deref() {
                Some("assignee") => row.assignee_id = parse_id::<UserId>(&entry.new_value),
                Some("group") => row.group_id = parse_id::<GroupId>(&entry.new_value),
                Some("organization") => {
                    row.organization_id = parse_id::<OrganizationId>(&entry.new_value);
                }
                _ => {}
            },
            None => {
                return Err(ServiceError::internal(format!(
                    "ticket {id}: a history entry of kind {}",
                    entry.kind
                )));
            }
        }
        row.version = entry.ticket_version;
        row.updated_at = entry.at;
    }
    let def = &current.def;
    if let Some((stage, state)) = def.states().find(|(_, s)| s.key == row.state) {
        row.stage = stage.key.clone();
        row.closed = state.terminal;
    }
    row.title = ticket::title_of(def, &fields);
    row.fields = Json(Value::Object(fields));
    Ok(LoadedTicket { row, ..current })
}

/// One stay of a ticket in a state.
#[derive(Debug, Clone)]
pub struct Stay {
    pub state: String,
    pub stage: Option<String>,
    pub entered_at: DateTime<Utc>,
    /// `None`: the ticket is still there.
    pub left_at: Option<DateTime<Utc>>,
    /// The transition that entered it (`None`: the filing).
    pub transition: Option<String>,
    pub actor: (String, Option<crate::domain::ids::EntityId>, String),
}

/// The states a ticket has been in, in order, with when it entered and left each.
pub fn timeline(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
) -> Result<Vec<Stay>, ServiceError> {
    let current = load(conn, defs, caller, id)?;
    let stage_of = |state: &str| {
        current
            .def
            .states()
            .find(|(_, s)| s.key == state)
            .map(|(stage, _)| stage.key.clone())
    };
    let mut stays: Vec<Stay> = Vec::new();
    for entry in all_history(conn, caller, id)? {
        let transition = match HistoryKind::parse(&entry.kind) {
            Some(HistoryKind::Created) => None,
            Some(HistoryKind::Transition) => entry.transition.clone(),
            Some(HistoryKind::Migrated) if entry.from_state != entry.to_state => Some(format!(
                "migrated to version {}",
                entry
                    .new_value
                    .as_ref()
                    .and_then(|v| v.0.get("template_version").cloned())
                    .unwrap_or_default()
            )),
            _ => continue,
        };
        let state = entry.to_state.clone().unwrap_or_default();
        if let Some(last) = stays.last_mut() {
            last.left_at = Some(entry.at.0);
        }
        stays.push(Stay {
            stage: stage_of(&state),
            state,
            entered_at: entry.at.0,
            left_at: None,
            transition,
            actor: (entry.actor_kind, entry.actor_id, entry.actor_name),
        });
    }
    Ok(stays)
}
