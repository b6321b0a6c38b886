//! Attachments of a ticket: the rights and storage cap checked before an upload is read, the
//! row recorded (with the tenant's stored bytes) before its content becomes visible, and the
//! collector of content no row references.

use std::time::SystemTime;

use serde_json::json;

use super::{TicketCaller, load};
use crate::db::tickets::AttachmentRow;
use crate::db::{self, DbConnection};
use crate::domain::event::EventType;
use crate::domain::ids::{AccountId, AttachmentId, TicketId};
use crate::service::definitions::DefinitionCache;
use crate::service::error::ServiceError;
use crate::service::events;
use crate::service::platform::{Cap, cap_room, check_cap_adding};
use crate::storage::{BlobStore, StagedBlob, StorageError};

/// Hashes asked of the database at once by the collector.
const GC_BATCH: usize = 500;
/// Most content files the collector looks at in one pass; the rest waits for the next pass.
const GC_PASS_LIMIT: usize = 20_000;

pub fn attachments(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: TicketId,
    after: Option<AttachmentId>,
    limit: i64,
) -> Result<Vec<AttachmentRow>, ServiceError> {
    load(conn, defs, caller, id)?;
    Ok(db::tickets::attachments(
        conn,
        &caller.scope,
        id,
        caller.audience.is_staff(),
        after,
        limit,
    )?)
}

/// An attachment the caller may see: its ticket must be visible, and internal attachments
/// are staff-only. Anything else is 404.
pub fn find_attachment(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    id: AttachmentId,
) -> Result<AttachmentRow, ServiceError> {
    let row =
        db::tickets::find_attachment(conn, &caller.scope, id)?.ok_or(ServiceError::NotFound)?;
    load(conn, defs, caller, row.ticket_id)?;
    if row.internal && !caller.audience.is_staff() {
        return Err(ServiceError::NotFound);
    }
    Ok(row)
}

/// 403 unless the caller may attach to a ticket it sees (`internal` ones: staff only).
pub fn check_attach_right(caller: &TicketCaller, internal: bool) -> Result<(), ServiceError> {
    caller.require_writer()?;
    if internal && !caller.audience.is_staff() {
        return Err(ServiceError::Forbidden(
            "Only staff add internal attachments.".to_owned(),
        ));
    }
    Ok(())
}

/// The name of the plan's storage cap, as quota problems name it.
pub const STORAGE_CAP: &str = "max_stored_bytes";

/// Room left under the plan's storage cap.
#[derive(Debug, Clone, Copy)]
pub struct StorageRoom {
    /// Bytes the account may still store.
    pub left: u64,
    /// The plan's `max_stored_bytes`.
    pub cap: u64,
}

/// Checks everything an upload can be refused for before a byte of it is read: the ticket
/// (404 when the caller cannot see it), the right to attach (`internal` as far as known
/// yet), and room under the plan's storage cap. Returns the room (`None`: no cap), to bound
/// the upload by.
pub fn prepare_upload(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    ticket: TicketId,
    internal: bool,
) -> Result<Option<StorageRoom>, ServiceError> {
    load(conn, defs, caller, ticket)?;
    check_attach_right(caller, internal)?;
    let account = account_of(conn, caller)?;
    let Some((left, cap)) = cap_room(conn, account, Cap::StoredBytes)? else {
        return Ok(None);
    };
    if left == 0 {
        // Refused now rather than after the upload: the cap is reached whatever the size.
        return Err(ServiceError::QuotaExceeded {
            cap: STORAGE_CAP,
            limit: cap,
        });
    }
    Ok(Some(StorageRoom {
        left: u64::try_from(left).unwrap_or(0),
        cap: u64::try_from(cap).unwrap_or(0),
    }))
}

/// Records an uploaded attachment and makes its staged content visible, in one transaction:
/// the rights again (the ticket may have changed while the body was read), the storage cap
/// checked and the tenant's stored bytes raised under the account lock (two uploads cannot
/// both take the last room), the row, and only then the content. Any refusal drops `staged`,
/// which removes the temp file; a failed commit after the content was placed leaves it
/// unreferenced, for the collector.
pub fn add_attachment(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    caller: &TicketCaller,
    row: AttachmentRow,
    staged: Box<dyn StagedBlob>,
) -> Result<AttachmentRow, ServiceError> {
    let ticket = load(conn, defs, caller, row.ticket_id)?;
    check_attach_right(caller, row.internal)?;
    let account = account_of(conn, caller)?;
    db::platform::lock_account(conn, account)?;
    check_cap_adding(conn, account, Cap::StoredBytes, row.size)?;
    db::tickets::insert_attachment(conn, &caller.scope, &row)?;
    db::usage::add_stored_bytes(conn, &caller.scope, row.size)?;
    let attachment = json!({
        "id": row.id,
        "ticket_id": row.ticket_id,
        "file_name": row.file_name,
        "content_type": row.content_type,
        "size": row.size,
        "sha256": row.sha256,
        "internal": row.internal,
        "uploaded_by": row.uploader_name,
        "created_at": row.created_at.0,
        "content_url": format!("/api/v1/attachments/{}/content", row.id),
    });
    events::ticket_activity(
        conn,
        &caller.scope,
        &caller.actor,
        row.created_at.0,
        &ticket.summary(),
        EventType::TicketAttachmentAdded,
        ("attachment", attachment),
        !row.internal,
    )?;
    staged
        .commit()
        .map_err(|e| ServiceError::internal(format!("attachment store: {e}")))?;
    Ok(row)
}

fn account_of(conn: &mut DbConnection, caller: &TicketCaller) -> Result<AccountId, ServiceError> {
    db::platform::find_tenant(conn, caller.scope.tenant_id())?
        .map(|tenant| tenant.account_id)
        .ok_or(ServiceError::NotFound)
}

/// What one pass of the collector removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlobCollection {
    pub contents: usize,
    pub uploads: usize,
}

/// Removes content no attachment row references and temp uploads, both only when untouched
/// since `before` (now minus the grace period).
///
/// Safe under concurrent uploads of the same content: an upload commits its content (placing
/// it, or refreshing the mtime of the copy already there) under the store's lock *before* its
/// row commits, and the collector re-checks the mtime under that lock after asking the
/// database. So either the upload's refresh came first (the re-check sees fresh content and
/// keeps it), or the removal came first (the upload finds nothing and places its own copy).
/// Content whose row committed is referenced and kept. The one assumption: an upload's
/// transaction ends within the grace period after its commit of the content.
pub fn collect_blobs(
    conn: &mut DbConnection,
    store: &dyn BlobStore,
    before: SystemTime,
) -> Result<BlobCollection, ServiceError> {
    let storage = |e: StorageError| ServiceError::internal(format!("attachment store: {e}"));
    let mut removed = BlobCollection {
        uploads: store.remove_stale_uploads(before).map_err(storage)?,
        ..BlobCollection::default()
    };
    let candidates = store
        .stale_contents(before, GC_PASS_LIMIT)
        .map_err(storage)?;
    for batch in candidates.chunks(GC_BATCH) {
        let referenced = db::tickets::referenced_contents(conn, batch)?;
        for hash in batch.iter().filter(|h| !referenced.contains(*h)) {
            if store.remove_if_stale(hash, before).map_err(storage)? {
                removed.contents += 1;
            }
        }
    }
    Ok(removed)
}
