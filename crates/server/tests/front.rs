//! The front door end to end: the real server on a random port with real TLS and client
//! certificates from Kura's CA, clients bound to other 127.x addresses that a generated RIR
//! statistics file places in Japan or elsewhere, the real store of record (SQLite, and
//! PostgreSQL when `KURA_TEST_POSTGRES` is set) and the real audit log (NET-1, HX-5, HX-6,
//! HX-9, HX-11, HIC-S3, HIC-S4, HIC-S9, HIC-U1–U4).

mod common;
use common::*;
use kura_accounts::Role;
use kura_accounts::Who;
use kura_gate::AutoBlockPolicy;
use kura_pki::{Ca, Subject};
use kura_server::routes::{Access, ROUTES, rule_for};
use kura_server::web::Listener;
use std::time::Duration;

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
        until("the revocation is in force", || async { handshake(&w, jp(2), Some(w.cert("prov1"))).await.is_err() }).await;

        // A foreign address is dropped at accept: no handshake happens at all.
        let failures_before = stats.handshake_failures.load(std::sync::atomic::Ordering::Relaxed);
        let refused_before = stats.refused.load(std::sync::atomic::Ordering::Relaxed);
        assert!(handshake(&w, jp(200), Some(good)).await.is_err());
        until("the refusal is counted", || async { stats.refused.load(std::sync::atomic::Ordering::Relaxed) > refused_before }).await;
        assert_eq!(stats.refused.load(std::sync::atomic::Ordering::Relaxed), refused_before + 1);
        assert_eq!(
            stats.handshake_failures.load(std::sync::atomic::Ordering::Relaxed),
            failures_before,
            "no TLS work for a foreign address"
        );

        // Automatic block: three handshakes with a bad certificate (another CA's) from
        // 127.0.0.9 block it at once, even with a good certificate; the block is on the record
        // and expires. Handshakes without any certificate count toward no block.
        for _ in 0..3 {
            assert!(handshake(&w, jp(12), None).await.is_err());
        }
        handshake(&w, jp(12), Some(good)).await.expect("three handshakes without a certificate block nobody");
        for _ in 0..3 {
            assert!(handshake(&w, jp(9), Some(&foreign)).await.is_err());
        }
        until("127.0.0.9 is blocked", || async { handshake(&w, jp(9), Some(good)).await.is_err() }).await;
        handshake(&w, jp(10), Some(good)).await.expect("a neighbour is not blocked");
        // The block goes on the record from its own task: wait for it, with a deadline.
        until("the block is on the record", || async { trail(&w).await.iter().any(|(a, o, _)| a == "gate.block" && o == "127.0.0.9") })
            .await;
        until("the block expires (2 s)", || async { handshake(&w, jp(9), Some(good)).await.is_ok() }).await;
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
    let w = world(db, AutoBlockPolicy::default(), move |c| c.ip_blocklists = vec![l2.display().to_string()]).await;
    let good = w.cert("tanaka.h");
    handshake(&w, jp(4), Some(good)).await.unwrap();
    std::fs::write(&list, "127.0.0.4\n127.0.0.16/28\n").unwrap();
    until("the new list is in force", || async { handshake(&w, jp(4), Some(good)).await.is_err() }).await;
    assert!(handshake(&w, jp(20), Some(good)).await.is_err());
    handshake(&w, jp(5), Some(good)).await.unwrap();
    // A broken list keeps the previous one in force: once the server has tried to read it,
    // the old list still refuses.
    let stats = w.server.as_ref().unwrap().stats.clone();
    let errors = stats.list_errors.load(std::sync::atomic::Ordering::Relaxed);
    std::fs::write(&list, "127.0.0.999\n").unwrap();
    until("the broken list was read", || async { stats.list_errors.load(std::sync::atomic::Ordering::Relaxed) > errors }).await;
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
        let wrong = wrong_code(&w, &secret);
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
    let w = world(db, AutoBlockPolicy::default(), |c| c.trusted_proxies = vec!["127.0.0.50/32".into()]).await;
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
        for _ in 0..5 {
            assert_eq!(c.password("rev1", "wrong wrong wrong").await.status, 401);
        }
        assert!(w.accounts.user("rev1").await.unwrap().locked);
        let r = c.password("rev1", PW).await;
        assert_eq!(r.status, 401, "even the right password, answered like any failure");
        assert!(r.body.contains("ロック") && r.body.contains("locks"), "the lock is named as a possible cause: {}", r.body);

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
    // Every refusal here would count toward blocking 127.0.0.2: blocking is off for this test.
    let w = world(db, AutoBlockPolicy { threshold: 0, ..AutoBlockPolicy::default() }, |_| {}).await;
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
            let which = if listener == "portal" { Listener::Portal } else { Listener::Operator };
            for r in ROUTES {
                let Access::Roles(roles) = r.access else { continue };
                let served = if listener == "portal" { r.portal } else { r.operator };
                // Another rule for the same method and path may serve this listener instead.
                if !served && rule_for(which, &r.method.parse().unwrap(), r.path).is_some() {
                    continue;
                }
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
            // A method no rule names, on a path that exists: refused like an unknown route.
            let reply = c.request("DELETE", "/account", None, &[("x-csrf-token", &csrf)]).await.unwrap();
            assert_eq!(reply.status, 404, "{login} {listener} DELETE /account");
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

/// One error type answers in the form the client reads: JSON under `/api/` (unknown paths and
/// methods included), a page in the user's language elsewhere; and what a user can put into a
/// page (here the display name an operator typed) is escaped by the templates (HIC-S12).
#[tokio::test]
async fn errors_answer_as_json_or_page_and_pages_escape_markup() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();

    let json_error = |r: &Reply| {
        assert_eq!(r.headers.get("content-type").and_then(|v| v.to_str().ok()), Some("application/json"), "{}", r.body);
        let v: serde_json::Value = serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.body));
        assert!(v["error"].as_str().is_some_and(|t| !t.is_empty()) && v["message_ja"].as_str().is_some_and(|t| !t.is_empty()), "{v}");
        v
    };
    let r = c.get("/api/v1/no-such-route").await.unwrap();
    assert_eq!(r.status, 404);
    assert_eq!(json_error(&r)["error"], "not found");
    let r = c.request("DELETE", "/api/v1/me", None, &[]).await.unwrap();
    assert_eq!(r.status, 404, "another method is an unknown route");
    json_error(&r);
    let r = c.get("/api/v1/me").await.unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(json_error(&r)["error"], "sign in first");
    let r = c.request("POST", "/api/v1/session", Some(("{\"login\": 1}".into(), "application/json")), &[]).await.unwrap();
    assert_eq!(r.status, 422, "a body of the wrong shape");
    assert!(!json_error(&r)["error"].as_str().unwrap().contains("invalid type"), "never the parser's own words");

    // The portal: a page, Japanese first with the English beside it; English only once chosen.
    let r = c.get("/no-such-page").await.unwrap();
    assert_eq!(r.status, 404);
    assert!(r.headers.get("content-type").unwrap().to_str().unwrap().starts_with("text/html"));
    assert!(r.body.contains("<html lang=\"ja\">") && r.body.contains("ページがありません / not found"), "{}", r.body);
    let r = c.get("/lang/en").await.unwrap();
    assert_eq!(r.status, 303);
    let r = c.get("/no-such-page").await.unwrap();
    assert!(
        r.body.contains("<html lang=\"en\">") && r.body.contains(">not found<") && !r.body.contains("ページがありません"),
        "{}",
        r.body
    );
    // Not signed in on the portal: to the login page, saying why.
    let r = c.get("/account").await.unwrap();
    assert_eq!((r.status, r.location()), (303, "/login?end=unknown"));

    // Markup in a display name is shown as text.
    let hostile = "<script>alert(\"kura\")</script><img src=x onerror=alert(1)>";
    let op = Who::console();
    let new =
        kura_accounts::NewUser { login: "evil".into(), institution: "1310000001".into(), role: Role::Researcher, name: hostile.into() };
    w.accounts.add_user(&op, &new, Some(PW)).await.unwrap();
    let i = w.ca.issue(&Subject::User { login: "evil".into(), institution: "1310000001".into() }, 30).unwrap();
    w.accounts.register_certificate(&op, &i.fingerprint.to_string(), &i.serial, Some("evil"), "1310000001", i.not_after).await.unwrap();
    let mut e = Client::connect(&w, w.addr, jp(2), Some(&i)).await.unwrap();
    sign_in_first_time(&w, &mut e, "evil").await;
    let home = e.get("/").await.unwrap();
    assert_eq!(home.status, 200);
    assert!(home.body.contains("&lt;script&gt;alert(&quot;kura&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"), "{}", home.body);
    assert!(!home.body.contains("<script") && !home.body.contains("<img"), "{}", home.body);
    w.server.unwrap().stop().await;
}

/// A cookie whose name only decodes to a session or pre-sign-in cookie's name is not that
/// cookie: a browser applies the `__Host-` rules to the name as given, so a sibling site
/// could plant `__Host%2Dkura` where it can never plant `__Host-kura`.
#[tokio::test]
async fn percent_encoded_cookie_names_are_other_cookies() {
    let scratch = tempfile::tempdir().unwrap();
    let db = kura_db::Db::open_sqlite(&scratch.path().join("t.db")).await.unwrap();
    let w = world(db, AutoBlockPolicy::default(), |_| {}).await;
    let mut c = handshake(&w, jp(2), Some(w.cert("tanaka.h"))).await.unwrap();
    sign_in_first_time(&w, &mut c, "tanaka.h").await;
    assert_eq!(c.get("/").await.unwrap().status, 200);
    let token = c.cookies["__Host-kura"].clone();
    // From here on the test writes the Cookie header itself.
    c.cookies.clear();
    // The real session cookie first, a planted look-alike after it: still signed in.
    let planted = format!("__Host-kura={token}; __Host%2Dkura=planted; %5F%5FHost-kura=planted");
    let r = c.request("GET", "/", None, &[("cookie", &planted)]).await.unwrap();
    assert_eq!(r.status, 200, "a look-alike name does not shadow the session");
    // Only the look-alike: no session at all.
    let r = c.request("GET", "/", None, &[("cookie", "__Host%2Dkura=planted")]).await;
    let r = r.unwrap();
    assert_eq!((r.status, r.location()), (303, "/login?end=unknown"));
    // A planted pre-sign-in token is not taken up by the login page.
    let known = "a".repeat(64);
    let r = c.request("GET", "/login", None, &[("cookie", &format!("__Host%2Dkura-pre={known}"))]).await.unwrap();
    assert!(!Client::csrf_of(&r).contains(&known), "the login form's token is not the planted one");
    w.server.unwrap().stop().await;
}
