//! Typed ids (HOUSE-RULES rule 4). Each is a UUID v7 on the wire and in storage.

use crate::db::types::typed_id;

typed_id!(
    /// A platform operator account.
    OperatorId
);

typed_id!(
    /// A plan: caps on tenants, processes and users of an account.
    PlanId
);
typed_id!(
    /// A customer account (contract).
    AccountId
);
typed_id!(
    /// A tenant: the unit of isolation. Every tenant-owned row carries one.
    TenantId
);
typed_id!(
    /// A user of one tenant.
    UserId
);
typed_id!(
    /// A group (team) of users of one tenant.
    GroupId
);
typed_id!(
    /// An organization of one tenant: an internal department or an external partner.
    OrganizationId
);
typed_id!(
    /// An API key of one tenant.
    ApiKeyId
);
typed_id!(
    /// One refresh token (a link in a rotation family).
    RefreshTokenId
);
typed_id!(
    /// One audit log entry.
    AuditEntryId
);

impl TenantId {
    /// Marks rows that belong to the platform rather than a tenant (the operator's refresh
    /// tokens and the platform audit log). No tenant ever has this id.
    pub const PLATFORM: TenantId = TenantId(uuid::Uuid::nil());
}
typed_id!(
    /// The id of an entity whose kind is stored beside it (an audit actor, a token subject).
    EntityId
);
typed_id!(
    /// A master (code list) of one tenant.
    MasterId
);
typed_id!(
    /// A template (process definition) of one tenant.
    TemplateId
);
typed_id!(
    /// A ticket: one case running through a template version.
    TicketId
);
typed_id!(
    /// A comment on a ticket.
    CommentId
);
typed_id!(
    /// A link between two tickets.
    LinkId
);
typed_id!(
    /// An attachment of a ticket (its metadata; the content is stored by hash).
    AttachmentId
);
typed_id!(
    /// An entry of the tenant's event log.
    EventId
);
typed_id!(
    /// A library (record collection) of one tenant.
    LibraryId
);
typed_id!(
    /// A record of a library.
    RecordId
);
