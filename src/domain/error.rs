//! A validation result: which input is wrong and why. Produced by parsing and by the use cases;
//! the API layer renders a list of them as the `errors` of a validation problem.

use serde::Serialize;

/// One offending input of a validation problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Where the problem is, as a dotted path into the request body (`body` for the whole).
    pub field: String,
    /// Stable machine-readable code (`required`, `too_short`, `invalid_type`, ...).
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl FieldError {
    pub fn new(
        field: impl Into<String>,
        code: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            field: field.into(),
            code: code.into(),
            message: message.into(),
        }
    }
}
