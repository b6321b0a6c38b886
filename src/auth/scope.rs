//! The tenant a request acts in. Only this module can make one, and only from a verified
//! credential; every query on a tenant-owned table in `crate::db` takes it first and filters or
//! stamps rows with its tenant. So forgetting the tenant in a query is not possible: there is
//! no other way to name a tenant's rows.

use crate::domain::ids::TenantId;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TenantScope {
    tenant_id: TenantId,
}

impl TenantScope {
    pub(in crate::auth) fn new(tenant_id: TenantId) -> Self {
        Self { tenant_id }
    }

    /// The platform's own rows (operator refresh tokens and audit entries).
    pub(in crate::auth) fn platform() -> Self {
        Self {
            tenant_id: TenantId::PLATFORM,
        }
    }

    pub fn tenant_id(&self) -> TenantId {
        self.tenant_id
    }
}

/// For code that provisions a tenant it has just created (the operator's tenant creation):
/// the only other way to obtain a scope, and it needs the platform operator's principal.
pub(crate) fn for_new_tenant(
    _operator: &super::OperatorPrincipal,
    tenant_id: TenantId,
) -> TenantScope {
    TenantScope::new(tenant_id)
}

/// For the platform operator reading one tenant's figures (its monthly report): a scope of
/// that tenant, obtainable only with the operator's principal.
pub(crate) fn for_operator(
    _operator: &super::OperatorPrincipal,
    tenant_id: TenantId,
) -> TenantScope {
    TenantScope::new(tenant_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `db::of_scope` refuses a row struct of another tenant than the scope's, in release
    /// builds too (the check lives here: `db` may not name `auth::job_scope`).
    #[test]
    fn a_row_of_another_tenant_is_refused() {
        let (a, b) = (
            TenantId(uuid::Uuid::now_v7()),
            TenantId(uuid::Uuid::now_v7()),
        );
        let scope = TenantScope::new(a);
        assert!(crate::db::of_scope(&scope, a).is_ok());
        assert!(crate::db::of_scope(&scope, b).is_err());
    }
}
