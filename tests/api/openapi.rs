//! The committed OpenAPI document matches the code.
//!
//! Regenerate with `cargo run -q -- openapi --output openapi/openapi.json` (or run this test
//! with `STAGEFLOW_UPDATE_OPENAPI=1`).

use std::path::Path;

const COMMITTED: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json");

#[test]
fn committed_openapi_document_matches_the_code() {
    let generated = stageflow::api::openapi_json_pretty().unwrap();
    if std::env::var("STAGEFLOW_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(COMMITTED, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(Path::new(COMMITTED)).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is out of date with the code.\nRegenerate it with:\n    \
         cargo run -q -- openapi --output openapi/openapi.json\nand commit the result."
    );
}

#[test]
fn every_operation_is_tagged_with_a_verb_resource_operation_id() {
    let doc = stageflow::api::openapi_document().unwrap();
    let verbs = [
        "get",
        "list",
        "create",
        "update",
        "delete",
        "transition",
        "install",
        "publish",
        "export",
    ];
    let mut seen = std::collections::HashSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(
                verbs.iter().any(|v| id.starts_with(&format!("{v}_"))),
                "{method} {path}: operationId {id:?} is not <verb>_<resource>"
            );
            assert!(seen.insert(id.to_owned()), "duplicate operationId {id}");
            assert!(
                operation["tags"].as_array().is_some_and(|t| !t.is_empty()),
                "{method} {path} has no tag"
            );
            // Liveness, the document itself and the key set (served from memory) have no
            // failure mode of their own.
            if ["get_health", "get_openapi", "get_jwks"].contains(&id) {
                continue;
            }
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses
                    .keys()
                    .any(|code| code.starts_with('4') || code.starts_with('5')),
                "{method} {path} documents no error response"
            );
        }
    }
}
