//! The bounce SMTP listener's accept loop: at most `max_connections` sessions at once (one more is
//! answered `421` and closed), each on its own task; on shutdown it stops accepting, and sessions close
//! at their next command with `421`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Bounces;
use super::session::{Session, SessionLimits};
use crate::config::BouncesConfig;
use crate::shutdown::Shutdown;

/// Binds `[bounces] smtp_listen` (when set) and serves it until shutdown; returns the bound address.
pub async fn start(
    config: &BouncesConfig,
    bounces: Bounces,
    shutdown: Shutdown,
) -> Result<Option<SocketAddr>, (SocketAddr, std::io::Error)> {
    let (Some(addr), Some(domain)) = (config.smtp_listen, config.domain()) else {
        return Ok(None);
    };
    let listener = TcpListener::bind(addr).await.map_err(|e| (addr, e))?;
    let bound = listener.local_addr().unwrap_or(addr);
    let limits = SessionLimits {
        hostname: config.hostname.clone().unwrap_or_else(|| domain.clone()),
        domain,
        max_message_bytes: config.max_message_bytes,
        max_recipients: config.max_recipients,
        command_timeout: config.command_timeout,
        data_timeout: config.data_timeout,
    };
    tokio::spawn(serve(
        listener,
        Arc::new(limits),
        config.max_connections,
        bounces,
        shutdown,
    ));
    Ok(Some(bound))
}

async fn serve(
    listener: TcpListener,
    limits: Arc<SessionLimits>,
    max_connections: usize,
    bounces: Bounces,
    mut shutdown: Shutdown,
) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (mut stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(listener = "bounces", error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.recv() => return,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            bounces
                .metrics()
                .record_bounce_refusal("too_many_connections");
            tracing::warn!(%peer, "bounce listener: too many connections ([bounces] max_connections)");
            tokio::spawn(async move {
                let _ = tokio::time::timeout(
                    Duration::from_secs(1),
                    stream.write_all(b"421 4.3.2 too many connections, try again later\r\n"),
                )
                .await;
            });
            continue;
        };
        let _ = stream.set_nodelay(true);
        let session = Session::new(Arc::clone(&limits), bounces.clone(), peer);
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            session.run(stream, shutdown).await;
            drop(slot);
        });
    }
}
