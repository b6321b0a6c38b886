//! Masters: keys, item codes, bilingual labels and the item hierarchy.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Most items one master may hold (items are listed whole, not paged).
pub const MAX_ITEMS: usize = 5_000;
const MAX_LABEL_CHARS: usize = 200;

/// A master's key, referenced by templates: `^[a-z][a-z0-9_]{0,62}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MasterKey(String);

impl MasterKey {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase());
        let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if first_ok && rest_ok && raw.len() <= 63 {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 63 lowercase letters, digits or underscores, starting with a letter")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An item's code, the value stored in tickets: `^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ItemCode(String);

impl ItemCode {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let mut chars = raw.chars();
        let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
        let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if first_ok && rest_ok && raw.len() <= 64 {
            Ok(Self(raw.to_owned()))
        } else {
            Err("must be 1 to 64 letters, digits, '_', '.' or '-', starting with a letter or digit")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A label in Japanese and English, both required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"ja": "高", "en": "High"}))]
pub struct Labels {
    pub ja: String,
    pub en: String,
}

impl Labels {
    /// Checks both labels; returns the sub-field (`ja`/`en`) that is wrong.
    pub fn check(&self) -> Result<(), (&'static str, &'static str)> {
        for (lang, text) in [("ja", &self.ja), ("en", &self.en)] {
            let chars = text.trim().chars().count();
            if chars == 0 || text.chars().count() > MAX_LABEL_CHARS {
                return Err((lang, "must be 1 to 200 characters"));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HierarchyError {
    #[error("item {0} appears twice")]
    Duplicate(String),
    #[error("item {child} names the unknown parent {parent}")]
    UnknownParent { child: String, parent: String },
    #[error("item {0} is its own ancestor")]
    Cycle(String),
}

/// Checks a master's items as a whole: codes unique, parents exist, no cycles.
/// `items` are `(code, parent)` pairs.
pub fn check_hierarchy<'a>(
    items: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
) -> Result<(), HierarchyError> {
    let mut parents: HashMap<&str, Option<&str>> = HashMap::new();
    for (code, parent) in items {
        if parents.insert(code, parent).is_some() {
            return Err(HierarchyError::Duplicate(code.to_owned()));
        }
    }
    for (code, parent) in &parents {
        if let Some(parent) = parent
            && !parents.contains_key(parent)
        {
            return Err(HierarchyError::UnknownParent {
                child: (*code).to_owned(),
                parent: (*parent).to_owned(),
            });
        }
    }
    for start in parents.keys() {
        let mut seen = HashSet::new();
        let mut at = Some(*start);
        while let Some(code) = at {
            if !seen.insert(code) {
                return Err(HierarchyError::Cycle((*start).to_owned()));
            }
            at = parents.get(code).copied().flatten();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_codes() {
        assert!(MasterKey::parse("impact").is_ok());
        assert!(MasterKey::parse("Impact").is_err());
        assert!(MasterKey::parse("").is_err());
        assert!(ItemCode::parse("P1").is_ok());
        assert!(ItemCode::parse("hw.server-01").is_ok());
        assert!(ItemCode::parse("-x").is_err());
        assert!(ItemCode::parse("a b").is_err());
    }

    #[test]
    fn labels_need_both_languages() {
        assert!(
            Labels {
                ja: "高".into(),
                en: "High".into()
            }
            .check()
            .is_ok()
        );
        assert_eq!(
            Labels {
                ja: " ".into(),
                en: "High".into()
            }
            .check(),
            Err(("ja", "must be 1 to 200 characters"))
        );
    }

    #[test]
    fn hierarchy() {
        assert!(check_hierarchy([("hw", None), ("server", Some("hw"))]).is_ok());
        assert_eq!(
            check_hierarchy([("a", None), ("a", None)]),
            Err(HierarchyError::Duplicate("a".into()))
        );
        assert!(matches!(
            check_hierarchy([("a", Some("zz"))]),
            Err(HierarchyError::UnknownParent { .. })
        ));
        assert!(matches!(
            check_hierarchy([("a", Some("b")), ("b", Some("a"))]),
            Err(HierarchyError::Cycle(_))
        ));
        assert!(matches!(
            check_hierarchy([("a", Some("a"))]),
            Err(HierarchyError::Cycle(_))
        ));
    }
}
