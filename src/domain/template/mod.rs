//! Templates: the pure workflow engine.
//!
//! A process manager writes a template definition as JSON. [`parse_definition`] reads its
//! shape, [`lint`] finds every problem with a stable code and a JSON pointer, and the engine
//! answers questions about tickets: [`validate_values`], [`evaluate_guard`],
//! [`available_transitions`] and [`plan_transition`]. Nothing here does I/O or reads the
//! clock; the caller passes in the ticket, the actor, the facts and the tenant's masters.
//! The model, the lint codes and the contracts are described in `docs/template-model.md`.

mod compat;
mod engine;
mod generate;
mod guard;
pub mod items;
mod limits;
mod lint;
mod model;
mod parse;
mod pointer;
mod request;
mod scalar;
mod values;

#[cfg(test)]
mod fixtures;
#[cfg(test)]
mod proptests;

pub use compat::{compatible, convert_literal, convert_mapped};
pub use engine::{
    ActorView, Assignee, FieldChange, MappedValue, PlanError, PlannedAction, TicketView,
    TransitionOption, TransitionPlan, Unavailable, available_transitions, plan_transition,
};
pub use generate::{generated, generated_context};
pub use guard::{
    Comparison, Facts, Guard, GuardFailure, GuardOp, GuardResult, KNOWN_FACTS, evaluate_guard,
};
pub use limits::*;
pub use lint::{
    LintContext, LintIssue, LintReport, is_key, is_key_prefix, lint, lint_field_collection,
    lint_field_defs,
};
pub use model::{
    Action, Allowed, Bound, FieldDef, FieldRule, FieldType, FromStates, Label, Layout, Pattern,
    Section, SlaCategory, Stage, State, TemplateDefinition, Transition,
};
pub use parse::{parse_definition, parse_json};
pub use request::{TransitionInput, TransitionKey};
pub use scalar::{is_set, parse_datetime_utc};
pub use values::{
    FieldSet, FieldViolation, MasterItems, ValidationContext, check_editable, check_value,
    is_required, public_only, validate_values,
};

crate::domain::closed_set::closed_set! {
    /// Where a template version is in its life.
    pub enum VersionStatus {
        /// Editable with PUT; one per template at most.
        Draft = "draft",
        /// Immutable; tickets are filed from the latest one.
        Published = "published",
    }
}
