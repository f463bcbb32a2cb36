//! HTTP plumbing shared by the API and admin listeners: the accept loop with graceful shutdown, request
//! observation (span, metrics), and JSON responses.

pub mod api;
pub mod body;
pub mod response;
pub mod server;

pub use server::{Handler, Routed, serve};
