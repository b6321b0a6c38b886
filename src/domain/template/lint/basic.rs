//! Name, key prefix, fields and their rules, stages and states.

use std::collections::HashSet;

use super::super::limits::{MAX_LONG_TEXT_CHARS, MAX_TEXT_CHARS};
use super::super::model::{Bound, FieldDef, FieldType, TemplateDefinition};
use super::super::pointer::join;
use super::super::scalar::{Ordinal, parse_date, parse_datetime};
use super::{Issues, LintContext, check_key, check_label, is_key_prefix, shown};

pub(super) fn lint_header(def: &TemplateDefinition, out: &mut Issues) {
    check_label(&def.name, "/name", out);
    if !is_key_prefix(&def.key_prefix) {
        out.error(
            "invalid_key",
            "/key_prefix",
            format!(
                "{} is not a valid key prefix: an uppercase letter, then up to 9 uppercase \
                 letters or digits",
                shown(&def.key_prefix)
            ),
        );
    }
}

pub(super) fn lint_fields(fields: &[FieldDef], ctx: &LintContext, out: &mut Issues) {
    let mut seen = HashSet::new();
    for (n, field) in fields.iter().enumerate() {
        let at = join("/fields", n);
        check_key(&field.key, join(&at, "key"), "field", &mut seen, out);
        check_label(&field.label, &join(&at, "label"), out);
        lint_references(field, &at, ctx, out);
        lint_lengths(field, &at, out);
        lint_bounds(field, &at, out);
        lint_pattern(field, &at, out);
        lint_allowed_items(field, &at, ctx, out);
    }
}

fn not_applicable(out: &mut Issues, at: &str, property: &str, kind: FieldType) {
    out.error(
        "invalid_range",
        join(at, property),
        format!("`{property}` does not apply to {kind} fields"),
    );
}

fn lint_references(field: &FieldDef, at: &str, ctx: &LintContext, out: &mut Issues) {
    match (&field.master, field.kind.is_select()) {
        (None, true) => out.error(
            "missing_master",
            at,
            format!("a {} field needs a `master`", field.kind),
        ),
        (Some(master), true) if !ctx.masters.contains_key(master) => out.error(
            "unknown_master",
            join(at, "master"),
            format!("there is no master {}", shown(master)),
        ),
        (Some(_), false) => out.error(
            "unexpected_property",
            join(at, "master"),
            format!(
                "`master` applies only to select and multi_select fields, not {}",
                field.kind
            ),
        ),
        _ => {}
    }
    match (&field.library, field.kind == FieldType::LibraryRef) {
        (None, true) => out.error(
            "missing_library",
            at,
            "a library_ref field needs a `library`",
        ),
        (Some(library), true) if !ctx.libraries.contains_key(library) => out.error(
            "unknown_library",
            join(at, "library"),
            format!("there is no library {}", shown(library)),
        ),
        (Some(_), false) => out.error(
            "unexpected_property",
            join(at, "library"),
            format!(
                "`library` applies only to library_ref fields, not {}",
                field.kind
            ),
        ),
        _ => {}
    }
}

fn lint_lengths(field: &FieldDef, at: &str, out: &mut Issues) {
    if !field.kind.is_textual() {
        for (name, rule) in [
            ("min_length", field.min_length),
            ("max_length", field.max_length),
        ] {
            if rule.is_some() {
                not_applicable(out, at, name, field.kind);
            }
        }
        return;
    }
    let cap = if field.kind == FieldType::Text {
        MAX_TEXT_CHARS
    } else {
        MAX_LONG_TEXT_CHARS
    };
    if let Some(max) = field.max_length
        && (max == 0 || max > cap as u64)
    {
        out.error(
            "invalid_range",
            join(at, "max_length"),
            format!("`max_length` of a {} field must be 1 to {cap}", field.kind),
        );
    }
    if let (Some(min), Some(max)) = (field.min_length, field.max_length)
        && min > max
    {
        out.error(
            "invalid_range",
            join(at, "min_length"),
            format!("`min_length` {min} is greater than `max_length` {max}"),
        );
    }
}

/// A range bound read as the field's type, or why it cannot be.
fn bound_of(kind: FieldType, bound: &Bound) -> Result<Ordinal, &'static str> {
    let parsed = match (kind, bound) {
        (FieldType::Integer, Bound::Number(n)) => n.as_i64().map(Ordinal::Int),
        (FieldType::Decimal, Bound::Number(_)) => Ordinal::of(&bound.to_value()),
        (FieldType::Date, Bound::Text(s)) => parse_date(s).map(Ordinal::Date),
        (FieldType::Datetime, Bound::Text(s)) => parse_datetime(s).map(Ordinal::Instant),
        _ => None,
    };
    parsed.ok_or(match kind {
        FieldType::Integer => "an integer",
        FieldType::Decimal => "a number",
        FieldType::Date => "a date string (YYYY-MM-DD)",
        _ => "an RFC 3339 datetime string",
    })
}

fn lint_bounds(field: &FieldDef, at: &str, out: &mut Issues) {
    let mut parsed = [None, None];
    for (slot, (name, rule)) in [("min", &field.min), ("max", &field.max)]
        .into_iter()
        .enumerate()
    {
        let Some(bound) = rule else { continue };
        if !field.kind.is_ordered() {
            not_applicable(out, at, name, field.kind);
            continue;
        }
        match bound_of(field.kind, bound) {
            Ok(ordinal) => {
                if let Some(p) = parsed.get_mut(slot) {
                    *p = Some(ordinal);
                }
            }
            Err(expected) => out.error(
                "invalid_range",
                join(at, name),
                format!("`{name}` of a {} field must be {expected}", field.kind),
            ),
        }
    }
    if let [Some(min), Some(max)] = parsed
        && min.compare(&max).is_some_and(|o| o.is_gt())
    {
        out.error(
            "invalid_range",
            join(at, "min"),
            "`min` is greater than `max`",
        );
    }
}

fn lint_pattern(field: &FieldDef, at: &str, out: &mut Issues) {
    let Some(pattern) = &field.pattern else {
        return;
    };
    if !field.kind.is_textual() {
        not_applicable(out, at, "pattern", field.kind);
    } else if let Some(error) = pattern.error() {
        let error: String = error.chars().take(300).collect();
        out.error(
            "invalid_pattern",
            join(at, "pattern"),
            format!("not a valid regular expression: {error}"),
        );
    }
}

fn lint_allowed_items(field: &FieldDef, at: &str, ctx: &LintContext, out: &mut Issues) {
    let Some(items) = &field.allowed_items else {
        return;
    };
    if !field.kind.is_select() {
        not_applicable(out, at, "allowed_items", field.kind);
        return;
    }
    let list_at = join(at, "allowed_items");
    if items.is_empty() {
        out.error(
            "invalid_range",
            &list_at,
            "`allowed_items` must list at least one item",
        );
    }
    let master = field.master.as_ref().and_then(|m| ctx.masters.get(m));
    let mut seen = HashSet::new();
    for (n, item) in items.iter().enumerate() {
        if !seen.insert(item.as_str()) {
            let message = format!("item {} is listed more than once", shown(item));
            out.error("duplicate_key", join(&list_at, n), message);
        }
        if let Some(master_items) = master
            && !master_items.contains(item)
        {
            let message = format!("the master has no item {}", shown(item));
            out.error("unknown_master_item", join(&list_at, n), message);
        }
    }
}

pub(super) fn lint_stages(def: &TemplateDefinition, out: &mut Issues) {
    let mut stage_keys = HashSet::new();
    let mut state_keys = HashSet::new();
    let mut initials = Vec::new();
    let mut terminals = 0usize;
    for (si, stage) in def.stages.iter().enumerate() {
        let at = join("/stages", si);
        check_key(&stage.key, join(&at, "key"), "stage", &mut stage_keys, out);
        check_label(&stage.label, &join(&at, "label"), out);
        if stage.states.is_empty() {
            out.error(
                "empty_stage",
                join(&at, "states"),
                "a stage needs at least one state",
            );
        }
        for (ti, state) in stage.states.iter().enumerate() {
            let state_at = join(&join(&at, "states"), ti);
            check_key(
                &state.key,
                join(&state_at, "key"),
                "state",
                &mut state_keys,
                out,
            );
            check_label(&state.label, &join(&state_at, "label"), out);
            if state.initial {
                initials.push((state_at.clone(), state.key.as_str()));
            }
            if state.terminal {
                terminals += 1;
                if state.initial {
                    out.error(
                        "initial_is_terminal",
                        join(&state_at, "terminal"),
                        "the initial state cannot be terminal",
                    );
                }
            }
        }
    }
    match initials.as_slice() {
        [] => out.error(
            "initial_state_count",
            "/stages",
            "no state is marked `initial`; exactly one must be",
        ),
        [_] => {}
        [(_, first), rest @ ..] => {
            for (at, key) in rest {
                out.error(
                    "initial_state_count",
                    join(at, "initial"),
                    format!(
                        "{} is a second initial state besides {}; exactly one is allowed",
                        shown(key),
                        shown(first)
                    ),
                );
            }
        }
    }
    if terminals == 0 {
        out.error(
            "no_terminal_state",
            "/stages",
            "no state is marked `terminal`",
        );
    }
}
