//! Ticket attachments: multipart upload (streamed to the content store under the size
//! limit), metadata listing, and download with the stored content type.

use actix_multipart::Multipart;
use actix_web::http::header::{
    self, Charset, ContentDisposition, DispositionParam, DispositionType, ExtendedValue,
};
use actix_web::{HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use utoipa::ToSchema;

use super::common::{Page, PageParams};
use crate::api::error::ApiError;
use crate::api::state::AppState;
use crate::auth::Principal;
use crate::db::tickets::AttachmentRow;
use crate::domain::ids::{AttachmentId, TicketId};
use crate::service::tickets::{self as svc, TicketCaller};
use crate::storage::{BlobRef, BlobWriter, StorageError};

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

/// The upload form, for the document: `file` (one file part) and optional `internal`.
#[derive(Debug, ToSchema)]
#[expect(
    dead_code,
    reason = "documents the multipart form; parts are read by hand"
)]
pub struct AttachmentUpload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
    /// `true` for an internal attachment (staff only).
    internal: Option<bool>,
}

fn storage_error(e: StorageError, limit: u64) -> ApiError {
    match e {
        StorageError::TooLarge { .. } => ApiError::PayloadTooLarge {
            limit: usize::try_from(limit).unwrap_or(usize::MAX),
        },
        other => ApiError::Internal(format!("attachment store: {other}")),
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

struct Upload {
    blob: BlobRef,
    file_name: String,
    content_type: String,
    internal: bool,
}

async fn read_form(state: &web::Data<AppState>, mut form: Multipart) -> Result<Upload, ApiError> {
    let limit = state.config.max_attachment_bytes;
    let mut file: Option<(BlobRef, String, String)> = None;
    let mut internal = false;
    while let Some(part) = form.next().await {
        let mut part =
            part.map_err(|e| ApiError::Malformed(format!("The form cannot be read: {e}")))?;
        let name = part.name().unwrap_or("").to_owned();
        match name.as_str() {
            "file" if file.is_none() => {
                let file_name =
                    clean_file_name(part.content_disposition().and_then(|d| d.get_filename()));
                let content_type = part
                    .content_type()
                    .map(|m| m.essence_str().to_owned())
                    .unwrap_or_else(|| "application/octet-stream".to_owned());
                let store = state.blobs.clone();
                let mut writer = web::block(move || store.writer(limit))
                    .await
                    .map_err(|_| ApiError::Internal("upload cancelled".to_owned()))?
                    .map_err(|e| storage_error(e, limit))?;
                while let Some(chunk) = part.next().await {
                    let chunk = chunk
                        .map_err(|e| ApiError::Malformed(format!("The upload broke off: {e}")))?;
                    writer = write_chunk(writer, chunk)
                        .await
                        .map_err(|e| storage_error(e, limit))?;
                }
                let blob = web::block(move || writer.finish())
                    .await
                    .map_err(|_| ApiError::Internal("upload cancelled".to_owned()))?
                    .map_err(|e| storage_error(e, limit))?;
                file = Some((blob, file_name, content_type));
            }
            "internal" => {
                let mut text = Vec::new();
                while let Some(chunk) = part.next().await {
                    let chunk = chunk.map_err(|e| {
                        ApiError::Malformed(format!("The form cannot be read: {e}"))
                    })?;
                    if text.len() + chunk.len() > 16 {
                        return Err(ApiError::validation("internal", "invalid", "true or false"));
                    }
                    text.extend_from_slice(&chunk);
                }
                internal = match std::str::from_utf8(&text).map(str::trim) {
                    Ok("true") => true,
                    Ok("false") => false,
                    _ => return Err(ApiError::validation("internal", "invalid", "true or false")),
                };
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
    let (blob, file_name, content_type) = file.ok_or_else(|| {
        ApiError::validation("file", "required", "send the file as a part named `file`")
    })?;
    Ok(Upload {
        blob,
        file_name,
        content_type,
        internal,
    })
}

/// Uploads an attachment (`multipart/form-data`: a `file` part and an optional `internal`
/// part). Content beyond `STAGEFLOW_MAX_ATTACHMENT_BYTES` is refused with 413 and nothing is
/// kept. Requesters and partners may attach to tickets they can see (not internally).
#[utoipa::path(
    tag = "tickets", operation_id = "create_ticket_attachment", security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path)),
    request_body(content = AttachmentUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, description = "Stored", body = Attachment),
        (status = 400, response = super::problems::BadRequest),
        (status = 401, response = super::problems::Unauthorized),
        (status = 403, response = super::problems::Forbidden),
        (status = 404, response = super::problems::NotFound),
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
    form: Multipart,
) -> Result<HttpResponse, ApiError> {
    let caller = TicketCaller::of(&principal)?;
    let id = id.into_inner();
    // Refuse before reading the body when the ticket is not the caller's to see.
    let (s, c) = (state.clone(), caller.clone());
    state
        .db
        .read(move |conn| svc::load(conn, &s.definitions, &c, id).map(|_| ()))
        .await?;
    let upload = read_form(&state, form).await?;
    let now = state.clock.now();
    let s = state.clone();
    let row = state
        .db
        .write(move |conn| {
            let row = AttachmentRow {
                tenant_id: caller.scope.tenant_id(),
                id: AttachmentId::new_at(now),
                ticket_id: id,
                file_name: upload.file_name,
                content_type: upload.content_type,
                size: i64::try_from(upload.blob.size).unwrap_or(i64::MAX),
                sha256: upload.blob.sha256,
                internal: upload.internal,
                uploaded_by: caller.entity(),
                uploader_name: caller.actor.name.clone(),
                created_at: now.into(),
            };
            svc::add_attachment(conn, &s.definitions, &caller, row)
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
        (status = 200, description = "The content", content_type = "application/octet-stream",
         headers(("Content-Disposition" = String), ("ETag" = String))),
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
