//! The front door end to end: the real server on a random port with real TLS and client
//! certificates from Kura's CA, clients bound to other 127.x addresses that a generated RIR
//! statistics file places in Japan or elsewhere, the real store of record (SQLite, and
//! PostgreSQL when `KURA_TEST_POSTGRES` is set) and the real audit log (NET-1, HX-5, HX-6,
//! HX-9, HX-11, HIC-S3, HIC-S4, HIC-S9, HIC-U1–U4).

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use kura_accounts::totp;
use kura_accounts::{Accounts, Clock, HashCost, Hasher, NewUser, Policy, Role, Who};
use kura_crypto::SecretKey;
use kura_gate::{AutoBlockPolicy, Gate, GateConfig};
use kura_ledger::entry::Entry;
use kura_ledger::log::{Log, LogOptions};
use kura_ledger::store::{LedgerStore, SqlStore};
use kura_ledger::tiles::DirTiles;
use kura_ledger::{SigType, SignerKey};
use kura_pki::{Ca, Issued, RevocationSet, Subject};
use kura_server::portal::{Access, ROUTES};
use kura_server::serve::{Running, Settings, start};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

const PW: &str = "kaki-no-tane umbrella 83 orbit";

/// 127.0.0.0/25 is "Japan", 127.0.0.128/25 "the United States"; 127.0.0.1 is internal.
const GEO: &str = "2|apnic|20261122|2|19830613|20261121|+1000\n\
                   apnic|JP|ipv4|127.0.0.0|128|20000101|allocated\n\
                   arin|US|ipv4|127.0.0.128|128|20000101|allocated\n";

struct World {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    ca: Ca,
    accounts: Accounts,
    server: Option<Running>,
    addr: SocketAddr,
    op_addr: SocketAddr,
    certs: HashMap<String, Issued>,
}

impl World {
    fn cert(&self, name: &str) -> &Issued {
        &self.certs[name]
    }
}

fn tls_client(ca: &Ca, cert: Option<&Issued>) -> Arc<rustls::ClientConfig> {
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
async fn tcp_from(from: IpAddr, to: SocketAddr) -> std::io::Result<tokio::net::TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(SocketAddr::new(from, 0))?;
    s.connect(to).await
}

/// A TLS handshake from `from`; Ok if the server accepted it and answers HTTP.
async fn handshake(w: &World, from: IpAddr, cert: Option<&Issued>) -> Result<Client, String> {
    Client::connect(w, w.addr, from, cert).await
}

/// A keep-alive HTTPS client with a cookie jar.
struct Client {
    send: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    cookies: HashMap<String, String>,
    set_cookies: Vec<String>,
}

struct Reply {
    status: u16,
    headers: hyper::HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers.get("location").and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

fn field<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let i = html.find(start).unwrap_or_else(|| panic!("'{start}' not in page: {html}")) + start.len();
    let j = html[i..].find(end).unwrap() + i;
    &html[i..j]
}

impl Client {
    async fn connect(w: &World, to: SocketAddr, from: IpAddr, cert: Option<&Issued>) -> Result<Client, String> {
        let tcp = tcp_from(from, to).await.map_err(|e| e.to_string())?;
        let connector = tokio_rustls::TlsConnector::from(tls_client(&w.ca, cert));
        let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.map_err(|e| format!("handshake: {e}"))?;
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
        Ok(c)
    }

    async fn request(&mut self, method: &str, path: &str, body: Option<(String, &str)>, headers: &[(&str, &str)]) -> Result<Reply, String> {
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

    async fn get(&mut self, path: &str) -> Result<Reply, String> {
        self.request("GET", path, None, &[]).await
    }

    async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Reply {
        let body = serde_urlencoded::to_string(fields).unwrap();
        self.request("POST", path, Some((body, "application/x-www-form-urlencoded")), &[]).await.unwrap()
    }

    /// Password step; returns the reply to the POST.
    async fn password(&mut self, login: &str, password: &str) -> Reply {
        let page = self.get("/login").await.unwrap();
        let csrf = field(&page.body, "name=\"csrf\" value=\"", "\"").to_string();
        self.post("/login", &[("csrf", &csrf), ("login", login), ("password", password)]).await
    }

    fn csrf_of(page: &Reply) -> String {
        field(&page.body, "name=\"csrf\" value=\"", "\"").to_string()
    }
}

fn code(w: &World, secret: &[u8]) -> String {
    let step = (w.accounts.clock().now() / totp::STEP as i64) as u64;
    format!("{:06}", totp::code_at_step(secret, step, totp::DIGITS))
}

/// Signs in with enrolment; returns the TOTP secret.
async fn sign_in_first_time(w: &World, c: &mut Client, login: &str) -> Vec<u8> {
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
async fn sign_in(w: &World, c: &mut Client, login: &str, secret: &[u8]) -> Reply {
    let r = c.password(login, PW).await;
    assert_eq!((r.status, r.location()), (303, "/login/second"), "{}", r.body);
    let page = c.get("/login/second").await.unwrap();
    w.accounts.clock().advance(30);
    c.post("/login/second", &[("csrf", &Client::csrf_of(&page)), ("code", &code(w, secret))]).await
}

async fn world(db: kura_db::Db, autoblock: AutoBlockPolicy, extra: impl FnOnce(&mut GateConfig)) -> World {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let ca = Ca::init(&root.join("ca"), "Kura Test CA").unwrap();
    let key = SignerKey::generate("kura.test/log", SigType::Ed25519).unwrap();
    let log = Log::open(SqlStore::new(db.clone()), Arc::new(DirTiles::new(&root.join("log"))), LogOptions::new(key)).await.unwrap();
    let accounts =
        Accounts::new(db, log, SecretKey::generate().unwrap(), Policy::default(), Hasher::new(HashCost::TEST, 1, 64), Clock::default())
            .await
            .unwrap();
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
    let server = ca.issue(&Subject::Server { names: vec!["localhost".into()] }, 30).unwrap();
    let revoked = Arc::new(RevocationSet::default());
    let chain = vec![CertificateDer::from(server.cert_der.clone()), ca.cert_der().clone()];
    let cert = kura_pki::tls::ServerCert::new(chain, PrivateKeyDer::Pkcs8(server.key_der.to_vec().into()), server.not_after).unwrap();
    let tls = kura_pki::tls::server_config(ca.cert_der(), cert, revoked.clone()).unwrap();
    std::fs::write(root.join("geo.txt"), GEO).unwrap();
    let mut gc = GateConfig { geo_files: vec![root.join("geo.txt")], autoblock, ..GateConfig::default() };
    extra(&mut gc);
    let gate = Arc::new(Gate::load(gc).unwrap());
    let running = start(Settings {
        listen: "127.0.0.1:0".into(),
        operator_listen: Some("127.0.0.1:0".into()),
        tls: Arc::new(tls),
        revoked,
        gate,
        accounts: accounts.clone(),
        datasets: vec!["ndb".into()],
        reload_every: Duration::from_millis(200),
    })
    .await
    .unwrap();
    let (addr, op_addr) = (running.addr, running.operator_addr.unwrap());
    World { _dir: dir, dir: root, ca, accounts, server: Some(running), addr, op_addr, certs }
}

fn jp(n: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, n])
}

async fn trail(w: &World) -> Vec<(String, String, String)> {
    let store = w.accounts.log().store();
    let n = store.size().await.unwrap();
    store
        .read(0, n)
        .await
        .unwrap()
        .iter()
        .filter_map(|b| match Entry::decode(b).unwrap() {
            Entry::Audit(e) => Some((e.action, e.object, e.outcome)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn tls_refusals_and_the_gate_before_the_handshake() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let policy = AutoBlockPolicy {
            threshold: 3,
            window: Duration::from_secs(60),
            block_for: Duration::from_secs(2),
            ..AutoBlockPolicy::default()
        };
        let w = world(db, policy, |_| {}).await;
        let stats = w.server.as_ref().unwrap().stats.clone();
        let good = w.cert("tanaka.h");
        // A certificate of Kura's CA from Japan: served.
        handshake(&w, jp(2), Some(good)).await.unwrap();
        // No certificate, or one from another CA: refused.
        assert!(handshake(&w, jp(2), None).await.is_err());
        let other = Ca::init(&w.dir.join("other-ca"), "Other CA").unwrap();
        let foreign = other.issue(&Subject::User { login: "tanaka.h".into(), institution: "1310000001".into() }, 30).unwrap();
        assert!(handshake(&w, jp(2), Some(&foreign)).await.is_err());
        // Revoked: refused from the next handshake once the server reloads (every 200 ms here).
        w.accounts.revoke_certificates(&Who::console(), Some("prov1"), None).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(handshake(&w, jp(2), Some(w.cert("prov1"))).await.is_err());

        // A foreign address is dropped at accept: no handshake happens at all.
        let failures_before = stats.handshake_failures.load(std::sync::atomic::Ordering::Relaxed);
        let refused_before = stats.refused.load(std::sync::atomic::Ordering::Relaxed);
        assert!(handshake(&w, jp(200), Some(good)).await.is_err());
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(stats.refused.load(std::sync::atomic::Ordering::Relaxed), refused_before + 1);
        assert_eq!(
            stats.handshake_failures.load(std::sync::atomic::Ordering::Relaxed),
            failures_before,
            "no TLS work for a foreign address"
        );

        // Automatic block: three failed handshakes from 127.0.0.9 block it at once, even with
        // a good certificate; the block is on the record and expires.
        for _ in 0..3 {
            assert!(handshake(&w, jp(9), None).await.is_err());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(handshake(&w, jp(9), Some(good)).await.is_err(), "blocked");
        handshake(&w, jp(10), Some(good)).await.expect("a neighbour is not blocked");
        let t = trail(&w).await;
        assert!(t.iter().any(|(a, o, _)| a == "gate.block" && o == "127.0.0.9"), "{t:?}");
        tokio::time::sleep(Duration::from_millis(2100)).await;
        handshake(&w, jp(9), Some(good)).await.expect("the block expired");
        w.server.unwrap().stop().await;
    }
}

#[tokio::test]
async fn blocklists_reload_without_restart() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let list = scratch.path().join("blocked.txt");
    std::fs::write(&list, "# nothing yet\n").unwrap();
    let l2 = list.clone();
    let w = world(db, AutoBlockPolicy::default(), move |g| g.ip_blocklists = vec![l2]).await;
    let good = w.cert("tanaka.h");
    handshake(&w, jp(4), Some(good)).await.unwrap();
    std::fs::write(&list, "127.0.0.4\n127.0.0.16/28\n").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(handshake(&w, jp(4), Some(good)).await.is_err());
    assert!(handshake(&w, jp(20), Some(good)).await.is_err());
    handshake(&w, jp(5), Some(good)).await.unwrap();
    // A broken list keeps the previous one in force.
    std::fs::write(&list, "127.0.0.999\n").unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(handshake(&w, jp(4), Some(good)).await.is_err());
    w.server.unwrap().stop().await;
}

#[tokio::test]
async fn sign_in_sessions_cookies_csrf_and_second_device() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
        let mut a = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();

        // Security headers on every page.
        let page = a.get("/login").await.unwrap();
        let h = |n: &str| page.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        assert!(h("content-security-policy").contains("default-src 'none'") && !h("content-security-policy").contains("http"));
        assert!(h("strict-transport-security").contains("max-age="));
        assert_eq!(h("cache-control"), "no-store");
        assert_eq!(h("x-frame-options"), "DENY");
        assert!(page.body.contains("ログイン") && page.body.contains("English"), "Japanese first, with an English switch");

        // A login form posted without its token is refused (CSRF), and so is a cross-site post.
        let r = a.post("/login", &[("login", "tanaka.h"), ("password", PW)]).await;
        assert_eq!(r.status, 403);
        // Wrong password: 401, the page says so.
        let r = a.password("tanaka.h", "not the password").await;
        assert_eq!(r.status, 401);
        assert!(r.body.contains("wrong login or password"), "{}", r.body);

        let secret = sign_in_first_time(&w, &mut a, "tanaka.h").await;
        let home = a.get("/").await.unwrap();
        assert_eq!(home.status, 200);
        assert!(home.body.contains("id=\"welcome\""));
        // The session cookie's flags.
        let sc = a.set_cookies.iter().find(|c| c.starts_with("__Host-kura=") && c.len() > 20).unwrap();
        for flag in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
            assert!(sc.contains(flag), "{sc}");
        }
        let token = a.cookies["__Host-kura"].clone();

        // CSRF: sign-out without the token, or from another site, is refused.
        let r = a.post("/logout", &[]).await;
        assert_eq!(r.status, 403);
        let csrf = Client::csrf_of(&home);
        let r = a
            .request(
                "POST",
                "/logout",
                Some((format!("csrf={csrf}"), "application/x-www-form-urlencoded")),
                &[("sec-fetch-site", "cross-site")],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 403);
        assert_eq!(a.get("/").await.unwrap().status, 200, "still signed in");

        // The cookie presented over a connection with another certificate of the same user
        // ends the session (HX-5).
        let mut thief = handshake(&w, jp(3), Some(w.cert("tanaka.h#2"))).await.unwrap();
        thief.cookies.insert("__Host-kura".into(), token.clone());
        let r = thief.get("/").await.unwrap();
        assert_eq!((r.status, r.location()), (303, "/login?end=certificate_mismatch"));
        assert_eq!(a.get("/").await.unwrap().location(), "/login?end=certificate_mismatch");

        // Second device (HX-11): signing in elsewhere asks for confirmation and tells the first.
        let mut first = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
        let r = sign_in(&w, &mut first, "tanaka.h", &secret).await;
        assert_eq!(r.location(), "/", "nobody else signed in: straight in");
        let mut second = handshake(&w, jp(3), Some(w.cert("tanaka.h#2"))).await.unwrap();
        let r = sign_in(&w, &mut second, "tanaka.h", &secret).await;
        assert_eq!(r.location(), "/login/confirm");
        let page = second.get("/login/confirm").await.unwrap();
        assert!(page.body.contains("別のブラウザまたは端末") || page.body.contains("another browser"), "{}", page.body);
        assert_eq!(second.get("/api/v1/me").await.unwrap().status, 401, "not signed in before confirming");
        let r = second.post("/login/confirm", &[("csrf", &Client::csrf_of(&page))]).await;
        assert_eq!(r.location(), "/");
        assert_eq!(second.get("/api/v1/me").await.unwrap().status, 200);
        let r = first.get("/").await.unwrap();
        assert!(r.location().starts_with("/login?end=replaced&at="), "{}", r.location());
        let told = first.get(r.location()).await.unwrap();
        assert!(told.body.contains("別のブラウザまたは端末から同じIDでログイン"), "{}", told.body);

        // Idle timeout (HIC-U2): 16 minutes without a request.
        w.accounts.clock().advance(16 * 60);
        let r = second.get("/").await.unwrap();
        assert_eq!(r.location(), "/login?end=idle");

        // Sign-out ends the session.
        let mut d = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
        sign_in(&w, &mut d, "tanaka.h", &secret).await;
        let home = d.get("/").await.unwrap();
        let r = d.post("/logout", &[("csrf", &Client::csrf_of(&home))]).await;
        assert_eq!(r.location(), "/login?end=signed_out");
        assert_eq!(d.get("/api/v1/me").await.unwrap().status, 401);

        let t = trail(&w).await;
        for action in
            ["auth.password", "auth.second_factor", "auth.totp_enrol", "session.start", "session.end", "session.confirm", "access.csrf"]
        {
            assert!(t.iter().any(|(a, _, _)| a == action), "{action} missing from the trail");
        }
        w.server.unwrap().stop().await;
    }
}

/// Tools sign in with one JSON call (no CSRF cookie needed: the route takes JSON only), then
/// use the API with the session cookie and the CSRF token it returned. A change made by
/// another process straight in the store (here: SQL) reaches a running server within a second.
#[tokio::test]
async fn json_sign_in_for_tools_and_changes_from_other_processes() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
        let mut portal = handshake(&w, jp(3), Some(w.cert("rev1"))).await.unwrap();
        let secret = sign_in_first_time(&w, &mut portal, "rev1").await;
        let home = portal.get("/").await.unwrap();
        assert_eq!(portal.post("/logout", &[("csrf", &Client::csrf_of(&home))]).await.status, 303);

        let mut tool = handshake(&w, jp(3), Some(w.cert("rev1"))).await.unwrap();
        let json = |code: &str| (serde_json::json!({"login": "rev1", "password": PW, "code": code}).to_string(), "application/json");
        let form = (format!("login=rev1&password={PW}&code=1"), "application/x-www-form-urlencoded");
        let r = tool.request("POST", "/api/v1/session", Some(form), &[]).await.unwrap();
        assert_eq!(r.status, 415, "a form cannot sign in here: {}", r.body);
        w.accounts.clock().advance(30);
        let right = code(&w, &secret);
        let wrong = format!("{:06}", (right.parse::<u32>().unwrap() + 1) % 1_000_000);
        let r = tool.request("POST", "/api/v1/session", Some(json(&wrong)), &[]).await.unwrap();
        assert_eq!(r.status, 401, "{}", r.body);
        assert!(r.body.contains("\"error\""), "{}", r.body);
        let r = tool.request("POST", "/api/v1/session", Some(json(&right)), &[("sec-fetch-site", "cross-site")]).await.unwrap();
        assert_eq!(r.status, 403, "a cross-site request is refused before anything else: {}", r.body);
        let r = tool.request("POST", "/api/v1/session", Some(json(&right)), &[]).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(v["state"], "active");
        let csrf = v["csrf"].as_str().unwrap().to_string();
        assert!(r.headers.get_all("set-cookie").iter().any(|c| c.to_str().unwrap().starts_with("__Host-kura=")));
        let me = tool.get("/api/v1/me").await.unwrap();
        assert_eq!(me.status, 200);
        assert!(me.body.contains("\"login\":\"rev1\""));
        // The session's CSRF token is required on state-changing calls, as for the portal.
        assert_eq!(tool.request("POST", "/logout", None, &[]).await.unwrap().status, 403);
        assert_eq!(tool.request("POST", "/logout", None, &[("x-csrf-token", &csrf)]).await.unwrap().status, 303);
        assert_eq!(tool.get("/api/v1/me").await.unwrap().status, 401);
        w.accounts.clock().advance(30);
        let r = tool.request("POST", "/api/v1/session", Some(json(&code(&w, &secret))), &[]).await.unwrap();
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(tool.get("/api/v1/me").await.unwrap().status, 200);

        // Another process suspends the user, straight in the store.
        sqlx::query("UPDATE users SET state = 'suspended' WHERE login = 'rev1'").execute(w.accounts.db().pool()).await.unwrap();
        w.accounts.clock().advance(1);
        let r = tool.get("/api/v1/me").await.unwrap();
        assert_eq!(r.status, 401, "the next second sees the change: {}", r.body);
        w.server.unwrap().stop().await;
    }
}

/// Behind a configured reverse proxy the client's address comes from `X-Forwarded-For` and is
/// checked like a socket address (HIC-S4); from anyone else the header is ignored.
#[tokio::test]
async fn a_trusted_proxy_passes_the_client_address() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("proxy.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |gc| gc.trusted_proxies = vec![kura_gate::ranges::Cidr::parse("127.0.0.50/32").unwrap()])
        .await;
    let foreign = [("x-forwarded-for", "127.0.0.200")];
    let mut proxy = handshake(&w, jp(50), Some(w.cert("tanaka.h"))).await.unwrap();
    let r = proxy.request("GET", "/login", None, &foreign).await.unwrap();
    assert_eq!(r.status, 403, "a client in the US behind the proxy: {}", r.body);
    assert!(r.body.contains("may not connect"), "{}", r.body);
    let r = proxy.request("GET", "/login", None, &[("x-forwarded-for", "127.0.0.200, 127.0.0.7")]).await.unwrap();
    assert_eq!(r.status, 200, "the rightmost untrusted hop is the client; what it wrote before is ignored");
    let mut direct = handshake(&w, jp(51), Some(w.cert("tanaka.h"))).await.unwrap();
    let r = direct.request("GET", "/login", None, &foreign).await.unwrap();
    assert_eq!(r.status, 200, "not a trusted proxy: the header means nothing");
    w.server.unwrap().stop().await;
}

#[tokio::test]
async fn lockout_over_http_and_operator_unlock() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
        let mut c = handshake(&w, jp(2), Some(w.cert("rev1"))).await.unwrap();
        for _ in 0..4 {
            assert_eq!(c.password("rev1", "wrong wrong wrong").await.status, 401);
        }
        let r = c.password("rev1", "wrong wrong wrong").await;
        assert_eq!(r.status, 403);
        assert!(r.body.contains("ロック") && r.body.contains("locked"), "told plainly: {}", r.body);
        assert_eq!(c.password("rev1", PW).await.status, 403, "even the right password");

        // The operator unlocks on the operators' listener.
        let mut op = Client::connect(&w, w.op_addr, jp(2), Some(w.cert("op1"))).await.unwrap();
        sign_in_first_time(&w, &mut op, "op1").await;
        let page = op.get("/admin/users").await.unwrap();
        assert_eq!(page.status, 200);
        assert!(page.body.contains("id=\"user-rev1\""));
        let r = op.post("/admin/users/rev1/unlock", &[("csrf", &Client::csrf_of(&page))]).await;
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(c.password("rev1", PW).await.status, 303);
        w.server.unwrap().stop().await;
    }
}

#[tokio::test]
async fn every_role_is_refused_what_it_may_not_do() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    for (login, role) in [
        ("tanaka.h", Role::Researcher),
        ("cust1", Role::Custodian),
        ("rev1", Role::Reviewer),
        ("prov1", Role::Provider),
        ("op1", Role::Operator),
        ("aud1", Role::Auditor),
    ] {
        for (listener, addr) in [("portal", w.addr), ("operator", w.op_addr)] {
            let mut c = Client::connect(&w, addr, jp(2), Some(w.cert(login))).await.unwrap();
            if listener == "operator" {
                // Enrolled on the portal listener already: start over (this also ends the
                // portal session, so no second-device confirmation is asked).
                w.accounts.reset_second_factor(&Who::console(), login).await.unwrap();
            }
            sign_in_first_time(&w, &mut c, login).await;
            let home = c.get("/").await.unwrap();
            let csrf = Client::csrf_of(&home);
            for r in ROUTES {
                let Access::Roles(roles) = r.access else { continue };
                let served = if listener == "portal" { r.portal } else { r.operator };
                let path = r.path.replace("{login}", "nobody").replace("{action}", "lock");
                let reply = c
                    .request(r.method, &path, Some((String::new(), "application/x-www-form-urlencoded")), &[("x-csrf-token", &csrf)])
                    .await
                    .unwrap();
                let admitted = roles.contains(&role);
                match (served, admitted) {
                    (false, _) => assert_eq!(reply.status, 404, "{login} {listener} {} {path}: not served here", r.method),
                    (true, false) => assert_eq!(reply.status, 403, "{login} {listener} {} {path}", r.method),
                    (true, true) => assert_ne!(reply.status, 403, "{login} {listener} {} {path}: {}", r.method, reply.body),
                }
            }
            // An operator never reads data, on either listener.
            if role == Role::Operator {
                let s = c.get("/api/v1/datasets").await.unwrap().status;
                assert!(s == 403 || s == 404, "{s}");
            }
        }
    }
    let t = trail(&w).await;
    assert!(t.iter().any(|(a, _, o)| a == "access.denied" && o == "denied"));
    // The OpenAPI document lists the API routes.
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
    let doc = c.get("/api/v1/openapi.json").await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&doc.body).unwrap();
    assert_eq!(v["openapi"], "3.1.0");
    assert!(v["paths"]["/api/v1/me"]["get"].is_object());
    assert!(v["paths"]["/api/v1/users/{login}/{action}"].is_null(), "not served on the portal listener");
    w.server.unwrap().stop().await;
}
