//! Accepting events: validation of request bodies and the group-commit writer that makes them durable.

pub mod ctx_depth;
pub mod group_commit;
pub mod validate;

pub use group_commit::{GroupCommit, IngestError};
