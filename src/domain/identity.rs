//! Roles, tenant slugs, time zones and organization kinds.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What a tenant user (or API key) may do. A user holds one or several.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Administers the tenant: users, groups, organizations, API keys, audit log.
    TenantAdmin,
    /// Maintains templates, masters and libraries.
    ProcessManager,
    /// Works on tickets.
    Agent,
    /// Files tickets and follows their own.
    Requester,
    /// Member of an external organization; sees only what is shared with it.
    Partner,
    /// Reads everything, changes nothing (including the audit log).
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::TenantAdmin,
        Role::ProcessManager,
        Role::Agent,
        Role::Requester,
        Role::Partner,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::TenantAdmin => "tenant_admin",
            Role::ProcessManager => "process_manager",
            Role::Agent => "agent",
            Role::Requester => "requester",
            Role::Partner => "partner",
            Role::Auditor => "auditor",
        }
    }

    pub fn parse(raw: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == raw)
    }
}

/// The platform operator's role. It is no tenant role: the operator holds no tenant's data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformRole {
    /// Manages plans, customer accounts and tenants.
    PlatformOperator,
}

impl PlatformRole {
    pub const fn as_str(self) -> &'static str {
        match self {
            PlatformRole::PlatformOperator => "platform_operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A non-empty set of roles, stored as a comma-separated sorted list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    pub fn new(roles: impl IntoIterator<Item = Role>) -> Option<Self> {
        let set: BTreeSet<Role> = roles.into_iter().collect();
        (!set.is_empty()).then_some(Self(set))
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.0.contains(r))
    }

    pub fn to_vec(&self) -> Vec<Role> {
        self.0.iter().copied().collect()
    }

    pub fn names(&self) -> Vec<String> {
        self.0.iter().map(|r| r.as_str().to_owned()).collect()
    }

    /// The storage form: `agent,tenant_admin`.
    pub fn to_storage(&self) -> String {
        self.names().join(",")
    }

    /// Reads the storage form; unknown names (from a newer version) are skipped.
    pub fn from_storage(raw: &str) -> Self {
        Self(raw.split(',').filter_map(Role::parse).collect())
    }

    /// Roles added and removed going from `self` to `next` (for the audit log).
    pub fn diff(&self, next: &RoleSet) -> (Vec<Role>, Vec<Role>) {
        let added = next.0.difference(&self.0).copied().collect();
        let removed = self.0.difference(&next.0).copied().collect();
        (added, removed)
    }
}

/// A tenant's URL-safe short name, used at login: 2–63 lowercase letters, digits and hyphens,
/// starting with a letter and not ending with a hyphen. Input is taken in its
/// [canonical form](crate::domain::credentials::canonical_name) first, so `ACME` and `ａｃｍｅ`
/// are the slug `acme`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantSlug(String);

impl TenantSlug {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let raw = &crate::domain::credentials::canonical_name(raw);
        let ok_len = (2..=63).contains(&raw.len());
        let ok_chars = raw
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        let ok_ends = raw.starts_with(|c: char| c.is_ascii_lowercase()) && !raw.ends_with('-');
        if ok_len && ok_chars && ok_ends {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 2 to 63 lowercase letters, digits or hyphens, starting with a letter")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An IANA time zone name such as `Asia/Tokyo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeZone(chrono_tz::Tz);

impl TimeZone {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        raw.parse::<chrono_tz::Tz>()
            .map(Self)
            .map_err(|_| "must be an IANA time zone name such as Asia/Tokyo")
    }

    pub fn name(&self) -> &'static str {
        self.0.name()
    }
}

/// Whether an organization is part of the customer or an outside partner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// A department of the customer.
    Internal,
    /// An external organization; its members see only what is shared with it.
    Partner,
}

impl OrganizationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Internal => "internal",
            Self::Partner => "partner",
        }
    }

    pub fn from_storage(raw: &str) -> Self {
        if raw == "partner" {
            Self::Partner
        } else {
            Self::Internal
        }
    }
}

crate::domain::closed_set::closed_set! {
    /// What kind of principal a caller is.
    pub enum PrincipalKind {
        /// The platform operator (no tenant).
        Operator = "operator",
        /// A signed-in tenant user.
        User = "user",
        /// A tenant API key.
        ApiKey = "api_key",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_through_storage() {
        let set = RoleSet::new([Role::TenantAdmin, Role::Agent, Role::Agent]).unwrap();
        assert_eq!(set.to_storage(), "tenant_admin,agent");
        assert_eq!(RoleSet::from_storage(&set.to_storage()), set);
        assert!(RoleSet::new([]).is_none());
        let next = RoleSet::new([Role::Agent, Role::Auditor]).unwrap();
        assert_eq!(
            set.diff(&next),
            (vec![Role::Auditor], vec![Role::TenantAdmin])
        );
    }

    #[test]
    fn slugs() {
        assert!(TenantSlug::parse("acme").is_ok());
        assert!(TenantSlug::parse("acme-jp-2").is_ok());
        for same in ["Acme", "ACME", "ａｃｍｅ"] {
            assert_eq!(TenantSlug::parse(same).unwrap().as_str(), "acme");
        }
        for bad in [
            "a",
            "ａ",
            "-acme",
            "acme-",
            "1acme",
            "ac me",
            &"a".repeat(64),
        ] {
            assert!(TenantSlug::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn time_zones() {
        assert_eq!(TimeZone::parse("Asia/Tokyo").unwrap().name(), "Asia/Tokyo");
        assert!(TimeZone::parse("Mars/Olympus").is_err());
    }
}
