use std::collections::BTreeMap;

use serde_json::{Value, json};
use uuid::Uuid;

use super::super::fixtures::incident_clean;
use super::super::parse::parse_definition;
use super::super::request::TransitionKey;
use super::*;

const OWNER: &str = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5b";
const CI: &str = "0190a5b2-7c3d-7e4f-8a9b-0c1d2e3f4a5c";

fn def() -> TemplateDefinition {
    parse_definition(&incident_clean()).unwrap()
}

fn uid(n: u128) -> UserId {
    UserId(Uuid::from_u128(n))
}

fn agent() -> ActorView {
    ActorView {
        user: Some(uid(1)),
        roles: vec![Role::Agent],
        groups: Vec::new(),
    }
}

fn closed_children() -> Facts {
    Facts {
        all_children_closed: true,
    }
}

fn input(key: &str, supplied: &Map<String, Value>) -> TransitionInput {
    TransitionInput {
        transition: TransitionKey::parse(key).unwrap(),
        fields: supplied.clone(),
    }
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn ticket<'a>(state: &'a str, fields: &'a Map<String, Value>) -> TicketView<'a> {
    TicketView {
        state,
        fields,
        assignee: Some(uid(2)),
        requester: Some(uid(3)),
    }
}

fn masters() -> MasterItems {
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    BTreeMap::from([
        ("impact".to_owned(), set(&["high", "medium", "low"])),
        ("category".to_owned(), set(&["network"])),
    ])
}

fn keys(options: &[TransitionOption]) -> Vec<&str> {
    options.iter().map(|o| o.key.as_str()).collect()
}

#[test]
fn lists_what_the_actor_can_do_in_definition_order() {
    let def = def();
    let values = fields(json!({"title": "Printer on fire", "impact": "low"}));
    let t = ticket("new", &values);
    let options = available_transitions(&def, &t, &agent(), &closed_children(), false);
    assert_eq!(keys(&options), vec!["hold", "close"]);
    let close = &options[1];
    assert!(close.available);
    assert_eq!(close.to, "closed");
    assert_eq!(close.label.en, "Close");
    // `requires` plus what `closed` requires; `notes` is filled by the transition itself.
    assert_eq!(close.required_fields, vec!["title", "effort"]);
    assert!(close.reasons.is_empty());

    // The requester may only cancel; the assignee may hold (and close, via `allowed`).
    let requester = ActorView {
        user: Some(uid(3)),
        ..ActorView::default()
    };
    let options = available_transitions(&def, &t, &requester, &closed_children(), false);
    assert_eq!(keys(&options), vec!["cancel"]);
    let assignee = ActorView {
        user: Some(uid(2)),
        ..ActorView::default()
    };
    let options = available_transitions(&def, &t, &assignee, &closed_children(), false);
    assert_eq!(keys(&options), vec!["hold", "close"]);
    let desk = ActorView {
        user: None,
        roles: Vec::new(),
        groups: vec!["service-desk".into()],
    };
    let options = available_transitions(&def, &t, &desk, &closed_children(), false);
    assert_eq!(keys(&options), vec!["close"]);
    // No user: assignee/requester entries never match an anonymous key.
    let nobody = TicketView {
        assignee: None,
        ..t
    };
    let anonymous = ActorView::default();
    assert!(available_transitions(&def, &nobody, &anonymous, &closed_children(), false).is_empty());
}

#[test]
fn explains_every_reason() {
    let def = def();
    let values = fields(json!({"title": "Printer on fire", "impact": "high"}));
    let t = ticket("new", &values);
    let options = available_transitions(&def, &t, &agent(), &Facts::default(), true);
    assert_eq!(keys(&options), vec!["hold", "resume", "close", "cancel"]);
    let reasons: Vec<(&str, bool, Vec<&str>)> = options
        .iter()
        .map(|o| {
            (
                o.key.as_str(),
                o.available,
                o.reasons.iter().map(Unavailable::code).collect(),
            )
        })
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("hold", true, vec![]),
            ("resume", false, vec!["wrong_state"]),
            ("close", false, vec!["guard_failed", "missing_fields"]),
            ("cancel", false, vec!["not_permitted"]),
        ]
    );
    assert_eq!(
        options[1].reasons[0],
        Unavailable::WrongState {
            current: "new".into(),
            from: vec!["waiting".into()]
        }
    );
    assert_eq!(
        options[2].reasons[0],
        Unavailable::GuardFailed {
            clause: "/all/0".into(),
            description: "condition not met: impact in [\"low\",\"medium\"]".into()
        }
    );
    assert_eq!(
        serde_json::to_value(&options[2].reasons[1]).unwrap(),
        json!({"code": "missing_fields", "fields": ["effort"]})
    );
}

#[test]
fn missing_fields_the_request_can_supply_keep_a_transition_available() {
    let def = def();
    let values = fields(json!({"title": "x", "impact": "low"}));
    let t = ticket("new", &values);
    let options = available_transitions(&def, &t, &agent(), &closed_children(), true);
    let close = options.iter().find(|o| o.key == "close").unwrap();
    assert!(close.available);
    assert_eq!(
        close.reasons,
        vec![Unavailable::MissingFields {
            fields: vec!["effort".into()]
        }]
    );
    // `title` is required (on every ticket, and by `closed`) and no transition requires or
    // sets it: without it no transition can be fired at all.
    let untitled = fields(json!({"impact": "low"}));
    let t = ticket("new", &untitled);
    let listed = available_transitions(&def, &t, &agent(), &closed_children(), false);
    assert_eq!(keys(&listed), Vec::<&str>::new());
    let explained = available_transitions(&def, &t, &agent(), &closed_children(), true);
    let close = explained.iter().find(|o| o.key == "close").unwrap();
    assert!(!close.available);
    assert_eq!(
        close.reasons,
        vec![Unavailable::MissingFields {
            fields: vec!["title".into(), "effort".into()]
        }]
    );
}

#[test]
fn wildcard_transitions_leave_only_non_terminal_states() {
    let def = def();
    let values = fields(json!({"title": "x"}));
    let requester = ActorView {
        user: Some(uid(3)),
        ..ActorView::default()
    };
    for (state, expected) in [
        ("new", true),
        ("waiting", true),
        ("closed", false),
        ("bogus", false),
    ] {
        let t = ticket(state, &values);
        let options = available_transitions(&def, &t, &requester, &Facts::default(), false);
        assert_eq!(keys(&options).contains(&"cancel"), expected, "{state}");
    }
}

#[test]
fn plans_a_transition() {
    let def = def();
    let values =
        fields(json!({"title": "Printer on fire", "impact": "low", "owner": OWNER, "ci": CI}));
    let t = ticket("new", &values);
    let supplied = fields(json!({"effort": 2.5}));
    let plan = plan_transition(
        &def,
        &t,
        &agent(),
        &closed_children(),
        &input("close", &supplied),
        &masters(),
    )
    .unwrap();
    assert_eq!((plan.from.as_str(), plan.to.as_str()), ("new", "closed"));
    assert_eq!(plan.sla, SlaCategory::Stopped);
    // `effort` is read-only once closed, but `close` lists it: the transition may write it.
    assert_eq!(
        plan.field_changes,
        vec![
            FieldChange {
                field: "effort".into(),
                old: Value::Null,
                new: json!(2.5)
            },
            FieldChange {
                field: "notes".into(),
                old: Value::Null,
                new: json!("closed")
            },
        ]
    );
    let copied = |value: Value, source_type| MappedValue::Copied { value, source_type };
    let title = || {
        BTreeMap::from([(
            "title".to_owned(),
            copied(json!("Printer on fire"), FieldType::Text),
        )])
    };
    assert_eq!(
        plan.actions,
        vec![
            PlannedAction::Assign {
                assignee: Assignee::GroupKey {
                    key: "service-desk".into()
                }
            },
            PlannedAction::Assign {
                assignee: Assignee::User {
                    id: OWNER.parse().unwrap()
                }
            },
            PlannedAction::CreateChildTicket {
                template: "problem".into(),
                fields: title()
            },
            PlannedAction::LibraryUpsert {
                library: "knowledge_base".into(),
                record: None,
                record_field: None,
                fields: title()
            },
            PlannedAction::LibraryUpdate {
                library: "cmdb".into(),
                record: CI.parse().unwrap(),
                fields: BTreeMap::from([(
                    "status".to_owned(),
                    MappedValue::Literal {
                        text: "retired".into()
                    }
                )])
            },
            PlannedAction::Notify {
                event: "incident.closed".into()
            },
        ]
    );
    let json = serde_json::to_value(&plan).unwrap();
    assert_eq!(
        json["actions"][0],
        json!({"type": "assign", "assignee": {"kind": "group_key", "key": "service-desk"}})
    );
    assert_eq!(
        json["field_changes"][0],
        json!({"field": "effort", "old": null, "new": 2.5})
    );
}

#[test]
fn empty_sources_leave_actions_out() {
    let def = def();
    let values = fields(json!({"title": "x", "impact": "low", "effort": 1}));
    let t = ticket("new", &values);
    let plan = plan_transition(
        &def,
        &t,
        &agent(),
        &closed_children(),
        &input("close", &Map::new()),
        &masters(),
    )
    .unwrap();
    let kinds: Vec<String> = plan
        .actions
        .iter()
        .map(|a| {
            serde_json::to_value(a).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // No `owner` (second assign) and no `ci` (library_update).
    assert_eq!(
        kinds,
        vec!["assign", "create_child_ticket", "library_upsert", "notify"]
    );
}

#[test]
fn refuses_with_every_reason() {
    let def = def();
    let values = fields(json!({"impact": "high"}));
    let t = ticket("waiting", &values);
    let nobody = ActorView::default();
    let supplied = fields(json!({"effort": -1, "title": "x", "notes": "n", "bogus": 1}));
    let errors = plan_transition(
        &def,
        &t,
        &nobody,
        &Facts::default(),
        &input("close", &supplied),
        &masters(),
    )
    .unwrap_err();
    let codes: Vec<String> = errors
        .iter()
        .map(|e| match e {
            PlanError::Unavailable(u) => u.code().to_owned(),
            PlanError::Field(f) => format!("{}:{}", f.field, f.code),
        })
        .collect();
    assert_eq!(
        codes,
        vec![
            "not_permitted",
            "guard_failed",
            "fields.bogus:unknown_field",
            "fields.effort:below_min",
            "fields.notes:hidden",
            "fields.title:not_settable",
            "missing_fields",
        ]
    );
    assert_eq!(
        errors.last(),
        Some(&PlanError::Unavailable(Unavailable::MissingFields {
            fields: vec!["title".into(), "effort".into()]
        }))
    );
    let json = serde_json::to_value(&errors).unwrap();
    assert_eq!(json[0], json!({"code": "not_permitted"}));
    assert_eq!(json[2]["field"], json!("fields.bogus"));

    let wrong = plan_transition(
        &def,
        &ticket("closed", &values),
        &agent(),
        &closed_children(),
        &input("hold", &Map::new()),
        &masters(),
    )
    .unwrap_err();
    assert!(matches!(
        wrong[0],
        PlanError::Unavailable(Unavailable::WrongState { .. })
    ));
    let unknown = plan_transition(
        &def,
        &t,
        &agent(),
        &closed_children(),
        &input("explode", &Map::new()),
        &masters(),
    )
    .unwrap_err();
    assert_eq!(
        unknown,
        vec![PlanError::Unavailable(Unavailable::UnknownTransition {
            transition: "explode".into()
        })]
    );
}

#[test]
fn supplied_values_are_validated_and_may_clear() {
    let def = def();
    let values = fields(json!({"title": "x", "impact": "low", "effort": 4, "notes": "old"}));
    let t = ticket("new", &values);
    // Clearing a required field is refused as missing.
    let errors = plan_transition(
        &def,
        &t,
        &agent(),
        &closed_children(),
        &input("close", &fields(json!({"effort": null}))),
        &masters(),
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![PlanError::Unavailable(Unavailable::MissingFields {
            fields: vec!["effort".into()]
        })]
    );
    let errors = plan_transition(
        &def,
        &t,
        &agent(),
        &closed_children(),
        &input("close", &fields(json!({"effort": "4"}))),
        &masters(),
    )
    .unwrap_err();
    assert!(matches!(&errors[0], PlanError::Field(f) if f.code == "invalid_type"));
}

#[test]
fn plan_and_listing_agree() {
    let def = def();
    let facts = closed_children();
    for values in [
        json!({"title": "x", "impact": "low", "effort": 1}),
        json!({"title": "x", "impact": "high", "effort": 1}),
        json!({"impact": "low", "effort": 1}),
        json!({"title": "x", "impact": "low", "code": "ABC-1", "effort": 1}),
    ] {
        let values = fields(values);
        for state in ["new", "waiting", "closed"] {
            let t = ticket(state, &values);
            for actor in [agent(), ActorView::default()] {
                let listed = available_transitions(&def, &t, &actor, &facts, false);
                for tr in &def.transitions {
                    let planned = plan_transition(
                        &def,
                        &t,
                        &actor,
                        &facts,
                        &input(&tr.key, &Map::new()),
                        &masters(),
                    );
                    assert_eq!(
                        keys(&listed).contains(&tr.key.as_str()),
                        planned.is_ok(),
                        "{state} {} {values:?}",
                        tr.key
                    );
                }
            }
        }
    }
}
