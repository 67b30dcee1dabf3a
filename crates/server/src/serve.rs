//! `kura serve`: the portal and API listener, the optional operators' listener, and the
//! background work that keeps them current (gate lists, revocations, block records).

use crate::ServerError;
use crate::front::{BlockEvent, FrontStats, serve_tls};
use crate::portal::{Listener, Portal, router};
use kura_accounts::{Accounts, Who};
use kura_gate::Gate;
use kura_pki::{Fingerprint, RevocationSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// What a server needs.
pub struct Settings {
    /// The portal and API listener, `HOST:PORT` (port 0 picks a free one).
    pub listen: String,
    /// The operators' listener; `None` (the default) keeps it closed.
    pub operator_listen: Option<String>,
    /// TLS (client certificates mandatory), from [`kura_pki::tls::server_config`].
    pub tls: Arc<rustls::ServerConfig>,
    /// The revocation set the TLS verifier consults; refreshed from the store.
    pub revoked: Arc<RevocationSet>,
    /// Who may connect.
    pub gate: Arc<Gate>,
    /// Accounts and sessions.
    pub accounts: Accounts,
    /// Datasets of the catalogue.
    pub datasets: Vec<String>,
    /// How often lists and revocations are reloaded.
    pub reload_every: Duration,
}

/// A running server.
pub struct Running {
    /// The portal listener's address.
    pub addr: SocketAddr,
    /// The operators' listener's address, if open.
    pub operator_addr: Option<SocketAddr>,
    /// Front-door counters.
    pub stats: Arc<FrontStats>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting and waits for the listeners to close.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
    }

    /// Waits until the server stops (it runs until [`Running::stop`] or the process ends).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Loads the store's revoked fingerprints into the TLS layer's set.
pub async fn refresh_revocations(accounts: &Accounts, set: &RevocationSet) -> Result<usize, ServerError> {
    let fps = accounts.revoked_fingerprints().await.map_err(|e| ServerError::Peer { url: "revocations".into(), detail: e.to_string() })?;
    let parsed: Vec<Fingerprint> = fps.iter().filter_map(|f| Fingerprint::parse(f)).collect();
    let n = parsed.len();
    set.replace(parsed);
    Ok(n)
}

/// Binds the listeners and starts serving.
pub async fn start(s: Settings) -> Result<Running, ServerError> {
    refresh_revocations(&s.accounts, &s.revoked).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stats = Arc::new(FrontStats::default());
    let (block_tx, mut block_rx) = tokio::sync::mpsc::unbounded_channel::<BlockEvent>();
    let mut tasks = Vec::new();
    let datasets = Arc::new(s.datasets);

    let mut listeners = vec![(Listener::Portal, s.listen.clone())];
    if let Some(op) = &s.operator_listen {
        listeners.push((Listener::Operator, op.clone()));
    }
    let mut addrs = Vec::new();
    for (which, addr) in listeners {
        let (listener, local) = crate::bind(&addr).await?;
        addrs.push(local);
        let portal = Portal { accounts: s.accounts.clone(), gate: s.gate.clone(), listener: which, datasets: datasets.clone() };
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|v| *v).await;
        };
        tasks.push(tokio::spawn(serve_tls(
            listener,
            s.gate.clone(),
            s.tls.clone(),
            router(portal),
            stats.clone(),
            block_tx.clone(),
            shutdown,
        )));
        tracing::info!("listening on https://{local} ({which:?})");
    }

    // Automatic blocks go on the record (HIC-S9).
    let accounts = s.accounts.clone();
    let mut stopped1 = stopped.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let b = tokio::select! {
                _ = stopped1.wait_for(|v| *v) => return,
                b = block_rx.recv() => match b {
                    Some(b) => b,
                    None => return,
                },
            };
            let until = b.until.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            let detail = format!("{} failures, last {}; blocked until {}", b.failures, b.last.as_str(), crate::api::time_text(until));
            if let Err(e) = accounts.record_event(&Who::console(), "gate.block", &b.addr.to_string(), "ok", Some(detail)).await {
                tracing::error!("recording a block: {e}");
            }
        }
    }));

    // Lists changed on disk and revocations made elsewhere (`kura ca revoke`) take effect
    // without a restart.
    let (gate, accounts, revoked, every) = (s.gate.clone(), s.accounts.clone(), s.revoked.clone(), s.reload_every);
    let mut stopped2 = stopped.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped2.wait_for(|v| *v) => return,
                _ = tokio::time::sleep(every) => {}
            }
            match gate.reload_if_changed() {
                Ok(true) => tracing::info!("gate lists reloaded"),
                Ok(false) => {}
                Err(e) => tracing::error!("gate lists not reloaded (the previous ones stay in force): {e}"),
            }
            if let Err(e) = refresh_revocations(&accounts, &revoked).await {
                tracing::error!("{e}");
            }
        }
    }));
    drop(block_tx);
    Ok(Running { addr: addrs[0], operator_addr: addrs.get(1).copied(), stats, stop, tasks })
}
