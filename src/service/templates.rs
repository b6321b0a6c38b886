//! Templates: create with a first draft, edit drafts, publish (lint, cap, freeze), new drafts,
//! archive, delete. Linting needs the tenant's masters and other templates; this module builds
//! that context from the database.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::platform::{Cap, check_cap};
use super::{audit, unique_or};
use crate::auth::{Principal, TenantScope};
use crate::db::templates::{DRAFT, NewTemplate, TemplateChanges, TemplateRow, VersionRow};
use crate::db::{self, DbConnection};
use crate::domain::event::{EventAudience, EventType, SubjectType};
use crate::domain::ids::{EntityId, TemplateId};
use crate::domain::template::{
    LintContext, LintIssue, LintReport, TemplateDefinition, lint, parse_definition,
};
use crate::service::error::{ConflictKind, check_version};
use crate::service::error::{FieldError, ServiceError};

/// Lint issues as validation problem entries: the field is the JSON pointer.
pub fn issues_to_errors(issues: &[LintIssue], prefix: &str) -> Vec<FieldError> {
    issues
        .iter()
        .map(|i| FieldError::new(format!("{prefix}{}", i.pointer), i.code, i.message.clone()))
        .collect()
}

/// Parses a definition; a definition of the wrong shape is 422 with located errors.
pub fn parse(value: &Value) -> Result<TemplateDefinition, ServiceError> {
    parse_definition(value)
        .map_err(|issues| ServiceError::Validation(issues_to_errors(&issues, "definition")))
}

/// What the linter needs to know about the tenant: masters with their item codes, the field
/// types of the other templates (their latest version) and of its libraries.
pub fn lint_context(
    conn: &mut DbConnection,
    scope: &TenantScope,
    own_key: &str,
) -> Result<LintContext, ServiceError> {
    let mut masters = BTreeMap::new();
    for master in db::masters::list_masters(conn, scope, None, i64::MAX)? {
        let codes: BTreeSet<String> = db::masters::items(conn, scope, master.id, false)?
            .into_iter()
            .map(|i| i.code)
            .collect();
        masters.insert(master.key, codes);
    }
    let mut templates = BTreeMap::new();
    let mut template_internal = BTreeMap::new();
    let mut template_defs = BTreeMap::new();
    for template in db::templates::list_templates(conn, scope, None, i64::MAX)? {
        if template.key == own_key {
            continue;
        }
        let number = template
            .published_version
            .unwrap_or(template.latest_version);
        if let Some(version) = db::templates::find_version(conn, scope, template.id, number)?
            && let Ok(def) = parse_definition(&version.definition.0)
        {
            let fields = def.fields.iter().map(|f| (f.key.clone(), f.kind)).collect();
            template_internal.insert(template.key.clone(), internal_keys(&def.fields));
            template_defs.insert(template.key.clone(), def.fields);
            templates.insert(template.key, fields);
        }
    }
    let mut libraries = BTreeMap::new();
    let mut library_internal = BTreeMap::new();
    let mut library_defs = BTreeMap::new();
    for row in db::libraries::list_libraries(conn, scope)? {
        if let Ok(def) = crate::domain::library::parse_library(&row.definition.0) {
            library_internal.insert(row.key.clone(), internal_keys(&def.fields));
            libraries.insert(row.key.clone(), def.field_types());
            library_defs.insert(row.key, def.fields);
        }
    }
    Ok(LintContext {
        template_key: Some(own_key.to_owned()),
        masters,
        templates,
        libraries,
        template_internal,
        library_internal,
        template_defs,
        library_defs,
    })
}

fn internal_keys(fields: &[crate::domain::template::FieldDef]) -> BTreeSet<String> {
    fields
        .iter()
        .filter(|f| f.internal)
        .map(|f| f.key.clone())
        .collect()
}

/// Parses and lints a definition in the tenant's context.
pub fn check(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    value: &Value,
) -> Result<(TemplateDefinition, LintReport), ServiceError> {
    let def = parse(value)?;
    let report = lint(&def, &lint_context(conn, scope, key)?);
    Ok((def, report))
}

pub fn find(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<TemplateRow, ServiceError> {
    db::templates::find_template(conn, scope, key)?.ok_or(ServiceError::NotFound)
}

pub fn find_version(
    conn: &mut DbConnection,
    scope: &TenantScope,
    template: &TemplateRow,
    number: i32,
) -> Result<VersionRow, ServiceError> {
    db::templates::find_version(conn, scope, template.id, number)?.ok_or(ServiceError::NotFound)
}

fn author(principal: &Principal) -> EntityId {
    principal.actor().id.unwrap_or(EntityId::UNKNOWN)
}

/// Creates a template and its version 1 as a draft. The draft may still have lint errors
/// (they are reported); it must have the right shape.
pub fn create_template(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    definition: &Value,
    catalog_key: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(TemplateRow, VersionRow, LintReport), ServiceError> {
    let (def, report) = check(conn, scope, key, definition)?;
    if db::templates::find_template(conn, scope, key)?.is_some() {
        return Err(ServiceError::duplicate(
            "The template key is already taken.",
        ));
    }
    let template = db::templates::insert_template(
        conn,
        scope,
        &NewTemplate {
            id: TemplateId::new_at(now),
            key,
            name_ja: &def.name.ja,
            name_en: &def.name.en,
            catalog_key,
            now: now.into(),
        },
    )
    .map_err(|e| unique_or(e, "The template key"))?;
    let version = db::templates::insert_version(
        conn,
        scope,
        template.id,
        1,
        definition,
        author(principal),
        now.into(),
    )?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.created",
        ("template", key),
        json!({"catalog": catalog_key}),
        now.into(),
    )?;
    Ok((template, version, report))
}

/// Replaces a draft's definition. A published version is immutable (409).
#[expect(clippy::too_many_arguments, reason = "one use case, all inputs needed")]
pub fn update_draft(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    number: i32,
    expected_version: Option<i64>,
    definition: &Value,
    now: DateTime<Utc>,
) -> Result<(VersionRow, LintReport), ServiceError> {
    let template = find(conn, scope, key)?;
    let current = find_version(conn, scope, &template, number)?;
    if current.status != DRAFT {
        return Err(published_is_immutable(number));
    }
    check_version(expected_version, current.version)?;
    let (def, report) = check(conn, scope, key, definition)?;
    let version =
        db::templates::update_draft(conn, scope, template.id, number, definition, now.into())?
            .ok_or_else(|| published_is_immutable(number))?;
    if template.published_version.is_none() {
        // Until the first publication the template is named after its draft.
        let changes = TemplateChanges {
            name_ja: Some(def.name.ja.clone()),
            name_en: Some(def.name.en.clone()),
            ..TemplateChanges::default()
        };
        db::templates::update_template(conn, scope, template.id, &changes, now.into())?;
    }
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.draft_updated",
        ("template", key),
        json!({"version": number}),
        now.into(),
    )?;
    Ok((version, report))
}

fn published_is_immutable(number: i32) -> ServiceError {
    ServiceError::Conflict {
        kind: ConflictKind::VersionPublished,
        detail: format!(
            "Version {number} is published and can no longer change; create a new draft."
        ),
    }
}

/// Starts a new draft from the latest version. Only one draft at a time (409).
pub fn new_draft(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    now: DateTime<Utc>,
) -> Result<VersionRow, ServiceError> {
    let template = find(conn, scope, key)?;
    let latest = find_version(conn, scope, &template, template.latest_version)?;
    if latest.status == DRAFT {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::DraftExists,
            detail: format!(
                "Version {} is already a draft; edit it instead.",
                latest.number
            ),
        });
    }
    let number = template.latest_version + 1;
    let version = db::templates::insert_version(
        conn,
        scope,
        template.id,
        number,
        &latest.definition.0,
        author(principal),
        now.into(),
    )?;
    let changes = TemplateChanges {
        latest_version: Some(number),
        ..TemplateChanges::default()
    };
    db::templates::update_template(conn, scope, template.id, &changes, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.draft_created",
        ("template", key),
        json!({"version": number}),
        now.into(),
    )?;
    Ok(version)
}

/// Lints and freezes a draft. Errors refuse with 422 listing every located problem; the first
/// publication of a template counts against the plan's `max_processes`.
pub fn publish(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    number: i32,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(TemplateRow, VersionRow, LintReport), ServiceError> {
    let template = find(conn, scope, key)?;
    let current = find_version(conn, scope, &template, number)?;
    if current.status != DRAFT {
        return Err(published_is_immutable(number));
    }
    check_version(expected_version, current.version)?;
    let (def, report) = check(conn, scope, key, &current.definition.0)?;
    if !report.is_ok() {
        return Err(ServiceError::Validation(issues_to_errors(
            &report.errors,
            "definition",
        )));
    }
    if template.published_version.is_none() {
        let account = db::platform::find_tenant(conn, scope.tenant_id())?
            .ok_or(ServiceError::NotFound)?
            .account_id;
        db::platform::lock_account(conn, account)?;
        check_cap(conn, account, Cap::Processes)?;
    }
    let version = db::templates::publish_version(
        conn,
        scope,
        template.id,
        number,
        author(principal),
        now.into(),
    )?;
    let changes = TemplateChanges {
        name_ja: Some(def.name.ja.clone()),
        name_en: Some(def.name.en.clone()),
        published_version: Some(Some(number)),
        ..TemplateChanges::default()
    };
    let template = db::templates::update_template(conn, scope, template.id, &changes, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.published",
        ("template", key),
        json!({"version": number, "warnings": report.warnings.len()}),
        now.into(),
    )?;
    let published = json!({"template": {
        "id": template.id, "key": template.key,
        "name": {"ja": template.name_ja, "en": template.name_en},
        "version": number, "published_version": template.published_version,
    }});
    super::events::emit(
        conn,
        scope,
        &principal.actor(),
        now,
        super::events::Emit {
            event_type: EventType::TemplatePublished,
            subject_type: SubjectType::Template,
            subject_id: EntityId(template.id.0),
            ticket: None,
            container: Some(&template.key),
            audience: EventAudience::Staff,
            payload: published,
            restricted: None,
        },
    )?;
    Ok((template, version, report))
}

pub fn set_archived(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    expected_version: Option<i64>,
    archived: bool,
    now: DateTime<Utc>,
) -> Result<TemplateRow, ServiceError> {
    let template = find(conn, scope, key)?;
    check_version(expected_version, template.version)?;
    let changes = TemplateChanges {
        archived: Some(archived),
        ..TemplateChanges::default()
    };
    let template = db::templates::update_template(conn, scope, template.id, &changes, now.into())?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.updated",
        ("template", key),
        json!({"archived": archived}),
        now.into(),
    )?;
    Ok(template)
}

/// Deletes a template that was never published; a published one is archived instead (409).
pub fn delete_template(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    expected_version: Option<i64>,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    let template = find(conn, scope, key)?;
    check_version(expected_version, template.version)?;
    if template.published_version.is_some() {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::TemplatePublished,
            detail: "A published template cannot be deleted (tickets may use it); archive it with PATCH instead.".to_owned(),
        });
    }
    db::templates::delete_template(conn, scope, template.id)?;
    audit(
        conn,
        scope,
        &principal.actor(),
        "template.deleted",
        ("template", key),
        json!({}),
        now.into(),
    )
}

/// What installing a catalog entry did.
pub struct Installed {
    pub template: TemplateRow,
    pub version: VersionRow,
    pub report: LintReport,
    pub masters_created: Vec<String>,
    pub libraries_created: Vec<String>,
    /// Templates the entry files child tickets into that the tenant lacked, installed with it
    /// (in installation order).
    pub templates_created: Vec<String>,
}

/// Installs the last of `order` — a catalog entry or an imported document — after the ones
/// before it (the catalog templates it requires, from `catalog::install_order`) that the
/// tenant lacks: first the masters and libraries each needs (one with the same key is reused
/// as it is), then every template as a draft, then — when `publish` is asked for — version 1
/// of each in that order, each that lints clean in this tenant. Installing the same entry
/// twice is 409; a required template the tenant already has is reused as it is. All of it is
/// one transaction: a refusal (a cap, say) installs nothing.
pub fn install(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    order: &[&crate::catalog::CatalogEntry],
    publish_now: bool,
    now: DateTime<Utc>,
) -> Result<Installed, ServiceError> {
    let entry = order
        .last()
        .ok_or_else(|| ServiceError::internal("catalog install planned nothing"))?;
    if db::templates::find_template(conn, scope, &entry.key)?.is_some() {
        return Err(ServiceError::Conflict {
            kind: ConflictKind::AlreadyInstalled,
            detail: format!("The tenant already has a template {}.", entry.key),
        });
    }
    let mut created = Created::default();
    let mut drafts = Vec::new();
    for part in order {
        if part.key != entry.key && db::templates::find_template(conn, scope, &part.key)?.is_some()
        {
            continue;
        }
        install_needs(conn, principal, scope, part, now, &mut created)?;
        let draft = create_template(
            conn,
            principal,
            scope,
            &part.key,
            &part.template,
            Some(&part.key),
            now,
        )?;
        if part.key != entry.key {
            created.templates.push(part.key.clone());
        }
        drafts.push(draft);
    }
    let (mut template, mut version, mut report) = drafts
        .pop()
        .ok_or_else(|| ServiceError::internal("catalog install planned nothing"))?;
    if publish_now {
        // Every draft exists now, so each is checked against the others.
        for (draft, ..) in &drafts {
            publish_if_clean(conn, principal, scope, &draft.key, now)?;
        }
        if let Some(published) = publish_if_clean(conn, principal, scope, &entry.key, now)? {
            (template, version, report) = published;
        } else {
            report = check(conn, scope, &entry.key, &entry.template)?.1;
        }
    }
    Ok(Installed {
        template,
        version,
        report,
        masters_created: created.masters,
        libraries_created: created.libraries,
        templates_created: created.templates,
    })
}

/// What an installation created, by key.
#[derive(Default)]
struct Created {
    masters: Vec<String>,
    libraries: Vec<String>,
    templates: Vec<String>,
}

/// Publishes version 1 of `key` when it lints clean in the tenant now; `None` leaves the draft.
fn publish_if_clean(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    key: &str,
    now: DateTime<Utc>,
) -> Result<Option<(TemplateRow, VersionRow, LintReport)>, ServiceError> {
    let template = find(conn, scope, key)?;
    let draft = find_version(conn, scope, &template, 1)?;
    if !check(conn, scope, key, &draft.definition.0)?.1.is_ok() {
        return Ok(None);
    }
    publish(conn, principal, scope, key, 1, None, now).map(Some)
}

/// Creates the masters and libraries a catalog entry needs that the tenant lacks.
fn install_needs(
    conn: &mut DbConnection,
    principal: &Principal,
    scope: &TenantScope,
    entry: &crate::catalog::CatalogEntry,
    now: DateTime<Utc>,
    created: &mut Created,
) -> Result<(), ServiceError> {
    for master in &entry.masters {
        if db::masters::find_master(conn, scope, &master.key)?.is_some() {
            continue;
        }
        let input = catalog_master(master)?;
        super::masters::create_master(conn, principal, scope, &input, now)?;
        created.masters.push(master.key.clone());
    }
    let caller = super::libraries::LibraryCaller::of(principal)?;
    for library in &entry.libraries {
        if db::libraries::find_library(conn, scope, &library.key)?.is_some() {
            continue;
        }
        super::libraries::create(conn, &caller, &library.key, &library.definition, now).map_err(
            |e| match e {
                ServiceError::Validation(errors) => ServiceError::Validation(
                    errors
                        .into_iter()
                        .map(|mut e| {
                            e.field = format!("libraries.{}.{}", library.key, e.field);
                            e
                        })
                        .collect(),
                ),
                other => other,
            },
        )?;
        created.libraries.push(library.key.clone());
    }
    Ok(())
}

fn catalog_master(
    master: &crate::catalog::CatalogMaster,
) -> Result<super::masters::MasterInput, ServiceError> {
    use crate::domain::master::{ItemCode, MasterKey};
    let broken =
        |what: &str| ServiceError::internal(format!("catalog master {}: {what}", master.key));
    let items = master
        .items
        .iter()
        .map(|item| {
            Ok(super::masters::ItemInput {
                code: ItemCode::parse(&item.code).map_err(|_| broken("item code"))?,
                label: item.label.clone(),
                order: item.order,
                active: item.active.unwrap_or(true),
                parent: match &item.parent {
                    Some(parent) => {
                        Some(ItemCode::parse(parent).map_err(|_| broken("parent code"))?)
                    }
                    None => None,
                },
            })
        })
        .collect::<Result<Vec<_>, ServiceError>>()?;
    Ok(super::masters::MasterInput {
        key: MasterKey::parse(&master.key).map_err(|_| broken("key"))?,
        name: master.name.clone(),
        description: master.description.clone().unwrap_or_default(),
        items,
    })
}

/// Exports a version (default: the published one, else the latest) in the catalog format,
/// with the libraries it references and the masters its and their select fields use, as they
/// are in the tenant now.
pub fn export(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    number: Option<i32>,
) -> Result<crate::catalog::CatalogEntry, ServiceError> {
    use crate::catalog::{CatalogEntry, CatalogItem, CatalogMaster};
    let template = find(conn, scope, key)?;
    let number = number.unwrap_or(
        template
            .published_version
            .unwrap_or(template.latest_version),
    );
    let version = find_version(conn, scope, &template, number)?;
    let def = parse(&version.definition.0)?;
    let mut libraries = Vec::new();
    let mut master_keys: Vec<String> = def.fields.iter().filter_map(|f| f.master.clone()).collect();
    for key in super::libraries::referenced_libraries(&def) {
        if let Some(row) = db::libraries::find_library(conn, scope, &key)? {
            if let Ok(library) = crate::domain::library::parse_library(&row.definition.0) {
                master_keys.extend(library.fields.iter().filter_map(|f| f.master.clone()));
            }
            libraries.push(crate::catalog::CatalogLibrary {
                key: row.key,
                definition: row.definition.0,
            });
        }
    }
    let mut masters: Vec<CatalogMaster> = Vec::new();
    for master_key in &master_keys {
        if masters.iter().any(|m| &m.key == master_key) {
            continue;
        }
        let Some(master) = db::masters::find_master(conn, scope, master_key)? else {
            continue;
        };
        let items = db::masters::items(conn, scope, master.id, false)?
            .into_iter()
            .map(|i| CatalogItem {
                code: i.code,
                label: crate::domain::master::Labels {
                    ja: i.label_ja,
                    en: i.label_en,
                },
                order: Some(i.sort_order),
                active: Some(i.active),
                parent: i.parent_code,
            })
            .collect();
        masters.push(CatalogMaster {
            key: master.key,
            name: crate::domain::master::Labels {
                ja: master.name_ja,
                en: master.name_en,
            },
            description: Some(master.description).filter(|d| !d.is_empty()),
            items,
        });
    }
    Ok(CatalogEntry {
        key: template.key,
        name: crate::domain::master::Labels {
            ja: def.name.ja.clone(),
            en: def.name.en.clone(),
        },
        description: crate::domain::master::Labels {
            ja: def.name.ja,
            en: def.name.en,
        },
        masters,
        libraries,
        template: version.definition.0,
    })
}

/// The key of a template any of whose versions has a select field backed by `master`.
pub fn template_using_master(
    conn: &mut DbConnection,
    scope: &TenantScope,
    master: &str,
) -> Result<Option<String>, ServiceError> {
    for template in db::templates::list_templates(conn, scope, None, i64::MAX)? {
        for version in db::templates::list_versions(conn, scope, template.id)? {
            let Ok(def) = parse_definition(&version.definition.0) else {
                continue;
            };
            if def
                .fields
                .iter()
                .any(|f| f.master.as_deref() == Some(master))
            {
                return Ok(Some(template.key));
            }
        }
    }
    Ok(None)
}

// Reads.

pub fn list_templates(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<TemplateId>,
    limit: i64,
) -> Result<Vec<TemplateRow>, ServiceError> {
    Ok(db::templates::list_templates(conn, scope, after, limit)?)
}

/// The keys of the tenant's templates (what the catalog shows as installed).
pub fn keys(conn: &mut DbConnection, scope: &TenantScope) -> Result<Vec<String>, ServiceError> {
    Ok(db::templates::keys(conn, scope)?)
}

/// Every version of a template, with the lint context its lint results are computed in.
pub fn list_versions(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<(Vec<VersionRow>, LintContext), ServiceError> {
    let template = find(conn, scope, key)?;
    let context = lint_context(conn, scope, key)?;
    let versions = db::templates::list_versions(conn, scope, template.id)?;
    Ok((versions, context))
}

/// The published version of a template: its number and parsed definition.
pub fn published_definition(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
) -> Result<(i32, TemplateDefinition), ServiceError> {
    let template = find(conn, scope, key)?;
    let number = template.published_version.ok_or_else(|| {
        ServiceError::conflict(
            ConflictKind::NotPublished,
            "The template has no published version yet.",
        )
    })?;
    let row = find_version(conn, scope, &template, number)?;
    Ok((number, parse(&row.definition.0)?))
}

/// The definition of version `number`, or of the published version when `None`.
pub fn definition(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    number: Option<i32>,
) -> Result<TemplateDefinition, ServiceError> {
    match number {
        None => published_definition(conn, scope, key).map(|(_, def)| def),
        Some(number) => {
            let template = find(conn, scope, key)?;
            let row = find_version(conn, scope, &template, number)?;
            parse(&row.definition.0)
        }
    }
}

/// The published definition with the number of tickets in each state (counts only for
/// `with_counts`: staff see them, others get an empty map).
pub fn states_with_counts(
    conn: &mut DbConnection,
    scope: &TenantScope,
    key: &str,
    with_counts: bool,
) -> Result<(i32, TemplateDefinition, HashMap<String, i64>), ServiceError> {
    let (number, def) = published_definition(conn, scope, key)?;
    let counts = if with_counts {
        let template = find(conn, scope, key)?;
        db::tickets::count_by_state(conn, scope, template.id)?
            .into_iter()
            .collect()
    } else {
        HashMap::new()
    };
    Ok((number, def, counts))
}
