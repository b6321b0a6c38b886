//! A tenant's directory: users, groups, organizations and API keys.

mod api_keys;
mod groups;
mod organizations;
mod users;

pub use api_keys::*;
pub use groups::*;
pub use organizations::*;
pub use users::*;

use crate::api::error::ApiError;
use crate::domain::identity::{Role, RoleSet};

/// Who may read the directory: everyone who works inside the tenant (partners and requesters
/// do not see other users).
const DIRECTORY_READERS: &[Role] = &[
    Role::TenantAdmin,
    Role::Auditor,
    Role::ProcessManager,
    Role::Agent,
];
const ADMINS: &[Role] = &[Role::TenantAdmin];
const AUDIT_READERS: &[Role] = &[Role::TenantAdmin, Role::Auditor];

fn roles_of(names: &[Role], field: &str) -> Result<RoleSet, ApiError> {
    RoleSet::new(names.iter().copied())
        .ok_or_else(|| ApiError::validation(field, "required", "needs at least one role"))
}
