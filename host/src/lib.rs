//! Message Center host runtime.
//!
//! The host owns everything that has state or touches the outside world (listeners, database, delivery
//! channels, scheduling, metrics, logging); the technical workflows are plugins it loads, checks, runs and
//! hot-reloads, and they reach the world only through the services it hands them.

pub mod admin;
pub mod api;
pub mod bounces;
pub mod config;
pub mod console;
pub mod control;
pub mod db;
pub mod delivery;
pub mod error;
pub mod http;
pub mod ingest;
pub mod maintenance;
pub mod metrics;
pub mod monitoring;
pub mod open_files;
pub mod plugins;
pub mod server;
pub mod services;
pub mod shutdown;
pub mod soap;
pub mod store;
pub mod telemetry;
pub mod templates;
pub mod urls;
pub mod webhooks;
pub mod workflows;
