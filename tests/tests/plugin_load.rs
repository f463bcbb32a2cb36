//! The shipped plugins load and run; `message-center check-plugin` tells a good library from a bad one.

use std::path::Path;

use mc_plugin_api::abi::ABI_VERSION;
use message_center_tests::*;

/// (crate, plugin name) of the five shipped plugins.
const SHIPPED: &[(&str, &str)] = &[
    ("rt-events-processing", "rtEventsProcessing"),
    ("batch-events-processing", "batchEventsProcessing"),
    ("update-events-status", "updateEventsStatus"),
    ("archiving", "archiving"),
    ("webhook-delivery", "webhookDelivery"),
];

/// The shipped plugins declare the workspace version, as this crate does.
const SHIPPED_VERSION: &str = env!("CARGO_PKG_VERSION");

#[tokio::test]
async fn shipped_plugins_load_and_their_workflows_run() {
    let plugins = PluginDir::new();
    for (crate_name, _) in SHIPPED {
        plugins.add(crate_name);
    }
    let mut workflows = String::new();
    for (_, name) in SHIPPED {
        workflows.push_str(&format!(
            "[workflows.{name}]\nenabled = true\ninterval = \"200ms\"\ntimeout = \"30s\"\nbatch_size = 100\n\n"
        ));
    }
    // archiving is a control-role workflow, the other four execution-role: run both roles.
    let server = TestServer::start(
        ServerOptions::new(plugins)
            .role("both")
            .workflows(&workflows),
    );

    // Liveness and readiness.
    server.assert_healthy().await;
    let (status, ready) = wait_for(secs(30), "GET /readyz to answer 200", async || {
        let (status, body) = server.get_public("/readyz").await;
        (status == 200).then_some((status, body))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(ready["status"], "ready", "{ready}");

    // Every library is loaded, generation 1, with its declaration.
    let listing = server.plugins().await;
    let dir = listing["pluginDir"]
        .as_str()
        .unwrap_or_else(|| panic!("no pluginDir in {}", pretty(&listing)));
    assert_eq!(
        Path::new(dir).canonicalize().unwrap(),
        server.plugin_dir().path().canonicalize().unwrap(),
        "pluginDir is not the configured directory"
    );
    assert_eq!(
        plugin_entries(&listing).len(),
        SHIPPED.len(),
        "one entry per library: {}",
        pretty(&listing)
    );
    for (crate_name, name) in SHIPPED {
        let file = library_file_name(crate_name);
        let entry = find_plugin_by_file(&listing, &file)
            .unwrap_or_else(|| panic!("{file} not listed: {}", pretty(&listing)));
        let context = pretty(entry);
        assert_eq!(entry["state"], "loaded", "{context}");
        assert_eq!(entry["name"], *name, "{context}");
        assert_eq!(entry["version"], SHIPPED_VERSION, "{context}");
        assert_eq!(entry["abiVersion"], ABI_VERSION, "{context}");
        assert_eq!(entry["apiVersion"], mc_plugin_api::API_VERSION, "{context}");
        assert_eq!(
            entry["rustcVersion"],
            mc_plugin_api::RUSTC_VERSION,
            "{context}"
        );
        assert_eq!(entry["generation"], 1, "{context}");
        assert!(entry["error"].is_null(), "{context}");
        assert!(
            text(entry, "description").is_some_and(|d| !d.is_empty()),
            "{context}"
        );
        assert!(
            text(entry, "loadedAt").is_some_and(|t| t.contains('T')),
            "loadedAt is not RFC 3339: {context}"
        );
    }

    // Every workflow runs, on generation 1, without errors.
    for (_, name) in SHIPPED {
        let wf = server
            .wait_workflow(name, secs(30), "two successful runs", |wf| {
                runs(wf) >= 2 && last_outcome(wf) == Some("ok")
            })
            .await;
        let context = pretty(&wf);
        assert_eq!(wf["plugin"], *name, "{context}");
        assert_eq!(wf["enabled"], true, "{context}");
        assert_eq!(num(&wf, "errors"), 0, "{context}");
        assert!(wf["lastError"].is_null(), "{context}");
        assert_eq!(wf["lastRun"]["generation"], 1, "{context}");
        assert!(wf["lastRun"]["error"].is_null(), "{context}");
        assert!(wf["lastRun"]["report"].is_object(), "{context}");
    }

    // And the runs are counted in /metrics.
    let metrics = server.metrics().await;
    for (_, name) in SHIPPED {
        let ok_runs = metric_value(
            &metrics,
            "mc_workflow_runs_total",
            &[("workflow", name), ("outcome", "ok")],
        );
        assert!(
            ok_runs.is_some_and(|n| n >= 2.0),
            "mc_workflow_runs_total{{workflow=\"{name}\",outcome=\"ok\"}} is {ok_runs:?}:\n{metrics}"
        );
        let timed = metric_value(
            &metrics,
            "mc_workflow_run_duration_seconds_count",
            &[("workflow", name)],
        );
        assert!(
            timed.is_some_and(|n| n >= 2.0),
            "mc_workflow_run_duration_seconds_count{{workflow=\"{name}\"}} is {timed:?}:\n{metrics}"
        );
    }
}

fn combined_output(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `check-plugin` on `library` (described as `what`), asserts that it exits 1 and returns its output.
fn check_plugin_refuses(library: &Path, what: &str) -> String {
    let output = check_plugin(library);
    let out = combined_output(&output);
    assert_eq!(
        output.status.code(),
        Some(1),
        "check-plugin accepted {what}:\n{out}"
    );
    out
}

#[test]
fn check_plugin_prints_a_shipped_declaration() {
    let library = plugin_library("rt-events-processing");
    let output = check_plugin(&library);
    let out = combined_output(&output);
    assert_eq!(output.status.code(), Some(0), "check-plugin failed:\n{out}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("rtEventsProcessing"), "no name:\n{out}");
    assert!(stdout.contains(SHIPPED_VERSION), "no version:\n{out}");
    assert!(stdout.contains("ABI"), "no ABI version:\n{out}");
    assert!(
        numbers_in(
            &stdout,
            &[
                &library.display().to_string(),
                SHIPPED_VERSION,
                mc_plugin_api::RUSTC_VERSION
            ]
        )
        .contains(&u64::from(ABI_VERSION)),
        "ABI version {ABI_VERSION} not shown:\n{out}"
    );
    assert!(
        stdout.contains(mc_plugin_api::RUSTC_VERSION),
        "no rustc version:\n{out}"
    );
}

#[test]
fn check_plugin_refuses_a_wrong_abi_version_naming_both() {
    let library = plugin_library("wrong-abi");
    let out = check_plugin_refuses(&library, "wrong-abi");
    assert!(
        out.contains("ABI"),
        "the reason does not mention the ABI:\n{out}"
    );
    let numbers = numbers_in(&out, &[&library.display().to_string()]);
    for version in [ABI_VERSION, ABI_VERSION + 1] {
        assert!(
            numbers.contains(&u64::from(version)),
            "the reason does not name ABI version {version}:\n{out}"
        );
    }
    assert!(!out.contains("panicked"), "check-plugin panicked:\n{out}");
}

#[test]
fn check_plugin_refuses_a_text_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.so");
    std::fs::write(&file, "this is a text file, not a shared library\n").unwrap();
    let out = check_plugin_refuses(&file, "a text file");
    assert!(
        !out.replace(&file.display().to_string(), "")
            .trim()
            .is_empty(),
        "no reason given"
    );
    assert!(!out.contains("panicked"), "check-plugin panicked:\n{out}");
}
