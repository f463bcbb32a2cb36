//! A production-shaped start is safe with the shipped configuration's habits: the sample admin token is
//! refused on an admin listener others can reach, and `[plugins] files` keeps every unlisted library of
//! the plugin directory (the test plugins a workspace build leaves in `target/release`) unopened.

use message_center_tests::*;

/// The admin token of the shipped `config/message-center.toml`.
const SAMPLE_TOKEN: &str = "change-me";

/// A non-zero exit whose output names `key`; panics with what the server printed otherwise.
fn assert_refused_naming(exited: &Exited, config: &str, key: &str) {
    let context = format!(
        "--- config ---\n{config}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        exited.stdout, exited.stderr
    );
    let status = exited
        .status
        .unwrap_or_else(|| panic!("the server did not exit by itself\n{context}"));
    assert!(!status.success(), "exit status {status}\n{context}");
    assert!(
        exited.stderr.contains(key) || exited.stdout.contains(key),
        "no mention of `{key}`\n{context}"
    );
}

/// Options for an admin listener on every interface, guarded by `token`.
fn exposed_admin_with(token: &str) -> ServerOptions {
    ServerOptions::new(PluginDir::new())
        .admin_listen("0.0.0.0:0")
        .admin_token(Some(token))
}

/// Starts with an exposed admin listener guarded by `token`, which must refuse to start naming
/// `auth.admin_token`: what it printed.
fn refused_admin_token(token: &str) -> Exited {
    let (exited, config) = TestServer::start_expecting_failure(exposed_admin_with(token));
    assert_refused_naming(&exited, &config, "auth.admin_token");
    exited
}

#[test]
fn an_exposed_admin_listener_refuses_the_sample_token() {
    let exited = refused_admin_token(SAMPLE_TOKEN);
    assert!(
        exited.stderr.contains("sample token"),
        "the reason is given: {}",
        exited.stderr
    );
}

#[test]
fn an_exposed_admin_listener_refuses_a_short_token() {
    let exited = refused_admin_token("0123456789abcdef0123456789abcde");
    assert!(exited.stderr.contains("31 characters"), "{}", exited.stderr);
}

#[tokio::test]
async fn an_exposed_admin_listener_starts_with_a_strong_token() {
    let server = TestServer::start(exposed_admin_with("0123456789abcdef0123456789abcdef"));
    assert!(server.admin_addr().ip().is_unspecified());
    server.plugins().await;
}

#[tokio::test]
async fn a_loopback_admin_listener_keeps_the_sample_token() {
    let server =
        TestServer::start(ServerOptions::new(PluginDir::new()).admin_token(Some(SAMPLE_TOKEN)));
    server.plugins().await;
}

#[tokio::test]
async fn plugin_files_load_only_the_listed_libraries() {
    let plugins = PluginDir::new();
    plugins.add("fault-probe");
    plugins.add("wrong-abi");
    let listed: Vec<String> = PROCESSING_PLUGINS
        .iter()
        .map(|crate_name| toml_string(&library_file_name(crate_name)))
        .collect();
    let server = TestServer::start(
        ServerOptions::new(plugins)
            .processing_workflows()
            .plugin_setting("files", &format!("[{}]", listed.join(", "))),
    );

    let assert_only_processing = |listing: &serde_json::Value| {
        let mut files: Vec<String> = plugin_entries(listing)
            .iter()
            .map(|entry| {
                assert_eq!(entry["state"], "loaded", "{}", pretty(entry));
                let file = entry["file"].as_str().expect("file");
                file.rsplit('/').next().unwrap().to_owned()
            })
            .collect();
        files.sort();
        let mut expected: Vec<String> = PROCESSING_PLUGINS
            .iter()
            .map(|c| library_file_name(c))
            .collect();
        expected.sort();
        assert_eq!(files, expected, "{}", pretty(listing));
    };
    assert_only_processing(&server.plugins().await);

    // A reload follows the same list.
    let (status, body) = server.reload_all().await;
    assert_eq!(status, 200, "{}", pretty(&body));
    let results = body["results"].as_array().expect("results");
    assert_eq!(results.len(), PROCESSING_PLUGINS.len(), "{}", pretty(&body));
    for result in results {
        assert_eq!(result["outcome"], "unchanged", "{}", pretty(result));
    }
    assert_only_processing(&server.plugins().await);

    // The unlisted libraries were never opened: no refusal, not even their names.
    let log = server.log_contents();
    for unlisted in [
        "libwrong_abi",
        "libfault_probe",
        "plugin refused",
        "ABI version",
    ] {
        assert!(!log.contains(unlisted), "`{unlisted}` in the log:\n{log}");
    }
    assert!(
        log.lines()
            .any(|line| line.contains("not listed in plugins.files") && line.contains("skipped=2")),
        "one line says how many files were skipped:\n{log}"
    );

    // The listed workflows run.
    server
        .wait_workflow("rtEventsProcessing", secs(30), "a first run", |wf| {
            runs(wf) > 0
        })
        .await;
}

#[test]
fn a_plugin_files_entry_that_is_a_path_is_refused() {
    let (exited, config) = TestServer::start_expecting_failure(
        ServerOptions::new(PluginDir::new())
            .plugin_setting("files", r#"["../librt_events_processing.so"]"#),
    );
    assert_refused_naming(&exited, &config, "plugins.files[0]");
}
