//! Mail channels (tenant admins configure them) and intake (`intake.rs`): mail becomes
//! tickets and comments. docs/mail.md.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use crate::auth::TenantScope;
use crate::auth::keys::MasterKey;
use crate::db::audit::Actor;
use crate::db::mail::{self as rows, ChannelRow, MessageRow};
use crate::db::types::Json;
use crate::db::{self, DbConnection};
use crate::domain::ids::{MailChannelId, MailMessageId};
use crate::domain::mail_channel::{
    DomainOrganization, ReplyTransition, UnknownSenders, normalize_address,
};
use crate::domain::template::{FieldType, TemplateDefinition};
use crate::service::definitions::DefinitionCache;
use crate::service::error::{ConflictKind, ServiceError, check_version};

pub mod imap;
pub mod imap_poll;
pub mod intake;
mod reply;

/// Most channels per tenant.
pub const MAX_CHANNELS: i64 = 50;
/// Longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The largest message a channel may accept (its own limit is at most this).
pub const MAX_MESSAGE_BYTES: i64 = 25 * 1024 * 1024;
/// A channel's message limit unless it sets one.
pub const DEFAULT_MESSAGE_BYTES: i64 = 10 * 1024 * 1024;
/// Most attachments a channel may accept per message.
pub const MAX_ATTACHMENTS: i32 = 100;
/// Most reply transitions and organization domains per channel.
pub const MAX_RULES: usize = 50;

/// A channel as a tenant admin writes it (every part; a PATCH is applied to the stored one).
#[derive(Debug, Clone)]
pub struct ChannelInput {
    pub address: String,
    pub description: String,
    pub template: String,
    pub defaults: Map<String, Value>,
    pub subject_field: String,
    pub body_field: String,
    pub reply_transitions: Vec<ReplyTransition>,
    pub unknown_senders: UnknownSenders,
    pub organization_domains: Vec<DomainOrganization>,
    pub max_message_bytes: i64,
    pub max_attachments: i32,
    pub enabled: bool,
    /// The IMAP poller; `None`: no polling.
    pub imap: Option<imap::ImapInput>,
}

/// A partial change of a channel.
#[derive(Debug, Clone, Default)]
pub struct ChannelPatch {
    pub address: Option<String>,
    pub description: Option<String>,
    pub template: Option<String>,
    pub defaults: Option<Map<String, Value>>,
    pub subject_field: Option<String>,
    pub body_field: Option<String>,
    pub reply_transitions: Option<Vec<ReplyTransition>>,
    pub unknown_senders: Option<UnknownSenders>,
    pub organization_domains: Option<Vec<DomainOrganization>>,
    pub max_message_bytes: Option<i64>,
    pub max_attachments: Option<i32>,
    pub enabled: Option<bool>,
    /// `Some(None)` removes the IMAP poller.
    pub imap: Option<Option<imap::ImapInput>>,
}

fn parsed<T: serde::de::DeserializeOwned>(what: &str, value: &Value) -> Result<T, ServiceError> {
    serde_json::from_value(value.clone())
        .map_err(|e| ServiceError::internal(format!("stored mail channel {what}: {e}")))
}

impl ChannelInput {
    fn of_row(row: &ChannelRow) -> Result<Self, ServiceError> {
        Ok(Self {
            address: row.address.clone(),
            description: row.description.clone(),
            template: row.template.clone(),
            defaults: row.defaults.0.as_object().cloned().unwrap_or_default(),
            subject_field: row.subject_field.clone(),
            body_field: row.body_field.clone(),
            reply_transitions: parsed("reply_transitions", &row.reply_transitions.0)?,
            unknown_senders: UnknownSenders::from_storage(&row.unknown_senders)
                .map_err(|e| ServiceError::internal(e.to_string()))?,
            organization_domains: parsed("organization_domains", &row.organization_domains.0)?,
            max_message_bytes: row.max_message_bytes,
            max_attachments: row.max_attachments,
            enabled: row.enabled,
            imap: imap::ImapInput::of_row(row)?,
        })
    }

    fn apply(mut self, patch: &ChannelPatch) -> Self {
        let p = patch.clone();
        self.address = p.address.unwrap_or(self.address);
        self.description = p.description.unwrap_or(self.description);
        self.template = p.template.unwrap_or(self.template);
        self.defaults = p.defaults.unwrap_or(self.defaults);
        self.subject_field = p.subject_field.unwrap_or(self.subject_field);
        self.body_field = p.body_field.unwrap_or(self.body_field);
        self.reply_transitions = p.reply_transitions.unwrap_or(self.reply_transitions);
        self.unknown_senders = p.unknown_senders.unwrap_or(self.unknown_senders);
        self.organization_domains = p.organization_domains.unwrap_or(self.organization_domains);
        self.max_message_bytes = p.max_message_bytes.unwrap_or(self.max_message_bytes);
        self.max_attachments = p.max_attachments.unwrap_or(self.max_attachments);
        self.enabled = p.enabled.unwrap_or(self.enabled);
        self.imap = p.imap.unwrap_or(self.imap);
        self
    }
}

/// The channel as stored, parsed (intake reads it this way).
#[derive(Debug, Clone)]
pub struct Channel {
    pub row: ChannelRow,
    pub input: ChannelInput,
}

impl Channel {
    pub fn of(row: ChannelRow) -> Result<Self, ServiceError> {
        let input = ChannelInput::of_row(&row)?;
        Ok(Self { row, input })
    }
}

/// The published definition of a template key, or a 422 naming `field`.
pub(crate) fn published_definition(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    key: &str,
) -> Result<Arc<TemplateDefinition>, ServiceError> {
    let unknown = || ServiceError::validation("template", "unknown", "no template with this key");
    let template = db::templates::find_template(conn, scope, key)?.ok_or_else(unknown)?;
    let Some(number) = template.published_version.filter(|_| !template.archived) else {
        return Err(ServiceError::validation(
            "template",
            "not_published",
            "the template has no published version, or it is archived",
        ));
    };
    defs.get(conn, scope, template.id, number)
}

/// Every check of a channel's configuration, against the template's published version.
fn check(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    scope: &TenantScope,
    input: &mut ChannelInput,
) -> Result<(), ServiceError> {
    input.address = normalize_address(&input.address).ok_or_else(|| {
        ServiceError::validation("address", "invalid", "not a mail address (local@domain)")
    })?;
    if input.description.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(ServiceError::validation(
            "description",
            "too_long",
            format!("at most {MAX_DESCRIPTION_CHARS} characters"),
        ));
    }
    if !(1_024..=MAX_MESSAGE_BYTES).contains(&input.max_message_bytes) {
        return Err(ServiceError::validation(
            "max_message_bytes",
            "out_of_range",
            format!("between 1024 and {MAX_MESSAGE_BYTES}"),
        ));
    }
    if !(0..=MAX_ATTACHMENTS).contains(&input.max_attachments) {
        return Err(ServiceError::validation(
            "max_attachments",
            "out_of_range",
            format!("between 0 and {MAX_ATTACHMENTS}"),
        ));
    }
    if let Some(imap) = &mut input.imap {
        imap::check(imap)?;
    }
    let def = published_definition(conn, defs, scope, &input.template)?;
    check_fields(&def, input)?;
    check_replies(&def, &input.reply_transitions)?;
    check_domains(conn, scope, &mut input.organization_domains)
}

/// The subject and body fields must be text fields of the template that requesters may set;
/// default values must name fields requesters may set (mail is filed as its sender).
fn check_fields(def: &TemplateDefinition, input: &ChannelInput) -> Result<(), ServiceError> {
    for (name, key) in [
        ("subject_field", &input.subject_field),
        ("body_field", &input.body_field),
    ] {
        let field = def.field(key).ok_or_else(|| {
            ServiceError::validation(name, "unknown", "no field with this key in the template")
        })?;
        if field.internal || !matches!(field.kind, FieldType::Text | FieldType::LongText) {
            return Err(ServiceError::validation(
                name,
                "unsuitable",
                "must be a text or long_text field that is not internal",
            ));
        }
    }
    for key in input.defaults.keys() {
        let pointer = format!("defaults/{key}");
        match def.field(key) {
            None => {
                return Err(ServiceError::validation(
                    &pointer,
                    "unknown",
                    "no field with this key in the template",
                ));
            }
            Some(f) if f.internal => {
                return Err(ServiceError::validation(
                    &pointer,
                    "internal",
                    "mail is filed as its sender; internal fields cannot be defaults",
                ));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn check_replies(def: &TemplateDefinition, rules: &[ReplyTransition]) -> Result<(), ServiceError> {
    if rules.len() > MAX_RULES {
        return Err(ServiceError::validation(
            "reply_transitions",
            "too_many",
            format!("at most {MAX_RULES}"),
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        let Some(transition) = def.transition(&rule.transition) else {
            return Err(ServiceError::validation(
                &format!("reply_transitions/{i}/transition"),
                "unknown",
                "no transition with this key in the template",
            ));
        };
        if rule.from.is_empty() {
            return Err(ServiceError::validation(
                &format!("reply_transitions/{i}/from"),
                "required",
                "name at least one state",
            ));
        }
        for (j, state) in rule.from.iter().enumerate() {
            let terminal = def.state(state).map(|s| s.terminal);
            if !terminal.is_some_and(|terminal| transition.from.includes(state, terminal)) {
                return Err(ServiceError::validation(
                    &format!("reply_transitions/{i}/from/{j}"),
                    "not_a_source",
                    "the transition does not leave this state",
                ));
            }
        }
    }
    Ok(())
}

fn check_domains(
    conn: &mut DbConnection,
    scope: &TenantScope,
    domains: &mut [DomainOrganization],
) -> Result<(), ServiceError> {
    if domains.len() > MAX_RULES {
        return Err(ServiceError::validation(
            "organization_domains",
            "too_many",
            format!("at most {MAX_RULES}"),
        ));
    }
    for (i, entry) in domains.iter_mut().enumerate() {
        let normalized = normalize_address(&format!("x@{}", entry.domain));
        let Some(address) = normalized else {
            return Err(ServiceError::validation(
                &format!("organization_domains/{i}/domain"),
                "invalid",
                "not a mail domain",
            ));
        };
        entry.domain = address.trim_start_matches("x@").to_owned();
        if db::groups::find_organization(conn, scope, entry.organization_id)?.is_none() {
            return Err(ServiceError::validation(
                &format!("organization_domains/{i}/organization_id"),
                "unknown",
                "no organization with this id",
            ));
        }
    }
    Ok(())
}

fn taken(
    conn: &mut DbConnection,
    scope: &TenantScope,
    input: &ChannelInput,
    own: Option<MailChannelId>,
) -> Result<(), ServiceError> {
    if let Some(other) = rows::channel_by_address(conn, scope, &input.address)?
        && Some(other.id) != own
    {
        return Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            "Another mail channel of this tenant has this address.",
        ));
    }
    Ok(())
}

fn to_row(input: &ChannelInput, base: ChannelRow) -> ChannelRow {
    ChannelRow {
        address: input.address.clone(),
        description: input.description.clone(),
        template: input.template.clone(),
        defaults: Json(Value::Object(input.defaults.clone())),
        subject_field: input.subject_field.clone(),
        body_field: input.body_field.clone(),
        reply_transitions: Json(json!(input.reply_transitions)),
        unknown_senders: input.unknown_senders.as_str().to_owned(),
        organization_domains: Json(json!(input.organization_domains)),
        max_message_bytes: input.max_message_bytes,
        max_attachments: input.max_attachments,
        enabled: input.enabled,
        ..base
    }
}

pub fn create(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    master: &MasterKey,
    scope: &TenantScope,
    actor: &Actor,
    mut input: ChannelInput,
    now: DateTime<Utc>,
) -> Result<Channel, ServiceError> {
    check(conn, defs, scope, &mut input)?;
    if rows::count_channels(conn, scope)? >= MAX_CHANNELS {
        return Err(ServiceError::conflict(
            ConflictKind::Duplicate,
            format!("A tenant has at most {MAX_CHANNELS} mail channels."),
        ));
    }
    taken(conn, scope, &input, None)?;
    let base = ChannelRow {
        tenant_id: scope.tenant_id(),
        id: MailChannelId::new_at(now),
        address: String::new(),
        description: String::new(),
        template: String::new(),
        defaults: Json(Value::Null),
        subject_field: String::new(),
        body_field: String::new(),
        reply_transitions: Json(Value::Null),
        unknown_senders: String::new(),
        organization_domains: Json(Value::Null),
        max_message_bytes: 0,
        max_attachments: 0,
        enabled: true,
        version: 1,
        created_at: now.into(),
        updated_at: now.into(),
        imap: None,
        imap_password: None,
        imap_uidvalidity: None,
        imap_last_uid: 0,
        imap_last_error: None,
        imap_polled_at: None,
    };
    let mut row = to_row(&input, base);
    imap::store(master, &mut row, None, input.imap.as_ref())?;
    rows::insert_channel(conn, scope, &row)?;
    imap::schedule(conn, scope, &row, now)?;
    super::audit(
        conn,
        scope,
        actor,
        "mail_channel.created",
        ("mail_channel", row.id),
        json!({"address": row.address, "template": row.template}),
        now.into(),
    )?;
    Ok(Channel { row, input })
}

pub fn get(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailChannelId,
) -> Result<Channel, ServiceError> {
    Channel::of(rows::find_channel(conn, scope, id)?.ok_or(ServiceError::NotFound)?)
}

pub fn list(
    conn: &mut DbConnection,
    scope: &TenantScope,
    after: Option<MailChannelId>,
    limit: i64,
) -> Result<Vec<Channel>, ServiceError> {
    rows::list_channels(conn, scope, after, limit)?
        .into_iter()
        .map(Channel::of)
        .collect()
}

#[expect(clippy::too_many_arguments, reason = "one edit with its preconditions")]
pub fn update(
    conn: &mut DbConnection,
    defs: &DefinitionCache,
    master: &MasterKey,
    scope: &TenantScope,
    actor: &Actor,
    id: MailChannelId,
    expected_version: Option<i64>,
    patch: &ChannelPatch,
    now: DateTime<Utc>,
) -> Result<Channel, ServiceError> {
    let row = rows::lock_channel(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    check_version(expected_version, row.version)?;
    let before = ChannelInput::of_row(&row)?;
    let mut input = before.clone().apply(patch);
    check(conn, defs, scope, &mut input)?;
    taken(conn, scope, &input, Some(id))?;
    let mut row = to_row(&input, row);
    let before = before.imap.map(|i| i.config);
    imap::store(master, &mut row, before.as_ref(), input.imap.as_ref())?;
    row.version += 1;
    row.updated_at = now.into();
    rows::update_channel(conn, scope, &row)?;
    imap::schedule(conn, scope, &row, now)?;
    super::audit(
        conn,
        scope,
        actor,
        "mail_channel.updated",
        ("mail_channel", id),
        json!({"address": row.address, "enabled": row.enabled}),
        now.into(),
    )?;
    Ok(Channel { row, input })
}

pub fn delete(
    conn: &mut DbConnection,
    scope: &TenantScope,
    actor: &Actor,
    id: MailChannelId,
    now: DateTime<Utc>,
) -> Result<(), ServiceError> {
    if !rows::delete_channel(conn, scope, id)? {
        return Err(ServiceError::NotFound);
    }
    super::audit(
        conn,
        scope,
        actor,
        "mail_channel.deleted",
        ("mail_channel", id),
        json!({}),
        now.into(),
    )
}

/// A channel's message log (without raw bytes).
pub fn messages(
    conn: &mut DbConnection,
    scope: &TenantScope,
    channel: MailChannelId,
    after: Option<MailMessageId>,
    limit: i64,
) -> Result<Vec<MessageRow>, ServiceError> {
    rows::find_channel(conn, scope, channel)?.ok_or(ServiceError::NotFound)?;
    Ok(rows::list_messages(conn, scope, channel, after, limit)?)
}

/// One message of the log (without raw bytes).
pub fn message(
    conn: &mut DbConnection,
    scope: &TenantScope,
    id: MailMessageId,
) -> Result<MessageRow, ServiceError> {
    let mut row = rows::find_message(conn, scope, id)?.ok_or(ServiceError::NotFound)?;
    row.raw = None;
    Ok(row)
}
