//! Ticket attachments: multipart upload (rights and storage cap checked first, then streamed
//! into a temp file under the size limit and stored under its hash once recorded), metadata
//! listing, and download with the stored content type.

use actix_multipart::Multipart;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::AttachmentRow;
use crate::domain::ids::{AttachmentId, TicketId};
use crate::service::tickets::{self as svc, TicketCaller};
use crate::storage::{BlobWriter, StagedBlob, StorageError};

/// Longest stored file name, in characters.
const MAX_FILE_NAME_CHARS: usize = 255;
/// Bytes read from the store per chunk of a download.
const DOWNLOAD_CHUNK: usize = 64 * 1024;

#[derive(Debug, Serialize, ToSchema)]
pub struct Attachment {
    pub id: AttachmentId,
    pub ticket_id: TicketId,
    pub file_name: String,
    pub content_type: String,
    pub size: i64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Internal attachments are never shown to requesters or partners.
    pub internal: bool,
    pub uploaded_by: String,
    pub created_at: DateTime<Utc>,
    /// Where to download the content.
    pub content_url: String,
}

impl From<AttachmentRow> for Attachment {
    fn from(r: AttachmentRow) -> Self {
        Self {
            content_url: format!("/api/v1/attachments/{}/content", r.id),
            id: r.id,
            ticket_id: r.ticket_id,
            file_name: r.file_name,
            content_type: r.content_type,
            size: r.size,
            sha256: r.sha256,
            internal: r.internal,
            uploaded_by: r.uploader_name,
            created_at: r.created_at.0,
        }
    }
}

/// The upload form, for the document: an optional `internal` part, then the `file` part.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the multipart form; parts are read by hand"
)]
pub struct AttachmentUpload {
    /// `true` for an internal attachment (staff only). Send it before `file` (or as the
    /// query parameter) so that a refusal comes before the content is read.
    internal: Option<bool>,
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// `true` for an internal attachment (staff only), checked before the body is read. A
    /// form part `internal` must agree with it.
    pub internal: Option<bool>,
}

/// What bounds an upload: the size limit, or the room left under the plan's storage cap.
#[derive(Debug, Clone, Copy)]
struct UploadLimit {
    bytes: u64,
    /// `Some(cap)` when the bound is the storage cap rather than the size limit.
    storage_cap: Option<u64>,
}

impl UploadLimit {
    fn new(max_attachment_bytes: u64, room: Option<svc::StorageRoom>) -> Self {
        match room {
            Some(room) if room.left < max_attachment_bytes => Self {
                bytes: room.left,
                storage_cap: Some(room.cap),
            },
            _ => Self {
                bytes: max_attachment_bytes,
                storage_cap: None,
            },
        }
    }

    fn error(self, e: StorageError) -> ApiError {
        match (e, self.storage_cap) {
            (StorageError::TooLarge { .. }, Some(cap)) => ApiError::QuotaExceeded {
                cap: svc::STORAGE_CAP,
                limit: i64::try_from(cap).unwrap_or(i64::MAX),
            },
            (StorageError::TooLarge { .. }, None) => ApiError::PayloadTooLarge {
                limit: usize::try_from(self.bytes).unwrap_or(usize::MAX),
            },
            (other, _) => ApiError::Internal(format!("attachment store: {other}")),
        }
    }
}

/// A file name safe to store and send back: the last path component, no control characters.
fn clean_file_name(raw: Option<&str>) -> String {
    let base = raw
        .unwrap_or("")
        .rsplit(['/', '\\'])
        .next()
        .unwrap_or("")
        .chars()
        .filter(|c| !c.is_control() && *c != '"')
        .take(MAX_FILE_NAME_CHARS)
        .collect::<String>();
    let trimmed = base.trim();
    if trimmed.is_empty() || trimmed == "." || trimmed == ".." {
        "attachment".to_owned()
    } else {
        trimmed.to_owned()
    }
}

async fn write_chunk(
    writer: Box<dyn BlobWriter>,
    chunk: web::Bytes,
) -> Result<Box<dyn BlobWriter>, StorageError> {
    web::block(move || {
        let mut writer = writer;
        writer.write(&chunk).map(|()| writer)
    })
    .await
    .map_err(|_| StorageError::Io(std::io::Error::other("upload cancelled")))?
}

/// A file part read whole into a temp file: complete, hashed, not yet visible. Dropping it
/// (any refusal, a broken-off body, a failed transaction) removes the temp file.
struct StagedFile {
    staged: Box<dyn StagedBlob>,
    file_name: String,
    content_type: String,
}

async fn read_file_part(
    state: &web::Data<AppState>,
    limit: UploadLimit,
    mut part: actix_multipart::Field,
) -> Result<StagedFile, ApiError> {
    let file_name = clean_file_name(part.content_disposition().and_then(|d| d.get_filename()));
    let content_type = part
        .content_type()
        .map(|m| m.essence_str().to_owned())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let store = state.blobs.clone();
    let mut writer = web::block(move || store.writer(limit.bytes))
        .await
        .map_err(|_| ApiError::Internal("upload cancelled".to_owned()))?
        .map_err(|e| limit.error(e))?;
    while let Some(chunk) = part.next().await {
        let chunk = chunk.map_err(|e| ApiError::Malformed(format!("The upload broke off: {e}")))?;
        writer = write_chunk(writer, chunk)
            .await
            .map_err(|e| limit.error(e))?;
    }
    let staged = web::block(move || writer.stage())
        .await
        .map_err(|_| ApiError::Internal("upload cancelled".to_owned()))?
        .map_err(|e| limit.error(e))?;
    Ok(StagedFile {
        staged,
        file_name,
        content_type,
    })
}

async fn read_flag(mut part: actix_multipart::Field) -> Result<bool, ApiError> {
    let invalid = || ApiError::validation("internal", "invalid", "true or false");
    let mut text = Vec::new();
    while let Some(chunk) = part.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::Malformed(format!("The form cannot be read: {e}")))?;
        if text.len() + chunk.len() > 16 {
            return Err(invalid());
        }
        text.extend_from_slice(&chunk);
    }
    match std::str::from_utf8(&text).map(str::trim) {
        Ok("true") => Ok(true),
        Ok("false") => Ok(false),
        _ => Err(invalid()),
    }
}

/// Reads the form. The ticket, the right to attach and the storage room were checked before;
/// an `internal` part before `file` is checked at once, one after it before anything is
/// recorded (the staged file is dropped on refusal).
async fn read_form(
    state: &web::Data<AppState>,
    caller: &TicketCaller,
    declared: Option<bool>,
    limit: UploadLimit,
    mut form: Multipart,
) -> Result<(StagedFile, bool), ApiError> {
    let mut file: Option<StagedFile> = None;
    let mut internal = declared;
    while let Some(part) = form.next().await {
        let part =
            part.map_err(|e| ApiError::Malformed(format!("The form cannot be read: {e}")))?;
        let name = part.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" if file.is_none() => file = Some(read_file_part(state, limit, part).await?),
            "internal" => {
                let flag = read_flag(part).await?;
                if internal.is_some_and(|known| known != flag) {
                    return Err(ApiError::validation(
                        "internal",
                        "conflict",
                        "the form part and the query parameter disagree",
                    ));
                }
                svc::check_attach_right(caller, flag)?;
                internal = Some(flag);
            }
            other => {
                return Err(ApiError::validation(
                    other,
                    "unknown_part",
                    "the form has parts `file` and `internal` only",
                ));
            }
        }
    }
    let file = file.ok_or_else(|| {
        ApiError::validation("file", "required", "send the file as a part named `file`")
    })?;
    Ok((file, internal.unwrap_or(false)))
}

/// Uploads an attachment (`multipart/form-data`: an optional `internal` part and a `file`
/// part).
///
/// Nothing of the body is read before the ticket (404 when the caller cannot see it), the
/// right to attach (403: auditors; internal attachments are for staff) and the plan's storage
/// cap are checked. `internal` may be given as a query parameter or as a form part; sent
/// after `file`, it is checked once the content has been read into a temporary file, which a
/// refusal removes. Content is stored under its hash only when the attachment is recorded:
/// beyond `STAGEFLOW_MAX_ATTACHMENT_BYTES` it is 413, beyond the room left under the plan's
/// `max_stored_bytes` it is 409 `/problems/quota-exceeded` (`cap` = `max_stored_bytes`), and
/// nothing is kept either way.
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_attachment", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), UploadParams),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Attachment, headers(("Location" = String))),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 409, response = super::problems::Conflict),
        (status = 413, response = super::problems::PayloadTooLarge),
        (status = 415, response = super::problems::UnsupportedMediaType),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[post("/tickets/{ticket_id}/attachments")]
pub async fn create_ticket_attachment(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    params: web::Query<UploadParams>,
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let caller = TicketCaller::of(&principal)?;
    let (id, declared) = (id.into_inner(), params.internal);
    let (s, c) = (state.clone(), caller.clone());
    let room = state
        .db
        .read(move |conn| {
            svc::prepare_upload(conn, &s.definitions, &c, id, declared.unwrap_or(false))
        })
        .await?;
    let limit = UploadLimit::new(state.config.max_attachment_bytes, room);
    let (file, internal) = read_form(&state, &caller, declared, limit, form).await?;
    let now = state.clock.now();
    let s = state.clone();
    let row = state
        .db
        .write(move |conn| {
            let blob = file.staged.blob().clone();
            let row = AttachmentRow {
                tenant_id: caller.scope.tenant_id(),
                id: AttachmentId::new_at(now),
                ticket_id: id,
                file_name: file.file_name,
                content_type: file.content_type,
                size: i64::try_from(blob.size).unwrap_or(i64::MAX),
                sha256: blob.sha256,
                internal,
                uploaded_by: caller.entity(),
                uploader_name: caller.actor.name.clone(),
                created_at: now.into(),
            };
            svc::add_attachment(conn, &s.definitions, &caller, row, file.staged)
        })
        .await?;
    let location = format!("/api/v1/attachments/{}/content", row.id);
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, location))
        .json(Attachment::from(row)))
}

/// Attachments of a ticket, oldest first (internal ones for staff only).
#[utoipa::path(
    tag = "tickets", operation_id = "list_ticket_attachments", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path), PageParams),
    responses(
        (status = 200, description = "A page of attachments", body = Page<Attachment>),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
        (status = 422, response = super::problems::Unprocessable),
    )
)]
#[get("/tickets/{ticket_id}/attachments")]
pub async fn list_ticket_attachments(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<TicketId>,
    page: web::Query<PageParams>,
) -> Result<web::Json<Page<Attachment>>, ApiError> {
    let caller = TicketCaller::of(&principal)?;
    let request = page.parse()?;
    let id = id.into_inner();
    let s = state.clone();
    let (after, limit) = (request.after.map(AttachmentId), request.limit + 1);
    let rows = state
        .db
        .read(move |conn| svc::attachments(conn, &s.definitions, &caller, id, after, limit))
        .await?;
    Ok(web::Json(Page::from_rows(
        rows,
        request.limit,
        |r| r.id.0,
        Attachment::from,
    )))
}

/// The content of an attachment, with its stored content type and file name. An attachment
/// of a ticket the caller cannot see is 404.
#[utoipa::path(
    tag = "tickets", operation_id = "get_attachment_content", security(("bearer" = [])),
    params(("attachment_id" = AttachmentId, Path)),
    responses(
        (status = 200, description = "The content, served with the content type it was uploaded with",
         content(("application/octet-stream"), ("*/*")),
         headers(("Content-Disposition" = String, description = "`attachment` with the stored file name"), ("ETag" = String))),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
    )
)]
#[get("/attachments/{attachment_id}/content")]
pub async fn get_attachment_content(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<AttachmentId>,
) -> Result<HttpResponse, ApiError> {
    let caller = TicketCaller::of(&principal)?;
    let id = id.into_inner();
    let s = state.clone();
    let row = state
        .db
        .read(move |conn| svc::find_attachment(conn, &s.definitions, &caller, id))
        .await?;
    let store = state.blobs.clone();
    let hash = row.sha256.clone();
    let reader = web::block(move || store.open(&hash))
        .await
        .map_err(|_| ApiError::Internal("download cancelled".to_owned()))?
        .map_err(|e| ApiError::Internal(format!("attachment content missing: {e}")))?;
    let stream = futures_util::stream::unfold(Some(reader), |reader| async move {
        let mut reader = reader?;
        let result = web::block(move || {
            let mut buf = vec![0u8; DOWNLOAD_CHUNK];
            let n = std::io::Read::read(&mut reader, &mut buf)?;
            buf.truncate(n);
            Ok::<_, std::io::Error>((buf, reader))
        })
        .await;
        match result {
            Ok(Ok((buf, _))) if buf.is_empty() => None,
            Ok(Ok((buf, reader))) => {
                Some((Ok::<_, std::io::Error>(web::Bytes::from(buf)), Some(reader)))
            }
            Ok(Err(e)) => Some((Err(e), None)),
            Err(_) => Some((Err(std::io::Error::other("download cancelled")), None)),
        }
    });
    let disposition = ContentDisposition {
        disposition: DispositionType::Attachment,
        parameters: vec![
            DispositionParam::Filename(row.file_name.chars().filter(char::is_ascii).collect()),
            DispositionParam::FilenameExt(ExtendedValue {
                charset: Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: row.file_name.clone().into_bytes(),
            }),
        ],
    };
    let content_type = row
        .content_type
        .parse::<actix_web::mime::Mime>()
        .unwrap_or(actix_web::mime::APPLICATION_OCTET_STREAM);
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(disposition)
        .insert_header((header::ETAG, format!("\"{}\"", row.sha256)))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .no_chunking(u64::try_from(row.size).unwrap_or(0))
        .streaming(stream))
}

#[cfg(test)]
mod tests {
    use super::clean_file_name;

    #[test]
    fn file_names_lose_paths_and_control_characters() {
        assert_eq!(clean_file_name(Some("../../etc/passwd")), "passwd");
        assert_eq!(clean_file_name(Some("C:\\temp\\報告書.pdf")), "報告書.pdf");
        assert_eq!(clean_file_name(Some("a\u{0}b\nc.txt")), "abc.txt");
        assert_eq!(clean_file_name(Some("..")), "attachment");
        assert_eq!(clean_file_name(None), "attachment");
    }
}
