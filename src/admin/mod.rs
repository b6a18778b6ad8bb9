//! The `scopegate` CLI's commands, as library functions over opened resources, so the binary
//! only parses flags and maps results to exit codes.
//!
//! - `commands`: the mapping commands over the store and the snapshot ([`Admin`]);
//! - [`explain`] and [`validate`]: the answers that need no store;
//! - `render`: every answer as a table, JSON or text lines;
//! - `error`: what fails, and the exit code it gives;
//! - `retry`: how a change retries after losing a race;
//! - [`migrate`], [`invoke`], [`local`]: the table's migrations, replayed events, local mode;
//! - [`openapi`]: the OAuth scopes each operation of an OpenAPI document requires, and
//!   [`from_openapi`]: the mapping entries that says they are.

pub(crate) mod commands;
pub(crate) mod error;
pub(crate) mod explain;
pub mod flush;
pub mod from_openapi;
pub mod invoke;
pub mod local;
pub mod migrate;
pub mod openapi;
pub(crate) mod render;
pub(crate) mod retry;
pub(crate) mod validate;

pub use commands::{default_actor, Admin, Change, Changed, Filter, Target};
pub use error::{AdminError, ErrorKind};
pub use explain::{
    claim_grants, explain, token_binding, token_grants, token_scopes, ExplainReport,
};
pub use render::{
    count, render_changed, render_explain, render_flushed, render_history, render_invalid_json,
    render_mappings, render_migrated, render_published, render_same, render_valid, Output,
    Rendered,
};
pub use validate::{
    check_declared, check_storable, validate, validate_document, validate_entries, Largest,
    ValidateReport,
};
