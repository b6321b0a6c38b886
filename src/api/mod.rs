//! The HTTP API: thin handlers, their DTOs, and the route table that is also the OpenAPI
//! document (an endpoint that is served is documented, by construction).

pub mod announcements;
pub mod attachments;
pub mod audit;
pub mod auth;
pub mod backups;
pub mod catalog;
pub mod common;
pub mod directory;
pub mod docs_page;
pub mod error;
pub mod events;
pub mod exports;
pub mod extract;
pub mod imports;
pub mod libraries;
pub mod mail;
pub mod masters;
pub mod migrations;
pub mod notifications;
mod openapi_polish;
pub mod ops;
pub mod platform;
pub mod problems;
pub mod reports;
pub mod request_id;
mod schema_ids;
pub mod server;
pub mod signing_keys;
pub mod sla;
pub mod state;
pub mod stats;
pub mod template_items;
pub mod templates;
pub mod tenant_exports;
pub mod tickets;
pub mod webhooks;
pub mod well_known;

use actix_web::dev::ResourceDef;
use actix_web::http::Method;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_actix_web::AppExt;
use utoipa_actix_web::service_config::ServiceConfig;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Stageflow API",
        description = "Headless multi-tenant business-process platform: templates (multi-stage \
state machines), tickets, masters and libraries.\n\nConventions: JSON bodies with snake_case \
names; RFC 3339 UTC timestamps; UUID v7 ids; errors are RFC 9457 `application/problem+json` \
documents with a stable `type`. A resource of another tenant answers exactly like a missing \
one (404).",
        license(name = "Apache-2.0", identifier = "Apache-2.0")
    ),
    tags(
        (name = "operations", description = "Liveness, readiness and discovery; no authentication."),
        (name = "auth", description = "Access tokens and the caller's identity."),
        (name = "platform", description = "Plans, customer accounts and tenants; platform operator only."),
        (name = "directory", description = "A tenant's users, groups, organizations and API keys."),
        (name = "audit", description = "The append-only audit log."),
        (name = "mail", description = "Mail channels: addresses whose mail becomes tickets and comments (scanned for malware first), and the log of every message taken in."),
        (name = "notifications", description = "Notification mail: rules per template saying which ticket events mail whom (requester, watchers, assignee, group, fixed addresses), and each user's opt-outs."),
        (name = "sla", description = "Service levels: business calendars (working hours, Japanese public holidays, closures, exceptions) and SLA policies with first-response and resolution targets per template; ticket reads show the clocks, and `ticket.sla_at_risk` / `ticket.sla_breached` events announce them."),
        (name = "webhooks", description = "Signed pushes of the event log to integration endpoints (Standard Webhooks): subscriptions, their delivery log, redelivery and ping."),
        (name = "events", description = "The event log for integrations: every change of the tenant, in commit order, as a pull feed with long polling or as Server-Sent Events."),
        (name = "masters", description = "Code lists (categories, priorities, impact…) that templates use for select fields."),
        (name = "templates", description = "Process definitions: multi-stage state machines with fields, rules and actions; versions, linting, diagrams."),
        (name = "tickets", description = "Cases running through templates: fields, transitions with dry runs and reasons, history, comments, watchers, links, attachments, search and export."),
        (name = "imports", description = "Bulk import of tickets, library records, users and master items from CSV (UTF-8 or CP932) or JSON Lines, with a column mapping, a dry run and an outcome per row; larger files run as jobs."),
        (name = "libraries", description = "Record collections (knowledge base, CMDB, FAQ…) with the template field machinery: records with versioned history, review freshness, search, references from tickets and writes from transitions."),
    ),
    modifiers(&BearerSecurity),
    components(
        schemas(crate::api::error::Problem, crate::api::error::FieldErrorSchema),
        responses(
            problems::BadRequest,
            problems::Unauthorized,
            problems::Forbidden,
            problems::NotFound,
            problems::Conflict,
            problems::PreconditionFailed,
            problems::TooManyRequests,
            problems::PayloadTooLarge,
            problems::UnsupportedMediaType,
            problems::Unprocessable,
            exports::ExportUnprocessable,
            problems::Unavailable,
            problems::Busy,
            problems::Internal,
        )
    )
)]
pub struct ApiDoc;

struct BearerSecurity;

impl utoipa::Modify for BearerSecurity {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token from POST /api/v1/auth/token (or an API key).",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "metrics_token",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "GET /metrics only, when the node sets STAGEFLOW_METRICS_TOKEN: that \
                         token as it is.",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route of the server. Registering a handler here is what puts it in the document.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(ops::healthz)
        .service(ops::readyz)
        .service(ops::metrics)
        .service(well_known::get_jwks)
        .service(utoipa_actix_web::scope("/api/v1").configure(v1));
}

fn v1(cfg: &mut ServiceConfig) {
    cfg.service(ops::openapi_json)
        .service(auth::create_token)
        .service(events::list_events)
        .service(events::stream_events)
        .service(mail::list_mail_channels)
        .service(mail::create_mail_channel)
        .service(mail::get_mail_channel)
        .service(mail::update_mail_channel)
        .service(mail::delete_mail_channel)
        .service(mail::list_mail_messages)
        .service(mail::create_mail_message)
        .service(mail::get_mail_message)
        .service(notifications::list_notification_rules)
        .service(notifications::create_notification_rule)
        .service(notifications::get_notification_rule)
        .service(notifications::update_notification_rule)
        .service(notifications::delete_notification_rule)
        .service(notifications::get_notification_preferences)
        .service(notifications::update_notification_preferences)
        .service(sla::list_calendars)
        .service(sla::create_calendar)
        .service(sla::get_calendar)
        .service(sla::update_calendar)
        .service(sla::delete_calendar)
        .service(sla::list_japanese_holidays)
        .service(sla::list_sla_policies)
        .service(sla::create_sla_policy)
        .service(sla::get_sla_policy)
        .service(sla::update_sla_policy)
        .service(sla::delete_sla_policy)
        .service(stats::get_template_stats)
        .service(migrations::create_template_migration)
        .service(migrations::list_template_migrations)
        .service(migrations::get_template_migration)
        .service(reports::get_monthly_report)
        .service(imports::create_import)
        .service(imports::list_imports)
        .service(imports::get_import)
        .service(imports::list_import_rows)
        .service(webhooks::list_webhooks)
        .service(webhooks::create_webhook)
        .service(webhooks::get_webhook)
        .service(webhooks::update_webhook)
        .service(webhooks::delete_webhook)
        .service(webhooks::create_webhook_secret)
        .service(webhooks::rotate_webhook_secret)
        .service(webhooks::create_webhook_ping)
        .service(webhooks::list_webhook_deliveries)
        .service(webhooks::get_webhook_delivery)
        .service(webhooks::create_webhook_redelivery)
        .service(webhooks::redeliver_webhook_delivery)
        .service(auth::create_refresh)
        .service(auth::logout)
        .service(auth::get_me)
        .service(auth::change_password)
        .service(platform::list_plans)
        .service(platform::create_plan)
        .service(platform::get_plan)
        .service(platform::update_plan)
        .service(platform::list_accounts)
        .service(platform::create_account)
        .service(platform::get_account)
        .service(platform::update_account)
        .service(platform::get_account_usage)
        .service(platform::list_tenants)
        .service(platform::create_tenant)
        .service(platform::get_tenant)
        .service(platform::update_tenant)
        .service(platform::delete_tenant)
        .service(backups::list_backups)
        .service(tenant_exports::create_tenant_export)
        .service(tenant_exports::list_tenant_exports)
        .service(tenant_exports::get_tenant_export)
        .service(tenant_exports::get_tenant_export_archive)
        .service(announcements::create_announcement)
        .service(announcements::list_announcements)
        .service(announcements::get_announcement)
        .service(announcements::withdraw_announcement)
        .service(signing_keys::create_signing_key)
        .service(directory::list_users)
        .service(directory::export_users)
        .service(directory::create_user)
        .service(directory::get_user)
        .service(directory::update_user)
        .service(directory::delete_user)
        .service(directory::unlock_user)
        .service(directory::list_groups)
        .service(directory::create_group)
        .service(directory::get_group)
        .service(directory::list_group_members)
        .service(directory::add_group_member)
        .service(directory::remove_group_member)
        .service(directory::list_organizations)
        .service(directory::create_organization)
        .service(directory::get_organization)
        .service(directory::update_organization)
        .service(directory::list_api_keys)
        .service(directory::create_api_key)
        .service(directory::delete_api_key)
        .service(audit::list_audit_log)
        .service(masters::list_masters)
        .service(masters::create_master)
        .service(masters::get_master)
        .service(masters::update_master)
        .service(masters::delete_master)
        .service(masters::list_master_items)
        .service(masters::export_master_items)
        .service(masters::create_master_item)
        .service(masters::update_master_item)
        .service(templates::list_templates)
        .service(templates::create_template)
        .service(templates::get_template)
        .service(templates::update_template)
        .service(templates::delete_template)
        .service(templates::list_template_versions)
        .service(templates::create_template_version)
        .service(templates::get_template_version)
        .service(templates::update_template_version)
        .service(templates::publish_template_version)
        .service(templates::get_template_states)
        .service(template_items::list_version_states)
        .service(template_items::create_version_state)
        .service(template_items::get_version_state)
        .service(template_items::update_version_state)
        .service(template_items::delete_version_state)
        .service(template_items::list_version_transitions)
        .service(template_items::create_version_transition)
        .service(template_items::get_version_transition)
        .service(template_items::update_version_transition)
        .service(template_items::delete_version_transition)
        .service(template_items::list_version_fields)
        .service(template_items::create_version_field)
        .service(template_items::get_version_field)
        .service(template_items::update_version_field)
        .service(template_items::delete_version_field)
        .service(templates::get_template_diagram)
        .service(templates::lint_template)
        .service(catalog::list_catalog)
        .service(catalog::install_catalog_entry)
        .service(catalog::export_template)
        .service(catalog::import_template)
        .service(tickets::export::export_tickets)
        .service(tickets::bulk::transition_tickets)
        .service(tickets::list::list_tickets)
        .service(tickets::create_ticket)
        .service(tickets::get_ticket)
        .service(tickets::update_ticket)
        .service(tickets::transitions::list_ticket_transitions)
        .service(tickets::transitions::transition_ticket)
        .service(tickets::history::list_ticket_history)
        .service(tickets::history::get_ticket_timeline)
        .service(tickets::comments::list_ticket_comments)
        .service(tickets::comments::create_ticket_comment)
        .service(tickets::collab::list_ticket_watchers)
        .service(tickets::collab::create_ticket_watcher)
        .service(tickets::collab::delete_ticket_watcher)
        .service(tickets::collab::list_ticket_links)
        .service(tickets::collab::create_ticket_link)
        .service(tickets::collab::delete_ticket_link)
        .service(attachments::list_ticket_attachments)
        .service(attachments::create_ticket_attachment)
        .service(attachments::get_attachment_content)
        .service(libraries::list_libraries)
        .service(libraries::create_library)
        .service(libraries::get_library)
        .service(libraries::update_library)
        .service(libraries::delete_library)
        .service(libraries::list_records)
        .service(libraries::export_records)
        .service(libraries::create_record)
        .service(libraries::get_record)
        .service(libraries::update_record)
        .service(libraries::delete_record)
        .service(libraries::review_record)
        .service(libraries::record_history)
        .service(libraries::record_tickets);
}

/// The OpenAPI document of [`routes`], as utoipa generates it (see [`openapi_document`]).
pub fn openapi() -> utoipa::openapi::OpenApi {
    let (_app, doc) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    doc
}

/// The document as published (served at `/api/v1/openapi.json` and committed): [`openapi`]
/// with the rules of [`openapi_polish`] applied.
pub fn openapi_document() -> Result<serde_json::Value, serde_json::Error> {
    openapi_polish::polish(&openapi())
}

/// The document as committed in `openapi/openapi.json`: pretty JSON with a final newline.
pub fn openapi_json_pretty() -> Result<String, serde_json::Error> {
    Ok(serde_json::to_string_pretty(&openapi_document()?)? + "\n")
}

/// Which methods each documented path accepts; lets the fallback tell 405 from 404.
pub struct RouteTable {
    routes: Vec<(ResourceDef, Vec<Method>)>,
}

impl RouteTable {
    pub fn from_openapi(doc: &utoipa::openapi::OpenApi) -> Self {
        let routes = doc
            .paths
            .paths
            .iter()
            .map(|(path, item)| {
                let mut methods = Vec::new();
                let operations = [
                    (&item.get, Method::GET),
                    (&item.put, Method::PUT),
                    (&item.post, Method::POST),
                    (&item.delete, Method::DELETE),
                    (&item.options, Method::OPTIONS),
                    (&item.head, Method::HEAD),
                    (&item.patch, Method::PATCH),
                    (&item.trace, Method::TRACE),
                ];
                for (operation, method) in operations {
                    if operation.is_some() {
                        methods.push(method);
                    }
                }
                (ResourceDef::new(path.as_str()), methods)
            })
            .collect();
        Self { routes }
    }

    /// The methods served at `path`, or `None` when no route has that path.
    pub fn allowed(&self, path: &str) -> Option<&[Method]> {
        self.routes
            .iter()
            .find(|(def, _)| def.is_match(path))
            .map(|(_, methods)| methods.as_slice())
    }
}
