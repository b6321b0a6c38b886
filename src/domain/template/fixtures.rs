//! Definitions shared by the tests.

use serde_json::{Value, json};

/// The incident template from the brief, verbatim.
pub fn incident() -> Value {
    json!({
      "name": {"ja": "インシデント", "en": "Incident"},
      "key_prefix": "INC",
      "fields": [
        {"key": "title", "type": "text", "label": {"ja": "件名", "en": "Title"}, "required": true, "min_length": 1, "max_length": 200},
        {"key": "impact", "type": "select", "master": "impact", "label": {"ja": "影響度", "en": "Impact"}, "allowed_items": ["high", "medium", "low"]},
        {"key": "tags", "type": "multi_select", "master": "category", "label": {"ja": "分類", "en": "Category"}},
        {"key": "effort", "type": "decimal", "min": 0, "max": 1000, "label": {"ja": "工数", "en": "Effort"}},
        {"key": "code", "type": "text", "pattern": "^[A-Z]{3}-[0-9]+$", "label": {"ja": "コード", "en": "Code"}},
        {"key": "notes", "type": "long_text", "internal": true, "label": {"ja": "内部メモ", "en": "Internal notes"}},
        {"key": "kb", "type": "library_ref", "library": "knowledge_base", "label": {"ja": "ナレッジ", "en": "Knowledge"}}
      ],
      "stages": [
        {"key": "open", "label": {"ja": "受付", "en": "Open"}, "states": [
          {"key": "new", "label": {"ja": "新規", "en": "New"}, "initial": true, "sla": "running"},
          {"key": "waiting", "label": {"ja": "保留", "en": "On hold"}, "sla": "paused"}]},
        {"key": "done", "label": {"ja": "完了", "en": "Done"}, "states": [
          {"key": "closed", "label": {"ja": "クローズ", "en": "Closed"}, "terminal": true, "sla": "stopped"}]}
      ],
      "transitions": [
        {"key": "close", "label": {"ja": "クローズ", "en": "Close"}, "from": ["new", "waiting"], "to": "closed",
         "allowed": {"roles": ["agent"], "groups": ["service-desk"], "assignee": true, "requester": false},
         "guard": {"all": [{"field": "impact", "op": "in", "value": ["low", "medium"]}, {"not": {"field": "code", "op": "is_set"}}, {"fact": "all_children_closed"}]},
         "requires": ["effort"], "sets": ["effort", "notes"],
         "actions": [
           {"type": "set_field", "field": "notes", "value": "closed"},
           {"type": "assign", "group": "service-desk"},
           {"type": "assign", "from_field": "owner"},
           {"type": "create_child_ticket", "template": "problem", "mapping": {"title": "title"}},
           {"type": "library_upsert", "library": "knowledge_base", "mapping": {"title": "title"}},
           {"type": "library_update", "library": "cmdb", "record_field": "ci", "mapping": {"status": "=retired"}},
           {"type": "notify", "event": "incident.closed"}]}
      ],
      "field_rules": {"closed": {"effort": "read_only", "notes": "hidden", "title": "required"}},
      "layout": {"sections": [{"key": "main", "label": {"ja": "基本", "en": "Main"}, "fields": ["title", "impact"]}],
                 "states": {"closed": [{"key": "summary", "label": {"ja": "概要", "en": "Summary"}, "fields": ["title", "effort"]}]}}
    })
}

/// A small lint-clean incident template, the base of most engine and lint tests: the brief's
/// example with the references it lacks (`owner`, `ci`) added and a reopen path.
pub fn incident_clean() -> Value {
    let mut v = incident();
    let fields = v["fields"].as_array_mut().map(|f| {
        f.push(json!({"key": "owner", "type": "user", "label": {"ja": "担当者", "en": "Owner"}}));
        f.push(json!({"key": "ci", "type": "library_ref", "library": "cmdb", "label": {"ja": "構成品目", "en": "CI"}}));
    });
    assert!(fields.is_some());
    v["transitions"] = json!([
        {"key": "hold", "label": {"ja": "保留", "en": "Hold"}, "from": ["new"], "to": "waiting",
         "allowed": {"roles": ["agent"], "assignee": true}},
        {"key": "resume", "label": {"ja": "再開", "en": "Resume"}, "from": ["waiting"], "to": "new",
         "allowed": {"roles": ["agent"], "requester": true}},
        v["transitions"][0].clone(),
        {"key": "cancel", "label": {"ja": "取消", "en": "Cancel"}, "from": "*", "to": "closed",
         "allowed": {"requester": true}}
    ]);
    v
}

pub fn lint_context() -> super::LintContext {
    use std::collections::BTreeMap;
    let set = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
    let fields = |pairs: &[(&str, super::FieldType)]| -> BTreeMap<String, super::FieldType> {
        pairs.iter().map(|(k, t)| ((*k).to_owned(), *t)).collect()
    };
    use super::FieldType::*;
    super::LintContext {
        template_key: Some("incident".into()),
        masters: BTreeMap::from([
            (
                "impact".to_owned(),
                set(&["high", "medium", "low", "retired"]),
            ),
            ("category".to_owned(), set(&["network", "server", "client"])),
        ]),
        templates: BTreeMap::from([(
            "problem".to_owned(),
            fields(&[
                ("title", Text),
                ("detail", LongText),
                ("count", Integer),
                ("level", Select),
            ]),
        )]),
        libraries: BTreeMap::from([
            (
                "knowledge_base".to_owned(),
                fields(&[("title", Text), ("body", LongText)]),
            ),
            (
                "cmdb".to_owned(),
                fields(&[("status", Text), ("retired_on", Date)]),
            ),
        ]),
        library_internal: BTreeMap::from([("knowledge_base".to_owned(), set(&[]))]),
        ..Default::default()
    }
}
