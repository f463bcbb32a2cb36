//! Graceful shutdown: SIGTERM lets the run in flight finish, then the process exits 0 and its listeners
//! are closed.

use std::time::Instant;

use message_center_tests::*;

#[tokio::test]
async fn sigterm_lets_the_run_in_flight_finish_and_exits_zero() {
    let plugins = PluginDir::new();
    plugins.add_as("reload-probe-v1", "libreload_probe.so");
    let shutdown_timeout = secs(10);
    let mut server = TestServer::start(
        ServerOptions::new(plugins)
            .shutdown_timeout("10s")
            .workflows(SLOW_PROBE_WORKFLOW_TOML),
    );

    // Catch a run at its start: the plugin logs "reload-probe v1 run N started" through the host's log.
    let first = wait_for(secs(30), "a first run in the log", async || {
        started_runs(&server.log_contents()).into_iter().max()
    })
    .await;
    let in_flight = wait_for(secs(30), "a fresh run start in the log", async || {
        started_runs(&server.log_contents())
            .into_iter()
            .max()
            .filter(|&n| n > first)
    })
    .await;
    let wf = server.workflow("probe").await;
    assert_eq!(wf["state"], "running", "{}", pretty(&wf));
    assert!(server.admin_port_accepts());

    let sent = Instant::now();
    server.sigterm();
    let status = server
        .wait_exit(shutdown_timeout + secs(5))
        .await
        .unwrap_or_else(|| panic!("still running {:?} after SIGTERM", sent.elapsed()));
    let took = sent.elapsed();

    assert!(
        status.success(),
        "exit status after SIGTERM: {status:?}\n{}",
        server.log_tail(60)
    );
    assert!(
        took <= shutdown_timeout + secs(1),
        "took {took:?} to stop, more than shutdown_timeout ({shutdown_timeout:?})"
    );

    // The run in flight finished (the plugin's own log line, written through the host's log), and no run
    // started after it.
    let log = server.log_contents();
    assert!(
        log.contains(&format!("reload-probe v1 run {in_flight} finished")),
        "run {in_flight} was in flight at SIGTERM but did not finish:\n{}",
        server.log_tail(60)
    );
    let last_started = started_runs(&log).into_iter().max();
    assert_eq!(
        last_started,
        Some(in_flight),
        "a run started after SIGTERM:\n{}",
        server.log_tail(60)
    );

    // It stopped accepting connections.
    assert!(
        !server.admin_port_accepts(),
        "the admin port {} still accepts connections after exit",
        server.admin_addr()
    );
    assert!(
        std::net::TcpStream::connect_timeout(&server.api_addr(), secs(1)).is_err(),
        "the API port {} still accepts connections after exit",
        server.api_addr()
    );
}

/// Run numbers N of the "reload-probe v1 run N started" lines in the log.
fn started_runs(log: &str) -> Vec<u64> {
    const MARK: &str = "reload-probe v1 run ";
    log.lines()
        .filter_map(|line| {
            let rest = &line[line.find(MARK)? + MARK.len()..];
            let (number, rest) = rest.split_once(' ')?;
            rest.starts_with("started").then(|| number.parse().ok())?
        })
        .collect()
}
