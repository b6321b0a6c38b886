//! Fuzzes the template definition pipeline with arbitrary bytes: JSON parsing, the definition
//! parser, the linter and the engine must never panic, whatever a client sends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use stageflow::domain::identity::Role;
use stageflow::domain::template::{
    ActorView, Facts, TicketView, available_transitions, generated_context, lint, parse_definition,
};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(def) = parse_definition(&json) else {
        return;
    };
    let _ = lint(&def, &generated_context());
    let fields = Map::new();
    let actor = ActorView {
        user: None,
        roles: vec![Role::Agent],
        groups: Vec::new(),
    };
    for (_, state) in def.states() {
        let ticket = TicketView {
            state: &state.key,
            fields: &fields,
            assignee: None,
            requester: None,
        };
        let _ = available_transitions(&def, &ticket, &actor, &Facts::default(), true);
    }
});
