//! What the front-door tests share: a world of users, certificates and a running server on
//! random ports with real TLS; a keep-alive HTTPS client with a cookie jar; conditions waited
//! for with a deadline.
#![allow(dead_code)]

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kura_accounts::totp;
use kura_accounts::{Accounts, HashCost, NewUser, Role, Who};
pub use kura_app::config::ServerConfig;
use kura_app::front::Listeners;
use kura_app::{App, Options};
use kura_gate::AutoBlockPolicy;
use kura_ledger::entry::Entry;
use kura_ledger::store::LedgerStore;
use kura_pki::{Ca, Issued, Subject};
use kura_server::serve::{Running, start};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub const PW: &str = "kaki-no-tane umbrella 83 orbit";

/// 127.0.0.0/25 is "Japan", 127.0.0.128/25 "the United States"; 127.0.0.1 is internal.
pub const GEO: &str = "2|apnic|20261122|2|19830613|20261121|+1000\n\
                   apnic|JP|ipv4|127.0.0.0|128|20000101|allocated\n\
                   arin|US|ipv4|127.0.0.128|128|20000101|allocated\n";

pub struct World {
    pub _dir: tempfile::TempDir,
    pub dir: std::path::PathBuf,
    pub ca: Ca,
    pub accounts: Accounts,
    pub server: Option<Running>,
    pub addr: SocketAddr,
    pub op_addr: SocketAddr,
    pub certs: HashMap<String, Issued>,
}

impl World {
    pub fn cert(&self, name: &str) -> &Issued {
        &self.certs[name]
    }
}

pub fn tls_client(ca: &Ca, cert: Option<&Issued>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca.cert_der().clone()).unwrap();
    let b = rustls::ClientConfig::builder_with_provider(kura_pki::tls::provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots);
    let mut c = match cert {
        Some(i) => b
            .with_client_auth_cert(vec![CertificateDer::from(i.cert_der.clone())], PrivateKeyDer::Pkcs8(i.key_der.to_vec().into()))
            .unwrap(),
        None => b.with_no_client_auth(),
    };
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    Arc::new(c)
}

/// A TCP connection from `from` (a 127.x address) to `to`.
pub async fn tcp_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

/// A TLS handshake from `from`; Ok if the server accepted it and answers HTTP.
pub async fn handshake(w: &World, from: IpAddr, cert: Option<&Issued>) -> Result<Client, String> {
    Client::connect(w, w.addr, from, cert).await
}

/// A keep-alive HTTPS client with a cookie jar.
pub struct Client {
    pub send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    pub cookies: HashMap<String, String>,
    pub set_cookies: Vec<String>,
}

pub struct Reply {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub body: String,
}

impl Reply {
    pub fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

pub fn field<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("'{start}' not in page: {html}")) + start.len();
    let j = html[i..].find(end).unwrap() + i;
    &html[i..j]
}

impl Client {
    pub async fn connect(w: &World, to: SocketAddr, from: IpAddr, cert: Option<&Issued>) -> Result<Client, String> {
        Client::connect_with(tls_client(&w.ca, cert), to, from).await.map(|(c, _)| c)
    }

    /// Connects with a given client configuration (one that keeps sessions for resumption,
    /// say); also says whether the handshake was a full one or a resumption.
    pub async fn connect_with(
        config: Arc<rustls::ClientConfig>,
        to: SocketAddr,
        from: IpAddr,
    ) -> Result<(Client, Option<rustls::HandshakeKind>), String> {
        let tcp = tcp_from(from, to).await.map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(config);
        let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| format!("handshake: {e}"))?;
        let kind = tls.get_ref().1.handshake_kind();
        // With TLS 1.3 a refused client certificate shows on the first read, not the handshake.
        use tokio::io::AsyncWriteExt;
        tls.flush().await.map_err(|e| e.to_string())?;
        let (send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let mut c = Client { send, cookies: HashMap::new(), set_cookies: Vec::new() };
        // Prove the server talks to us.
        let r = c.get("/static/kura.css").await?;
        if r.status != 200 {
            return Err(format!("status {}", r.status));
        }
        Ok((c, kind))
    }

    pub async fn request(
        &mut self,
        method: &str,
        path: &str,
        body: Option<(String, &str)>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, String> {
        let cookie: String = self.cookies.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ");
        let mut b = hyper::Request::builder().method(method).uri(path).header("host", "localhost");
        if !cookie.is_empty() {
            b = b.header("cookie", cookie);
        }
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let body = match body {
            Some((text, ctype)) => {
                b = b.header("content-type", ctype);
                Bytes::from(text)
            }
            None => Bytes::new(),
        };
        self.send.ready().await.map_err(|e| e.to_string())?;
        let res = self.send.send_request(b.body(Full::new(body)).unwrap()).await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        for sc in headers.get_all("set-cookie") {
            let sc = sc.to_str().unwrap().to_string();
            let (kv, _) = sc.split_once(';').unwrap_or((&sc, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if v.is_empty() {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_string(), v.to_string());
            }
            self.set_cookies.push(sc);
        }
        let body = String::from_utf8_lossy(&res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes()).into_owned();
        Ok(Reply { status, headers, body })
    }

    /// A GET with one header given as raw bytes (which need not be text).
    pub async fn get_with_raw_header(&mut self, path: &str, name: &str, value: &[u8]) -> Result<Reply, String> {
        let req = hyper::Request::builder()
            .method("GET")
            .uri(path)
            .header("host", "localhost")
            .header(name, hyper::header::HeaderValue::from_bytes(value).map_err(|e| e.to_string())?)
            .body(Full::new(Bytes::new()))
            .unwrap();
        self.send.ready().await.map_err(|e| e.to_string())?;
        let res = self.send.send_request(req).await.map_err(|e| e.to_string())?;
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let body = String::from_utf8_lossy(&res.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes()).into_owned();
        Ok(Reply { status, headers, body })
    }

    pub async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.request("GET", path, None, &[]).await
    }

    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.request("POST", path, Some((body, "application/x-www-form-urlencoded")), &[]).await.unwrap()
    }

    /// Password step; returns the reply to the POST.
    pub async fn password(&mut self, login: &str, password: &str) -> Reply {
        let page = self.get("/login").await.unwrap();
        let csrf = field(&page.body, "name=\"csrf\" value=\"", "\"").to_string();
        self.post("/login", &[("csrf", &csrf), ("login", login), ("password", password)]).await
    }

    pub fn csrf_of(page: &Reply) -> String {
        field(&page.body, "name=\"csrf\" value=\"", "\"").to_string()
    }
}

pub fn code(w: &World, secret: &[u8]) -> String {
    let step = (w.accounts.clock().now() / totp::STEP as i64) as u64;
    format!("{:06}", totp::code_at_step(secret, step, totp::DIGITS))
}

/// Signs in with enrolment; returns the TOTP secret.
pub async fn sign_in_first_time(w: &World, c: &mut Client, login: &str) -> Vec<u8> {
    let r = c.password(login, PW).await;
    assert_eq!((r.status, r.location()), (303, "/login/enrol"), "{}", r.body);
    let page = c.get("/login/enrol").await.unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<svg"), "the QR code is inline SVG");
    let secret = totp::base32_decode(field(&page.body, "<code id=\"secret\">", "<")).unwrap();
    let r = c.post("/login/enrol", &[("csrf", &Client::csrf_of(&page)), ("code", &code(w, &secret))]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body.matches("<li>").count(), 10, "ten recovery codes");
    secret
}

/// Signs in an enrolled user; returns the reply after the second factor.
pub async fn sign_in(w: &World, c: &mut Client, login: &str, secret: &[u8]) -> Reply {
    let r = c.password(login, PW).await;
    assert_eq!((r.status, r.location()), (303, "/login/second"), "{}", r.body);
    let page = c.get("/login/second").await.unwrap();
    w.accounts.clock().advance(30);
    c.post("/login/second", &[("csrf", &Client::csrf_of(&page)), ("code", &code(w, secret))]).await
}

pub async fn world(db: kura_db::Db, autoblock: AutoBlockPolicy, extra: impl FnOnce(&mut ServerConfig)) -> World {
    world_with(db, autoblock, kura_server::front::FrontLimits::default(), extra).await
}

/// A world whose front door has the given caps and deadlines. It is composed by the composition
/// root, `kura-app`, exactly as `kura serve` composes it (home, CA, server certificates issued
/// ahead, ledger, accounts, gate from `[server]`), with what a test needs set explicitly: the
/// cheap password hash, the database under test, `[server]` settings in code, the front door's
/// limits and a fast reload.
pub async fn world_with(
    db: kura_db::Db,
    autoblock: AutoBlockPolicy,
    limits: kura_server::front::FrontLimits,
    extra: impl FnOnce(&mut ServerConfig),
) -> World {
    world_adjusted(db, autoblock, limits, extra, |_, _| {}).await
}

/// [`world_with`], with the composed server settings adjusted by `adjust` before the server
/// starts (data in the home, the workspaces' worker program).
pub async fn world_adjusted(
    db: kura_db::Db,
    autoblock: AutoBlockPolicy,
    limits: kura_server::front::FrontLimits,
    extra: impl FnOnce(&mut ServerConfig),
    adjust: impl FnOnce(&App, &mut kura_server::serve::Settings),
) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let mut app = App::init(&root.join("home"), Options { hash_cost: HashCost::TEST }).unwrap().with_db(db);
    std::fs::write(root.join("geo.txt"), GEO).unwrap();
    {
        let c = &mut app.config_mut().server;
        c.geo_files = vec![root.join("geo.txt").display().to_string()];
        c.autoblock_threshold = autoblock.threshold;
        c.autoblock_window_secs = autoblock.window.as_secs();
        c.autoblock_secs = autoblock.block_for.as_secs();
        extra(c);
    }
    let ca = app.init_ca("Kura Test CA").unwrap();
    app.issue_server_certs(&ca, 30).unwrap();
    let mut settings =
        app.server_settings(Listeners { listen: Some("127.0.0.1:0".into()), operator_listen: Some("127.0.0.1:0".into()) }).await.unwrap();
    settings.limits = limits;
    settings.datasets = vec!["ndb".into()];
    settings.reload_every = Duration::from_millis(200);
    adjust(&app, &mut settings);
    let accounts = settings.accounts.clone();
    let op = Who::console();
    accounts.add_institution(&op, "1310000001", "蔵大学病院").await.unwrap();
    accounts.add_institution(&op, "9900000001", "Other").await.unwrap();
    let mut certs = HashMap::new();
    for (login, role, inst) in [
        ("tanaka.h", Role::Researcher, "1310000001"),
        ("cust1", Role::Custodian, "1310000001"),
        ("rev1", Role::Reviewer, "1310000001"),
        ("prov1", Role::Provider, "9900000001"),
        ("op1", Role::Operator, "1310000001"),
        ("aud1", Role::Auditor, "1310000001"),
    ] {
        accounts
            .add_user(&op, &NewUser { login: login.into(), institution: inst.into(), role, name: String::new() }, Some(PW))
            .await
            .unwrap();
        for suffix in ["", "#2"] {
            let i = ca.issue(&Subject::User { login: login.into(), institution: inst.into() }, 30).unwrap();
            accounts.register_certificate(&op, &i.fingerprint.to_string(), &i.serial, Some(login), inst, i.not_after).await.unwrap();
            certs.insert(format!("{login}{suffix}"), i);
        }
    }
    let running = start(settings).await.unwrap();
    let (addr, op_addr) = (running.addr, running.operator_addr.unwrap());
    World { _dir: dir, dir: root, ca, accounts, server: Some(running), addr, op_addr, certs }
}

/// Waits until `check` holds, for at most ten seconds: a condition with a deadline, never a fixed
/// sleep (what a background task does shows up when it has done it, not after a guessed delay).
pub async fn until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "still not so after 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A six-digit code that no step within the accepted window (±1) of `now` takes.
pub fn wrong_code(w: &World, secret: &[u8]) -> String {
    let step = (w.accounts.clock().now() / totp::STEP as i64) as u64;
    // The window (±1) around now, and one step more in case the clock moves on before the check.
    let taken: Vec<u32> = (step - 1..=step + 2).map(|s| totp::code_at_step(secret, s, totp::DIGITS)).collect();
    let wrong = (0..).find(|c| !taken.contains(c)).unwrap();
    format!("{wrong:06}")
}

pub fn jp(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

/// Every audit entry: action, object, outcome and detail.
pub async fn trail_details(w: &World) -> Vec<(String, String, String, String)> {
    let store = w.accounts.log().store();
    let n = store.size().await.unwrap();
    store
        .read(0, n)
        .await
        .unwrap()
        .iter()
        .filter_map(|b| match Entry::decode(b).unwrap() {
            Entry::Audit(e) => Some((e.action, e.object, e.outcome, e.detail.unwrap_or_default())),
            _ => None,
        })
        .collect()
}

/// The number of entries in the audit log.
pub async fn log_size(w: &World) -> u64 {
    w.accounts.log().store().size().await.unwrap()
}

/// Every audit entry: action, object and outcome.
pub async fn trail(w: &World) -> Vec<(String, String, String)> {
    trail_details(w).await.into_iter().map(|(action, object, outcome, _)| (action, object, outcome)).collect()
}
