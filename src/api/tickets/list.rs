//! The ticket list: query, keyset cursors, pages.

use actix_web::{HttpRequest, get, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::IntoParams;

use super::{Ticket, caller};
use crate::api::common::{
    Page, bad_cursor, decode_cursor, list_query, page_limit, query_pairs, search_query,
};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::{After, SlaCondition, SortKey, TicketFilter};
use crate::domain::ids::RecordId;
use crate::domain::ids::{GroupId, OrganizationId, TicketId, UserId};
use crate::domain::index;
use crate::service::tickets::{self as svc, TicketCaller};

/// Query of the ticket list and export. Custom fields are filtered with
/// `field.<key>=<value>` (repeatable for several fields; a multi-select matches when it
/// holds the value).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TicketQuery {
    /// Template key.
    pub template: Option<String>,
    /// Stage key.
    pub stage: Option<String>,
    /// State key; several separated by commas.
    pub state: Option<String>,
    /// `true`: only tickets in a terminal state; `false`: only open ones.
    pub closed: Option<bool>,
    /// Only tickets assigned to this user.
    pub assignee: Option<UserId>,
    /// Only tickets assigned to this group.
    pub group: Option<GroupId>,
    /// Only tickets of this organization.
    pub organization: Option<OrganizationId>,
    /// Only tickets of this requester.
    pub requester: Option<UserId>,
    /// Keywords (all must match): English words, and Japanese words of two or more
    /// characters, over the title, text fields and comments; at most 200 characters.
    #[param(max_length = 200)]
    pub q: Option<String>,
    /// Only tickets created at or after this instant (RFC 3339).
    pub created_after: Option<DateTime<Utc>>,
    /// Only tickets created before this instant (RFC 3339).
    pub created_before: Option<DateTime<Utc>>,
    /// Only tickets last changed at or after this instant (RFC 3339).
    pub updated_after: Option<DateTime<Utc>>,
    /// Only tickets last changed before this instant (RFC 3339).
    pub updated_before: Option<DateTime<Utc>>,
    /// Tickets whose `library_ref` fields reference this library record, deleted or not (of
    /// a library the caller may read; otherwise nothing matches).
    pub library_record: Option<uuid::Uuid>,
    /// Staff only: tickets with an SLA clock past its target (`breached`: open, or stopped
    /// late) or past its at-risk share and not yet breached (`at_risk`: open clocks only).
    #[param(inline)]
    pub sla: Option<SlaState>,
    /// Default `-created` (newest first).
    #[param(inline)]
    pub sort: Option<TicketSort>,
    /// Page size, 1–500 (default 50).
    #[param(minimum = 1, maximum = 500, default = 50)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

crate::domain::closed_set::closed_set! {
    /// An SLA condition of the ticket list.
    pub enum SlaState {
        Breached = "breached",
        AtRisk = "at_risk",
    }
}

crate::domain::closed_set::closed_set! {
    /// The order of a ticket list; `-` means descending.
    pub enum TicketSort {
        Created = "created",
        CreatedDesc = "-created",
        Updated = "updated",
        UpdatedDesc = "-updated",
        Key = "key",
        KeyDesc = "-key",
    }
}

/// Reads the list query: the named parameters, and `field.<key>` filters.
pub(super) fn parse_query(
    pairs: &[(String, String)],
    audience: crate::domain::ticket::Audience,
    probe_threshold: i64,
    now: DateTime<Utc>,
) -> Result<(TicketQuery, TicketFilter), ApiError> {
    let (query, raw_fields): (TicketQuery, _) =
        list_query(pairs, &crate::api::exports::EXPORT_PARAMS)?;
    if query.sla.is_some() && !audience.is_staff() {
        return Err(ApiError::Forbidden(
            "The `sla` filter is for staff.".to_owned(),
        ));
    }
    let fields: Vec<(String, Vec<String>)> = raw_fields
        .into_iter()
        .map(|(field, v)| (field, index::filter_candidates(&v)))
        .collect();
    let (sort, descending) = match query.sort.unwrap_or(TicketSort::CreatedDesc) {
        TicketSort::Created => (SortKey::Created, false),
        TicketSort::CreatedDesc => (SortKey::Created, true),
        TicketSort::Updated => (SortKey::Updated, false),
        TicketSort::UpdatedDesc => (SortKey::Updated, true),
        TicketSort::Key => (SortKey::Key, false),
        TicketSort::KeyDesc => (SortKey::Key, true),
    };
    let tokens = search_query(query.q.as_deref())?
        .map(|q| q.tokens)
        .unwrap_or_default();
    let states = query.state.as_deref().map(|s| {
        s.split(',')
            .map(|x| x.trim().to_owned())
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
    });
    let filter = TicketFilter {
        audience,
        template: None,
        states,
        stage: query.stage.clone(),
        closed: query.closed,
        assignee: query.assignee,
        group: query.group,
        organization: query.organization,
        requester: query.requester,
        created_after: query.created_after.map(Into::into),
        created_before: query.created_before.map(Into::into),
        updated_after: query.updated_after.map(Into::into),
        updated_before: query.updated_before.map(Into::into),
        fields,
        tokens,
        references: None,
        probe_threshold,
        sla: query.sla.map(|state| {
            let condition = match state {
                SlaState::Breached => SlaCondition::Breached,
                SlaState::AtRisk => SlaCondition::AtRisk,
            };
            (condition, now.into())
        }),
        sort,
        descending,
    };
    Ok((query, filter))
}

#[derive(Debug, Serialize, Deserialize)]
struct ListCursor {
    /// Sort key kind: c, u, k.
    s: char,
    id: TicketId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    n: Option<i64>,
}

fn list_cursor(sort: SortKey, row: &crate::db::tickets::TicketRow) -> ListCursor {
    match sort {
        SortKey::Created => ListCursor {
            s: 'c',
            id: row.id,
            at: None,
            p: None,
            n: None,
        },
        SortKey::Updated => ListCursor {
            s: 'u',
            id: row.id,
            at: Some(row.updated_at.0),
            p: None,
            n: None,
        },
        SortKey::Key => ListCursor {
            s: 'k',
            id: row.id,
            at: None,
            p: Some(row.key_prefix.clone()),
            n: Some(row.number),
        },
    }
}

fn decode_list_cursor(raw: &str, sort: SortKey) -> Result<After, ApiError> {
    let c: ListCursor = decode_cursor(raw)?;
    match (sort, c.s, c.at, c.p, c.n) {
        (SortKey::Created, 'c', _, _, _) => Ok(After::Created(c.id)),
        (SortKey::Updated, 'u', Some(at), _, _) => Ok(After::Updated(at.into(), c.id)),
        (SortKey::Key, 'k', _, Some(p), Some(n)) => Ok(After::Key(p, n, c.id)),
        _ => Err(bad_cursor()),
    }
}

/// Tickets the caller may see, filtered and sorted, with stable cursor pagination (ties are
/// broken by id). Every filter is index-backed, custom fields and keywords included.
///
/// Custom fields are filtered with `field.<key>=<value>` query parameters (up to 8, all must
/// match; for example `field.impact=high`). A multi-select matches when it holds the value;
/// numbers and datetimes match whatever their written form (`1.50` finds `1.5`,
/// `2026-11-26T18:00:00+09:00` finds the same instant in UTC). Requesters and partners cannot
/// filter on internal fields (nothing matches). `q` finds English words and Japanese words of
/// two or more characters in the title, text fields and comments (internal ones only for
/// staff); results keep the list's order, there is no ranking.
#[utoipa::path(
    tag = "tickets", operation_id = "list_tickets", security(("bearer" = [])),
    params(TicketQuery, ("field" = Option<std::collections::HashMap<String, String>>, Query, style = DeepObject, explode, description = "Custom-field filters: `field[<key>]=<value>` (also written `field.<key>=<value>`), up to 8, all must match; a multi-select matches when it holds the value.")),
    responses(
        (status = 200, description = "A page of tickets", body = Page<Ticket>),
        (status = 401, response = crate::api::problems::Unauthorized),
        (status = 403, response = crate::api::problems::Forbidden),
        (status = 422, response = crate::api::problems::Unprocessable),
    )
)]
#[get("/tickets")]
pub async fn list_tickets(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
) -> Result<web::Json<Page<Ticket>>, ApiError> {
    let caller = caller(&principal)?;
    let pairs = query_pairs(&req)?;
    let route = crate::api::extract::read_route(&req);
    Ok(web::Json(
        ticket_page(&state, caller, &pairs, None, route).await?,
    ))
}

/// One page of the ticket list for a query; with `record`, only tickets referencing that
/// library record (which must be readable: 404 otherwise).
pub(crate) async fn ticket_page(
    state: &web::Data<AppState>,
    caller: TicketCaller,
    pairs: &[(String, String)],
    record: Option<(String, RecordId)>,
    route: crate::db::replica::ReadRoute,
) -> Result<Page<Ticket>, ApiError> {
    let (query, filter) = parse_query(
        pairs,
        caller.audience,
        state.config.list_probe_threshold,
        state.clock.now(),
    )?;
    let limit = page_limit(query.limit)?;
    let after = match &query.cursor {
        Some(raw) => Some(decode_list_cursor(raw, filter.sort)?),
        None => None,
    };
    let sort = filter.sort;
    let target = svc::ListTarget {
        record,
        library_record: query.library_record.map(RecordId),
        template: query.template,
    };
    let (s, c) = (state.clone(), caller.clone());
    let rows = state
        .db
        .read_routed(route, move |conn| {
            svc::list_page(
                conn,
                &s.definitions,
                &c,
                target.clone(),
                filter.clone(),
                after.as_ref(),
                limit + 1,
            )
        })
        .await?;
    Ok(Page::from_rows(
        rows,
        limit,
        |t| list_cursor(sort, &t.row),
        |t| Ticket::of(&t, &caller),
    ))
}
