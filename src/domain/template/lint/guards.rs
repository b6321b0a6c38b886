//! Guards: known fields and facts, operators that fit the field's type, values of the
//! field's type.

use serde_json::Value;

use super::super::guard::{Comparison, Guard, GuardOp, KNOWN_FACTS};
use super::super::limits::MAX_GUARD_DEPTH;
use super::super::model::{FieldDef, FieldType};
use super::super::pointer::join;
use super::super::scalar::{is_uuid, parse_date, parse_datetime};
use super::{Index, Issues, LintContext, shown};

pub(super) fn lint_guard(
    guard: &Guard,
    at: &str,
    depth: usize,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    // Deeper nesting is a limit error already; stopping here also bounds our recursion.
    if depth > MAX_GUARD_DEPTH {
        return;
    }
    match guard {
        Guard::All { all: children } | Guard::Any { any: children } => {
            let word = if matches!(guard, Guard::All { .. }) {
                "all"
            } else {
                "any"
            };
            if children.is_empty() {
                out.error(
                    "invalid_guard",
                    at,
                    format!("`{word}` needs at least one clause"),
                );
            }
            let list_at = join(at, word);
            for (n, child) in children.iter().enumerate() {
                lint_guard(child, &join(&list_at, n), depth + 1, index, ctx, out);
            }
        }
        Guard::Not { not } => lint_guard(not, &join(at, "not"), depth + 1, index, ctx, out),
        Guard::Fact { fact } => {
            if !KNOWN_FACTS.contains(&fact.as_str()) {
                let message = format!(
                    "{} is not a fact; facts are {}",
                    shown(fact),
                    KNOWN_FACTS.join(", ")
                );
                out.error("unknown_fact", join(at, "fact"), message);
            }
        }
        Guard::Compare(c) => lint_comparison(c, at, index, ctx, out),
    }
}

fn op_name(op: GuardOp) -> &'static str {
    match op {
        GuardOp::Eq => "eq",
        GuardOp::Ne => "ne",
        GuardOp::In => "in",
        GuardOp::Gt => "gt",
        GuardOp::Ge => "ge",
        GuardOp::Lt => "lt",
        GuardOp::Le => "le",
        GuardOp::IsSet => "is_set",
    }
}

fn lint_comparison(
    c: &Comparison,
    at: &str,
    index: &Index<'_>,
    ctx: &LintContext,
    out: &mut Issues,
) {
    let Some(field) = index.fields.get(c.field.as_str()) else {
        let message = format!("there is no field {}", shown(&c.field));
        out.error("unknown_field", join(at, "field"), message);
        return;
    };
    let op = op_name(c.op);
    let mismatch = "guard_type_mismatch";
    match (c.op, &c.value) {
        (GuardOp::IsSet, None) => {}
        (GuardOp::IsSet, Some(_)) => out.error(
            mismatch,
            join(at, "value"),
            "`is_set` takes no value; wrap it in `not` to require an empty field",
        ),
        (_, None) => out.error(mismatch, at, format!("`{op}` needs a `value`")),
        (o, Some(_)) if o.is_ordering() && !field.kind.is_ordered() => out.error(
            mismatch,
            join(at, "op"),
            format!(
                "`{op}` cannot compare a {} field; only numbers, dates and datetimes have an order",
                field.kind
            ),
        ),
        (GuardOp::In, Some(value)) => match value.as_array() {
            None => out.error(mismatch, join(at, "value"), "`in` needs a list of values"),
            Some(list) => {
                let list_at = join(at, "value");
                if list.is_empty() {
                    out.error(
                        "invalid_guard",
                        &list_at,
                        "an empty `in` list never matches",
                    );
                }
                for (j, item) in list.iter().enumerate() {
                    lint_operand(field, item, &join(&list_at, j), ctx, out);
                }
            }
        },
        (_, Some(value)) => lint_operand(field, value, &join(at, "value"), ctx, out),
    }
}

fn lint_operand(field: &FieldDef, value: &Value, at: &str, ctx: &LintContext, out: &mut Issues) {
    let fits = match field.kind {
        FieldType::Text | FieldType::LongText | FieldType::Select | FieldType::MultiSelect => {
            value.is_string()
        }
        FieldType::Integer => value.as_i64().is_some(),
        FieldType::Decimal => value.is_number(),
        FieldType::Date => value.as_str().and_then(parse_date).is_some(),
        FieldType::Datetime => value.as_str().and_then(parse_datetime).is_some(),
        FieldType::Boolean => value.is_boolean(),
        FieldType::User
        | FieldType::Group
        | FieldType::Organization
        | FieldType::LibraryRef
        | FieldType::Attachment => value.as_str().is_some_and(is_uuid),
    };
    if !fits {
        let mut shown_value = value.to_string();
        if shown_value.chars().count() > 64 {
            shown_value = shown_value.chars().take(64).chain(['…']).collect();
        }
        out.error(
            "guard_type_mismatch",
            at,
            format!(
                "{shown_value} is not a value of the {} field {}",
                field.kind,
                shown(&field.key)
            ),
        );
        return;
    }
    if field.kind.is_select()
        && let (Some(code), Some(items)) = (
            value.as_str(),
            field.master.as_ref().and_then(|m| ctx.masters.get(m)),
        )
        && !items.contains(code)
    {
        let message = format!(
            "the master of {} has no item {}",
            shown(&field.key),
            shown(code)
        );
        out.error("unknown_master_item", at, message);
    }
}
