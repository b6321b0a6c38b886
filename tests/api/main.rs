//! Integration tests: the real server over real HTTP on a real database (see helpers.rs).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a test reports failure by panicking"
)]

mod announcements;
mod api_keys;
mod attachment_storage;
mod auth;
mod backup;
mod catalog;
mod citus;
mod clamd;
mod cli;
mod diagrams;
mod directory;
mod dovecot;
mod events;
mod exports;
mod health;
mod helpers;
mod http_errors;
mod imap;
mod imports;
mod isolation;
mod jobs;
mod libraries;
mod lockout;
mod mail;
mod mailer;
mod masters;
mod metrics;
mod migrations;
mod notifications;
mod openapi;
mod ops;
mod past;
mod platform;
mod readme;
mod replica;
mod reports;
mod request_ids;
mod retention;
mod scanner;
mod scanner_health;
mod schema;
mod sessions;
mod signing_keys;
mod sla;
mod stats;
mod template_items;
mod templates;
mod tenant_export;
mod tickets;
mod tls;
mod visibility;
mod webhooks;
