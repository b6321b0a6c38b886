//! Synthetic definitions of any size, used by the tests (property tests, lint-clean checks)
//! and by the engine benchmarks (lint of a 200-state / 1,000-transition template,
//! `available_transitions` on it). Deterministic: the same sizes give the same definition.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::guard::{Comparison, Guard, GuardOp};
use super::lint::LintContext;
use super::model::{
    Action, Allowed, Bound, FieldDef, FieldRule, FieldType, FromStates, Label, Layout, Section,
    SlaCategory, Stage, State, TemplateDefinition, Transition,
};

/// States per generated stage.
const STATES_PER_STAGE: usize = 25;
const PRIORITIES: [&str; 3] = ["high", "medium", "low"];

/// A lint-clean definition (given `generated_context()`) with `states` states (at least 2)
/// split into stages of 25, and `transitions` transitions (at least `states - 1`): a chain
/// `s_0 → s_1 → … → s_{n-1}` from the initial to the terminal state, then further guarded
/// transitions between the non-terminal states. Sizes beyond the limits (1,000 states,
/// 5,000 transitions) give a definition that lints with `limit_exceeded`.
pub fn generated(states: usize, transitions: usize) -> TemplateDefinition {
    let n = states.max(2);
    let m = transitions.max(n - 1);
    let label = |what: &str, i: usize| Label::new(format!("{what}{i}"), format!("{what} {i}"));

    let fields = vec![
        FieldDef {
            required: true,
            max_length: Some(200),
            ..FieldDef::new("title", FieldType::Text, Label::new("件名", "Title"))
        },
        FieldDef {
            master: Some("priority".into()),
            ..FieldDef::new(
                "priority",
                FieldType::Select,
                Label::new("優先度", "Priority"),
            )
        },
        FieldDef {
            min: Some(Bound::Number(0.into())),
            max: Some(Bound::Number(1000.into())),
            ..FieldDef::new("effort", FieldType::Decimal, Label::new("工数", "Effort"))
        },
        FieldDef::new("due", FieldType::Date, Label::new("期限", "Due")),
        FieldDef::new(
            "approved",
            FieldType::Boolean,
            Label::new("承認", "Approved"),
        ),
        FieldDef::new("owner", FieldType::User, Label::new("担当", "Owner")),
        FieldDef {
            internal: true,
            ..FieldDef::new("notes", FieldType::LongText, Label::new("メモ", "Notes"))
        },
    ];

    let stages = (0..n)
        .step_by(STATES_PER_STAGE)
        .enumerate()
        .map(|(si, first)| Stage {
            key: format!("stage_{si}"),
            label: label("段階", si),
            states: (first..n.min(first + STATES_PER_STAGE))
                .map(|i| State {
                    key: format!("s_{i}"),
                    label: label("状態", i),
                    initial: i == 0,
                    terminal: i == n - 1,
                    sla: if i == n - 1 {
                        SlaCategory::Stopped
                    } else if i % 5 == 4 {
                        SlaCategory::Paused
                    } else {
                        SlaCategory::Running
                    },
                })
                .collect(),
        })
        .collect();

    let agents = Allowed {
        roles: vec!["agent".into()],
        groups: vec!["service_desk".into()],
        assignee: true,
        requester: false,
    };
    let mut list = Vec::with_capacity(m);
    for i in 0..n - 1 {
        list.push(Transition {
            key: format!("t_{i}"),
            label: label("進む", i),
            from: FromStates::States(vec![format!("s_{i}")]),
            to: format!("s_{}", i + 1),
            allowed: agents.clone(),
            guard: (i % 3 == 1).then(|| compare("title", GuardOp::IsSet, None)),
            requires: if i == n - 2 {
                vec!["effort".into()]
            } else {
                Vec::new()
            },
            sets: vec!["notes".into()],
            actions: if i == n - 2 {
                vec![Action::Notify {
                    event: "generated.closed".into(),
                }]
            } else {
                Vec::new()
            },
        });
    }
    for j in 0..m - (n - 1) {
        let from = j % (n - 1);
        let to = (from * 7 + j * 3 + 1) % n;
        list.push(Transition {
            key: format!("x_{j}"),
            label: label("分岐", j),
            from: FromStates::States(vec![format!("s_{from}")]),
            to: format!("s_{to}"),
            allowed: Allowed {
                requester: j % 2 == 0,
                ..agents.clone()
            },
            guard: Some(extra_guard(j)),
            requires: if j % 5 == 0 {
                vec!["due".into()]
            } else {
                Vec::new()
            },
            sets: Vec::new(),
            actions: if j % 10 == 0 {
                vec![
                    Action::SetField {
                        field: "approved".into(),
                        value: json!(false),
                    },
                    Action::Assign {
                        group: None,
                        user: None,
                        from_field: Some("owner".into()),
                    },
                ]
            } else {
                Vec::new()
            },
        });
    }

    let last = format!("s_{}", n - 1);
    let field_rules = BTreeMap::from([(
        last.clone(),
        BTreeMap::from([
            ("effort".to_owned(), FieldRule::ReadOnly),
            ("title".to_owned(), FieldRule::Required),
        ]),
    )]);
    let keys = |range: std::ops::Range<usize>| -> Vec<String> {
        fields
            .get(range)
            .unwrap_or_default()
            .iter()
            .map(|f| f.key.clone())
            .collect()
    };
    let layout = Layout {
        sections: vec![
            Section {
                key: "main".into(),
                label: Label::new("基本", "Main"),
                fields: keys(0..4),
            },
            Section {
                key: "details".into(),
                label: Label::new("詳細", "Details"),
                fields: keys(4..fields.len()),
            },
        ],
        states: BTreeMap::from([(
            last,
            vec![Section {
                key: "summary".into(),
                label: Label::new("概要", "Summary"),
                fields: keys(0..3),
            }],
        )]),
    };
    TemplateDefinition {
        name: Label::new("生成テンプレート", "Generated template"),
        key_prefix: "GEN".into(),
        fields,
        stages,
        transitions: list,
        field_rules,
        layout,
    }
}

/// The masters, template key and libraries that `generated` definitions refer to.
pub fn generated_context() -> LintContext {
    let items: BTreeSet<String> = PRIORITIES.iter().map(|p| (*p).to_owned()).collect();
    LintContext {
        template_key: Some("generated".into()),
        masters: BTreeMap::from([("priority".to_owned(), items)]),
        templates: BTreeMap::new(),
        libraries: BTreeMap::new(),
        ..Default::default()
    }
}

fn compare(field: &str, op: GuardOp, value: Option<serde_json::Value>) -> Guard {
    Guard::Compare(Comparison {
        field: field.into(),
        op,
        value,
    })
}

/// Four kinds of guard, so that benchmarks exercise comparisons, combinators and facts, and
/// the overlap check meets both analysable and opaque guards.
fn extra_guard(j: usize) -> Guard {
    let priority = PRIORITIES
        .get(j % PRIORITIES.len())
        .copied()
        .unwrap_or("low");
    match j % 4 {
        0 => compare("priority", GuardOp::Eq, Some(json!(priority))),
        1 => Guard::All {
            all: vec![
                compare("effort", GuardOp::Gt, Some(json!(j % 100))),
                Guard::Not {
                    not: Box::new(compare("notes", GuardOp::IsSet, None)),
                },
            ],
        },
        2 => Guard::Any {
            any: vec![
                compare("approved", GuardOp::Eq, Some(json!(true))),
                Guard::Fact {
                    fact: "all_children_closed".into(),
                },
            ],
        },
        _ => Guard::All {
            all: vec![
                compare("priority", GuardOp::In, Some(json!(["low", "medium"]))),
                compare("due", GuardOp::Ge, Some(json!("2024-01-01"))),
            ],
        },
    }
}
