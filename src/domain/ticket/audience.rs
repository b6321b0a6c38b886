//! The audience rules: the one place deciding what a caller sees of tickets — which tickets,
//! which fields, and what of a transition's options, reasons and plan. Every output carrying
//! ticket data passes through these functions for its caller (the API shapes responses with
//! them; the list and search filters in `db::tickets` take the `Audience` itself).

use std::collections::BTreeSet;

use crate::domain::ids::{OrganizationId, UserId};
use serde_json::{Map, Value};

use crate::domain::identity::Role;
use crate::domain::template::{
    Action, FieldSet, Guard, PlannedAction, TemplateDefinition, Transition, TransitionOption,
    TransitionPlan, Unavailable, public_only,
};

/// Who is looking at tickets, which decides what they see.
///
/// - `Staff` (tenant admins, process managers, agents, auditors, and API keys with one of those
///   roles) see every ticket of the tenant, internal fields and internal comments included.
/// - `Restricted` callers see the tickets they requested and, when they belong to a partner
///   organization, the tickets of that organization; never an internal field (its value, its
///   name, or a value copied from it), comment, attachment or history entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Staff,
    Restricted {
        user: Option<UserId>,
        organization: Option<OrganizationId>,
    },
}

/// The roles that make a caller staff (for tickets, and for library records through
/// `domain::library::Reader`): everyone else is restricted.
pub const STAFF_ROLES: [Role; 4] = [
    Role::TenantAdmin,
    Role::ProcessManager,
    Role::Agent,
    Role::Auditor,
];

/// What a restricted caller reads instead of a guard description naming a field it may not
/// see.
pub const HIDDEN_CONDITION: &str = "condition not met";

impl Audience {
    pub fn is_staff(&self) -> bool {
        matches!(self, Audience::Staff)
    }

    /// Whether internal fields, comments, attachments and history entries are shown.
    pub fn sees_internal(&self) -> bool {
        self.is_staff()
    }

    /// Whether a ticket with this requester and organization is visible.
    pub fn sees(&self, requester: Option<UserId>, organization: Option<OrganizationId>) -> bool {
        match self {
            Audience::Staff => true,
            Audience::Restricted {
                user,
                organization: own,
            } => (user.is_some() && requester == *user) || (own.is_some() && organization == *own),
        }
    }

    /// Whether the field `key` (its value and its name) is shown.
    pub fn sees_field<D: FieldSet + ?Sized>(&self, def: &D, key: &str) -> bool {
        self.sees_internal() || def.is_public(key)
    }

    /// The fields this audience may see: everything for staff, no internal field otherwise.
    pub fn redact<D: FieldSet + ?Sized>(
        &self,
        def: &D,
        fields: Map<String, Value>,
    ) -> Map<String, Value> {
        if self.sees_internal() {
            fields
        } else {
            public_only(def, fields)
        }
    }

    /// Field names this audience may see, in their order.
    pub fn field_names<D: FieldSet + ?Sized>(
        &self,
        def: &D,
        mut names: Vec<String>,
    ) -> Vec<String> {
        names.retain(|k| self.sees_field(def, k));
        names
    }

    /// A transition option as this audience sees it: no internal field among the fields the
    /// form asks for, and reasons that name none (see [`Audience::reason`]).
    pub fn option(
        &self,
        def: &TemplateDefinition,
        mut option: TransitionOption,
    ) -> TransitionOption {
        if self.sees_internal() {
            return option;
        }
        option.required_fields = self.field_names(def, option.required_fields);
        let transition = def.transition(&option.key);
        option.reasons = option
            .reasons
            .into_iter()
            .map(|r| self.reason(def, transition, r))
            .collect();
        option
    }

    /// An `explain` reason as this audience sees it. `missing_fields` lists only visible
    /// fields (the reason stays, possibly with an empty list, so the caller still learns
    /// why); a failed guard that compares a field the caller may not see keeps its code and
    /// clause pointer but its description becomes [`HIDDEN_CONDITION`].
    pub fn reason(
        &self,
        def: &TemplateDefinition,
        transition: Option<&Transition>,
        reason: Unavailable,
    ) -> Unavailable {
        if self.sees_internal() {
            return reason;
        }
        match reason {
            Unavailable::MissingFields { fields } => Unavailable::MissingFields {
                fields: self.field_names(def, fields),
            },
            Unavailable::GuardFailed {
                clause,
                description,
            } => {
                let hidden = transition
                    .and_then(|t| t.guard.as_ref())
                    .is_none_or(|g| guard_fields(g).iter().any(|f| !self.sees_field(def, f)));
                Unavailable::GuardFailed {
                    clause,
                    description: if hidden {
                        HIDDEN_CONDITION.to_owned()
                    } else {
                        description
                    },
                }
            }
            other => other,
        }
    }

    /// A transition plan (of a fired transition or a dry run) as this audience sees it: no
    /// field change of a field it may not see, no mapped value copied from one, and no record
    /// named by one. A library action into a library outside `readable` (the libraries the
    /// caller may read) shows neither its values nor its record.
    pub fn plan(
        &self,
        def: &TemplateDefinition,
        mut plan: TransitionPlan,
        readable: &BTreeSet<String>,
    ) -> TransitionPlan {
        if self.sees_internal() {
            return plan;
        }
        plan.field_changes
            .retain(|c| self.sees_field(def, &c.field));
        let Some(transition) = def.transition(&plan.transition) else {
            // A plan always names a transition of its definition; if not, show no action.
            plan.actions.clear();
            return plan;
        };
        for action in &mut plan.actions {
            self.redact_action(def, transition, action);
            match action {
                PlannedAction::LibraryUpsert {
                    library,
                    record,
                    fields,
                    ..
                } if !readable.contains(library) => {
                    *record = None;
                    fields.clear();
                }
                PlannedAction::LibraryUpdate {
                    library, fields, ..
                } if !readable.contains(library) => fields.clear(),
                _ => {}
            }
        }
        plan
    }

    /// The libraries a plan writes into (whose readability `plan` needs).
    pub fn plan_libraries(plan: &TransitionPlan) -> impl Iterator<Item = &str> {
        plan.actions.iter().filter_map(|a| match a {
            PlannedAction::LibraryUpsert { library, .. }
            | PlannedAction::LibraryUpdate { library, .. } => Some(library.as_str()),
            _ => None,
        })
    }

    fn redact_action(&self, def: &TemplateDefinition, t: &Transition, action: &mut PlannedAction) {
        match action {
            PlannedAction::CreateChildTicket { template, fields } => {
                let hidden = self.hidden_targets(
                    def,
                    t,
                    |a| matches!(a, Action::CreateChildTicket { template: k, .. } if k == template),
                );
                fields.retain(|target, _| !hidden.contains(target.as_str()));
            }
            PlannedAction::LibraryUpsert {
                library,
                record,
                record_field,
                fields,
            } => {
                let hidden = self.hidden_targets(
                    def,
                    t,
                    |a| matches!(a, Action::LibraryUpsert { library: k, .. } if k == library),
                );
                fields.retain(|target, _| !hidden.contains(target.as_str()));
                if record_field
                    .as_deref()
                    .is_some_and(|f| !self.sees_field(def, f))
                {
                    *record = None;
                    *record_field = None;
                }
            }
            PlannedAction::LibraryUpdate {
                library, fields, ..
            } => {
                let hidden = self.hidden_targets(
                    def,
                    t,
                    |a| matches!(a, Action::LibraryUpdate { library: k, .. } if k == library),
                );
                fields.retain(|target, _| !hidden.contains(target.as_str()));
            }
            PlannedAction::Assign { .. } | PlannedAction::Notify { .. } => {}
        }
    }

    /// The mapping targets of the transition's actions selected by `which` whose source is a
    /// field this audience may not see. A planned action does not say where its values came
    /// from, so every definition action it may stem from counts.
    fn hidden_targets<'t>(
        &self,
        def: &TemplateDefinition,
        t: &'t Transition,
        which: impl Fn(&Action) -> bool,
    ) -> BTreeSet<&'t str> {
        t.actions
            .iter()
            .filter(|a| which(a))
            .filter_map(Action::mapping)
            .flatten()
            .filter(|(_, source)| !source.starts_with('=') && !self.sees_field(def, source))
            .map(|(target, _)| target.as_str())
            .collect()
    }
}

/// The fields a guard compares.
fn guard_fields(guard: &Guard) -> Vec<&str> {
    let mut out = Vec::new();
    let mut stack = vec![guard];
    while let Some(g) = stack.pop() {
        match g {
            Guard::All { all } => stack.extend(all),
            Guard::Any { any } => stack.extend(any),
            Guard::Not { not } => stack.push(not),
            Guard::Fact { .. } => {}
            Guard::Compare(c) => out.push(c.field.as_str()),
        }
    }
    out
}
