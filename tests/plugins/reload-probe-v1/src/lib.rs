//! `reloadProbe` version 1.0.0: a test plugin for hot reload (never shipped in the plugin directory). The
//! code is shared with reload-probe-v2 in `tests/plugins/reload-probe-common.rs`.

// A plugin reaches the host only through mc-plugin-api; the `unsafe` of the boundary is there (lints are
// not reported in `declare_plugin!`'s expansion, which is mc-plugin-api's code).
#![forbid(unsafe_code)]

/// The plugin version in the declaration.
const PROBE_VERSION: &str = "1.0.0";
/// What each run reports as processed, and the `N` of its detail "reload-probe vN".
const PROBE_NUMBER: u64 = 1;

include!("../../reload-probe-common.rs");
