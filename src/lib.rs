//! Stageflow: a headless, multi-tenant business-process platform served as a REST/JSON API.
//!
//! `main.rs` is only the command line; everything it runs is built here, so the integration
//! tests start exactly the server that ships.

pub mod api;
pub mod auth;
pub mod catalog;
pub mod clock;
pub mod config;
pub mod db;
pub mod domain;
pub mod jobs;
pub mod logging;
pub mod mailer;
pub mod memory;
pub mod metrics;
pub mod outbound;
pub mod progress;
pub mod scanner;
pub mod seed;
pub mod service;
pub mod storage;
pub mod usage;
