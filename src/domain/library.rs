//! Libraries: record collections (knowledge base, CMDB, FAQ, contract list…) defined with the
//! template field machinery — the same `FieldDef`, the same validation (`validate_values`
//! over the `FieldSet` trait), the same lint of fields (`lint_field_collection`), the same
//! field index and search tokens (`domain::index`, `domain::search`). What is particular to
//! a library is here: its title field, its layout of sections, its review interval (when a
//! record becomes stale) and who may read and write its records.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::identity::Role;
use super::ids::OrganizationId;
use super::template::{
    FieldDef, FieldSet, FieldType, Label, LintContext, LintIssue, LintReport, MAX_SECTIONS,
    Section, check_field_limits, lint_field_collection, parse_json,
};

crate::domain::closed_set::closed_set! {
    /// How a record version came about.
    pub enum RecordVersionKind {
        Created = "created",
        Updated = "updated",
        /// Marked as reviewed (no value changed); carries the review note.
        Reviewed = "reviewed",
        Deleted = "deleted",
    }
}

crate::domain::closed_set::closed_set! {
    /// Who wrote a record version: a user directly, or a ticket transition's action.
    pub enum VersionSourceKind {
        User = "user",
        Ticket = "ticket",
    }
}

crate::domain::closed_set::closed_set! {
    /// What a transition's library action did to a record.
    pub enum LibraryOperation {
        Created = "created",
        Updated = "updated",
    }
}

/// Longest review interval, in days (ten years).
pub const MAX_REVIEW_INTERVAL_DAYS: u32 = 3_650;
/// Partner organizations one library may be granted to.
pub const MAX_PARTNER_ORGANIZATIONS: usize = 500;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;

/// The layout of a record form: sections of fields, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryLayout {
    #[serde(default)]
    pub sections: Vec<Section>,
}

/// Who may read and write a library's records.
///
/// - Tenant admins and process managers (who manage libraries) always read and write;
///   auditors always read and never write.
/// - `read` adds readers among `agent` and `requester`; `write` adds `agent`.
/// - Partners read only when their organization is listed in `partner_organizations`; they
///   never write.
/// - Requesters and partners never see an internal field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LibraryAccess {
    #[serde(default = "default_read")]
    pub read: Vec<Role>,
    #[serde(default = "default_write")]
    pub write: Vec<Role>,
    #[serde(default)]
    pub partner_organizations: Vec<OrganizationId>,
}

fn default_read() -> Vec<Role> {
    vec![Role::Agent]
}

fn default_write() -> Vec<Role> {
    vec![Role::Agent]
}

impl Default for LibraryAccess {
    fn default() -> Self {
        Self {
            read: default_read(),
            write: default_write(),
            partner_organizations: Vec::new(),
        }
    }
}

/// Roles that `access.read` may list.
const GRANTABLE_READ: [Role; 2] = [Role::Agent, Role::Requester];
/// Roles that `access.write` may list.
const GRANTABLE_WRITE: [Role; 1] = [Role::Agent];

/// A caller, as library access sees it.
#[derive(Debug, Clone, Copy)]
pub struct Reader<'a> {
    pub roles: &'a [Role],
    /// The caller's organization (partners).
    pub organization: Option<OrganizationId>,
}

impl Reader<'_> {
    fn holds(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Staff (the audience rules' `STAFF_ROLES`): they see internal fields.
    pub fn is_staff(&self) -> bool {
        super::ticket::STAFF_ROLES.iter().any(|r| self.holds(*r))
    }

    /// Tenant admins and process managers: they define libraries.
    pub fn is_manager(&self) -> bool {
        self.holds(Role::TenantAdmin) || self.holds(Role::ProcessManager)
    }
}

impl LibraryAccess {
    pub fn may_read(&self, reader: &Reader<'_>) -> bool {
        reader.is_manager()
            || reader.holds(Role::Auditor)
            || self.read.iter().any(|r| reader.holds(*r))
            || (reader.holds(Role::Partner)
                && reader
                    .organization
                    .is_some_and(|o| self.partner_organizations.contains(&o)))
    }

    pub fn may_write(&self, reader: &Reader<'_>) -> bool {
        reader.is_manager() || self.write.iter().any(|r| reader.holds(*r))
    }
}

/// A library definition, as a process manager writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LibraryDefinition {
    pub name: Label,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub fields: Vec<FieldDef>,
    /// The text field whose value is a record's title (shown in lists and in tickets that
    /// reference the record).
    pub title_field: String,
    #[serde(default)]
    pub layout: LibraryLayout,
    /// Days after its last review (or change) when a record becomes stale; none: never.
    #[serde(default)]
    pub review_interval_days: Option<u32>,
    #[serde(default)]
    pub access: LibraryAccess,
}

impl FieldSet for LibraryDefinition {
    fn field_defs(&self) -> &[FieldDef] {
        &self.fields
    }
}

impl LibraryDefinition {
    /// A record's title: the title field's value, else empty.
    pub fn title_of(&self, fields: &Map<String, Value>) -> String {
        match fields.get(&self.title_field) {
            Some(Value::String(s)) => s.clone(),
            _ => String::new(),
        }
    }

    /// When a record reviewed at `reviewed_at` becomes stale.
    pub fn review_due(&self, reviewed_at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.review_interval_days
            .map(|days| reviewed_at + TimeDelta::days(i64::from(days)))
    }

    /// The field types, for linting templates that reference the library.
    pub fn field_types(&self) -> std::collections::BTreeMap<String, FieldType> {
        self.fields
            .iter()
            .map(|f| (f.key.clone(), f.kind))
            .collect()
    }
}

/// Reads a library definition: shape problems are one `invalid_structure` issue, then every
/// size limit exceeded.
pub fn parse_library(json: &Value) -> Result<LibraryDefinition, Vec<LintIssue>> {
    let def: LibraryDefinition = parse_json(json)?;
    let mut limits = check_field_limits(&def.fields);
    if def.layout.sections.len() > MAX_SECTIONS {
        limits.push(LintIssue::new(
            "limit_exceeded",
            "/layout/sections",
            format!(
                "sections: {} exceeds the limit of {MAX_SECTIONS}",
                def.layout.sections.len()
            ),
        ));
    }
    if limits.is_empty() {
        Ok(def)
    } else {
        Err(limits)
    }
}

/// Every problem of a library definition, located by JSON pointer: the fields and the
/// layout exactly as in a template, then the title field, the review interval and access.
pub fn lint_library(def: &LibraryDefinition, ctx: &LintContext) -> LintReport {
    let mut report = lint_field_collection(Some(&def.name), &def.fields, &def.layout.sections, ctx);
    let errors = &mut report.errors;
    if def.description.chars().count() > MAX_DESCRIPTION_CHARS {
        errors.push(LintIssue::new(
            "too_long",
            "/description",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    match def.fields.iter().find(|f| f.key == def.title_field) {
        None => errors.push(LintIssue::new(
            "unknown_field",
            "/title_field",
            format!("there is no field '{}'", def.title_field),
        )),
        Some(f) if f.kind != FieldType::Text => errors.push(LintIssue::new(
            "invalid_title_field",
            "/title_field",
            format!("the title field must be a text field, not {}", f.kind),
        )),
        Some(f) if f.internal => errors.push(LintIssue::new(
            "invalid_title_field",
            "/title_field",
            "the title field cannot be internal: tickets show it to everyone who sees them",
        )),
        Some(f) if !f.required => report.warnings.push(LintIssue::new(
            "title_not_required",
            "/title_field",
            "the title field should be required: a record without it has no title",
        )),
        Some(_) => {}
    }
    if let Some(days) = def.review_interval_days
        && !(1..=MAX_REVIEW_INTERVAL_DAYS).contains(&days)
    {
        errors.push(LintIssue::new(
            "invalid_range",
            "/review_interval_days",
            format!("between 1 and {MAX_REVIEW_INTERVAL_DAYS} days"),
        ));
    }
    for (n, role) in def.access.read.iter().enumerate() {
        if !GRANTABLE_READ.contains(role) {
            errors.push(LintIssue::new(
                "invalid_role",
                format!("/access/read/{n}"),
                format!(
                    "'{}' cannot be granted here: managers and auditors always read, \
                     partners read through `partner_organizations`; grant agent or requester",
                    role.as_str()
                ),
            ));
        }
    }
    for (n, role) in def.access.write.iter().enumerate() {
        if !GRANTABLE_WRITE.contains(role) {
            errors.push(LintIssue::new(
                "invalid_role",
                format!("/access/write/{n}"),
                format!(
                    "'{}' cannot write records: managers always write, only agent can be granted",
                    role.as_str()
                ),
            ));
        }
    }
    if def.access.partner_organizations.len() > MAX_PARTNER_ORGANIZATIONS {
        errors.push(LintIssue::new(
            "limit_exceeded",
            "/access/partner_organizations",
            format!("at most {MAX_PARTNER_ORGANIZATIONS} organizations"),
        ));
    }
    report
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::*;

    fn knowledge_base() -> Value {
        json!({
            "name": {"ja": "ナレッジ", "en": "Knowledge base"},
            "fields": [
                {"key": "title", "type": "text", "required": true, "label": {"ja": "件名", "en": "Title"}},
                {"key": "body", "type": "long_text", "label": {"ja": "本文", "en": "Body"}},
                {"key": "notes", "type": "text", "internal": true, "label": {"ja": "メモ", "en": "Notes"}}
            ],
            "title_field": "title",
            "layout": {"sections": [{"key": "main", "label": {"ja": "本文", "en": "Main"}, "fields": ["title", "body"]}]},
            "review_interval_days": 180
        })
    }

    fn codes(report: &LintReport) -> Vec<(&str, &str)> {
        report
            .errors
            .iter()
            .map(|i| (i.code, i.pointer.as_str()))
            .collect()
    }

    #[test]
    fn a_clean_library_lints_clean_and_defaults_its_access() {
        let def = parse_library(&knowledge_base()).unwrap();
        assert!(lint_library(&def, &LintContext::default()).is_ok());
        assert_eq!(def.access.read, [Role::Agent]);
        assert_eq!(
            def.title_of(json!({"title": "VPN"}).as_object().unwrap()),
            "VPN"
        );
    }

    #[test]
    fn problems_are_located() {
        let mut raw = knowledge_base();
        raw["title_field"] = json!("body");
        raw["review_interval_days"] = json!(0);
        raw["layout"]["sections"][0]["fields"] = json!(["nope"]);
        raw["fields"][1]["type"] = json!("select");
        raw["access"] = json!({"read": ["partner"], "write": ["requester"]});
        let def = parse_library(&raw).unwrap();
        let report = lint_library(&def, &LintContext::default());
        let found = codes(&report);
        for expected in [
            ("missing_master", "/fields/1"),
            ("invalid_layout", "/layout/sections/0/fields/0"),
            ("invalid_title_field", "/title_field"),
            ("invalid_range", "/review_interval_days"),
            ("invalid_role", "/access/read/0"),
            ("invalid_role", "/access/write/0"),
        ] {
            assert!(found.contains(&expected), "{expected:?} not in {found:?}");
        }
        let shape = parse_library(&json!({"name": {"ja": "a", "en": "a"}, "title_field": 3}));
        assert_eq!(shape.unwrap_err()[0].pointer, "/title_field");
        let mut many = knowledge_base();
        let section = many["layout"]["sections"][0].clone();
        many["layout"]["sections"] = Value::Array(vec![section; MAX_SECTIONS + 1]);
        let limits = parse_library(&many).unwrap_err();
        assert_eq!(
            (limits[0].code, limits[0].pointer.as_str()),
            ("limit_exceeded", "/layout/sections")
        );
    }

    #[test]
    fn access_follows_roles_and_partner_grants() {
        let org = OrganizationId(Uuid::from_u128(1));
        let access = LibraryAccess {
            read: vec![Role::Agent],
            write: vec![Role::Agent],
            partner_organizations: vec![org],
        };
        let reader = |roles: &'static [Role], organization| Reader {
            roles,
            organization,
        };
        assert!(access.may_read(&reader(&[Role::Auditor], None)));
        assert!(!access.may_write(&reader(&[Role::Auditor], None)));
        assert!(access.may_write(&reader(&[Role::ProcessManager], None)));
        assert!(!access.may_read(&reader(&[Role::Requester], None)));
        assert!(access.may_read(&reader(&[Role::Partner], Some(org))));
        assert!(!access.may_read(&reader(
            &[Role::Partner],
            Some(OrganizationId(Uuid::from_u128(2)))
        )));
        assert!(!access.may_write(&reader(&[Role::Partner], Some(org))));
    }

    #[test]
    fn records_fall_due_after_the_interval() {
        let def = parse_library(&knowledge_base()).unwrap();
        let at = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            def.review_due(at).unwrap().to_rfc3339(),
            "2026-06-30T00:00:00+00:00"
        );
    }
}
