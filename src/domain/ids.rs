//! Typed ids (HOUSE-RULES rule 4). Each is a UUID v7 on the wire and in storage.
//!
//! Only the pure part lives here: the newtype, serde (the plain UUID string), `Display` and
//! `FromStr`. Storage impls (and `new_at`, which needs the process-wide v7 counter) are added
//! in `db::types`, the OpenAPI schema in `api::schema_ids`.

/// Declares a typed id: a UUID that cannot be mixed up with another table's id. `DOC` is its
/// one-line description, reused by the OpenAPI schema.
macro_rules! typed_id {
    (#[doc = $doc:literal] $name:ident) => {
        #[doc = $doc]
        #[derive(
            Debug,
            Clone,
            Copy,
            PartialEq,
            Eq,
            PartialOrd,
            Ord,
            Hash,
            serde::Serialize,
            serde::Deserialize,
        )]
        #[serde(transparent)]
        pub struct $name(pub uuid::Uuid);

        impl $name {
            pub const DOC: &'static str = $doc;
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                uuid::Uuid::parse_str(s).map(Self)
            }
        }
    };
}

/// Calls `$callback!(Id)` for every typed id, so storage and schema impls cover them all.
macro_rules! for_each_typed_id {
    ($callback:ident) => {
        $callback!(
            OperatorId,
            PlanId,
            AccountId,
            TenantId,
            UserId,
            GroupId,
            OrganizationId,
            ApiKeyId,
            RefreshTokenId,
            AuditEntryId,
            EntityId,
            MasterId,
            TemplateId,
            TicketId,
            CommentId,
            LinkId,
            AttachmentId,
            EventId,
            LibraryId,
            RecordId,
            JobId,
            WebhookId,
            MailChannelId,
            MailMessageId,
            NotificationRuleId,
            DeliveryId,
            CalendarId,
            SlaPolicyId,
            MigrationId,
            BackupRunId,
            AnnouncementId,
            TenantExportId,
            ImportId
        );
    };
}
pub(crate) use for_each_typed_id;

typed_id!(
    /// A run moving tickets from one template version to another.
    MigrationId
);

typed_id!(
    /// A backup run (`backup_runs`).
    BackupRunId
);

typed_id!(
    /// A tenant export (`tenant_exports`).
    TenantExportId
);

typed_id!(
    /// A bulk import (`imports`).
    ImportId
);

typed_id!(
    /// A maintenance announcement (`announcements`).
    AnnouncementId
);

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

impl EntityId {
    /// Stands in for the id of an actor that has none (an anonymous caller) where a row needs
    /// one; the all-zero uuid, which no row ever has.
    pub const UNKNOWN: EntityId = EntityId(uuid::Uuid::nil());
}

/// The kinds of actor and token subject an [`EntityId`] stands for.
macro_rules! entity {
    ($($name:ident),*) => {$(
        impl From<$name> for EntityId {
            fn from(id: $name) -> Self {
                EntityId(id.0)
            }
        }
    )*};
}
entity!(OperatorId, UserId, ApiKeyId);

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
typed_id!(
    /// A background job (a row of `jobs`, see `crate::jobs`).
    JobId
);
typed_id!(
    /// A webhook subscription of one tenant.
    WebhookId
);
typed_id!(
    /// One delivery of an event (or a ping) to a webhook subscription.
    DeliveryId
);
typed_id!(
    /// A mail channel of one tenant: an address whose mail becomes tickets and comments.
    MailChannelId
);
typed_id!(
    /// A notification rule: which events of a template's tickets mail whom.
    NotificationRuleId
);
typed_id!(
    /// One mail message a channel took in (or Stageflow sent).
    MailMessageId
);
typed_id!(
    /// A business calendar of one tenant.
    CalendarId
);
typed_id!(
    /// An SLA policy: response and resolution targets for a template's tickets.
    SlaPolicyId
);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn ids_are_plain_uuid_strings() {
        let raw = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
        let id: TicketId = raw.parse().unwrap();
        assert_eq!(id.to_string(), raw);
        assert_eq!(serde_json::to_value(id).unwrap(), json!(raw));
        assert_eq!(serde_json::from_value::<TicketId>(json!(raw)).unwrap(), id);
        assert!("not-a-uuid".parse::<TicketId>().is_err());
        assert_eq!(EntityId::from(UserId(id.0)), EntityId(id.0));
        assert_ne!(EntityId::UNKNOWN, EntityId::from(UserId(id.0)));
    }
}
