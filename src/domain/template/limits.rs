//! Upper bounds on a definition, so that a hostile or careless one cannot make parsing,
//! linting or evaluation use unbounded memory or time. `parse_definition` refuses a
//! definition over a limit; `lint` reports the same issues for definitions built in code.

use super::guard::Guard;
use super::lint::LintIssue;
use super::model::{FieldDef, FromStates, TemplateDefinition};
use super::pointer::join;

/// Deepest JSON nesting accepted before deserializing (guards are the only deep part).
pub const MAX_JSON_DEPTH: usize = 64;
pub const MAX_FIELDS: usize = 500;
pub const MAX_STAGES: usize = 200;
pub const MAX_STATES: usize = 1_000;
pub const MAX_TRANSITIONS: usize = 5_000;
/// Nesting of `all` / `any` / `not` in one guard.
pub const MAX_GUARD_DEPTH: usize = 16;
/// Clauses (nodes) in one guard.
pub const MAX_GUARD_NODES: usize = 256;
/// Values in one `in` list.
pub const MAX_GUARD_LIST: usize = 1_000;
pub const MAX_PATTERN_CHARS: usize = 500;
pub const MAX_LABEL_CHARS: usize = 200;
/// Entries in a transition's `from`, `requires`, `sets`, `allowed.roles`, `allowed.groups`.
pub const MAX_LIST: usize = 500;
/// Items in a field's `allowed_items` (as many as a master may hold).
pub const MAX_ALLOWED_ITEMS: usize = 5_000;
pub const MAX_ACTIONS: usize = 50;
/// Entries in one action's `mapping`.
pub const MAX_MAPPING: usize = MAX_FIELDS;
/// Sections in one layout (the default one or one state's).
pub const MAX_SECTIONS: usize = 100;
/// Longest text value when the field sets no `max_length`.
pub const MAX_TEXT_CHARS: usize = 10_000;
pub const MAX_LONG_TEXT_CHARS: usize = 200_000;
/// Items in one multi-select value.
pub const MAX_MULTI_SELECT_ITEMS: usize = 1_000;
/// Transition pairs the overlapping-guards check looks at before it gives up (with a
/// warning): the check is quadratic in the guarded transitions leaving one state.
pub const MAX_OVERLAP_PAIRS: usize = 200_000;

pub(super) const LIMIT_EXCEEDED: &str = "limit_exceeded";

fn over(issues: &mut Vec<LintIssue>, pointer: String, what: &str, count: usize, max: usize) {
    if count > max {
        issues.push(LintIssue::new(
            LIMIT_EXCEEDED,
            pointer,
            format!("{what}: {count} exceeds the limit of {max}"),
        ));
    }
}

/// Every count limit a list of field definitions exceeds (`/fields/…`).
pub fn check_field_limits(fields: &[FieldDef]) -> Vec<LintIssue> {
    let mut issues = Vec::new();
    let i = &mut issues;
    over(i, "/fields".into(), "fields", fields.len(), MAX_FIELDS);
    for (n, field) in fields.iter().enumerate() {
        if let Some(items) = &field.allowed_items {
            let p = join(&join("/fields", n), "allowed_items");
            over(i, p, "allowed items", items.len(), MAX_ALLOWED_ITEMS);
        }
    }
    issues
}

/// Every count limit the definition exceeds, in document order.
pub fn check_limits(def: &TemplateDefinition) -> Vec<LintIssue> {
    let mut issues = check_field_limits(&def.fields);
    let i = &mut issues;
    over(i, "/stages".into(), "stages", def.stages.len(), MAX_STAGES);
    let states: usize = def.stages.iter().map(|s| s.states.len()).sum();
    over(i, "/stages".into(), "states", states, MAX_STATES);
    let transitions = def.transitions.len();
    over(
        i,
        "/transitions".into(),
        "transitions",
        transitions,
        MAX_TRANSITIONS,
    );
    for (n, t) in def.transitions.iter().enumerate() {
        let p = join("/transitions", n);
        if let FromStates::States(from) = &t.from {
            over(i, join(&p, "from"), "from states", from.len(), MAX_LIST);
        }
        over(
            i,
            join(&p, "requires"),
            "required fields",
            t.requires.len(),
            MAX_LIST,
        );
        over(
            i,
            join(&p, "sets"),
            "settable fields",
            t.sets.len(),
            MAX_LIST,
        );
        let roles = t.allowed.roles.len();
        over(
            i,
            join(&join(&p, "allowed"), "roles"),
            "roles",
            roles,
            MAX_LIST,
        );
        let groups = t.allowed.groups.len();
        over(
            i,
            join(&join(&p, "allowed"), "groups"),
            "groups",
            groups,
            MAX_LIST,
        );
        over(
            i,
            join(&p, "actions"),
            "actions",
            t.actions.len(),
            MAX_ACTIONS,
        );
        for (a, action) in t.actions.iter().enumerate() {
            if let Some(mapping) = action.mapping() {
                let ap = join(&join(&join(&p, "actions"), a), "mapping");
                over(i, ap, "mapping entries", mapping.len(), MAX_MAPPING);
            }
        }
        if let Some(guard) = &t.guard {
            check_guard(guard, &join(&p, "guard"), i);
        }
    }
    over(
        i,
        "/field_rules".into(),
        "field rule states",
        def.field_rules.len(),
        MAX_STATES,
    );
    for (state, rules) in &def.field_rules {
        let p = join("/field_rules", state);
        over(i, p, "field rules", rules.len(), MAX_FIELDS);
    }
    let layout = &def.layout;
    over(
        i,
        "/layout/sections".into(),
        "sections",
        layout.sections.len(),
        MAX_SECTIONS,
    );
    for (n, section) in layout.sections.iter().enumerate() {
        let p = join(&join("/layout/sections", n), "fields");
        over(i, p, "section fields", section.fields.len(), MAX_FIELDS);
    }
    over(
        i,
        "/layout/states".into(),
        "layout states",
        layout.states.len(),
        MAX_STATES,
    );
    for (state, sections) in &layout.states {
        let p = join("/layout/states", state);
        over(i, p.clone(), "sections", sections.len(), MAX_SECTIONS);
        for (n, section) in sections.iter().enumerate() {
            let sp = join(&join(&p, n), "fields");
            over(i, sp, "section fields", section.fields.len(), MAX_FIELDS);
        }
    }
    issues
}

/// Depth and size of one guard, walked with an explicit stack so that a guard built in code
/// with absurd nesting cannot overflow ours; the walk stops as soon as the size limit is hit.
fn check_guard(guard: &Guard, pointer: &str, issues: &mut Vec<LintIssue>) {
    let mut stack = vec![(guard, 1usize, pointer.to_owned())];
    let mut seen = 1usize;
    while let Some((g, depth, at)) = stack.pop() {
        let (children, key): (&[Guard], &str) = match g {
            Guard::All { all } => (all, "all"),
            Guard::Any { any } => (any, "any"),
            Guard::Not { not } => (std::slice::from_ref(not.as_ref()), "not"),
            Guard::Compare(c) => {
                if let Some(list) = c.value.as_ref().and_then(|v| v.as_array()) {
                    over(
                        issues,
                        join(&at, "value"),
                        "values",
                        list.len(),
                        MAX_GUARD_LIST,
                    );
                }
                continue;
            }
            Guard::Fact { .. } => continue,
        };
        seen += children.len();
        if seen > MAX_GUARD_NODES {
            issues.push(LintIssue::new(
                LIMIT_EXCEEDED,
                pointer.to_owned(),
                format!("the guard has more than {MAX_GUARD_NODES} clauses"),
            ));
            return;
        }
        if depth >= MAX_GUARD_DEPTH {
            issues.push(LintIssue::new(
                LIMIT_EXCEEDED,
                at,
                format!("guards may nest at most {MAX_GUARD_DEPTH} levels"),
            ));
            return;
        }
        let base = join(&at, key);
        for (n, child) in children.iter().enumerate() {
            let child_at = if key == "not" {
                base.clone()
            } else {
                join(&base, n)
            };
            stack.push((child, depth + 1, child_at));
        }
    }
}
