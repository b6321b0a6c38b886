//! Libraries: definitions (kept by tenant admins and process managers), records (read and
//! written as each library's access says), their versions, their freshness, and the writes
//! ticket transitions make into them. Every use case runs in the caller's transaction; a
//! library the caller may not read answers exactly like a missing one (404).

mod definitions;
mod records;
mod references;
mod write_back;

pub use definitions::*;
pub use records::*;
pub use references::*;
pub use write_back::*;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::auth::{Principal, TenantScope};
use crate::db::audit::Actor;
use crate::db::libraries::LibraryRow;
use crate::db::{self, DbConnection};
use crate::domain::identity::Role;
use crate::domain::ids::OrganizationId;
use crate::domain::ids::TicketId;
use crate::domain::library::{LibraryDefinition, Reader, parse_library};
use crate::domain::template::public_only;
use crate::service::error::ServiceError;

/// Longest review note, in characters.
pub const MAX_NOTE_CHARS: usize = 2_000;

/// The caller of a library use case, resolved once per request.
#[derive(Debug, Clone)]
pub struct LibraryCaller {
    pub scope: TenantScope,
    pub actor: Actor,
    pub held: Vec<Role>,
    pub organization: Option<OrganizationId>,
}

impl LibraryCaller {
    /// Any tenant caller; 403 for the operator.
    pub fn of(principal: &Principal) -> Result<Self, ServiceError> {
        let scope = principal.require(&Role::ALL)?;
        let organization = principal.user().ok().and_then(|u| u.organization_id);
        Ok(Self {
            scope,
            actor: principal.actor(),
            held: super::tickets::held_roles(principal),
            organization,
        })
    }

    /// The same caller, as a ticket use case resolved it.
    pub fn of_ticket(caller: &super::tickets::TicketCaller) -> Self {
        Self {
            scope: caller.scope,
            actor: caller.actor.clone(),
            held: caller.roles.clone(),
            organization: caller.organization,
        }
    }

    pub fn reader(&self) -> Reader<'_> {
        Reader {
            roles: &self.held,
            organization: self.organization,
        }
    }

    fn require_manager(&self) -> Result<(), ServiceError> {
        if self.reader().is_manager() {
            Ok(())
        } else {
            Err(ServiceError::Forbidden(
                "This needs one of the roles: tenant_admin, process_manager.".to_owned(),
            ))
        }
    }
}

/// Who or what made a change to a record.
#[derive(Debug, Clone)]
pub enum Source {
    /// A user (or API key) directly.
    User,
    /// A ticket transition's `library_upsert` / `library_update` action.
    Ticket {
        id: TicketId,
        key: String,
        transition: String,
    },
}

/// Who writes a record, on whose behalf, and when: what every version row records.
#[derive(Debug, Clone, Copy)]
pub struct Writer<'a> {
    pub scope: &'a TenantScope,
    pub actor: &'a Actor,
    pub source: &'a Source,
    pub now: DateTime<Utc>,
}

impl<'a> Writer<'a> {
    fn user(caller: &'a LibraryCaller, now: DateTime<Utc>) -> Self {
        Self {
            scope: &caller.scope,
            actor: &caller.actor,
            source: &Source::User,
            now,
        }
    }
}

/// A library with its parsed definition.
#[derive(Debug, Clone)]
pub struct Library {
    pub row: LibraryRow,
    pub def: LibraryDefinition,
}

impl Library {
    fn of(row: LibraryRow) -> Result<Self, ServiceError> {
        let def = parse_library(&row.definition.0).map_err(|_| {
            ServiceError::internal(format!("stored library {} does not parse", row.key))
        })?;
        Ok(Self { row, def })
    }

    /// The record's values as this reader may see them (no internal field unless staff).
    pub fn redact(&self, reader: &Reader<'_>, fields: Map<String, Value>) -> Map<String, Value> {
        if reader.is_staff() {
            fields
        } else {
            public_only(&self.def, fields)
        }
    }

    /// The definition as this reader may see it: internal fields and access only for staff.
    pub fn visible_definition(&self, reader: &Reader<'_>) -> Value {
        let mut value = self.row.definition.0.clone();
        if !reader.is_staff()
            && let Some(map) = value.as_object_mut()
        {
            map.remove("access");
            if let Some(Value::Array(fields)) = map.get_mut("fields") {
                fields.retain(|f| f.get("internal") != Some(&Value::Bool(true)));
            }
            let internal: BTreeSet<String> = self
                .def
                .fields
                .iter()
                .filter(|f| f.internal)
                .map(|f| f.key.clone())
                .collect();
            if let Some(Value::Array(sections)) =
                map.get_mut("layout").and_then(|l| l.get_mut("sections"))
            {
                for section in sections {
                    if let Some(Value::Array(keys)) = section.get_mut("fields") {
                        keys.retain(|k| k.as_str().is_none_or(|k| !internal.contains(k)));
                    }
                }
            }
        }
        value
    }
}

fn find(conn: &mut DbConnection, scope: &TenantScope, key: &str) -> Result<Library, ServiceError> {
    Library::of(db::libraries::find_library(conn, scope, key)?.ok_or(ServiceError::NotFound)?)
}

/// A library the caller may read; 404 otherwise.
pub fn readable(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
) -> Result<Library, ServiceError> {
    let library = find(conn, &caller.scope, key)?;
    if library.def.access.may_read(&caller.reader()) {
        Ok(library)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// A library whose records the caller may change: 404 if unreadable, 403 if read-only.
pub(crate) fn writable(
    conn: &mut DbConnection,
    caller: &LibraryCaller,
    key: &str,
) -> Result<Library, ServiceError> {
    let library = readable(conn, caller, key)?;
    if library.def.access.may_write(&caller.reader()) {
        Ok(library)
    } else {
        let writers: Vec<&str> = ["tenant_admin", "process_manager"]
            .into_iter()
            .chain(library.def.access.write.iter().map(|r| r.as_str()))
            .collect();
        Err(ServiceError::Forbidden(format!(
            "The library {key} is read-only for you; its records are written by: {}.",
            writers.join(", ")
        )))
    }
}
