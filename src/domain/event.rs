//! The event log's vocabulary: what happened (event types), to what (subject types), and who
//! may read an event (its audience) — decided when the event is written, so the feed only
//! filters.

use crate::domain::closed_set::closed_set;
use crate::domain::identity::Role;

closed_set! {
    /// What happened. Ticket events carry the ticket and the history entries of the change;
    /// record events the record and, when a workflow wrote it, the ticket and transition.
    pub enum EventType {
        /// A ticket was filed (also a child ticket filed by a transition).
        TicketCreated = "ticket.created",
        /// A transition fired (`changes` holds the transition and every field change).
        TicketTransitioned = "ticket.transitioned",
        /// Field values changed outside a transition.
        TicketUpdated = "ticket.updated",
        /// Only the assignee or group changed.
        TicketAssigned = "ticket.assigned",
        TicketCommented = "ticket.commented",
        TicketAttachmentAdded = "ticket.attachment_added",
        TicketLinked = "ticket.linked",
        TicketWatcherAdded = "ticket.watcher_added",
        /// A `notify` action of a transition; `payload.event` is the action's event name.
        TicketNotify = "ticket.notify",
        /// An SLA clock passed its at-risk share (`sla`: target, policy, instant); once.
        TicketSlaAtRisk = "ticket.sla_at_risk",
        /// An SLA clock passed its target (`sla`: target, policy, instant); once.
        TicketSlaBreached = "ticket.sla_breached",
        RecordCreated = "record.created",
        RecordUpdated = "record.updated",
        RecordReviewed = "record.reviewed",
        RecordDeleted = "record.deleted",
        TemplatePublished = "template.published",
        UserCreated = "user.created",
        UserDeactivated = "user.deactivated",
        /// A webhook subscription was disabled after failing for too long.
        WebhookDisabled = "webhook.disabled",
        /// The virus scanner found malware in a message a mail channel took in; it is
        /// quarantined (tenant admins only).
        MailMessageQuarantined = "mail_message.quarantined",
        /// The platform operator announced a maintenance window to the tenant (tenant admins
        /// only; `announcement`: id, title, body, window).
        AnnouncementPublished = "announcement.published",
        /// The operator called off an announced window.
        AnnouncementWithdrawn = "announcement.withdrawn",
    }
}

closed_set! {
    /// What an event is about.
    pub enum SubjectType {
        Ticket = "ticket",
        Record = "record",
        Template = "template",
        User = "user",
        Webhook = "webhook",
        MailMessage = "mail_message",
        Announcement = "announcement",
    }
}

closed_set! {
    /// Who reads an event (stored with it).
    pub enum EventAudience {
        /// Staff; requesters and partners too, for tickets they see, when the event has a
        /// restricted payload.
        Tickets = "tickets",
        /// Readers of the library the event's record belongs to (`container`).
        Library = "library",
        /// Staff only.
        Staff = "staff",
        /// Tenant admins and auditors only (directory changes).
        Admin = "admin",
    }
}

/// What a caller may read of the event log, from its roles: the audiences it reads whole,
/// and whether it is restricted to its own tickets and restricted payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventReader {
    /// `Staff` and `Tickets` events whole (staff roles).
    pub staff: bool,
    /// `Admin` events (tenant admins and auditors).
    pub admin: bool,
}

impl EventReader {
    pub fn of(roles: &[Role]) -> Self {
        let holds = |r: Role| roles.contains(&r);
        Self {
            staff: super::ticket::STAFF_ROLES.iter().any(|r| holds(*r)),
            admin: holds(Role::TenantAdmin) || holds(Role::Auditor),
        }
    }

    /// The audiences whose events this reader gets with their full payload (library events
    /// are decided per library by the caller of the feed).
    pub fn full_audiences(&self) -> Vec<EventAudience> {
        let mut audiences = Vec::new();
        if self.staff {
            audiences.extend([EventAudience::Tickets, EventAudience::Staff]);
        }
        if self.admin {
            audiences.push(EventAudience::Admin);
        }
        audiences
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_follow_the_roles() {
        let admin = EventReader::of(&[Role::TenantAdmin]);
        assert_eq!(
            admin.full_audiences(),
            [
                EventAudience::Tickets,
                EventAudience::Staff,
                EventAudience::Admin
            ]
        );
        let agent = EventReader::of(&[Role::Agent]);
        assert_eq!(
            agent.full_audiences(),
            [EventAudience::Tickets, EventAudience::Staff]
        );
        let requester = EventReader::of(&[Role::Requester]);
        assert!(!requester.staff && !requester.admin);
        assert!(requester.full_audiences().is_empty());
    }

    #[test]
    fn type_spellings_are_dotted() {
        for t in EventType::ALL {
            let (subject, what) = t.as_str().split_once('.').unwrap();
            assert!(SubjectType::parse(subject).is_some(), "{t}");
            assert!(!what.is_empty());
        }
    }
}
