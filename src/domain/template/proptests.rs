//! Property tests: no definition, however broken, makes parsing, linting or the engine
//! panic; definitions valid by construction lint clean.

use std::collections::{BTreeMap, BTreeSet};

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use crate::domain::identity::Role;
use crate::domain::ids::UserId;

use super::*;

const ID: &str = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";

/// Keys from a small pool (so references often resolve), sometimes fresh, sometimes invalid.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        6 => select(vec!["a", "b", "c", "d", "title", "impact"]).prop_map(str::to_owned),
        2 => "[a-z][a-z0-9_]{0,5}",
        1 => "[A-Z]{1,3}",
        1 => ".{0,6}",
    ]
}

fn label() -> impl Strategy<Value = Value> {
    prop_oneof![
        8 => ("[a-zあ]{0,3}", "[a-z ]{0,3}").prop_map(|(ja, en)| json!({"ja": ja, "en": en})),
        1 => Just(json!({"ja": "x"})),
        1 => Just(json!("label")),
    ]
}

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1.0e6..1.0e6f64).prop_map(|f| json!(f)),
        "[a-z0-9-]{0,6}".prop_map(Value::from),
        select(vec![
            "high",
            "low",
            "2024-01-01",
            "2024-01-01T00:00:00Z",
            ID
        ])
        .prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => scalar(),
        1 => prop::collection::vec(scalar(), 0..4).prop_map(Value::Array),
        1 => Just(json!({"nested": [1, {"x": null}]})),
    ]
}

/// Any JSON, for the parser alone.
fn arbitrary_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn field() -> impl Strategy<Value = Value> {
    let kinds = FieldType::ALL
        .iter()
        .map(|k| k.as_str())
        .chain(["bogus"])
        .collect::<Vec<_>>();
    (
        key(),
        select(kinds),
        label(),
        prop::option::of(any::<bool>()),
        prop::option::of(select(vec!["m1", "m2", "nope"])),
        prop::option::of(select(vec!["lib", "nope"])),
        prop::option::of((0..20u64, 0..20u64)),
        prop::option::of((scalar(), scalar())),
        prop::option::of(select(vec!["^[a-z]+$", "([", ".*", "(\\w{50}){50}"])),
        prop::option::of(prop::collection::vec(key(), 0..3)),
    )
        .prop_map(
            |(key, kind, label, required, master, library, lengths, range, pattern, items)| {
                let mut f = json!({"key": key, "type": kind, "label": label});
                let mut put = |k: &str, v: Value| f[k] = v;
                if let Some(r) = required {
                    put("required", json!(r));
                }
                if let Some(m) = master {
                    put("master", json!(m));
                }
                if let Some(l) = library {
                    put("library", json!(l));
                }
                if let Some((min, max)) = lengths {
                    put("min_length", json!(min));
                    put("max_length", json!(max));
                }
                if let Some((min, max)) = range {
                    if !min.is_null() {
                        put("min", min);
                    }
                    if !max.is_null() {
                        put("max", max);
                    }
                }
                if let Some(p) = pattern {
                    put("pattern", json!(p));
                }
                if let Some(items) = items {
                    put("allowed_items", json!(items));
                }
                f
            },
        )
}

fn op() -> impl Strategy<Value = &'static str> {
    select(vec!["eq", "ne", "in", "gt", "ge", "lt", "le", "is_set"])
}

fn guard() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        4 => (key(), op(), prop::option::of(value())).prop_map(|(field, op, value)| {
            let mut g = json!({"field": field, "op": op});
            if let Some(v) = value {
                g["value"] = v;
            }
            g
        }),
        1 => prop_oneof![Just("all_children_closed".to_owned()), key()].prop_map(|f| json!({"fact": f})),
    ];
    leaf.prop_recursive(5, 32, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"all": c})),
            prop::collection::vec(inner.clone(), 0..4).prop_map(|c| json!({"any": c})),
            inner.prop_map(|g| json!({"not": g})),
        ]
    })
}

fn mapping() -> impl Strategy<Value = Value> {
    prop::collection::btree_map(
        key(),
        prop_oneof![key(), "=[a-z0-9-]{0,5}".prop_map(|s| s)],
        0..3,
    )
    .prop_map(|m| json!(m))
}

fn action() -> impl Strategy<Value = Value> {
    prop_oneof![
        (key(), value()).prop_map(|(f, v)| json!({"type": "set_field", "field": f, "value": v})),
        key().prop_map(|g| json!({"type": "assign", "group": g})),
        key().prop_map(|f| json!({"type": "assign", "from_field": f})),
        Just(json!({"type": "assign", "user": ID, "group": "x"})),
        (select(vec!["self", "other", "nope"]), mapping())
            .prop_map(|(t, m)| json!({"type": "create_child_ticket", "template": t, "mapping": m})),
        (select(vec!["lib", "nope"]), mapping())
            .prop_map(|(l, m)| json!({"type": "library_upsert", "library": l, "mapping": m})),
        (select(vec!["lib", "nope"]), key(), mapping()).prop_map(|(l, f, m)| {
            json!({"type": "library_update", "library": l, "record_field": f, "mapping": m})
        }),
        select(vec!["a.b", "Bad Event", ""]).prop_map(|e| json!({"type": "notify", "event": e})),
    ]
}

fn transition() -> impl Strategy<Value = Value> {
    (
        key(),
        label(),
        prop_oneof![1 => Just(json!("*")), 4 => prop::collection::vec(key(), 0..3).prop_map(|v| json!(v))],
        key(),
        (
            prop::collection::vec(select(vec!["agent", "requester", "wizard"]), 0..2),
            prop::collection::vec(key(), 0..2),
            any::<bool>(),
            any::<bool>(),
        ),
        prop::option::of(guard()),
        prop::collection::vec(key(), 0..3),
        prop::collection::vec(key(), 0..3),
        prop::collection::vec(action(), 0..3),
    )
        .prop_map(|(key, label, from, to, (roles, groups, assignee, requester), guard, requires, sets, actions)| {
            let mut t = json!({
                "key": key, "label": label, "from": from, "to": to,
                "allowed": {"roles": roles, "groups": groups, "assignee": assignee, "requester": requester},
                "requires": requires, "sets": sets, "actions": actions
            });
            if let Some(g) = guard {
                t["guard"] = g;
            }
            t
        })
}

fn state() -> impl Strategy<Value = Value> {
    (key(), label(), any::<bool>(), prop::bool::weighted(0.3), select(vec!["running", "paused", "stopped"]))
        .prop_map(|(key, label, initial, terminal, sla)| {
            json!({"key": key, "label": label, "initial": initial, "terminal": terminal, "sla": sla})
        })
}

fn definition() -> impl Strategy<Value = Value> {
    let stage = (key(), label(), prop::collection::vec(state(), 0..4))
        .prop_map(|(key, label, states)| json!({"key": key, "label": label, "states": states}));
    let rule = select(vec!["required", "read_only", "hidden"]);
    let rules =
        prop::collection::btree_map(key(), prop::collection::btree_map(key(), rule, 0..3), 0..3);
    let section = || {
        (key(), label(), prop::collection::vec(key(), 0..4))
            .prop_map(|(key, label, fields)| json!({"key": key, "label": label, "fields": fields}))
    };
    let layout = (
        prop::collection::vec(section(), 0..3),
        prop::collection::btree_map(key(), prop::collection::vec(section(), 0..2), 0..2),
    )
        .prop_map(|(sections, states)| json!({"sections": sections, "states": states}));
    (
        label(),
        select(vec!["INC", "inc", "A1", ""]),
        prop::collection::vec(field(), 0..6),
        prop::collection::vec(stage, 0..4),
        prop::collection::vec(transition(), 0..8),
        rules,
        layout,
    )
        .prop_map(
            |(name, prefix, fields, stages, transitions, rules, layout)| {
                json!({
                    "name": name, "key_prefix": prefix, "fields": fields, "stages": stages,
                    "transitions": transitions, "field_rules": rules, "layout": layout
                })
            },
        )
}

fn context() -> LintContext {
    let set =
        |items: &[&str]| -> BTreeSet<String> { items.iter().map(|s| (*s).to_owned()).collect() };
    let types = BTreeMap::from([
        ("a".to_owned(), FieldType::Text),
        ("b".to_owned(), FieldType::Integer),
    ]);
    LintContext {
        template_key: Some("self".into()),
        masters: BTreeMap::from([
            ("m1".to_owned(), set(&["high", "low"])),
            ("m2".to_owned(), set(&[])),
        ]),
        templates: BTreeMap::from([("other".to_owned(), types.clone())]),
        libraries: BTreeMap::from([("lib".to_owned(), types)]),
        ..Default::default()
    }
}

fn ticket_values() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(key(), value(), 0..5).prop_map(|m| m.into_iter().collect())
}

/// Runs every engine entry point on a parsed definition and checks the invariants that
/// hold for any definition.
fn exercise(
    def: &TemplateDefinition,
    values: &Map<String, Value>,
    state: &str,
    facts: Facts,
) -> Result<(), TestCaseError> {
    let ctx = context();
    let report = lint(def, &ctx);
    prop_assert_eq!(&lint(def, &ctx), &report, "lint is deterministic");
    let masters = ctx.masters.clone();
    let validation = ValidationContext {
        state: Some(state),
        masters: &masters,
        check_required: true,
        previous: Some(values),
    };
    let _ = validate_values(def, values, validation);
    let ticket = TicketView {
        state,
        fields: values,
        assignee: Some(UserId(Uuid::from_u128(1))),
        requester: Some(UserId(Uuid::from_u128(2))),
    };
    let actor = ActorView {
        user: Some(UserId(Uuid::from_u128(1))),
        roles: vec![Role::Agent],
        groups: vec!["a".into()],
    };
    let listed = available_transitions(def, &ticket, &actor, &facts, false);
    let explained = available_transitions(def, &ticket, &actor, &facts, true);
    prop_assert_eq!(explained.len(), def.transitions.len());
    let available: Vec<&str> = explained
        .iter()
        .filter(|o| o.available)
        .map(|o| o.key.as_str())
        .collect();
    let listed_keys: Vec<&str> = listed.iter().map(|o| o.key.as_str()).collect();
    prop_assert_eq!(available, listed_keys, "explain only adds detail");
    for t in &def.transitions {
        if let Some(g) = &t.guard {
            let _ = evaluate_guard(g, values, &facts);
        }
        // A key that does not parse names nothing a caller can fire (lint refuses it too).
        let Ok(key) = TransitionKey::parse(&t.key) else {
            continue;
        };
        let plan = plan_transition(
            def,
            &ticket,
            &actor,
            &facts,
            &TransitionInput {
                transition: key.clone(),
                fields: values.clone(),
            },
            &masters,
        );
        let plain = plan_transition(
            def,
            &ticket,
            &actor,
            &facts,
            &TransitionInput {
                transition: key,
                fields: Map::new(),
            },
            &masters,
        );
        if plain.is_ok() {
            prop_assert!(
                listed.iter().any(|o| o.key == t.key),
                "a plannable transition is listed"
            );
        }
        if let Err(errors) = plan {
            prop_assert!(!errors.is_empty());
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics_the_parser(v in arbitrary_json()) {
        if let Err(issues) = parse_definition(&v) {
            prop_assert!(!issues.is_empty());
        }
    }

    #[test]
    fn broken_definitions_never_panic(
        v in definition(),
        values in ticket_values(),
        state in key(),
        closed in any::<bool>(),
    ) {
        match parse_definition(&v) {
            Ok(def) => exercise(&def, &values, &state, Facts { all_children_closed: closed })?,
            Err(issues) => prop_assert!(!issues.is_empty()),
        }
    }
}

/// A well-typed guard over the fields of `valid_definition`.
fn typed_guard() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(json!({"field": "title", "op": "is_set"})),
        Just(json!({"not": {"field": "title", "op": "is_set"}})),
        select(vec!["high", "medium", "low"])
            .prop_map(|p| json!({"field": "prio", "op": "eq", "value": p})),
        Just(json!({"field": "prio", "op": "in", "value": ["high", "low"]})),
        (select(vec!["gt", "ge", "lt", "le", "eq", "ne"]), -5..5i64)
            .prop_map(|(op, n)| json!({"field": "n", "op": op, "value": n})),
        Just(json!({"field": "due", "op": "ge", "value": "2024-04-01"})),
        any::<bool>().prop_map(|b| json!({"field": "flag", "op": "eq", "value": b})),
        Just(json!({"fact": "all_children_closed"})),
    ];
    leaf.prop_recursive(3, 16, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({"all": c})),
            prop::collection::vec(inner.clone(), 1..4).prop_map(|c| json!({"any": c})),
            inner.prop_map(|g| json!({"not": g})),
        ]
    })
}

/// A chain of `n` uniquely keyed states (initial first, terminal last) in random stages,
/// plus random guarded edges out of non-terminal states.
fn valid_definition() -> impl Strategy<Value = Value> {
    (2..30usize)
        .prop_flat_map(|n| {
            (
                prop::collection::vec("[a-z][a-z0-9]{0,6}", n),
                prop::collection::vec(1..5usize, n),
                prop::collection::vec((0..n - 1, 0..n, prop::option::of(typed_guard())), 0..2 * n),
            )
        })
        .prop_map(|(names, stage_sizes, extra)| {
            let n = names.len();
            let label = |s: &str| json!({"ja": format!("「{s}」"), "en": s});
            let keys: Vec<String> = names.iter().enumerate().map(|(i, k)| format!("{k}_{i}")).collect();
            let states: Vec<Value> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| json!({"key": k, "label": label(k), "initial": i == 0, "terminal": i == n - 1}))
                .collect();
            let mut stages = Vec::new();
            let mut rest = states.as_slice();
            for (s, size) in stage_sizes.iter().enumerate() {
                if rest.is_empty() {
                    break;
                }
                let (head, tail) = rest.split_at((*size).min(rest.len()));
                stages.push(json!({"key": format!("stage_{s}"), "label": label("stage"), "states": head}));
                rest = tail;
            }
            let mut transitions: Vec<Value> = (0..n - 1)
                .map(|i| json!({"key": format!("next_{i}"), "label": label("next"), "from": [keys[i]],
                                 "to": keys[i + 1], "allowed": {"roles": ["agent"]}}))
                .collect();
            for (j, (from, to, guard)) in extra.into_iter().enumerate() {
                let mut t = json!({"key": format!("extra_{j}"), "label": label("extra"), "from": [keys[from]],
                                   "to": keys[to], "allowed": {"assignee": true}, "requires": ["n"]});
                if let Some(g) = guard {
                    t["guard"] = g;
                }
                transitions.push(t);
            }
            let field = |k: &str, t: &str| json!({"key": k, "type": t, "label": label(k)});
            let mut prio = field("prio", "select");
            prio["master"] = json!("priority");
            json!({
                "name": label("chain"), "key_prefix": "CH",
                "fields": [field("title", "text"), prio, field("n", "integer"), field("due", "date"), field("flag", "boolean")],
                "stages": stages, "transitions": transitions,
                "field_rules": {keys[n - 1].clone(): {"title": "required", "n": "read_only"}},
                "layout": {"sections": [{"key": "main", "label": label("main"), "fields": ["title", "prio", "n"]}]}
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn valid_definitions_lint_clean(v in valid_definition(), values in ticket_values()) {
        let def = parse_definition(&v).map_err(|e| TestCaseError::fail(format!("{e:?}")))?;
        let mut ctx = context();
        ctx.masters.insert("priority".into(), ["high", "medium", "low"].iter().map(|s| (*s).to_owned()).collect());
        let report = lint(&def, &ctx);
        prop_assert!(report.errors.is_empty(), "{:#?}", report.errors);
        let again = parse_definition(&serde_json::to_value(&def).map_err(|e| TestCaseError::fail(e.to_string()))?);
        prop_assert_eq!(again.as_ref().ok(), Some(&def));
        let initial = def.states().find(|(_, s)| s.initial).map(|(_, s)| s.key.clone()).unwrap_or_default();
        exercise(&def, &values, &initial, Facts::default())?;
    }

    #[test]
    fn generated_definitions_lint_clean(n in 2..80usize, m in 0..300usize) {
        let def = generated(n, m);
        let report = lint(&def, &generated_context());
        prop_assert!(report.errors.is_empty(), "{:#?}", report.errors);
        let values = Map::new();
        exercise(&def, &values, "s_0", Facts::default())?;
    }
}
