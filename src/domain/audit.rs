//! The closed sets of the audit log: who acted, and on what kind of thing.

use crate::domain::closed_set::closed_set;

closed_set! {
    /// Who an audit entry is about.
    pub enum AuditActorKind {
        /// The platform operator.
        Operator = "operator",
        User = "user",
        ApiKey = "api_key",
        /// A failed login: nobody was authenticated.
        Anonymous = "anonymous",
        /// Stageflow itself (background work, e.g. disabling a failing webhook).
        System = "system",
    }
}

closed_set! {
    /// What kind of thing an audit entry's target is.
    pub enum AuditTargetKind {
        Account = "account",
        ApiKey = "api_key",
        Group = "group",
        Library = "library",
        Master = "master",
        Operator = "operator",
        Organization = "organization",
        Plan = "plan",
        Session = "session",
        SigningKey = "signing_key",
        Template = "template",
        Tenant = "tenant",
        User = "user",
        Webhook = "webhook",
        MailChannel = "mail_channel",
        NotificationRule = "notification_rule",
        MailMessage = "mail_message",
        Calendar = "calendar",
        SlaPolicy = "sla_policy",
        /// A node's dependency (`database`, `scanner`, `smtp`, `disk`, `jobs`): the operator's
        /// failure and recovery entries.
        Dependency = "dependency",
        Announcement = "announcement",
    }
}
