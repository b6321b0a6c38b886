//! The use cases' own error type. It names what went wrong in the terms of the use case; the
//! API layer alone (`crate::api::error`) turns it into a problem document with a problem
//! type and an HTTP status.

use crate::auth::AuthError;
use crate::db::DbError;
pub use crate::domain::error::FieldError;

/// Which conflict with the current state a use case ran into. One variant per conflict problem
/// the service layer raises; the API maps each to its own stable problem type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConflictKind {
    /// A unique name or key is taken.
    Duplicate,
    ActionFailed,
    /// A calendar an SLA policy still uses.
    CalendarInUse,
    /// A state or field of a draft that other parts of it still refer to.
    DefinitionItemInUse,
    AlreadyInstalled,
    /// An announcement withdrawn before.
    AlreadyWithdrawn,
    DraftExists,
    /// A tenant is deleted only after an export of it is done.
    ExportRequired,
    IdempotencyKeyInUse,
    LibraryFieldInUse,
    LibraryInUse,
    LibraryWriteFailed,
    MasterInUse,
    NotPublished,
    TemplatePublished,
    TicketClosed,
    TooManyLinks,
    TransitionUnavailable,
    VersionPublished,
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Missing, or not visible to the caller (another tenant's row answers the same).
    #[error("not found")]
    NotFound,
    /// No valid credential (a session use case refused it).
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("conflict ({kind:?}): {detail}")]
    Conflict { kind: ConflictKind, detail: String },
    /// The version the caller named (If-Match) is not the stored one.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("quota exceeded: {cap}")]
    QuotaExceeded { cap: &'static str, limit: i64 },
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    /// The request body is larger than this use case takes (bytes).
    #[error("larger than {limit} bytes")]
    TooLarge { limit: usize },
    /// The database cannot be reached right now.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Too many requests from this address or for this account.
    #[error("rate limited")]
    RateLimited { retry_after_seconds: u64 },
    /// The server has no capacity for this request now (the password-hashing queue is full).
    #[error("busy")]
    Busy { retry_after_seconds: u64 },
    /// Anything the caller cannot act on; the text is for the log only.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    pub fn conflict(kind: ConflictKind, detail: impl Into<String>) -> Self {
        Self::Conflict {
            kind,
            detail: detail.into(),
        }
    }

    pub fn duplicate(detail: impl Into<String>) -> Self {
        Self::conflict(ConflictKind::Duplicate, detail)
    }

    pub fn internal(context: impl std::fmt::Display) -> Self {
        Self::Internal(context.to_string())
    }

    pub fn validation(field: &str, code: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, code, message)])
    }
}

/// The optimistic-concurrency check of every update: the caller's If-Match version (if it sent
/// one) against the stored version.
pub fn check_version(expected: Option<i64>, actual: i64) -> Result<(), ServiceError> {
    match expected {
        Some(expected) if expected != actual => Err(ServiceError::PreconditionFailed),
        _ => Ok(()),
    }
}

impl From<DbError> for ServiceError {
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

impl From<diesel::result::Error> for ServiceError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            diesel::result::Error::NotFound => Self::NotFound,
            other => Self::Internal(format!("database: {other}")),
        }
    }
}

impl From<AuthError> for ServiceError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthorized => Self::Unauthorized,
            AuthError::Forbidden(detail) => Self::Forbidden(detail),
            AuthError::Validation(errors) => Self::Validation(errors),
            AuthError::Unavailable(detail) => Self::Unavailable(detail),
            AuthError::RateLimited {
                retry_after_seconds,
            } => Self::RateLimited {
                retry_after_seconds,
            },
            AuthError::Busy {
                retry_after_seconds,
            } => Self::Busy {
                retry_after_seconds,
            },
            AuthError::Internal(detail) => Self::Internal(detail),
        }
    }
}
