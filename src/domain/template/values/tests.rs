use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::super::parse::parse_definition;
use super::*;

const ID: &str = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";

fn def() -> TemplateDefinition {
    let label = json!({"ja": "x", "en": "x"});
    let field = |key: &str, kind: &str, extra: Value| {
        let mut f = json!({"key": key, "type": kind, "label": label});
        for (k, v) in extra.as_object().unwrap() {
            f[k] = v.clone();
        }
        f
    };
    let v = json!({
        "name": label, "key_prefix": "ALL",
        "fields": [
            field("t", "text", json!({"min_length": 2, "max_length": 5, "pattern": "^[a-zあ-ん]+$", "required": true})),
            field("lt", "long_text", json!({})),
            field("i", "integer", json!({"min": 1, "max": 10})),
            field("d", "decimal", json!({"min": 0.5})),
            field("day", "date", json!({"min": "2024-01-01"})),
            field("at", "datetime", json!({"max": "2030-01-01T00:00:00Z"})),
            field("b", "boolean", json!({})),
            field("s", "select", json!({"master": "impact", "allowed_items": ["high", "medium", "retired"]})),
            field("ms", "multi_select", json!({"master": "category"})),
            field("u", "user", json!({})),
            field("g", "group", json!({})),
            field("o", "organization", json!({})),
            field("lr", "library_ref", json!({"library": "cmdb"})),
            field("a", "attachment", json!({}))
        ],
        "stages": [{"key": "s", "label": label, "states": [
            {"key": "open", "label": label, "initial": true},
            {"key": "closed", "label": label, "terminal": true}]}],
        "transitions": [{"key": "close", "label": label, "from": ["open"], "to": "closed", "allowed": {"roles": ["agent"]}}],
        "field_rules": {"closed": {"b": "required", "i": "read_only", "lt": "hidden"}}
    });
    parse_definition(&v).unwrap()
}

fn masters() -> MasterItems {
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    BTreeMap::from([
        ("impact".to_owned(), set(&["high", "medium", "low"])),
        ("category".to_owned(), set(&["network", "server"])),
    ])
}

fn check(values: Value, state: Option<&str>, check_required: bool) -> Vec<(String, &'static str)> {
    let masters = masters();
    let ctx = ValidationContext {
        state,
        masters: &masters,
        check_required,
        previous: None,
    };
    match validate_values(&def(), values.as_object().unwrap(), ctx) {
        Ok(()) => Vec::new(),
        Err(v) => v.into_iter().map(|v| (v.field, v.code)).collect(),
    }
}

fn one(field: &str, value: Value) -> Vec<&'static str> {
    check(json!({ field: value }), None, false)
        .into_iter()
        .map(|(_, c)| c)
        .collect()
}

#[test]
fn accepts_a_full_valid_ticket() {
    let v = json!({
        "t": "abc", "lt": "long\ntext", "i": 10, "d": 0.5, "day": "2024-01-01",
        "at": "2029-12-31T23:59:59+09:00", "b": false, "s": "high", "ms": ["network", "server"],
        "u": ID, "g": ID, "o": ID, "lr": ID, "a": ID
    });
    assert_eq!(check(v, Some("closed"), true), vec![]);
}

#[test]
fn types() {
    for (field, bad) in [
        ("t", json!(5)),
        ("lt", json!(["x"])),
        ("i", json!(1.5)),
        ("i", json!("3")),
        ("d", json!("0.7")),
        ("day", json!("2024-02-30")),
        ("day", json!("2024-01-01T00:00:00Z")),
        ("at", json!("2024-01-01")),
        ("b", json!("true")),
        ("s", json!(["high"])),
        ("ms", json!("network")),
        ("ms", json!([1])),
        ("u", json!("not-a-uuid")),
        ("g", json!(ID.replace('-', ""))),
        ("a", json!(42)),
    ] {
        assert_eq!(
            one(field, bad.clone()),
            vec!["invalid_type"],
            "{field}: {bad}"
        );
    }
    // `null` clears a field.
    assert_eq!(one("i", json!(null)), Vec::<&str>::new());
}

#[test]
fn lengths_count_characters_and_patterns_apply() {
    assert_eq!(one("t", json!("あいう")), Vec::<&str>::new());
    assert_eq!(one("t", json!("a")), vec!["too_short"]);
    assert_eq!(one("t", json!("abcdef")), vec!["too_long"]);
    assert_eq!(one("t", json!("あいうえおか")), vec!["too_long"]);
    assert_eq!(one("t", json!("AB")), vec!["pattern"]);
    // Without a `max_length`, text still has a cap.
    assert_eq!(one("lt", json!("x".repeat(200_001))), vec!["too_long"]);
}

#[test]
fn ranges() {
    assert_eq!(one("i", json!(0)), vec!["below_min"]);
    assert_eq!(one("i", json!(11)), vec!["above_max"]);
    assert_eq!(one("d", json!(0.4)), vec!["below_min"]);
    assert_eq!(one("day", json!("2023-12-31")), vec!["below_min"]);
    assert_eq!(
        one("at", json!("2030-01-01T09:00:01+09:00")),
        vec!["above_max"]
    );
    assert_eq!(
        one("at", json!("2030-01-01T09:00:00+09:00")),
        Vec::<&str>::new()
    );
}

#[test]
fn master_items() {
    assert_eq!(one("s", json!("unknown")), vec!["unknown_item"]);
    // Known to the master but inactive (not in the active set).
    assert_eq!(one("s", json!("retired")), vec!["unknown_item"]);
    assert_eq!(one("s", json!("low")), vec!["not_allowed"]);
    assert_eq!(
        one("ms", json!(["network", "network"])),
        vec!["duplicate_item"]
    );
    assert_eq!(one("ms", json!(["network", "old"])), vec!["unknown_item"]);
    assert_eq!(one("ms", json!([])), Vec::<&str>::new());
}

#[test]
fn deactivated_items_do_not_break_existing_tickets() {
    let masters = masters();
    let stored = json!({"t": "ab", "s": "retired", "ms": ["network", "old"]});
    let stored = stored.as_object().unwrap();
    let ctx = ValidationContext {
        state: None,
        masters: &masters,
        check_required: true,
        previous: Some(stored),
    };
    let mut updated = stored.clone();
    updated.insert("b".into(), json!(true));
    assert_eq!(validate_values(&def(), &updated, ctx), Ok(()));
    // Adding another inactive item is refused; keeping the old one is not.
    updated.insert("ms".into(), json!(["old", "older"]));
    let err = validate_values(&def(), &updated, ctx).unwrap_err();
    assert_eq!(err[0].code, "unknown_item");
    assert_eq!(err[0].field, "fields.ms");
}

#[test]
fn unknown_fields_are_rejected_in_sorted_order() {
    let got = check(json!({"zz": 1, "t": "ab", "aa": 2}), None, false);
    assert_eq!(
        got,
        vec![
            ("fields.aa".into(), "unknown_field"),
            ("fields.zz".into(), "unknown_field")
        ]
    );
}

#[test]
fn required_fields() {
    assert_eq!(
        check(json!({}), None, true),
        vec![("fields.t".into(), "required")]
    );
    assert_eq!(
        check(json!({"t": ""}), None, true),
        vec![("fields.t".into(), "required")]
    );
    assert_eq!(check(json!({}), None, false), vec![]);
    // `closed` requires `b` as well.
    assert_eq!(
        check(json!({"t": "ab"}), Some("closed"), true),
        vec![("fields.b".into(), "required")]
    );
    assert_eq!(
        check(json!({"t": "ab", "b": false}), Some("closed"), true),
        vec![]
    );
}

#[test]
fn violations_serialize_for_problem_details() {
    let masters = masters();
    let ctx = ValidationContext {
        state: None,
        masters: &masters,
        check_required: false,
        previous: None,
    };
    let err = validate_values(&def(), json!({"i": 0}).as_object().unwrap(), ctx).unwrap_err();
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!([{"field": "fields.i", "code": "below_min", "message": "must be at least 1"}])
    );
}

#[test]
fn editable_fields() {
    let def = def();
    assert_eq!(check_editable(&def, "open", ["i", "lt"]), Ok(()));
    let err = check_editable(&def, "closed", ["i", "lt", "b", "t"]).unwrap_err();
    let got: Vec<_> = err.iter().map(|v| (v.field.as_str(), v.code)).collect();
    assert_eq!(
        got,
        vec![("fields.i", "read_only"), ("fields.lt", "hidden")]
    );
}

#[test]
fn a_bare_field_list_validates_like_a_template_without_states() {
    let def = def();
    let fields: &[FieldDef] = &def.fields;
    let masters = masters();
    let ctx = ValidationContext {
        state: Some("closed"),
        masters: &masters,
        check_required: true,
        previous: None,
    };
    let values = json!({"i": 0}).as_object().unwrap().clone();
    let from_list = validate_values(fields, &values, ctx).unwrap_err();
    let from_template =
        validate_values(&def, &values, ValidationContext { state: None, ..ctx }).unwrap_err();
    // The same checks; a bare list has no per-state rules.
    assert_eq!(from_list, from_template);
    assert_eq!(check_editable(fields, "closed", ["i", "lt"]), Ok(()));
}
