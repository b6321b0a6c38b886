//! Practice checks: definitions that publish and run, but do something their author
//! rarely means — a mapped value longer than its target allows, a required field nobody
//! fills, a terminal state whose SLA clock keeps running. All are warnings except the
//! title source, which decides what requesters and partners see.
//!
//! These were the catalog's own checks (`catalog/check.py`); here every tenant gets them.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use super::super::compat::convert_literal;
use super::super::guard::{Guard, GuardOp};
use super::super::limits::{MAX_LONG_TEXT_CHARS, MAX_TEXT_CHARS};
use super::super::model::{
    Action, FieldDef, FieldRule, FieldType, FromStates, Section, SlaCategory, TemplateDefinition,
    Transition,
};
use super::super::pointer::join;
use super::{Index, Issues, LintContext, shown};
use crate::domain::identity::Role;

pub(super) fn lint_practice(
    def: &TemplateDefinition,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    lint_title_source(def, out);
    lint_states(def, index, out);
    for (n, t) in def.transitions.iter().enumerate() {
        let at = join("/transitions", n);
        lint_transition_shape(t, &at, index, out);
        lint_required_on_entry(def, t, &at, index, out);
        let actions_at = join(&at, "actions");
        for (a, action) in t.actions.iter().enumerate() {
            lint_action(def, t, action, &join(&actions_at, a), index, ctx, out);
        }
    }
    lint_locked_on_create(def, index, out);
    lint_placement(&def.fields, &def.layout.sections, out);
    for (state, sections) in &def.layout.states {
        lint_hidden_placed(def, state, sections, out);
    }
}

/// The ticket title comes from the `title` field, else from the first public text field
/// (`domain::ticket::title_of`); whoever sees the ticket sees its title.
fn lint_title_source(def: &TemplateDefinition, out: &mut Issues) {
    let title = def
        .fields
        .iter()
        .enumerate()
        .find(|(_, f)| f.key == "title" && f.kind.is_textual());
    match title {
        Some((n, f)) if f.internal => out.error(
            "internal_title",
            join(&join("/fields", n), "internal"),
            "the `title` field is the ticket's title, which everyone who sees the ticket \
             sees (requesters and partners too, and `q=` finds it): it cannot be internal",
        ),
        Some(_) => {}
        None if !def
            .fields
            .iter()
            .any(|f| f.kind == FieldType::Text && !f.internal) =>
        {
            out.warn(
                "no_title_source",
                "/fields",
                "no `title` field and no public text field: tickets of this template have \
                 an empty title",
            )
        }
        None => {}
    }
}

fn lint_states(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    let state_keys: HashSet<&str> = index.states.iter().map(|(s, _)| s.key.as_str()).collect();
    for (si, stage) in def.stages.iter().enumerate() {
        if state_keys.contains(stage.key.as_str()) {
            out.warn(
                "stage_state_key_clash",
                join(&join("/stages", si), "key"),
                format!(
                    "{} is both a stage key and a state key; filters and reports by key \
                     become ambiguous",
                    shown(&stage.key)
                ),
            );
        }
    }
    for (state, at) in &index.states {
        if state.terminal && state.sla != SlaCategory::Stopped {
            out.warn(
                "terminal_sla_running",
                join(at, "sla"),
                format!(
                    "the terminal state {} does not stop the SLA clock; closed tickets \
                     would keep counting (use `stopped`)",
                    shown(&state.key)
                ),
            );
        }
    }
}

fn is_terminal(index: &Index<'_>, key: &str) -> bool {
    index
        .state_pos
        .get(key)
        .and_then(|&i| index.states.get(i))
        .is_some_and(|(s, _)| s.terminal)
}

/// Source states, a transition into itself, auditors allowed to fire it.
fn lint_transition_shape(t: &Transition, at: &str, index: &Index<'_>, out: &mut Issues) {
    if let FromStates::States(from) = &t.from {
        for (j, state) in from.iter().enumerate() {
            if is_terminal(index, state) {
                out.warn(
                    "leaves_terminal",
                    join(&join(at, "from"), j),
                    format!(
                        "{} is terminal: tickets there are closed, and a transition out of \
                         it reopens them",
                        shown(state)
                    ),
                );
            }
        }
        if from.iter().any(|s| s == &t.to) {
            out.warn(
                "self_transition",
                join(at, "to"),
                format!(
                    "the transition leads from {} back into itself",
                    shown(&t.to)
                ),
            );
        }
    }
    let auditor = Role::Auditor.as_str();
    for (j, role) in t.allowed.roles.iter().enumerate() {
        if role == auditor {
            out.warn(
                "auditor_allowed",
                join(&join(&join(at, "allowed"), "roles"), j),
                "auditors are read-only: they are never allowed to fire a transition",
            );
        }
    }
}

/// The states a transition can leave from.
fn sources<'a>(t: &'a Transition, index: &'a Index<'_>) -> Vec<&'a str> {
    match &t.from {
        FromStates::Any => index
            .states
            .iter()
            .filter(|(s, _)| !s.terminal)
            .map(|(s, _)| s.key.as_str())
            .collect(),
        FromStates::States(from) => from.iter().map(String::as_str).collect(),
    }
}

/// Fields a guard proves set when it holds: positive comparisons other than `ne` under
/// `all` (and double negation); `any` proves nothing on its own.
fn proven_set<'g>(guard: &'g Guard, into: &mut BTreeSet<&'g str>) {
    match guard {
        Guard::All { all } => all.iter().for_each(|g| proven_set(g, into)),
        Guard::Not { not } => {
            if let Guard::Not { not: inner } = not.as_ref() {
                proven_set(inner, into);
            }
        }
        Guard::Compare(c) if c.op != GuardOp::Ne => {
            into.insert(c.field.as_str());
        }
        _ => {}
    }
}

/// A state's required fields must be filled by every transition into it, or the
/// transition fails at run time for a ticket that lacks them.
fn lint_required_on_entry(
    def: &TemplateDefinition,
    t: &Transition,
    at: &str,
    index: &Index<'_>,
    out: &mut Issues,
) {
    let Some(rules) = def.field_rules.get(&t.to) else {
        return;
    };
    let mut guaranteed: BTreeSet<&str> = t.requires.iter().map(String::as_str).collect();
    for action in &t.actions {
        if let Action::SetField { field, value } = action
            && !value.is_null()
        {
            guaranteed.insert(field.as_str());
        }
    }
    if let Some(guard) = &t.guard {
        proven_set(guard, &mut guaranteed);
    }
    let from = sources(t, index);
    for (key, rule) in rules {
        let Some(field) = index.fields.get(key.as_str()) else {
            continue;
        };
        if *rule != FieldRule::Required || field.required || guaranteed.contains(key.as_str()) {
            continue;
        }
        let every_source_requires = !from.is_empty()
            && from
                .iter()
                .all(|s| def.rule(s, key) == Some(FieldRule::Required));
        if !every_source_requires {
            out.warn(
                "required_not_guaranteed",
                at,
                format!(
                    "{} enters {}, which requires {}, without requiring it (nor does every \
                     source state): the transition fails for tickets that lack it",
                    shown(&t.key),
                    shown(&t.to),
                    shown(key)
                ),
            );
        }
    }
}

/// A field required on creation must be writable in the initial state.
fn lint_locked_on_create(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    let Some((initial, _)) = index.states.iter().find(|(s, _)| s.initial) else {
        return;
    };
    for field in def.fields.iter().filter(|f| f.required) {
        if def.rule(&initial.key, &field.key) == Some(FieldRule::ReadOnly) {
            out.warn(
                "required_read_only_on_create",
                join(&join("/field_rules", &initial.key), &field.key),
                format!(
                    "{} is required on creation but read-only in the initial state",
                    shown(&field.key)
                ),
            );
        }
    }
}

/// Every field appears in the default layout (when there is one); a form without it
/// cannot show or fill the field.
pub(super) fn lint_placement(fields: &[FieldDef], sections: &[Section], out: &mut Issues) {
    if sections.is_empty() {
        return;
    }
    let placed: HashSet<&str> = sections
        .iter()
        .flat_map(|s| s.fields.iter().map(String::as_str))
        .collect();
    for (n, field) in fields.iter().enumerate() {
        if !placed.contains(field.key.as_str()) {
            out.warn(
                "field_not_placed",
                join("/fields", n),
                format!(
                    "field {} is in no section of the default layout",
                    shown(&field.key)
                ),
            );
        }
    }
}

fn lint_hidden_placed(
    def: &TemplateDefinition,
    state: &str,
    sections: &[Section],
    out: &mut Issues,
) {
    let state_at = join("/layout/states", state);
    for (n, section) in sections.iter().enumerate() {
        let fields_at = join(&join(&state_at, n), "fields");
        for (j, key) in section.fields.iter().enumerate() {
            if def.rule(state, key) == Some(FieldRule::Hidden) {
                out.warn(
                    "hidden_field_placed",
                    join(&fields_at, j),
                    format!(
                        "{} is placed in the layout of {} but hidden there",
                        shown(key),
                        shown(state)
                    ),
                );
            }
        }
    }
}

/// The longest value a textual field holds.
fn max_chars(field: &FieldDef) -> u64 {
    let cap = if field.kind == FieldType::Text {
        MAX_TEXT_CHARS
    } else {
        MAX_LONG_TEXT_CHARS
    };
    field.max_length.unwrap_or(cap as u64)
}

fn lint_action(
    def: &TemplateDefinition,
    t: &Transition,
    action: &Action,
    at: &str,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    match action {
        Action::SetField { field, value } if value.is_null() => {
            let every_ticket = index.fields.get(field.as_str()).is_some_and(|f| f.required);
            if every_ticket || def.rule(&t.to, field) == Some(FieldRule::Required) {
                out.warn(
                    "clears_required",
                    join(at, "value"),
                    format!(
                        "clears {}, which {} requires",
                        shown(field),
                        if every_ticket {
                            "every ticket".to_owned()
                        } else {
                            format!("the target state {}", shown(&t.to))
                        }
                    ),
                );
            }
        }
        Action::CreateChildTicket { template, mapping } => {
            let targets = if ctx.template_key.as_deref() == Some(template.as_str()) {
                Some(def.fields.as_slice())
            } else {
                ctx.template_defs.get(template).map(Vec::as_slice)
            };
            if let Some(targets) = targets {
                let what = format!("template {}", shown(template));
                lint_mapping(mapping, at, targets, &what, true, index, ctx, out);
            }
        }
        Action::LibraryUpsert {
            library, mapping, ..
        }
        | Action::LibraryUpdate {
            library, mapping, ..
        } => {
            if mapping.is_empty() {
                out.warn(
                    "empty_mapping",
                    join(at, "mapping"),
                    "the mapping is empty: the action writes nothing",
                );
            }
            let creates = matches!(action, Action::LibraryUpsert { .. });
            if let Some(targets) = ctx.library_defs.get(library) {
                let what = format!("library {}", shown(library));
                lint_mapping(mapping, at, targets, &what, creates, index, ctx, out);
            }
        }
        _ => {}
    }
}

/// Lengths, masters and libraries of each mapped value against its target, and the
/// target's required fields when the action may create a ticket or record.
#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the arguments are the lint walk's context"
)]
fn lint_mapping(
    mapping: &BTreeMap<String, String>,
    at: &str,
    targets: &[FieldDef],
    what: &str,
    creates: bool,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    let mapping_at = join(at, "mapping");
    for (key, source) in mapping {
        let Some(target) = targets.iter().find(|f| &f.key == key) else {
            continue;
        };
        let entry_at = join(&mapping_at, key);
        match source.strip_prefix('=') {
            Some(literal) => lint_literal(literal, target, &entry_at, ctx, out),
            None => {
                if let Some(source) = index.fields.get(source.as_str()) {
                    lint_mapped_field(source, target, &entry_at, out);
                }
            }
        }
    }
    if creates {
        for target in targets.iter().filter(|f| f.required) {
            if !mapping.contains_key(&target.key) {
                out.warn(
                    "unmapped_required",
                    &mapping_at,
                    format!(
                        "{what} requires {} but the mapping does not fill it: creating fails",
                        shown(&target.key)
                    ),
                );
            }
        }
    }
}

fn lint_literal(literal: &str, target: &FieldDef, at: &str, ctx: &LintContext, out: &mut Issues) {
    if target.kind.is_textual() && literal.chars().count() as u64 > max_chars(target) {
        out.warn(
            "mapped_value_too_long",
            at,
            format!(
                "the literal is longer than {} allows ({} characters)",
                shown(&target.key),
                max_chars(target)
            ),
        );
    }
    let Some(items) = target.master.as_ref().and_then(|m| ctx.masters.get(m)) else {
        return;
    };
    let codes: Vec<String> = match convert_literal(target.kind, literal) {
        Some(serde_json::Value::String(s)) if target.kind.is_select() => vec![s],
        Some(serde_json::Value::Array(list)) => list
            .iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    if let Some(missing) = codes.iter().find(|c| !items.contains(*c)) {
        out.warn(
            "mapping_mismatch",
            at,
            format!(
                "the master of {} has no item {}",
                shown(&target.key),
                shown(missing)
            ),
        );
    }
}

fn lint_mapped_field(source: &FieldDef, target: &FieldDef, at: &str, out: &mut Issues) {
    if source.kind.is_textual() && target.kind.is_textual() {
        let (from, to) = (max_chars(source), max_chars(target));
        if from > to {
            out.warn(
                "mapped_value_too_long",
                at,
                format!(
                    "{} may hold {from} characters, {} only {to}: a longer value fails the \
                     action when the transition runs",
                    shown(&source.key),
                    shown(&target.key)
                ),
            );
        }
    }
    if source.kind.is_select()
        && target.kind.is_select()
        && let (Some(a), Some(b)) = (&source.master, &target.master)
        && a != b
    {
        out.warn(
            "mapping_mismatch",
            at,
            format!(
                "{} uses master {} but {} uses {}",
                shown(&source.key),
                shown(a),
                shown(&target.key),
                shown(b)
            ),
        );
    }
    if source.kind == FieldType::LibraryRef
        && target.kind == FieldType::LibraryRef
        && source.library != target.library
    {
        out.warn(
            "mapping_mismatch",
            at,
            format!(
                "{} and {} refer to different libraries",
                shown(&source.key),
                shown(&target.key)
            ),
        );
    }
}

#[cfg(test)]
#[path = "practice_tests.rs"]
mod tests;
