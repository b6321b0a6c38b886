//! Typed ids (HOUSE-RULES rule 4). Each is a UUID v7 on the wire and in storage.

use crate::db::types::typed_id;

typed_id!(
    /// A platform operator account.
    OperatorId
);
