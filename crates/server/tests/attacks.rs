//! The front door attacked as an insider with a valid certificate would: each test performs one
//! attack from the hardening review (issue 14) against the real server over real TLS, and
//! asserts that it gets nothing (NET-1, NET-2, HX-5, HX-6, HIC-S3, HIC-S4, HIC-S9, HIC-U1–U4).

mod common;
use common::*;
use kura_accounts::{Role, Transition, Who};
use kura_gate::AutoBlockPolicy;
use kura_ledger::store::LedgerStore;
use kura_pki::Subject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A client configuration for one certificate and one TLS version that keeps sessions (TLS 1.3
/// tickets, TLS 1.2 session ids) and offers them again on the next connection.
fn resuming_client(w: &World, login: &str, version: &'static rustls::SupportedProtocolVersion) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(w.ca.cert_der().clone()).unwrap();
    let i = w.cert(login);
    let mut c = rustls::ClientConfig::builder_with_provider(kura_pki::tls::provider())
        .with_protocol_versions(&[version])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![CertificateDer::from(i.cert_der.clone())], PrivateKeyDer::Pkcs8(i.key_der.to_vec().into()))
        .unwrap();
    c.alpn_protocols = vec![b"http/1.1".to_vec()];
    c.resumption = rustls::client::Resumption::in_memory_sessions(16);
    Arc::new(c)
}

/// Finding 1: after revocation, a saved TLS session (1.3 ticket or 1.2 session id) and a
/// connection kept alive from before get nothing.
#[tokio::test]
async fn a_revoked_certificate_gets_nothing_on_resumed_or_kept_alive_connections() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db.clone(), AutoBlockPolicy::default(), |_| {}).await;
    let v13 = resuming_client(&w, "tanaka.h", &rustls::version::TLS13);
    let v12 = resuming_client(&w, "tanaka.h", &rustls::version::TLS12);
    // Full handshakes, each leaving a session the client could offer again.
    for config in [&v13, &v12] {
        let (mut c, _) = Client::connect_with(config.clone(), w.addr, jp(2)).await.unwrap();
        assert_eq!(c.get("/login").await.unwrap().status, 200);
    }
    let mut kept = handshake(&w, jp(3), Some(w.cert("tanaka.h"))).await.unwrap();

    w.accounts.revoke_certificates(&Who::console(), Some("tanaka.h"), None).await.unwrap();
    until("a full handshake is refused", || async { handshake(&w, jp(4), Some(w.cert("tanaka.h"))).await.is_err() }).await;
    for (name, config) in [("TLS 1.3 ticket", &v13), ("TLS 1.2 session id", &v12)] {
        match Client::connect_with(config.clone(), w.addr, jp(2)).await {
            Err(_) => {}
            Ok((mut c, kind)) => {
                let r = c.get("/login").await;
                panic!("{name}: a revoked certificate was served ({kind:?}): {:?}", r.map(|r| r.status));
            }
        }
    }
    match kept.get("/login").await {
        Err(_) => {}
        Ok(r) => assert_ne!(r.status, 200, "a connection kept alive from before the revocation is still served"),
    }

    // Re-check of the review: a revocation stamped by a clock an hour ahead (another node's)
    // must not hide the revocations that follow it; before, reloads read only what was newer
    // than the latest stamp, and aud1 stayed served until a restart.
    // cust1's revocation is written stamped an hour ahead; once a reload has read it (cust1 is
    // refused), aud1 is revoked at the present time.
    sqlx::query("UPDATE certificates SET revoked_at = $1 WHERE login = 'cust1'")
        .bind(w.accounts.clock().now() + 3600)
        .execute(db.pool())
        .await
        .unwrap();
    until("the revocation stamped ahead is read", || async { handshake(&w, jp(4), Some(w.cert("cust1"))).await.is_err() }).await;
    handshake(&w, jp(4), Some(w.cert("aud1"))).await.expect("aud1 is served before its revocation");
    w.accounts.revoke_certificates(&Who::console(), Some("aud1"), None).await.unwrap();
    until("a later revocation is in force", || async { handshake(&w, jp(4), Some(w.cert("aud1"))).await.is_err() }).await;

    // Revoked through the running server itself (the operators' listener): refused at once,
    // on a connection kept alive from before and on the next handshake — no reload awaited.
    let mut op = Client::connect(&w, w.op_addr, jp(5), Some(w.cert("op1"))).await.unwrap();
    sign_in_first_time(&w, &mut op, "op1").await;
    let page = op.get("/admin/users").await.unwrap();
    let mut early = handshake(&w, jp(6), Some(w.cert("rev1"))).await.unwrap();
    assert_eq!(early.get("/login").await.unwrap().status, 200);
    let r = op
        .request(
            "POST",
            "/api/v1/users/rev1/revoke-certificates",
            Some((String::new(), "application/x-www-form-urlencoded")),
            &[("x-csrf-token", &Client::csrf_of(&page))],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains("2 certificate(s) revoked"), "{}", r.body);
    match early.get("/login").await {
        Err(_) => {}
        Ok(r) => assert_ne!(r.status, 200, "served after a revocation through the server"),
    }
    assert!(handshake(&w, jp(7), Some(w.cert("rev1"))).await.is_err(), "a new handshake after a revocation through the server");
    assert!(handshake(&w, jp(7), Some(w.cert("rev1#2"))).await.is_err());
    w.server.unwrap().stop().await;
}

/// Issue 15 §5: a revoked certificate's serial that does not parse fails closed. Before, the
/// row was logged and dropped, and every other certificate went on being served — including
/// the one that row revoked. Now the running server refuses every certificate until the row is
/// fixed, and a server does not start on such a store.
#[tokio::test]
async fn an_unreadable_revocation_fails_closed() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db.clone(), AutoBlockPolicy::default(), |_| {}).await;
    let mut kept = handshake(&w, jp(3), Some(w.cert("tanaka.h"))).await.unwrap();
    assert_eq!(kept.get("/login").await.unwrap().status, 200);

    // cust1's certificate is revoked, and its row damaged: the serial no longer parses.
    let cust1 = w.cert("cust1");
    sqlx::query("UPDATE certificates SET revoked_at = $1, serial = 'not-a-serial' WHERE fingerprint = $2")
        .bind(w.accounts.clock().now())
        .bind(cust1.fingerprint.to_string())
        .execute(db.pool())
        .await
        .unwrap();
    until("every certificate is refused", || async { handshake(&w, jp(4), Some(w.cert("tanaka.h"))).await.is_err() }).await;
    assert!(handshake(&w, jp(4), Some(cust1)).await.is_err());
    match kept.get("/login").await {
        Err(_) => {}
        Ok(r) => assert_ne!(r.status, 200, "a connection kept alive from before is still served"),
    }
    // What a server starting on this store reads first: an error naming the row.
    let err = kura_server::serve::refresh_revocations(&w.accounts, &kura_pki::RevocationSet::default()).await.unwrap_err();
    assert!(
        err.to_string().contains("serial 'not-a-serial' does not parse") && err.to_string().contains("every client certificate is refused"),
        "{err}"
    );

    // The row fixed: service resumes, and the revocation it carries holds.
    let fix_row = || async {
        sqlx::query("UPDATE certificates SET serial = $1 WHERE fingerprint = $2")
            .bind(&cust1.serial)
            .bind(cust1.fingerprint.to_string())
            .execute(db.pool())
            .await
            .unwrap();
    };
    fix_row().await;
    until("served again once the row is fixed", || async { handshake(&w, jp(5), Some(w.cert("tanaka.h"))).await.is_ok() }).await;
    assert!(handshake(&w, jp(5), Some(cust1)).await.is_err(), "the revoked certificate stays refused");

    // A row that cannot be read at all (a serial stored as bytes, which SQLite allows): the
    // whole list is unreadable. Before, the reload only logged it, and every revocation made
    // afterwards by another process went unseen while everyone was served.
    sqlx::query("UPDATE certificates SET serial = x'0102' WHERE fingerprint = $1")
        .bind(cust1.fingerprint.to_string())
        .execute(db.pool())
        .await
        .unwrap();
    until("every certificate is refused while the list cannot be read", || async {
        handshake(&w, jp(6), Some(w.cert("tanaka.h"))).await.is_err()
    })
    .await;
    let err = kura_server::serve::refresh_revocations(&w.accounts, &kura_pki::RevocationSet::default()).await.unwrap_err();
    assert!(err.to_string().contains("cannot be read"), "{err}");
    fix_row().await;
    until("served again once the list reads", || async { handshake(&w, jp(7), Some(w.cert("tanaka.h"))).await.is_ok() }).await;
    w.server.unwrap().stop().await;
}

/// Finding 2: a custodian cannot reset an operator's (or auditor's, custodian's, own) password;
/// an institution's machine certificate cannot sign in an operator.
#[tokio::test]
async fn a_custodian_cannot_take_over_an_operator() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    let mut c = handshake(&w, jp(2), Some(w.cert("cust1"))).await.unwrap();
    sign_in_first_time(&w, &mut c, "cust1").await;
    let home = c.get("/").await.unwrap();
    let csrf = Client::csrf_of(&home);
    let new_pw = "tako-yaki lantern 51 harbour";
    for target in ["op1", "aud1"] {
        let r = c
            .request(
                "POST",
                &format!("/api/v1/users/{target}/reset-password"),
                Some((format!("password={}", new_pw.replace(' ', "+")), "application/x-www-form-urlencoded")),
                &[("x-csrf-token", &csrf)],
            )
            .await
            .unwrap();
        // Refused, and answered as for a login that does not exist.
        assert_eq!(r.status, 404, "a custodian reset {target}'s password: {}", r.body);
    }
    // Their own: refused, and told where their own password is changed (re-check of the
    // review: it was "no user 'cust1'").
    let r = c
        .request(
            "POST",
            "/api/v1/users/cust1/reset-password",
            Some((format!("password={}", new_pw.replace(' ', "+")), "application/x-www-form-urlencoded")),
            &[("x-csrf-token", &csrf)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("change your own"), "{}", r.body);
    // A researcher of the custodian's institution: reset, and then made to choose a new
    // password after the second factor, before anything else is served.
    let r = c
        .request(
            "POST",
            "/api/v1/users/tanaka.h/reset-password",
            Some((format!("password={}", new_pw.replace(' ', "+")), "application/x-www-form-urlencoded")),
            &[("x-csrf-token", &csrf)],
        )
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.body);
    let mut t = handshake(&w, jp(3), Some(w.cert("tanaka.h"))).await.unwrap();
    let r = t.password("tanaka.h", new_pw).await;
    assert_eq!(r.location(), "/login/enrol");
    let page = t.get("/login/enrol").await.unwrap();
    let secret = kura_accounts::totp::base32_decode(field(&page.body, "<code id=\"secret\">", "<")).unwrap();
    t.post("/login/enrol", &[("csrf", &Client::csrf_of(&page)), ("code", &code(&w, &secret))]).await;
    assert_eq!(t.get("/").await.unwrap().location(), "/login/password", "a new password comes first");
    assert_eq!(t.get("/api/v1/me").await.unwrap().status, 401);
    let page = t.get("/login/password").await.unwrap();
    let r = t.post("/login/password", &[("csrf", &Client::csrf_of(&page)), ("new", new_pw)]).await;
    assert_eq!(r.status, 422, "the reset password cannot be kept");
    let r = t.post("/login/password", &[("csrf", &Client::csrf_of(&page)), ("new", "mine alone: 7 quiet otters")]).await;
    assert_eq!(r.location(), "/");
    assert_eq!(t.get("/api/v1/me").await.unwrap().status, 200);

    // The institution's machine certificate signs in no operator.
    let machine = w.ca.issue(&Subject::Institution { code: "1310000001".into() }, 30).unwrap();
    w.accounts
        .register_certificate(&Who::console(), &machine.fingerprint.to_string(), &machine.serial, None, "1310000001", machine.not_after)
        .await
        .unwrap();
    let mut m = handshake(&w, jp(5), Some(&machine)).await.unwrap();
    let r = m.password("op1", PW).await;
    assert_ne!(r.status, 303, "the machine certificate signed in an operator: {}", r.location());
    w.server.unwrap().stop().await;
}

/// Finding 3: forty guesses at once are not all evaluated before the lock lands.
#[tokio::test]
async fn concurrent_guesses_do_not_outrun_the_lockout() {
    let scratch = tempfile::tempdir().unwrap();
    for db in kura_db::testing::databases(scratch.path()).await {
        let w = world(db, AutoBlockPolicy { threshold: 0, ..AutoBlockPolicy::default() }, |_| {}).await;
        let mut clients = Vec::new();
        for _ in 0..40 {
            let mut c = handshake(&w, jp(2), Some(w.cert("rev1"))).await.unwrap();
            let page = c.get("/login").await.unwrap();
            let csrf = Client::csrf_of(&page);
            clients.push((c, csrf));
        }
        let guesses = clients.iter_mut().map(|(c, csrf)| {
            let csrf = csrf.clone();
            async move { c.post("/login", &[("csrf", &csrf), ("login", "rev1"), ("password", "wrong wrong wrong")]).await.status }
        });
        let statuses = futures::future::join_all(guesses).await;
        assert!(statuses.iter().all(|s| *s != 303), "{statuses:?}");
        let evaluated = trail_details(&w)
            .await
            .into_iter()
            .filter(|(a, o, out, d)| a == "auth.password" && o == "rev1" && out == "denied" && d.starts_with("failure"))
            .count();
        assert!(evaluated <= 5, "{evaluated} guesses were checked against the password (the lockout allows 5)");
        assert!(w.accounts.user("rev1").await.unwrap().locked);
        w.server.unwrap().stop().await;
    }
}

/// Finding 4: refusals that need no session do not flood the audit ledger; they count toward the
/// automatic block; an oversized login is refused like any wrong one and never recorded.
#[tokio::test]
async fn refusals_do_not_flood_the_ledger() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    // An oversized login (one that fits the 64 KiB form but not a ledger entry): refused like
    // a wrong password, and not written anywhere.
    let mut c = handshake(&w, jp(7), Some(w.cert("tanaka.h"))).await.unwrap();
    let long = "x".repeat(65_300);
    let r = c.password(&long, "whatever it is").await;
    assert_eq!(r.status, 401, "{}", &r.body[..r.body.len().min(300)]);
    let store = w.accounts.log().store();
    let entries = store.read(0, log_size(&w).await).await.unwrap();
    assert!(!entries.iter().any(|e| e.windows(16).any(|x| x == b"xxxxxxxxxxxxxxxx")), "the login was recorded");

    // Two hundred refused CSRF checks from one connection.
    let before = log_size(&w).await;
    let mut c = handshake(&w, jp(6), Some(w.cert("tanaka.h"))).await.unwrap();
    let mut refused = 0;
    for _ in 0..200 {
        match c.request("POST", "/login", Some(("login=a&password=b".into(), "application/x-www-form-urlencoded")), &[]).await {
            Ok(r) if r.status == 403 => refused += 1,
            _ => break,
        }
    }
    let added = log_size(&w).await - before;
    assert!(added <= 5, "{refused} refusals wrote {added} ledger entries");
    assert!(refused < 200, "two hundred refusals and the address is still served");
    assert!(handshake(&w, jp(6), Some(w.cert("tanaka.h"))).await.is_err(), "the refusals block the address");
    w.server.unwrap().stop().await;
}

/// Finding 5: a block reaches connections opened before it; one address cannot hold hundreds
/// of connections.
#[tokio::test]
async fn blocks_close_open_connections_and_connections_are_capped() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let policy = AutoBlockPolicy { threshold: 3, ..AutoBlockPolicy::default() };
    let w = world(db, policy, |_| {}).await;
    let mut early = handshake(&w, jp(8), Some(w.cert("tanaka.h"))).await.unwrap();
    let other = kura_pki::Ca::init(&w.dir.join("other-ca"), "Other CA").unwrap();
    let foreign = other.issue(&Subject::User { login: "tanaka.h".into(), institution: "1310000001".into() }, 30).unwrap();
    for _ in 0..3 {
        assert!(handshake(&w, jp(8), Some(&foreign)).await.is_err());
    }
    until("127.0.0.8 is blocked", || async { handshake(&w, jp(8), Some(w.cert("tanaka.h"))).await.is_err() }).await;
    match early.get("/login").await {
        Err(_) => {}
        Ok(r) => assert_ne!(r.status, 200, "a connection opened before the block is still served"),
    }

    let mut held = Vec::new();
    for _ in 0..300 {
        match handshake(&w, jp(9), Some(w.cert("rev1"))).await {
            Ok(c) => held.push(c),
            Err(_) => break,
        }
    }
    assert!(held.len() < 300, "one address holds {} connections", held.len());
    drop(held);
    w.server.unwrap().stop().await;
}

/// Finding 6: a body trickled a byte at a time does not hold a connection past the deadline.
#[tokio::test]
async fn a_trickled_body_meets_a_deadline() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    let tcp = tcp_from(jp(2), w.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_client(&w.ca, Some(w.cert("tanaka.h"))));
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    tls.write_all(
        b"POST /login HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: 1000\r\n\r\n",
    )
    .await
    .unwrap();
    let started = Instant::now();
    let mut answered = false;
    let mut buf = [0u8; 4096];
    while started.elapsed() < Duration::from_secs(20) {
        if tls.write_all(b"a").await.is_err() || tls.flush().await.is_err() {
            answered = true;
            break;
        }
        match tokio::time::timeout(Duration::from_millis(500), tls.read(&mut buf)).await {
            Ok(Ok(_)) | Ok(Err(_)) => {
                answered = true;
                break;
            }
            Err(_) => {}
        }
    }
    assert!(answered, "a trickled body held the connection for {:?}", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(15), "answered only after {:?}", started.elapsed());
    w.server.unwrap().stop().await;
}

/// Finding 7: every failure before a correct password with a matching certificate answers the
/// same: unknown login, another user's login, a suspended or locked account, a wrong password.
#[tokio::test]
async fn failed_sign_ins_do_not_tell_logins_apart() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy { threshold: 0, ..AutoBlockPolicy::default() }, |_| {}).await;
    w.accounts.transition(&Who::console(), "aud1", Transition::Suspend).await.unwrap();
    w.accounts.lock(&Who::console(), "rev1").await.unwrap();
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
    let mut answers = Vec::new();
    for (what, login, pw) in [
        ("wrong password", "tanaka.h", "not the password"),
        ("unknown login", "nobody.at.all", "not the password"),
        ("another user's login", "cust1", "not the password"),
        ("another user's login and password", "cust1", PW),
        ("suspended account", "aud1", "not the password"),
        ("locked account", "rev1", "not the password"),
        ("locked account, right password", "rev1", PW),
    ] {
        let r = c.password(login, pw).await;
        answers.push((what, r.status, r.body));
    }
    let (_, status, body) = &answers[0];
    for (what, s, b) in &answers[1..] {
        assert_eq!((s, b), (status, body), "{what} answers differently from a wrong password");
    }
    w.server.unwrap().stop().await;
}

/// Finding 8: wrong current passwords on the password-change form count as failed sign-ins.
#[tokio::test]
async fn the_password_change_form_is_not_an_unlimited_oracle() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy { threshold: 0, ..AutoBlockPolicy::default() }, |_| {}).await;
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
    sign_in_first_time(&w, &mut c, "tanaka.h").await;
    for _ in 0..6 {
        let page = c.get("/account").await.unwrap();
        if page.status != 200 {
            break;
        }
        c.post("/account/password", &[("csrf", &Client::csrf_of(&page)), ("current", "guess guess guess"), ("new", "x")]).await;
    }
    assert!(w.accounts.user("tanaka.h").await.unwrap().locked, "six wrong current passwords and the account is not locked");
    assert_ne!(c.get("/account").await.unwrap().status, 200, "the session survived the lock");
    w.server.unwrap().stop().await;
}

/// Finding 9: a proxy that appends its own `X-Forwarded-For` line does not let the client pick
/// its address with an earlier line.
#[tokio::test]
async fn every_forwarded_for_line_is_read() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |c| c.trusted_proxies = vec!["127.0.0.50/32".into()]).await;
    let mut proxy = handshake(&w, jp(50), Some(w.cert("tanaka.h"))).await.unwrap();
    // The client wrote the first line (a Japanese address); the proxy appended the real one (US).
    let r = proxy.request("GET", "/login", None, &[("x-forwarded-for", "127.0.0.7"), ("x-forwarded-for", "127.0.0.200")]).await.unwrap();
    assert_eq!(r.status, 403, "the client chose its own address");
    w.server.unwrap().stop().await;
}

/// Finding 10: the domain blocklist applies to `Origin` and `Referer`; a burst of unknown paths
/// (scanning) blocks the address.
#[tokio::test]
async fn domain_blocklists_and_scanning_are_enforced() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let list = scratch.path().join("domains.txt");
    std::fs::write(&list, "evil.example\n").unwrap();
    let l2 = list.clone();
    let w = world(db, AutoBlockPolicy::default(), move |c| c.domain_blocklists = vec![l2.display().to_string()]).await;
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
    assert_eq!(c.get("/login").await.unwrap().status, 200);
    let r = c.request("GET", "/login", None, &[("origin", "https://evil.example")]).await.unwrap();
    assert_eq!(r.status, 403, "a request from a listed origin");
    let r = c.request("GET", "/login", None, &[("referer", "https://www.evil.example/page")]).await.unwrap();
    assert_eq!(r.status, 403, "a request referred by a listed site");

    let mut s = handshake(&w, jp(11), Some(w.cert("tanaka.h"))).await.unwrap();
    for p in [
        "/.env",
        "/wp-admin",
        "/phpmyadmin",
        "/.git/config",
        "/admin.php",
        "/cgi-bin/x",
        "/backup.zip",
        "/server-status",
        "/x1",
        "/x2",
        "/x3",
        "/x4",
    ] {
        if s.get(p).await.is_err() {
            break;
        }
    }
    until("the scanner is blocked", || async { handshake(&w, jp(11), Some(w.cert("tanaka.h"))).await.is_err() }).await;
    w.server.unwrap().stop().await;
}

/// Finding 11: the listeners are kept apart, the session token changes at each sign-in step,
/// and a malformed JSON body is answered without the parser's internals.
#[tokio::test]
async fn listeners_apart_tokens_rotate_and_json_errors_are_plain() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    // An operator signed in on the public listener cannot reset passwords there.
    let mut op = handshake(&w, jp(2), Some(w.cert("op1"))).await.unwrap();
    sign_in_first_time(&w, &mut op, "op1").await;
    let home = op.get("/").await.unwrap();
    let r = op
        .request(
            "POST",
            "/api/v1/users/tanaka.h/reset-password",
            Some(("password=tako-yaki+lantern+51+harbour".into(), "application/x-www-form-urlencoded")),
            &[("x-csrf-token", &Client::csrf_of(&home))],
        )
        .await
        .unwrap();
    assert!(r.status == 403 || r.status == 404, "an operator reset a password on the public listener: {}", r.status);

    // A portal session is not a session on the operators' listener.
    let mut portal = handshake(&w, jp(3), Some(w.cert("tanaka.h"))).await.unwrap();
    let r = portal.password("tanaka.h", PW).await;
    let after_password = portal.cookies.get("__Host-kura").cloned().unwrap();
    assert_eq!(r.location(), "/login/enrol");
    let page = portal.get("/login/enrol").await.unwrap();
    let secret = kura_accounts::totp::base32_decode(field(&page.body, "<code id=\"secret\">", "<")).unwrap();
    portal.post("/login/enrol", &[("csrf", &Client::csrf_of(&page)), ("code", &code(&w, &secret))]).await;
    assert_eq!(portal.get("/api/v1/me").await.unwrap().status, 200);
    let signed_in = portal.cookies.get("__Host-kura").cloned().unwrap();
    assert_ne!(after_password, signed_in, "the session token did not change when the second factor was done");
    let mut other = Client::connect(&w, w.op_addr, jp(3), Some(w.cert("tanaka.h"))).await.unwrap();
    for (k, v) in &portal.cookies {
        other.cookies.insert(k.clone(), v.clone());
    }
    assert_ne!(other.get("/api/v1/me").await.unwrap().status, 200, "a portal cookie works on the operators' listener");

    // Malformed JSON: a plain message, not the parser's.
    let mut tool = handshake(&w, jp(4), Some(w.cert("rev1"))).await.unwrap();
    let r = tool.request("POST", "/api/v1/session", Some((r#"{"login": 5}"#.into(), "application/json")), &[]).await.unwrap();
    assert!(r.status == 400 || r.status == 422, "{}", r.status);
    for internal in ["invalid type", "expected a string", "line 1 column", "Failed to deserialize"] {
        assert!(!r.body.contains(internal), "the answer shows the parser's internals ({internal}): {}", r.body);
    }
    let _ = Role::ALL;
    w.server.unwrap().stop().await;
}

/// Review of the hardening: a client that stops reading its answers does not hold a
/// connection (writes that make no progress have a deadline, 2 s here).
#[tokio::test]
async fn a_client_that_stops_reading_is_cut_off() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let limits = kura_server::front::FrontLimits { write_stall: Duration::from_secs(2), ..Default::default() };
    let w = world_with(db, AutoBlockPolicy::default(), limits, |_| {}).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(std::net::SocketAddr::new(jp(2), 0)).unwrap();
    let tcp = socket.connect(w.addr).await.unwrap();
    let connector = tokio_rustls::TlsConnector::from(tls_client(&w.ca, Some(w.cert("tanaka.h"))));
    let mut tls = connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.unwrap();
    // Hundreds of pipelined requests whose answers (the OpenAPI document) are never read.
    let one = b"GET /api/v1/openapi.json HTTP/1.1\r\nhost: localhost\r\n\r\n".repeat(50);
    for _ in 0..20 {
        if tls.write_all(&one).await.is_err() {
            break;
        }
    }
    let door = w.server.as_ref().unwrap().door.clone();
    assert_eq!(door.open_connections(jp(2)).1, 1);
    until("the stalled connection is closed", || async { door.open_connections(jp(2)).1 == 0 }).await;
    w.server.unwrap().stop().await;
}

/// Review of the hardening: failed handshakes without a certificate — none sent, a browser that
/// does not trust Kura's CA and aborts, plain HTTP from an `http://` link, a connection closed at
/// once — are what any web page can make a visitor's browser do, as often as it likes: they
/// count toward no block. Before, three of them blocked the address (and with a tenth's
/// weight, a page with a hundred images still did).
#[tokio::test]
async fn handshakes_without_a_certificate_count_toward_no_block() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy { threshold: 3, ..AutoBlockPolicy::default() }, |_| {}).await;
    let other = kura_pki::Ca::init(&w.dir.join("other-ca"), "Other CA").unwrap();
    let untrusting = tokio_rustls::TlsConnector::from(tls_client(&other, None));
    for _ in 0..40 {
        assert!(handshake(&w, jp(13), None).await.is_err());
        drop(tcp_from(jp(13), w.addr).await.unwrap());
        let tcp = tcp_from(jp(13), w.addr).await.unwrap();
        assert!(untrusting.connect(ServerName::try_from("localhost").unwrap(), tcp).await.is_err());
        let mut tcp = tcp_from(jp(13), w.addr).await.unwrap();
        tcp.write_all(b"GET /logo.png HTTP/1.1\r\nHost: kura\r\n\r\n").await.unwrap();
        let mut rest = Vec::new();
        let _ = tcp.read_to_end(&mut rest).await;
    }
    let stats = w.server.as_ref().unwrap().stats.clone();
    until("the 160 failed handshakes are counted", || async { stats.handshake_failures.load(std::sync::atomic::Ordering::Relaxed) >= 160 })
        .await;
    let mut c = handshake(&w, jp(13), Some(w.cert("tanaka.h"))).await.expect("160 such connections block nobody");
    assert_eq!(c.get("/login").await.unwrap().status, 200);
    w.server.unwrap().stop().await;
}

/// Review of the hardening: the portal's smaller holes — a forwarded-for line with a byte that
/// is not text, HEAD, the framework's own refusals, a custodian probing for logins, the right
/// password used to fill the store.
#[tokio::test]
async fn review_findings_on_the_portal() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |c| c.trusted_proxies = vec!["127.0.0.100/32".into()]).await;
    let door = w.server.as_ref().unwrap().door.clone();
    let now = std::time::SystemTime::now;

    // A line of X-Forwarded-For with a byte that is not text: the address the proxy appended
    // after it is still the client (blocked for scanning), never the proxy.
    let mut proxy = handshake(&w, IpAddr::from([127, 0, 0, 100]), Some(w.cert("tanaka.h"))).await.unwrap();
    for _ in 0..10 {
        let r = proxy.get_with_raw_header("/no-such-page", "x-forwarded-for", b"\xff1.1.1.1, 127.0.0.77").await.unwrap();
        assert_eq!(r.status, 404);
    }
    assert!(!door.gate.check(IpAddr::from([127, 0, 0, 77]), now()).allowed(), "the client is blocked");
    assert!(door.gate.check(IpAddr::from([127, 0, 0, 100]), now()).allowed(), "the proxy is not");

    // HEAD is served like GET, and is not scanning.
    let mut c = handshake(&w, jp(20), Some(w.cert("tanaka.h"))).await.unwrap();
    for _ in 0..12 {
        assert_eq!(c.request("HEAD", "/login", None, &[]).await.unwrap().status, 200);
    }
    // The framework's own refusals are answered plainly.
    for path in ["/login?at=abc&end=x", "/lang/%ff"] {
        let r = c.get(path).await.unwrap();
        assert!(r.status >= 400 && r.status < 500, "{path}: {}", r.status);
        for internal in ["deserialize", "invalid digit", "Invalid UTF-8", "Invalid URL"] {
            assert!(!r.body.contains(internal), "{path} shows the parser's words: {}", r.body);
        }
    }
    // A custodian learns nothing from resets they may not make: a user of another role or
    // institution answers like a user that does not exist; and probing counts toward a block.
    let mut cust = handshake(&w, jp(21), Some(w.cert("cust1"))).await.unwrap();
    sign_in_first_time(&w, &mut cust, "cust1").await;
    let csrf = Client::csrf_of(&cust.get("/").await.unwrap());
    let mut answers = Vec::new();
    for target in ["op1", "no.such.user", "prov1"] {
        let r = cust
            .request(
                "POST",
                &format!("/api/v1/users/{target}/reset-password"),
                Some(("password=tako-yaki+lantern+51+harbour".into(), "application/x-www-form-urlencoded")),
                &[("x-csrf-token", &csrf)],
            )
            .await
            .unwrap();
        answers.push((r.status, r.body.replace(target, "LOGIN")));
    }
    assert_eq!(answers[0], answers[1], "an operator's login answers like an unknown one");
    assert_eq!(answers[1], answers[2], "another institution's provider answers like an unknown one");
    assert_eq!(answers[0].0, 404);

    // The right password, again and again, never finishing the second factor: one unfinished
    // session at a time, and the tenth sign-in in five minutes is the last.
    let mut r = handshake(&w, jp(22), Some(w.cert("rev1"))).await.unwrap();
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(r.password("rev1", PW).await.status);
    }
    assert_eq!(statuses[..10], [303; 10], "{statuses:?}");
    assert_eq!(statuses[10..], [429, 429], "{statuses:?}");
    let open: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions WHERE login = 'rev1' AND ended_at IS NULL")
        .fetch_one(w.accounts.db().pool())
        .await
        .unwrap();
    assert_eq!(open, 1);
    w.server.unwrap().stop().await;
}

/// Re-check of the review: on the operators' listener, an operator's mistyped login (no such
/// user) is answered plainly and counts toward no block — before, three typos blocked the
/// operator's own address, while the same typo on the admin pages counted nothing.
#[tokio::test]
async fn an_operators_typos_do_not_block_their_address() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy { threshold: 3, ..AutoBlockPolicy::default() }, |_| {}).await;
    let mut op = Client::connect(&w, w.op_addr, jp(5), Some(w.cert("op1"))).await.unwrap();
    sign_in_first_time(&w, &mut op, "op1").await;
    let page = op.get("/admin/users").await.unwrap();
    for _ in 0..5 {
        let r = op
            .request(
                "POST",
                "/api/v1/users/tanka.h/reset-password",
                Some(("password=tako-yaki+lantern+51+harbour".to_string(), "application/x-www-form-urlencoded")),
                &[("x-csrf-token", &Client::csrf_of(&page))],
            )
            .await
            .unwrap();
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let mut again = Client::connect(&w, w.op_addr, jp(5), Some(w.cert("op1"))).await.expect("the operator's address is not blocked");
    assert_eq!(again.get("/login").await.unwrap().status, 200);
    w.server.unwrap().stop().await;
}

/// Re-check of the review: what any page can make a visitor's browser do with the visitor's
/// own certificate — present one that has since been revoked (or expired), or fetch unknown
/// paths as images from another site — counts toward no block either; before, three of either
/// blocked the institution's address. Unknown paths asked for directly still do.
#[tokio::test]
async fn what_a_page_can_make_a_browser_do_counts_toward_no_block() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy { threshold: 3, ..AutoBlockPolicy::default() }, |_| {}).await;
    w.accounts.revoke_certificates(&Who::console(), Some("prov1"), None).await.unwrap();
    until("the revocation is in force", || async { handshake(&w, jp(16), Some(w.cert("prov1"))).await.is_err() }).await;
    let mut page = handshake(&w, jp(15), Some(w.cert("tanaka.h"))).await.unwrap();
    for i in 0..40 {
        assert!(handshake(&w, jp(15), Some(w.cert("prov1"))).await.is_err());
        let r = page.request("GET", &format!("/img{i}.png"), None, &[("sec-fetch-site", "cross-site"), ("sec-fetch-dest", "image")]).await;
        assert_eq!(r.unwrap().status, 404);
    }
    // A form posted from another site: refused, blocks nobody, and is on the record.
    for _ in 0..5 {
        let r = page
            .request(
                "POST",
                "/login",
                Some(("login=a&password=b".into(), "application/x-www-form-urlencoded")),
                &[("sec-fetch-site", "cross-site")],
            )
            .await;
        assert_eq!(r.unwrap().status, 403);
    }
    assert!(trail(&w).await.iter().any(|(a, o, _)| a == "access.cross_site" && o == "/login"));
    let mut fresh = handshake(&w, jp(15), Some(w.cert("tanaka.h"))).await.expect("85 such failures block nobody");
    assert_eq!(fresh.get("/login").await.unwrap().status, 200);
    for i in 0..3 {
        let _ = fresh.get(&format!("/wp-admin/{i}.php")).await;
    }
    until("three direct unknown paths block the address", || async { handshake(&w, jp(15), Some(w.cert("tanaka.h"))).await.is_err() })
        .await;
    w.server.unwrap().stop().await;
}
