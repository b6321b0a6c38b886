use serde_json::json;
use uuid::Uuid;

use super::*;
use crate::domain::identity::Role;
use crate::domain::ids::{OrganizationId, UserId};
use crate::domain::template::TransitionInput;
use crate::domain::template::TransitionKey;
use crate::domain::template::{
    ActorView, Facts, MappedValue, PlannedAction, TicketView, Unavailable, available_transitions,
    parse_definition, plan_transition,
};

fn def() -> TemplateDefinition {
    parse_definition(&json!({
        "name": {"ja": "問い合わせ", "en": "Inquiry"},
        "key_prefix": "INQ",
        "fields": [
            {"key": "title", "type": "text", "label": {"ja": "件名", "en": "Title"}},
            {"key": "body", "type": "long_text", "label": {"ja": "本文", "en": "Body"}},
            {"key": "note", "type": "text", "internal": true, "label": {"ja": "メモ", "en": "Note"}},
            {"key": "ref_no", "type": "text", "internal": true, "label": {"ja": "番号", "en": "Ref"}},
            {"key": "count", "type": "integer", "label": {"ja": "数", "en": "Count"}},
            {"key": "cost", "type": "decimal", "label": {"ja": "費用", "en": "Cost"}},
            {"key": "tags", "type": "multi_select", "master": "tags", "label": {"ja": "タグ", "en": "Tags"}},
            {"key": "at", "type": "datetime", "label": {"ja": "日時", "en": "At"}}
        ],
        "stages": [{"key": "open", "label": {"ja": "受付", "en": "Open"},
                    "states": [{"key": "new", "label": {"ja": "新規", "en": "New"}, "initial": true},
                               {"key": "done", "label": {"ja": "完了", "en": "Done"}, "terminal": true}]}],
        "transitions": [
            {"key": "finish", "label": {"ja": "完了", "en": "Finish"}, "from": ["new"], "to": "done",
             "allowed": {"roles": ["agent"], "requester": true},
             "requires": ["ref_no", "body"],
             "guard": {"all": [{"field": "count", "op": "is_set"}, {"field": "note", "op": "eq", "value": "ok"}]},
             "actions": [
                {"type": "set_field", "field": "note", "value": "closed by requester"},
                {"type": "create_child_ticket", "template": "task",
                 "mapping": {"title": "title", "detail": "note", "origin": "=inquiry"}}]},
            {"key": "count_up", "label": {"ja": "数", "en": "Count"}, "from": ["new"], "to": "new",
             "allowed": {"roles": ["agent"]}, "guard": {"field": "count", "op": "gt", "value": 3}}
        ]
    }))
    .unwrap()
}

fn fields(v: Value) -> Map<String, Value> {
    v.as_object().unwrap().clone()
}

fn restricted() -> Audience {
    Audience::Restricted {
        user: None,
        organization: None,
    }
}

#[test]
fn restricted_callers_see_their_own_and_their_organizations_tickets() {
    let (me, other) = (UserId(Uuid::from_u128(1)), UserId(Uuid::from_u128(3)));
    let (org, other_org) = (
        OrganizationId(Uuid::from_u128(2)),
        OrganizationId(Uuid::from_u128(4)),
    );
    let partner = Audience::Restricted {
        user: Some(me),
        organization: Some(org),
    };
    assert!(partner.sees(Some(me), None));
    assert!(partner.sees(Some(other), Some(org)));
    assert!(!partner.sees(Some(other), Some(other_org)));
    let requester = Audience::Restricted {
        user: Some(me),
        organization: None,
    };
    assert!(!requester.sees(Some(other), None));
    assert!(!restricted().sees(None, None));
    assert!(Audience::Staff.sees(None, None));
}

#[test]
fn internal_fields_are_redacted_for_restricted_callers() {
    let values = fields(json!({"title": "t", "note": "secret", "count": 3}));
    let seen = restricted().redact(&def(), values.clone());
    assert!(!seen.contains_key("note"));
    assert_eq!(seen.len(), 2);
    assert_eq!(Audience::Staff.redact(&def(), values.clone()), values);
    let names = vec!["note".to_owned(), "body".to_owned()];
    assert_eq!(restricted().field_names(&def(), names.clone()), ["body"]);
    assert_eq!(Audience::Staff.field_names(&def(), names.clone()), names);
}

#[test]
fn the_title_is_the_title_field_or_the_first_public_text_field() {
    assert_eq!(title_of(&def(), &fields(json!({"title": "件名"}))), "件名");
    // An internal text field never supplies the title.
    assert_eq!(title_of(&def(), &fields(json!({"note": "n"}))), "");
    let untitled = parse_definition(&json!({
        "name": {"ja": "無題", "en": "Untitled"}, "key_prefix": "UNT",
        "fields": [
            {"key": "secret", "type": "text", "internal": true, "label": {"ja": "秘", "en": "Secret"}},
            {"key": "subject", "type": "text", "label": {"ja": "件", "en": "Subject"}}
        ],
        "stages": [{"key": "s", "label": {"ja": "s", "en": "s"},
                    "states": [{"key": "new", "label": {"ja": "新", "en": "New"}, "initial": true}]}],
        "transitions": []
    }))
    .unwrap();
    let both = fields(json!({"secret": "内部", "subject": "公開"}));
    assert_eq!(title_of(&untitled, &both), "公開");
    assert_eq!(title_of(&untitled, &fields(json!({"secret": "内部"}))), "");
    assert_eq!(title_of(&def(), &fields(json!({}))), "");
}

fn actor() -> ActorView {
    ActorView {
        user: None,
        roles: vec![Role::Agent],
        groups: vec![],
    }
}

#[test]
fn explain_reasons_name_no_internal_field_for_restricted_callers() {
    let def = def();
    let values = fields(json!({"title": "t", "count": 1}));
    let view = TicketView {
        state: "new",
        fields: &values,
        assignee: None,
        requester: None,
    };
    let options = available_transitions(&def, &view, &actor(), &Facts::default(), true);
    let finish = options.iter().find(|o| o.key == "finish").unwrap().clone();
    assert_eq!(finish.required_fields, ["body", "ref_no"]);
    let seen = restricted().option(&def, finish.clone());
    assert_eq!(seen.required_fields, ["body"]);
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains("note") && !text.contains("ref_no"), "{text}");
    assert!(seen.reasons.iter().any(|r| matches!(r,
        Unavailable::MissingFields { fields } if fields == &["body"])));
    assert!(seen.reasons.iter().any(|r| matches!(r,
        Unavailable::GuardFailed { description, .. } if description == HIDDEN_CONDITION)));
    assert_eq!(Audience::Staff.option(&def, finish.clone()), finish);
    // A guard on public fields only keeps its description.
    let count_up = options
        .iter()
        .find(|o| o.key == "count_up")
        .unwrap()
        .clone();
    assert_eq!(restricted().option(&def, count_up.clone()), count_up);
}

#[test]
fn plans_carry_no_internal_value_for_restricted_callers() {
    let def = def();
    let values = fields(json!({"title": "t", "count": 1, "note": "ok"}));
    let view = TicketView {
        state: "new",
        fields: &values,
        assignee: None,
        requester: None,
    };
    let supplied = fields(json!({"body": "b", "ref_no": "r"}));
    let plan = plan_transition(
        &def,
        &view,
        &actor(),
        &Facts::default(),
        &TransitionInput {
            transition: TransitionKey::parse("finish").unwrap(),
            fields: supplied,
        },
        &Default::default(),
    )
    .unwrap();
    let none = Default::default();
    let staff = Audience::Staff.plan(&def, plan.clone(), &none);
    assert_eq!(staff, plan);
    assert!(
        serde_json::to_string(&staff)
            .unwrap()
            .contains("closed by requester")
    );
    let seen = restricted().plan(&def, plan, &none);
    let text = serde_json::to_string(&seen).unwrap();
    assert!(!text.contains("closed by requester"), "{text}");
    assert!(
        seen.field_changes
            .iter()
            .all(|c| c.field != "note" && c.field != "ref_no")
    );
    assert!(seen.field_changes.iter().any(|c| c.field == "body"));
    let PlannedAction::CreateChildTicket { fields, .. } = &seen.actions[0] else {
        panic!("{seen:?}");
    };
    assert!(!fields.contains_key("detail"));
    assert!(matches!(
        fields.get("title"),
        Some(MappedValue::Copied { .. })
    ));
    assert!(matches!(
        fields.get("origin"),
        Some(MappedValue::Literal { .. })
    ));
}
