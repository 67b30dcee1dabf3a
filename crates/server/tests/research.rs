//! The research lifecycle and a project's workspace over the JSON API, on the real server with
//! real TLS and a real worker process, on SQLite and PostgreSQL (WG-6, HIC-P1, HIC-P3,
//! HIC-S13, HIC-IO3): apply → check → two votes → approve fewer columns → accept → SQL in the
//! workspace → notice → end, with the wrong party, a non-member and the ended project refused.

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use common::*;
use kura_accounts::{NewUser, Role, Who};
use kura_gate::AutoBlockPolicy;
use kura_pki::Subject;
use serde_json::{Value, json};

/// The `kura` binary beside this test (`cargo test --workspace` builds it for its own tests).
fn kura_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(|d| d.parent()).unwrap().join("kura");
    assert!(bin.is_file(), "{} is missing: run the tests with `cargo test --workspace`", bin.display());
    bin
}

/// A signed-in API user: its connection (with the session cookie) and the session's CSRF token.
struct User {
    c: Client,
    csrf: String,
}

impl User {
    async fn call(&mut self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| (b.to_string(), "application/json"));
        let r = self.c.request(method, path, body, &[("x-csrf-token", &self.csrf)]).await.unwrap();
        let v = serde_json::from_str(&r.body).unwrap_or(Value::Null);
        (r.status, v)
    }

    async fn ok(&mut self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.call(method, path, body).await;
        assert!(status == 200 || status == 201, "{method} {path}: {status} {v}");
        v
    }
}

async fn user(w: &World, login: &str, ip: u8) -> User {
    let mut c = Client::connect(w, w.addr, jp(ip), Some(w.cert(login))).await.unwrap();
    sign_in_first_time(w, &mut c, login).await;
    let home = c.get("/").await.unwrap();
    let csrf = Client::csrf_of(&home);
    User { c, csrf }
}

#[tokio::test]
async fn from_application_to_the_end_of_use_over_the_api() {
    let scratch = tempfile::tempdir().unwrap();
    // The airlock's malware scanner (issue 17 §4): a real clamd with the tests' signatures.
    let scanner = clamd::Clamd::start();
    for db in kura_db::testing::databases(scratch.path()).await {
        let mut kept = None;
        let mut home_root = None;
        let mut w = world_adjusted(
            db,
            AutoBlockPolicy::default(),
            kura_server::front::FrontLimits::default(),
            |_| {},
            |app, s| {
                // Data in the home, and workspaces whose workers are the real `kura` binary.
                let out = std::process::Command::new(kura_bin())
                    .arg("--home")
                    .arg(app.home().root())
                    .args(["synth", "--persons", "200", "--seed", "7", "--months", "1"])
                    .output()
                    .unwrap();
                assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
                home_root = Some(app.home().root().to_path_buf());
                s.catalogue = app.research_catalogue().unwrap();
                let research = s.research.clone().unwrap();
                let cmd = kura_query::worker::WorkerCommand { program: kura_bin(), args: vec![kura_query::worker::WORKER_ARG.into()] };
                let layout = app.layout();
                let dirs = kura_workspace::Dirs {
                    workspaces: layout.workspaces(),
                    certificates: layout.certificates(),
                    airlock: layout.airlock(),
                };
                let ws = kura_workspace::Workspaces::configured(
                    app.home().clone(),
                    research,
                    dirs,
                    cmd,
                    kura_disclosure::LoadedPolicy::default_ndb(),
                    kura_scan::Scanner::at(&scanner.socket),
                );
                kept = Some(ws.clone());
                s.workspaces = Some(ws);
            },
        )
        .await;
        // A custodian, two reviewers and a researcher of another institution than the team's.
        let op = Who::console();
        for (login, role) in [("cust2", Role::Custodian), ("rev2", Role::Reviewer), ("rev3", Role::Reviewer), ("x1", Role::Researcher)] {
            w.accounts
                .add_user(&op, &NewUser { login: login.into(), institution: "9900000001".into(), role, name: String::new() }, Some(PW))
                .await
                .unwrap();
            let i = w.ca.issue(&Subject::User { login: login.into(), institution: "9900000001".into() }, 30).unwrap();
            w.accounts
                .register_certificate(&op, &i.fingerprint.to_string(), &i.serial, Some(login), "9900000001", i.not_after)
                .await
                .unwrap();
            w.certs.insert(login.into(), i);
        }
        let mut r1 = user(&w, "tanaka.h", 3).await;
        let mut c2 = user(&w, "cust2", 4).await;
        let mut v2 = user(&w, "rev2", 5).await;
        let mut v3 = user(&w, "rev3", 6).await;
        let mut x1 = user(&w, "x1", 7).await;
        let mut c1 = user(&w, "cust1", 8).await;

        // Apply: the draft's id, then the steps; the wrong party is refused with 403.
        let new = json!({"title": "糖尿病の受療動向", "purpose": "地域差", "dataset": "ndb",
            "columns": [{"table": "re", "column": "id5", "reason": "人単位"}, {"table": "re", "column": "sex"}, {"table": "re", "column": "age"}]});
        let (status, v) = x1.call("POST", "/api/v1/applications", Some(json!({"title": 1}))).await;
        assert_eq!(status, 422, "{v}");
        let a = r1.ok("POST", "/api/v1/applications", Some(new)).await;
        let id = a["application"]["id"].as_str().unwrap().to_string();
        let path = |step: &str| format!("/api/v1/applications/{id}/{step}");
        // The protocol PDF: the body is the file itself. Only the applicant attaches, with the
        // session's CSRF token; only a PDF (sizes: the domain's tests).
        let doc = "%PDF-1.7\n研究計画書 protocol\n%%EOF\n".to_string();
        let upload = path("attachments") + "?name=protocol.pdf";
        let r = r1.c.request("POST", &upload, Some((doc.clone(), "application/pdf")), &[("x-csrf-token", &r1.csrf)]).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        let r = r1.c.request("POST", &upload, Some((doc.clone(), "application/pdf")), &[]).await.unwrap();
        assert_eq!(r.status, 403, "no CSRF token: {}", r.body);
        let r = x1.c.request("POST", &upload, Some((doc.clone(), "application/pdf")), &[("x-csrf-token", &x1.csrf)]).await.unwrap();
        assert_eq!(r.status, 404, "another researcher does not see the draft: {}", r.body);
        let html = "<html><script>alert(1)</script></html>".to_string();
        let r = r1.c.request("POST", &upload, Some((html, "application/pdf")), &[("x-csrf-token", &r1.csrf)]).await.unwrap();
        assert!(r.status == 422 && r.body.contains("not a PDF"), "{} {}", r.status, r.body);
        // Up to the configured size (10 MiB): more than a form's 64 KiB passes the front door.
        let big = format!("%PDF-1.7\n{}\n%%EOF\n", "x".repeat(1 << 20));
        let r =
            r1.c.request("POST", &(path("attachments") + "?name=big.pdf"), Some((big, "application/pdf")), &[("x-csrf-token", &r1.csrf)])
                .await
                .unwrap();
        assert_eq!(r.status, 201, "{}", r.body.chars().take(300).collect::<String>());
        // A download, never shown inline.
        let file = path("attachments/1");
        let r = r1.c.request("GET", &file, None, &[]).await.unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, doc.as_str()));
        assert_eq!(r.headers["content-type"], "application/pdf");
        assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"protocol.pdf\""));
        assert_eq!(x1.c.request("GET", &file, None, &[]).await.unwrap().status, 404);
        r1.ok("POST", &path("submit"), None).await;
        // Submitted: the committee reads it; the applicant can no longer change it.
        assert_eq!(v2.c.request("GET", &file, None, &[]).await.unwrap().body, doc);
        let r = r1.c.request("POST", &upload, Some((doc.clone(), "application/pdf")), &[("x-csrf-token", &r1.csrf)]).await.unwrap();
        assert_eq!(r.status, 409, "{}", r.body);
        let (status, v) = r1.call("POST", &path("vote"), Some(json!({"approve": true}))).await;
        assert_eq!(status, 403, "{v}");
        // The team's own institution may not check it (conflict of interest).
        let (status, v) = c1.call("POST", &path("check"), Some(json!({"verdict": "accept"}))).await;
        assert_eq!(status, 403, "{v}");
        assert!(v["error"].as_str().unwrap().contains("conflict of interest"), "{v}");
        c2.ok("POST", &path("check"), Some(json!({"verdict": "accept"}))).await;
        v2.ok("POST", &path("vote"), Some(json!({"approve": true, "note": "公益性あり"}))).await;
        v3.ok("POST", &path("vote"), Some(json!({"approve": true}))).await;
        // Approving fewer columns: the grant is exactly what was approved.
        c2.ok("POST", &path("decide"), Some(json!({"decision": "approve", "columns": ["re.id5", "re.sex"]}))).await;
        let (status, _) = r1.call("POST", &path("accept"), Some(json!({"bogus": 1}))).await;
        assert_eq!(status, 422, "unknown fields are refused");
        let v = r1.ok("POST", &path("accept"), None).await;
        let project = v["project"]["id"].as_str().unwrap().to_string();
        assert_eq!(v["project"]["columns"], json!([["re", "id5"], ["re", "sex"]]));
        let shown = c2.ok("GET", &format!("/api/v1/applications/{id}"), None).await;
        assert_eq!(shown["application"]["state"], "provisioned");
        assert!(shown["application"]["clock"]["provisioned_after_secs"].is_i64(), "{shown}");
        let listed = c2.ok("GET", "/api/v1/applications", None).await;
        assert!(listed["applications"].as_array().unwrap().iter().any(|a| a["id"] == id.as_str()));

        // The workspace: SQL in the project's worker, project pseudonyms, a saved table.
        let ws = |what: &str| format!("/api/v1/projects/{project}/{what}");
        let v = r1
            .ok(
                "POST",
                &ws("sql"),
                Some(json!({"sql": "SELECT sex, count(DISTINCT id5) AS persons FROM re GROUP BY sex ORDER BY sex", "save_as": "by_sex"})),
            )
            .await;
        let rows = v["statements"][0]["rows"].as_array().unwrap();
        assert_eq!(v["statements"][0]["columns"], json!(["sex", "persons"]));
        assert!(!rows.is_empty() && rows.iter().all(|r| r["persons"].as_i64().unwrap() > 0), "{v}");
        assert_eq!(v["saved_tables"], json!(["by_sex"]));
        let v = r1.ok("POST", &ws("sql"), Some(json!({"sql": "SELECT id5 FROM re WHERE id5 <> '9' LIMIT 1"}))).await;
        let pseudonym = v["statements"][0]["rows"][0]["id5"].as_str().unwrap().to_string();
        assert_eq!(pseudonym.len(), 64);
        let (status, v) = r1.call("POST", &ws("sql"), Some(json!({"sql": "SELECT age FROM re"}))).await;
        assert_eq!(status, 422, "a column outside the grant: {v}");
        assert!(v["error"].as_str().unwrap().contains("not granted"), "{v}");
        let status_v = r1.ok("GET", &ws("workspace"), None).await;
        let lines = status_v["status"]["confinement"].as_array().unwrap();
        for m in ["landlock", "seccomp", "network namespace", "memory limit", "cpu limit"] {
            assert!(lines.iter().any(|l| l == &json!(format!("{m}: on"))), "{m}: {status_v}");
        }
        // The same worker answers the next request (it is kept between requests).
        let pid = status_v["status"]["pid"].as_u64().unwrap();
        r1.ok("POST", &ws("sql"), Some(json!({"sql": "SELECT count(*) FROM by_sex"}))).await;
        assert_eq!(r1.ok("GET", &ws("workspace"), None).await["status"]["pid"].as_u64(), Some(pid));
        // The dataset written again (data withdrawn or added): the kept worker, which reads an
        // extract of the old data, is replaced and the extract written afresh.
        let count = "SELECT count(*) AS n FROM re";
        let before = r1.ok("POST", &ws("sql"), Some(json!({"sql": count}))).await["statements"][0]["rows"][0]["n"].clone();
        let out = std::process::Command::new(kura_bin())
            .arg("--home")
            .arg(home_root.as_ref().unwrap())
            .args(["synth", "--persons", "100", "--seed", "8", "--months", "1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let after = r1.ok("POST", &ws("sql"), Some(json!({"sql": count}))).await["statements"][0]["rows"][0]["n"].clone();
        assert_ne!(after, before, "the workspace answers from the dataset as it is now");
        let pid = r1.ok("GET", &ws("workspace"), None).await["status"]["pid"].as_u64().unwrap();
        // An idle worker is stopped (the server does it after WORKSPACE_IDLE); the next request
        // starts another.
        let pool = kept.clone().unwrap();
        assert_eq!(pool.running(), 1);
        assert_eq!(pool.stop_idle(std::time::Duration::ZERO), 1);
        assert_eq!(pool.running(), 0);
        let again = r1.ok("GET", &ws("workspace"), None).await["status"]["pid"].as_u64().unwrap();
        assert_ne!(again, pid, "a new worker");
        // A member removes a saved table.
        r1.ok("POST", &ws("sql"), Some(json!({"sql": "SELECT 1 AS x", "save_as": "tmp1"}))).await;
        let v = r1.ok("POST", &ws("tables/tmp1/drop"), None).await;
        assert_eq!(v["saved_tables"], json!(["by_sex"]));
        let (status, _) = x1.call("POST", &ws("tables/by_sex/drop"), None).await;
        assert_eq!(status, 403);
        // Members only: 403 for a researcher of another project, or of none.
        let (status, v) = x1.call("POST", &ws("sql"), Some(json!({"sql": "SELECT 1"}))).await;
        assert_eq!(status, 403, "{v}");
        let (status, _) = x1.call("GET", &ws("tables"), None).await;
        assert_eq!(status, 403);
        let (status, _) = x1.call("GET", &format!("/api/v1/projects/{project}"), None).await;
        assert_eq!(status, 404, "a project one is not in is not shown");
        // A custodian may not run SQL in a workspace (the route is the researchers').
        let (status, _) = c2.call("POST", &ws("sql"), Some(json!({"sql": "SELECT 1"}))).await;
        assert_eq!(status, 403);

        // The airlock over the API (issues 17 and 22): a table checked cell by cell, two blind
        // reviewers outside the project, a custodian's release, the package for members only;
        // a file brought in, scanned and approved by a custodian outside the project.
        let (status, v) = r1
            .call("POST", &ws("outputs"), Some(json!({"name": "by_sex", "query": "SELECT sex, count(*) AS n FROM re", "bogus": 1})))
            .await;
        assert_eq!(status, 422, "unknown fields are refused: {v}");
        let v = r1
            .ok("POST", &ws("outputs"), Some(json!({"name": "by_sex", "query": "SELECT sex, count(*) AS receipts FROM re GROUP BY sex"})))
            .await;
        let out = v["output"]["id"].as_str().unwrap().to_string();
        let verdict = &v["output"]["files"][0]["verdict"];
        assert_eq!(verdict["status"], "pass", "{v}");
        assert!(verdict["cells"][0][0]["findings"].is_array(), "verdicts cell by cell: {v}");
        let o = |what: &str| format!("/api/v1/outputs/{out}/{what}");
        let (status, _) = x1.call("GET", &format!("/api/v1/outputs/{out}"), None).await;
        assert_eq!(status, 404, "a researcher outside the project does not see it");
        let eicar = String::from_utf8(kura_scan::eicar()).unwrap();
        let r =
            r1.c.request("POST", &(o("files") + "?name=figure.svg"), Some((eicar.clone(), "image/svg+xml")), &[("x-csrf-token", &r1.csrf)])
                .await
                .unwrap();
        assert!(r.status == 422 && r.body.contains(clamd::EICAR_SIGNATURE), "malware on the way out: {} {}", r.status, r.body);
        r1.ok("POST", &o("submit"), None).await;
        let (status, v) = r1.call("POST", &o("review"), Some(json!({"decision": "approve"}))).await;
        assert_eq!(status, 403, "the author does not review: {v}");
        // The reviewers open the file they review; a researcher outside the project cannot.
        let r = v2.c.request("GET", &o("files/1"), None, &[]).await.unwrap();
        assert!(r.status == 200 && r.body.starts_with("sex,receipts"), "the reviewer reads the table: {} {}", r.status, r.body);
        assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
        let csp = r.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.starts_with("sandbox"), "a download keeps its own sandbox policy: {csp}");
        let (status, _) = x1.call("GET", &o("files/1"), None).await;
        assert_eq!(status, 404, "not for a researcher outside the project");
        let (status, _) = v2.call("GET", &o("files/9"), None).await;
        assert_eq!(status, 422, "no such file");
        v2.ok("POST", &o("review"), Some(json!({"decision": "approve", "comment": "OK"}))).await;
        let seen = v3.ok("GET", &format!("/api/v1/outputs/{out}"), None).await;
        assert_eq!(seen["output"]["reviews"], json!([]), "blind to the first vote: {seen}");
        assert_eq!(seen["output"]["hidden_votes"], 1);
        v3.ok("POST", &o("review"), Some(json!({"decision": "approve"}))).await;
        let (status, _) = v2.call("POST", &o("release"), None).await;
        assert_eq!(status, 403, "reviewers do not release");
        let v = c2.ok("POST", &o("release"), None).await;
        assert_eq!(v["output"]["state"], "released", "{v}");
        let r = r1.c.request("GET", &o("package/by_sex.csv"), None, &[]).await.unwrap();
        assert!(r.status == 200 && r.body.starts_with("sex,receipts"), "{} {}", r.status, r.body);
        assert!(r.headers["content-disposition"].to_str().unwrap().starts_with("attachment;"));
        let manifest: Value =
            serde_json::from_str(&r1.c.request("GET", &o("package/manifest.json"), None, &[]).await.unwrap().body).unwrap();
        assert!(manifest["scanner"].as_str().unwrap().starts_with("ClamAV"), "{manifest}");
        let r = r1.c.request("GET", &o("package/..%2Fkura.toml"), None, &[]).await.unwrap();
        assert!(r.status == 422 || r.status == 404, "only the package's own names: {} {}", r.status, r.body);
        let (status, _) = c2.call("GET", &o("package/by_sex.csv"), None).await;
        assert_eq!(status, 403, "the package is the researchers'");

        // Bring-in: a master, scanned, approved by a custodian outside the project, a table.
        let upload = ws("bringin") + "?name=codes.csv&note=master";
        let master = "code,label\n01,a\n02,b\n".to_string();
        let r = r1.c.request("POST", &upload, Some((master, "text/csv")), &[("x-csrf-token", &r1.csrf)]).await.unwrap();
        assert_eq!(r.status, 201, "{}", r.body);
        let bin: Value = serde_json::from_str(&r.body).unwrap();
        let bid = bin["bringin"]["id"].as_str().unwrap().to_string();
        let r = r1
            .c
            .request("POST", &(ws("bringin") + "?name=tool.com"), Some((eicar, "application/octet-stream")), &[("x-csrf-token", &r1.csrf)])
            .await
            .unwrap();
        assert!(r.status == 422 && r.body.contains(clamd::EICAR_SIGNATURE), "{} {}", r.status, r.body);
        let b = |what: &str| format!("/api/v1/bringin/{bid}/{what}");
        let (status, v) = r1.call("POST", &b("review"), Some(json!({"approve": true}))).await;
        assert!(status == 409 && v["error"].as_str().unwrap().contains("only a custodian"), "{status} {v}");
        let v = c2.ok("POST", &b("review"), Some(json!({"approve": true, "comment": "OK"}))).await;
        assert_eq!(v["bringin"]["state"], "approved", "{v}");
        let v = r1.ok("POST", &ws("sql"), Some(json!({"sql": "SELECT count(*) AS n FROM codes"}))).await;
        assert_eq!(v["statements"][0]["rows"][0]["n"], 2, "{v}");
        // The portal's upload form: the token inside the multipart body, a file of 3 MiB (more
        // than an extractor's 2 MiB default) whose content holds `&csrf=` (read as multipart
        // only, never as a urlencoded form).
        let project_id = project.as_str();
        let boundary = "kura-test-boundary";
        let script = format!("# analysis\nx <- 'a=1&csrf=zzz&b=2'\n{}", "#".repeat(3 << 20));
        let form = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"analysis.R\"\r\nContent-Type: text/plain\r\n\r\n{script}\r\n\
             --{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nR code\r\n--{boundary}--\r\n",
            r1.csrf
        );
        let ctype = format!("multipart/form-data; boundary={boundary}");
        let r = r1.c.request("POST", &format!("/projects/{project_id}/bringin"), Some((form, &ctype)), &[]).await.unwrap();
        assert_eq!(r.status, 303, "{}", r.body);
        assert!(r.headers["location"].to_str().unwrap().starts_with("/bringin/IN-"), "{:?}", r.headers);
        // The scanner's state and detections: custodians (and operators), not researchers.
        let (status, _) = r1.call("GET", "/api/v1/scanner", None).await;
        assert_eq!(status, 403);
        let v = c2.ok("GET", "/api/v1/scanner", None).await;
        assert_eq!(v["ok"], true, "{v}");
        assert_eq!(v["detections"].as_array().unwrap().len(), 2, "one each way: {v}");

        // End of use: notice by the applicant, end by a custodian; then 410 for the members.
        let (status, _) = c2.call("POST", &ws("notice"), None).await;
        assert_eq!(status, 403, "only researchers give notice");
        r1.ok("POST", &ws("notice"), None).await;
        let (status, _) = r1.call("POST", &ws("end"), None).await;
        assert_eq!(status, 403);
        let end = c2.ok("POST", &ws("end"), None).await;
        assert_eq!(end["project"]["state"], "ended");
        let cert: Value = serde_json::from_str(end["certificate"].as_str().unwrap()).unwrap();
        assert_eq!(cert["destroyed"]["saved_tables"], 2, "by_sex and the master brought in");
        assert!(end["proof"].as_str().unwrap().starts_with("c2sp.org/tlog-proof@v1\n"), "{end}");
        let (status, v) = r1.call("POST", &ws("sql"), Some(json!({"sql": "SELECT 1"}))).await;
        assert_eq!(status, 410, "{v}");
        assert!(v["error"].as_str().unwrap().contains("ended"), "{v}");
        let (status, _) = c2.call("POST", &ws("end"), None).await;
        assert_eq!(status, 409, "a project ends once");
        // The applicant can fetch the certificate and its proof afterwards.
        let v = r1.ok("GET", &ws("certificate"), None).await;
        assert_eq!(v["certificate"], end["certificate"]);

        // Sample datasets (HIC-P2): published by a custodian, queried by any researcher
        // without an application; reviewers and custodians do not query them.
        let (status, _) = x1.call("POST", "/api/v1/samples/ndb/sql", Some(json!({"sql": "SELECT count(*) AS n FROM re"}))).await;
        assert_eq!(status, 404, "not a sample yet");
        let (status, _) = x1.call("POST", "/api/v1/samples/ndb/publish", None).await;
        assert_eq!(status, 403, "researchers do not publish");
        c2.ok("POST", "/api/v1/samples/ndb/publish", Some(json!({"note": "学習用"}))).await;
        assert_eq!(x1.ok("GET", "/api/v1/samples", None).await["samples"][0]["dataset"], "ndb");
        let v = x1.ok("POST", "/api/v1/samples/ndb/sql", Some(json!({"sql": "SELECT count(*) AS n FROM re"}))).await;
        assert!(v["statements"][0]["rows"][0]["n"].as_i64().unwrap() > 0, "{v}");
        let (status, _) = x1.call("POST", "/api/v1/samples/ndb/sql", Some(json!({"sql": "SELECT 1", "save_as": "t"}))).await;
        assert_eq!(status, 422);
        let (status, _) = v2.call("POST", "/api/v1/samples/ndb/sql", Some(json!({"sql": "SELECT 1"}))).await;
        assert_eq!(status, 403);
        c2.ok("POST", "/api/v1/samples/ndb/withdraw", None).await;
        let (status, _) = x1.call("POST", "/api/v1/samples/ndb/sql", Some(json!({"sql": "SELECT 1"}))).await;
        assert_eq!(status, 404, "withdrawn at once");

        // Every route above is in the OpenAPI document.
        let doc: Value = serde_json::from_str(&r1.c.get("/api/v1/openapi.json").await.unwrap().body).unwrap();
        for p in [
            "/api/v1/applications",
            "/api/v1/applications/{id}/{step}",
            "/api/v1/projects/{id}/sql",
            "/api/v1/projects/{id}/end",
            "/api/v1/samples/{dataset}/sql",
            "/api/v1/projects/{id}/outputs",
            "/api/v1/outputs/{id}/{step}",
            "/api/v1/projects/{id}/bringin",
            "/api/v1/scanner",
        ] {
            assert!(doc["paths"][p].is_object(), "{p} missing from the OpenAPI document");
        }
        w.server.take();
    }
}
