//! Starting and stopping the whole server: database, plugins, workflows, listeners, and the graceful
//! shutdown that ties them together.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::net::TcpListener;

use crate::admin::{self, AdminContext};
use crate::api::{self, ApiContext, ApiLimits};
use crate::config::Config;
use crate::control::{ArchiveMonitor, ExecutionInstances, InstanceError};
use crate::db::{self, DbError};
use crate::http;
use crate::ingest::GroupCommit;
use crate::metrics::Metrics;
use crate::plugins::{self, LoadOptions, PluginRegistry, WorkflowSpec};
use crate::services::{ControlServices, HostServices};
use crate::shutdown::{Shutdown, ShutdownController};
use crate::store::Store;
use crate::workflows::{RunnerContext, RunnerSettings, WorkflowSet};
use sea_orm::DatabaseConnection;

/// How often an unreachable database is retried at start.
const DB_RETRY: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        what: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot prepare the plugin work directory: {0}")]
    WorkDir(#[source] std::io::Error),
    #[error(transparent)]
    Delivery(#[from] crate::delivery::DeliveryError),
    #[error(transparent)]
    Instances(#[from] InstanceError),
    #[error("cannot install the signal handler: {0}")]
    Signal(#[source] std::io::Error),
    #[error("cannot build the webhook HTTP client: {0}")]
    Webhooks(String),
    #[error("cannot start the group-commit writer's thread: {0}")]
    IngestWriter(#[source] std::io::Error),
}

/// Runs the server until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn run(config: Config) -> Result<(), ServerError> {
    let shutdown = ShutdownController::new();
    let metrics = Metrics::new();
    // Before any listener or pool opens a descriptor.
    crate::open_files::raise_limit(&config);

    // Database: connected lazily so that the server starts (and says it is not ready) while it is down.
    let connection = db::connect(
        &config.database.url,
        config.database.max_connections,
        config.database.connect_timeout,
    )
    .await?;
    let store = Store::new(counted(connection, &metrics));
    let turns = metrics.clone();
    store.observe_write_turns(Box::new(move |operation, waited, held| {
        turns.record_write_turn(operation, waited, held)
    }));
    let db_ready = Arc::new(AtomicBool::new(false));
    match db::migrate(store.connection()).await {
        Ok(()) => db_ready.store(true, Ordering::SeqCst),
        Err(e) => {
            tracing::error!(error = %e, "database not ready; retrying in the background");
            tokio::spawn(retry_migrations(
                store.clone(),
                Arc::clone(&db_ready),
                shutdown.subscribe(),
            ));
        }
    }
    if store.is_sqlite() && !db::is_in_memory_url(&config.database.url) {
        tokio::spawn(db::checkpoint::run(
            store.connection().clone(),
            Arc::clone(&db_ready),
            shutdown.subscribe(),
        ));
    }

    // The pipeline's own writes (claims, links, delivery outcomes, status copies, webhook notifications,
    // the archive) on a pool whose commits do not wait for the disk (`db::Commits::Deferred`): a power
    // loss takes back only transitions that are then done again, and the fsync was most of each of their
    // write turns (BENCHMARKS.md, session 13). The API's writes, the bounces' and ingestion stay durable.
    // An in-memory SQLite database exists only in its pool, so that one is shared.
    let pipeline = if db::is_in_memory_url(&config.database.url) {
        store.clone()
    } else {
        let connection = db::connect_with(
            &config.database.url,
            config.database.max_connections,
            config.database.connect_timeout,
            db::Commits::Deferred,
        )
        .await?;
        store.with_connection(counted(connection, &metrics))
    };

    let instance_name = config
        .instance
        .name
        .clone()
        .unwrap_or_else(|| format!("instance-{}", config.instance.id));

    // Plugins, then the workflows that use them.
    let work_dir = plugins::prepare_work_dir(config.plugins.work_dir.as_deref())
        .map_err(ServerError::WorkDir)?;
    let specs: BTreeMap<String, WorkflowSpec> = config
        .workflows
        .iter()
        .map(|(name, wf)| {
            (
                name.clone(),
                WorkflowSpec {
                    plugin: wf.plugin_name(name).to_owned(),
                    settings: wf.settings.clone(),
                },
            )
        })
        .collect();
    let registry = Arc::new(
        PluginRegistry::new(
            config.plugins.dir.clone(),
            LoadOptions {
                work_dir: work_dir.clone(),
                require_same_rustc: config.plugins.require_same_rustc,
            },
            specs,
            metrics.clone(),
        )
        .with_files(config.plugins.files.as_deref()),
    );
    // The first scan: every refusal is logged by the registry and shown in /admin/plugins; none of them
    // stops the server, so one bad file cannot keep the other workflows down.
    {
        let registry = Arc::clone(&registry);
        let _ = tokio::task::spawn_blocking(move || registry.reload_all()).await;
    }
    let workflows = Arc::new(WorkflowSet::new(config.workflows.iter().map(
        |(name, wf)| RunnerSettings {
            name: name.clone(),
            plugin: wf.plugin_name(name).to_owned(),
            interval: wf.interval,
            timeout: wf.timeout,
            wake_delay: wf.wake_delay,
            drain_timeout: config.plugins.drain_timeout,
            enabled: wf.enabled,
        },
    )));
    if let (Some(dir), true) = (&config.templates.seed_dir, db_ready.load(Ordering::SeqCst)) {
        crate::templates::seed::seed(&store, dir, &(&config.templates).into()).await;
    }

    let claimer = HostServices::claimer_for(&instance_name);
    // Work this instance's previous process claimed before it died is released now, not at lease end.
    if db_ready.load(Ordering::SeqCst) {
        match store
            .release_claims_of_previous_processes(&instance_name, &claimer)
            .await
        {
            Ok((0, 0)) => {}
            Ok((events, deliveries)) => tracing::warn!(
                events,
                deliveries,
                "released the claims of a previous process of this instance (it did not shut down cleanly)"
            ),
            Err(e) => {
                tracing::error!(error = %e, "could not release the claims of a previous process")
            }
        }
        match store
            .release_webhook_claims_of_previous_processes(&instance_name, &claimer)
            .await
        {
            Ok(0) => {}
            Ok(notifications) => tracing::warn!(
                notifications,
                "released the webhook notifications a previous process of this instance had claimed"
            ),
            Err(e) => tracing::error!(
                error = %e,
                "could not release the webhook claims of a previous process"
            ),
        }
    }

    // Bounces: VERP senders for the engine, the bounce listener, and POST /api/v1/bounces. The signing
    // key is read (or generated) now, so the listener can check tokens from its first connection.
    let bounces = crate::bounces::Bounces::new(&config.bounces, store.clone(), metrics.clone());
    if config.bounces.return_path_domain.is_some()
        && db_ready.load(Ordering::SeqCst)
        && let Err(e) = bounces.signer().await
    {
        tracing::error!(error = %e, "cannot read the bounce signing key");
    }

    // Delivery: the engine sends what the processing workflows hand over; final outcomes wake
    // updateEventsStatus so statuses are copied at once. A control-only instance delivers nothing.
    let delivery = if config.instance.role.executes() {
        let workflows = Arc::clone(&workflows);
        Some(crate::delivery::start(
            &config.channels,
            crate::delivery::DeliverySetup {
                limits: (&config.templates).into(),
                bounces: bounces.clone(),
                quarantine_expiry: config.quarantine.expire_after,
            },
            pipeline.clone(),
            claimer.clone(),
            metrics.clone(),
            move || workflows.wake(crate::workflows::STATUS_WORKFLOW),
            shutdown.subscribe(),
        )?)
    } else {
        None
    };
    // Control: the execution instances to archive and publish to, and what is known of their archives.
    let control = if config.execution_instances.is_empty() {
        None
    } else {
        let instances = Arc::new(ExecutionInstances::new(&config.execution_instances)?);
        let stored = if db_ready.load(Ordering::SeqCst) {
            store.archive_cursors().await.unwrap_or_else(|e| {
                tracing::warn!(error = %e, "could not read the archive cursors");
                Vec::new()
            })
        } else {
            Vec::new()
        };
        let monitor = Arc::new(ArchiveMonitor::new(
            instances.names(),
            &stored,
            metrics.clone(),
        ));
        Some(Arc::new(ControlServices { instances, monitor }))
    };
    let proof_sender = delivery
        .as_ref()
        .map(crate::delivery::DeliveryHandle::proofs);
    let mut services = HostServices::new(
        pipeline,
        claimer,
        delivery,
        control.clone(),
        metrics.clone(),
    );
    // Webhooks: the host's sender for `webhookDelivery`, woken whenever notifications are written.
    if config.instance.role.executes() {
        let sender = crate::webhooks::WebhookSender::new(&config.webhooks)
            .map_err(|e| ServerError::Webhooks(e.to_string()))?;
        services = services.with_webhooks(crate::services::webhooks::WebhookDelivery {
            sender,
            retry_schedule: config.webhooks.retry_schedule.clone(),
        });
        let workflows = Arc::clone(&workflows);
        let store = store.clone();
        let mut shutdown = shutdown.subscribe();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = shutdown.recv() => return,
                    // The store notifies after the commit that wrote them, so the run sees them.
                    () = store.webhooks_notified() => {
                        workflows.wake(crate::workflows::WEBHOOK_WORKFLOW);
                    }
                }
            }
        });
    }
    let runner_context = RunnerContext {
        registry: Arc::clone(&registry),
        services: Arc::new(services),
        metrics: metrics.clone(),
        shutdown_flag: shutdown.flag(),
    };
    workflows.spawn_all(&runner_context, &shutdown);

    // Listeners.
    let api_listener = bind("api", config.server.listen).await?;
    let admin_listener = bind("admin", config.server.admin_listen).await?;
    let api_addr = api_listener.local_addr().unwrap_or(config.server.listen);
    let admin_addr = admin_listener
        .local_addr()
        .unwrap_or(config.server.admin_listen);
    let drain = config.server.shutdown_timeout;
    tokio::spawn(crate::maintenance::run(
        store.clone(),
        config
            .instance
            .role
            .executes()
            .then(|| config.retention.clone()),
        metrics.clone(),
        config.quarantine.expire_after,
        shutdown.subscribe(),
    ));

    // Monitoring: one task refreshes the indicators; the admin API and the console read its snapshot.
    let monitor =
        crate::monitoring::Monitor::new(config.monitoring.clone(), store.clone(), metrics.clone());
    tokio::spawn(Arc::clone(&monitor).run(shutdown.subscribe()));

    // Ingestion: one group-commit writer, on a connection of its own: it never waits for one the workflows
    // hold, and on SQLite its page cache stays warm instead of being re-read after every other
    // connection's write (BENCHMARKS.md). On an SQLite file that connection is a synchronous one driven by
    // the writer's own thread (`store::SqliteIngest`); keyed groups still go through the store's pool. An
    // in-memory SQLite database exists only in its pool, so that one is shared. Each commit wakes the
    // workflow of the queue it fed.
    let ingest_store = if db::is_in_memory_url(&config.database.url) {
        store.clone()
    } else {
        store.with_connection(
            db::connect(&config.database.url, 1, config.database.connect_timeout).await?,
        )
    };
    // The engine's groups of accepted outcomes, on a synchronous connection of their own (SQLite file).
    if let Err(error) = store.open_sqlite_writer(&config.database.url) {
        tracing::warn!(%error, "cannot open the outcome writer's connection to SQLite; recording through the pool");
    }
    let sqlite_ingest = match ingest_store.sqlite_ingest(&config.database.url) {
        Ok(sqlite) => sqlite,
        Err(error) => {
            // The pool may still manage (it retries); ingestion then goes through it, only slower.
            tracing::warn!(%error, "cannot open the ingestion connection to SQLite; ingesting through the pool");
            None
        }
    };
    let ingest = {
        let workflows = Arc::clone(&workflows);
        GroupCommit::start(
            ingest_store,
            sqlite_ingest,
            config.instance.id,
            metrics.clone(),
            move |queues| {
                for queue in queues {
                    workflows.wake_for_queue(*queue);
                }
            },
            shutdown.subscribe(),
        )
        .map_err(ServerError::IngestWriter)?
    };

    let listener_limits = http::ListenerLimits {
        connection: http::connection::ConnectionLimits {
            header_read_timeout: config.server.header_read_timeout,
            idle_timeout: config.server.idle_timeout,
        },
        max_connections: config.server.max_connections,
    };
    // Previews and proofs: delivery's render limits and, on an instance that delivers, its channels.
    let trials = crate::templates::trial::Trials {
        store: store.clone(),
        sender: proof_sender,
        limits: (&config.templates).into(),
    };
    let api = ApiContext {
        store: store.clone(),
        ingest,
        metrics: metrics.clone(),
        api_keys: config.auth.api_keys.clone(),
        limits: ApiLimits {
            max_body_bytes: config.server.max_body_bytes,
            max_batch_events: config.server.max_batch_events,
            max_ctx_bytes: config.server.max_ctx_bytes,
            body_read_timeout: config.server.body_read_timeout,
            render: (&config.templates).into(),
        },
        role: config.instance.role,
        instances: control.as_ref().map(|c| Arc::clone(&c.instances)),
        adobe: crate::soap::AdobeGateway::new(&config.adobe, config.instance.role),
        bounces: bounces.clone(),
        quarantine_expiry: config.quarantine.expire_after,
        trials: trials.clone(),
    };
    // Both listeners share the connection limits, the shutdown signal and the drain time.
    let serve = |listener, name, router| {
        tokio::spawn(http::serve(
            listener,
            name,
            router,
            listener_limits,
            shutdown.subscribe(),
            drain,
        ))
    };
    serve(api_listener, api::LISTENER, api::router(api));
    let admin = AdminContext {
        registry: Arc::clone(&registry),
        workflows: Arc::clone(&workflows),
        store: store.clone(),
        metrics: metrics.clone(),
        db_ready: Arc::clone(&db_ready),
        admin_token: config.auth.admin_token.clone(),
        archive: control.as_ref().map(|c| Arc::clone(&c.monitor)),
        monitor: Arc::clone(&monitor),
        console: Some(crate::console::ConsoleContext {
            store: store.clone(),
            monitor,
            workflows: Arc::clone(&workflows),
            registry: Arc::clone(&registry),
            archive: control.as_ref().map(|c| Arc::clone(&c.monitor)),
            config: config.console.clone(),
            templates: crate::console::ConsoleContext::template_cache((&config.templates).into()),
            trials,
            instances: control.as_ref().map(|c| Arc::clone(&c.instances)),
            max_ctx_bytes: config.server.max_ctx_bytes,
            executes: config.instance.role.executes(),
            quarantine_expiry: config.quarantine.expire_after,
        }),
    };
    serve(admin_listener, admin::LISTENER, admin::router(admin));
    if db_ready.load(Ordering::SeqCst) {
        let announced =
            crate::console::announce_first_run(&store, &config.console, admin_addr).await;
        if let Err(error) = announced {
            tracing::warn!(%error, "cannot prepare the console's first-run link");
        }
    }
    let bounce_addr = if config.instance.role.executes() {
        crate::bounces::listener::start(&config.bounces, bounces.clone(), shutdown.subscribe())
            .await
            .map_err(|(addr, source)| ServerError::Bind {
                what: "bounces",
                addr,
                source,
            })?
    } else {
        None
    };
    let bounce_field = bounce_addr
        .map(|addr| format!(" bounces={addr}"))
        .unwrap_or_default();

    tracing::info!(api = %api_addr, admin = %admin_addr, plugins = %config.plugins.dir.display(), "message-center ready");
    // One machine-readable line on stdout, for supervisors and tests that start the server on port 0.
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(
        stdout,
        "message-center ready api={api_addr} admin={admin_addr}{bounce_field}"
    );
    let _ = stdout.flush();
    drop(stdout);

    wait_for_signal().await?;
    tracing::info!("shutting down: no new connections or runs; waiting for work in flight");
    shutdown.trigger();
    if shutdown.drain(drain).await {
        tracing::info!("shutdown complete");
    } else {
        tracing::warn!(timeout = ?drain, "shutdown timeout reached with work still in flight");
    }
    let _ = std::fs::remove_dir_all(&work_dir);
    Ok(())
}

async fn bind(what: &'static str, addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| ServerError::Bind { what, addr, source })
}

/// `connection`, its statements counted in `mc_db_statements_total`.
fn counted(mut connection: DatabaseConnection, metrics: &Metrics) -> DatabaseConnection {
    let statements = metrics.clone();
    connection.set_metric_callback(move |info| {
        statements.record_db_statement(&info.statement.sql, info.elapsed)
    });
    connection
}

async fn retry_migrations(store: Store, ready: Arc<AtomicBool>, mut shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = shutdown.recv() => return,
            _ = tokio::time::sleep(DB_RETRY) => {}
        }
        match db::migrate(store.connection()).await {
            Ok(()) => {
                tracing::info!("database reachable and migrated");
                ready.store(true, Ordering::SeqCst);
                return;
            }
            Err(e) => tracing::warn!(error = %e, "database still not ready"),
        }
    }
}

#[cfg(unix)]
async fn wait_for_signal() -> Result<(), ServerError> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).map_err(ServerError::Signal)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
    }
    Ok(())
}

#[cfg(not(unix))]
async fn wait_for_signal() -> Result<(), ServerError> {
    tokio::signal::ctrl_c().await.map_err(ServerError::Signal)?;
    Ok(())
}
