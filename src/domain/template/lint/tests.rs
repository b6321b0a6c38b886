use serde_json::{Value, json};

use super::super::fixtures::{incident, incident_clean, lint_context};
use super::super::generate::{generated, generated_context};
use super::super::guard::{Guard, GuardOp};
use super::super::parse::parse_definition;
use super::*;

fn report(v: &Value) -> LintReport {
    let def = parse_definition(v).unwrap_or_else(|e| panic!("does not parse: {e:#?}"));
    lint(&def, &lint_context())
}

fn has(issues: &[LintIssue], code: &str, pointer: &str) -> bool {
    issues
        .iter()
        .any(|i| i.code == code && i.pointer == pointer)
}

#[track_caller]
fn assert_error(v: Value, code: &str, pointer: &str) {
    let r = report(&v);
    assert!(
        has(&r.errors, code, pointer),
        "expected {code} at {pointer}, got {:#?}",
        r.errors
    );
}

#[track_caller]
fn assert_warning(v: Value, code: &str, pointer: &str) {
    let r = report(&v);
    assert!(
        has(&r.warnings, code, pointer),
        "expected {code} at {pointer}, got {:#?}",
        r.warnings
    );
}

fn label(text: &str) -> Value {
    json!({"ja": text, "en": text})
}

/// The base definition with `f` applied.
fn with(f: impl FnOnce(&mut Value)) -> Value {
    let mut v = incident_clean();
    f(&mut v);
    v
}

#[test]
fn the_clean_incident_has_no_errors() {
    let r = report(&incident_clean());
    assert_eq!(r.errors, vec![], "{:#?}", r.errors);
    // `notes` is in `sets` of `close` but hidden once closed.
    // Its layout shows only some fields (`field_not_placed`, one per field left out).
    let warnings: Vec<_> = r
        .warnings
        .iter()
        .filter(|w| w.code != "field_not_placed")
        .map(|w| (w.code, w.pointer.as_str()))
        .collect();
    assert_eq!(
        warnings,
        vec![("sets_hidden_field", "/transitions/2/sets/1")]
    );
    assert!(r.is_ok());
}

#[test]
fn the_brief_example_reports_its_dangling_references_and_unreachable_state() {
    let r = report(&incident());
    let errors: Vec<_> = r
        .errors
        .iter()
        .map(|w| (w.code, w.pointer.as_str()))
        .collect();
    assert_eq!(
        errors,
        vec![
            ("unknown_field", "/transitions/0/actions/2/from_field"),
            ("unknown_field", "/transitions/0/actions/5/record_field"),
            // Nothing leads into `waiting` ("On hold").
            ("unreachable_state", "/stages/0/states/1"),
        ]
    );
}

#[test]
fn limit_exceeded() {
    let r = lint(&generated(1_001, 0), &generated_context());
    assert!(
        has(&r.errors, "limit_exceeded", "/stages"),
        "{:#?}",
        r.errors
    );
    let mut def = generated(3, 2);
    let mut guard = Guard::Fact {
        fact: "all_children_closed".into(),
    };
    for _ in 0..20 {
        guard = Guard::Not {
            not: Box::new(guard),
        };
    }
    def.transitions[0].guard = Some(guard);
    let r = lint(&def, &generated_context());
    assert!(
        r.errors.iter().any(|i| i.code == "limit_exceeded"),
        "{:#?}",
        r.errors
    );
}

#[test]
fn invalid_key() {
    assert_error(
        with(|v| v["fields"][0]["key"] = json!("Title")),
        "invalid_key",
        "/fields/0/key",
    );
    assert_error(
        with(|v| v["key_prefix"] = json!("inc")),
        "invalid_key",
        "/key_prefix",
    );
    assert_error(
        with(|v| v["key_prefix"] = json!("ABCDEFGHIJK")),
        "invalid_key",
        "/key_prefix",
    );
    assert_error(
        with(|v| v["stages"][0]["key"] = json!("a".repeat(64))),
        "invalid_key",
        "/stages/0/key",
    );
    assert_error(
        with(|v| v["transitions"][0]["key"] = json!("go-on")),
        "invalid_key",
        "/transitions/0/key",
    );
    assert_error(
        with(|v| v["layout"]["sections"][0]["key"] = json!("")),
        "invalid_key",
        "/layout/sections/0/key",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][6]["event"] = json!("Incident Closed")),
        "invalid_key",
        "/transitions/2/actions/6/event",
    );
    assert_error(
        with(|v| v["transitions"][0]["allowed"]["groups"] = json!([" "])),
        "invalid_key",
        "/transitions/0/allowed/groups/0",
    );
    // The longest valid key is fine.
    let r = report(&with(|v| v["stages"][0]["key"] = json!("a".repeat(63))));
    assert!(r.is_ok(), "{:#?}", r.errors);
}

#[test]
fn duplicate_key() {
    assert_error(
        with(|v| v["fields"][1]["key"] = json!("title")),
        "duplicate_key",
        "/fields/1/key",
    );
    assert_error(
        with(|v| v["stages"][1]["states"][0]["key"] = json!("new")),
        "duplicate_key",
        "/stages/1/states/0/key",
    );
    assert_error(
        with(|v| v["transitions"][1]["key"] = json!("hold")),
        "duplicate_key",
        "/transitions/1/key",
    );
    assert_error(
        with(|v| v["fields"][1]["allowed_items"] = json!(["high", "high"])),
        "duplicate_key",
        "/fields/1/allowed_items/1",
    );
    assert_error(
        with(|v| v["transitions"][2]["requires"] = json!(["effort", "effort"])),
        "duplicate_key",
        "/transitions/2/requires/1",
    );
}

#[test]
fn invalid_label() {
    assert_error(
        with(|v| v["name"]["en"] = json!(" ")),
        "invalid_label",
        "/name/en",
    );
    assert_error(
        with(|v| v["fields"][0]["label"]["ja"] = json!("あ".repeat(201))),
        "invalid_label",
        "/fields/0/label/ja",
    );
    assert_error(
        with(|v| v["stages"][0]["states"][0]["label"]["en"] = json!("")),
        "invalid_label",
        "/stages/0/states/0/label/en",
    );
    let r = report(&with(|v| v["name"]["ja"] = json!("あ".repeat(200))));
    assert!(r.is_ok());
}

#[test]
fn unknown_field() {
    assert_error(
        with(|v| v["transitions"][2]["requires"] = json!(["nope"])),
        "unknown_field",
        "/transitions/2/requires/0",
    );
    assert_error(
        with(|v| v["transitions"][2]["guard"]["all"][0]["field"] = json!("nope")),
        "unknown_field",
        "/transitions/2/guard/all/0/field",
    );
    assert_error(
        with(|v| v["field_rules"]["closed"]["nope"] = json!("hidden")),
        "unknown_field",
        "/field_rules/closed/nope",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["mapping"] = json!({"nope": "title"})),
        "unknown_field",
        "/transitions/2/actions/3/mapping/nope",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["mapping"] = json!({"title": "nope"})),
        "unknown_field",
        "/transitions/2/actions/3/mapping/title",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][0]["field"] = json!("nope")),
        "unknown_field",
        "/transitions/2/actions/0/field",
    );
}

#[test]
fn unknown_master() {
    assert_error(
        with(|v| v["fields"][1]["master"] = json!("nope")),
        "unknown_master",
        "/fields/1/master",
    );
}

#[test]
fn unknown_master_item() {
    assert_error(
        with(|v| v["fields"][1]["allowed_items"] = json!(["high", "huge"])),
        "unknown_master_item",
        "/fields/1/allowed_items/1",
    );
    assert_error(
        with(|v| v["transitions"][2]["guard"]["all"][0]["value"] = json!(["low", "huge"])),
        "unknown_master_item",
        "/transitions/2/guard/all/0/value/1",
    );
    assert_error(
        with(|v| {
            v["transitions"][2]["actions"][0] =
                json!({"type": "set_field", "field": "impact", "value": "huge"})
        }),
        "unknown_master_item",
        "/transitions/2/actions/0/value",
    );
    assert_error(
        with(
            |v| v["transitions"][2]["actions"][3] = json!({"type": "create_child_ticket", "template": "incident", "mapping": {"tags": "=network,floppy"}}),
        ),
        "unknown_master_item",
        "/transitions/2/actions/3/mapping/tags",
    );
    // An inactive item is still a valid reference: masters in the lint context list all.
    let r = report(&with(|v| {
        v["fields"][1]["allowed_items"] = json!(["retired"])
    }));
    assert!(r.is_ok(), "{:#?}", r.errors);
}

#[test]
fn unknown_template() {
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["template"] = json!("nope")),
        "unknown_template",
        "/transitions/2/actions/3/template",
    );
    // A child of the same template is checked against this definition.
    let r = report(&with(
        |v| v["transitions"][2]["actions"][3] = json!({"type": "create_child_ticket", "template": "incident", "mapping": {"title": "title", "impact": "impact"}}),
    ));
    assert!(r.is_ok(), "{:#?}", r.errors);
}

#[test]
fn unknown_library() {
    assert_error(
        with(|v| v["fields"][6]["library"] = json!("nope")),
        "unknown_library",
        "/fields/6/library",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][4]["library"] = json!("nope")),
        "unknown_library",
        "/transitions/2/actions/4/library",
    );
}

#[test]
fn unknown_state() {
    assert_error(
        with(|v| v["transitions"][0]["to"] = json!("nowhere")),
        "unknown_state",
        "/transitions/0/to",
    );
    assert_error(
        with(|v| v["transitions"][0]["from"] = json!(["new", "nowhere"])),
        "unknown_state",
        "/transitions/0/from/1",
    );
    assert_error(
        with(|v| v["field_rules"]["nowhere"] = json!({})),
        "unknown_state",
        "/field_rules/nowhere",
    );
    assert_error(
        with(|v| v["layout"]["states"]["nowhere"] = json!([])),
        "unknown_state",
        "/layout/states/nowhere",
    );
}

#[test]
fn unknown_role() {
    assert_error(
        with(|v| v["transitions"][0]["allowed"]["roles"] = json!(["agent", "wizard"])),
        "unknown_role",
        "/transitions/0/allowed/roles/1",
    );
}

#[test]
fn unknown_fact() {
    assert_error(
        with(|v| v["transitions"][2]["guard"]["all"][2]["fact"] = json!("moon_is_full")),
        "unknown_fact",
        "/transitions/2/guard/all/2/fact",
    );
}

#[test]
fn initial_state_count() {
    assert_error(
        with(|v| v["stages"][0]["states"][0]["initial"] = json!(false)),
        "initial_state_count",
        "/stages",
    );
    assert_error(
        with(|v| v["stages"][0]["states"][1]["initial"] = json!(true)),
        "initial_state_count",
        "/stages/0/states/1/initial",
    );
}

#[test]
fn initial_is_terminal() {
    assert_error(
        with(|v| v["stages"][0]["states"][0]["terminal"] = json!(true)),
        "initial_is_terminal",
        "/stages/0/states/0/terminal",
    );
}

#[test]
fn no_terminal_state() {
    assert_error(
        with(|v| v["stages"][1]["states"][0]["terminal"] = json!(false)),
        "no_terminal_state",
        "/stages",
    );
}

#[test]
fn unreachable_state() {
    let v = with(|v| {
        v["stages"][1]["states"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "orphan", "label": label("孤児")}))
    });
    let r = report(&v);
    let errors: Vec<_> = r
        .errors
        .iter()
        .map(|w| (w.code, w.pointer.as_str()))
        .collect();
    // `cancel` ("*") still leads it to a terminal state.
    assert_eq!(errors, vec![("unreachable_state", "/stages/1/states/1")]);
}

#[test]
fn no_path_to_terminal() {
    let v = with(|v| {
        v["stages"][0]["states"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "limbo", "label": label("辺獄")}));
        let transitions = v["transitions"].as_array_mut().unwrap();
        transitions.pop(); // `cancel` ("*") would give every state a way out.
        transitions.push(
            json!({"key": "sink", "label": label("沈む"), "from": ["new"], "to": "limbo",
                                "allowed": {"roles": ["agent"]}}),
        );
    });
    let r = report(&v);
    let errors: Vec<_> = r
        .errors
        .iter()
        .map(|w| (w.code, w.pointer.as_str()))
        .collect();
    assert_eq!(errors, vec![("no_path_to_terminal", "/stages/0/states/2")]);
}

#[test]
fn wildcard_transitions_count_in_the_graph() {
    // Only "*" transitions lead out of `new` and `waiting`, and `waiting` is reached only by
    // one: still every state is reachable and can finish.
    let v = with(|v| {
        v["transitions"] = json!([
            {"key": "hold", "label": label("保留"), "from": "*", "to": "waiting", "allowed": {"roles": ["agent"]}},
            {"key": "cancel", "label": label("取消"), "from": "*", "to": "closed", "allowed": {"roles": ["agent"]}}
        ]);
    });
    let r = report(&v);
    assert!(r.is_ok(), "{:#?}", r.errors);
}

#[test]
fn empty_stage() {
    assert_error(
        with(|v| {
            v["stages"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "later", "label": label("後"), "states": []}))
        }),
        "empty_stage",
        "/stages/2/states",
    );
}

#[test]
fn empty_from() {
    assert_error(
        with(|v| v["transitions"][0]["from"] = json!([])),
        "empty_from",
        "/transitions/0/from",
    );
}

#[test]
fn required_but_hidden() {
    assert_error(
        with(|v| v["field_rules"]["closed"]["effort"] = json!("hidden")),
        "required_but_hidden",
        "/transitions/2/requires/0",
    );
    assert_error(
        with(|v| v["field_rules"]["new"] = json!({"title": "hidden"})),
        "required_but_hidden",
        "/field_rules/new/title",
    );
}

#[test]
fn invalid_pattern() {
    assert_error(
        with(|v| v["fields"][4]["pattern"] = json!("([A-Z")),
        "invalid_pattern",
        "/fields/4/pattern",
    );
    assert_error(
        with(|v| v["fields"][4]["pattern"] = json!("a".repeat(501))),
        "invalid_pattern",
        "/fields/4/pattern",
    );
    // Small to write, huge to compile: refused by the size limit instead of eating memory.
    assert_error(
        with(|v| v["fields"][4]["pattern"] = json!("(\\w{100}){100}")),
        "invalid_pattern",
        "/fields/4/pattern",
    );
}

#[test]
fn invalid_range() {
    let cases = [
        (
            json!({"min_length": 5, "max_length": 2}),
            0,
            "/fields/0/min_length",
        ),
        (json!({"max_length": 0}), 0, "/fields/0/max_length"),
        (json!({"max_length": 10_001}), 0, "/fields/0/max_length"),
        (json!({"min": 10, "max": 1}), 3, "/fields/3/min"),
        (json!({"min": "zero"}), 3, "/fields/3/min"),
        (json!({"min_length": 1}), 3, "/fields/3/min_length"),
        (json!({"pattern": "^a$"}), 3, "/fields/3/pattern"),
        (json!({"min": 1}), 0, "/fields/0/min"),
        (
            json!({"allowed_items": ["a"]}),
            0,
            "/fields/0/allowed_items",
        ),
        (json!({"allowed_items": []}), 1, "/fields/1/allowed_items"),
    ];
    for (patch, field, pointer) in cases {
        let v = with(|v| {
            for (k, value) in patch.as_object().unwrap() {
                v["fields"][field][k] = value.clone();
            }
        });
        assert_error(v, "invalid_range", pointer);
    }
    let dates = with(|v| {
        v["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "due", "type": "date", "label": label("期限"),
            "min": "2024-12-31", "max": "2024-01-01"}));
        v["fields"].as_array_mut().unwrap().push(
            json!({"key": "at", "type": "datetime", "label": label("時刻"),
            "min": "2024-01-01"}),
        );
        v["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "n", "type": "integer", "label": label("数"),
            "max": 1.5}));
    });
    let r = report(&dates);
    for pointer in ["/fields/9/min", "/fields/10/min", "/fields/11/max"] {
        assert!(
            has(&r.errors, "invalid_range", pointer),
            "{pointer}: {:#?}",
            r.errors
        );
    }
}

#[test]
fn missing_master() {
    assert_error(
        with(|v| {
            v["fields"][1].as_object_mut().unwrap().remove("master");
        }),
        "missing_master",
        "/fields/1",
    );
}

#[test]
fn missing_library() {
    assert_error(
        with(|v| {
            v["fields"][6].as_object_mut().unwrap().remove("library");
        }),
        "missing_library",
        "/fields/6",
    );
}

#[test]
fn unexpected_property() {
    assert_error(
        with(|v| v["fields"][0]["master"] = json!("impact")),
        "unexpected_property",
        "/fields/0/master",
    );
    assert_error(
        with(|v| v["fields"][0]["library"] = json!("cmdb")),
        "unexpected_property",
        "/fields/0/library",
    );
}

#[test]
fn incompatible_mapping() {
    let at = "/transitions/2/actions";
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["mapping"] = json!({"count": "title"})),
        "incompatible_mapping",
        &format!("{at}/3/mapping/count"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["mapping"] = json!({"title": "notes"})),
        "incompatible_mapping",
        &format!("{at}/3/mapping/title"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][3]["mapping"] = json!({"count": "=many"})),
        "incompatible_mapping",
        &format!("{at}/3/mapping/count"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][0]["value"] = json!(5)),
        "incompatible_mapping",
        &format!("{at}/0/value"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][5]["record_field"] = json!("kb")),
        "incompatible_mapping",
        &format!("{at}/5/record_field"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][5]["record_field"] = json!("title")),
        "incompatible_mapping",
        &format!("{at}/5/record_field"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][5]["mapping"] = json!({"retired_on": "=soon"})),
        "incompatible_mapping",
        &format!("{at}/5/mapping/retired_on"),
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][2]["from_field"] = json!("title")),
        "incompatible_mapping",
        &format!("{at}/2/from_field"),
    );
    // Same template, select onto multi_select of another master.
    assert_error(
        with(
            |v| v["transitions"][2]["actions"][3] = json!({"type": "create_child_ticket", "template": "incident", "mapping": {"tags": "impact"}}),
        ),
        "incompatible_mapping",
        &format!("{at}/3/mapping/tags"),
    );
    // What the table allows.
    let r = report(&with(|v| {
        v["transitions"][2]["actions"][3]["mapping"] =
            json!({"title": "impact", "detail": "title", "count": "=3", "level": "impact"});
        v["transitions"][2]["actions"][5]["mapping"] =
            json!({"retired_on": "=2025-03-31", "status": "effort"});
    }));
    assert!(r.is_ok(), "{:#?}", r.errors);
}

#[test]
fn guard_type_mismatch() {
    let at = "/transitions/2/guard/all/0";
    let set = |g: Value| with(move |v| v["transitions"][2]["guard"]["all"][0] = g);
    assert_error(
        set(json!({"field": "impact", "op": "gt", "value": "low"})),
        "guard_type_mismatch",
        &format!("{at}/op"),
    );
    assert_error(
        set(json!({"field": "effort", "op": "eq", "value": "x"})),
        "guard_type_mismatch",
        &format!("{at}/value"),
    );
    assert_error(
        set(json!({"field": "effort", "op": "in", "value": 3})),
        "guard_type_mismatch",
        &format!("{at}/value"),
    );
    assert_error(
        set(json!({"field": "effort", "op": "in", "value": [1, "2"]})),
        "guard_type_mismatch",
        &format!("{at}/value/1"),
    );
    assert_error(
        set(json!({"field": "title", "op": "is_set", "value": true})),
        "guard_type_mismatch",
        &format!("{at}/value"),
    );
    assert_error(
        set(json!({"field": "title", "op": "eq"})),
        "guard_type_mismatch",
        at,
    );
    assert_error(
        set(json!({"field": "kb", "op": "eq", "value": "kb-1"})),
        "guard_type_mismatch",
        &format!("{at}/value"),
    );
    let flags = with(|v| {
        v["fields"]
            .as_array_mut()
            .unwrap()
            .push(json!({"key": "urgent", "type": "boolean", "label": label("至急")}));
        v["transitions"][2]["guard"]["all"][0] =
            json!({"field": "urgent", "op": "gt", "value": false});
    });
    assert_error(flags, "guard_type_mismatch", &format!("{at}/op"));
    let ok = set(json!({"field": "effort", "op": "le", "value": 7.5}));
    assert!(report(&ok).is_ok());
}

#[test]
fn invalid_guard() {
    assert_error(
        with(|v| v["transitions"][2]["guard"]["all"][0] = json!({"any": []})),
        "invalid_guard",
        "/transitions/2/guard/all/0",
    );
    assert_error(
        with(|v| v["transitions"][2]["guard"]["all"][0]["value"] = json!([])),
        "invalid_guard",
        "/transitions/2/guard/all/0/value",
    );
}

#[test]
fn invalid_action() {
    assert_error(
        with(|v| {
            v["transitions"][2]["actions"][1]["user"] =
                json!("0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b")
        }),
        "invalid_action",
        "/transitions/2/actions/1",
    );
    assert_error(
        with(|v| v["transitions"][2]["actions"][1] = json!({"type": "assign"})),
        "invalid_action",
        "/transitions/2/actions/1",
    );
}

#[test]
fn invalid_layout() {
    assert_error(
        with(|v| v["layout"]["sections"][0]["fields"] = json!(["title", "nope"])),
        "invalid_layout",
        "/layout/sections/0/fields/1",
    );
    assert_error(
        with(|v| {
            v["layout"]["sections"]
                .as_array_mut()
                .unwrap()
                .push(json!({"key": "more", "label": label("他"), "fields": ["effort", "title"]}))
        }),
        "invalid_layout",
        "/layout/sections/1/fields/1",
    );
    assert_error(
        with(|v| v["layout"]["states"]["closed"][0]["fields"] = json!(["title", "title"])),
        "invalid_layout",
        "/layout/states/closed/0/fields/1",
    );
}

fn hold_with(guard_a: Value, guard_b: Value) -> Value {
    with(|v| {
        // Only `hold` and its copy are guarded in `new`.
        v["transitions"][2].as_object_mut().unwrap().remove("guard");
        v["transitions"][0]["guard"] = guard_a;
        let mut second = v["transitions"][0].clone();
        second["key"] = json!("hold_too");
        second["guard"] = guard_b;
        v["transitions"].as_array_mut().unwrap().push(second);
    })
}

#[test]
fn overlapping_guards() {
    let eq = |value: &str| json!({"field": "impact", "op": "eq", "value": value});
    assert_warning(
        hold_with(
            eq("high"),
            json!({"field": "impact", "op": "in", "value": ["high", "low"]}),
        ),
        "overlapping_guards",
        "/transitions/4/guard",
    );
    // A guard on another field overlaps too: nothing keeps them apart.
    assert_warning(
        hold_with(
            eq("high"),
            json!({"field": "effort", "op": "gt", "value": 3}),
        ),
        "overlapping_guards",
        "/transitions/4/guard",
    );
    // With a "*" transition, which leaves `new` too.
    assert_warning(
        with(|v| {
            v["transitions"][0]["guard"] = eq("high");
            v["transitions"][3]["guard"] =
                json!({"all": [eq("high"), {"field": "title", "op": "is_set"}]});
        }),
        "overlapping_guards",
        "/transitions/3/guard",
    );
    let quiet = [
        hold_with(eq("high"), eq("low")),
        hold_with(
            json!({"all": [{"field": "effort", "op": "lt", "value": 3}, eq("high")]}),
            json!({"field": "effort", "op": "ge", "value": 3}),
        ),
        hold_with(
            json!({"field": "code", "op": "is_set"}),
            json!({"not": {"field": "code", "op": "is_set"}}),
        ),
        hold_with(
            json!({"fact": "all_children_closed"}),
            json!({"not": {"fact": "all_children_closed"}}),
        ),
        // Not analysable: no warning.
        hold_with(eq("high"), json!({"any": [eq("high"), eq("low")]})),
    ];
    for v in quiet {
        let r = report(&v);
        assert!(
            !r.warnings.iter().any(|w| w.code == "overlapping_guards"),
            "{:#?}",
            r.warnings
        );
    }
}

#[test]
fn overlap_check_incomplete() {
    let mut def = generated(3, 2);
    let template = def.transitions[0].clone();
    def.transitions = (0..700)
        .map(|i| {
            let mut t = template.clone();
            t.key = format!("c_{i}");
            t.guard = Some(Guard::Compare(super::super::guard::Comparison {
                field: "effort".into(),
                op: GuardOp::Eq,
                value: Some(json!(i)),
            }));
            t
        })
        .chain(def.transitions[1..].iter().cloned())
        .collect();
    let r = lint(&def, &generated_context());
    assert!(r.is_ok(), "{:#?}", r.errors);
    let warnings: Vec<_> = r.warnings.iter().map(|w| w.code).collect();
    assert_eq!(warnings, vec!["overlap_check_incomplete"]);
}

#[test]
fn nobody_allowed() {
    assert_warning(
        with(|v| v["transitions"][0]["allowed"] = json!({})),
        "nobody_allowed",
        "/transitions/0/allowed",
    );
    let absent = with(|v| {
        v["transitions"][0]
            .as_object_mut()
            .unwrap()
            .remove("allowed");
    });
    assert_warning(absent, "nobody_allowed", "/transitions/0/allowed");
}

#[test]
fn sets_hidden_field() {
    assert_warning(
        incident_clean(),
        "sets_hidden_field",
        "/transitions/2/sets/1",
    );
}

#[test]
fn transition_into_the_initial_state_is_fine() {
    // `resume` goes back to `new`.
    let r = report(&incident_clean());
    assert!(r.is_ok());
    assert_eq!(incident_clean()["transitions"][1]["to"], json!("new"));
}

#[test]
fn reports_every_problem_in_a_stable_order() {
    let v = with(|v| {
        v["key_prefix"] = json!("x");
        v["fields"][6]["key"] = json!("Bad");
        v["fields"][1]["master"] = json!("nope");
        v["transitions"][0]["to"] = json!("nowhere");
        v["field_rules"]["closed"]["nope"] = json!("hidden");
        v["layout"]["sections"][0]["fields"] = json!(["nope"]);
    });
    let first = report(&v);
    let codes: Vec<_> = first.errors.iter().map(|i| i.code).collect();
    assert_eq!(
        codes,
        vec![
            "invalid_key",
            "unknown_master",
            "invalid_key",
            "unknown_state",
            "unknown_field",
            "invalid_layout",
            // `hold` no longer leads to `waiting`.
            "unreachable_state",
        ],
        "{:#?}",
        first.errors
    );
    assert_eq!(report(&v), first);
    let json = serde_json::to_value(&first).unwrap();
    assert_eq!(
        json["errors"][0],
        json!({"code": "invalid_key", "pointer": "/key_prefix",
        "message": "`x` is not a valid key prefix: an uppercase letter, then up to 9 uppercase letters or digits"})
    );
}

#[test]
fn generated_definitions_are_clean() {
    for (n, m) in [(2, 0), (2, 1), (3, 10), (30, 60), (200, 1_000)] {
        let def = generated(n, m);
        let r = lint(&def, &generated_context());
        assert!(r.is_ok(), "{n}/{m}: {:#?}", r.errors);
        assert_eq!(def.transitions.len(), m.max(n - 1));
        assert_eq!(def.states().count(), n);
    }
}

#[test]
fn field_definitions_lint_alone_as_inside_a_template() {
    let def = parse_definition(&json!({
        "name": {"ja": "x", "en": "x"}, "key_prefix": "X",
        "fields": [
            {"key": "Bad Key", "type": "text", "label": {"ja": "a", "en": "a"}},
            {"key": "cat", "type": "select", "master": "missing", "label": {"ja": "b", "en": "b"}}
        ],
        "stages": [{"key": "s", "label": {"ja": "s", "en": "s"}, "states": [
            {"key": "a", "label": {"ja": "a", "en": "a"}, "initial": true, "terminal": true}]}]
    }))
    .unwrap();
    let ctx = LintContext::default();
    let alone = lint_field_defs(&def.fields, &ctx);
    let pointers: Vec<&str> = alone.errors.iter().map(|e| e.pointer.as_str()).collect();
    assert_eq!(pointers, ["/fields/0/key", "/fields/1/master"]);
    let inside = lint(&def, &ctx);
    for issue in &alone.errors {
        assert!(inside.errors.contains(issue), "{issue:?}");
    }
}

#[test]
fn internal_values_mapped_into_visible_fields_are_warned_about() {
    // `notes` is internal; the knowledge base's `body` is not.
    let v = with(|v| {
        v["transitions"][2]["actions"][4]["mapping"]["body"] = json!("notes");
    });
    assert_warning(
        v.clone(),
        "internal_exposed",
        "/transitions/2/actions/4/mapping/body",
    );
    // Into the ticket's own internal field (a child of the same template): no warning.
    let own = with(|v| {
        v["transitions"][2]["actions"][4] = json!({"type": "create_child_ticket",
            "template": "incident", "mapping": {"title": "title", "notes": "notes"}});
    });
    let r = report(&own);
    assert!(
        !r.warnings.iter().any(|w| w.code == "internal_exposed"),
        "{:#?}",
        r.warnings
    );
}
