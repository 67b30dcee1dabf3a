//! # kura-server — Kura's network face
//!
//! ネットワークの入口。監査台帳の公開（読み取り専用）と立会人の受付。
//! The HTTP side of the building blocks below it (nothing below this crate knows about HTTP):
//!
//! - [`ledger::tile_routes`]: the ledger's checkpoint, hash tiles and entry bundles, read-only,
//!   at C2SP tlog-tiles paths (HX-8, HX-10, CLD-1). Everything served is signed or hashed by
//!   the log, so any static mirror can serve the same directory and clients verify it.
//! - [`ledger::witness_routes`]: the C2SP tlog-witness `add-checkpoint` endpoint.
//! - [`client`]: the HTTP clients the log uses to reach online witnesses and mirrors.
//!
//! The portal and API listener (TLS with client certificates) build on this crate.

pub mod client;
pub mod ledger;

pub use axum::Router;

use std::net::SocketAddr;

/// Everything that can go wrong in the server crate.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Binding or serving a listener failed.
    #[error("待ち受けできません / cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A peer could not be reached or answered badly.
    #[error("{url}: {detail}")]
    Peer {
        /// The URL asked.
        url: String,
        /// What went wrong.
        detail: String,
    },
    /// A ledger error.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
}

/// Binds `addr` (port 0 picks a free port) and returns the listener with its real address.
pub async fn bind(addr: &str) -> Result<(tokio::net::TcpListener, SocketAddr), ServerError> {
    let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| ServerError::Listen { addr: addr.into(), source: e })?;
    let local = listener.local_addr().map_err(|e| ServerError::Listen { addr: addr.into(), source: e })?;
    Ok((listener, local))
}

/// Serves `router` on `listener` until `shutdown` resolves.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let addr = listener.local_addr().map(|a| a.to_string()).unwrap_or_default();
    axum::serve(listener, router).with_graceful_shutdown(shutdown).await.map_err(|e| ServerError::Listen { addr, source: e })
}
