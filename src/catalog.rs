//! The shipped template catalog: JSON files under `catalog/`, compiled into the binary. Each
//! entry carries a template definition, the masters it needs and the libraries it references.
//! Libraries are shared between entries, so they live in one file, `catalog/libraries.json`,
//! with the masters their select fields use; each entry is given the ones it references.

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

/// The libraries the catalog templates reference, with the masters they use.
const LIBRARIES_SOURCE: &str = include_str!("../catalog/libraries.json");

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

/// A library a template references, with its definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogLibrary {
    /// The library key, as `library_ref` fields and library actions name it.
    pub key: String,
    /// The library definition, in the format `domain::library::parse_library` reads.
    #[schema(value_type = Object)]
    pub definition: Value,
}

/// `catalog/libraries.json`: the libraries shared by the catalog templates and the masters
/// their select fields use (a master also shipped by a template file is identical there).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LibraryFile {
    #[serde(default)]
    masters: Vec<CatalogMaster>,
    #[serde(default)]
    libraries: Vec<CatalogLibrary>,
}

fn library_file() -> &'static LibraryFile {
    static FILE: OnceLock<LibraryFile> = OnceLock::new();
    FILE.get_or_init(|| {
        serde_json::from_str(LIBRARIES_SOURCE).unwrap_or_else(|error| {
            log::error!("catalog file libraries.json does not parse: {error}");
            LibraryFile::default()
        })
    })
}

/// Every library the catalog ships, in file order.
pub fn libraries() -> &'static [CatalogLibrary] {
    &library_file().libraries
}

/// The masters the catalog libraries use.
pub fn library_masters() -> &'static [CatalogMaster] {
    &library_file().masters
}

/// The `library` of each field of a template or library definition.
fn field_libraries(definition: &Value) -> impl Iterator<Item = &str> {
    list(definition, "fields").filter_map(|f| f.get("library").and_then(Value::as_str))
}

fn list<'a>(value: &'a Value, key: &str) -> impl Iterator<Item = &'a Value> {
    value
        .get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

/// The libraries a template references — its `library_ref` fields, its `library_upsert` and
/// `library_update` actions, and the libraries those libraries' own fields reference — in
/// catalog order. A key the catalog does not ship is left out (the linter reports it).
fn referenced_libraries(template: &Value) -> Vec<CatalogLibrary> {
    let actions = list(template, "transitions")
        .flat_map(|t| list(t, "actions"))
        .filter(|a| {
            matches!(
                a.get("type").and_then(Value::as_str),
                Some("library_upsert" | "library_update")
            )
        })
        .filter_map(|a| a.get("library").and_then(Value::as_str));
    let mut wanted: Vec<&str> = field_libraries(template).chain(actions).collect();
    let mut next = 0;
    while let Some(key) = wanted.get(next).copied() {
        next += 1;
        if let Some(library) = libraries().iter().find(|l| l.key == key) {
            for other in field_libraries(&library.definition) {
                if !wanted.contains(&other) {
                    wanted.push(other);
                }
            }
        }
    }
    libraries()
        .iter()
        .filter(|l| wanted.contains(&l.key.as_str()))
        .cloned()
        .collect()
}

/// Gives an entry the libraries its template references, and every master those libraries
/// use that the entry does not ship already.
fn with_libraries(mut entry: CatalogEntry) -> CatalogEntry {
    for library in referenced_libraries(&entry.template) {
        if !entry.libraries.iter().any(|l| l.key == library.key) {
            entry.libraries.push(library);
        }
    }
    for library in &entry.libraries {
        for field in list(&library.definition, "fields") {
            let Some(key) = field.get("master").and_then(Value::as_str) else {
                continue;
            };
            if entry.masters.iter().any(|m| m.key == key) {
                continue;
            }
            match library_masters().iter().find(|m| m.key == key) {
                Some(master) => entry.masters.push(master.clone()),
                None => log::error!(
                    "catalog library {} uses the master {key}, which libraries.json lacks",
                    library.key
                ),
            }
        }
    }
    entry
}

/// A template with the masters and libraries it needs: the format of the catalog files, of
/// template export and of template import. The catalog files carry no `libraries`: `entries()`
/// gives each entry the shared catalog libraries it references.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogEntry {
    pub key: String,
    pub name: Labels,
    pub description: Labels,
    #[serde(default)]
    pub masters: Vec<CatalogMaster>,
    /// The libraries the template references (library_ref fields and library actions), with
    /// their definitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub libraries: Vec<CatalogLibrary>,
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
                    Ok(entry) if entry.key == *key => Some(with_libraries(entry)),
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

/// The other templates a template files child tickets into (its `create_child_ticket`
/// actions), each once, in the order they first appear.
pub fn required_templates(entry: &CatalogEntry) -> Vec<String> {
    let mut required: Vec<String> = Vec::new();
    let children = list(&entry.template, "transitions")
        .flat_map(|t| list(t, "actions"))
        .filter(|a| a.get("type").and_then(Value::as_str) == Some("create_child_ticket"))
        .filter_map(|a| a.get("template").and_then(Value::as_str));
    for key in children {
        if key != entry.key && !required.iter().any(|r| r == key) {
            required.push(key.to_owned());
        }
    }
    required
}

/// `entry` and every catalog entry it requires, directly or through others, each after the
/// entries it requires (`entry` last). A cycle is cut where it closes; a required key the
/// catalog does not ship is left out (the linter reports it when the template is checked).
pub fn install_order(entry: &CatalogEntry) -> Vec<&CatalogEntry> {
    fn visit<'a>(entry: &'a CatalogEntry, seen: &mut Vec<String>, out: &mut Vec<&'a CatalogEntry>) {
        if seen.contains(&entry.key) {
            return;
        }
        seen.push(entry.key.clone());
        for key in required_templates(entry) {
            if let Some(required) = self::entry(&key) {
                visit(required, seen, out);
            }
        }
        out.push(entry);
    }
    let mut out = Vec::new();
    visit(entry, &mut Vec::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use crate::domain::diagram::{self, Language, StateFigures};

    /// Every shipped template lays out as SVG without a panic, with its state labels and the
    /// figures of an overlay.
    #[test]
    fn every_catalog_template_draws_as_svg() {
        for entry in entries() {
            let def = parse_definition(&entry.template).unwrap();
            let figures: HashMap<String, StateFigures> = def
                .states()
                .map(|(_, s)| {
                    let f = StateFigures {
                        count: 7,
                        p90_seconds: Some(5_400),
                    };
                    (s.key.clone(), f)
                })
                .collect();
            let picture = diagram::svg(&def, Language::Ja, Some(&figures));
            assert!(
                picture.contains("<svg ") && picture.trim_end().ends_with("</svg>"),
                "{}",
                entry.key
            );
            let (_, first) = def.states().next().unwrap();
            assert!(picture.contains(&first.label.ja), "{}", entry.key);
            assert!(picture.contains("7 · p90 1.5h"), "{}", entry.key);
        }
    }

    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::domain::library::{lint_library, parse_library};
    use crate::domain::template::{FieldType, LintContext, lint, parse_definition};

    /// Every catalog library's field types, from its real definition.
    fn library_field_types() -> BTreeMap<String, BTreeMap<String, FieldType>> {
        libraries()
            .iter()
            .map(|l| {
                let def = parse_library(&l.definition)
                    .unwrap_or_else(|e| panic!("library {}: {e:?}", l.key));
                (l.key.clone(), def.field_types())
            })
            .collect()
    }

    fn master_codes(master: &CatalogMaster) -> BTreeSet<String> {
        master.items.iter().map(|i| i.code.clone()).collect()
    }

    /// The tenant a full catalog install produces: every catalog master, library and template.
    fn full_catalog_context(own: &str) -> LintContext {
        let mut context = LintContext {
            template_key: Some(own.to_owned()),
            libraries: library_field_types(),
            ..LintContext::default()
        };
        for master in library_masters() {
            context
                .masters
                .insert(master.key.clone(), master_codes(master));
        }
        for entry in entries() {
            for master in &entry.masters {
                context
                    .masters
                    .insert(master.key.clone(), master_codes(master));
            }
            if entry.key != own {
                let def = parse_definition(&entry.template).unwrap();
                let fields: BTreeMap<_, _> =
                    def.fields.iter().map(|f| (f.key.clone(), f.kind)).collect();
                context.templates.insert(entry.key.clone(), fields);
                let internal = def.fields.iter().filter(|f| f.internal);
                context
                    .template_internal
                    .insert(entry.key.clone(), internal.map(|f| f.key.clone()).collect());
                context.template_defs.insert(entry.key.clone(), def.fields);
            }
        }
        for library in libraries() {
            let def = parse_library(&library.definition).unwrap();
            let internal = def.fields.iter().filter(|f| f.internal);
            context.library_internal.insert(
                library.key.clone(),
                internal.map(|f| f.key.clone()).collect(),
            );
            context.library_defs.insert(library.key.clone(), def.fields);
        }
        context
    }

    #[test]
    fn every_file_parses_with_its_own_key() {
        assert_eq!(entries().len(), SOURCES.len());
        assert!(serde_json::from_str::<LibraryFile>(LIBRARIES_SOURCE).is_ok());
        assert_eq!(libraries().len(), 3);
    }

    /// The Rust linter is the catalog's linter: every entry lints without errors and
    /// without warnings (`catalog/check.py` keeps only what is about the catalog itself).
    #[test]
    fn every_catalog_template_lints_clean() {
        for entry in entries() {
            let def = parse_definition(&entry.template)
                .unwrap_or_else(|e| panic!("{}: {e:?}", entry.key));
            let report = lint(&def, &full_catalog_context(&entry.key));
            assert!(
                report.errors.is_empty() && report.warnings.is_empty(),
                "{}: {:#?} {:#?}",
                entry.key,
                report.errors,
                report.warnings
            );
        }
    }

    #[test]
    fn every_catalog_library_parses_and_lints_clean() {
        let context = full_catalog_context("");
        let mut keys = BTreeSet::new();
        for library in libraries() {
            assert!(
                keys.insert(library.key.as_str()),
                "library {} twice",
                library.key
            );
            assert!(
                crate::domain::template::is_key(&library.key),
                "{} is not a key",
                library.key
            );
            let def = parse_library(&library.definition)
                .unwrap_or_else(|e| panic!("{}: {e:?}", library.key));
            let report = lint_library(&def, &context);
            assert!(
                report.errors.is_empty() && report.warnings.is_empty(),
                "{}: {:#?} {:#?}",
                library.key,
                report.errors,
                report.warnings
            );
            // Every master a library uses ships with the libraries, so an entry can carry it.
            for field in &def.fields {
                if let Some(master) = &field.master {
                    assert!(
                        library_masters().iter().any(|m| &m.key == master),
                        "{}: master {master} is not in libraries.json",
                        library.key
                    );
                }
            }
        }
    }

    #[test]
    fn shared_masters_are_identical_everywhere() {
        let mut seen: BTreeMap<&str, (&str, String)> = BTreeMap::new();
        let files = entries()
            .iter()
            .map(|e| (e.key.as_str(), e.masters.as_slice()))
            .chain([("libraries", library_masters())]);
        for (file, masters) in files {
            for master in masters {
                let shape = format!("{master:?}");
                if let Some((first, other)) = seen.get(master.key.as_str()) {
                    assert_eq!(
                        other, &shape,
                        "master {} differs between {first} and {file}",
                        master.key
                    );
                } else {
                    seen.insert(&master.key, (file, shape));
                }
            }
        }
    }

    #[test]
    fn entries_require_their_child_templates_and_install_after_them() {
        let keys = |entries: Vec<&CatalogEntry>| -> Vec<String> {
            entries.iter().map(|e| e.key.clone()).collect()
        };
        let incident = entry("itil_incident").unwrap();
        assert_eq!(required_templates(incident), ["itil_problem"]);
        assert_eq!(
            keys(install_order(incident)),
            ["itil_change", "itil_problem", "itil_incident"]
        );
        assert_eq!(
            keys(install_order(entry("customer_inquiry").unwrap())),
            [
                "itil_change",
                "itil_problem",
                "itil_incident",
                "customer_inquiry"
            ]
        );
        let standalone = entry("bpo_intake").unwrap();
        assert!(required_templates(standalone).is_empty());
        assert_eq!(keys(install_order(standalone)), ["bpo_intake"]);
        // Every requirement is shipped, so an installation never waits for a missing template.
        for entry in entries() {
            for key in required_templates(entry) {
                assert!(super::entry(&key).is_some(), "{}: {key}", entry.key);
            }
        }
    }

    #[test]
    fn entries_carry_the_libraries_they_reference_and_their_masters() {
        let keys = |key: &str| -> Vec<String> {
            entry(key)
                .unwrap()
                .libraries
                .iter()
                .map(|l| l.key.clone())
                .collect()
        };
        assert_eq!(keys("itil_incident"), ["knowledge_base", "cmdb"]);
        assert_eq!(keys("customer_inquiry"), ["faq"]);
        assert_eq!(keys("isms_risk_treatment"), ["cmdb"]);
        assert!(keys("bpo_intake").is_empty());
        let incident = entry("itil_incident").unwrap();
        let masters: Vec<&str> = incident.masters.iter().map(|m| m.key.as_str()).collect();
        for needed in [
            "category",
            "kb_article_type",
            "cmdb_ci_type",
            "cmdb_ci_status",
        ] {
            assert_eq!(
                masters.iter().filter(|m| **m == needed).count(),
                1,
                "{needed} in {masters:?}"
            );
        }
        // Every master of every library an entry carries is in the entry.
        for entry in entries() {
            for library in &entry.libraries {
                for field in &parse_library(&library.definition).unwrap().fields {
                    if let Some(master) = &field.master {
                        assert!(
                            entry.masters.iter().any(|m| &m.key == master),
                            "{}: {} needs {master}",
                            entry.key,
                            library.key
                        );
                    }
                }
            }
        }
        // The CMDB status literals the templates write are items of its master.
        let status = library_masters()
            .iter()
            .find(|m| m.key == "cmdb_ci_status")
            .unwrap();
        for code in ["planned", "in_service", "in_use", "maintenance", "retired"] {
            assert!(status.items.iter().any(|i| i.code == code), "{code}");
        }
    }
}
