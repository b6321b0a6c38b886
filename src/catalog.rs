//! The shipped template catalog: JSON files under `catalog/`, compiled into the binary. Each
//! entry carries a template definition and the masters it needs.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::domain::master::Labels;

/// Every catalog file, by key. Adding an entry: put `catalog/<key>.json` next to the others
/// and list it here; the unit test below lints it.
const SOURCES: &[(&str, &str)] = &[
    (
        "itil_incident",
        include_str!("../catalog/itil_incident.json"),
    ),
    ("itil_problem", include_str!("../catalog/itil_problem.json")),
    ("itil_change", include_str!("../catalog/itil_change.json")),
    (
        "itil_service_request",
        include_str!("../catalog/itil_service_request.json"),
    ),
    (
        "isms_security_incident",
        include_str!("../catalog/isms_security_incident.json"),
    ),
    (
        "isms_risk_treatment",
        include_str!("../catalog/isms_risk_treatment.json"),
    ),
    ("bpo_intake", include_str!("../catalog/bpo_intake.json")),
    (
        "customer_inquiry",
        include_str!("../catalog/customer_inquiry.json"),
    ),
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogItem {
    pub code: String,
    pub label: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogMaster {
    pub key: String,
    pub name: Labels,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default)]
    pub items: Vec<CatalogItem>,
}

/// A template with the masters it needs: the format of the catalog files, of template export
/// and of template import.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub key: String,
    pub name: Labels,
    pub description: Labels,
    #[serde(default)]
    pub masters: Vec<CatalogMaster>,
    /// The template definition, exactly as `GET …/versions/{n}` returns it.
    #[schema(value_type = Object)]
    pub template: Value,
}

/// The parsed catalog. A file that does not parse is a build defect caught by the unit test;
/// at run time it is left out (and logged) rather than taking the server down.
pub fn entries() -> &'static [CatalogEntry] {
    static ENTRIES: OnceLock<Vec<CatalogEntry>> = OnceLock::new();
    ENTRIES.get_or_init(|| {
        SOURCES
            .iter()
            .filter_map(
                |(key, source)| match serde_json::from_str::<CatalogEntry>(source) {
                    Ok(entry) if entry.key == *key => Some(entry),
                    Ok(entry) => {
                        log::error!("catalog file {key}.json declares the key {}", entry.key);
                        None
                    }
                    Err(error) => {
                        log::error!("catalog file {key}.json does not parse: {error}");
                        None
                    }
                },
            )
            .collect()
    })
}

pub fn entry(key: &str) -> Option<&'static CatalogEntry> {
    entries().iter().find(|e| e.key == key)
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::template::{LintContext, lint, parse_definition};

    /// The tenant a full catalog install produces: every catalog master and template.
    fn full_catalog_context(own: &str) -> LintContext {
        let mut context = LintContext {
            template_key: Some(own.to_owned()),
            libraries: crate::service::templates::planned_libraries(),
            ..LintContext::default()
        };
        for entry in entries() {
            for master in &entry.masters {
                let codes: BTreeSet<String> = master.items.iter().map(|i| i.code.clone()).collect();
                context.masters.insert(master.key.clone(), codes);
            }
            if entry.key != own {
                let def = parse_definition(&entry.template).unwrap();
                let fields: BTreeMap<_, _> =
                    def.fields.iter().map(|f| (f.key.clone(), f.kind)).collect();
                context.templates.insert(entry.key.clone(), fields);
            }
        }
        context
    }

    #[test]
    fn every_file_parses_with_its_own_key() {
        assert_eq!(entries().len(), SOURCES.len());
    }

    #[test]
    fn every_catalog_template_lints_clean() {
        for entry in entries() {
            let def = parse_definition(&entry.template)
                .unwrap_or_else(|e| panic!("{}: {e:?}", entry.key));
            let report = lint(&def, &full_catalog_context(&entry.key));
            assert!(
                report.errors.is_empty(),
                "{}: {:#?}",
                entry.key,
                report.errors
            );
        }
    }

    #[test]
    fn shared_masters_are_identical_everywhere() {
        let mut seen: BTreeMap<&str, (&str, String)> = BTreeMap::new();
        for entry in entries() {
            for master in &entry.masters {
                let shape = format!("{master:?}");
                if let Some((first, other)) = seen.get(master.key.as_str()) {
                    assert_eq!(
                        other, &shape,
                        "master {} differs between {first} and {}",
                        master.key, entry.key
                    );
                } else {
                    seen.insert(&master.key, (&entry.key, shape));
                }
            }
        }
    }
}
