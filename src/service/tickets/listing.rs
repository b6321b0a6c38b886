//! Ticket lists and exports: which template and which library record a query narrows to,
//! and the pages of matching tickets with their definitions.

use super::{LoadedTicket, TicketCaller};
use crate::db::tickets::{After, TicketFilter};
use crate::db::{self, DbConnection};
use crate::domain::ids::RecordId;
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;
use crate::service::libraries as libs;

/// What the `template` parameter of a ticket list resolves to.
pub enum ListScope {
    /// No template named: every template.
    AllTemplates,
    /// The named template (the filter is narrowed to it).
    Template(db::templates::TemplateRow),
    /// The tenant has no template with that key: the list is empty.
    Nothing,
}

/// Narrows a list filter to the template with `key`, if one is named.
pub fn narrow_to_template(
    conn: &mut DbConnection,
    caller: &TicketCaller,
    key: Option<&str>,
    filter: &mut TicketFilter,
) -> Result<ListScope, ServiceError> {
    let Some(key) = key else {
        return Ok(ListScope::AllTemplates);
    };
    Ok(
        match db::templates::find_template(conn, &caller.scope, key)? {
            Some(template) => {
                filter.template = Some(template.id);
                ListScope::Template(template)
            }
            None => ListScope::Nothing,
        },
    )
}

/// One page of the tickets matching `filter`, with their definitions.
pub fn page(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    filter: &TicketFilter,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<LoadedTicket>, ServiceError> {
    let rows = db::tickets::list_tickets(conn, &caller.scope, filter, after, limit)?;
    let mut loaded = Vec::with_capacity(rows.len());
    for (row, template_key) in rows {
        let def = defs.get(conn, &caller.scope, row.template_id, row.template_version)?;
        loaded.push(LoadedTicket {
            row,
            template_key,
            def,
        });
    }
    Ok(loaded)
}

/// Narrows a list filter to the tickets referencing a library record: the one the record
/// endpoint names (404 unless the caller may read it), or `?library_record=`. False when
/// nothing can match (a record of a library the caller may not read, or no such record).
pub fn narrow_to_record(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    record: Option<(String, RecordId)>,
    library_record: Option<RecordId>,
    filter: &mut TicketFilter,
) -> Result<bool, ServiceError> {
    let reference = match (record, library_record) {
        (Some((key, id)), _) => {
            let library = libs::LibraryCaller::of_ticket(caller);
            libs::get_record(conn, &library, &key, id)?;
            Some((key, id))
        }
        (None, Some(id)) => {
            libs::library_of_record(conn, &caller.scope, &caller.reader(), id)?.map(|key| (key, id))
        }
        (None, None) => return Ok(true),
    };
    let Some((key, id)) = reference else {
        return Ok(false);
    };
    let fields = libs::referencing_fields(conn, defs, &caller.scope, &key)?;
    filter.references = Some((fields, id.to_string()));
    Ok(true)
}

/// What a ticket list asks for besides its filter: the record it is narrowed to (the record
/// endpoint's, or `?library_record=`) and the `template` key.
#[derive(Debug, Clone)]
pub struct ListTarget {
    pub record: Option<(String, RecordId)>,
    pub library_record: Option<RecordId>,
    pub template: Option<String>,
}

/// One page of the ticket list (`limit` rows at most, after `after`): the filter narrowed to
/// the target's record and template first; empty when nothing can match.
pub fn list_page(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    target: ListTarget,
    mut filter: TicketFilter,
    after: Option<&After>,
    limit: i64,
) -> Result<Vec<LoadedTicket>, ServiceError> {
    if !narrow_to_record(
        conn,
        defs,
        caller,
        target.record,
        target.library_record,
        &mut filter,
    )? {
        return Ok(Vec::new());
    }
    let scope = narrow_to_template(conn, caller, target.template.as_deref(), &mut filter)?;
    if matches!(scope, ListScope::Nothing) {
        return Ok(Vec::new());
    }
    page(conn, defs, caller, &filter, after, limit)
}

/// What an export needs before it streams: the narrowed filter, the field columns (those of
/// the named template the caller may see; none without a template) and whether anything can
/// match at all.
pub struct ExportPlan {
    pub filter: TicketFilter,
    pub columns: Vec<String>,
    pub matches: bool,
}

pub fn plan_export(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    target: ListTarget,
    mut filter: TicketFilter,
) -> Result<ExportPlan, ServiceError> {
    let referenced = narrow_to_record(
        conn,
        defs,
        caller,
        target.record,
        target.library_record,
        &mut filter,
    )?;
    let scope = narrow_to_template(conn, caller, target.template.as_deref(), &mut filter)?;
    let mut columns = Vec::new();
    if let ListScope::Template(t) = &scope
        && let Some(number) = t.published_version
    {
        let def = defs.get(conn, &caller.scope, t.id, number)?;
        columns = def
            .fields
            .iter()
            .filter(|f| caller.audience.is_staff() || !f.internal)
            .map(|f| f.key.clone())
            .collect();
    }
    let matches = referenced && !matches!(scope, ListScope::Nothing);
    Ok(ExportPlan {
        filter,
        columns,
        matches,
    })
}
