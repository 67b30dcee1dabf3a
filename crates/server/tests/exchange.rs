//! Files between institutions over the JSON API, on the real server with real TLS, on SQLite
//! and PostgreSQL (issue 18 §3; HX-7, HX-8): a provider sends a file to another institution,
//! which lists and downloads it; a third institution gets 404 with the same words as for an
//! identifier nobody used, for every route; another role gets 403; the trail is the same for
//! sender and receiver; malware is refused (422) and nothing is stored.

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use common::*;
use kura_accounts::{NewUser, Role, Who};
use kura_gate::AutoBlockPolicy;
use kura_pki::Subject;
use serde_json::Value;

struct User {
    c: Client,
    csrf: String,
}

impl User {
    async fn call(&mut self, method: &str, path: &str, body: Option<(String, &str)>) -> (u16, String) {
        let r = self.c.request(method, path, body, &[("x-csrf-token", &self.csrf)]).await.unwrap();
        (r.status, r.body)
    }

    async fn json(&mut self, method: &str, path: &str) -> Value {
        let (status, body) = self.call(method, path, None).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }
}

async fn user(w: &World, login: &str, ip: u8) -> User {
    let mut c = Client::connect(w, w.addr, jp(ip), Some(w.cert(login))).await.unwrap();
    sign_in_first_time(w, &mut c, login).await;
    let home = c.get("/").await.unwrap();
    let csrf = Client::csrf_of(&home);
    User { c, csrf }
}

/// The `kura` binary beside this test (a workspace's worker; not started here).
fn kura_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().and_then(|d| d.parent()).unwrap().join("kura")
}

#[tokio::test]
async fn only_sender_and_receiver_see_a_transfer_over_the_api() {
    let scratch = tempfile::tempdir().unwrap();
    let scanner = clamd::Clamd::start();
    for db in kura_db::testing::databases(scratch.path()).await {
        let mut w = world_adjusted(
            db,
            AutoBlockPolicy::default(),
            kura_server::front::FrontLimits::default(),
            |_| {},
            |app, s| {
                let layout = app.layout();
                let dirs = kura_workspace::Dirs {
                    workspaces: layout.workspaces(),
                    certificates: layout.certificates(),
                    airlock: layout.airlock(),
                };
                let cmd = kura_query::worker::WorkerCommand { program: kura_bin(), args: vec![kura_query::worker::WORKER_ARG.into()] };
                s.workspaces = Some(kura_workspace::Workspaces::configured(
                    app.home().clone(),
                    s.research.clone().unwrap(),
                    dirs,
                    cmd,
                    kura_disclosure::LoadedPolicy::default_ndb(),
                    kura_scan::Scanner::at(&scanner.socket),
                ));
            },
        )
        .await;
        // A provider of the receiving institution and one of a third.
        let op = Who::console();
        w.accounts.add_institution(&op, "2710000003", "Third").await.unwrap();
        for (login, inst) in [("prov2", "1310000001"), ("prov3", "2710000003")] {
            w.accounts
                .add_user(
                    &op,
                    &NewUser { login: login.into(), institution: inst.into(), role: Role::Provider, name: String::new() },
                    Some(PW),
                )
                .await
                .unwrap();
            let i = w.ca.issue(&Subject::User { login: login.into(), institution: inst.into() }, 30).unwrap();
            w.accounts.register_certificate(&op, &i.fingerprint.to_string(), &i.serial, Some(login), inst, i.not_after).await.unwrap();
            w.certs.insert(login.into(), i);
        }
        let mut p1 = user(&w, "prov1", 11).await;
        let mut p2 = user(&w, "prov2", 12).await;
        let mut p3 = user(&w, "prov3", 13).await;
        let mut researcher = user(&w, "tanaka.h", 14).await;

        let content = "受診者番号,BMI\nP0001,23.1\n".to_string();
        let (status, body) =
            p1.call("POST", "/api/v1/exchange?name=results.csv&to=1310000001&note=2026", Some((content.clone(), "text/csv"))).await;
        assert_eq!(status, 201, "{body}");
        let v: Value = serde_json::from_str(&body).unwrap();
        let id = v["transfer"]["id"].as_str().unwrap().to_string();
        assert_eq!(v["transfer"]["receivers"], serde_json::json!(["1310000001"]));

        // The receiver lists and downloads it.
        let list = p2.json("GET", "/api/v1/exchange").await;
        assert!(list["transfers"].as_array().unwrap().iter().any(|t| t["id"] == id.as_str()), "{list}");
        let (status, got) = p2.call("GET", &format!("/api/v1/exchange/{id}/content"), None).await;
        assert_eq!((status, got.as_str()), (200, content.as_str()));

        // A third institution: 404 on every route, in the same words as an unused identifier.
        let unused = "XF-0000000000000000";
        for (method, tail) in [("GET", ""), ("GET", "/content"), ("POST", "/delete")] {
            let (s1, b1) = p3.call(method, &format!("/api/v1/exchange/{id}{tail}"), None).await;
            let (s2, b2) = p3.call(method, &format!("/api/v1/exchange/{unused}{tail}"), None).await;
            assert_eq!((s1, s2), (404, 404), "{method} {tail}: {b1}");
            assert_eq!(b1.replace(&id, "<id>"), b2.replace(unused, "<id>"), "{method} {tail}");
        }
        let list = p3.json("GET", "/api/v1/exchange").await;
        assert_eq!(list["transfers"], serde_json::json!([]));
        // Another role is not admitted at all.
        let (status, _) = researcher.call("GET", "/api/v1/exchange", None).await;
        assert_eq!(status, 403);

        // The trail: the same for sender and receiver (send, download).
        let t1 = p1.json("GET", &format!("/api/v1/exchange/{id}")).await;
        let t2 = p2.json("GET", &format!("/api/v1/exchange/{id}")).await;
        assert_eq!(t1["trail"], t2["trail"]);
        let steps: Vec<&str> = t1["trail"].as_array().unwrap().iter().map(|e| e["step"].as_str().unwrap()).collect();
        assert_eq!(steps, ["send", "download"]);

        // Malware: refused, recorded, not stored.
        let eicar = String::from_utf8(kura_scan::eicar()).unwrap();
        let (status, body) = p1.call("POST", "/api/v1/exchange?name=x.csv&to=1310000001", Some((eicar, "text/csv"))).await;
        assert!(status == 422 && body.contains(clamd::EICAR_SIGNATURE), "{status} {body}");
        let list = p1.json("GET", "/api/v1/exchange").await;
        assert_eq!(list["transfers"].as_array().unwrap().len(), 1, "the malware was not stored");

        // Both `to` and `group`, or neither: refused with what to do.
        let (status, body) = p1.call("POST", "/api/v1/exchange?name=y.csv", Some(("a\n".into(), "text/csv"))).await;
        assert!(status == 422 && body.contains("either the receiving institution"), "{status} {body}");

        // The portal: the send form (the token inside the multipart body) leads to the
        // transfer's page; the receiver's page shows the same trail; a third institution's
        // request is a 404 page; the list page shows the form and the transfer.
        let boundary = "kura-test-boundary";
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"page.csv\"\r\nContent-Type: text/csv\r\n\r\na,b\n1,2\n\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"to\"\r\n\r\n1310000001\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nportal\r\n--{boundary}--\r\n",
            p1.csrf
        );
        let ctype = format!("multipart/form-data; boundary={boundary}");
        let r = p1.c.request("POST", "/exchange", Some((form, &ctype)), &[]).await.unwrap();
        assert_eq!(r.status, 303, "{}", r.body);
        let page = r.headers["location"].to_str().unwrap().to_string();
        assert!(page.starts_with("/exchange/XF-"), "{page}");
        let pid = page.trim_start_matches("/exchange/").to_string();
        let seen = p2.c.get(&page).await.unwrap();
        assert_eq!(seen.status, 200);
        assert!(
            seen.body.contains("x-trail")
                && seen.body.contains("page.csv")
                && seen.body.contains(&format!("/api/v1/exchange/{pid}/content")),
            "{}",
            seen.body
        );
        assert!(!seen.body.contains("/delete"), "only the sender is offered the deletion");
        assert!(p1.c.get(&page).await.unwrap().body.contains(&format!("/exchange/{pid}/delete")));
        assert_eq!(p3.c.get(&page).await.unwrap().status, 404);
        let listing = p2.c.get("/exchange").await.unwrap();
        assert!(listing.status == 200 && listing.body.contains("exchange-send") && listing.body.contains(&pid), "{}", listing.body);
        assert_eq!(researcher.c.get("/exchange").await.unwrap().status, 403);

        // Only the sender deletes; then the receiver cannot download it.
        let (status, _) = p2.call("POST", &format!("/api/v1/exchange/{id}/delete"), None).await;
        assert_eq!(status, 403);
        let (status, body) = p1.call("POST", &format!("/api/v1/exchange/{id}/delete"), None).await;
        assert_eq!(status, 200, "{body}");
        let (status, _) = p2.call("GET", &format!("/api/v1/exchange/{id}/content"), None).await;
        assert_eq!(status, 403);

        // Retention: past its period, the server deletes a file on its own (nobody uses the
        // exchange meanwhile), and the deletion is the last step of its trail.
        let sealed = w.dir.join("home").join("exchange").join(format!("{pid}.sealed"));
        assert!(sealed.exists());
        w.accounts.clock().advance(31 * 86_400);
        until("the server deletes the expired file", || {
            let sealed = sealed.clone();
            async move { !sealed.exists() }
        })
        .await;
        // (The sessions have expired with the clock: read the record itself.)
        let mut conn = w.accounts.db().pool().acquire().await.unwrap();
        let state: String =
            sqlx::query_scalar("SELECT state FROM exchange_transfers WHERE id = $1").bind(&pid).fetch_one(&mut *conn).await.unwrap();
        let last: String = sqlx::query_scalar("SELECT step FROM exchange_events WHERE transfer_id = $1 ORDER BY seq DESC LIMIT 1")
            .bind(&pid)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        assert_eq!((state.as_str(), last.as_str()), ("deleted", "expire"));
        drop(conn);
        w.server.take();
    }
}
