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
        "get_metrics",
        "get_openapi",
        "get_jwks",
        "create_token",
        "create_refresh",
        "delete_session",
    ];
    for (method, path, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().unwrap();
        if id == "get_metrics" {
            // Open, or guarded by the node's own token when it sets one.
            assert_eq!(
                operation["security"],
                serde_json::json!([{}, {"metrics_token": []}]),
                "{method} {path}"
            );
        } else if public.contains(&id) {
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

#[test]
fn every_response_declares_the_request_id_header() {
    let doc = stageflow::api::openapi_document().unwrap();
    let header = &doc["components"]["headers"]["X-Request-Id"];
    assert_eq!(header["schema"]["type"], "string", "{header}");
    assert_eq!(header["schema"]["maxLength"], 128, "{header}");
    assert_eq!(header["required"], true, "{header}");
    let reference = serde_json::json!({"$ref": "#/components/headers/X-Request-Id"});
    for (name, response) in doc["components"]["responses"].as_object().unwrap() {
        assert_eq!(
            response["headers"]["X-Request-Id"], reference,
            "components/responses/{name}"
        );
    }
    for (method, path, operation) in operations(&doc) {
        for (status, response) in operation["responses"].as_object().unwrap() {
            // A shared response carries the header itself (checked above).
            if response.get("$ref").is_some() {
                continue;
            }
            assert_eq!(
                response["headers"]["X-Request-Id"], reference,
                "{method} {path} {status}"
            );
        }
    }
}

#[test]
fn header_parameters_are_strings_never_null() {
    let doc = stageflow::api::openapi_document().unwrap();
    let mut seen = 0;
    for (method, path, operation) in operations(&doc) {
        for parameter in operation["parameters"].as_array().into_iter().flatten() {
            if parameter["in"] == "header" {
                seen += 1;
                assert_eq!(
                    parameter["schema"]["type"], "string",
                    "{method} {path}: {}",
                    parameter["name"]
                );
            }
        }
    }
    assert!(seen >= 20, "{seen} header parameters");
}

#[test]
fn transition_reasons_plans_events_and_labels_are_typed() {
    let doc = stageflow::api::openapi_document().unwrap();
    let schemas = &doc["components"]["schemas"];
    let reason = &schemas["TransitionReason"];
    assert_eq!(reason["discriminator"]["propertyName"], "code");
    let mapping = reason["discriminator"]["mapping"].as_object().unwrap();
    let codes = [
        "unknown_transition",
        "wrong_state",
        "not_permitted",
        "guard_failed",
        "missing_fields",
    ];
    assert_eq!(mapping.len(), codes.len(), "{mapping:?}");
    let variants = reason["oneOf"].as_array().unwrap();
    assert_eq!(variants.len(), codes.len());
    for code in codes {
        let target = mapping[code].as_str().unwrap();
        assert!(variants.iter().any(|v| v["$ref"] == target), "{code}");
        let variant = &schemas[target.rsplit('/').next().unwrap()];
        assert_eq!(
            variant["properties"]["code"]["enum"],
            serde_json::json!([code])
        );
        assert!(
            variant["required"]
                .as_array()
                .unwrap()
                .contains(&"code".into())
        );
    }
    let choice = &schemas["TransitionChoice"]["properties"];
    assert_eq!(
        choice["reasons"]["items"]["$ref"],
        "#/components/schemas/TransitionReason"
    );
    assert_eq!(choice["label"]["$ref"], "#/components/schemas/Labels");
    let result = &schemas["TransitionResult"]["properties"];
    assert_eq!(
        result["plan"]["$ref"],
        "#/components/schemas/TransitionPlan"
    );
    assert_eq!(
        result["events"]["items"]["$ref"],
        "#/components/schemas/NotifyEvent"
    );
    let actions = &schemas["PlannedAction"]["oneOf"];
    assert_eq!(actions.as_array().unwrap().len(), 5, "{actions}");
}

/// Where `value` does not match `schema` of the document `doc` (types, enums, members,
/// `oneOf` by discriminator or exactly one match); empty when it matches.
fn mismatches(
    doc: &serde_json::Value,
    schema: &serde_json::Value,
    value: &serde_json::Value,
    at: &str,
) -> Vec<String> {
    use serde_json::Value;
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap();
        return mismatches(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(variants) = schema["oneOf"].as_array() {
        if let Some(property) = schema["discriminator"]["propertyName"].as_str() {
            let code = value[property].as_str().unwrap_or_default();
            let Some(target) = schema["discriminator"]["mapping"][code].as_str() else {
                return vec![format!("{at}: {property} {code:?} not in the mapping")];
            };
            return mismatches(doc, &serde_json::json!({"$ref": target}), value, at);
        }
        let matching = variants
            .iter()
            .filter(|v| mismatches(doc, v, value, at).is_empty())
            .count();
        return if matching == 1 {
            Vec::new()
        } else {
            vec![format!("{at}: {matching} oneOf variants match {value}")]
        };
    }
    let kinds: Vec<&str> = match &schema["type"] {
        Value::String(kind) => vec![kind.as_str()],
        Value::Array(kinds) => kinds.iter().filter_map(Value::as_str).collect(),
        _ => return Vec::new(), // `{}`: any value
    };
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let declared = kinds.contains(&kind) || (kind == "integer" && kinds.contains(&"number"));
    if !declared {
        return vec![format!("{at}: {kind} where {kinds:?} is declared")];
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(value)
    {
        return vec![format!("{at}: {value} not in {allowed:?}")];
    }
    let mut found = Vec::new();
    match value {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                found.extend(mismatches(
                    doc,
                    &schema["items"],
                    item,
                    &format!("{at}/{i}"),
                ));
            }
        }
        Value::Object(members) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                if !members.contains_key(required.as_str().unwrap()) {
                    found.push(format!("{at}: required {required} missing"));
                }
            }
            for (name, member) in members {
                let declared = &schema["properties"][name];
                let member_schema = if declared.is_null() {
                    match &schema["additionalProperties"] {
                        Value::Bool(false) => {
                            found.push(format!("{at}: undeclared member {name}"));
                            continue;
                        }
                        Value::Object(_) => &schema["additionalProperties"],
                        _ if schema.get("properties").is_some() => {
                            found.push(format!("{at}: undeclared member {name}"));
                            continue;
                        }
                        _ => continue,
                    }
                } else {
                    declared
                };
                found.extend(mismatches(
                    doc,
                    member_schema,
                    member,
                    &format!("{at}/{name}"),
                ));
            }
        }
        _ => {}
    }
    found
}

fn assert_conforms(doc: &serde_json::Value, schema: &str, value: &serde_json::Value) {
    let reference = serde_json::json!({"$ref": format!("#/components/schemas/{schema}")});
    let found = mismatches(doc, &reference, value, schema);
    assert!(found.is_empty(), "{found:#?}\n{value:#}");
}

/// The transition answers, as the server sends them, match their typed schemas: every
/// reason code, each plan action kind and the `notify` event payload.
#[actix_web::test]
async fn transition_answers_match_their_schemas() {
    use reqwest::StatusCode;
    use serde_json::json;
    let doc = stageflow::api::openapi_document().unwrap();
    let app = crate::helpers::spawn_app().await;
    let (tenant, _) = crate::tickets::desk_tenant(&app, "acme").await;
    let agent = app.user_token(&tenant, "agent1", &["agent"]).await;
    let requester = app.user_token(&tenant, "req1", &["requester"]).await;
    let ticket = app
        .create(
            "/api/v1/tickets",
            &requester,
            json!({"template": "desk", "fields": {"title": "VPNが繋がらない"}}),
        )
        .await;
    let path = format!("/api/v1/tickets/{}", ticket["id"].as_str().unwrap());
    let mut codes = std::collections::BTreeSet::new();
    for token in [&agent, &requester] {
        let listed = app
            .get(&format!("{path}/transitions?explain=true"), Some(token))
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text);
        let listed = listed.json();
        assert_conforms(&doc, "TransitionList", &listed);
        for item in listed["items"].as_array().unwrap() {
            for reason in item["reasons"].as_array().unwrap() {
                codes.insert(reason["code"].as_str().unwrap().to_owned());
            }
        }
    }
    // `unknown_transition` is a refusal of a request, never a listed reason.
    let expected = [
        "guard_failed",
        "missing_fields",
        "not_permitted",
        "wrong_state",
    ];
    assert_eq!(
        codes.iter().map(String::as_str).collect::<Vec<_>>(),
        expected
    );
    let started = app
        .post_json(
            &format!("{path}/transitions"),
            Some(&agent),
            &json!({"transition": "start"}),
        )
        .await;
    assert_eq!(started.status, StatusCode::OK, "{}", started.text);
    let started = started.json();
    assert_conforms(&doc, "TransitionResult", &started);
    assert_eq!(started["plan"]["actions"][0]["type"], "notify");
    assert_eq!(started["events"][0]["event"], "started");
    let delegated = app
        .post_json(
            &format!("{path}/transitions?dry_run=true"),
            Some(&agent),
            &json!({"transition": "delegate"}),
        )
        .await;
    assert_eq!(delegated.status, StatusCode::OK, "{}", delegated.text);
    let delegated = delegated.json();
    assert_conforms(&doc, "TransitionResult", &delegated);
    let fields = &delegated["plan"]["actions"][0]["fields"];
    assert_eq!(
        (
            fields["title"]["kind"].clone(),
            fields["detail"]["kind"].clone()
        ),
        (json!("copied"), json!("literal"))
    );
}
