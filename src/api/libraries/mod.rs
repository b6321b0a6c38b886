//! Libraries: definitions, records, record history, freshness reviews, and the tickets that
//! reference a record. Who reads and writes is each library's `access`; a library or record
//! the caller may not read answers 404 like a missing one.

mod definitions;
mod history;
mod records;

pub use definitions::*;
pub use history::*;
pub use records::*;
