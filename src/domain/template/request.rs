//! What a caller asks of the engine, parsed before the engine sees it.

use serde_json::{Map, Value};

use super::engine::Unavailable;
use super::lint::is_key;

/// The key of the transition a caller fires: `^[a-z][a-z0-9_]{0,62}$`. A text that is not a
/// key names no transition, so it is refused as an unknown transition.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TransitionKey(String);

impl TransitionKey {
    pub fn parse(raw: &str) -> Result<Self, Unavailable> {
        if is_key(raw) {
            Ok(Self(raw.to_owned()))
        } else {
            Err(Unavailable::UnknownTransition {
                transition: raw.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A transition request as the engine takes it: which transition, and the values supplied
/// for the transition's fields. The engine checks each value against its `FieldDef`
/// (`check_value`) together with the transition's rules, since whether a field may be set at
/// all depends on the transition and the target state.
#[derive(Debug, Clone, PartialEq)]
pub struct TransitionInput {
    pub transition: TransitionKey,
    pub fields: Map<String, Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transition_key_is_a_key() {
        assert_eq!(TransitionKey::parse("resolve").unwrap().as_str(), "resolve");
        for bad in [
            "",
            "Resolve",
            "1st",
            "re solve",
            "résoudre",
            &"a".repeat(64),
        ] {
            assert_eq!(
                TransitionKey::parse(bad),
                Err(Unavailable::UnknownTransition {
                    transition: bad.to_owned()
                })
            );
        }
    }
}
