//! The linter: every problem of a definition, each with a stable code and the JSON pointer
//! of the offending part, errors (the definition cannot be published) apart from warnings.
//!
//! Issues come in a deterministic order: limits first, then document order (name, key
//! prefix, fields, stages, transitions, field rules, layout), then the state-graph checks,
//! then guard overlaps, then the practice warnings (`practice`). Maps (`field_rules`, `layout.states`, `mapping`) are walked in key
//! order.

mod actions;
mod basic;
mod graph;
mod guards;
mod overlap;
mod practice;
mod rules;
mod transitions;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use serde::Serialize;

use super::limits::check_limits;
use super::model::{FieldDef, FieldType, Label, Section, State, TemplateDefinition};
use super::pointer::join;

/// One problem, located by a JSON pointer into the definition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LintIssue {
    pub code: &'static str,
    pub pointer: String,
    pub message: String,
}

impl LintIssue {
    pub fn new(code: &'static str, pointer: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            pointer: pointer.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LintReport {
    pub errors: Vec<LintIssue>,
    pub warnings: Vec<LintIssue>,
}

impl LintReport {
    /// No errors (warnings do not stop publishing).
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// What the linter needs to know about the rest of the tenant.
#[derive(Debug, Clone, Default)]
pub struct LintContext {
    /// The key of the template being linted, so that a child ticket of the same template
    /// is checked against this very definition.
    pub template_key: Option<String>,
    /// Master key → every item code (active or not: an inactive item in a rule is still
    /// a valid reference).
    pub masters: BTreeMap<String, BTreeSet<String>>,
    /// Other templates' key → their field key → type, for child-ticket mappings.
    pub templates: BTreeMap<String, BTreeMap<String, FieldType>>,
    /// Library key → its field key → type, for `library_ref` fields and library actions.
    pub libraries: BTreeMap<String, BTreeMap<String, FieldType>>,
    /// Other templates' key → their internal field keys, and the same for libraries: a
    /// mapping from an internal field into a field that is not internal is warned about
    /// (`internal_exposed`). A target missing here is not checked.
    pub template_internal: BTreeMap<String, BTreeSet<String>>,
    pub library_internal: BTreeMap<String, BTreeSet<String>>,
    /// Other templates' key → their field definitions, and the same for libraries: the
    /// practice checks on mappings read lengths, masters and required fields from them. A
    /// target missing here is not checked.
    pub template_defs: BTreeMap<String, Vec<FieldDef>>,
    pub library_defs: BTreeMap<String, Vec<FieldDef>>,
}

pub fn lint(def: &TemplateDefinition, ctx: &LintContext) -> LintReport {
    let mut out = Issues::default();
    let limits = check_limits(def);
    // Everything else is linear in the definition; only the pairwise guard comparison is
    // skipped for a definition over the limits (possible only when built in code).
    let within_limits = limits.is_empty();
    out.errors.extend(limits);
    let index = Index::build(def);
    basic::lint_header(def, &mut out);
    basic::lint_fields(&def.fields, ctx, &mut out);
    basic::lint_stages(def, &mut out);
    transitions::lint_transitions(def, &index, ctx, &mut out);
    rules::lint_field_rules(def, &index, &mut out);
    rules::lint_layout(def, &index, &mut out);
    graph::lint_graph(def, &index, &mut out);
    if within_limits {
        overlap::lint_overlaps(def, &index, &mut out);
    }
    practice::lint_practice(def, &index, ctx, &mut out);
    LintReport {
        errors: out.errors,
        warnings: out.warnings,
    }
}

/// Lints field definitions alone, exactly as inside a template (pointers `/fields/<n>/…`):
/// for other definitions built from the same field machinery (libraries).
pub fn lint_field_defs(fields: &[FieldDef], ctx: &LintContext) -> LintReport {
    lint_field_collection(None, fields, &[], ctx)
}

/// Lints a definition made of fields alone (a library): its name (at `/name`), its fields
/// exactly as inside a template (`/fields/<n>/…`), and a layout of sections over them
/// (`/layout/sections/<n>/…`).
pub fn lint_field_collection(
    name: Option<&Label>,
    fields: &[FieldDef],
    sections: &[Section],
    ctx: &LintContext,
) -> LintReport {
    let mut out = Issues::default();
    if let Some(name) = name {
        check_label(name, "/name", &mut out);
    }
    basic::lint_fields(fields, ctx, &mut out);
    let has_field = |key: &str| fields.iter().any(|f| f.key == key);
    rules::lint_sections(sections, "/layout/sections", &has_field, &mut out);
    practice::lint_placement(fields, sections, &mut out);
    LintReport {
        errors: out.errors,
        warnings: out.warnings,
    }
}

#[derive(Default)]
struct Issues {
    errors: Vec<LintIssue>,
    warnings: Vec<LintIssue>,
}

impl Issues {
    fn error(
        &mut self,
        code: &'static str,
        pointer: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(LintIssue::new(code, pointer, message));
    }

    fn warn(&mut self, code: &'static str, pointer: impl Into<String>, message: impl Into<String>) {
        self.warnings.push(LintIssue::new(code, pointer, message));
    }
}

/// Lookups by key (first occurrence wins; later duplicates are reported by the key checks).
struct Index<'a> {
    fields: HashMap<&'a str, &'a FieldDef>,
    /// State key → position in `states`.
    state_pos: HashMap<&'a str, usize>,
    /// Every state in definition order, with its pointer.
    states: Vec<(&'a State, String)>,
}

impl<'a> Index<'a> {
    fn build(def: &'a TemplateDefinition) -> Self {
        let mut fields = HashMap::with_capacity(def.fields.len());
        for f in &def.fields {
            fields.entry(f.key.as_str()).or_insert(f);
        }
        let mut states = Vec::new();
        let mut state_pos = HashMap::new();
        for (si, stage) in def.stages.iter().enumerate() {
            let stage_at = join(&join("/stages", si), "states");
            for (ti, state) in stage.states.iter().enumerate() {
                state_pos.entry(state.key.as_str()).or_insert(states.len());
                states.push((state, join(&stage_at, ti)));
            }
        }
        Self {
            fields,
            state_pos,
            states,
        }
    }

    fn has_state(&self, key: &str) -> bool {
        self.state_pos.contains_key(key)
    }

    /// Whether position `i` is the first state with its key (the one references resolve to).
    fn is_canonical(&self, i: usize) -> bool {
        self.states
            .get(i)
            .is_some_and(|(s, _)| self.state_pos.get(s.key.as_str()) == Some(&i))
    }
}

/// A user-supplied string quoted in a message, cut short so messages stay small.
fn shown(raw: &str) -> String {
    const MAX: usize = 64;
    if raw.chars().count() <= MAX {
        format!("`{raw}`")
    } else {
        format!("`{}…`", raw.chars().take(MAX).collect::<String>())
    }
}

/// `^[a-z][a-z0-9_]{0,62}$`
pub fn is_key(raw: &str) -> bool {
    let mut chars = raw.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && raw.len() <= 63
}

/// `^[A-Z][A-Z0-9]{0,9}$`
pub fn is_key_prefix(raw: &str) -> bool {
    let mut chars = raw.chars();
    chars.next().is_some_and(|c| c.is_ascii_uppercase())
        && chars.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
        && raw.len() <= 10
}

/// Checks a key's form and uniqueness among `seen`.
fn check_key<'a>(
    key: &'a str,
    pointer: String,
    what: &str,
    seen: &mut HashSet<&'a str>,
    out: &mut Issues,
) {
    if !is_key(key) {
        out.error(
            "invalid_key",
            pointer.clone(),
            format!(
                "{} is not a valid {what} key: a lowercase letter, then up to 62 lowercase \
                 letters, digits or underscores",
                shown(key)
            ),
        );
    }
    if !seen.insert(key) {
        out.error(
            "duplicate_key",
            pointer,
            format!("{what} key {} is used more than once", shown(key)),
        );
    }
}

fn check_label(label: &Label, pointer: &str, out: &mut Issues) {
    const MAX: usize = super::limits::MAX_LABEL_CHARS;
    for (lang, text) in [("ja", &label.ja), ("en", &label.en)] {
        if text.trim().is_empty() {
            out.error("invalid_label", join(pointer, lang), "must not be empty");
        } else if text.chars().count() > MAX {
            let message = format!("must be at most {MAX} characters");
            out.error("invalid_label", join(pointer, lang), message);
        }
    }
}

#[cfg(test)]
mod tests;
