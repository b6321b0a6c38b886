//! The last pass over the generated OpenAPI document, for what utoipa's attributes cannot say
//! (or would have to repeat on every handler): free-form objects that allow any member, page
//! items by reference, the error responses every operation shares, one-line summaries, path
//! parameter descriptions, `servers`, the root `security`, and the `X-Request-Id` header every
//! response carries.
//!
//! It works on the document as JSON and reads it back, so each rule is a few lines over plain
//! maps; the rules only add what is missing and never override an annotation.

use serde_json::{Map, Value, json};

/// The response components every operation of a kind refers to.
const INTERNAL: &str = "#/components/responses/Internal";
const UNSUPPORTED: &str = "#/components/responses/UnsupportedMediaType";
const BAD_REQUEST: &str = "#/components/responses/BadRequest";
const UNPROCESSABLE: &str = "#/components/responses/Unprocessable";
const PRECONDITION_FAILED: &str = "#/components/responses/PreconditionFailed";

/// The response header every response carries, declared once under `components/headers`.
pub const REQUEST_ID_HEADER: &str = "X-Request-Id";

/// Longest one-line summary; the rest of a long first paragraph moves to the description.
pub const MAX_SUMMARY_CHARS: usize = 80;

/// The document `doc` as published: every rule applied. It stays JSON because utoipa's own
/// types cannot read back some of what the rules write (an any-value schema `{}`).
pub fn polish(doc: &utoipa::openapi::OpenApi) -> serde_json::Result<Value> {
    let mut value = serde_json::to_value(doc)?;
    polish_value(&mut value);
    Ok(value)
}

fn polish_value(doc: &mut Value) {
    allow_members_of_free_form_objects(doc);
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    {
        refer_to_page_items(schemas);
        give_objects_examples(schemas);
    }
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for operation in item.values_mut().filter_map(Value::as_object_mut) {
                complete_operation(path, operation);
            }
        }
    }
    if let Some(root) = doc.as_object_mut() {
        root.entry("servers").or_insert_with(
            || json!([{"url": "/", "description": "The server that serves this document"}]),
        );
        root.entry("security")
            .or_insert_with(|| json!([{"bearer": []}]));
    }
    declare_request_id(doc);
}

/// `X-Request-Id` is on every response: one component header, referenced from every response
/// written in place and from every shared response component.
fn declare_request_id(doc: &mut Value) {
    let Some(components) = doc.get_mut("components").and_then(Value::as_object_mut) else {
        return;
    };
    let headers = components
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    headers.into_iter().for_each(|h| {
        h.insert(REQUEST_ID_HEADER.to_owned(), request_id_header());
        h.insert(MAINTENANCE_HEADER.to_owned(), maintenance_header());
    });
    let shared = components
        .get_mut("responses")
        .and_then(Value::as_object_mut);
    shared
        .into_iter()
        .flat_map(|r| r.values_mut())
        .for_each(refer_to_request_id);
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    let responses = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.values_mut())
        .filter_map(|operation| operation.get_mut("responses"))
        .filter_map(Value::as_object_mut)
        .flat_map(|responses| responses.values_mut());
    responses.for_each(refer_to_request_id);
}

/// The running maintenance windows' header (docs/operations.md, "Maintenance announcements").
pub const MAINTENANCE_HEADER: &str = "Stageflow-Maintenance";

fn maintenance_header() -> Value {
    json!({
        "description": "Present while an announced maintenance window runs for the caller \
            (windows for every tenant on every response; a tenant's own on its authenticated \
            responses): each running window as an RFC 3339 interval `start/end`, \
            comma-separated. `GET /api/v1/announcements` has the notices.",
        "required": false,
        "schema": {
            "type": "string",
            "example": "2026-12-31T16:00:00Z/2026-12-31T18:00:00Z"
        }
    })
}

fn request_id_header() -> Value {
    let max = crate::api::request_id::MAX_CHARS;
    json!({
        "description": "The request's id: the client's own `X-Request-Id` when it sent a \
            well-formed one (1 to 128 letters, digits, `-`, `_`, `.` or `:`), else a new UUID \
            v7. Problem documents carry it as `instance`; the access log and any error log \
            line of the request print it.",
        "required": true,
        "schema": {
            "type": "string",
            "minLength": 1,
            "maxLength": max,
            "pattern": "^[A-Za-z0-9._:-]+$",
            "example": "019ac0d2-4a00-7000-8000-000000000001"
        }
    })
}

/// A response written in place gets the `X-Request-Id` reference; a `$ref` to a shared
/// response is left alone (the component carries it).
fn refer_to_request_id(response: &mut Value) {
    let Some(response) = response.as_object_mut() else {
        return;
    };
    if response.contains_key("$ref") {
        return;
    }
    let headers = response
        .entry("headers")
        .or_insert_with(|| json!({}))
        .as_object_mut();
    headers.into_iter().for_each(|h| {
        for name in [REQUEST_ID_HEADER, MAINTENANCE_HEADER] {
            h.insert(
                name.to_owned(),
                json!({"$ref": format!("#/components/headers/{name}")}),
            );
        }
    });
}

/// utoipa writes an optional header parameter (`Option<String>`) as `string | null`; a header
/// is absent or a string, never null.
fn headers_are_never_null(operation: &mut Map<String, Value>) {
    let parameters = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut);
    for parameter in parameters.into_iter().flatten() {
        if parameter.get("in").and_then(Value::as_str) != Some("header") {
            continue;
        }
        if let Some(kind) = parameter.pointer_mut("/schema/type")
            && let Some(kinds) = kind.as_array()
        {
            let kinds: Vec<Value> = kinds.iter().filter(|k| *k != "null").cloned().collect();
            *kind = match kinds.as_slice() {
                [one] => one.clone(),
                _ => Value::Array(kinds),
            };
        }
    }
}

/// `{"type": "object"}` with no member list means "any members" here (field values, template
/// definitions, plans); say so, or generators make it an object that can hold nothing.
fn allow_members_of_free_form_objects(value: &mut Value) {
    match value {
        Value::Object(map) => {
            let is_object = match map.get("type") {
                Some(Value::String(t)) => t == "object",
                Some(Value::Array(types)) => types.iter().any(|t| t == "object"),
                _ => false,
            };
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
                map.insert("additionalProperties".to_owned(), Value::Bool(true));
            }
            map.values_mut()
                .for_each(allow_members_of_free_form_objects);
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(allow_members_of_free_form_objects),
        _ => {}
    }
}

/// `Page_X.items` inlines `X`'s schema (utoipa inlines generic arguments); refer to the
/// component instead, so generated clients reuse one type per resource.
fn refer_to_page_items(schemas: &mut Map<String, Value>) {
    let pages: Vec<(String, String)> = schemas
        .keys()
        .filter_map(|name| {
            let item = name.strip_prefix("Page_")?;
            schemas
                .contains_key(item)
                .then(|| (name.clone(), item.to_owned()))
        })
        .collect();
    for (page, item) in pages {
        let reference = json!({"$ref": format!("#/components/schemas/{item}")});
        if let Some(items) = schemas
            .get_mut(&page)
            .and_then(|p| p.pointer_mut("/properties/items/items"))
        {
            *items = reference;
        }
    }
}

/// An object schema without an example gets one built from its members' own examples (a
/// page from its item's), so every request and response body shows a value; the hand-written
/// examples on the DTOs are kept and used inside the built ones.
fn give_objects_examples(schemas: &mut Map<String, Value>) {
    let names: Vec<String> = schemas
        .iter()
        .filter(|(_, schema)| {
            schema.get("example").is_none()
                && (schema.get("properties").is_some() || schema.get("allOf").is_some())
        })
        .map(|(name, _)| name.clone())
        .collect();
    let built: Vec<(String, Value)> = names
        .into_iter()
        .filter_map(|name| {
            let example = example_of(&schemas[&name], schemas, 0)?;
            Some((name, example))
        })
        .collect();
    for (name, example) in built {
        if let Some(schema) = schemas.get_mut(&name).and_then(Value::as_object_mut) {
            schema.insert("example".to_owned(), example);
        }
    }
}

/// A value that `schema` accepts, from its examples, enums, formats and bounds.
fn example_of(schema: &Value, schemas: &Map<String, Value>, depth: usize) -> Option<Value> {
    if depth > 12 {
        return None;
    }
    if let Some(example) = schema.get("example") {
        return Some(example.clone());
    }
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        let name = reference.rsplit('/').next()?;
        return example_of(schemas.get(name)?, schemas, depth + 1);
    }
    if let Some(first) = schema
        .get("enum")
        .and_then(Value::as_array)
        .and_then(|e| e.first())
    {
        return Some(first.clone());
    }
    if let Some(parts) = schema.get("allOf").and_then(Value::as_array) {
        return merged_example(parts, schemas, depth);
    }
    for combinator in ["oneOf", "anyOf"] {
        if let Some(variants) = schema.get(combinator).and_then(Value::as_array) {
            return variants
                .iter()
                .find_map(|v| example_of(v, schemas, depth + 1));
        }
    }
    let kind = match schema.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(Value::Array(kinds)) => kinds
            .iter()
            .filter_map(Value::as_str)
            .find(|k| *k != "null")?,
        _ => return Some(Value::Null),
    };
    let minimum = schema.get("minimum").cloned();
    Some(match kind {
        "string" => Value::String(string_example(schema)),
        "integer" | "number" => minimum.unwrap_or_else(|| json!(1)),
        "boolean" => Value::Bool(true),
        "array" => json!([example_of(schema.get("items")?, schemas, depth + 1)?]),
        "object" => {
            let mut object = Map::new();
            let members = schema.get("properties").and_then(Value::as_object);
            for (name, member) in members.into_iter().flatten() {
                if let Some(value) = example_of(member, schemas, depth + 1) {
                    object.insert(name.clone(), value);
                }
            }
            Value::Object(object)
        }
        _ => return None,
    })
}

/// The example of an `allOf`: its parts' object examples merged.
fn merged_example(parts: &[Value], schemas: &Map<String, Value>, depth: usize) -> Option<Value> {
    let mut merged = Map::new();
    for part in parts {
        match example_of(part, schemas, depth + 1)? {
            Value::Object(members) => merged.extend(members),
            other => return Some(other),
        }
    }
    Some(Value::Object(merged))
}

fn string_example(schema: &Value) -> String {
    let at_least = schema.get("minLength").and_then(Value::as_u64).unwrap_or(0);
    let text = match schema.get("format").and_then(Value::as_str) {
        Some("uuid") => "019ac0d2-4a00-7000-8000-000000000001",
        Some("date-time") => "2026-11-26T09:00:00Z",
        Some("date") => "2026-11-26",
        Some("uri" | "uri-reference") => "/api/v1",
        Some("email") => "user@example.com",
        _ => "example",
    };
    let mut text = text.to_owned();
    while (text.chars().count() as u64) < at_least {
        text.push('x');
    }
    text
}

fn complete_operation(path: &str, operation: &mut Map<String, Value>) {
    // utoipa writes `security(())` as `[{}]`; a public operation is `security: []`.
    if operation.get("security") == Some(&json!([{}])) {
        operation.insert("security".to_owned(), json!([]));
    }
    one_line_summary(operation);
    describe_path_parameters(path, operation);
    headers_are_never_null(operation);
    let takes_json = operation
        .get("requestBody")
        .and_then(|b| b.get("content"))
        .and_then(Value::as_object)
        .is_some_and(|c| c.contains_key("application/json"));
    let parameters = operation
        .get("parameters")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let has = |place: &str, name: &str| {
        parameters
            .iter()
            .any(|p| p["in"] == place && p["name"].as_str() == Some(name))
    };
    let has_query = parameters.iter().any(|p| p["in"] == "query");
    let if_match = has("header", "If-Match");
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let mut declare = |status: &str, component: &str| {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| json!({"$ref": component}));
    };
    if takes_json {
        declare("400", BAD_REQUEST);
        declare("415", UNSUPPORTED);
        declare("422", UNPROCESSABLE);
    }
    if has_query {
        declare("422", UNPROCESSABLE);
    }
    if if_match {
        declare("400", BAD_REQUEST);
        declare("412", PRECONDITION_FAILED);
    }
    declare("500", INTERNAL);
    sort_responses(responses);
    responses.values_mut().for_each(describe_response);
}

/// Fills in what a response's headers and non-JSON content leave implicit: the meaning and
/// shape of the headers this API sends, and that a file download is binary.
fn describe_response(response: &mut Value) {
    if let Some(headers) = response.get_mut("headers").and_then(Value::as_object_mut) {
        for (name, header) in headers.iter_mut() {
            let Some(header) = header.as_object_mut() else {
                continue;
            };
            let (description, schema) = match name.as_str() {
                "ETag" => (
                    "The resource's version as a strong entity tag; send it back in `If-Match`.",
                    json!({"type": "string", "example": "\"3\""}),
                ),
                "Location" => (
                    "The URL of the created resource.",
                    json!({"type": "string", "format": "uri-reference"}),
                ),
                "Idempotent-Replayed" => (
                    "`true` when this is the stored response of an earlier request with the same \
                     `Idempotency-Key`; absent otherwise.",
                    json!({"type": "string", "enum": ["true"]}),
                ),
                "Retry-After" => (
                    "Seconds to wait before retrying.",
                    json!({"type": "integer", "minimum": 1}),
                ),
                _ => continue,
            };
            header
                .entry("description")
                .or_insert_with(|| Value::String(description.to_owned()));
            header.insert("schema".to_owned(), schema);
        }
    }
    if let Some(content) = response.get_mut("content").and_then(Value::as_object_mut) {
        for (media_type, body) in content.iter_mut() {
            let textual = media_type.starts_with("text/") || media_type.contains("json");
            if let Some(body) = body.as_object_mut()
                && !textual
            {
                body.entry("schema")
                    .or_insert_with(|| json!({"type": "string", "format": "binary"}));
            }
        }
    }
}

/// Responses in status order, as a reader expects them.
fn sort_responses(responses: &mut Map<String, Value>) {
    let mut entries: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    responses.extend(entries);
}

/// utoipa makes the first paragraph of a handler's doc comment its summary and the rest its
/// description. A summary is one line of at most [`MAX_SUMMARY_CHARS`]: a longer first
/// paragraph keeps its first sentence as the summary and moves whole into the description;
/// an operation without a description repeats its summary there.
fn one_line_summary(operation: &mut Map<String, Value>) {
    let summary = operation
        .get("summary")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let description = operation
        .get("description")
        .and_then(Value::as_str)
        .filter(|d| !d.trim().is_empty())
        .map(str::to_owned);
    let one_line = !summary.contains('\n') && summary.chars().count() <= MAX_SUMMARY_CHARS;
    let (summary, description) = if one_line {
        let description = description.unwrap_or_else(|| summary.clone());
        (summary, description)
    } else {
        let paragraph = summary.split_whitespace().collect::<Vec<_>>().join(" ");
        let description = match description {
            Some(rest) => format!("{paragraph}\n\n{rest}"),
            None => paragraph.clone(),
        };
        (first_sentence(&paragraph), description)
    };
    operation.insert("summary".to_owned(), Value::String(summary));
    operation.insert("description".to_owned(), Value::String(description));
}

/// The first sentence of `text`; when that is too long, its head before a parenthesis or a
/// clause break, and only as a last resort a cut at a word boundary.
fn first_sentence(text: &str) -> String {
    let mut sentence = text
        .find(". ")
        .map_or(text, |end| &text[..end])
        .trim_end_matches('.')
        .trim();
    if sentence.matches('(').count() != sentence.matches(')').count() {
        sentence = sentence.split(" (").next().unwrap_or(sentence);
    }
    let fits = |s: &str| s.chars().count() <= MAX_SUMMARY_CHARS;
    if fits(sentence) {
        return sentence.to_owned();
    }
    for separator in [" (", ": ", " — ", "; ", ", "] {
        if let Some((head, _)) = sentence.split_once(separator)
            && fits(head)
            && head.split(' ').count() >= 3
        {
            return head.to_owned();
        }
    }
    let mut short = String::new();
    for word in sentence.split(' ') {
        if short.chars().count() + word.chars().count() + 2 > MAX_SUMMARY_CHARS {
            break;
        }
        if !short.is_empty() {
            short.push(' ');
        }
        short.push_str(word);
    }
    short.push('…');
    short
}

/// Path parameters are named after what they select; describe the ones the handler left
/// undescribed from their name and the collection before them.
fn describe_path_parameters(path: &str, operation: &mut Map<String, Value>) {
    let Some(parameters) = operation
        .get_mut("parameters")
        .and_then(Value::as_array_mut)
    else {
        return;
    };
    for parameter in parameters.iter_mut().filter_map(Value::as_object_mut) {
        let undescribed = parameter
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(|d| d.trim().is_empty());
        if parameter.get("in").and_then(Value::as_str) != Some("path") || !undescribed {
            continue;
        }
        let name = parameter
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let description = path_parameter_description(path, &name);
        parameter.insert("description".to_owned(), Value::String(description));
    }
}

fn path_parameter_description(path: &str, name: &str) -> String {
    if let Some(resource) = name.strip_suffix("_id") {
        return format!("The id of the {}.", resource.replace('_', " "));
    }
    let collection = path
        .split('/')
        .take_while(|segment| *segment != format!("{{{name}}}"))
        .filter(|segment| !segment.is_empty() && !segment.starts_with('{'))
        .last()
        .unwrap_or_default();
    let owner = match collection {
        "templates" => "template",
        "libraries" => "library",
        "masters" => "master",
        "catalog" => "catalog entry",
        "versions" => "template version",
        "items" => "master item",
        other => other,
    };
    match name {
        "key" => format!("The key of the {owner}."),
        "n" => format!("The number of the {owner} (1, 2, …)."),
        "code" => format!("The code of the {owner}."),
        _ => format!("The {} of the {owner}.", name.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_summaries_keep_their_first_sentence() {
        let mut op = Map::new();
        op.insert(
            "summary".to_owned(),
            json!("Lists the tickets. Sorted\nby creation."),
        );
        one_line_summary(&mut op);
        assert_eq!(op["summary"], "Lists the tickets");
        assert_eq!(op["description"], "Lists the tickets. Sorted by creation.");
        assert_eq!(
            first_sentence("Deletes a template (409 for a published one. Use x)."),
            "Deletes a template"
        );
        let long = "word ".repeat(40);
        let cut = first_sentence(long.trim());
        assert!(cut.chars().count() <= MAX_SUMMARY_CHARS, "{cut}");
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn free_form_objects_allow_members() {
        let mut doc = json!({"a": {"type": "object"}, "b": {"type": "object", "properties": {}}});
        allow_members_of_free_form_objects(&mut doc);
        assert_eq!(doc["a"]["additionalProperties"], true);
        assert!(doc["b"].get("additionalProperties").is_none());
    }

    #[test]
    fn path_parameters_are_named_after_their_collection() {
        assert_eq!(
            path_parameter_description("/api/v1/libraries/{key}/records", "key"),
            "The key of the library."
        );
        assert_eq!(
            path_parameter_description("/api/v1/tickets/{ticket_id}", "ticket_id"),
            "The id of the ticket."
        );
        assert_eq!(
            path_parameter_description("/api/v1/templates/{key}/versions/{n}", "n"),
            "The number of the template version (1, 2, …)."
        );
    }
}
