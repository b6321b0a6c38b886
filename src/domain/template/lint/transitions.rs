//! Transitions: keys, source and target states, who may fire them, required and settable
//! fields. Guards and actions have their own modules.

use std::collections::HashSet;

use super::super::model::{Allowed, FieldRule, FromStates, TemplateDefinition, Transition};
use super::super::pointer::join;
use super::{Index, Issues, LintContext, actions, check_key, check_label, guards, shown};
use crate::domain::identity::Role;

pub(super) fn lint_transitions(
    def: &TemplateDefinition,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    let mut keys = HashSet::new();
    for (n, t) in def.transitions.iter().enumerate() {
        let at = join("/transitions", n);
        check_key(&t.key, join(&at, "key"), "transition", &mut keys, out);
        check_label(&t.label, &join(&at, "label"), out);
        lint_states(t, &at, index, out);
        lint_allowed(&t.allowed, &join(&at, "allowed"), out);
        if let Some(guard) = &t.guard {
            guards::lint_guard(guard, &join(&at, "guard"), 1, index, ctx, out);
        }
        lint_field_lists(def, t, &at, index, out);
        let actions_at = join(&at, "actions");
        for (a, action) in t.actions.iter().enumerate() {
            actions::lint_action(action, &join(&actions_at, a), index, ctx, out);
        }
    }
}

fn lint_states(t: &Transition, at: &str, index: &Index<'_>, out: &mut Issues) {
    if let FromStates::States(from) = &t.from {
        let from_at = join(at, "from");
        if from.is_empty() {
            out.error(
                "empty_from",
                &from_at,
                "`from` lists no state; use \"*\" for every non-terminal state",
            );
        }
        let mut seen = HashSet::new();
        for (j, state) in from.iter().enumerate() {
            if !index.has_state(state) {
                let message = format!("there is no state {}", shown(state));
                out.error("unknown_state", join(&from_at, j), message);
            } else if !seen.insert(state.as_str()) {
                let message = format!("state {} is listed more than once", shown(state));
                out.error("duplicate_key", join(&from_at, j), message);
            }
        }
    }
    if !index.has_state(&t.to) {
        let message = format!("there is no state {}", shown(&t.to));
        out.error("unknown_state", join(at, "to"), message);
    }
}

/// Longest group key accepted in `allowed.groups` and `assign.group`; group keys are the
/// directory's business, so only their size is checked here.
const MAX_GROUP_KEY_CHARS: usize = 200;

pub(super) fn is_group_key(raw: &str) -> bool {
    !raw.trim().is_empty() && raw.chars().count() <= MAX_GROUP_KEY_CHARS
}

fn lint_allowed(allowed: &Allowed, at: &str, out: &mut Issues) {
    for (j, role) in allowed.roles.iter().enumerate() {
        if Role::parse(role).is_none() {
            let known: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
            let message = format!(
                "{} is not a role; roles are {}",
                shown(role),
                known.join(", ")
            );
            out.error("unknown_role", join(&join(at, "roles"), j), message);
        }
    }
    for (j, group) in allowed.groups.iter().enumerate() {
        if !is_group_key(group) {
            let message = format!("a group key must be 1 to {MAX_GROUP_KEY_CHARS} characters");
            out.error("invalid_key", join(&join(at, "groups"), j), message);
        }
    }
    if allowed.is_empty() {
        out.warn(
            "nobody_allowed",
            at,
            "no role, group, assignee or requester may fire this transition",
        );
    }
}

fn lint_field_lists(
    def: &TemplateDefinition,
    t: &Transition,
    at: &str,
    index: &Index<'_>,
    out: &mut Issues,
) {
    for (list_name, list) in [("requires", &t.requires), ("sets", &t.sets)] {
        let list_at = join(at, list_name);
        let mut seen = HashSet::new();
        for (j, key) in list.iter().enumerate() {
            let item_at = join(&list_at, j);
            if !index.fields.contains_key(key.as_str()) {
                out.error(
                    "unknown_field",
                    item_at,
                    format!("there is no field {}", shown(key)),
                );
                continue;
            }
            if !seen.insert(key.as_str()) {
                let message = format!("field {} is listed more than once", shown(key));
                out.error("duplicate_key", item_at, message);
                continue;
            }
            if def.rule(&t.to, key) != Some(FieldRule::Hidden) {
                continue;
            }
            if list_name == "requires" {
                out.error(
                    "required_but_hidden",
                    item_at,
                    format!(
                        "the transition requires {} but its target state {} hides it",
                        shown(key),
                        shown(&t.to)
                    ),
                );
            } else {
                out.warn(
                    "sets_hidden_field",
                    item_at,
                    format!(
                        "{} is hidden in the target state {}, so a request cannot set it",
                        shown(key),
                        shown(&t.to)
                    ),
                );
            }
        }
    }
}
