//! # kura-server — Kura's network face
//!
//! ネットワークの入口。ポータルとAPI（クライアント証明書必須のTLS）、監査台帳の公開（読み取り専用）、
//! 立会人の受付。
//! The HTTP side of the building blocks below it (nothing below this crate knows about HTTP):
//!
//! - [`ledger::tile_routes`]: the ledger's checkpoint, hash tiles and entry bundles, read-only,
//!   at C2SP tlog-tiles paths (HX-8, HX-10, CLD-1). Everything served is signed or hashed by
//!   the log, so any static mirror can serve the same directory and clients verify it.
//! - [`ledger::witness_routes`]: the C2SP tlog-witness `add-checkpoint` endpoint.
//! - [`client`]: the HTTP clients the log uses to reach online witnesses and mirrors.
//!
//! - [`front`]: the accept loop — the gate before TLS, mandatory client certificates, automatic
//!   blocking of failed handshakes (NET-1, HX-5, HIC-S4, HIC-S9, HIC-S12);
//! - the web layer: [`routes`] (one route table that builds the router, with the roles of every
//!   route — deny by default — sessions bound to the certificate, CSRF, security headers, the
//!   OpenAPI document), [`portal`] and [`api`] (the handlers of the pages and of the JSON API),
//!   [`actions`] (what both do), [`pages`] (the templates) and [`web`] (what they all share:
//!   cookies, language, request context, the one error type) (HIC-S3, HIC-U2, HIC-U3, HX-6,
//!   HX-9, HX-11). Within it the arrows point one way: routes → portal, api → actions, pages →
//!   web;
//! - [`serve`]: both listeners and their background work, as `kura serve` runs them.

#![deny(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing))]

pub mod actions;
pub mod airlock_api;
pub mod airlock_pages;
pub mod api;
pub mod client;
pub mod exchange_api;
pub mod exchange_pages;
pub mod front;
pub mod ledger;
pub mod pages;
pub mod portal;
pub mod research_api;
pub mod research_pages;
pub mod routes;
pub mod serve;
pub mod web;

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
    /// The revoked certificates cannot all be read (a serial that does not parse, a row or a
    /// store that cannot be read). Every client certificate is refused until they can (fail
    /// closed).
    #[error(
        "失効リストが読めません。読めるようになるまで全てのクライアント証明書を拒否します / the revoked certificates cannot all be read ({0}); every client certificate is refused until the store is fixed"
    )]
    Revocations(String),
    /// A ledger error.
    #[error(transparent)]
    Ledger(#[from] kura_ledger::LedgerError),
    /// Log data that does not parse or verify (a checkpoint, proof, note or tile).
    #[error(transparent)]
    Tlog(#[from] kura_tlog::TlogError),
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
