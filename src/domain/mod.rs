//! Pure domain logic: parsed types and decisions. No I/O, no clock, no randomness — time and
//! ids are passed in by the caller.

pub mod audit;
pub mod calendar;
pub mod closed_set;
pub mod credentials;
pub mod diagram;
pub mod error;
pub mod event;
pub mod identity;
pub mod ids;
pub mod import;
pub mod index;
pub mod library;
pub mod mail;
pub mod mail_channel;
pub mod master;
pub mod network;
pub mod notification;
pub mod search;
pub mod sla;
pub mod tabular;
pub mod template;
pub mod ticket;
pub mod webhook_signature;
