//! `kura serve`: the portal and API listener, the optional operators' listener, and the
//! background work that keeps them current (gate lists, revocations, block records, refusal
//! summaries).

use crate::ServerError;
use crate::actions::Portal;
use crate::front::{BlockEvent, FrontDoor, FrontLimits, FrontStats, serve_tls};
use crate::routes::router;
use crate::web::Listener;
use kura_accounts::{Accounts, Who};
use kura_gate::Gate;
use kura_pki::{RevocationSet, Serial};
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
    /// Caps and deadlines of the front door.
    pub limits: FrontLimits,
    /// Accounts and sessions.
    pub accounts: Accounts,
    /// Datasets of the catalogue.
    pub datasets: Vec<String>,
    /// How often lists and revocations made by other processes are reloaded.
    pub reload_every: Duration,
    /// The research lifecycle (applications, projects), if this server handles it.
    pub research: Option<kura_workflows::Research>,
    /// The projects' workspaces, if this server runs them.
    pub workspaces: Option<kura_workspace::Workspaces>,
    /// What applications may ask for (the data catalogue's columns).
    pub catalogue: kura_workflows::Catalogue,
    /// Files between institutions, if this server handles them.
    pub exchanges: Option<kura_workflows::Exchanges>,
}

/// How long a workspace's worker may stay idle before the server stops it.
pub const WORKSPACE_IDLE: Duration = Duration::from_secs(15 * 60);

/// A running server.
pub struct Running {
    /// The portal listener's address.
    pub addr: SocketAddr,
    /// The operators' listener's address, if open.
    pub operator_addr: Option<SocketAddr>,
    /// Front-door counters.
    pub stats: Arc<FrontStats>,
    /// The front door (to revoke, or to look at open connections).
    pub door: Arc<FrontDoor>,
    accounts: Accounts,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Running {
    /// Stops accepting, waits for the listeners to close, and writes the summaries of the
    /// refusals still being counted.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for t in self.tasks {
            let _ = t.await;
        }
        if let Err(e) = self.accounts.flush_refusals(true).await {
            tracing::error!("recording refusal summaries: {e}");
        }
    }

    /// Waits until the server stops (it runs until [`Running::stop`] or the process ends).
    pub async fn wait(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Reads every revoked certificate into the TLS layer's set; returns whether the set grew.
/// The whole list is read each time rather than what changed since a time, because revocation
/// times come from the clocks of whichever process or node revoked: one clock running ahead must
/// not hide later revocations. The set is only added to (revocation is final), so a reload never
/// undoes a revocation made in this server meanwhile. A list that cannot be read, or a serial in
/// it that does not parse (only an edited or damaged store holds one), is an error, and until a
/// complete reading the set refuses every certificate: the server cannot know which
/// certificate that row revokes.
pub async fn refresh_revocations(accounts: &Accounts, set: &RevocationSet) -> Result<bool, ServerError> {
    let rows = match accounts.revoked_serials().await {
        Ok(rows) => rows,
        Err(e) => {
            // Not read at all (a row that is not text, a failing store): fail closed as well.
            set.set_incomplete(true);
            return Err(ServerError::Revocations(format!("the list cannot be read: {e}")));
        }
    };
    let (mut serials, mut bad) = (Vec::with_capacity(rows.len()), None);
    for s in &rows {
        match Serial::parse(s) {
            Some(serial) => serials.push(serial),
            None => bad = Some(format!("serial '{}' does not parse", s.escape_debug())),
        }
    }
    let grew = set.extend(serials);
    set.set_incomplete(bad.is_some());
    match bad {
        Some(row) => Err(ServerError::Revocations(row)),
        None => Ok(grew),
    }
}

/// Binds the listeners and starts serving.
pub async fn start(s: Settings) -> Result<Running, ServerError> {
    refresh_revocations(&s.accounts, &s.revoked).await?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let (door, mut block_rx) = FrontDoor::new(s.gate.clone(), s.revoked.clone(), s.limits.clone());
    let mut tasks = Vec::new();
    let datasets = Arc::new(s.datasets);
    let catalogue = Arc::new(s.catalogue);
    // Workspace workers idle for a while are stopped (the next request starts one again).
    if let Some(w) = s.workspaces.clone() {
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = stopped.wait_for(|v| *v) => break,
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {
                        let n = w.stop_idle(WORKSPACE_IDLE);
                        if n > 0 {
                            tracing::info!("stopped {n} idle workspace worker(s)");
                        }
                    }
                }
            }
        }));
    }

    let mut listeners = vec![(Listener::Portal, s.listen.clone())];
    if let Some(op) = &s.operator_listen {
        listeners.push((Listener::Operator, op.clone()));
    }
    let mut addrs = Vec::new();
    for (which, addr) in listeners {
        let (listener, local) = crate::bind(&addr).await?;
        addrs.push(local);
        let portal = Portal {
            accounts: s.accounts.clone(),
            door: door.clone(),
            listener: which,
            datasets: datasets.clone(),
            research: s.research.clone(),
            workspaces: s.workspaces.clone(),
            catalogue: catalogue.clone(),
            exchanges: s.exchanges.clone(),
        };
        let mut stopped = stopped.clone();
        let shutdown = async move {
            let _ = stopped.wait_for(|v| *v).await;
        };
        tasks.push(tokio::spawn(serve_tls(listener, door.clone(), s.tls.clone(), router(portal), shutdown)));
        tracing::info!("listening on https://{local} ({which:?})");
    }

    // Automatic blocks go on the record (HIC-S9).
    let accounts = s.accounts.clone();
    let mut stopped1 = stopped.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            let b: BlockEvent = tokio::select! {
                _ = stopped1.wait_for(|v| *v) => return,
                b = block_rx.recv() => match b {
                    Some(b) => b,
                    None => return,
                },
            };
            let until = b.until.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
            let detail = format!("{} failures, last {}; blocked until {}", b.failures, b.last.as_str(), crate::web::time_text(until));
            if let Err(e) = accounts.record_event(&Who::console(), "gate.block", &b.addr.to_string(), "ok", Some(detail)).await {
                tracing::error!("recording a block: {e}");
            }
        }
    }));

    // Lists changed on disk and revocations made by other processes (`kura ca revoke`, other
    // nodes) take effect without a restart, within one interval; open connections check
    // themselves again when either changed. Refusal summaries are written as windows close.
    let (accounts, every, reload_door) = (s.accounts.clone(), s.reload_every, door.clone());
    let exchanges = s.exchanges.clone();
    let mut stopped2 = stopped.clone();
    tasks.push(tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = stopped2.wait_for(|v| *v) => return,
                _ = tokio::time::sleep(every) => {}
            }
            let mut changed = false;
            match reload_door.gate.reload_if_changed() {
                Ok(true) => {
                    tracing::info!("gate lists reloaded");
                    changed = true;
                }
                Ok(false) => {}
                Err(e) => {
                    reload_door.stats.list_errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    tracing::error!("gate lists not reloaded (the previous ones stay in force): {e}");
                }
            }
            let was_incomplete = reload_door.revoked.is_incomplete();
            match refresh_revocations(&accounts, &reload_door.revoked).await {
                Ok(c) => changed |= c,
                Err(e) => tracing::error!("{e}"),
            }
            // Entering the fail-closed state closes open connections too.
            changed |= reload_door.revoked.is_incomplete() && !was_incomplete;
            if changed {
                reload_door.changed();
            }
            if let Err(e) = accounts.flush_refusals(false).await {
                tracing::error!("recording refusal summaries: {e}");
            }
            // Files between institutions past their retention period are deleted on time even
            // when nobody uses the exchange (HX-8).
            if let Some(x) = &exchanges {
                match x.expire().await {
                    Ok(gone) if !gone.is_empty() => tracing::info!("exchange: {} files deleted after their retention period", gone.len()),
                    Ok(_) => {}
                    Err(e) => tracing::error!("exchange retention: {e}"),
                }
            }
        }
    }));
    let Some(&addr) = addrs.first() else {
        return Err(ServerError::Listen { addr: String::new(), source: std::io::Error::other("no portal listener was started") });
    };
    Ok(Running { addr, operator_addr: addrs.get(1).copied(), stats: door.stats.clone(), door, accounts: s.accounts, stop, tasks })
}
