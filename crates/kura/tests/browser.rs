//! A real browser at the front door: headless Chromium (Debian's `chromium`, driven over
//! WebDriver by `chromium-driver`) presents a client certificate that `kura ca issue` exported
//! as PKCS#12 — imported into the NSS database the browser reads and chosen by the
//! `AutoSelectCertificateForUrls` policy — and signs in with a password and TOTP, enrolling
//! the second factor on the way (NET-1, HX-5, HX-6, HIC-S3, HIC-S12, HIC-U2, HIC-U3).
//!
//! `scripts/test.sh` installs the browser, the driver and `libnss3-tools`, and writes the
//! policy (`/etc/chromium/policies/managed/kura-tests.json`); it auto-selects only
//! certificates issued by a CA named "Kura browser test CA" on loopback. Without them this
//! test fails and says so: it is never skipped.

use fantoccini::{Client, ClientBuilder, Locator};
use kura_accounts::totp;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

#[path = "../../scan/tests/support/clamd.rs"]
mod clamd;
mod common;
use common::{PASSWORD, Served, add_users, kura_with_input as kura, ok, use_scanner};

const CA_NAME: &str = "Kura browser test CA";
const POLICY: &str = "/etc/chromium/policies/managed/kura-tests.json";

/// Fails with instructions when something the browser test needs is missing.
fn require_tools() {
    for tool in ["chromium", "chromedriver", "certutil", "pk12util"] {
        let found = Command::new("sh").args(["-c", &format!("command -v {tool}")]).output().map(|o| o.status.success());
        assert!(
            found.unwrap_or(false),
            "{tool} is missing: run ./scripts/test.sh (it installs chromium, chromium-driver and libnss3-tools)"
        );
    }
    let policy = std::fs::read_to_string(POLICY).unwrap_or_default();
    assert!(
        policy.contains(CA_NAME) && policy.contains("AutoSelectCertificateForUrls"),
        "the Chromium policy {POLICY} is missing: run ./scripts/test.sh (it writes it)"
    );
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

/// The browser's NSS database under `browser_home/.pki/nssdb`: the user's certificate and key
/// from the PKCS#12 file, and Kura's CA trusted for TLS servers.
fn nss_database(browser_home: &Path, p12: &Path, p12_password: &str, ca: &Path) {
    let db = browser_home.join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let db = format!("sql:{}", db.display());
    run(Command::new("certutil").args(["-N", "--empty-password", "-d", &db]));
    run(Command::new("pk12util").args(["-d", &db, "-W", p12_password, "-i"]).arg(p12));
    run(Command::new("certutil").args(["-A", "-d", &db, "-n", CA_NAME, "-t", "C,,", "-i"]).arg(ca));
}

/// A `chromedriver` child on a free port, killed when dropped.
struct Driver(Child, u16);

impl Driver {
    /// Starts chromedriver on a port of its choosing. A chromedriver that exits before it says
    /// where it listens is started again (at most three times); what it wrote to stderr is in
    /// the failure.
    fn start(browser_home: &Path) -> Driver {
        let mut errors = Vec::new();
        for _ in 0..3 {
            let mut child = Command::new("chromedriver")
                .arg("--port=0")
                .env("HOME", browser_home)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let port = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|l| l.split("started successfully on port ").nth(1).and_then(|p| p.trim_end_matches('.').parse().ok()));
            std::thread::spawn(move || lines.for_each(drop));
            let mut stderr = child.stderr.take().unwrap();
            match port {
                Some(port) => {
                    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
                    return Driver(child, port);
                }
                None => {
                    let _ = child.kill();
                    let status = child.wait();
                    let mut text = String::new();
                    let _ = std::io::Read::read_to_string(&mut stderr, &mut text);
                    errors.push(format!("{status:?}: {}", text.trim()));
                }
            }
        }
        panic!("chromedriver did not start: {errors:?}");
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Headless Chromium (Japanese first) with the NSS database and profile under `browser_home`,
/// driven by a `chromedriver` of its own.
async fn browser(browser_home: &Path) -> (Client, Driver) {
    let driver = Driver::start(browser_home);
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=ja", "--window-size=1200,1600",
                     format!("--user-data-dir={}", browser_home.join("profile").display())],
        }
    });
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver starts a browser session");
    (c, driver)
}

async fn text(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => panic!("{css}: {e}\n{}", c.source().await.unwrap_or_default()),
    }
}

async fn lang(c: &Client) -> String {
    c.find(Locator::Css("html")).await.unwrap().attr("lang").await.unwrap().unwrap_or_default()
}

async fn fill(c: &Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let field = c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
    click_and_wait(c, Locator::Id("submit")).await;
}

/// Types into the fields by id (clearing them first), without sending the form.
async fn type_in(c: &Client, fields: &[(&str, &str)]) {
    for (id, value) in fields {
        let field = c.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(value).await.unwrap();
    }
}

/// Clicks and waits for the next page: the old document's root goes stale, the new one loads.
async fn click_and_wait(c: &Client, target: Locator<'_>) {
    let old = c.find(Locator::Css("html")).await.unwrap();
    c.find(target).await.unwrap().click().await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while old.tag_name().await.is_ok() {
        assert!(std::time::Instant::now() < deadline, "no new page after the click:\n{}", c.source().await.unwrap_or_default());
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    while c.execute("return document.readyState", vec![]).await.unwrap() != "complete" {
        assert!(std::time::Instant::now() < deadline, "the page did not finish loading");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The TOTP step of the real clock (the server under test runs on it).
fn step_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() / totp::STEP
}

fn code_at(secret: &[u8], step: u64) -> String {
    format!("{:06}", totp::code_at_step(secret, step, totp::DIGITS))
}

#[tokio::test]
async fn chromium_presents_its_certificate_and_signs_in_with_password_and_totp() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"], None));
    ok(&kura(&home, &["ca", "init", "--name", CA_NAME], None));
    ok(&kura(
        &home,
        &["user", "add", "--login", "tanaka.h", "--role", "researcher", "--institution", "1310000001", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    ));
    let certs = dir.path().join("certs");
    ok(&kura(&home, &["ca", "issue", "--user", "tanaka.h", "--out", certs.to_str().unwrap(), "--password-stdin"], Some("p12-pass\n")));
    let browser_home = dir.path().join("browser");
    nss_database(&browser_home, &certs.join("tanaka.h.p12"), "p12-pass", &home.join("ca/ca.crt.pem"));

    let server = Served::start(&home, &["serve", "--listen", "127.0.0.1:0"], "https://");
    let base = format!("https://{}", server.addr);
    let (c, driver) = browser(&browser_home).await;

    // The certificate is presented (no certificate, no page: the server requires one) and the
    // server's certificate is trusted through the NSS database: the login page, in Japanese.
    c.goto(&base).await.unwrap();
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    assert_eq!(lang(&c).await, "ja");
    assert_eq!(text(&c, "h1").await, "ログイン");

    // A wrong password is told plainly.
    fill(&c, &[("login", "tanaka.h"), ("password", "not the password")]).await;
    assert!(text(&c, "#message").await.contains("IDまたはパスワードが違います"));

    // The right password leads to TOTP enrolment: a QR code drawn locally and the key.
    fill(&c, &[("login", "tanaka.h"), ("password", PASSWORD)]).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login/enrol", "{}", c.source().await.unwrap());
    assert!(c.find(Locator::Css("#qr svg")).await.is_ok(), "the QR code is inline SVG");
    let secret = totp::base32_decode(&text(&c, "#secret").await).expect("the key is base32");
    // A wrong code: one that no step of the accepted window (±1) takes, even if the clock moves
    // on to the next step before the server checks it.
    let step = step_now();
    let taken: Vec<String> = (step - 1..=step + 2).map(|s| code_at(&secret, s)).collect();
    let wrong = (0..).map(|c| format!("{c:06}")).find(|c| !taken.contains(c)).unwrap();
    fill(&c, &[("code", &wrong)]).await;
    assert!(text(&c, "#message").await.contains("確認コードが違う"));
    let step = step_now();
    let right = code_at(&secret, step);
    fill(&c, &[("code", &right)]).await;
    let codes = c.find_all(Locator::Css("#recovery-codes li")).await.unwrap();
    assert_eq!(codes.len(), 10, "ten one-time recovery codes are shown once");
    click_and_wait(&c, Locator::Id("continue")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    assert!(text(&c, "#welcome").await.contains("tanaka.h"));

    // The session cookie as the browser holds it.
    let cookies = c.get_all_cookies().await.unwrap();
    let session = cookies.iter().find(|k| k.name() == "__Host-kura").expect("session cookie");
    assert_eq!(session.secure(), Some(true));
    assert_eq!(session.http_only(), Some(true));
    assert_eq!(session.same_site().map(|s| s.to_string()).as_deref(), Some("Strict"));
    assert_eq!(session.path(), Some("/"));

    // English on request; the API answers the same session.
    click_and_wait(&c, Locator::LinkText("English")).await;
    assert_eq!(lang(&c).await, "en");
    c.goto(&format!("{base}/api/v1/me")).await.unwrap();
    assert!(c.source().await.unwrap().contains("\"login\":\"tanaka.h\""));

    // Sign out, and in again: the code already used is refused (replay), the next one works.
    c.goto(&base).await.unwrap();
    click_and_wait(&c, Locator::Css("form[action='/logout'] button")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login");
    assert!(c.get_all_cookies().await.unwrap().iter().all(|k| k.name() != "__Host-kura"), "signed out");
    fill(&c, &[("login", "tanaka.h"), ("password", PASSWORD)]).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/login/second");
    fill(&c, &[("code", &right)]).await;
    assert!(text(&c, "#message").await.contains("already used"), "the replayed code is refused");
    // The next code: the step after the one used, or the current step if time has moved on.
    fill(&c, &[("code", &code_at(&secret, (step + 1).max(step_now())))]).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/");
    assert!(text(&c, "#welcome").await.contains("tanaka.h"));

    c.close().await.unwrap();
    drop(driver);
    drop(server);
    // Every step above is on the record, and the record verifies.
    let log = ok(&kura(&home, &["ledger", "verify"], None));
    assert!(log.contains("OK"), "{log}");
}

/// A browser of its own for `login` (its certificate in its own NSS database), signed in with
/// password and a freshly enrolled second factor, on the portal's home page.
async fn signed_in(dir: &Path, home: &Path, base: &str, login: &str) -> (Client, Driver) {
    let certs = dir.join(format!("certs-{login}"));
    ok(&kura(home, &["ca", "issue", "--user", login, "--out", certs.to_str().unwrap(), "--password-stdin"], Some("p12-pass\n")));
    let browser_home = dir.join(format!("browser-{login}"));
    nss_database(&browser_home, &certs.join(format!("{login}.p12")), "p12-pass", &home.join("ca/ca.crt.pem"));
    let (c, driver) = browser(&browser_home).await;
    c.goto(base).await.unwrap();
    fill(&c, &[("login", login), ("password", PASSWORD)]).await;
    let secret = totp::base32_decode(&text(&c, "#secret").await).expect("the key is base32");
    fill(&c, &[("code", &code_at(&secret, step_now()))]).await;
    click_and_wait(&c, Locator::Id("continue")).await;
    assert_eq!(c.current_url().await.unwrap().path(), "/", "{login} signed in");
    (c, driver)
}

/// Goes to `path` and clicks the button `id` (a form's), waiting for the answer.
async fn press(c: &Client, base: &str, path: &str, id: &str) {
    c.goto(&format!("{base}{path}")).await.unwrap();
    click_and_wait(c, Locator::Id(id)).await;
}

/// The research lifecycle's main path in the portal, each party in a browser of its own
/// (HIC-P1, HIC-P3, HIC-IO3): a researcher applies with columns picked from the catalogue; a
/// custodian of another institution passes it to the committee; two reviewers vote; the
/// custodian approves fewer columns; the researcher accepts, runs SQL in the workspace (a
/// column outside the grant is refused), gives notice; the custodian ends the project; the
/// researcher finds it ended.
#[tokio::test]
async fn the_research_path_in_the_portal() {
    require_tools();
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"], None));
    // The airlock's scanner: a clamd of this test's own, with the test signatures.
    let scanner = clamd::Clamd::start();
    use_scanner(&home, &scanner.socket);
    ok(&kura(&home, &["ca", "init", "--name", CA_NAME], None));
    ok(&kura(&home, &["synth", "--persons", "200", "--seed", "11", "--months", "1"], None));
    add_users(
        &home,
        &[
            ("r1", "researcher", "1310000001"),
            ("c2", "custodian", "9900000001"),
            ("v1", "reviewer", "9900000001"),
            ("v2", "reviewer", "9900000001"),
        ],
    );
    let server = Served::start(&home, &["serve", "--listen", "127.0.0.1:0"], "https://");
    let base = format!("https://{}", server.addr);
    let (r1, _d1) = signed_in(dir.path(), &home, &base, "r1").await;
    let (c2, _d2) = signed_in(dir.path(), &home, &base, "c2").await;
    let (v1, _d3) = signed_in(dir.path(), &home, &base, "v1").await;
    let (v2, _d4) = signed_in(dir.path(), &home, &base, "v2").await;

    // Apply: columns ticked from the catalogue.
    click_and_wait(&r1, Locator::Id("applications")).await;
    click_and_wait(&r1, Locator::Id("new-application")).await;
    for id in ["col-re-sex", "col-re-age", "col-re-id5"] {
        r1.find(Locator::Id(id)).await.unwrap().click().await.unwrap();
    }
    fill(&r1, &[("title", "糖尿病の受療動向"), ("purpose", "地域差を調べる"), ("reason", "性別・年齢で層別")]).await;
    assert_eq!(text(&r1, "#app-state").await, "下書き", "{}", r1.source().await.unwrap());
    let app = r1.current_url().await.unwrap().path().to_string();
    assert_eq!(app, "/applications/APP-000001");
    // The protocol PDF, through the upload form (multipart, its CSRF token inside).
    let protocol = dir.path().join("protocol.pdf");
    std::fs::write(&protocol, b"%PDF-1.7\n1 0 obj << >> endobj\n%%EOF\n").unwrap();
    r1.find(Locator::Id("attachment")).await.unwrap().send_keys(protocol.to_str().unwrap()).await.unwrap();
    click_and_wait(&r1, Locator::Id("attach")).await;
    assert!(text(&r1, "#attachments").await.contains("protocol.pdf"), "{}", r1.source().await.unwrap());
    click_and_wait(&r1, Locator::Id("submit-application")).await;
    assert_eq!(text(&r1, "#app-state").await, "受付（形式審査待ち）");

    // The custodian's dashboard lists it with its clock; the intake check passes it on.
    c2.goto(&format!("{base}/applications")).await.unwrap();
    assert!(text(&c2, "#app-APP-000001").await.contains("糖尿病の受療動向"));
    press(&c2, &base, &app, "check-accept").await;
    assert_eq!(text(&c2, "#app-state").await, "審査会で審査中");
    for v in [&v1, &v2] {
        v.goto(&format!("{base}{app}")).await.unwrap();
        v.find(Locator::Id("comment")).await.unwrap().send_keys("公益性あり").await.unwrap();
        click_and_wait(v, Locator::Id("vote-approve")).await;
        assert!(text(v, "#message").await.contains("投票しました"), "{}", v.source().await.unwrap());
    }
    // No column ticked is refused, never read as "all of them".
    c2.goto(&format!("{base}{app}")).await.unwrap();
    for id in ["grant-re-sex", "grant-re-age", "grant-re-id5"] {
        c2.find(Locator::Id(id)).await.unwrap().click().await.unwrap();
    }
    click_and_wait(&c2, Locator::Id("decide-approve")).await;
    assert!(text(&c2, "#message").await.contains("一つ以上"), "{}", c2.source().await.unwrap());
    assert_eq!(text(&c2, "#app-state").await, "審査会で審査中");
    // Fewer columns than asked: age is not granted.
    c2.goto(&format!("{base}{app}")).await.unwrap();
    c2.find(Locator::Id("grant-re-age")).await.unwrap().click().await.unwrap();
    click_and_wait(&c2, Locator::Id("decide-approve")).await;
    assert_eq!(text(&c2, "#app-state").await, "条件付き承認");

    // The agreement provisions the project; SQL runs in its workspace.
    press(&r1, &base, &app, "accept").await;
    assert_eq!(r1.current_url().await.unwrap().path(), "/projects/PRJ-000001");
    r1.find(Locator::Id("sql"))
        .await
        .unwrap()
        .send_keys("SELECT sex, count(DISTINCT id5) AS persons FROM re GROUP BY sex ORDER BY sex")
        .await
        .unwrap();
    click_and_wait(&r1, Locator::Id("run")).await;
    let result = text(&r1, "#result-0").await;
    assert!(result.contains("persons") && result.lines().count() >= 3, "{result}");
    let shot = r1.screenshot().await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a screenshot of the workspace page");
    std::fs::write(dir.path().join("workspace.png"), &shot).unwrap();
    if let Ok(keep) = std::env::var("KURA_TEST_SCREENSHOT") {
        std::fs::write(keep, &shot).unwrap();
    }
    r1.find(Locator::Id("sql")).await.unwrap().clear().await.unwrap();
    r1.find(Locator::Id("sql")).await.unwrap().send_keys("SELECT age FROM re").await.unwrap();
    click_and_wait(&r1, Locator::Id("run")).await;
    assert!(text(&r1, "#message").await.contains("許可されていません"), "{}", r1.source().await.unwrap());
    airlock_path(&base, dir.path(), &r1, &c2, &v1, &v2).await;

    r1.goto(&format!("{base}/projects/PRJ-000001")).await.unwrap();
    click_and_wait(&r1, Locator::Id("notice")).await;
    assert_eq!(text(&r1, "#project-state").await, "利用終了の届出済み");

    // End of use: the custodian destroys the workspace; the researcher finds it ended.
    press(&c2, &base, "/projects/PRJ-000001", "end").await;
    assert_eq!(text(&c2, "#project-state").await, "利用終了");
    assert_eq!(text(&c2, "#certificate").await.len(), 64, "the deletion certificate's SHA-256");
    r1.goto(&format!("{base}/projects/PRJ-000001")).await.unwrap();
    assert!(text(&r1, "#ended").await.contains("利用終了"));
    assert!(r1.find(Locator::Id("sql")).await.is_err(), "no SQL form after the end");

    for c in [r1, c2, v1, v2] {
        c.close().await.unwrap();
    }
    drop(server);
    let log = ok(&kura(&home, &["ledger", "verify"], None));
    assert!(log.contains("OK"), "{log}");
}

/// The airlock's main path in the portal (issue 17 "Interfaces", HIC-IO1, HIC-IO2, HIC-S14):
/// the researcher builds an output request from a query on the project page and sees every
/// cell coloured by its verdict (a table of identifiers fails, cell by cell); two reviewers
/// outside the project vote, the second without seeing the first's vote (blind); a custodian
/// outside the project releases it from the release queue; the researcher finds the package.
/// Bring-in: a code master uploaded on the project page, scanned, approved by the custodian
/// from the bring-in queue, lands in the workspace as a table.
async fn airlock_path(base: &str, dir: &Path, r1: &Client, c2: &Client, v1: &Client, v2: &Client) {
    let project = "/projects/PRJ-000001";
    r1.goto(&format!("{base}{project}")).await.unwrap();
    type_in(
        r1,
        &[
            ("output-name", "sex-persons"),
            ("output-query", "SELECT sex, count(DISTINCT id5) AS persons FROM re GROUP BY sex"),
            ("output-note", "性別の人数（合成データ、1か月）"),
        ],
    )
    .await;
    click_and_wait(r1, Locator::Id("new-output")).await;
    assert_eq!(r1.current_url().await.unwrap().path(), "/outputs/OUT-000001", "{}", r1.source().await.unwrap());
    assert_eq!(text(r1, "#out-state").await, "作成中");
    let passing = r1.find_all(Locator::Css("#table-1 td.cell.pass")).await.unwrap();
    assert!(passing.len() >= 2, "every sex's count is a passing cell: {}", r1.source().await.unwrap());
    assert!(r1.find_all(Locator::Css("#table-1 td.cell.fail")).await.unwrap().is_empty());
    click_and_wait(r1, Locator::Id("submit-output")).await;
    assert_eq!(text(r1, "#out-state").await, "審査待ち", "{}", r1.source().await.unwrap());

    // A table of identifiers: each cell fails, shown as failing and suppressed.
    r1.goto(&format!("{base}{project}")).await.unwrap();
    type_in(
        r1,
        &[("output-name", "ids"), ("output-query", "SELECT sex, string_agg(id5, ',') AS ids FROM re GROUP BY sex"), ("output-note", "x")],
    )
    .await;
    click_and_wait(r1, Locator::Id("new-output")).await;
    assert_eq!(r1.current_url().await.unwrap().path(), "/outputs/OUT-000002");
    let failing = r1.find_all(Locator::Css("#table-1 td.cell.fail.suppressed")).await.unwrap();
    assert!(!failing.is_empty(), "the identifiers fail and are suppressed: {}", r1.source().await.unwrap());
    assert!(!r1.source().await.unwrap().contains("pseud"), "no identifier is on the page");
    let shot = r1.screenshot().await.unwrap();
    assert!(shot.starts_with(b"\x89PNG"), "a screenshot of the request builder");
    if let Ok(keep) = std::env::var("KURA_TEST_AIRLOCK_SCREENSHOT") {
        std::fs::write(keep, &shot).unwrap();
    }

    // The reviewers' queue holds the submitted request, not the draft.
    v1.goto(&format!("{base}/outputs")).await.unwrap();
    assert!(text(v1, "#out-OUT-000001").await.contains("sex-persons"), "{}", v1.source().await.unwrap());
    assert!(v1.find(Locator::Id("out-OUT-000002")).await.is_err(), "a draft is not in the queue");
    v1.goto(&format!("{base}/outputs/OUT-000001")).await.unwrap();
    assert!(!v1.find_all(Locator::Css("#table-1 td.cell.pass")).await.unwrap().is_empty(), "the reviewer sees the cells");
    assert!(v1.find(Locator::Id("open-file-1")).await.is_ok(), "and can open the file itself");
    type_in(v1, &[("review-comment", "first-reviewer-note")]).await;
    click_and_wait(v1, Locator::Id("review-approve")).await;
    assert!(text(v1, "#message").await.contains("投票しました"), "{}", v1.source().await.unwrap());
    assert_eq!(text(v1, "#out-state").await, "審査中（1人目済み）");
    // Blind: the second reviewer does not see the first vote.
    v2.goto(&format!("{base}/outputs/OUT-000001")).await.unwrap();
    let page = v2.source().await.unwrap();
    assert!(!page.contains("first-reviewer-note"), "the first vote's comment is hidden: {page}");
    assert!(v2.find(Locator::Css("#reviews li")).await.is_err(), "no vote is listed: {page}");
    assert!(text(v2, "#hidden-votes").await.contains("両者が投票するまで"));
    click_and_wait(v2, Locator::Id("review-approve")).await;
    assert_eq!(text(v2, "#out-state").await, "承認（持ち出し待ち）", "{}", v2.source().await.unwrap());
    assert!(v2.source().await.unwrap().contains("first-reviewer-note"), "both have voted: the votes are shown");

    // The custodian's release queue, then the release (hashes, scan, differencing again).
    c2.goto(&format!("{base}/outputs")).await.unwrap();
    assert!(text(c2, "#out-OUT-000001").await.contains("承認"), "{}", c2.source().await.unwrap());
    press(c2, base, "/outputs/OUT-000001", "release-output").await;
    assert_eq!(text(c2, "#out-state").await, "持ち出し済み", "{}", c2.source().await.unwrap());
    assert_eq!(text(c2, "#package").await.len(), 64, "the package manifest's SHA-256");
    r1.goto(&format!("{base}/outputs/OUT-000001")).await.unwrap();
    let files = text(r1, "#package-files").await;
    assert!(files.contains("sex-persons.csv") && files.contains("manifest.json") && files.contains("release.tlog-proof"), "{files}");

    // Bring-in: a code master through the upload form, approved from the custodian's queue.
    let master = dir.join("m_codes.csv");
    std::fs::write(&master, "code,name\r\nA1,テスト\r\nB2,検査\r\n").unwrap();
    r1.goto(&format!("{base}{project}")).await.unwrap();
    r1.find(Locator::Id("bringin-file")).await.unwrap().send_keys(master.to_str().unwrap()).await.unwrap();
    type_in(r1, &[("bringin-note", "コード表")]).await;
    click_and_wait(r1, Locator::Id("upload-bringin")).await;
    assert_eq!(r1.current_url().await.unwrap().path(), "/bringin/IN-000001", "{}", r1.source().await.unwrap());
    assert_eq!(text(r1, "#in-state").await, "確認待ち");
    assert!(text(r1, "#in-scan").await.contains("ClamAV"), "{}", r1.source().await.unwrap());
    c2.goto(&format!("{base}/bringin")).await.unwrap();
    assert!(text(c2, "#in-IN-000001").await.contains("m_codes.csv"), "{}", c2.source().await.unwrap());
    press(c2, base, "/bringin/IN-000001", "in-approve").await;
    assert_eq!(text(c2, "#in-state").await, "承認（作業環境にあり）", "{}", c2.source().await.unwrap());
    r1.goto(&format!("{base}{project}")).await.unwrap();
    assert!(text(r1, "#saved-tables").await.contains("m_codes"), "{}", r1.source().await.unwrap());
}
