//! Harness for the Message Center integration tests: it builds the real binary and plugins, starts the
//! server as a child process on loopback ports with a plugin directory and configuration of the test's
//! choosing, and talks to it over real sockets.
//!
//! ```text
//! let plugins = PluginDir::new();
//! plugins.add("rt-events-processing");
//! let server = TestServer::start(ServerOptions::new(plugins).workflows(
//!     r#"
//!     [workflows.rtEventsProcessing]
//!     interval = "200ms"
//!     "#,
//! ));
//! let wf = server
//!     .wait_workflow("rtEventsProcessing", secs(30), "a first run", |wf| runs(wf) > 0)
//!     .await;
//! ```
//!
//! Everything that waits polls with a timeout and panics with what it last saw; when a test fails, the
//! server's log tail is printed by [`TestServer`]'s `Drop`.
//!
//! The modules, by concern: [`build`] (the artifacts), [`browser`] (headless Chromium for the console), [`console`] (the console tests' users and sign-in), [`plugin_dir`], [`server`] (options and the
//! process), [`process`] (what a server child shares with the benchmarks'), [`client`] (the public
//! API), [`peers`] (SMTP server, SMS gateway, webhook receiver), [`postgres`] (the shared server) and [`private_postgres`] (a cluster a test may stop), [`json`] (reading answers), [`time`]
//! and [`cpu`] (for the benchmarks). Everything is re-exported at the root, so tests `use
//! message_center_tests::*`.

pub mod browser;
pub mod build;
pub mod client;
pub mod console;
pub mod cpu;
pub mod json;
pub mod openssl;
pub mod peers;
pub mod plugin_dir;
pub mod postfix;
pub mod postgres;
pub mod private_postgres;
pub mod process;
pub mod server;
pub mod time;

pub use browser::*;
pub use build::*;
pub use client::*;
pub use cpu::*;
pub use json::*;
pub use openssl::*;
pub use peers::*;
pub use plugin_dir::*;
pub use postfix::*;
pub use postgres::*;
pub use private_postgres::*;
pub use process::*;
pub use server::*;
pub use time::*;
