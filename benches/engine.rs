//! The workflow engine on a large definition: linting a template with 200 states and 1,000
//! transitions (target < 20 ms), and the available transitions of one ticket of it (target
//! < 50 µs). Figures go to docs/PERFORMANCE.md. Run: `cargo bench --bench engine`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::{Map, Value, json};
use stageflow::domain::identity::Role;
use stageflow::domain::template::{
    ActorView, Facts, FromStates, TicketView, available_transitions, generated, generated_context,
    lint, parse_definition,
};

fn engine(c: &mut Criterion) {
    let def = generated(200, 1_000);
    let context = generated_context();
    let report = lint(&def, &context);
    assert!(
        report.errors.is_empty(),
        "the generated definition must lint clean"
    );

    c.bench_function("lint 200 states / 1,000 transitions", |b| {
        b.iter(|| lint(black_box(&def), black_box(&context)))
    });

    let json = serde_json::to_value(&def).unwrap_or(Value::Null);
    c.bench_function("parse 200 states / 1,000 transitions", |b| {
        b.iter(|| parse_definition(black_box(&json)))
    });

    // The busiest state: the most transitions leave from it.
    let busiest = def
        .states()
        .map(|(_, s)| {
            let leaving = def
                .transitions
                .iter()
                .filter(|t| match &t.from {
                    FromStates::Any => !s.terminal,
                    FromStates::States(states) => states.contains(&s.key),
                })
                .count();
            (leaving, s.key.clone())
        })
        .max()
        .map(|(_, key)| key)
        .unwrap_or_default();
    let mut fields = Map::new();
    for field in &def.fields {
        fields.insert(field.key.clone(), json!(null));
    }
    let ticket = TicketView {
        state: &busiest,
        fields: &fields,
        assignee: None,
        requester: None,
    };
    let actor = ActorView {
        user: None,
        roles: vec![Role::Agent],
        groups: Vec::new(),
    };
    let facts = Facts {
        all_children_closed: true,
    };
    c.bench_function("available transitions of one ticket (busiest state)", |b| {
        b.iter(|| available_transitions(black_box(&def), &ticket, &actor, &facts, false))
    });
    c.bench_function("available transitions with explain (busiest state)", |b| {
        b.iter(|| available_transitions(black_box(&def), &ticket, &actor, &facts, true))
    });
}

criterion_group!(benches, engine);
criterion_main!(benches);
