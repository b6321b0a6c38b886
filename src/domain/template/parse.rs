//! JSON → `TemplateDefinition`, with shape errors located by JSON pointer.

use serde_json::Value;

use super::limits::{LIMIT_EXCEEDED, MAX_JSON_DEPTH, check_limits};
use super::lint::LintIssue;
use super::model::TemplateDefinition;
use super::pointer::join;

/// Reads a definition. The shape is checked here (one issue, code `invalid_structure`, at
/// the first problem serde meets), then the size limits (every limit exceeded); the rest is
/// `lint`'s business.
pub fn parse_definition(json: &Value) -> Result<TemplateDefinition, Vec<LintIssue>> {
    let def: TemplateDefinition = parse_json(json)?;
    let limits = check_limits(&def);
    if limits.is_empty() {
        Ok(def)
    } else {
        Err(limits)
    }
}

/// Reads any definition document (a template, a library) into its type: absurd nesting is
/// refused first, then the first shape problem serde meets is one `invalid_structure` issue
/// located by JSON pointer.
pub fn parse_json<T: serde::de::DeserializeOwned>(json: &Value) -> Result<T, Vec<LintIssue>> {
    // Deserializing is recursive; refuse absurd nesting first, with a walk that itself stops
    // at the limit.
    if let Some(path) = too_deep(json, 1) {
        let pointer = path.iter().rev().fold(String::new(), |p, s| join(&p, s));
        return Err(vec![LintIssue::new(
            LIMIT_EXCEEDED,
            pointer,
            format!("nested more than {MAX_JSON_DEPTH} levels deep"),
        )]);
    }
    serde_path_to_error::deserialize(json).map_err(|e| {
        let pointer = pointer_of(e.path());
        vec![LintIssue::new(
            "invalid_structure",
            pointer,
            e.inner().to_string(),
        )]
    })
}

/// The path (innermost segment first) to a value nested deeper than the limit.
fn too_deep(value: &Value, depth: usize) -> Option<Vec<String>> {
    let children: Box<dyn Iterator<Item = (String, &Value)>> = match value {
        Value::Array(items) => Box::new(items.iter().enumerate().map(|(i, v)| (i.to_string(), v))),
        Value::Object(map) => Box::new(map.iter().map(|(k, v)| (k.clone(), v))),
        _ => return None,
    };
    if depth > MAX_JSON_DEPTH {
        return Some(Vec::new());
    }
    for (segment, child) in children {
        if let Some(mut path) = too_deep(child, depth + 1) {
            path.push(segment);
            return Some(path);
        }
    }
    None
}

fn pointer_of(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    path.iter()
        .fold(String::new(), |pointer, segment| match segment {
            Segment::Seq { index } => join(&pointer, index),
            Segment::Map { key } => join(&pointer, key),
            _ => pointer,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn minimal() -> Value {
        json!({
            "name": {"ja": "テスト", "en": "Test"},
            "key_prefix": "T",
            "stages": [{"key": "s", "label": {"ja": "段", "en": "Stage"}, "states": [
                {"key": "a", "label": {"ja": "a", "en": "a"}, "initial": true},
                {"key": "b", "label": {"ja": "b", "en": "b"}, "terminal": true}
            ]}],
            "transitions": [{"key": "go", "label": {"ja": "進む", "en": "Go"}, "from": ["a"], "to": "b",
                             "allowed": {"roles": ["agent"]}}]
        })
    }

    fn error_of(v: Value) -> LintIssue {
        let mut issues = parse_definition(&v).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        issues.remove(0)
    }

    #[test]
    fn parses_and_round_trips_the_example() {
        let v = super::super::fixtures::incident();
        let def = parse_definition(&v).unwrap();
        assert_eq!(def.fields.len(), 7);
        assert_eq!(def.transitions[0].actions.len(), 7);
        let again = parse_definition(&serde_json::to_value(&def).unwrap()).unwrap();
        assert_eq!(again, def);
    }

    #[test]
    fn shape_errors_are_located() {
        let mut v = minimal();
        v["transitions"][0]["to"] = json!(3);
        let issue = error_of(v);
        assert_eq!(issue.code, "invalid_structure");
        assert_eq!(issue.pointer, "/transitions/0/to");
        assert!(
            issue.message.contains("expected a string"),
            "{}",
            issue.message
        );

        let mut v = minimal();
        v["stages"][0]["states"][1]["colour"] = json!("red");
        let issue = error_of(v);
        assert_eq!(issue.pointer, "/stages/0/states/1/colour");
        assert!(
            issue.message.contains("unknown field `colour`"),
            "{}",
            issue.message
        );

        let mut v = minimal();
        v["transitions"][0]["guard"] =
            json!({"all": [{"field": "x", "op": "eq", "value": 1}, {"field": "x", "op": "like"}]});
        let issue = error_of(v);
        assert_eq!(issue.pointer, "/transitions/0/guard/all/1/op");

        let mut v = minimal();
        v["transitions"][0]["from"] = json!("a");
        assert_eq!(error_of(v).pointer, "/transitions/0/from");

        let mut v = minimal();
        v["transitions"][0]["actions"] = json!([{"type": "explode"}]);
        assert_eq!(error_of(v).pointer, "/transitions/0/actions/0/type");

        // Actions are read whole before their variant is known, so an error inside one
        // points at the action.
        let mut v = minimal();
        v["transitions"][0]["actions"] =
            json!([{"type": "notify", "event": "a.b"}, {"type": "notify", "event": 3}]);
        let issue = error_of(v);
        assert_eq!(issue.pointer, "/transitions/0/actions/1");
        assert!(
            issue.message.contains("expected a string"),
            "{}",
            issue.message
        );

        let mut v = minimal();
        v["field_rules"] = json!({"a/b": {"x": "invisible"}});
        assert_eq!(error_of(v).pointer, "/field_rules/a~1b/x");

        let issue = error_of(json!([]));
        assert_eq!(issue.pointer, "");
    }

    #[test]
    fn refuses_deep_nesting_and_oversized_definitions() {
        let mut guard = json!({"fact": "all_children_closed"});
        for _ in 0..70 {
            guard = json!({"not": guard});
        }
        let mut v = minimal();
        v["transitions"][0]["guard"] = guard;
        let issue = error_of(v);
        assert_eq!(issue.code, LIMIT_EXCEEDED);
        assert!(issue.pointer.starts_with("/transitions/0/guard/not/not"));

        let mut v = minimal();
        let field = json!({"key": "f", "type": "text", "label": {"ja": "f", "en": "f"}});
        v["fields"] = Value::Array(vec![field; 501]);
        let issue = error_of(v);
        assert_eq!(
            (issue.code, issue.pointer.as_str()),
            (LIMIT_EXCEEDED, "/fields")
        );

        let mut guard = json!({"fact": "all_children_closed"});
        for _ in 0..20 {
            guard = json!({"not": guard});
        }
        let mut v = minimal();
        v["transitions"][0]["guard"] = guard;
        let issue = error_of(v);
        assert_eq!(issue.code, LIMIT_EXCEEDED);
        assert!(issue.message.contains("16 levels"), "{}", issue.message);
    }
}
