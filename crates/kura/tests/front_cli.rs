//! The front door from the command line, through the real binary, and `kura serve` checked
//! with a real third-party client, `openssl s_client`: the CLI contract (`kura ca init|issue|
//! revoke`, `kura user add|lock|unlock|suspend|list`, `kura serve --listen`), the TLS policy
//! (TLS 1.3, TLS 1.2 only with ECDHE-ECDSA and AES-GCM; TLS 1.1, CBC and RSA key exchange
//! refused; no client certificate, no service) (NET-1, HX-5, HIC-S12).

use std::io::Write;
use std::process::{Command, Stdio};

mod common;
use common::{Served, bench_ran, fails, kura_with_input as kura, ok};

/// `openssl s_client` against `addr` with extra arguments; returns (exit ok, all output).
fn s_client(addr: &str, args: &[&str]) -> (bool, String) {
    let mut child = Command::new("openssl")
        .args(["s_client", "-connect", addr, "-servername", "localhost", "-ign_eof"])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("openssl is installed by scripts/test.sh");
    child.stdin.take().unwrap().write_all(b"GET /login HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn ca_users_and_serve_checked_with_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    ok(&kura(&home, &["init"], None));
    let out = ok(&kura(&home, &["ca", "init"], None));
    assert!(out.contains("fingerprint: sha256:"), "{out}");
    assert!(fails(&kura(&home, &["ca", "init"], None)).contains("ca"), "a CA is never overwritten");

    // Users: weak password refused with the reason; a good one creates an active account.
    let e = fails(&kura(
        &home,
        &["user", "add", "--login", "tanaka.h", "--role", "researcher", "--institution", "1310000001", "--password-stdin"],
        Some("sakura123\n"),
    ));
    assert!(e.contains("password refused"), "{e}");
    let out = ok(&kura(
        &home,
        &[
            "user",
            "add",
            "--login",
            "tanaka.h",
            "--role",
            "researcher",
            "--institution",
            "1310000001",
            "--institution-name",
            "蔵大学病院",
            "--password-stdin",
        ],
        Some("kaki-no-tane umbrella 83 orbit\n"),
    ));
    assert!(out.contains("created user tanaka.h (researcher, active)"), "{out}");
    ok(&kura(&home, &["user", "lock", "tanaka.h"], None));
    assert!(ok(&kura(&home, &["user", "list"], None)).contains("yes"), "locked shows in the list");
    ok(&kura(&home, &["user", "unlock", "tanaka.h"], None));
    let list = ok(&kura(&home, &["user", "list", "--json"], None));
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    assert_eq!(v[0]["login"], "tanaka.h");
    assert_eq!(v[0]["locked"], false);

    // Certificates: PKCS#12 and PEM files, readable by openssl with the given password.
    let out_dir = dir.path().join("certs");
    let out = ok(&kura(
        &home,
        &["ca", "issue", "--user", "tanaka.h", "--out", out_dir.to_str().unwrap(), "--password-stdin"],
        Some("p12-pass\n"),
    ));
    assert!(out.contains("issued: sha256:"), "{out}");
    for f in ["tanaka.h.p12", "tanaka.h.crt.pem", "tanaka.h.key.pem"] {
        assert!(out_dir.join(f).exists(), "{f}");
    }
    let p12 = Command::new("openssl")
        .args(["pkcs12", "-in", out_dir.join("tanaka.h.p12").to_str().unwrap(), "-passin", "pass:p12-pass", "-nokeys"])
        .output()
        .unwrap();
    assert!(p12.status.success() && String::from_utf8_lossy(&p12.stdout).contains("BEGIN CERTIFICATE"));
    assert!(fails(&kura(&home, &["ca", "issue", "--user", "nobody", "--out", out_dir.to_str().unwrap()], None)).contains("nobody"));

    // The server, on a free port. It never reads the CA's signing key (issue 14: its own
    // certificates were issued ahead by `kura ca init`), so it starts with the key taken away.
    assert!(home.join("ca/server").read_dir().unwrap().count() >= 2, "server certificates issued ahead");
    std::fs::rename(home.join("ca/ca.key.pem"), dir.path().join("ca.key.pem.offline")).unwrap();
    let server = Served::start(&home, &["serve", "--listen", "127.0.0.1:0"], "https://");
    let addr = server.addr.clone();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let ca = home.join("ca/ca.crt.pem");
    let cert = out_dir.join("tanaka.h.crt.pem");
    let key = out_dir.join("tanaka.h.key.pem");
    let with_cert = |extra: &[&str]| {
        let mut a = vec!["-CAfile", ca.to_str().unwrap(), "-cert", cert.to_str().unwrap(), "-key", key.to_str().unwrap()];
        a.extend_from_slice(extra);
        s_client(&addr, &a)
    };

    // TLS 1.3 with the user's certificate: the login page.
    let (_, out) = with_cert(&["-tls1_3"]);
    assert!(out.contains("HTTP/1.1 200") && out.contains("Verify return code: 0 (ok)"), "{out}");
    // TLS 1.2 with ECDHE-ECDSA and AES-GCM: allowed.
    let (_, out) = with_cert(&["-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"]);
    assert!(out.contains("HTTP/1.1 200"), "{out}");
    // TLS 1.1 (the client told to allow it): refused by the server.
    let (_, out) = with_cert(&["-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0"]);
    assert!(!out.contains("HTTP/1.1"), "{out}");
    assert!(out.contains("alert") || out.contains("no protocols available") || out.contains("unsupported protocol"), "{out}");
    // TLS 1.2 with CBC, and with RSA key exchange: refused.
    for cipher in ["ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384", "AES128-GCM-SHA256", "AES256-SHA"] {
        let (_, out) = with_cert(&["-tls1_2", "-cipher", cipher]);
        assert!(!out.contains("HTTP/1.1"), "{cipher}: {out}");
        assert!(out.contains("handshake failure") || out.contains("alert"), "{cipher}: {out}");
    }
    // No client certificate: no service.
    let (_, out) = s_client(&addr, &["-CAfile", ca.to_str().unwrap(), "-tls1_3"]);
    assert!(!out.contains("HTTP/1.1"), "{out}");
    assert!(out.contains("certificate required") || out.contains("alert"), "{out}");

    // Revocation takes effect in the running server within its reload interval.
    // The CLI is another process: the server sees its revocation at its next reload
    // ([server] reload_secs, 5 s by default). Polled with a deadline, never a fixed sleep.
    ok(&kura(&home, &["ca", "revoke", "--user", "tanaka.h"], None));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, out) = with_cert(&["-tls1_3"]);
        if !out.contains("HTTP/1.1 200") {
            // Refused for being revoked, said so in the TLS alert (not any other failure).
            assert!(out.contains("certificate revoked"), "{out}");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "revoked certificate still served after 30 s: {out}");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }

    // Suspension, from the CLI.
    ok(&kura(&home, &["user", "suspend", "tanaka.h"], None));
    let v: serde_json::Value = serde_json::from_str(&ok(&kura(&home, &["user", "list", "--json"], None))).unwrap();
    assert_eq!(v[0]["state"], "suspended");
    // Every step is on the record.
    let log = ok(&kura(&home, &["ledger", "verify"], None));
    assert!(log.contains("OK"), "{log}");
    drop(server);
}

/// The server benchmark runs end to end with tiny settings (its figures are not judged here:
/// speed is measured in release builds, see docs/benchmarks.md).
#[test]
fn server_benchmark_runs() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("bench");
    let args = ["--seconds", "1", "--connections", "4", "--handshake-clients", "2", "--flood", "2", "--dir"];
    let o = Command::new(env!("CARGO_BIN_EXE_kura")).args(["bench", "server"]).args(args).arg(&work).output().unwrap();
    let out = bench_ran(&o);
    for row in
        ["full mTLS handshakes per core", "authenticated requests, GET /api/v1/me", "latency p99", "sign-in flood", "during the flood"]
    {
        assert!(out.contains(row), "{row} missing from:\n{out}");
    }
    assert!(out.contains("(0 failed)"), "{out}");
    // A second run refuses to mix with the first.
    let o = Command::new(env!("CARGO_BIN_EXE_kura")).args(["bench", "server"]).args(args).arg(&work).output().unwrap();
    assert!(fails(&o).contains("earlier run"));
}
