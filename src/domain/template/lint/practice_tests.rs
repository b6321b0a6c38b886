//! The practice checks, one test per code, each on the lint-clean incident fixture with
//! one change.

use serde_json::{Value, json};

use super::super::super::fixtures::{incident_clean, lint_context};
use super::super::super::parse::parse_definition;
use super::super::{LintContext, LintIssue, LintReport, lint, lint_field_collection};
use super::*;

/// The fixture's context, with the full fields of the `problem` template and the
/// `knowledge_base` library so mappings into them are checked.
fn context() -> LintContext {
    let field = |v: Value| -> FieldDef { serde_json::from_value(v).unwrap() };
    let mut ctx = lint_context();
    ctx.template_defs.insert(
        "problem".into(),
        vec![
            field(
                json!({"key": "title", "type": "text", "required": true, "max_length": 200,
                         "label": {"ja": "件名", "en": "Title"}}),
            ),
            field(
                json!({"key": "detail", "type": "long_text", "max_length": 1000,
                         "label": {"ja": "詳細", "en": "Detail"}}),
            ),
            field(
                json!({"key": "level", "type": "select", "master": "category",
                         "label": {"ja": "分類", "en": "Level"}}),
            ),
        ],
    );
    ctx.library_defs.insert(
        "knowledge_base".into(),
        vec![
            field(json!({"key": "title", "type": "text", "required": true,
                         "label": {"ja": "件名", "en": "Title"}})),
            field(json!({"key": "body", "type": "long_text",
                         "label": {"ja": "本文", "en": "Body"}})),
        ],
    );
    ctx
}

fn report(v: &Value) -> LintReport {
    let def = parse_definition(v).unwrap_or_else(|e| panic!("does not parse: {e:#?}"));
    lint(&def, &context())
}

fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = incident_clean();
    f(&mut v);
    v
}

fn codes(issues: &[LintIssue], code: &str) -> Vec<String> {
    issues
        .iter()
        .filter(|i| i.code == code)
        .map(|i| i.pointer.clone())
        .collect()
}

#[track_caller]
fn assert_warnings(v: Value, code: &str, pointers: &[&str]) {
    let r = report(&v);
    assert_eq!(codes(&r.warnings, code), pointers, "{:#?}", r.warnings);
    assert!(codes(&r.errors, code).is_empty());
}

/// Appends a transition from `new` to `waiting` with `extra` merged in; its index is 4.
fn push_transition(v: &mut Value, extra: Value) {
    let mut t = json!({"key": "extra", "label": {"ja": "追加", "en": "Extra"},
                       "from": ["new"], "to": "waiting", "allowed": {"roles": ["agent"]}});
    if let (Some(t), Some(extra)) = (t.as_object_mut(), extra.as_object()) {
        t.extend(extra.clone());
    }
    v["transitions"].as_array_mut().unwrap().push(t);
}

#[test]
fn the_clean_incident_has_no_practice_issue_but_its_partial_layout() {
    let r = report(&incident_clean());
    assert!(r.is_ok(), "{:#?}", r.errors);
    let other: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| !matches!(w.code, "field_not_placed" | "sets_hidden_field"))
        .collect();
    assert!(other.is_empty(), "{other:#?}");
}

#[test]
fn internal_title_is_an_error() {
    let r = report(&with(|v| v["fields"][0]["internal"] = json!(true)));
    assert_eq!(codes(&r.errors, "internal_title"), ["/fields/0/internal"]);
    assert!(!r.is_ok());
}

#[test]
fn no_title_source() {
    // `title` renamed, and both text fields internal.
    let v = with(|v| {
        v["fields"][0]["key"] = json!("subject");
        v["fields"][0]["internal"] = json!(true);
        v["fields"][4]["internal"] = json!(true);
    });
    assert_warnings(v, "no_title_source", &["/fields"]);
    // A public text field is a title source.
    let v = with(|v| v["fields"][0]["key"] = json!("subject"));
    assert_warnings(v, "no_title_source", &[]);
}

#[test]
fn terminal_sla_running() {
    let v = with(|v| v["stages"][1]["states"][0]["sla"] = json!("paused"));
    assert_warnings(v, "terminal_sla_running", &["/stages/1/states/0/sla"]);
}

#[test]
fn stage_state_key_clash() {
    let v = with(|v| v["stages"][1]["key"] = json!("closed"));
    assert_warnings(v, "stage_state_key_clash", &["/stages/1/key"]);
}

#[test]
fn leaves_terminal_and_self_transition() {
    let v = with(|v| push_transition(v, json!({"from": ["closed", "waiting"]})));
    assert_warnings(v.clone(), "leaves_terminal", &["/transitions/4/from/0"]);
    assert_warnings(v, "self_transition", &["/transitions/4/to"]);
}

#[test]
fn auditor_allowed() {
    let v = with(|v| push_transition(v, json!({"allowed": {"roles": ["agent", "auditor"]}})));
    assert_warnings(v, "auditor_allowed", &["/transitions/4/allowed/roles/1"]);
}

#[test]
fn clears_required() {
    let v = with(|v| {
        let clear = json!([{"type": "set_field", "field": "title", "value": null},
                           {"type": "set_field", "field": "code", "value": null}]);
        push_transition(v, json!({"actions": clear}));
    });
    assert_warnings(v, "clears_required", &["/transitions/4/actions/0/value"]);
}

#[test]
fn required_not_guaranteed() {
    // `waiting` requires `code`; `hold` enters it without requiring it.
    let v = with(|v| v["field_rules"]["waiting"] = json!({"code": "required"}));
    assert_warnings(v, "required_not_guaranteed", &["/transitions/0"]);
    let v = with(|v| {
        v["field_rules"]["waiting"] = json!({"code": "required"});
        v["transitions"][0]["requires"] = json!(["code"]);
    });
    assert_warnings(v, "required_not_guaranteed", &[]);
    // A guard that proves the field set guarantees it too; `ne` does not.
    for (op, expected) in [("eq", &[][..]), ("ne", &["/transitions/0"][..])] {
        let v = with(|v| {
            v["field_rules"]["waiting"] = json!({"code": "required"});
            v["transitions"][0]["guard"] = json!({"field": "code", "op": op, "value": "ABC-1"});
        });
        assert_warnings(v, "required_not_guaranteed", expected);
    }
}

#[test]
fn required_read_only_on_create() {
    let v = with(|v| v["field_rules"]["new"] = json!({"title": "read_only"}));
    assert_warnings(
        v,
        "required_read_only_on_create",
        &["/field_rules/new/title"],
    );
}

#[test]
fn field_not_placed_and_hidden_field_placed() {
    let v = with(|v| {
        v["layout"]["sections"][0]["fields"] = json!([
            "title", "impact", "tags", "effort", "code", "notes", "kb", "owner"
        ]);
        v["field_rules"]["closed"]["effort"] = json!("hidden");
    });
    assert_warnings(v.clone(), "field_not_placed", &["/fields/8"]);
    assert_warnings(
        v,
        "hidden_field_placed",
        &["/layout/states/closed/0/fields/1"],
    );
    // A library's layout too.
    let field = |key: &str| FieldDef::new(key, FieldType::Text, label());
    let section: Section =
        serde_json::from_value(json!({"key": "main", "label": label(), "fields": ["a"]})).unwrap();
    let r = lint_field_collection(None, &[field("a"), field("b")], &[section], &context());
    assert_eq!(codes(&r.warnings, "field_not_placed"), ["/fields/1"]);
}

fn label() -> super::super::super::model::Label {
    serde_json::from_value(json!({"ja": "ラベル", "en": "Label"})).unwrap()
}

#[test]
fn mapped_value_too_long() {
    let long = format!("={}", "x".repeat(201));
    let v = with(|v| {
        let actions = json!([
            {"type": "create_child_ticket", "template": "problem",
             "mapping": {"title": "code", "detail": "title"}},
            {"type": "create_child_ticket", "template": "problem", "mapping": {"title": long}},
            {"type": "library_upsert", "library": "knowledge_base",
             "mapping": {"title": "title", "body": "notes"}}
        ]);
        push_transition(v, json!({"actions": actions}));
    });
    // `code` has no max_length (10,000) into 200; `title` (200) into 1,000 is fine; the
    // literal is 201 characters; `notes` (200,000) into the library body (200,000) fits.
    assert_warnings(
        v,
        "mapped_value_too_long",
        &[
            "/transitions/4/actions/0/mapping/title",
            "/transitions/4/actions/1/mapping/title",
        ],
    );
}

#[test]
fn unmapped_required() {
    let v = with(|v| {
        let actions = json!([
            {"type": "create_child_ticket", "template": "problem", "mapping": {"detail": "title"}},
            {"type": "library_upsert", "library": "knowledge_base", "mapping": {"body": "title"}},
            {"type": "library_update", "library": "knowledge_base", "record_field": "kb",
             "mapping": {"body": "title"}}
        ]);
        push_transition(v, json!({"actions": actions}));
    });
    // The update never creates a record, so it need not fill every required field.
    assert_warnings(
        v,
        "unmapped_required",
        &[
            "/transitions/4/actions/0/mapping",
            "/transitions/4/actions/1/mapping",
        ],
    );
}

#[test]
fn empty_mapping() {
    let v = with(|v| {
        let actions = json!([{"type": "library_update", "library": "knowledge_base",
                              "record_field": "kb", "mapping": {}}]);
        push_transition(v, json!({"actions": actions}));
    });
    assert_warnings(v, "empty_mapping", &["/transitions/4/actions/0/mapping"]);
}

#[test]
fn mapping_mismatch() {
    let v = with(|v| {
        let mapping = json!({"title": "title", "level": "impact"});
        let literal = json!({"title": "title", "level": "=nope"});
        let actions = json!([
            {"type": "create_child_ticket", "template": "problem", "mapping": mapping},
            {"type": "create_child_ticket", "template": "problem", "mapping": literal},
            {"type": "create_child_ticket", "template": "problem",
             "mapping": {"title": "title", "level": "=network"}}
        ]);
        push_transition(v, json!({"actions": actions}));
    });
    assert_warnings(
        v,
        "mapping_mismatch",
        &[
            "/transitions/4/actions/0/mapping/level",
            "/transitions/4/actions/1/mapping/level",
        ],
    );
}

#[test]
fn title_not_required_in_a_library() {
    use crate::domain::library::{lint_library, parse_library};
    let def = parse_library(&json!({
        "name": {"ja": "記事", "en": "Articles"},
        "fields": [{"key": "title", "type": "text", "label": {"ja": "件名", "en": "Title"}}],
        "title_field": "title",
        "layout": {"sections": [{"key": "main", "label": {"ja": "本文", "en": "Main"},
                                 "fields": ["title"]}]}
    }))
    .unwrap();
    let r = lint_library(&def, &LintContext::default());
    assert!(r.is_ok(), "{:#?}", r.errors);
    assert_eq!(codes(&r.warnings, "title_not_required"), ["/title_field"]);
}
