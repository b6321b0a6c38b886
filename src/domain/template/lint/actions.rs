//! Transition actions: the fields, templates and libraries they name, and whether their
//! mappings fit (see `compat` for the table).

use std::collections::{BTreeMap, BTreeSet};

use super::super::compat::{compatible, convert_literal};
use super::super::model::{Action, FieldType};
use super::super::pointer::join;
use super::super::values::check_value;
use super::transitions::is_group_key;
use super::{Index, Issues, LintContext, shown};

/// The fields a mapping writes into.
enum Targets<'a> {
    /// This template (a child ticket of the same template): masters are known too.
    Own(&'a Index<'a>),
    /// Another template or a library: the types, and which fields are internal when known.
    Other(
        &'a BTreeMap<String, FieldType>,
        Option<&'a BTreeSet<String>>,
    ),
}

impl Targets<'_> {
    fn get(&self, key: &str) -> Option<(FieldType, Option<&str>)> {
        match self {
            Targets::Own(index) => index.fields.get(key).map(|f| (f.kind, f.master.as_deref())),
            Targets::Other(fields, _) => fields.get(key).map(|kind| (*kind, None)),
        }
    }

    /// Whether the target field is visible beyond staff (`None`: not known).
    fn is_visible(&self, key: &str) -> Option<bool> {
        match self {
            Targets::Own(index) => index.fields.get(key).map(|f| !f.internal),
            Targets::Other(_, internal) => internal.map(|set| !set.contains(key)),
        }
    }
}

pub(super) fn lint_action(
    action: &Action,
    at: &str,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    match action {
        Action::SetField { field, value } => {
            let Some(def) = index.fields.get(field.as_str()) else {
                let message = format!("there is no field {}", shown(field));
                out.error("unknown_field", join(at, "field"), message);
                return;
            };
            // Checked against every known item, active or not: the master may change
            // before the transition runs, and the engine rechecks nothing here.
            if let Err((code, message)) = check_value(def, value, &ctx.masters, None) {
                let code = if code == "unknown_item" {
                    "unknown_master_item"
                } else {
                    "incompatible_mapping"
                };
                out.error(code, join(at, "value"), format!("the value {message}"));
            }
        }
        Action::Assign {
            group,
            user,
            from_field,
        } => {
            let targets = [group.is_some(), user.is_some(), from_field.is_some()];
            if targets.iter().filter(|t| **t).count() != 1 {
                out.error(
                    "invalid_action",
                    at,
                    "`assign` needs exactly one of `group`, `user` or `from_field`",
                );
            }
            if let Some(group) = group
                && !is_group_key(group)
            {
                out.error(
                    "invalid_key",
                    join(at, "group"),
                    "a group key must be 1 to 200 characters",
                );
            }
            if let Some(source) = from_field {
                match index.fields.get(source.as_str()) {
                    None => {
                        let message = format!("there is no field {}", shown(source));
                        out.error("unknown_field", join(at, "from_field"), message);
                    }
                    Some(f) if !matches!(f.kind, FieldType::User | FieldType::Group) => out.error(
                        "incompatible_mapping",
                        join(at, "from_field"),
                        format!(
                            "a ticket can be assigned from a user or group field, not {}",
                            f.kind
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
        Action::CreateChildTicket { template, mapping } => {
            let targets = if ctx.template_key.as_deref() == Some(template.as_str()) {
                Some(Targets::Own(index))
            } else {
                ctx.templates
                    .get(template)
                    .map(|fields| Targets::Other(fields, ctx.template_internal.get(template)))
            };
            if targets.is_none() {
                let message = format!("there is no template {}", shown(template));
                out.error("unknown_template", join(at, "template"), message);
            }
            lint_mapping(
                mapping,
                &join(at, "mapping"),
                targets.as_ref(),
                index,
                ctx,
                out,
            );
        }
        Action::LibraryUpsert {
            library,
            record_field,
            mapping,
        } => {
            let targets = library_targets(library, at, ctx, out);
            if let Some(record_field) = record_field {
                lint_record_field(library, record_field, at, index, out);
            }
            lint_mapping(
                mapping,
                &join(at, "mapping"),
                targets.as_ref(),
                index,
                ctx,
                out,
            );
        }
        Action::LibraryUpdate {
            library,
            record_field,
            mapping,
        } => {
            let targets = library_targets(library, at, ctx, out);
            lint_record_field(library, record_field, at, index, out);
            lint_mapping(
                mapping,
                &join(at, "mapping"),
                targets.as_ref(),
                index,
                ctx,
                out,
            );
        }
        Action::Notify { event } => {
            if !is_event_name(event) {
                out.error(
                    "invalid_key",
                    join(at, "event"),
                    format!(
                        "{} is not an event name: dot-separated lowercase words such as \
                         `incident.closed`",
                        shown(event)
                    ),
                );
            }
        }
    }
}

/// `record_field` must be a `library_ref` field of this template into the same library.
fn lint_record_field(
    library: &str,
    record_field: &str,
    at: &str,
    index: &Index<'_>,
    out: &mut Issues,
) {
    let record_at = join(at, "record_field");
    match index.fields.get(record_field) {
        None => {
            let message = format!("there is no field {}", shown(record_field));
            out.error("unknown_field", record_at, message);
        }
        Some(f) if f.kind != FieldType::LibraryRef => out.error(
            "incompatible_mapping",
            record_at,
            format!("`record_field` must be a library_ref field, not {}", f.kind),
        ),
        Some(f) if f.library.as_deref() != Some(library) => out.error(
            "incompatible_mapping",
            record_at,
            format!(
                "{} refers to another library than {}",
                shown(record_field),
                shown(library)
            ),
        ),
        Some(_) => {}
    }
}

fn library_targets<'c>(
    library: &str,
    at: &str,
    ctx: &'c LintContext,
    out: &mut Issues,
) -> Option<Targets<'c>> {
    let fields = ctx.libraries.get(library);
    if fields.is_none() {
        let message = format!("there is no library {}", shown(library));
        out.error("unknown_library", join(at, "library"), message);
    }
    fields.map(|fields| Targets::Other(fields, ctx.library_internal.get(library)))
}

/// `incident.closed`: dot-separated words of `[a-z][a-z0-9_]*`, at most 100 characters.
pub fn is_event_name(raw: &str) -> bool {
    raw.len() <= 100
        && raw.split('.').all(|word| {
            let mut chars = word.chars();
            chars.next().is_some_and(|c| c.is_ascii_lowercase())
                && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
}

/// Checks each `target: source` entry. Without `targets` (an unknown template or library,
/// reported already) only the sources are checked.
fn lint_mapping(
    mapping: &BTreeMap<String, String>,
    at: &str,
    targets: Option<&Targets<'_>>,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    for (target, source) in mapping {
        let entry_at = join(at, target);
        let target_field = match targets {
            Some(targets) => match targets.get(target) {
                Some(found) => Some(found),
                None => {
                    let message = format!("the target has no field {}", shown(target));
                    out.error("unknown_field", entry_at, message);
                    continue;
                }
            },
            None => None,
        };
        if let Some(literal) = source.strip_prefix('=') {
            let Some((kind, master)) = target_field else {
                continue;
            };
            match convert_literal(kind, literal) {
                None => out.error(
                    "incompatible_mapping",
                    entry_at,
                    format!("the literal {} is not a {kind} value", shown(literal)),
                ),
                Some(value) => {
                    let items = master.and_then(|m| ctx.masters.get(m));
                    let codes: Vec<&str> = match &value {
                        serde_json::Value::String(s) if kind.is_select() => vec![s.as_str()],
                        serde_json::Value::Array(list) => {
                            list.iter().filter_map(|v| v.as_str()).collect()
                        }
                        _ => Vec::new(),
                    };
                    if let Some(items) = items
                        && let Some(missing) = codes.iter().find(|c| !items.contains(**c))
                    {
                        let message = format!("the master has no item {}", shown(missing));
                        out.error("unknown_master_item", entry_at, message);
                    }
                }
            }
            continue;
        }
        let Some(source_field) = index.fields.get(source.as_str()) else {
            let message = format!("this template has no field {}", shown(source));
            out.error("unknown_field", entry_at, message);
            continue;
        };
        let Some((kind, master)) = target_field else {
            continue;
        };
        if source_field.internal && targets.and_then(|t| t.is_visible(target)) == Some(true) {
            out.warn(
                "internal_exposed",
                entry_at.clone(),
                format!(
                    "{} is internal but {} is not: whoever may read the target (requesters, \
                     partners) would see the value",
                    shown(source),
                    shown(target)
                ),
            );
        }
        if !compatible(kind, source_field.kind) {
            out.error(
                "incompatible_mapping",
                entry_at,
                format!(
                    "a {} field cannot be written into a {kind} field",
                    source_field.kind
                ),
            );
        } else if let (Some(target_master), Some(source_master)) = (master, &source_field.master)
            && target_master != source_master
        {
            out.error(
                "incompatible_mapping",
                entry_at,
                format!(
                    "{} and {} use different masters",
                    shown(source),
                    shown(target)
                ),
            );
        }
    }
}
