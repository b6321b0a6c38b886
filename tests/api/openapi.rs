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

/// Every operation of the published document, as (method, path, operation).
fn operations(doc: &serde_json::Value) -> Vec<(String, String, serde_json::Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            all.push((method.clone(), path.clone(), operation.clone()));
        }
    }
    all
}

/// Walks every schema object of `value`, calling `visit(location, schema)`.
fn walk(
    value: &serde_json::Value,
    at: &str,
    visit: &mut dyn FnMut(&str, &serde_json::Map<String, serde_json::Value>),
) {
    match value {
        serde_json::Value::Object(map) => {
            visit(at, map);
            for (key, child) in map {
                walk(child, &format!("{at}/{key}"), visit);
            }
        }
        serde_json::Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(child, &format!("{at}/{i}"), visit);
            }
        }
        _ => {}
    }
}

#[test]
fn every_object_schema_says_which_members_it_has() {
    let doc = stageflow::api::openapi_document().unwrap();
    let mut bare = Vec::new();
    walk(&doc, "", &mut |at, map| {
        let is_object = map.get("type").is_some_and(|t| {
            t == "object"
                || t.as_array()
                    .is_some_and(|ts| ts.iter().any(|t| t == "object"))
        });
        let described = [
            "properties",
            "additionalProperties",
            "allOf",
            "oneOf",
            "anyOf",
        ]
        .iter()
        .any(|k| map.contains_key(*k));
        if is_object && !described {
            bare.push(at.to_owned());
        }
    });
    assert!(
        bare.is_empty(),
        "object schemas without members or additionalProperties: {bare:#?}"
    );
    // Values of any JSON type are `{}` (with a description), not objects.
    let history = &doc["components"]["schemas"]["HistoryEntry"]["properties"];
    for member in ["old_value", "new_value"] {
        assert!(
            history[member].get("type").is_none(),
            "{member}: {}",
            history[member]
        );
    }
}

#[test]
fn pages_refer_to_their_item_schema() {
    let doc = stageflow::api::openapi_document().unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let pages: Vec<_> = schemas.keys().filter(|k| k.starts_with("Page_")).collect();
    assert!(pages.len() >= 20);
    for page in pages {
        let item = page.trim_start_matches("Page_");
        assert_eq!(
            schemas[page]["properties"]["items"]["items"]["$ref"],
            format!("#/components/schemas/{item}"),
            "{page}"
        );
    }
}

#[test]
fn operations_have_a_one_line_summary_a_description_and_described_parameters() {
    let doc = stageflow::api::openapi_document().unwrap();
    for (method, path, operation) in operations(&doc) {
        let summary = operation["summary"].as_str().unwrap_or_default();
        assert!(
            !summary.is_empty() && !summary.contains('\n') && summary.chars().count() <= 80,
            "{method} {path}: summary {summary:?}"
        );
        assert!(
            operation["description"]
                .as_str()
                .is_some_and(|d| !d.trim().is_empty()),
            "{method} {path} has no description"
        );
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            assert!(
                parameter["description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty()),
                "{method} {path}: parameter {} is not described",
                parameter["name"]
            );
            if parameter["name"] == "limit" {
                let schema = &parameter["schema"];
                assert_eq!(schema["minimum"], 1, "{method} {path}");
                assert_eq!(schema["maximum"], 500, "{method} {path}");
                assert_eq!(schema["default"], 50, "{method} {path}");
            }
        }
    }
}

#[test]
fn error_responses_are_declared_where_they_can_occur() {
    let doc = stageflow::api::openapi_document().unwrap();
    for (method, path, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().unwrap();
        let declares = |status: &str| responses.contains_key(status);
        assert!(declares("500"), "{method} {path}: no 500");
        let json_body = operation["requestBody"]["content"]
            .as_object()
            .is_some_and(|c| c.contains_key("application/json"));
        if json_body {
            for status in ["400", "415", "422"] {
                assert!(
                    declares(status),
                    "{method} {path}: JSON body but no {status}"
                );
            }
        }
        let parameters: Vec<_> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        if parameters.iter().any(|p| p["in"] == "query") {
            assert!(
                declares("422"),
                "{method} {path}: query parameters but no 422"
            );
        }
        if parameters
            .iter()
            .any(|p| p["in"] == "header" && p["name"] == "If-Match")
        {
            assert!(
                declares("400") && declares("412"),
                "{method} {path}: If-Match without 400/412"
            );
        }
        for (status, response) in responses {
            // A group membership and a signing key have no URL of their own to point to.
            let no_location = ["create_group_member", "create_signing_key"];
            let id = operation["operationId"].as_str().unwrap_or_default();
            if status == "201" && !no_location.contains(&id) {
                assert!(
                    response["headers"].get("Location").is_some(),
                    "{method} {path}: 201 without Location"
                );
            }
        }
    }
    // Rate limits apply to the credential endpoints.
    for path in ["/api/v1/auth/token", "/api/v1/auth/refresh"] {
        assert!(
            doc["paths"][path]["post"]["responses"].get("429").is_some(),
            "{path}"
        );
    }
}

#[test]
fn servers_and_security_are_declared_and_public_operations_say_so() {
    let doc = stageflow::api::openapi_document().unwrap();
    assert_eq!(doc["servers"][0]["url"], "/");
    assert_eq!(doc["security"], serde_json::json!([{"bearer": []}]));
    let public = [
        "get_health",
        "get_readiness",
        "get_openapi",
        "get_jwks",
        "create_token",
        "create_refresh",
        "delete_session",
    ];
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap();
        if public.contains(&id) {
            assert_eq!(
                operation["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
        } else {
            assert_ne!(
                operation["security"],
                serde_json::json!([]),
                "{method} {path}"
            );
        }
    }
}

#[test]
fn field_filters_are_a_deep_object_parameter() {
    let doc = stageflow::api::openapi_document().unwrap();
    for path in [
        "/api/v1/tickets",
        "/api/v1/tickets/export",
        "/api/v1/libraries/{key}/records",
    ] {
        let field = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "field")
            .cloned()
            .unwrap_or_else(|| panic!("{path}: no field parameter"));
        assert_eq!(field["style"], "deepObject", "{path}");
        assert_eq!(field["explode"], true, "{path}");
    }
}

#[test]
fn every_json_body_shows_an_example() {
    let doc = stageflow::api::openapi_document().unwrap();
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let has_example = |media: &serde_json::Value| {
        if media.get("example").is_some() || media["schema"].get("example").is_some() {
            return true;
        }
        // A list answered as a plain array shows its item's example.
        let schema = match media["schema"].get("items") {
            Some(items) => items,
            None => &media["schema"],
        };
        let name = schema["$ref"].as_str().unwrap_or_default();
        let name = name.rsplit('/').next().unwrap_or_default();
        schemas
            .get(name)
            .is_some_and(|s| s.get("example").is_some())
    };
    let mut missing = Vec::new();
    for (method, path, operation) in operations(&doc) {
        let mut bodies = vec![("request", &operation["requestBody"])];
        for (status, response) in operation["responses"].as_object().unwrap() {
            bodies.push((status.as_str(), response));
        }
        for (which, body) in bodies {
            let Some(media) = body["content"].get("application/json") else {
                continue;
            };
            // The template item endpoints carry a free-form definition item; the document
            // itself is described by the OpenAPI specification.
            let free_form = media["schema"]["additionalProperties"] == true;
            if !free_form && !has_example(media) {
                missing.push(format!("{method} {path} {which}"));
            }
        }
    }
    assert!(
        missing.is_empty(),
        "bodies without an example: {missing:#?}"
    );
}

#[test]
fn request_bodies_state_the_bounds_the_server_validates() {
    let doc = stageflow::api::openapi_document().unwrap();
    let schemas = &doc["components"]["schemas"];
    let name = &schemas["CreatePlan"]["properties"]["name"];
    assert_eq!(
        (name["minLength"].clone(), name["maxLength"].clone()),
        (1.into(), 100.into())
    );
    let users = &schemas["CreatePlan"]["properties"]["max_users"];
    assert_eq!(
        (users["minimum"].clone(), users["maximum"].clone()),
        (0.into(), 1_000_000.into())
    );
    let roles = &schemas["CreateUser"]["properties"]["roles"];
    assert_eq!(
        (roles["minItems"].clone(), roles["maxItems"].clone()),
        (1.into(), 6.into())
    );
    assert_eq!(
        schemas["CreateTenant"]["properties"]["slug"]["minLength"],
        2
    );
}

#[test]
fn the_catalog_listing_and_the_import_format_are_different_schemas() {
    // Two DTOs named `CatalogEntry` once shared one component: the listing was documented
    // with the import format's schema.
    let doc = stageflow::api::openapi_document().unwrap();
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["CatalogListEntry"]["properties"]
            .get("installed")
            .is_some()
    );
    assert!(
        schemas["CatalogEntry"]["properties"]
            .get("template")
            .is_some()
    );
    assert_eq!(
        doc["paths"]["/api/v1/catalog"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
            ["$ref"],
        "#/components/schemas/Page_CatalogListEntry"
    );
}
