//! Per-state field rules and the form layout.

use std::collections::HashSet;

use super::super::model::{FieldRule, Section, TemplateDefinition};
use super::super::pointer::join;
use super::{Index, Issues, check_key, check_label, shown};

pub(super) fn lint_field_rules(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    for (state, rules) in &def.field_rules {
        let state_at = join("/field_rules", state);
        if !index.has_state(state) {
            let message = format!("there is no state {}", shown(state));
            out.error("unknown_state", &state_at, message);
        }
        for (key, rule) in rules {
            let rule_at = join(&state_at, key);
            match index.fields.get(key.as_str()) {
                None => out.error(
                    "unknown_field",
                    rule_at,
                    format!("there is no field {}", shown(key)),
                ),
                Some(field) if field.required && *rule == FieldRule::Hidden => out.error(
                    "required_but_hidden",
                    rule_at,
                    format!(
                        "{} is required on every ticket but hidden in state {}; make it \
                         required per state instead",
                        shown(key),
                        shown(state)
                    ),
                ),
                Some(_) => {}
            }
        }
    }
}

pub(super) fn lint_layout(def: &TemplateDefinition, index: &Index<'_>, out: &mut Issues) {
    let has_field = |key: &str| index.fields.contains_key(key);
    lint_sections(&def.layout.sections, "/layout/sections", &has_field, out);
    for (state, sections) in &def.layout.states {
        let state_at = join("/layout/states", state);
        if !index.has_state(state) {
            let message = format!("there is no state {}", shown(state));
            out.error("unknown_state", &state_at, message);
        }
        lint_sections(sections, &state_at, &has_field, out);
    }
}

pub(super) fn lint_sections(
    sections: &[Section],
    at: &str,
    has_field: &dyn Fn(&str) -> bool,
    out: &mut Issues,
) {
    let mut keys = HashSet::new();
    let mut placed = HashSet::new();
    for (n, section) in sections.iter().enumerate() {
        let section_at = join(at, n);
        check_key(
            &section.key,
            join(&section_at, "key"),
            "section",
            &mut keys,
            out,
        );
        check_label(&section.label, &join(&section_at, "label"), out);
        let fields_at = join(&section_at, "fields");
        for (j, key) in section.fields.iter().enumerate() {
            if !has_field(key) {
                let message = format!("there is no field {}", shown(key));
                out.error("invalid_layout", join(&fields_at, j), message);
            } else if !placed.insert(key.as_str()) {
                let message = format!("field {} appears more than once in this layout", shown(key));
                out.error("invalid_layout", join(&fields_at, j), message);
            }
        }
    }
}
