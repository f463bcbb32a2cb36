//! sea-orm entities, one file per table. They describe the schema the migrations build; the store is the
//! only module that queries with them.

pub mod archive_cursor;
pub mod archive_event;
pub mod archive_feed;
pub mod console_first_run;
pub mod console_session;
pub mod console_user;
pub mod delivery_log;
pub mod event;
pub mod host_secret;
pub mod idempotency_key;
pub mod quarantine;
pub mod template;
pub mod template_proof;
pub mod template_seed;
pub mod template_version;
pub mod webhook_attempt;
pub mod webhook_endpoint;
pub mod webhook_notification;
