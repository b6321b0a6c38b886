//! One error type for the whole API, rendered as RFC 9457 `application/problem+json`.
//!
//! Clients see a stable `type`, a title, the status and a detail written for them; internal error
//! text is logged and never sent. The use cases' [`ServiceError`] and the credential checks'
//! [`AuthError`] become problems here and nowhere else: this module holds the table from each
//! [`ConflictKind`] to its `/problems/…` type.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::AuthError;
use crate::db::DbError;
use crate::service::error::{ConflictKind, ServiceError};

pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

pub use crate::domain::error::FieldError;

// The OpenAPI shape of `FieldError`: the domain type knows no OpenAPI.
/// One offending input of a validation problem.
#[derive(ToSchema)]
#[schema(as = FieldError)]
#[schema(example = json!({"field": "fields.impact", "code": "required", "message": "is required"}))]
#[expect(dead_code, reason = "documentation only: the schema of FieldError")]
pub struct FieldErrorSchema {
    /// Where the problem is, as a dotted path into the request body (`body` for the whole).
    field: String,
    /// Stable machine-readable code (`required`, `too_short`, `invalid_type`, ...).
    code: String,
    /// Human-readable explanation.
    message: String,
}

/// An RFC 9457 problem document: the body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({
    "type": "/problems/not-found",
    "title": "Not Found",
    "status": 404,
    "detail": "The requested resource does not exist."
}))]
pub struct Problem {
    /// Stable URI-like code of the problem kind, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Present on validation problems: one entry per offending input.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    #[schema(value_type = Vec<FieldErrorSchema>)]
    pub errors: Vec<FieldError>,
    /// Present on quota problems: the plan cap that was reached (`max_users`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cap: Option<String>,
    /// Present on quota problems: the cap's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<i64>,
    /// The request's id, as in its `X-Request-Id` response header and the server's log lines.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("malformed request: {0}")]
    Malformed(String),
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed { allow: Vec<actix_web::http::Method> },
    #[error("conflict: {detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("quota exceeded: {cap}")]
    QuotaExceeded { cap: &'static str, limit: i64 },
    #[error("payload too large (limit {limit} bytes)")]
    PayloadTooLarge { limit: usize },
    #[error("unsupported media type: {0}")]
    UnsupportedMediaType(String),
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("precondition required")]
    PreconditionRequired,
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    /// No capacity for the request now (the password-hashing queue is full); 503 with
    /// `Retry-After`.
    #[error("busy")]
    Busy { retry_after_seconds: u64 },
    /// Anything the client cannot act on. The text is logged, never sent.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    pub fn duplicate(detail: impl Into<String>) -> Self {
        Self::Conflict {
            code: "/problems/duplicate",
            detail: detail.into(),
        }
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }

    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }

    /// The problem document this error is answered with.
    pub fn problem(&self) -> Problem {
        let status = self.status_code();
        let (kind, detail) = match self {
            Self::Malformed(detail) => ("/problems/malformed-request", detail.clone()),
            Self::Unauthorized => (
                "/problems/unauthorized",
                "Missing, invalid or expired credentials.".to_owned(),
            ),
            Self::Forbidden(detail) => ("/problems/forbidden", detail.clone()),
            Self::NotFound => (
                "/problems/not-found",
                "The requested resource does not exist.".to_owned(),
            ),
            Self::MethodNotAllowed { allow } => (
                "/problems/method-not-allowed",
                format!(
                    "This resource supports: {}.",
                    allow
                        .iter()
                        .map(|m| m.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            Self::Conflict { code, detail } => (*code, detail.clone()),
            Self::QuotaExceeded { cap, limit } => (
                "/problems/quota-exceeded",
                format!(
                    "The account's plan allows {cap} = {limit}, and that is reached; nothing was \
                     changed. Raise the plan's cap or free capacity first."
                ),
            ),
            Self::PreconditionFailed => (
                "/problems/precondition-failed",
                "The resource has changed since the version named in If-Match.".to_owned(),
            ),
            Self::PayloadTooLarge { limit } => (
                "/problems/payload-too-large",
                if *limit == 0 {
                    "The request body is too large.".to_owned()
                } else {
                    format!("The request body exceeds the limit of {limit} bytes.")
                },
            ),
            Self::UnsupportedMediaType(detail) => {
                ("/problems/unsupported-media-type", detail.clone())
            }
            Self::Validation(_) => (
                "/problems/validation",
                "The request content is not valid; see errors.".to_owned(),
            ),
            Self::PreconditionRequired => (
                "/problems/precondition-required",
                "This request needs an If-Match header.".to_owned(),
            ),
            Self::RateLimited {
                retry_after_seconds,
            } => (
                "/problems/rate-limited",
                format!("Too many requests; retry after {retry_after_seconds} seconds."),
            ),
            Self::Unavailable(_) => (
                "/problems/unavailable",
                "The service cannot answer right now; try again shortly.".to_owned(),
            ),
            Self::Busy {
                retry_after_seconds,
            } => (
                "/problems/unavailable",
                format!("The server is busy; retry after {retry_after_seconds} seconds."),
            ),
            Self::Internal(_) => (
                "/problems/internal",
                "An unexpected error occurred; it has been logged.".to_owned(),
            ),
        };
        Problem {
            kind: kind.to_owned(),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => errors.clone(),
                _ => Vec::new(),
            },
            cap: match self {
                Self::QuotaExceeded { cap, .. } => Some((*cap).to_owned()),
                _ => None,
            },
            limit: match self {
                Self::QuotaExceeded { limit, .. } => Some(*limit),
                _ => None,
            },
            instance: super::request_id::current(),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::Malformed(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict { .. } | Self::QuotaExceeded { .. } => StatusCode::CONFLICT,
            Self::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PreconditionRequired => StatusCode::PRECONDITION_REQUIRED,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            Self::Internal(context) => log::error!(
                "request {}: internal error: {context}",
                super::request_id::current().unwrap_or_default()
            ),
            Self::Unavailable(context) => log::warn!(
                "request {}: unavailable: {context}",
                super::request_id::current().unwrap_or_default()
            ),
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        response.insert_header((header::CONTENT_TYPE, PROBLEM_CONTENT_TYPE));
        match self {
            Self::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            Self::MethodNotAllowed { allow } => {
                let allow = allow
                    .iter()
                    .map(|m| m.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                response.insert_header((header::ALLOW, allow));
            }
            Self::RateLimited {
                retry_after_seconds,
            }
            | Self::Busy {
                retry_after_seconds,
            } => {
                response.insert_header((header::RETRY_AFTER, retry_after_seconds.to_string()));
            }
            _ => {}
        }
        response.json(self.problem())
    }
}

impl From<DbError> for ApiError {
    fn from(error: DbError) -> Self {
        match error {
            DbError::Pool(_) | DbError::Connect(_) | DbError::CallerChanged => {
                Self::Unavailable(error.to_string())
            }
            DbError::Query(query) => query.into(),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// The problem type of each conflict a use case reports.
fn conflict_type(kind: ConflictKind) -> &'static str {
    match kind {
        ConflictKind::Duplicate => "/problems/duplicate",
        ConflictKind::ActionFailed => "/problems/action-failed",
        ConflictKind::CalendarInUse => "/problems/calendar-in-use",
        ConflictKind::DefinitionItemInUse => "/problems/definition-item-in-use",
        ConflictKind::AlreadyInstalled => "/problems/already-installed",
        ConflictKind::AlreadyWithdrawn => "/problems/already-withdrawn",
        ConflictKind::DraftExists => "/problems/draft-exists",
        ConflictKind::ExportRequired => "/problems/export-required",
        ConflictKind::IdempotencyKeyInUse => "/problems/idempotency-key-in-use",
        ConflictKind::LibraryFieldInUse => "/problems/library-field-in-use",
        ConflictKind::LibraryInUse => "/problems/library-in-use",
        ConflictKind::LibraryWriteFailed => "/problems/library-write-failed",
        ConflictKind::MasterInUse => "/problems/master-in-use",
        ConflictKind::NotPublished => "/problems/not-published",
        ConflictKind::TemplatePublished => "/problems/template-published",
        ConflictKind::TicketClosed => "/problems/ticket-closed",
        ConflictKind::TooManyLinks => "/problems/too-many-links",
        ConflictKind::TransitionUnavailable => "/problems/transition-unavailable",
        ConflictKind::VersionPublished => "/problems/version-published",
    }
}

impl From<ServiceError> for ApiError {
    fn from(error: ServiceError) -> Self {
        match error {
            ServiceError::NotFound => Self::NotFound,
            ServiceError::Unauthorized => Self::Unauthorized,
            ServiceError::Forbidden(detail) => Self::Forbidden(detail),
            ServiceError::Conflict { kind, detail } => Self::Conflict {
                code: conflict_type(kind),
                detail,
            },
            ServiceError::PreconditionFailed => Self::PreconditionFailed,
            ServiceError::QuotaExceeded { cap, limit } => Self::QuotaExceeded { cap, limit },
            ServiceError::Validation(errors) => Self::Validation(errors),
            ServiceError::TooLarge { limit } => Self::PayloadTooLarge { limit },
            ServiceError::Unavailable(detail) => Self::Unavailable(detail),
            ServiceError::RateLimited {
                retry_after_seconds,
            } => Self::RateLimited {
                retry_after_seconds,
            },
            ServiceError::Busy {
                retry_after_seconds,
            } => Self::Busy {
                retry_after_seconds,
            },
            ServiceError::Internal(detail) => Self::Internal(detail),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        ServiceError::from(error).into()
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::NotFound,
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<validator::ValidationErrors> for ApiError {
    fn from(errors: validator::ValidationErrors) -> Self {
        let mut list = Vec::new();
        collect_validation_errors("", &errors, &mut list);
        list.sort_by(|a, b| a.field.cmp(&b.field));
        Self::Validation(list)
    }
}

fn collect_validation_errors(
    prefix: &str,
    errors: &validator::ValidationErrors,
    out: &mut Vec<FieldError>,
) {
    use validator::ValidationErrorsKind;
    for (field, kind) in errors.errors() {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        match kind {
            ValidationErrorsKind::Field(list) => {
                for error in list {
                    let message = error
                        .message
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_else(|| describe_validation_code(error));
                    out.push(FieldError::new(
                        path.clone(),
                        error.code.to_string(),
                        message,
                    ));
                }
            }
            ValidationErrorsKind::Struct(inner) => collect_validation_errors(&path, inner, out),
            ValidationErrorsKind::List(items) => {
                for (index, inner) in items {
                    collect_validation_errors(&format!("{path}.{index}"), inner, out);
                }
            }
        }
    }
}

fn describe_validation_code(error: &validator::ValidationError) -> String {
    let param = |name: &str| error.params.get(name).map(ToString::to_string);
    match error.code.as_ref() {
        "length" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be {min} to {max} characters long"),
            (Some(min), None) => format!("must be at least {min} characters long"),
            (None, Some(max)) => format!("must be at most {max} characters long"),
            _ => "has an invalid length".to_owned(),
        },
        "range" => match (param("min"), param("max")) {
            (Some(min), Some(max)) => format!("must be between {min} and {max}"),
            (Some(min), None) => format!("must be at least {min}"),
            (None, Some(max)) => format!("must be at most {max}"),
            _ => "is out of range".to_owned(),
        },
        "required" => "is required".to_owned(),
        other => format!("is invalid ({other})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_text_never_reaches_the_client() {
        let problem = ApiError::internal("connection refused to 10.0.0.5:5432").problem();
        assert_eq!(problem.status, 500);
        assert!(!problem.detail.contains("10.0.0.5"));
        assert_eq!(problem.kind, "/problems/internal");
    }

    #[test]
    fn validation_problem_lists_fields() {
        let problem = ApiError::validation("fields.impact", "required", "is required").problem();
        assert_eq!(problem.status, 422);
        assert_eq!(problem.errors.len(), 1);
        assert_eq!(problem.errors[0].field, "fields.impact");
    }
}
