//! States, transitions and fields of a definition as items: listed, read, added, changed and
//! removed one at a time, the way a template editor works. These are operations on the stored
//! JSON (drafts may be broken, so nothing here needs a definition that lints); whether the
//! result makes sense is the linter's job, and the caller lints after every change.

use json_patch::merge;
use serde_json::{Map, Value};

/// Which collection of a definition an item lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// A state, inside one of the definition's stages; shown with a `stage` member.
    State,
    Transition,
    Field,
}

impl ItemKind {
    pub fn noun(self) -> &'static str {
        match self {
            ItemKind::State => "state",
            ItemKind::Transition => "transition",
            ItemKind::Field => "field",
        }
    }

    /// The lint code of a reference to a missing item of this kind; `None` for transitions,
    /// which nothing in a definition refers to.
    pub fn dangling_code(self) -> Option<&'static str> {
        match self {
            ItemKind::State => Some("unknown_state"),
            ItemKind::Transition => None,
            ItemKind::Field => Some("unknown_field"),
        }
    }

    fn collection(self) -> &'static str {
        match self {
            ItemKind::State => "stages",
            ItemKind::Transition => "transitions",
            ItemKind::Field => "fields",
        }
    }
}

/// Why an item change could not be applied to the definition.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("no such item")]
    NotFound,
    #[error("the key {0} is already taken")]
    Duplicate(String),
    /// The request itself is unusable: `field` names the member, `code` is stable.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        code: &'static str,
        message: String,
    },
}

fn invalid(field: &'static str, code: &'static str, message: impl Into<String>) -> ItemError {
    ItemError::Invalid {
        field,
        code,
        message: message.into(),
    }
}

fn key_of(item: &Value) -> Option<&str> {
    item.get("key").and_then(Value::as_str)
}

fn array<'a>(value: &'a Value, member: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(member)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// Every item of `kind`, in definition order; a state carries its stage's key as `stage`.
pub fn list(definition: &Value, kind: ItemKind) -> Vec<Value> {
    match kind {
        ItemKind::State => array(definition, "stages")
            .flat_map(|stage| {
                let stage_key = stage.get("key").cloned().unwrap_or(Value::Null);
                array(stage, "states").map(move |state| with_stage(state, &stage_key))
            })
            .collect(),
        _ => array(definition, kind.collection()).cloned().collect(),
    }
}

fn with_stage(state: &Value, stage: &Value) -> Value {
    let mut shown = state.clone();
    if let Some(object) = shown.as_object_mut() {
        object.insert("stage".to_owned(), stage.clone());
    }
    shown
}

/// The item of `kind` with `key`, as [`list`] shows it.
pub fn get(definition: &Value, kind: ItemKind, key: &str) -> Option<Value> {
    list(definition, kind)
        .into_iter()
        .find(|item| key_of(item) == Some(key))
}

/// The array an item of `kind` with `key` is in, and its index there.
fn locate<'a>(
    definition: &'a mut Value,
    kind: ItemKind,
    key: &str,
) -> Option<(&'a mut Vec<Value>, usize)> {
    let containers: Vec<&mut Vec<Value>> = match kind {
        ItemKind::State => definition
            .get_mut("stages")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
            .filter_map(|stage| stage.get_mut("states").and_then(Value::as_array_mut))
            .collect(),
        _ => definition
            .get_mut(kind.collection())
            .and_then(Value::as_array_mut)
            .into_iter()
            .collect(),
    };
    containers.into_iter().find_map(|items| {
        let index = items.iter().position(|item| key_of(item) == Some(key))?;
        Some((items, index))
    })
}

/// The `states` array of the stage with `stage_key`.
fn stage_states<'a>(
    definition: &'a mut Value,
    stage_key: &str,
) -> Result<&'a mut Vec<Value>, ItemError> {
    let stage = definition
        .get_mut("stages")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .find(|stage| key_of(stage) == Some(stage_key))
        .ok_or_else(|| invalid("stage", "unknown_stage", format!("no stage {stage_key}")))?;
    let object = stage
        .as_object_mut()
        .ok_or_else(|| invalid("stage", "unknown_stage", format!("no stage {stage_key}")))?;
    object
        .entry("states")
        .or_insert_with(|| Value::Array(Vec::new()))
        .as_array_mut()
        .ok_or_else(|| invalid("stage", "invalid", "the stage's states are not a list"))
}

/// Takes the `stage` member out of a state item; required when `required`.
fn take_stage(item: &mut Map<String, Value>, required: bool) -> Result<Option<String>, ItemError> {
    match item.remove("stage") {
        Some(Value::String(stage)) => Ok(Some(stage)),
        None if !required => Ok(None),
        None => Err(invalid(
            "stage",
            "required",
            "the key of the stage the state belongs to",
        )),
        Some(_) => Err(invalid("stage", "invalid", "must be a stage key")),
    }
}

/// Appends `item` (an object with a string `key`; a state also names its `stage`) and returns
/// it as [`get`] shows it.
pub fn add(definition: &mut Value, kind: ItemKind, item: Value) -> Result<Value, ItemError> {
    let Value::Object(mut item) = item else {
        return Err(invalid(
            "body",
            "invalid",
            format!("a {} is an object", kind.noun()),
        ));
    };
    let key = match item.get("key") {
        Some(Value::String(key)) => key.clone(),
        Some(_) => return Err(invalid("key", "invalid", "must be a string")),
        None => return Err(invalid("key", "required", "every item has a key")),
    };
    if get(definition, kind, &key).is_some() {
        return Err(ItemError::Duplicate(key));
    }
    let items = match kind {
        ItemKind::State => {
            let stage = take_stage(&mut item, true)?.unwrap_or_default();
            stage_states(definition, &stage)?
        }
        _ => {
            let object = definition
                .as_object_mut()
                .ok_or_else(|| invalid("body", "invalid", "the definition is not an object"))?;
            object
                .entry(kind.collection())
                .or_insert_with(|| Value::Array(Vec::new()))
                .as_array_mut()
                .ok_or_else(|| invalid("body", "invalid", "the collection is not a list"))?
        }
    };
    items.push(Value::Object(item));
    get(definition, kind, &key).ok_or(ItemError::NotFound)
}

/// Applies a JSON merge patch (RFC 7396) to the item with `key`. The key cannot change (other
/// items refer to it: remove and add instead); a state's `stage` moves it to the end of that
/// stage.
pub fn patch(
    definition: &mut Value,
    kind: ItemKind,
    key: &str,
    patch: &Value,
) -> Result<Value, ItemError> {
    let Value::Object(changes) = patch else {
        return Err(invalid("body", "invalid", "a merge patch is an object"));
    };
    if changes.get("key").is_some_and(|k| k.as_str() != Some(key)) {
        return Err(invalid(
            "key",
            "immutable",
            "a key cannot change; remove the item and add it under the new key",
        ));
    }
    let mut changes = changes.clone();
    let new_stage = match kind {
        ItemKind::State => take_stage(&mut changes, false)?,
        _ => None,
    };
    let (items, index) = locate(definition, kind, key).ok_or(ItemError::NotFound)?;
    merge(&mut items[index], &Value::Object(changes));
    if let Some(stage) = new_stage {
        // Check the target first so a bad stage leaves the definition as it was.
        stage_states(definition, &stage)?;
        let (items, index) = locate(definition, kind, key).ok_or(ItemError::NotFound)?;
        let moved = items.remove(index);
        stage_states(definition, &stage)?.push(moved);
    }
    get(definition, kind, key).ok_or(ItemError::NotFound)
}

/// Removes the item with `key` and returns it.
pub fn remove(definition: &mut Value, kind: ItemKind, key: &str) -> Result<Value, ItemError> {
    let shown = get(definition, kind, key).ok_or(ItemError::NotFound)?;
    let (items, index) = locate(definition, kind, key).ok_or(ItemError::NotFound)?;
    items.remove(index);
    Ok(shown)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn definition() -> Value {
        json!({
            "fields": [{"key": "title", "type": "text"}, {"key": "note", "type": "text"}],
            "stages": [
                {"key": "open", "states": [{"key": "new", "initial": true}, {"key": "doing"}]},
                {"key": "done", "states": [{"key": "closed", "terminal": true}]}
            ],
            "transitions": [{"key": "start", "from": ["new"], "to": "doing"}]
        })
    }

    #[test]
    fn states_are_listed_with_their_stage() {
        let keys: Vec<(String, String)> = list(&definition(), ItemKind::State)
            .iter()
            .map(|s| {
                (
                    s["key"].as_str().unwrap().into(),
                    s["stage"].as_str().unwrap().into(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("new".into(), "open".into()),
                ("doing".into(), "open".into()),
                ("closed".into(), "done".into())
            ]
        );
        assert_eq!(
            get(&definition(), ItemKind::Field, "note").unwrap()["type"],
            "text"
        );
        assert!(get(&definition(), ItemKind::Transition, "nope").is_none());
    }

    #[test]
    fn adding_appends_and_refuses_duplicates_and_unknown_stages() {
        let mut def = definition();
        let added = add(
            &mut def,
            ItemKind::State,
            json!({"key": "waiting", "stage": "open"}),
        )
        .unwrap();
        assert_eq!(added, json!({"key": "waiting", "stage": "open"}));
        assert_eq!(def["stages"][0]["states"][2], json!({"key": "waiting"}));
        assert_eq!(
            add(
                &mut def,
                ItemKind::State,
                json!({"key": "new", "stage": "done"})
            ),
            Err(ItemError::Duplicate("new".into()))
        );
        assert!(matches!(
            add(
                &mut def,
                ItemKind::State,
                json!({"key": "x", "stage": "nowhere"})
            ),
            Err(ItemError::Invalid {
                code: "unknown_stage",
                ..
            })
        ));
        assert!(matches!(
            add(&mut def, ItemKind::State, json!({"key": "x"})),
            Err(ItemError::Invalid {
                field: "stage",
                code: "required",
                ..
            })
        ));
        assert!(matches!(
            add(&mut def, ItemKind::Field, json!({"type": "text"})),
            Err(ItemError::Invalid { field: "key", .. })
        ));
        add(
            &mut def,
            ItemKind::Transition,
            json!({"key": "finish", "from": ["doing"], "to": "closed"}),
        )
        .unwrap();
        assert_eq!(def["transitions"][1]["key"], "finish");
    }

    #[test]
    fn patching_merges_moves_and_keeps_the_key() {
        let mut def = definition();
        let patched = patch(
            &mut def,
            ItemKind::Field,
            "note",
            &json!({"internal": true, "type": null}),
        )
        .unwrap();
        assert_eq!(patched, json!({"key": "note", "internal": true}));
        let moved = patch(
            &mut def,
            ItemKind::State,
            "doing",
            &json!({"stage": "done", "label": "x"}),
        )
        .unwrap();
        assert_eq!(
            moved,
            json!({"key": "doing", "label": "x", "stage": "done"})
        );
        assert_eq!(def["stages"][0]["states"].as_array().unwrap().len(), 1);
        assert_eq!(def["stages"][1]["states"][1]["key"], "doing");
        let before = def.clone();
        assert!(
            patch(
                &mut def,
                ItemKind::State,
                "doing",
                &json!({"stage": "nowhere"})
            )
            .is_err()
        );
        assert!(patch(&mut def, ItemKind::Field, "note", &json!({"key": "other"})).is_err());
        assert_eq!(
            patch(&mut def, ItemKind::Field, "nope", &json!({})),
            Err(ItemError::NotFound)
        );
        assert_eq!(def, before);
    }

    #[test]
    fn removing_returns_the_item() {
        let mut def = definition();
        assert_eq!(
            remove(&mut def, ItemKind::State, "closed").unwrap()["stage"],
            "done"
        );
        assert!(def["stages"][1]["states"].as_array().unwrap().is_empty());
        assert_eq!(
            remove(&mut def, ItemKind::Transition, "start").unwrap()["to"],
            "doing"
        );
        assert_eq!(
            remove(&mut def, ItemKind::Transition, "start"),
            Err(ItemError::NotFound)
        );
    }
}
