//! The front door: accept, ask the gate, then TLS with a client certificate, then HTTP.
//!
//! Our own accept loop (rather than `axum::serve`) because two decisions must come before any
//! TLS work (HIC-S4, HIC-S9, HIC-U1): a foreign, listed or automatically blocked address is
//! dropped at accept, without a handshake; and a failed handshake (no certificate, a revoked
//! one, another CA's, an old protocol) counts toward the address's automatic block. Every
//! connection that gets through carries its [`Peer`] — the client address and the SHA-256
//! fingerprint of the client certificate — into the request's extensions, where the portal
//! binds sessions to it (HX-5).
//!
//! What is decided at accept is decided again while a connection lives ([`FrontDoor`]):
//!
//! - every request is refused (and the connection closed) once the address is blocked or
//!   listed, or the certificate is revoked or past its end — and when any of those changes,
//!   every open connection checks itself at once rather than at its next request;
//! - connections are capped in total and per address (per /64 for IPv6), so one address
//!   cannot hold the door open;
//! - the handshake, the request head (and an idle keep-alive connection), the request body and
//!   the whole request each have a deadline ([`FrontLimits`]).

use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use kura_gate::autoblock::Subject;
use kura_gate::{Failure, Gate};
use kura_pki::{Fingerprint, RevocationSet, Serial};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

pub use crate::web::Peer;

/// Counters of the front door, for the operator and the benchmark.
#[derive(Debug, Default)]
pub struct FrontStats {
    /// Connections accepted by the gate.
    pub admitted: AtomicU64,
    /// Connections refused at accept (foreign, listed, blocked, over a connection cap).
    pub refused: AtomicU64,
    /// Handshakes that failed.
    pub handshake_failures: AtomicU64,
    /// Reloads of the gate's lists that failed (the lists in force stay as they were).
    pub list_errors: AtomicU64,
    /// Open connections closed because their address was blocked or their certificate
    /// revoked or expired.
    pub closed: AtomicU64,
    /// Requests that missed a deadline (body or whole request).
    pub deadlines: AtomicU64,
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

/// Caps and deadlines of the front door.
#[derive(Clone, Debug)]
pub struct FrontLimits {
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections from one address (one /64 for IPv6).
    pub max_per_address: usize,
    /// To finish the TLS handshake.
    pub handshake: Duration,
    /// To send a request's head; also how long a kept-alive connection may sit idle.
    pub header: Duration,
    /// To send a request's body.
    pub body: Duration,
    /// For a whole request, from its head to the end of the answer.
    pub request: Duration,
    /// How long a write to the client may make no progress (a client that stops reading its
    /// answers cannot hold the connection).
    pub write_stall: Duration,
}

impl Default for FrontLimits {
    fn default() -> Self {
        FrontLimits {
            max_connections: 4096,
            max_per_address: 64,
            handshake: Duration::from_secs(10),
            header: Duration::from_secs(15),
            body: Duration::from_secs(10),
            request: Duration::from_secs(30),
            write_stall: Duration::from_secs(15),
        }
    }
}

#[derive(Default)]
struct OpenConnections {
    total: usize,
    per: HashMap<Subject, usize>,
}

/// What every listener of a server shares: the gate, the revocation set, the caps, and a
/// signal that tells open connections to check themselves again.
pub struct FrontDoor {
    /// Who may connect.
    pub gate: Arc<Gate>,
    /// Revoked client certificates, checked on every handshake and every request.
    pub revoked: Arc<RevocationSet>,
    /// Counters.
    pub stats: Arc<FrontStats>,
    /// Caps and deadlines.
    pub limits: FrontLimits,
    changes: watch::Sender<u64>,
    blocks: mpsc::UnboundedSender<BlockEvent>,
    open: Mutex<OpenConnections>,
}

/// A connection's place under the caps; given back when the connection ends.
struct Slot {
    door: Arc<FrontDoor>,
    subject: Subject,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.door.open.lock().unwrap_or_else(|e| e.into_inner());
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.per.get_mut(&self.subject) {
            *n -= 1;
            if *n == 0 {
                open.per.remove(&self.subject);
            }
        }
    }
}

/// Why a connection or request may not be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The address is listed, blocked or foreign.
    Address,
    /// The certificate is revoked or past its end.
    Certificate,
}

impl FrontDoor {
    /// The front door over `gate` and `revoked`; the receiver gets every automatic block (the
    /// server records them in the ledger).
    pub fn new(gate: Arc<Gate>, revoked: Arc<RevocationSet>, limits: FrontLimits) -> (Arc<FrontDoor>, mpsc::UnboundedReceiver<BlockEvent>) {
        let (blocks, rx) = mpsc::unbounded_channel();
        let (changes, _) = watch::channel(0);
        let door = FrontDoor {
            gate,
            revoked,
            stats: Arc::new(FrontStats::default()),
            limits,
            changes,
            blocks,
            open: Mutex::new(OpenConnections::default()),
        };
        (Arc::new(door), rx)
    }

    /// Counts a failure of `addr` toward its automatic block (HIC-S9). When this failure
    /// blocks the address, the block is sent for the record and every open connection from
    /// it is closed.
    pub fn failure(&self, addr: IpAddr, failure: Failure) {
        if let Some(b) = self.gate.record_failure(addr, failure, SystemTime::now()) {
            tracing::warn!(addr = %addr, failures = b.failures, last = failure.as_str(), "address blocked automatically");
            let _ = self.blocks.send(BlockEvent { addr, until: b.until, failures: b.failures, last: b.last });
            self.changed();
        }
    }

    /// Something that decides who may stay connected changed (a block, reloaded lists, a
    /// revocation): every open connection checks itself again now.
    pub fn changed(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Revokes certificates in this server at once: refused from the next handshake, and open
    /// connections presenting them are closed (revocations made through this server; those of
    /// other processes arrive with the next reload).
    pub fn revoke(&self, serials: &[String]) {
        let mut any = false;
        for s in serials {
            match Serial::parse(s) {
                Some(serial) => any |= self.revoked.revoke(serial),
                None => {
                    // Fail closed until a reload reads a list that parses (see refresh_revocations).
                    tracing::error!(serial = %s.escape_debug(), "a revoked certificate's serial does not parse: every certificate is refused until the row is fixed");
                    self.revoked.set_incomplete(true);
                    any = true;
                }
            }
        }
        if any {
            self.changed();
        }
    }

    /// Whether a connection from `addr` presenting `peer`'s certificate may be served now.
    pub fn admits(&self, addr: IpAddr, peer: &Peer, now: SystemTime) -> Result<(), Refusal> {
        if !self.gate.check(addr, now).allowed() {
            return Err(Refusal::Address);
        }
        let secs = now.duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        if self.revoked.is_revoked(&peer.serial) || secs >= peer.not_after {
            return Err(Refusal::Certificate);
        }
        Ok(())
    }

    /// A place under the caps for a connection from `addr`, or `None` when it is full.
    fn reserve(self: &Arc<Self>, addr: IpAddr) -> Option<Slot> {
        let subject = Subject::of(addr);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let here = open.per.get(&subject).copied().unwrap_or(0);
        if open.total >= self.limits.max_connections || here >= self.limits.max_per_address {
            return None;
        }
        open.total += 1;
        open.per.insert(subject, here + 1);
        Some(Slot { door: self.clone(), subject })
    }

    /// Open connections now (all, and from `addr`'s subject).
    pub fn open_connections(&self, addr: IpAddr) -> (usize, usize) {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        (open.total, open.per.get(&Subject::of(addr)).copied().unwrap_or(0))
    }
}

/// The answer to a request refused by the front door itself; the connection closes after it.
fn refused(status: hyper::StatusCode, ja: &str, en: &str) -> axum::response::Response {
    let mut res = crate::pages::error(crate::web::Lang::Ja, status, ja, en);
    crate::web::protect(res.headers_mut());
    res.headers_mut().insert(hyper::header::CONNECTION, hyper::header::HeaderValue::from_static("close"));
    res
}

/// Serves `router` on `listener` behind the gate and TLS until `shutdown` resolves.
pub async fn serve_tls(
    listener: TcpListener,
    door: Arc<FrontDoor>,
    tls: Arc<rustls::ServerConfig>,
    router: axum::Router,
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
        let verdict = door.gate.check(addr.ip(), SystemTime::now());
        if !verdict.allowed() {
            door.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(addr = %addr.ip(), reason = %verdict.reason(), "refused at accept");
            continue;
        }
        let Some(slot) = door.reserve(addr.ip()) else {
            door.stats.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(addr = %addr.ip(), "refused at accept: too many connections");
            continue;
        };
        door.stats.admitted.fetch_add(1, Ordering::Relaxed);
        let _ = tcp.set_nodelay(true);
        tokio::spawn(connection(tcp, addr, slot, acceptor.clone(), router.clone()));
    }
}

/// One connection: the handshake, then HTTP until the client leaves, a deadline passes, or
/// the address or certificate may no longer be served.
async fn connection(tcp: tokio::net::TcpStream, addr: SocketAddr, slot: Slot, acceptor: TlsAcceptor, router: axum::Router) {
    let door = slot.door.clone();
    let tls = match tokio::time::timeout(door.limits.handshake, acceptor.accept(tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(e)) => {
            door.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(addr = %addr.ip(), "handshake failed: {e}");
            door.failure(addr.ip(), handshake_failure(&e));
            return;
        }
        Err(_) => {
            // A certificate picker left open counts no more than a page's image would.
            door.stats.handshake_failures.fetch_add(1, Ordering::Relaxed);
            door.failure(addr.ip(), Failure::NoCertificate);
            return;
        }
    };
    let Some(cert) = tls.get_ref().1.peer_certificates().and_then(|c| c.first()) else {
        // The verifier makes a certificate mandatory; this cannot happen.
        return;
    };
    let (Some(not_after), Some(serial)) = (kura_pki::tls::not_after(cert.as_ref()), Serial::of_der(cert.as_ref())) else {
        // The verifier parsed it; this cannot happen either.
        return;
    };
    let peer = Peer { addr, fingerprint: Fingerprint::of(cert.as_ref()).to_string(), serial, not_after };
    let service_door = door.clone();
    let service_peer = peer.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        let door = service_door.clone();
        let peer = service_peer.clone();
        let mut router = router.clone();
        async move {
            match door.admits(peer.addr.ip(), &peer, SystemTime::now()) {
                Ok(()) => {}
                Err(why) => {
                    if why == Refusal::Certificate {
                        // Revoked or expired while the connection was open: as at a handshake.
                        door.failure(peer.addr.ip(), Failure::StaleCertificate);
                    }
                    return Ok(refused(
                        hyper::StatusCode::FORBIDDEN,
                        "この接続はもう使えません（証明書の失効・期限切れ、または接続元の遮断）",
                        "this connection may no longer be used: the certificate is revoked or expired, or the address is blocked",
                    ));
                }
            }
            req.extensions_mut().insert(peer);
            let call = tower_service::Service::call(&mut router, req.map(axum::body::Body::new));
            match tokio::time::timeout(door.limits.request, call).await {
                Ok(res) => res,
                Err(_) => {
                    door.stats.deadlines.fetch_add(1, Ordering::Relaxed);
                    Ok(refused(
                        hyper::StatusCode::REQUEST_TIMEOUT,
                        "要求が時間内に完了しませんでした",
                        "the request did not complete in time",
                    ))
                }
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive(true)
        .header_read_timeout(door.limits.header)
        .max_buf_size(64 * 1024)
        .serve_connection(TokioIo::new(WriteDeadline::new(tls, door.limits.write_stall)), service);
    tokio::pin!(conn);
    let mut changes = door.changes.subscribe();
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(addr = %addr.ip(), "connection: {e}");
                }
                break;
            }
            c = changes.changed() => {
                if c.is_err() {
                    // The server is going away; finish what is in flight.
                    let _ = conn.as_mut().await;
                    break;
                }
                if door.admits(addr.ip(), &peer, SystemTime::now()).is_err() {
                    door.stats.closed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(addr = %addr.ip(), "open connection closed: address blocked or certificate revoked");
                    break;
                }
            }
        }
    }
    drop(slot);
}

/// What a failed handshake counts as. Toward a block ([`Failure::BadCertificate`]): a client
/// certificate presented and rejected as not Kura's (another CA, a bad signature or encoding),
/// or a handshake broken as no browser breaks one (`PeerMisbehaved`). Toward none: what any web
/// page can make a visitor's browser do — no certificate ([`Failure::NoCertificate`]: none
/// sent, a browser that does not trust Kura's CA and aborts, plain HTTP on the TLS port, a
/// connection closed or left idle before the handshake was done) or an expired or revoked
/// certificate of Kura's CA still installed ([`Failure::StaleCertificate`]).
fn handshake_failure(e: &std::io::Error) -> Failure {
    use rustls::CertificateError as C;
    match e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
        Some(rustls::Error::InvalidCertificate(C::Expired | C::ExpiredContext { .. } | C::Revoked)) => Failure::StaleCertificate,
        Some(rustls::Error::InvalidCertificate(_) | rustls::Error::PeerMisbehaved(_)) => Failure::BadCertificate,
        _ => Failure::NoCertificate,
    }
}

/// A connection whose writes may not stall: a write (or flush) that makes no progress for
/// `limit` fails, which closes the connection.
struct WriteDeadline<T> {
    inner: T,
    limit: Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteDeadline<T> {
    fn new(inner: T, limit: Duration) -> Self {
        WriteDeadline { inner, limit, stalled: None }
    }

    /// `progress` is the inner write's answer: on `Pending` the stall clock runs (and fails the
    /// write once it passes the limit), on anything else it stops.
    fn watch<R>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        progress: std::task::Poll<std::io::Result<R>>,
    ) -> std::task::Poll<std::io::Result<R>> {
        use std::future::Future;
        use std::task::Poll;
        match progress {
            Poll::Pending => {
                let limit = self.limit;
                let clock = self.stalled.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                if clock.as_mut().poll(cx).is_ready() {
                    self.stalled = None;
                    return Poll::Ready(Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading")));
                }
                Poll::Pending
            }
            done => {
                self.stalled = None;
                done
            }
        }
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let progress = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.watch(cx, progress)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let progress = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.watch(cx, progress)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let progress = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.watch(cx, progress)
    }

    fn poll_shutdown(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        let progress = std::pin::Pin::new(&mut self.inner).poll_shutdown(cx);
        self.watch(cx, progress)
    }
}
