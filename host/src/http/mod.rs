//! HTTP plumbing shared by the API and admin listeners: the accept loop with graceful shutdown, request
//! observation (span, metrics), guards that refuse a request before its route runs, body limits and JSON
//! responses. The routes live in `api` and `admin`, each declared once in an axum `Router`.

pub mod body;
pub mod connection;
pub mod extract;
pub mod guard;
pub mod observe;
pub mod response;
pub mod server;
#[cfg(test)]
pub mod testing;

pub use server::{ListenerLimits, serve};
