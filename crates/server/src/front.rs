//! The front door: accept, ask the gate, then TLS with a client certificate, then HTTP.
//!
//! Our own accept loop (rather than `axum::serve`) because two decisions must come before any
//! TLS work (HIC-S4, HIC-S9, HIC-U1): a foreign, listed or automatically blocked address is
//! dropped at accept, without a handshake; and a failed handshake (no certificate, a revoked
//! one, another CA's, an old protocol) counts toward the address's automatic block. Every
//! connection that gets through carries its [`Peer`] — the client address and the SHA-256
//! fingerprint of the client certificate — into the request's extensions, where the portal
//! binds sessions to it (HX-5).

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kura_gate::{Failure, Gate};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// Who is on the other end of a connection.
#[derive(Clone, Debug)]
pub struct Peer {
    /// The socket's remote address.
    pub addr: SocketAddr,
    /// `sha256:…` of the client certificate (the TLS layer guarantees there is one).
    pub fingerprint: String,
}

/// Counters of the front door, for the operator and the benchmark.
#[derive(Debug, Default)]
pub struct FrontStats {
    /// Connections accepted by the gate.
    pub admitted: AtomicU64,
    /// Connections refused at accept (foreign, listed, blocked).
    pub refused: AtomicU64,
    /// Handshakes that failed.
    pub handshake_failures: AtomicU64,
}

/// Something the front door wants recorded: an address blocked automatically.
#[derive(Clone, Debug)]
pub struct BlockEvent {
    /// The address whose failures tipped the block.
    pub addr: IpAddr,
    /// Until when.
    pub until: SystemTime,
    /// Failures counted.
    pub failures: u32,
    /// The last failure.
    pub last: Failure,
}

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` behind the gate and TLS until `shutdown` resolves. Blocks
/// are sent to `on_block` (the caller records them in the ledger).
pub async fn serve_tls(
    listener: TcpListener,
    gate: Arc<Gate>,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
    stats: Arc<FrontStats>,
    on_block: tokio::sync::mpsc::UnboundedSender<BlockEvent>,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let acceptor = TlsAcceptor::from(tls);
    tokio::pin!(shutdown);
    loop {
        let (tcp, addr) = tokio::select! {
            _ = &mut shutdown => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let verdict = gate.check(addr.ip(), SystemTime::now());
        if !verdict.allowed() {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(addr = %addr.ip(), reason = %verdict.reason(), "refused at accept");
            drop(tcp);
            continue;
        }
        stats.admitted.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        let (acceptor, gate, router, stats, on_block) = (acceptor.clone(), gate.clone(), router.clone(), stats.clone(), on_block.clone());
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(addr = %addr.ip(), "handshake failed: {e}");
                    if let Some(b) = gate.record_failure(addr.ip(), Failure::BadCertificate, SystemTime::now()) {
                        let _ = on_block.send(BlockEvent { addr: addr.ip(), until: b.until, failures: b.failures, last: b.last });
                    }
                    return;
                }
                Err(_) => {
                    stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
                    if let Some(b) = gate.record_failure(addr.ip(), Failure::Scanning, SystemTime::now()) {
                        let _ = on_block.send(BlockEvent { addr: addr.ip(), until: b.until, failures: b.failures, last: b.last });
                    }
                    return;
                }
            };
            let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
                // The verifier makes a certificate mandatory; this cannot happen.
                return;
            };
            let peer = Peer { addr, fingerprint: kura_pki::Fingerprint::of(cert.as_ref()).to_string() };
            let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
                req.extensions_mut().insert(peer.clone());
                let mut router = router.clone();
                async move { tower_service::Service::call(&mut router, req.map(axum::body::Body::new)).await }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .keep_alive(true)
                .header_read_timeout(Duration::from_secs(30))
                .max_buf_size(64 * 1024)
                .serve_connection(TokioIo::new(tls), service);
            if let Err(e) = conn.await {
                tracing::debug!(addr = %addr.ip(), "connection: {e}");
            }
        });
    }
}
