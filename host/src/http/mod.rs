//! HTTP plumbing shared by the API and admin listeners: the accept loop with graceful shutdown, request
//! observation (span, metrics), body limits and JSON responses. The routes live in `api` and `admin`.

pub mod body;
pub mod response;
pub mod server;

pub use server::{Handler, Routed, serve};
