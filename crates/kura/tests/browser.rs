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

mod common;
use common::{Served, kura_with_input as kura, ok};

const CA_NAME: &str = "Kura browser test CA";
const POLICY: &str = "/etc/chromium/policies/managed/kura-tests.json";
const PASSWORD: &str = "kaki-no-tane umbrella 83 orbit";

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
    fn start(browser_home: &Path) -> Driver {
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .env("HOME", browser_home)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines
            .by_ref()
            .map_while(Result::ok)
            .find_map(|l| l.split("started successfully on port ").nth(1).and_then(|p| p.trim_end_matches('.').parse().ok()));
        std::thread::spawn(move || lines.for_each(drop));
        match port {
            Some(port) => Driver(child, port),
            None => {
                let _ = child.kill();
                panic!("chromedriver did not start");
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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
    let driver = Driver::start(&browser_home);
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--lang=ja",
                     format!("--user-data-dir={}", browser_home.join("profile").display())],
        }
    });
    let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps.as_object().unwrap().clone())
        .connect(&format!("http://127.0.0.1:{}", driver.1))
        .await
        .expect("chromedriver starts a browser session");

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
